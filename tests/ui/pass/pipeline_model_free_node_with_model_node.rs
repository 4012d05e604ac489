use stroma::prelude::*;

#[derive(Clone, Default)]
struct Tally {
    seen: u32,
}

#[node]
async fn parse(text: String) -> Result<u32, NodeError> {
    Ok(text.trim().parse()?)
}

#[node]
async fn count(n: u32, tally: &mut Tally) -> u32 {
    tally.seen += 1;
    n
}

#[node]
async fn render(n: u32, ctx: &Context) -> String {
    let _ = ctx;
    n.to_string()
}

// Nodes without a model parameter run with whatever model the run has.
fn main() {
    let runner = StromaRunner::quick();
    let pipeline = pipeline![parse, count, render];
    let run = runner.run_with_model(&pipeline, "5".to_string(), Tally::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = rt.block_on(run).unwrap();
    assert_eq!(result.final_state, "5");
    assert_eq!(result.model.seen, 1);
}
