use stroma::prelude::*;

#[node]
async fn fetch(url: String) -> String {
    url
}

#[node]
async fn measure(len: usize) -> usize {
    len
}

fn main() {
    let _ = pipeline![fetch, measure];
}
