use stroma::prelude::*;

#[derive(Clone, Default)]
struct Tally {
    seen: u32,
}

#[node]
async fn count(n: u32, model: &mut Tally) -> u32 {
    model.seen += 1;
    n
}

fn assert_node<N: Node<Input = u32, Output = u32>>(_: N) {}

fn main() {
    assert_node(count);
    let runner = StromaRunner::quick();
    let pipeline = pipeline![count];
    let run = runner.run_with_model(&pipeline, 7, Tally::default());
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run)
        .unwrap();
    assert_eq!(result.final_state, 7);
    assert_eq!(result.model.seen, 1);
}
