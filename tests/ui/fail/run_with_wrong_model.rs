use stroma::prelude::*;

#[derive(Clone, Default)]
struct Tally {
    seen: u32,
}

#[node]
async fn count(n: u32, tally: &mut Tally) -> u32 {
    tally.seen += 1;
    n
}

async fn go() {
    let runner = StromaRunner::quick();
    let pipeline = pipeline![count];
    let _ = runner.run_with_model(&pipeline, 1, vec![1_u32]).await;
}

fn main() {
    let _ = go;
}
