use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

// Not marked `#[node]`.
async fn square(n: u32) -> u32 {
    n * n
}

async fn go() {
    let both = parallel![double, square];
    // Using it raises nothing more.
    let _ = StromaRunner::quick().run(&both, 3).await;
}

fn main() {
    let _ = go();
}
