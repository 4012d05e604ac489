use stroma::prelude::*;

// Any error that converts into a boxed std error is accepted as the error type.
#[node]
async fn read(path: String) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

#[node]
async fn parse(text: String) -> Result<u32, std::num::ParseIntError> {
    text.trim().parse()
}

fn assert_node<N: Node<Input = String, Output = u32>>(_: N) {}

fn main() {
    assert_node(pipeline![read, parse]);
}
