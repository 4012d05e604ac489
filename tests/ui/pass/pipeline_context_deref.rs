use stroma::prelude::*;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Review {
    is_clear: bool,
    iteration_count: u32,
}

#[node]
async fn refine(text: String, model: &mut PipelineContext<Review>) -> String {
    // The user's fields, through `DerefMut`, beside the built-ins.
    model.iteration_count += 1;
    model.is_clear = text.len() < 4;
    model
        .scratchpad
        .insert("last".into(), serde_json::Value::from(text.clone()));
    text
}

#[node]
async fn report(text: String, model: &PipelineContext<Review>) -> String {
    // Through `Deref`.
    format!("{text}: {} iteration(s)", model.iteration_count)
}

fn main() {
    let runner = StromaRunner::quick();
    let pipeline = pipeline![refine, report];
    let run = runner.run_with_model(
        &pipeline,
        "abc".to_string(),
        PipelineContext::new(Review::default()),
    );
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run)
        .unwrap();
    assert_eq!(result.final_state, "abc: 1 iteration(s)");
    assert!(result.model.is_clear);
    assert_eq!(result.model.iteration_count, 1);
}
