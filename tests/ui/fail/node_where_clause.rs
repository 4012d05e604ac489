use stroma::prelude::*;

#[node]
async fn echo(value: u32) -> u32
where
    u32: Copy,
{
    value
}

fn main() {}
