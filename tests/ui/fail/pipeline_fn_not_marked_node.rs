use stroma::prelude::*;

#[node]
async fn seed(url: String) -> Vec<String> {
    vec![url]
}

// Not marked `#[node]`; its input fits what `seed` gives.
async fn next_frontier(urls: Vec<String>) -> Vec<String> {
    urls
}

#[node]
async fn count(urls: Vec<String>) -> usize {
    urls.len()
}

async fn crawl() {
    let p = pipeline![seed, next_frontier, count];
    // Using it raises nothing more.
    let _ = StromaRunner::quick()
        .run(&p, "https://example.com".into())
        .await;
}

fn main() {
    let _ = crawl();
}
