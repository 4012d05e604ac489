use stroma::prelude::*;

#[node]
async fn add(n: u32, other: u32) -> u32 {
    n + other
}

fn main() {}
