//! Durable runs: what checkpointing costs per node.
//!
//! One group, `durable_chain10`: a chain of 10 distinct nodes (`s0`..`s9`,
//! each adding one to `id` and 1.0 to `score` of a small struct
//! `Item { id, name, score }`, the same shape as the LangGraph peer in
//! `bench-peers/langgraph_checkpoint.py`), run with `StromaRunner::quick()`:
//!
//! - `plain_run`: `runner.run(..)`, no store: the baseline;
//! - `memory_sync`: `run_durable` on a `MemoryStore`, `Durability::Sync`;
//! - `sqlite_full_{sync,async,exit}`: `run_durable` on a `SqliteStore` (a
//!   file in a temp dir, WAL, `synchronous = FULL`: `sync_on_commit(true)`)
//!   with `Durability::Sync`, `Async` and `Exit`;
//! - `sqlite_normal_{sync,async}`: the same with `sync_on_commit(false)`
//!   (`synchronous = NORMAL`, the default).
//!
//! Each durable id has its own store (a fresh SQLite file per id), created
//! once and reused by every run; every run is a new durable run. Before
//! every 500 timed runs (outside the timing) the store is emptied with
//! `runner.store().prune(Duration::ZERO, None)`, so every mode and every
//! sample runs against a store of at most 500 runs (letting the memory
//! store grow to the tens of thousands of runs of a sample made its
//! figures jump between two levels). The cost per checkpointed node is
//! `(mode - plain_run) / 10`; it includes each run's fixed costs (creating
//! the run with its lease and start checkpoint, one commit; the end
//! checkpoint with the lease's release, one more), shared out over the 10
//! nodes: 12 commits per run.
//!
//! Run it with `cargo bench --bench durable` (about a minute; the modes that
//! wait for the disk on every commit are the slow ones).

use std::future::Future;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use stroma::prelude::*;
use tokio::runtime::Runtime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    score: f64,
}

#[node]
async fn step(x: Item) -> Item {
    Item {
        id: x.id + 1,
        score: x.score + 1.0,
        ..x
    }
}

fn item() -> Item {
    Item {
        id: 0,
        name: "widget".to_string(),
        score: 0.5,
    }
}

/// The most runs a store holds while timed: it is emptied (outside the
/// timing) before every this many runs.
const PRUNE_EVERY: u64 = 500;

/// Times `iters` awaits of `run()` inside one `block_on`. With `store`,
/// empties that runner's store before every [`PRUNE_EVERY`] runs, outside
/// the timing.
fn bench_runs<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    store: Option<&StromaRunner>,
    run: F,
) where
    F: Fn() -> Fut,
    Fut: Future,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut elapsed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if let Some(runner) = store {
                        runner.store().prune(Duration::ZERO, None).await.unwrap();
                    }
                    let chunk = left.min(PRUNE_EVERY);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        black_box(run().await);
                    }
                    elapsed += start.elapsed();
                    left -= chunk;
                }
                elapsed
            })
        })
    });
}

fn runner(store: impl RunStore + 'static, mode: Durability) -> StromaRunner {
    StromaRunner::quick()
        .with_store(store)
        .with_durability(mode)
}

async fn sqlite(dir: &Path, name: &str, sync_on_commit: bool) -> SqliteStore {
    SqliteStore::open(dir.join(format!("{name}.sqlite")))
        .await
        .unwrap()
        .sync_on_commit(sync_on_commit)
        .await
        .unwrap()
}

fn durable(c: &mut Criterion) {
    // Multi-thread: the SQLite store works on the blocking pool.
    let rt = Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("stroma-bench-durable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let p = pipeline![
        step.named("s0"),
        step.named("s1"),
        step.named("s2"),
        step.named("s3"),
        step.named("s4"),
        step.named("s5"),
        step.named("s6"),
        step.named("s7"),
        step.named("s8"),
        step.named("s9"),
    ];
    let expected = Item {
        id: 10,
        name: "widget".to_string(),
        score: 10.5,
    };

    let plain = StromaRunner::quick();
    let durable: Vec<(&str, StromaRunner)> = rt.block_on(async {
        vec![
            ("memory_sync", runner(MemoryStore::new(), Durability::Sync)),
            (
                "sqlite_full_sync",
                runner(sqlite(&dir, "full_sync", true).await, Durability::Sync),
            ),
            (
                "sqlite_full_async",
                runner(sqlite(&dir, "full_async", true).await, Durability::Async),
            ),
            (
                "sqlite_full_exit",
                runner(sqlite(&dir, "full_exit", true).await, Durability::Exit),
            ),
            (
                "sqlite_normal_sync",
                runner(sqlite(&dir, "normal_sync", false).await, Durability::Sync),
            ),
            (
                "sqlite_normal_async",
                runner(sqlite(&dir, "normal_async", false).await, Durability::Async),
            ),
        ]
    });

    // Every runner gives the right answer; say how many checkpoints a run
    // of each mode saves.
    rt.block_on(async {
        assert_eq!(plain.run(&p, item()).await.unwrap().final_state, expected);
        for (id, runner) in &durable {
            let done = runner.run_durable(&p, item()).await.unwrap();
            assert_eq!(done.final_state, expected);
            let run_id = done.run_id.to_string();
            let saved = runner.store().get(&run_id).await.unwrap();
            let saved = saved.expect("the run was saved");
            assert_eq!(saved.completed.len(), 10, "{id}: {:?}", saved.completed);
            let store = runner.store().raw().unwrap();
            let checkpoints = store.checkpoints(&run_id).await.unwrap().len();
            eprintln!("durable_chain10/{id}: {checkpoints} checkpoints per run");
            // What each sample batch starts with: an empty store.
            runner.store().prune(Duration::ZERO, None).await.unwrap();
            assert!(runner.store().list(None).await.unwrap().is_empty(), "{id}");
        }
    });

    let mut group = c.benchmark_group("durable_chain10");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    bench_runs(&mut group, &rt, "plain_run", None, || async {
        plain.run(&p, item()).await.unwrap().final_state
    });
    for (id, runner) in &durable {
        bench_runs(&mut group, &rt, id, Some(runner), || async {
            runner.run_durable(&p, item()).await.unwrap().final_state
        });
    }
    group.finish();

    drop(durable);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, durable);
criterion_main!(benches);
