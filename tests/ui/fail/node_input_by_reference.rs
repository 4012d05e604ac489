use stroma::prelude::*;

#[node]
async fn measure(text: &str) -> usize {
    text.len()
}

fn main() {}
