use stroma::prelude::*;

#[node]
async fn both(text: String, log: &mut Vec<String>, other: &Vec<String>) -> usize {
    let _ = (text, log);
    other.len()
}

fn main() {}
