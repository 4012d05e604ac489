use stroma::prelude::*;

#[node]
async fn parse(text: String) -> Result<u32, NodeError> {
    Ok(text.trim().parse()?)
}

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

fn assert_shareable<T: Clone + Send + Sync + 'static>(_: &T) {}

// A pipeline can be cloned, sent to other tasks and run any number of times.
fn main() {
    let pipeline = pipeline![parse, double];
    assert_shareable(&pipeline);
    assert_shareable(&pipeline![pipeline.clone(), double]);

    let runner = StromaRunner::quick();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for text in ["1", "2"] {
        let result = rt
            .block_on(runner.run(&pipeline, text.to_string()))
            .unwrap();
        assert_eq!(result.final_state, text.parse::<u32>().unwrap() * 2);
    }
}
