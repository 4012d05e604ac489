use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[node]
async fn scaled(n: u32, ctx: &Context) -> Result<u32, NodeError> {
    Ok(n * *ctx.get_named::<u32>("factor")?)
}

// A node's function stays callable as `name::call`, without a runner.
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(double::call(21)), 42);
    let ctx = Context::new().with_named("factor", 3_u32);
    assert_eq!(rt.block_on(scaled::call(5, &ctx)).unwrap(), 15);
}
