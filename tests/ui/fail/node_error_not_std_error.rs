use stroma::prelude::*;

#[node]
async fn parse(text: String) -> Result<u32, ()> {
    text.parse().map_err(|_| ())
}

fn main() {
    let _ = parse;
}
