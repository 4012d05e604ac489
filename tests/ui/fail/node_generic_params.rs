use stroma::prelude::*;

#[node]
async fn echo<T: Send + 'static>(value: T) -> T {
    value
}

fn main() {}
