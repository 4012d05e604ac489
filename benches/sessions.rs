//! Sessions and phases: what reading a node's session view costs, and what
//! a phase adds to a run.
//!
//! `session/items`: a run of one node that reads `ctx.session().items()` on
//! a memory session of 100 items, beside a run of the same node that does
//! not read: the difference is the read.
//!
//! `phase`: a run of one node inside `phase(.., true, ..)` (its own session,
//! copied from the run's 100 items) and inside `phase(.., false, ..)` (a
//! read-only copy), beside the node alone.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use stroma::prelude::*;
use stroma::{MemorySession, phase};
use tokio::runtime::Builder;

#[path = "support/mod.rs"]
mod support;
use support::bench_async;

#[node]
async fn read_history(n: usize, ctx: &Context) -> Result<usize, NodeError> {
    Ok(n + ctx.session().items().await?.len())
}

#[node]
async fn read_nothing(n: usize, ctx: &Context) -> usize {
    let _ = ctx;
    n + 100
}

fn sessions(c: &mut Criterion) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let items = (0..100)
        .map(|i| json!({"role": "user", "content": format!("message {i}")}))
        .collect();
    let runner = StromaRunner::new(RunConfig::default().records(false))
        .with_session(MemorySession::with_items(items));
    rt.block_on(async {
        assert_eq!(runner.run(&read_history, 0).await.unwrap().final_state, 100);
    });

    let mut group = c.benchmark_group("session/items 100");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    bench_async(&mut group, &rt, "run, node reads nothing", || async {
        runner
            .run(&read_nothing, black_box(0))
            .await
            .unwrap()
            .final_state
    });
    bench_async(
        &mut group,
        &rt,
        "run, node reads ctx.session().items()",
        || async {
            runner
                .run(&read_history, black_box(0))
                .await
                .unwrap()
                .final_state
        },
    );
    group.finish();

    let sharing = phase("p", true, read_nothing);
    let history = phase("p", false, read_nothing);
    let mut group = c.benchmark_group("phase");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    bench_async(&mut group, &rt, "node alone", || async {
        runner
            .run(&read_nothing, black_box(0))
            .await
            .unwrap()
            .final_state
    });
    bench_async(&mut group, &rt, "in a sharing phase", || async {
        runner
            .run(&sharing, black_box(0))
            .await
            .unwrap()
            .final_state
    });
    bench_async(&mut group, &rt, "in a history phase", || async {
        runner
            .run(&history, black_box(0))
            .await
            .unwrap()
            .final_state
    });
    group.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
