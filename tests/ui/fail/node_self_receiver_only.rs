use stroma::prelude::*;

struct Source;

impl Source {
    #[node]
    async fn read(&self) -> String {
        String::new()
    }
}

fn main() {}
