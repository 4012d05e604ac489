use stroma::prelude::*;

struct Fetcher;

impl Fetcher {
    #[node]
    async fn fetch(&self, url: String) -> String {
        url
    }
}

fn main() {}
