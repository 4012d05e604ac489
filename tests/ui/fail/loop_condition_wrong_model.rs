use stroma::prelude::*;

#[derive(Clone, Default)]
struct Draft {
    is_clear: bool,
}

#[derive(Clone, Default)]
struct Budget {
    spent: u32,
}

#[node]
async fn refine(text: String) -> String {
    text
}

async fn go() {
    let runner = StromaRunner::quick();
    let refinement = loop_until(refine, |_text: &String, draft: &Draft| draft.is_clear);
    let _ = runner
        .run_with_model(&refinement, String::new(), Budget::default())
        .await;
}

fn main() {
    let _ = go;
}
