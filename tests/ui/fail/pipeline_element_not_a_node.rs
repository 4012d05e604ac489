use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

async fn triple(n: u32) -> u32 {
    n * 3
}

// `triple` lacks `#[node]`.
fn main() {
    let _ = pipeline![double, triple, double];
}
