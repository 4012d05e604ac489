//! The combinators beside the code they stand for, written by hand.
//!
//! `loop/10`: a 10-iteration `loop_until` over a node that changes a small
//! model, beside a hand-written loop that copies the model each iteration,
//! runs the same async fn on the copy and keeps it (what the loop does), and
//! a bare loop that changes the model in place. Throughput is 10 elements,
//! so criterion reports time per iteration.
//!
//! `parallel/4`: `parallel!` of 4 trivial nodes beside `futures::join!` of
//! the same 4 futures, without a model and with a model each branch writes
//! one field of (stroma merges the 4 copies; the hand-written join copies the
//! model 4 times and merges by assignment). Throughput is 4 elements: per branch.
//!
//! `parallel/4 x10`: a pipeline of 10 steps, each `parallel!` of the same 4
//! nodes then a node folding the 4 outputs back into one, beside the same 10
//! `join!`s and folds by hand. A run's fixed cost (its context, its id) is
//! spread over 10 steps, so this shows mostly the combinator's own cost.
//! Throughput is 40 elements: per branch.
//!
//! `for_each/1000`: `for_each(..).concurrency(16)` over 1,000 items beside
//! `stream::iter(..).map(..).buffered(16).collect()`. Throughput is 1,000
//! elements: per item. Two nodes: one that finishes when first polled (so
//! one item is in flight at a time) and one that yields once first (so 16
//! are: every lane or slot is busy).
//!
//! `timeout`: one node with `.timeout(60 s)` that finishes first time,
//! beside the same node without it, and a hand-written call beside the same
//! call in `tokio::time::timeout`: what a limit adds in each; and the node
//! with `.retry(..)`, succeeding first time: what a policy adds.
//!
//! All stroma runs have records off, so the figures are the combinators'
//! own cost.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use stroma::Runnable;
use stroma::prelude::*;
use tokio::runtime::{Builder, Runtime};

mod support;
use support::bench_async;

const LOOPS: u32 = 10;
const BRANCHES: u64 = 4;
const STEPS: u64 = 10;
const ITEMS: u64 = 1_000;
const CONCURRENCY: usize = 16;

// ---- loop ----------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    iterations: u32,
    total: u64,
}

#[node]
async fn step(x: u64, counter: &mut Counter) -> u64 {
    counter.iterations += 1;
    counter.total += x;
    x + 1
}

/// The exit condition, shared by the loop and the hand-written loops.
fn done(_x: &u64, counter: &Counter) -> bool {
    counter.iterations >= LOOPS
}

/// What `loop_until` does, by hand: each iteration runs on a copy of the
/// model, and the copy is kept when the iteration succeeds.
async fn loop_copying(mut x: u64, mut counter: Counter) -> (u64, Counter) {
    loop {
        let mut copy = counter.clone();
        x = step::call(x, &mut copy).await;
        counter = copy;
        if done(&x, &counter) {
            return (x, counter);
        }
    }
}

/// The limit: the same calls on the model in place.
async fn loop_in_place(mut x: u64, mut counter: Counter) -> (u64, Counter) {
    loop {
        x = step::call(x, &mut counter).await;
        if done(&x, &counter) {
            return (x, counter);
        }
    }
}

fn counting_loop() -> impl Runnable<Counter, Input = u64, Output = u64> {
    loop_until(step, done).max_loops(LOOPS)
}

// ---- parallel --------------------------------------------------------------------

#[node]
async fn add1(x: u64) -> u64 {
    x + 1
}

#[node]
async fn add2(x: u64) -> u64 {
    x + 2
}

#[node]
async fn add3(x: u64) -> u64 {
    x + 3
}

#[node]
async fn add4(x: u64) -> u64 {
    x + 4
}

/// Folds a `parallel!` step's 4 outputs back into one, for the next step.
#[node]
async fn fold(t: (u64, u64, u64, u64)) -> u64 {
    t.0 + t.1 + t.2 + t.3
}

/// One step of the amortized case, by hand: what `parallel![add1, add2,
/// add3, add4]` then `fold` compute.
async fn join_fold(x: u64) -> u64 {
    fold::call(futures::join!(
        add1::call(x),
        add2::call(x),
        add3::call(x),
        add4::call(x)
    ))
    .await
}

/// 10 steps of `join!` then fold, by hand.
async fn join_fold_10(mut x: u64) -> u64 {
    for _ in 0..STEPS {
        x = join_fold(x).await;
    }
    x
}

fn parallel_steps() -> impl Runnable<(), Input = u64, Output = u64> {
    // Nested rather than written out flat: one more `direct` check per round.
    let round = pipeline![parallel![add1, add2, add3, add4], fold];
    pipeline![
        round, round, round, round, round, round, round, round, round, round
    ]
}

/// One field per branch, so the branches' copies merge without conflict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Fields {
    a: u64,
    b: u64,
    c: u64,
    d: u64,
}

