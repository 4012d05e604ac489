use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u64 {
    u64::from(n) * 2
}

fn assert_node<N: Node<Input = u32, Output = u64>>(_: N) {}

fn main() {
    assert_node(double);
    let _ = pipeline![double];
}
