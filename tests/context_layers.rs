//! Context layers through the public API: entries that combine across
//! branches (`Combine`, `Sum`, `Append`), and runs that share the runner's
//! execution context instead of copying it, checked by counting the bytes a
//! run allocates.
//!
//! How branches' layers merge is tested beside the code, in
//! `stroma-core/src/context.rs`: it is crate-internal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use stroma::prelude::*;
use stroma::{Append, Combine, Runnable, Sum, current_execution_context};
use tokio::runtime::{Builder, Runtime};

/// Counts the bytes allocated by the thread that turned counting on.
struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` with no destructor: reading it never allocates, so the allocator can use it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count(bytes: usize) {
    if COUNTING.with(Cell::get) {
        BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated on this thread while `f` runs. One measurement at a
/// time: the counter is process-wide.
fn bytes_of<R>(f: impl FnOnce() -> R) -> (usize, R) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = BYTES.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (BYTES.load(Ordering::Relaxed) - before, result)
}

/// 4 MiB of text.
const BLOB: usize = 4 << 20;

/// Enriches the run's execution context, then reads the runner's blob from
/// it and from the task-local: the length, or 0 when either misses it.
#[node]
async fn enrich_and_read(x: u64, ctx: &Context) -> u64 {
    ctx.enrich([("stage", "read")]);
    let blob_len = |execution: &ExecutionContext| {
        execution
            .get("blob")
            .and_then(|v| v.as_str())
            .map_or(0, str::len)
    };
    let in_context = blob_len(&ctx.execution());
    let current = current_execution_context().map_or(0, |c| blob_len(&c));
    x + in_context.min(current) as u64
}

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// Bytes one run allocates, after an uncounted first run (one-time set-up
/// stays out), checking what it returned.
fn bytes_per_run<F: Future<Output = u64>>(rt: &Runtime, run: impl Fn() -> F) -> usize {
    let _tokio = rt.enter();
    // `futures`' executor polls the run in place, allocating nothing of its own.
    let expected = futures::executor::block_on(run());
    let (bytes, output) = bytes_of(|| futures::executor::block_on(run()));
    assert_eq!(output, expected);
    bytes
}

/// Bytes per run of `pipeline` on `runner`: plain, with a per-run execution
/// context, and inside an `ExecutionContext::scope`.
fn bytes_per_run_three_ways<P>(rt: &Runtime, runner: &StromaRunner, pipeline: &P) -> [usize; 3]
where
    P: Runnable<(), Input = u64, Output = u64>,
{
    let final_state = |result: Result<RunResult<u64>, RunError>| {
        result.expect("the node never fails").final_state
    };
    let plain = bytes_per_run(rt, || async { final_state(runner.run(pipeline, 0).await) });
    let per_run = bytes_per_run(rt, || async {
        let options =
            RunOptions::new().execution_context(ExecutionContext::of([("user_id", "u-1")]));
        final_state(runner.run_with(pipeline, 0, options).await)
    });
    let scoped = bytes_per_run(rt, || async {
        let outer = ExecutionContext::of([("region", "eu")]);
        ExecutionContext::scope(outer, async { final_state(runner.run(pipeline, 0).await) }).await
    });
    [plain, per_run, scoped]
}

#[test]
fn a_run_shares_the_runners_execution_context_however_large() {
    let rt = runtime();
    let lean = RunConfig::default().records(false);
    let small = StromaRunner::new(
        lean.clone()
            .with_execution_context(ExecutionContext::of([("tenant_id", "acme")])),
    );
    let large = StromaRunner::new(lean.with_execution_context(ExecutionContext::of([
        ("tenant_id", "acme".to_owned()),
        ("blob", "x".repeat(BLOB)),
    ])));
    let pipeline = pipeline![enrich_and_read];

    // The nodes see the blob, in the run's context and task-locally.
    let result = rt.block_on(large.run(&pipeline, 0)).expect("never fails");
    assert_eq!(result.final_state, BLOB as u64);

    let small_bytes = bytes_per_run_three_ways(&rt, &small, &pipeline);
    let large_bytes = bytes_per_run_three_ways(&rt, &large, &pipeline);
    for (how, small, large) in [
        ("plain", small_bytes[0], large_bytes[0]),
        ("per-run context", small_bytes[1], large_bytes[1]),
        ("in a scope", small_bytes[2], large_bytes[2]),
    ] {
        println!("{how}: {small} bytes per run with a small runner context, {large} with 4 MiB");
        // The same run over a 4 MiB context costs exactly what it costs
        // over a small one: neither is copied, the run's context shares it.
        assert_eq!(
            large, small,
            "{how}: bytes per run over 4 MiB against over a small context"
        );
    }
}

#[test]
fn sums_combine_the_differences_and_appends_the_additions() {
    let base = Sum(10_i64);
    let merged = Sum::combine(Some(&base), &[&Sum(11), &Sum(7), &Sum(10)]).unwrap();
    assert_eq!(merged.0, 8);
    let fresh = Sum::combine(None, &[&Sum(1.5_f64), &Sum(2.0)]).unwrap();
    assert_eq!(fresh.0, 3.5);

    let log = Append(vec!["start"]);
    let merged = Append::combine(
        Some(&log),
        &[
            &Append(vec!["start", "a"]),
            &Append(vec!["start", "b", "c"]),
        ],
    )
    .unwrap();
    assert_eq!(merged.0, ["start", "a", "b", "c"]);
    let shrunk = Append::combine(Some(&log), &[&Append(vec![]), &Append(vec!["start"])]);
    let message = shrunk.expect_err("a branch removed an item");
    assert!(message.contains("may only add"), "{message}");
}

/// The highest score any branch reached: a `Combine` of one's own.
#[derive(Debug, Clone, PartialEq)]
struct Best(u32);

impl Combine for Best {
    fn combine(base: Option<&Self>, branches: &[&Self]) -> Result<Self, String> {
        let start = base.map_or(0, |b| b.0);
        Ok(Best(branches.iter().map(|b| b.0).fold(start, u32::max)))
    }
}

#[test]
fn combined_entries_read_and_change_like_named_ones() {
    let ctx = Context::new()
        .with_combined("hits", Sum(0_u64))
        .with_combined("best", Best(3));
    ctx.update_named("hits", |h: &mut Sum<u64>| h.0 += 2)
        .unwrap();
    ctx.insert_combined("log", Append(vec!["one".to_owned()]));
    assert_eq!(ctx.get_named::<Sum<u64>>("hits").unwrap().0, 2);
    assert_eq!(*ctx.get_named::<Best>("best").unwrap(), Best(3));
    assert!(ctx.contains_named("log"));
    let err = ctx.get_named::<u64>("hits").unwrap_err();
    assert!(err.to_string().contains("Sum<u64>"), "{err}");
    assert_eq!(
        Best::combine(Some(&Best(3)), &[&Best(1), &Best(9)]),
        Ok(Best(9))
    );
}

#[test]
fn combined_entries_given_to_a_runner_reach_every_run() {
    #[node]
    async fn count_hit(x: u64, ctx: &Context) -> Result<u64, NodeError> {
        Ok(ctx.update_named("hits", |h: &mut Sum<u64>| {
            h.0 += 1;
            h.0
        })? + x)
    }

    let rt = runtime();
    let runner =
        StromaRunner::quick().with_context(Context::new().with_combined("hits", Sum(0_u64)));
    let pipeline = pipeline![count_hit, count_hit];
    for _ in 0..2 {
        // Each run counts from the runner's value: runs never share writes.
        let result = rt
            .block_on(runner.run(&pipeline, 0))
            .expect("hits is there");
        assert_eq!(result.final_state, 3);
        assert_eq!(result.context.get_named::<Sum<u64>>("hits").unwrap().0, 2);
    }
}
