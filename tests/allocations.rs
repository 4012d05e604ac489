//! Heap allocations of one run (plain chains, middleware, `parallel!`,
//! `loop_until`, `for_each`), counted exactly by a global allocator, since
//! counts are exact where times are noisy.
//!
//! Only the thread that turns counting on is counted, so tests running in
//! parallel on other threads do not disturb the figures. Each run is driven
//! by a current-thread runtime built before counting starts: the run happens
//! on the counted thread and the runtime's own setup is not in the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use stroma::prelude::*;
use stroma::{Middleware, Runnable};
use tokio::runtime::{Builder, Runtime};

/// What every run allocates when it starts, whatever its pipeline:
/// 1. its context's storage (`Context::for_run`), which also holds the
///    run's execution context and is what the run's task-local shares, so
///    an enrichment by a node reaches later nodes;
/// 2. its execution context, whose correlation id is the run id (kept as
///    the id; it becomes text only if something reads it);
/// 3. the run's future, boxed in the [`RunFuture`] every entry point
///    returns: a named type, so that a pipeline an entry point cannot run is
///    one compile error, at the call.
const RUN_OWN: usize = 3;

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

#[path = "../benches/support/chains.rs"]
mod chains;
use chains::{hand_1, hand_10, hand_100, inc, pipeline_1, pipeline_10, pipeline_100};

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// What one run of `pipeline` allocates (see [`per_run`]), checking its
/// output and its records.
fn run_allocations<P>(
    rt: &Runtime,
    runner: &StromaRunner,
    pipeline: &P,
    nodes: u64,
) -> (usize, usize)
where
    P: Runnable<(), Input = u64, Output = u64>,
{
    let expected_records = if runner.config().keeps_records() {
        nodes
    } else {
        0
    };
    per_run(
        rt,
        || 0,
        |x| runner.run(pipeline, x),
        |result| {
            let result = result.expect("trivial nodes never fail");
            assert_eq!(result.final_state, nodes);
            assert_eq!(result.records().len() as u64, expected_records);
        },
    )
}

/// What one run allocates, counted after a first, uncounted run (one-time
/// setup, such as tracing registering its callsites, stays out), then three
/// times, which must agree. `input` is made before counting starts, so only
/// the run's own allocations count; `check` looks at each run's outcome.
fn per_run<I, F>(
    rt: &Runtime,
    input: impl Fn() -> I,
    run: impl Fn(I) -> F,
    check: impl Fn(F::Output),
) -> (usize, usize)
where
    F: Future,
{
    // `futures`' executor polls the run in place; tokio's `block_on` would box
    // a future this large in debug builds, and that box is not the run's.
    let _tokio = rt.enter();
    check(futures::executor::block_on(run(input())));
    let counts: Vec<(usize, usize)> = (0..3)
        .map(|_| {
            let input = input();
            let (allocations, bytes, output) = measure(|| futures::executor::block_on(run(input)));
            check(output);
            (allocations, bytes)
        })
        .collect();
    assert!(
        counts.iter().all(|c| *c == counts[0]),
        "runs allocated differently: {counts:?}"
    );
    counts[0]
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
    let recording = StromaRunner::new(RunConfig::default().results(false));
    let keeping = StromaRunner::quick();

    let off_1 = run_allocations(&rt, &lean, &pipeline_1(), 1);
    let off_10 = run_allocations(&rt, &lean, &pipeline_10(), 10);
    let off_100 = run_allocations(&rt, &lean, &pipeline_100(), 100);
    let on_1 = run_allocations(&rt, &recording, &pipeline_1(), 1);
    let on_10 = run_allocations(&rt, &recording, &pipeline_10(), 10);
    let on_100 = run_allocations(&rt, &recording, &pipeline_100(), 100);
    let kept_1 = run_allocations(&rt, &keeping, &pipeline_1(), 1);
    let kept_10 = run_allocations(&rt, &keeping, &pipeline_10(), 10);
    let kept_100 = run_allocations(&rt, &keeping, &pipeline_100(), 100);
    for (what, (allocations, bytes)) in [
        ("records off,   1 node ", off_1),
        ("records off,  10 nodes", off_10),
        ("records off, 100 nodes", off_100),
        ("records on,    1 node ", on_1),
        ("records on,   10 nodes", on_10),
        ("records on,  100 nodes", on_100),
        ("kept outputs,  1 node ", kept_1),
        ("kept outputs, 10 nodes", kept_10),
        ("kept outputs,100 nodes", kept_100),
    ] {
        println!("{what}: {allocations} allocations, {bytes} bytes");
    }

    // Records off: a run allocates as often whatever the chain's length: the
    // run's own `RUN_OWN`, made once when it starts. Only the boxed future
    // is larger for a longer chain, and by a few bytes, not per node's state:
    // it holds the state of the node running.
    assert_eq!(off_1.0, RUN_OWN);
    assert_eq!(off_10.0, off_1.0);
    assert_eq!(off_100.0, off_1.0);
    assert!(off_100.1 - off_1.1 < 128, "{off_1:?} then {off_100:?}");

    // Records on: exactly one allocation more, whatever the length: the
    // entry buffer, reserved once per run at the pipeline's node count, so
    // it never grows (a growth would count as a reallocation here). An
    // entry's size is the same for every node.
    let entry = on_1.1 - off_1.1;
    for (nodes, off, on) in [
        (1, off_1, on_1),
        (10, off_10, on_10),
        (100, off_100, on_100),
    ] {
        assert_eq!(on.0, off.0 + 1, "records on, {nodes} nodes");
        assert_eq!(on.1, off.1 + nodes * entry, "records on, {nodes} nodes");
    }

    // Outputs kept too (the default): nothing more. A copy of each
    // node's `u64` is kept in place in its entry, which has room for
    // three words; a larger output would be kept behind an `Arc`.
    assert_eq!(kept_1, on_1);
    assert_eq!(kept_10, on_10);
    assert_eq!(kept_100, on_100);
}

