use stroma::prelude::*;

#[node]
async fn greet(name: String, ctx: &Context, again: &Context) -> String {
    let _ = (ctx, again);
    name
}

fn main() {}
