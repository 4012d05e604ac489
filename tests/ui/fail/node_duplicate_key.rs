use stroma::prelude::*;

#[node(name = "double", name = "twice")]
async fn double(n: u32) -> u32 {
    n * 2
}

fn main() {
    let _ = double;
}
