use stroma::prelude::*;

#[node]
async fn greet(name: String, ctx: Context) -> String {
    let _ = ctx;
    name
}

fn main() {}
