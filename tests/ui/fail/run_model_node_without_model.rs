use stroma::prelude::*;

#[derive(Clone, Default)]
struct Tally {
    seen: u32,
}

#[node]
async fn parse(text: String) -> u32 {
    text.len() as u32
}

#[node]
async fn count(n: u32, tally: &mut Tally) -> u32 {
    tally.seen += 1;
    n
}

async fn go() {
    let runner = StromaRunner::quick();
    let pipeline = pipeline![parse, count];
    let _ = runner.run(&pipeline, "text".to_string()).await;
}

fn main() {
    let _ = go;
}