#[node]
async fn set_a(x: u64, fields: &mut Fields) -> u64 {
    fields.a = x + 1;
    x + 1
}

#[node]
async fn set_b(x: u64, fields: &mut Fields) -> u64 {
    fields.b = x + 2;
    x + 2
}

#[node]
async fn set_c(x: u64, fields: &mut Fields) -> u64 {
    fields.c = x + 3;
    x + 3
}

#[node]
async fn set_d(x: u64, fields: &mut Fields) -> u64 {
    fields.d = x + 4;
    x + 4
}

/// What `parallel!` does with a model, by hand: a copy per branch, then each
/// branch's field taken from its copy.
async fn join_copying(x: u64, mut fields: Fields) -> ((u64, u64, u64, u64), Fields) {
    let (mut a, mut b, mut c, mut d) = (
        fields.clone(),
        fields.clone(),
        fields.clone(),
        fields.clone(),
    );
    let outputs = futures::join!(
        set_a::call(x, &mut a),
        set_b::call(x, &mut b),
        set_c::call(x, &mut c),
        set_d::call(x, &mut d),
    );
    fields.a = a.a;
    fields.b = b.b;
    fields.c = c.c;
    fields.d = d.d;
    (outputs, fields)
}

// ---- for_each ----------------------------------------------------------------------

#[node]
async fn double(x: u64) -> u64 {
    x * 2
}

/// `double`, after yielding once: its item is still in flight when the next
/// one starts.
#[node]
async fn double_later(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * 2
}

async fn buffered(items: Vec<u64>) -> Vec<u64> {
    futures::stream::iter(items)
        .map(double::call)
        .buffered(CONCURRENCY)
        .collect()
        .await
}

async fn buffered_later(items: Vec<u64>) -> Vec<u64> {
    futures::stream::iter(items)
        .map(double_later::call)
        .buffered(CONCURRENCY)
        .collect()
        .await
}

fn items() -> Vec<u64> {
    (0..ITEMS).collect()
}

// ---- harness -----------------------------------------------------------------------

/// The stroma runner with nothing on: no records, no middleware.
fn lean_runner() -> StromaRunner {
    StromaRunner::new(RunConfig::default().records(false))
}

fn new_group<'c>(c: &'c mut Criterion, name: &str, elements: u64) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(elements))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn loops(c: &mut Criterion, rt: &Runtime, runner: &StromaRunner) {
    let looped = counting_loop();
    let expected = (
        u64::from(LOOPS),
        Counter {
            iterations: LOOPS,
            total: (0..u64::from(LOOPS)).sum(),
        },
    );

    // Checked once, outside the timed loops: all three compute the same thing.
    rt.block_on(async {
        assert_eq!(loop_copying(0, Counter::default()).await, expected);
        assert_eq!(loop_in_place(0, Counter::default()).await, expected);
        let result = runner
            .run_with_model(&looped, 0, Counter::default())
            .await
            .expect("the loop stops at its cap, by its condition");
        assert!(result.records().is_empty());
        assert_eq!((result.final_state, result.model), expected);
    });

    let mut group = new_group(c, "loop/10", u64::from(LOOPS));
    bench_async(&mut group, rt, "hand-written in place", || {
        loop_in_place(black_box(0), black_box(Counter::default()))
    });
    bench_async(&mut group, rt, "hand-written copy+keep", || {
        loop_copying(black_box(0), black_box(Counter::default()))
    });
    bench_async(&mut group, rt, "stroma loop_until", || async {
        let result = runner
            .run_with_model(&looped, black_box(0), black_box(Counter::default()))
            .await;
        result.map(|result| (result.final_state, result.model)).ok()
    });
    group.finish();
}

