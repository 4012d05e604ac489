use stroma::prelude::*;

#[derive(Serialize)]
struct Verdict {
    is_clear: bool,
}

#[node]
async fn load(path: String) -> String {
    path
}

// `updates_context` without a model parameter.
#[node(updates_context)]
async fn judge(text: String) -> Verdict {
    Verdict {
        is_clear: !text.is_empty(),
    }
}

#[node]
async fn report(verdict: Verdict) -> String {
    format!("clear: {}", verdict.is_clear)
}

async fn review() {
    let p = pipeline![load, judge, report];
    // Using it raises nothing more.
    let _ = StromaRunner::quick().run(&p, "draft.md".to_string()).await;
}

fn main() {
    let _ = review();
}
