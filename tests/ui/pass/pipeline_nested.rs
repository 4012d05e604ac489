use stroma::prelude::*;

#[node]
async fn parse(text: String) -> Result<u32, NodeError> {
    Ok(text.trim().parse()?)
}

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[node]
async fn render(n: u32) -> String {
    n.to_string()
}

fn assert_node<N: Node<Input = String, Output = String>>(_: N) {}

fn main() {
    assert_node(pipeline![pipeline![parse, double], render]);
    assert_node(pipeline![parse, pipeline![double, double], render]);
    let inner = pipeline![double, double];
    assert_node(pipeline![parse, inner, render]);
}
