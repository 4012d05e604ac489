use stroma::prelude::*;

#[node]
async fn shorten(text: String) -> String {
    text.chars().skip(1).collect()
}

#[node]
async fn trim(text: String) -> String {
    text.trim().to_string()
}

#[node]
async fn measure(text: String) -> usize {
    text.len()
}

fn assert_node<N: Node<Input = String, Output = String>>(_: N) {}

fn main() {
    // Over a single node, with every option.
    let single = loop_until(shorten, |text: &String, _model: &()| text.len() < 3)
        .max_loops(5)
        .named("shorten")
        .return_last_on_cap();
    assert_node(single.clone());

    // Over a pipeline.
    let over_pipeline = loop_until(pipeline![trim, shorten], |out, _model: &()| out.is_empty());
    assert_node(over_pipeline);

    // Nested inside a pipeline.
    let nested = pipeline![
        trim,
        loop_until(shorten, |out, _model: &()| out.len() < 3).max_loops(3),
        measure
    ];

    let runner = StromaRunner::quick();
    let run = async {
        let last = runner.run(&single, "abcdefgh".to_string()).await.unwrap();
        let len = runner.run(&nested, "  abcdef  ".to_string()).await;
        (last.final_state, len)
    };
    let (last, len) = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run);
    assert_eq!(last, "fgh");
    // Three iterations leave "def", not shorter than 3: without `return_last_on_cap`, the cap fails.
    assert!(len.is_err());
}
