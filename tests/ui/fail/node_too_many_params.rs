use stroma::prelude::*;

#[node]
async fn step(n: u32, ctx: &Context, model: &mut Vec<u32>, extra: &u32) -> u32 {
    let _ = (ctx, model, extra);
    n
}

fn main() {}
