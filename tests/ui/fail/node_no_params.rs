use stroma::prelude::*;

#[node]
async fn start() -> u32 {
    1
}

fn main() {}
