use stroma::prelude::*;

#[node]
async fn greet(name: String, ctx: &mut Context) -> String {
    let _ = ctx;
    name
}

fn main() {}
