use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[node]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

fn main() {
    let _ = parallel![double, shout];
}
