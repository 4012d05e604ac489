use stroma::prelude::*;

#[node]
async fn parse(text: String) -> u32 {
    text.len() as u32
}

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[node]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

// Only the third link is wrong: the error is on `shout`, and only there.
fn main() {
    let _ = pipeline![parse, double, shout, double];
}
