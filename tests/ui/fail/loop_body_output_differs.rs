use stroma::prelude::*;

#[node]
async fn measure(text: String) -> usize {
    text.len()
}

fn main() {
    let _ = loop_until(measure, |len: &usize, _model: &()| *len > 10);
}
