//! A chain of N trivial nodes, N = 10 and N = 100.
//!
//! `chain/N`: the same async fns awaited by hand (the limit), stroma with
//! records off, and stroma with records on (the default).
//!
//! `middleware/N`: stroma with records off and no middleware, one
//! pass-through middleware, and the built-in `TimingMiddleware`, so the
//! differences are what middleware costs.
//!
//! Throughput is N elements, so criterion reports time per node beside time
//! per run.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use stroma::prelude::*;
use stroma::{Middleware, NodeTimings, Runnable, TimingMiddleware};
use tokio::runtime::{Builder, Runtime};

mod support;
use support::bench_async;

#[path = "support/chains.rs"]
mod chains;
use chains::{hand_10, hand_100, pipeline_10, pipeline_100};

/// A middleware with the default hooks: each only calls `next`.
struct PassThrough;

impl Middleware for PassThrough {}

/// The stroma runner with nothing on: no records, no middleware. Shared by
/// both groups so their "lean" cases are the same configuration.
fn lean_runner() -> StromaRunner {
    StromaRunner::new(RunConfig::default().records(false))
}

/// Times runs of `pipeline` on `runner`. The whole `RunResult` is dropped
/// inside the timed loop: freeing the records is part of what a run costs.
fn bench_runner<P>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    runner: &StromaRunner,
    pipeline: &P,
) where
    P: Runnable<(), Input = u64, Output = u64>,
{
    bench_async(group, rt, id, || async move {
        let result = runner.run(pipeline, black_box(0)).await;
        result.map_or(0, |result| result.final_state)
    });
}

fn group<H, HFut, P>(c: &mut Criterion, rt: &Runtime, n: u64, hand: H, pipeline: P)
where
    H: Fn(u64) -> HFut,
    HFut: Future<Output = u64>,
    P: Runnable<(), Input = u64, Output = u64>,
{
    let lean = lean_runner();
    let recording = StromaRunner::quick();

    // Checked once, outside the timed loops: all three compute the same thing.
    rt.block_on(async {
        assert_eq!(hand(0).await, n);
        let result = lean
            .run(&pipeline, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!((result.final_state, result.records().len()), (n, 0));
        let result = recording
            .run(&pipeline, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!((result.final_state, result.records().len() as u64), (n, n));
    });

    let mut group = c.benchmark_group(format!("chain/{n}"));
    group
        .throughput(Throughput::Elements(n))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    bench_async(&mut group, rt, "hand-written", || hand(black_box(0)));
    for (id, runner) in [
        ("stroma records off", &lean),
        ("stroma records on", &recording),
    ] {
        bench_runner(&mut group, rt, id, runner, &pipeline);
    }
    group.finish();
}

fn middleware_group<P>(c: &mut Criterion, rt: &Runtime, n: u64, pipeline: P)
where
    P: Runnable<(), Input = u64, Output = u64>,
{
    // Records stay off in all three, so only middleware separates them.
    // "none" is the same configuration as "stroma records off" in `chain/N`,
    // so the two should agree (ratio ~1.0): "none" is the baseline the
    // middleware cases are measured against, and what an empty middleware
    // list costs is in both, visible beside "hand-written".
    let none = lean_runner();
    let pass_through = lean_runner().with_middleware(PassThrough);
    let timing = lean_runner().with_middleware(TimingMiddleware);

    // Checked once, outside the timed loops.
    rt.block_on(async {
        for runner in [&none, &pass_through] {
            let result = runner
                .run(&pipeline, 0)
                .await
                .expect("trivial nodes never fail");
            assert_eq!((result.final_state, result.records().len()), (n, 0));
            assert!(result.context.get::<NodeTimings>().is_none());
        }
        let result = timing
            .run(&pipeline, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!((result.final_state, result.records().len()), (n, 0));
        let timings = result.context.get::<NodeTimings>().expect("timings kept");
        assert_eq!(timings.0.len() as u64, n);
    });

    let mut group = c.benchmark_group(format!("middleware/{n}"));
    group
        .throughput(Throughput::Elements(n))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (id, runner) in [
        ("none", &none),
        ("pass-through", &pass_through),
        ("timing", &timing),
    ] {
        bench_runner(&mut group, rt, id, runner, &pipeline);
    }
    group.finish();
}

fn chains(c: &mut Criterion) {
    let rt = Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    group(c, &rt, 10, hand_10, pipeline_10());
    group(c, &rt, 100, hand_100, pipeline_100());
    middleware_group(c, &rt, 10, pipeline_10());
    middleware_group(c, &rt, 100, pipeline_100());
}

criterion_group!(benches, chains);
criterion_main!(benches);
