use stroma::prelude::*;

struct Limits {
    max: u32,
}

#[node]
async fn clamp(n: u32, limits: &Limits) -> u32 {
    n.min(limits.max)
}

fn assert_node<N: Node<Input = u32, Output = u32>>(_: N) {}

fn main() {
    assert_node(clamp);
    let runner = StromaRunner::quick();
    let pipeline = pipeline![clamp];
    let run = runner.run_with_model(&pipeline, 70, Limits { max: 10 });
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run)
        .unwrap();
    assert_eq!(result.final_state, 10);
}
