use stroma::prelude::*;

#[derive(Clone)]
struct Ledger {
    total: u32,
}

#[node]
async fn record(n: u32, ledger: &mut Ledger) -> u32 {
    ledger.total += n;
    n
}

async fn go() {
    let runner = StromaRunner::quick();
    let _ = runner
        .run_with_model(&record.isolated(), 1, Ledger { total: 0 })
        .await;
}

fn main() {
    let _ = go;
}
