use stroma::prelude::*;

#[derive(Serialize)]
struct Verdict {
    is_clear: bool,
}

#[node(updates_context)]
async fn judge(text: String) -> Verdict {
    Verdict {
        is_clear: !text.is_empty(),
    }
}

fn main() {
    let _ = judge;
}
