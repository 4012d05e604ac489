//! A run is compiled for what watches it: nothing (records off), records,
//! or spans, middleware and events. Every way must behave the same:
//! outputs, records (paths and statuses, in order), models, failures and
//! the node a panic is blamed on. Each case here runs every way and compares.

use stroma::prelude::*;
use stroma::{Middleware, NodeStatus, Runnable};

/// A middleware that only passes on: its presence alone sends runs down the
/// general path.
struct PassThrough;

impl Middleware for PassThrough {}

#[node]
async fn add_one(n: u64) -> u64 {
    n + 1
}

#[node]
async fn double(n: u64) -> u64 {
    n * 2
}

#[node]
async fn push(n: u64, seen: &mut Vec<u64>) -> u64 {
    seen.push(n);
    n
}

// A node names the run's model by its type, here `Vec<u64>`.
#[allow(clippy::ptr_arg)]
#[node]
async fn sum_seen(n: u64, seen: &Vec<u64>) -> u64 {
    n + seen.iter().sum::<u64>()
}

#[node]
async fn remember(n: u64, ctx: &Context) -> u64 {
    ctx.insert_named("last", n);
    n
}

#[node]
async fn fail_over_500(n: u64) -> Result<u64, NodeError> {
    if n > 500 {
        return Err(NodeError::msg(format!("{n} is over 500")));
    }
    Ok(n)
}

#[node]
async fn panic_on_7(n: u64) -> u64 {
    assert_ne!(n, 7, "seven");
    n
}

#[node]
async fn push_then_fail_on_5(n: u64, seen: &mut Vec<u64>) -> Result<u64, NodeError> {
    seen.push(n);
    if n == 5 {
        return Err(NodeError::msg("five"));
    }
    Ok(n)
}

#[node]
async fn first_of(pair: (u64, u64)) -> u64 {
    pair.0 + pair.1
}

#[node]
async fn spread(n: u64) -> Vec<u64> {
    (0..n % 5).collect()
}

#[node]
async fn total(items: Vec<u64>) -> u64 {
    items.iter().sum()
}

/// What a run left, in a form two runs can be compared by.
#[derive(Debug, PartialEq)]
struct Seen {
    outcome: Result<u64, (String, String, bool)>,
    records: Vec<(String, NodeStatus)>,
    model: Vec<u64>,
    last: Option<u64>,
}

async fn run_once<P>(runner: &StromaRunner, pipeline: &P, input: u64) -> Seen
where
    P: Runnable<Vec<u64>, Input = u64, Output = u64>,
{
    let last = |context: &Context| context.get_named::<u64>("last").ok().map(|n| *n);
    match runner.run_with_model(pipeline, input, vec![100]).await {
        Ok(result) => Seen {
            outcome: Ok(result.final_state),
            records: result
                .records()
                .iter()
                .map(|r| (r.path.to_string(), r.status))
                .collect(),
            last: last(&result.context),
            model: result.model,
        },
        Err(err) => Seen {
            outcome: Err((err.node().to_owned(), err.to_string(), err.is_panic())),
            records: err
                .records()
                .iter()
                .map(|r| (r.path.to_string(), r.status))
                .collect(),
            last: last(err.context()),
            model: err.into_model::<Vec<u64>>().expect("the model's type"),
        },
    }
}

/// Runs `pipeline` on `input` directly and through the general path, with
/// records on and off, and checks all four agree where they should.
async fn same_both_ways<P>(pipeline: &P, input: u64) -> Seen
where
    P: Runnable<Vec<u64>, Input = u64, Output = u64>,
{
    let recording = StromaRunner::quick();
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let direct = run_once(&recording, pipeline, input).await;
    let general = run_once(
        &recording.clone().with_middleware(PassThrough),
        pipeline,
        input,
    )
    .await;
    assert_eq!(direct, general, "records on, input {input}");
    let direct_lean = run_once(&lean, pipeline, input).await;
    let general_lean = run_once(&lean.clone().with_middleware(PassThrough), pipeline, input).await;
    assert_eq!(direct_lean, general_lean, "records off, input {input}");
    assert!(direct_lean.records.is_empty());
    assert_eq!(
        (&direct_lean.outcome, &direct_lean.model, direct_lean.last),
        (&direct.outcome, &direct.model, direct.last),
        "records change nothing else, input {input}"
    );
    direct
}

