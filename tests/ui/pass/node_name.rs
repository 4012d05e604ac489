use stroma::prelude::*;

#[node(name = "fetch page")]
async fn fetch(url: String) -> String {
    url
}

#[node]
async fn parse(text: String) -> String {
    text
}

fn main() {
    assert_eq!(fetch.name(), "fetch page");
    assert_eq!(parse.name(), "parse");
}
