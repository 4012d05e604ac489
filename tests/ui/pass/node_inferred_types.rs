use stroma::prelude::*;

// No arguments: input and output come from the signature, `()` when there is no return type.
#[node]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

#[node]
async fn discard(_text: String) {}

fn assert_node<N: Node<Input = String, Output = String>>(_: N) {}
fn assert_sink<N: Node<Input = String, Output = ()>>(_: N) {}

fn main() {
    assert_node(shout);
    assert_sink(discard);
}