/// A middleware with both hooks left as they are: it only calls `next`.
struct PassThrough;

impl Middleware for PassThrough {}

#[test]
fn a_pass_through_middleware_costs_two_allocations_per_node_and_two_per_run() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let wrapped = StromaRunner::new(
        RunConfig::default()
            .records(false)
            .with_middleware(PassThrough),
    );
    let bare_10 = run_allocations(&rt, &lean, &pipeline_10(), 10);
    let bare_100 = run_allocations(&rt, &lean, &pipeline_100(), 100);
    let with_10 = run_allocations(&rt, &wrapped, &pipeline_10(), 10);
    let with_100 = run_allocations(&rt, &wrapped, &pipeline_100(), 100);
    for (what, (allocations, bytes)) in [
        ("no middleware,  10 nodes", bare_10),
        ("no middleware, 100 nodes", bare_100),
        ("pass-through,   10 nodes", with_10),
        ("pass-through,  100 nodes", with_100),
    ] {
        println!("{what}: {allocations} allocations, {bytes} bytes");
    }

    // Per node, two boxed futures, made and freed as the node runs:
    // 1. `RunState::run_node` boxes the node's trip through the middleware,
    //    so a chain without middleware does not carry its state;
    // 2. the default `on_node` returns `next.run()`, which boxes the step
    //    that, the chain being done, awaits the node's body.
    // (`around` awaits the chain's first step, the one calling `on_node`, in place.)
    // The node's context handle and its `NodeCall` borrow or clone
    // reference-counted handles: no allocation.
    assert_eq!((with_100.0 - with_10.0) % 90, 0);
    assert_eq!((with_100.0 - with_10.0) / 90, 2);
    // Per run, beside the nodes, two, the same two as a node's: the runner
    // boxes the run's trip through the middleware (so runs without
    // middleware do not carry its state), and the default `on_run`'s
    // `next.run()` boxes the step that runs the pipeline. The `RunContext`
    // it is given is cloned from reference-counted handles.
    assert_eq!(bare_10.0, RUN_OWN);
    assert_eq!(bare_100.0, bare_10.0);
    assert_eq!(with_10.0, bare_10.0 + 2 + 2 * 10);
    assert_eq!(with_100.0, bare_100.0 + 2 + 2 * 100);
}