fn parallels(c: &mut Criterion, rt: &Runtime, runner: &StromaRunner) {
    let plain = parallel![add1, add2, add3, add4];
    let writing = parallel![set_a, set_b, set_c, set_d];
    let hand_plain = |x: u64| async move {
        futures::join!(add1::call(x), add2::call(x), add3::call(x), add4::call(x))
    };
    let expected_fields = Fields {
        a: 1,
        b: 2,
        c: 3,
        d: 4,
    };

    // Checked once, outside the timed loops.
    rt.block_on(async {
        assert_eq!(hand_plain(0).await, (1, 2, 3, 4));
        let result = runner
            .run(&plain, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!(result.final_state, (1, 2, 3, 4));
        assert!(result.records().is_empty());

        assert_eq!(
            join_copying(0, Fields::default()).await,
            ((1, 2, 3, 4), expected_fields.clone())
        );
        let result = runner
            .run_with_model(&writing, 0, Fields::default())
            .await
            .expect("branches write different fields, so the merge has no conflict");
        assert_eq!(
            (result.final_state, result.model),
            ((1, 2, 3, 4), expected_fields)
        );
    });

    let mut group = new_group(c, "parallel/4", BRANCHES);
    bench_async(&mut group, rt, "join!", || hand_plain(black_box(0)));
    bench_async(&mut group, rt, "stroma parallel!", || async {
        let result = runner.run(&plain, black_box(0)).await;
        result.map(|result| result.final_state).ok()
    });
    bench_async(&mut group, rt, "join! model copy+assign", || {
        join_copying(black_box(0), black_box(Fields::default()))
    });
    bench_async(&mut group, rt, "stroma parallel! model", || async {
        let result = runner
            .run_with_model(&writing, black_box(0), black_box(Fields::default()))
            .await;
        result.map(|result| (result.final_state, result.model)).ok()
    });
    group.finish();

    let steps = parallel_steps();
    rt.block_on(async {
        let expected = join_fold_10(0).await;
        // Each step maps x to 4x + 10.
        assert_eq!(expected, (0..STEPS).fold(0, |x, _| 4 * x + 10));
        let result = runner
            .run(&steps, 0)
            .await
            .expect("trivial nodes never fail");
        assert_eq!(result.final_state, expected);
    });
    let mut group = new_group(c, "parallel/4 x10", BRANCHES * STEPS);
    bench_async(&mut group, rt, "join! + fold", || {
        join_fold_10(black_box(0))
    });
    bench_async(&mut group, rt, "stroma parallel! + fold", || async {
        let result = runner.run(&steps, black_box(0)).await;
        result.map(|result| result.final_state).ok()
    });
    group.finish();
}

fn for_eachs(c: &mut Criterion, rt: &Runtime, runner: &StromaRunner) {
    let each = for_each(double).concurrency(CONCURRENCY);
    let each_later = for_each(double_later).concurrency(CONCURRENCY);
    let expected: Vec<u64> = (0..ITEMS).map(|x| x * 2).collect();

    // Checked once, outside the timed loops.
    rt.block_on(async {
        assert_eq!(buffered(items()).await, expected);
        assert_eq!(buffered_later(items()).await, expected);
        for result in [
            runner.run(&each, items()).await,
            runner.run(&each_later, items()).await,
        ] {
            let result = result.expect("trivial nodes never fail");
            assert_eq!(result.final_state, expected);
            assert!(result.records().is_empty());
        }
    });

    // Both build their input inside the timed loop, so that cost is the same on both sides.
    let mut group = new_group(c, "for_each/1000", ITEMS);
    bench_async(&mut group, rt, "buffered(16)", || {
        buffered(black_box(items()))
    });
    bench_async(&mut group, rt, "stroma for_each(16)", || async {
        let result = runner.run(&each, black_box(items())).await;
        result.map(|result| result.final_state).ok()
    });
    bench_async(&mut group, rt, "buffered(16), items yield once", || {
        buffered_later(black_box(items()))
    });
    bench_async(
        &mut group,
        rt,
        "stroma for_each(16), items yield once",
        || async {
            let result = runner.run(&each_later, black_box(items())).await;
            result.map(|result| result.final_state).ok()
        },
    );
    group.finish();
}

fn timeouts(c: &mut Criterion) {
    // Timers on: `tokio::time::timeout` needs them.
    let rt = Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let runner = lean_runner();
    let limit = Duration::from_secs(60);
    let plain = pipeline![add1];
    let limited = pipeline![add1.timeout(limit)];
    let retried = pipeline![add1.retry(RetryPolicy::fixed(Duration::from_millis(1)))];
    rt.block_on(async {
        assert_eq!(runner.run(&limited, 1).await.unwrap().final_state, 2);
        assert_eq!(runner.run(&retried, 1).await.unwrap().final_state, 2);
    });

    let mut group = new_group(c, "timeout", 1);
    bench_async(&mut group, &rt, "hand-written", || add1::call(black_box(1)));
    bench_async(
        &mut group,
        &rt,
        "hand-written in tokio::time::timeout",
        || tokio::time::timeout(limit, add1::call(black_box(1))),
    );
    bench_async(&mut group, &rt, "stroma node", || async {
        runner
            .run(&plain, black_box(1))
            .await
            .ok()
            .map(|r| r.final_state)
    });
    bench_async(&mut group, &rt, "stroma node.timeout", || async {
        runner
            .run(&limited, black_box(1))
            .await
            .ok()
            .map(|r| r.final_state)
    });
    bench_async(&mut group, &rt, "stroma node.retry", || async {
        runner
            .run(&retried, black_box(1))
            .await
            .ok()
            .map(|r| r.final_state)
    });
    group.finish();
}

fn combinators(c: &mut Criterion) {
    let rt = Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let runner = lean_runner();
    loops(c, &rt, &runner);
    parallels(c, &rt, &runner);
    for_eachs(c, &rt, &runner);
    timeouts(c);
}

criterion_group!(benches, combinators);
criterion_main!(benches);
