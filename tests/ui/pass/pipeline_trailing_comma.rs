use stroma::prelude::*;

#[node]
async fn parse(text: String) -> Result<u32, NodeError> {
    Ok(text.trim().parse()?)
}

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

fn assert_node<N: Node<Input = String, Output = u32>>(_: N) {}

fn main() {
    assert_node(pipeline![parse, double,]);
    assert_node(pipeline![parse,]);
}