#[test]
fn parallel_branches_of_a_unit_model_allocate_one_shared_state_beyond_the_run() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let four = parallel![inc, inc, inc, inc];
    let one = parallel![inc];
    let plain = pipeline_1();

    let run_alone = per_run(
        &rt,
        || 0,
        |x| lean.run(&plain, x),
        |r| assert_eq!(r.expect("trivial").final_state, 1),
    );
    let one_branch = per_run(
        &rt,
        || 0,
        |x| lean.run(&one, x),
        |r| assert_eq!(r.expect("trivial").final_state, (1,)),
    );
    let four_branches = per_run(
        &rt,
        || 0,
        |x| lean.run(&four, x),
        |r| assert_eq!(r.expect("trivial").final_state, (1, 1, 1, 1)),
    );
    for (what, (allocations, bytes)) in [
        ("one plain node     ", run_alone),
        ("parallel, 1 branch ", one_branch),
        ("parallel, 4 branches", four_branches),
    ] {
        println!("{what}: {allocations} allocations, {bytes} bytes");
    }

    // Beside the run's own `RUN_OWN`, `parallel!` allocates one thing, once per
    // run however many branches: when the run forks its first branch, the
    // part of its state that branches share (context, run, middleware) moves
    // behind an `Arc`, and each fork counts one more reference to it. The
    // rest allocates nothing: a fork's record list starts empty, the
    // generated code polls the branches in place and hands `settle` a
    // borrowed array of them, `settle` lists the branches' outcomes only
    // when one failed, and no `()` branch can change the model, so nothing
    // is merged.
    assert_eq!(one_branch.0, run_alone.0 + 1);
    assert_eq!(four_branches.0, one_branch.0);
}

/// Two numbers: a model whose copies own no heap memory.
#[derive(Clone, Serialize, Deserialize)]
struct Pair {
    a: u64,
    b: u64,
}

#[node]
async fn tally(x: u64, pair: &mut Pair) -> u64 {
    pair.a += 1;
    x + 1
}

#[test]
fn a_loop_iteration_allocates_nothing() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let to_ten = loop_until(tally, |x: &u64, _: &Pair| *x >= 10);
    let iterations = |start: u64| {
        per_run(
            &rt,
            || start,
            |x| lean.run_with_model(&to_ten, x, Pair { a: 0, b: 0 }),
            |r| {
                let r = r.expect("trivial");
                assert_eq!(r.final_state, 10);
                assert_eq!(r.model.a, 10 - start);
                assert_eq!(r.model.b, 0);
            },
        )
    };

    let once = iterations(9);
    let ten_times = iterations(0);
    println!(
        "loop,  1 iteration : {} allocations, {} bytes",
        once.0, once.1
    );
    println!(
        "loop, 10 iterations: {} allocations, {} bytes",
        ten_times.0, ten_times.1
    );

    // A run's own `RUN_OWN`, plus the box the run's trace keeps the loop in
    // (to draw its tree if asked; a pipeline of `#[node]`s alone is
    // zero-sized and needs none), and nothing more, however many
    // iterations. Each iteration copies the model twice, the loop's copy to
    // fall back on and the node's snapshot for rollback, and a `Pair`
    // copies bit for bit, with no heap memory to duplicate.
    assert_eq!(once.0, RUN_OWN + 1);
    assert_eq!(ten_times, once);
}

/// Four fields, one for each branch to write.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Quad {
    a: u64,
    b: u64,
    c: u64,
    d: u64,
}

#[node]
async fn set_a(x: u64, quad: &mut Quad) -> u64 {
    quad.a = x + 1;
    x
}

#[node]
async fn set_b(x: u64, quad: &mut Quad) -> u64 {
    quad.b = x + 2;
    x
}

#[node]
async fn set_c(x: u64, quad: &mut Quad) -> u64 {
    quad.c = x + 3;
    x
}

