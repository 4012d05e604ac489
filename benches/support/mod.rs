//! What the benches share (also the peer benches in `bench-peers/`).

use std::future::Future;
use std::hint::black_box;
use std::time::Instant;

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use tokio::runtime::Runtime;

/// Times `iters` awaits of `run()` inside one `block_on`, so the runtime's
/// per-`block_on` cost stays out of the figures; every output is kept from
/// being optimized away.
pub fn bench_async<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, id: &str, run: F)
where
    F: Fn() -> Fut,
    Fut: Future,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(run().await);
                }
                start.elapsed()
            })
        })
    });
}
