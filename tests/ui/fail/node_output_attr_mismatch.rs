use stroma::prelude::*;

#[node(input = String, output = u32)]
async fn measure(text: String) -> Result<usize, NodeError> {
    Ok(text.len())
}

fn main() {
    let _ = measure;
}
