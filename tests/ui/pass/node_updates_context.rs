use stroma::prelude::*;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Review {
    is_clear: bool,
    iteration_count: u32,
}

#[derive(Serialize)]
struct Verdict {
    is_clear: bool,
}

// With the typed model.
#[node(input = String, output = Verdict, updates_context)]
async fn judge(text: String, model: &mut PipelineContext<Review>) -> Verdict {
    model.iteration_count += 1;
    Verdict {
        is_clear: !text.is_empty(),
    }
}

// With any model, read-only: only the output changes it.
#[node(updates_context)]
async fn approve(_text: String, model: &Review) -> Verdict {
    Verdict {
        is_clear: model.iteration_count == 0,
    }
}

fn assert_node<N: Node<Input = String, Output = Verdict>>(_: N) {}

fn main() {
    assert_node(judge);
    assert_node(approve);
    let runner = StromaRunner::quick();
    let run = async {
        let typed = runner
            .run_with_model(
                &pipeline![judge],
                "ok".to_string(),
                PipelineContext::new(Review::default()),
            )
            .await
            .unwrap();
        let plain = runner
            .run_with_model(&pipeline![approve], "ok".to_string(), Review::default())
            .await
            .unwrap();
        (typed.model, plain.model)
    };
    let (typed, plain) = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run);
    assert!(typed.is_clear);
    assert_eq!(typed.iteration_count, 1);
    assert!(plain.is_clear);
}
