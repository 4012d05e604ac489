//! A chain of N trivial nodes, N = 10 and N = 100, three ways in one group:
//! the same async fns awaited by hand (the limit), stroma with records off,
//! and stroma with records on (the default). Throughput is N elements, so
//! criterion reports time per node beside time per run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use stroma::RunsWith;
use stroma::prelude::*;
use tokio::runtime::{Builder, Runtime};

#[node]
async fn inc(x: u64) -> u64 {
    x + 1
}

/// Defines, from one list of nodes, the hand-written chain `$hand` and the
/// pipeline constructor `$pipeline`, so both run exactly the same nodes.
macro_rules! chain {
    ($hand:ident, $pipeline:ident: $($node:ident),+ $(,)?) => {
        async fn $hand(x: u64) -> u64 {
            $(let x = $node::call(x).await;)+
            x
        }

        fn $pipeline() -> impl RunsWith<(), Input = u64, Output = u64> {
            pipeline![$($node),+]
        }
    };
}

chain!(hand_10, pipeline_10: inc, inc, inc, inc, inc, inc, inc, inc, inc, inc);

chain!(hand_100, pipeline_100:
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
);

/// Times `iters` awaits of `run` inside one `block_on`, so the runtime's
/// per-`block_on` cost stays out of the per-node figures.
fn bench_async<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, id: &str, run: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(run(black_box(0)).await);
                }
                start.elapsed()
            })
        })
    });
}

fn group<H, HFut, P>(c: &mut Criterion, rt: &Runtime, n: u64, hand: H, pipeline: P)
where
    H: Fn(u64) -> HFut,
    HFut: Future<Output = u64>,
    P: RunsWith<(), Input = u64, Output = u64>,
{
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let recording = StromaRunner::quick();

    // Checked once, outside the timed loops: all three compute the same thing.
    rt.block_on(async {
        assert_eq!(hand(0).await, n);
        let result = lean
            .run(&pipeline, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!((result.final_state, result.records.len()), (n, 0));
        let result = recording
            .run(&pipeline, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!((result.final_state, result.records.len() as u64), (n, n));
    });

    let mut group = c.benchmark_group(format!("chain/{n}"));
    group
        .throughput(Throughput::Elements(n))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    bench_async(&mut group, rt, "hand-written", &hand);
    // The whole `RunResult` is dropped inside the timed loop: freeing the
    // records is part of what a run costs.
    for (id, runner) in [
        ("stroma records off", &lean),
        ("stroma records on", &recording),
    ] {
        bench_async(&mut group, rt, id, |x| {
            let pipeline = &pipeline;
            async move {
                let result = runner.run(pipeline, x).await;
                result.map_or(0, |result| result.final_state)
            }
        });
    }
    group.finish();
}

fn chains(c: &mut Criterion) {
    let rt = Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    group(c, &rt, 10, hand_10, pipeline_10());
    group(c, &rt, 100, hand_100, pipeline_100());
}

criterion_group!(benches, chains);
criterion_main!(benches);
