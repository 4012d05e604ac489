use stroma::prelude::*;

#[derive(Clone, Default)]
struct Counter {
    n: u32,
}

#[node]
async fn bump(x: u32, counter: &mut Counter) -> u32 {
    counter.n += 1;
    x + counter.n
}

async fn run(runner: StromaRunner) {
    let options = RunOptions::new().model(Counter::default());
    let _ = runner.run_durable_with(&pipeline![bump], 1, options).await;
}

fn main() {
    let _ = run;
}