#[node]
async fn set_d(x: u64, quad: &mut Quad) -> u64 {
    quad.d = x + 4;
    x
}

#[test]
fn merging_four_branches_that_each_write_a_field_goes_through_json() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let fields = parallel![set_a, set_b, set_c, set_d];
    let (allocations, bytes) = per_run(
        &rt,
        || 0,
        |x| lean.run_with_model(&fields, x, Quad::default()),
        |r| {
            let r = r.expect("branches write different fields");
            assert_eq!(r.final_state, (0, 0, 0, 0));
            assert_eq!(
                r.model,
                Quad {
                    a: 1,
                    b: 2,
                    c: 3,
                    d: 4
                }
            );
        },
    );
    println!("parallel, 4 branches writing a field each: {allocations} allocations, {bytes} bytes");

    // The run's own `RUN_OWN`; the state its branches share, behind an `Arc` once
    // the run forks: 1.
    // Then `merge_models`, which compares the models (borrowed) as JSON:
    // - 25 to turn the base and the 4 copies into JSON objects: 5 each, the
    //   object's map node and its 4 keys;
    // - 2 lists of the copies' JSON (owned, then borrowed);
    // - 6 to merge the objects: the merged map's node, one list of the
    //   copies' values, refilled field by field, and per field the merged
    //   map's key (a field's path is written out only for an error);
    // reading the merged object back into a `Quad` allocates nothing.
    // Copies and snapshots of the model cost nothing.
    assert_eq!(allocations, RUN_OWN + 1 + 25 + 2 + 6);
}

/// A model with heap memory: each copy of it allocates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Text {
    body: String,
}

/// Reads the model and no more: `#[node]` says it cannot change the model.
#[node]
async fn length(x: u64, text: &Text) -> u64 {
    x + text.body.len() as u64
}

#[test]
fn parallel_branches_that_only_read_the_model_are_not_merged() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let readers = parallel![length, length, length, length];
    let (allocations, bytes) = per_run(
        &rt,
        // The model is made before counting starts, as the input is.
        || {
            let text = Text {
                body: "four".into(),
            };
            (1, text)
        },
        |(x, text)| lean.run_with_model(&readers, x, text),
        |r| {
            let r = r.expect("reading never fails");
            assert_eq!(r.final_state, (5, 5, 5, 5));
            assert_eq!(r.model.body, "four");
        },
    );
    println!("parallel, 4 branches reading a model: {allocations} allocations, {bytes} bytes");

    // The run's own `RUN_OWN`; the state its branches share, behind an `Arc` once
    // the run forks: 1; each branch's copy of the model, whose `String` is
    // copied: 4. No branch can change the model, so no copy is merged: a
    // merge would turn the model and its copies into JSON, dozens more.
    assert_eq!(allocations, RUN_OWN + 1 + 4);
}

/// `inc`, after yielding once: its item is in flight while the others start.
#[node]
async fn inc_later(x: u64) -> u64 {
    let mut yielded = false;
    std::future::poll_fn(|task| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        task.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
    x + 1
}

#[test]
fn for_each_allocates_per_lane_not_per_item() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let at_once = for_each(inc).concurrency(4);
    let later = for_each(inc_later).concurrency(4);
    let at_once_10 = items_allocations(&rt, &lean, &at_once, 10);
    let at_once_100 = items_allocations(&rt, &lean, &at_once, 100);
    let later_10 = items_allocations(&rt, &lean, &later, 10);
    let later_100 = items_allocations(&rt, &lean, &later, 100);
    for (what, (allocations, bytes)) in [
        ("for_each,  10 items done at once ", at_once_10),
        ("for_each, 100 items done at once ", at_once_100),
        ("for_each,  10 items done later   ", later_10),
        ("for_each, 100 items done later   ", later_100),
    ] {
        println!("{what}: {allocations} allocations, {bytes} bytes");
    }

    // Nothing per item: items run in lanes, at most 4 here, and a lane
    // keeps its branch, its boxed future (refilled in place) and its waker
    // from item to item; an item that cannot change the model leaves
    // nothing to keep once done, and a `()` model has no copies to make.
    // Per run, beside the run's own `RUN_OWN`: the state its branches share,
    // behind an `Arc` once the run forks (1); the outputs, reserved at the
    // item count (1); the list of lanes (1); the waker the lanes' wakers
    // wake (1); the box the run's trace keeps the `for_each` in, to draw
    // its tree if asked (1); the lanes' branches, kept in place so an
    // item's future holds only a reference to its lane's (1); then, per
    // lane opened, its boxed future and its waker (2).
    let expected = |lanes: usize| RUN_OWN + 1 + 1 + 1 + 1 + 1 + 1 + 2 * lanes;
    // An item done at once frees its lane for the next: one lane is enough.
    assert_eq!(at_once_10.0, expected(1));
    assert_eq!(at_once_100.0, expected(1));
    // Items still in flight when the next starts fill all 4 lanes.
    assert_eq!(later_10.0, expected(4));
    assert_eq!(later_100.0, expected(4));
}

