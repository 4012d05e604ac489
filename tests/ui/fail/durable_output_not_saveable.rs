use stroma::prelude::*;

struct Page {
    body: String,
}

#[node]
async fn fetch(url: String) -> Page {
    Page { body: url }
}

#[node]
async fn measure(page: Page) -> usize {
    page.body.len()
}

async fn run(runner: StromaRunner) {
    // A plain run is fine: nothing is saved.
    let _ = runner.run(&pipeline![fetch, measure], "x".to_string()).await;
    let _ = runner
        .run_durable(&pipeline![fetch, measure], "x".to_string())
        .await;
}

fn main() {
    let _ = run;
}
