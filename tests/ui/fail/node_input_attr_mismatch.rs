use stroma::prelude::*;

#[node(input = u64)]
async fn double(n: u32) -> u32 {
    n * 2
}

fn main() {
    let _ = double;
}