/// What one run of `each` over `n` zeros allocates, checking it adds one to each.
fn items_allocations<E>(rt: &Runtime, runner: &StromaRunner, each: &E, n: usize) -> (usize, usize)
where
    E: Runnable<(), Input = Vec<u64>, Output = Vec<u64>>,
{
    per_run(
        rt,
        || vec![0; n],
        |items| runner.run(each, items),
        |r| assert_eq!(r.expect("trivial").final_state, vec![1; n]),
    )
}

#[node]
async fn bump(x: u64) -> u64 {
    x + 1
}

#[test]
fn a_retried_node_that_succeeds_first_time_allocates_nothing() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let policy = || stroma::RetryPolicy::fixed(std::time::Duration::from_millis(1));
    let one = pipeline![bump.retry(policy())];
    let five = pipeline![
        bump.retry(policy()),
        bump.retry(policy()),
        bump.retry(policy()),
        bump.retry(policy()),
        bump.retry(policy())
    ];
    let one = run_allocations(&rt, &lean, &one, 1);
    let five = run_allocations(&rt, &lean, &five, 5);
    println!("retry, 1 node : {} allocations, {} bytes", one.0, one.1);
    println!("retry, 5 nodes: {} allocations, {} bytes", five.0, five.1);
    // A run's own `RUN_OWN`, plus the box its trace keeps a pipeline that is
    // not zero-sized in (the policy makes it so), and nothing for the
    // retries, however many nodes have one.
    assert_eq!(one.0, RUN_OWN + 1);
    assert_eq!(five.0, one.0);
}

/// What one run of `list` over `n` zeros allocates, checking it ran.
fn list_allocations<E>(rt: &Runtime, runner: &StromaRunner, list: &E, n: usize) -> usize
where
    E: Runnable<(), Input = Vec<u64>>,
{
    per_run(
        rt,
        || vec![0; n],
        |items| runner.run(list, items),
        |r| assert!(r.is_ok(), "trivial items never fail"),
    )
    .0
}

#[test]
fn a_wrapper_costs_a_keep_going_list_what_it_costs_any_list_of_the_same_node() {
    let rt = runtime();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let policy = || stroma::RetryPolicy::fixed(std::time::Duration::from_millis(1));
    let all_or_nothing = list_allocations(&rt, &lean, &for_each(inc), 10);
    let all_or_nothing_retried = list_allocations(&rt, &lean, &for_each(inc).retry(policy()), 10);
    let keep_going = list_allocations(&rt, &lean, &for_each(inc).keep_going(), 10);
    let keep_going_retried =
        list_allocations(&rt, &lean, &for_each(inc).keep_going().retry(policy()), 10);
    println!("for_each: {all_or_nothing}, retried: {all_or_nothing_retried}");
    println!("keep_going: {keep_going}, retried: {keep_going_retried}");
    // `keep_going` asks the run for its record of paths, to name failures,
    // and nothing more: a wrapper around it opens no context layer its
    // items' node (which takes no context) has no use for.
    assert_eq!(
        keep_going_retried - keep_going,
        all_or_nothing_retried - all_or_nothing
    );
}
