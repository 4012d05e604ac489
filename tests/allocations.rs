//! Heap allocations of one run of a plain chain, counted exactly by a global
//! allocator, since counts are exact where times are noisy.
//!
//! Only the thread that turns counting on is counted, so tests running in
//! parallel on other threads do not disturb the figures. Each run is driven
//! by a current-thread runtime built before counting starts: the run happens
//! on the counted thread and the runtime's own setup is not in the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use stroma::prelude::*;
use stroma::{NodeRecord, RunsWith};
use tokio::runtime::{Builder, Runtime};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` with no destructor: reading it never allocates, so the allocator can use it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count(bytes: usize) {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

    // A growth is a heap allocation too: counted, so a buffer that grows per node shows.
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

/// Allocations and bytes requested on this thread while `f` runs.
///
/// The counters are process-wide, but only threads inside `measure` add to
/// them; the lock keeps two such threads from overlapping.
fn measure<R>(f: impl FnOnce() -> R) -> (usize, usize, R) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (allocations, bytes) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (
        ALLOCATIONS.load(Ordering::Relaxed) - allocations,
        BYTES.load(Ordering::Relaxed) - bytes,
        result,
    )
}

#[node]
async fn inc(x: u64) -> u64 {
    x + 1
}

/// Defines, from one list of nodes, the hand-written chain `$hand` and the
/// pipeline constructor `$pipeline`.
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

chain!(hand_1, pipeline_1: inc);

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

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// What one run of `pipeline` allocates, counted after a first, uncounted run
/// (one-time setup, such as tracing registering its callsites, stays out).
fn run_allocations<P>(
    rt: &Runtime,
    runner: &StromaRunner,
    pipeline: &P,
    nodes: u64,
) -> (usize, usize)
where
    P: RunsWith<(), Input = u64, Output = u64>,
{
    // `futures`' executor polls the run in place; tokio's `block_on` would box
    // a future this large in debug builds, and that box is not the run's.
    let _tokio = rt.enter();
    let run =
        || futures::executor::block_on(runner.run(pipeline, 0)).expect("trivial nodes never fail");
    drop(run());
    let (allocations, bytes, result) = measure(run);
    assert_eq!(result.final_state, nodes);
    let expected_records = if runner.config().keeps_records() {
        nodes
    } else {
        0
    };
    assert_eq!(result.records.len() as u64, expected_records);
    (allocations, bytes)
}

#[test]
fn hand_written_chains_allocate_nothing() {
    let rt = runtime();
    // A first `block_on` sets up the thread's runtime state; not counted.
    rt.block_on(hand_1(0));
    for (n, (allocations, _, output)) in [
        (1, measure(|| rt.block_on(hand_1(0)))),
        (10, measure(|| rt.block_on(hand_10(0)))),
        (100, measure(|| rt.block_on(hand_100(0)))),
    ] {
        println!("hand-written, {n:>3} nodes: {allocations} allocations");
        assert_eq!(output, n);
        assert_eq!(allocations, 0, "the hand-written {n}-node chain allocated");
    }
}

#[test]
fn a_run_allocates_the_same_for_1_10_and_100_nodes_and_records_cost_one_buffer() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let recording = StromaRunner::quick();

    let off_1 = run_allocations(&rt, &lean, &pipeline_1(), 1);
    let off_10 = run_allocations(&rt, &lean, &pipeline_10(), 10);
    let off_100 = run_allocations(&rt, &lean, &pipeline_100(), 100);
    let on_1 = run_allocations(&rt, &recording, &pipeline_1(), 1);
    let on_10 = run_allocations(&rt, &recording, &pipeline_10(), 10);
    let on_100 = run_allocations(&rt, &recording, &pipeline_100(), 100);
    for (what, (allocations, bytes)) in [
        ("records off,   1 node ", off_1),
        ("records off,  10 nodes", off_10),
        ("records off, 100 nodes", off_100),
        ("records on,    1 node ", on_1),
        ("records on,   10 nodes", on_10),
        ("records on,  100 nodes", on_100),
    ] {
        println!("{what}: {allocations} allocations, {bytes} bytes");
    }

    // Records off: a run allocates the same whatever the chain's length: five
    // allocations, all made once when the run starts:
    // 1. the run's own writable context layer (`Context::for_run`);
    // 2. the cell holding the run's execution context, shared with nodes so
    //    an enrichment reaches later nodes;
    // 3-5. the execution context itself, which gains the run id as its
    //    correlation id: its `Arc`, its map's node and the id's text.
    assert_eq!(off_1.0, 5);
    assert_eq!(off_10, off_1);
    assert_eq!(off_100, off_1);

    // Records on: exactly one allocation more, whatever the length: the
    // record buffer, reserved once per run at the pipeline's node count, so
    // it never grows (a growth would count as a reallocation here).
    let record = std::mem::size_of::<NodeRecord>();
    for (nodes, off, on) in [
        (1, off_1, on_1),
        (10, off_10, on_10),
        (100, off_100, on_100),
    ] {
        assert_eq!(on.0, off.0 + 1, "records on, {nodes} nodes");
        assert_eq!(on.1, off.1 + nodes * record, "records on, {nodes} nodes");
    }
}
