use stroma::prelude::*;

#[node(input = u32, ouput = u32)]
async fn double(n: u32) -> u32 {
    n * 2
}

fn main() {
    let _ = double;
}
