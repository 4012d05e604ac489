use stroma::prelude::*;

#[node]
async fn fetch(url: String) -> String {
    url
}

#[node]
async fn measure(len: usize) -> usize {
    len
}

async fn go() {
    let p = pipeline![fetch, measure];
    // Using it raises nothing more.
    let _ = StromaRunner::quick().run(&p, "x".to_string()).await;
}

fn main() {
    let _ = go();
}
