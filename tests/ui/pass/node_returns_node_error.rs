use stroma::prelude::*;

#[node]
async fn parse(text: String) -> Result<u32, NodeError> {
    let n: u32 = text.trim().parse()?;
    if n == 0 {
        return Err(NodeError::msg("zero"));
    }
    Ok(n)
}

// The output is the `Ok` type, not the `Result`.
fn assert_node<N: Node<Input = String, Output = u32>>(_: N) {}

fn main() {
    assert_node(parse);
}
