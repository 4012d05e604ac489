use stroma::prelude::*;

#[derive(Clone, Default, Serialize, Deserialize)]
struct Review {
    is_clear: bool,
}

#[derive(Serialize)]
struct Verdict {
    is_clear: bool,
}

#[node(updates_context = true)]
async fn judge(text: String, _model: &Review) -> Verdict {
    Verdict {
        is_clear: !text.is_empty(),
    }
}

fn main() {
    let _ = judge;
}
