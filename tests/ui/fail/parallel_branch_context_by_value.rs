use stroma::prelude::*;

#[derive(Clone)]
struct StartUrl(String);

// `ctx: Context` by value: a node takes the context as `&Context`.
#[node]
async fn fetch_links(start: StartUrl, ctx: Context) -> Vec<String> {
    let _ = ctx;
    vec![start.0]
}

#[node]
async fn fetch_title(start: StartUrl) -> String {
    start.0
}

async fn crawl() {
    let both = parallel![fetch_links, fetch_title];
    // Using it raises nothing more.
    let _ = StromaRunner::quick()
        .run(&both, StartUrl("https://example.com".into()))
        .await;
}

fn main() {
    let _ = crawl();
}