#[tokio::test]
async fn chains_with_model_and_context_nodes_behave_the_same_both_ways() {
    let p = pipeline![add_one, push, remember, double, sum_seen, fail_over_500];
    let ok = same_both_ways(&p, 1).await;
    assert_eq!(ok.outcome, Ok(4 + 100 + 2));
    assert_eq!(ok.model, [100, 2]);
    assert_eq!(ok.last, Some(2));
    assert_eq!(ok.records.len(), 6);

    let failed = same_both_ways(&p, 300).await;
    let (node, _, panicked) = failed.outcome.clone().unwrap_err();
    assert_eq!((node.as_str(), panicked), ("fail_over_500", false));
    assert_eq!(
        failed.records.last(),
        Some(&("fail_over_500".to_owned(), NodeStatus::Failed))
    );
}

#[tokio::test]
async fn panics_and_rollbacks_behave_the_same_both_ways() {
    let inner = pipeline![add_one, panic_on_7].named("inner");
    let p = pipeline![push, inner, double];
    let panicked = same_both_ways(&p, 6).await;
    let (node, _, is_panic) = panicked.outcome.clone().unwrap_err();
    assert_eq!((node.as_str(), is_panic), ("panic_on_7", true));
    assert_eq!(
        panicked.records.last(),
        Some(&("inner.panic_on_7".to_owned(), NodeStatus::Failed))
    );

    // The failing model node's own write is undone; earlier ones stay.
    let p = pipeline![push, add_one, push_then_fail_on_5];
    let rolled_back = same_both_ways(&p, 4).await;
    assert_eq!(rolled_back.model, [100, 4]);
    assert!(rolled_back.outcome.is_err());
}

#[tokio::test]
async fn loops_and_branches_behave_the_same_both_ways() {
    let looped = loop_until(pipeline![add_one, push], |n: &u64, _: &Vec<u64>| *n >= 4);
    let p = pipeline![
        looped,
        parallel![add_one, double],
        first_of,
        spread,
        for_each(double).concurrency(2),
        total
    ];
    for input in [0, 2, 3] {
        let seen = same_both_ways(&p, input).await;
        assert!(seen.outcome.is_ok(), "{seen:?}");
        assert!(seen.records.len() >= 6, "{seen:?}");
    }

    // A loop whose body fails in its second iteration discards only that iteration.
    let failing = loop_until(
        pipeline![push_then_fail_on_5, add_one],
        |n: &u64, _: &Vec<u64>| *n > 9,
    );
    let seen = same_both_ways(&pipeline![failing], 4).await;
    assert_eq!(seen.model, [100, 4]);
    assert!(seen.outcome.unwrap_err().1.contains("iteration 2"));
}

#[tokio::test]
async fn a_panicking_loop_condition_fails_the_loop_the_same_both_ways() {
    let looped = loop_until(add_one, |_: &u64, _: &Vec<u64>| panic!("no condition"));
    let p = pipeline![push, add_one, looped.named("retry")];
    let seen = same_both_ways(&p, 1).await;
    // The loop is blamed, not the node that ran last; no node's record says it failed.
    let (node, text, is_panic) = seen.outcome.unwrap_err();
    assert_eq!((node.as_str(), is_panic), ("retry", true));
    assert!(
        text.contains("no condition") && text.contains("iteration 1"),
        "{text}"
    );
    assert!(
        seen.records
            .iter()
            .all(|(_, status)| *status == NodeStatus::Completed)
    );
    assert_eq!(seen.records.len(), 3);
    assert_eq!(seen.model, [100, 1]);
}
