use stroma::prelude::*;

#[node]
struct Fetch {
    url: String,
}

fn main() {
    let _ = Fetch { url: String::new() }.url;
}
