//! Runs: records, failures, panics, and many runs at once on one runner.

use std::time::Duration;

use stroma::prelude::*;
use stroma::{NodePanic, NodeStatus};

#[node]
async fn add_one(n: u64) -> u64 {
    n + 1
}

#[node]
async fn slow_add_one(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    n + 1
}

#[node]
async fn fail_on_odd(n: u64) -> Result<u64, NodeError> {
    if n % 2 == 1 {
        return Err(NodeError::msg(format!("{n} is odd")));
    }
    Ok(n)
}

#[node]
async fn panic_on_three(n: u64) -> u64 {
    assert_ne!(n, 3, "three is not allowed");
    n
}

#[node]
async fn note_seen(n: u64, ctx: &Context) -> u64 {
    ctx.insert_named("seen", n);
    n
}

#[node]
async fn bump(n: u64, model: &mut Vec<u64>) -> u64 {
    model.push(n);
    n
}

#[tokio::test]
async fn records_name_every_node_with_status_and_duration() {
    let p = pipeline![add_one, slow_add_one, add_one];
    let result = StromaRunner::quick().run(&p, 0).await.unwrap();
    assert_eq!(result.final_state, 3);
    let names: Vec<_> = result.records().iter().map(|r| r.name).collect();
    assert_eq!(names, ["add_one", "slow_add_one", "add_one"]);
    assert!(
        result
            .records()
            .iter()
            .all(|r| r.status == NodeStatus::Completed)
    );
    assert!(result.records()[1].duration >= Duration::from_millis(2));
}

#[tokio::test]
async fn records_can_be_switched_off() {
    let runner = StromaRunner::new(RunConfig::default().records(false));
    let result = runner.run(&pipeline![add_one, add_one], 0).await.unwrap();
    assert_eq!(result.final_state, 2);
    assert!(result.records().is_empty());
    assert!(!runner.config().keeps_records());
}

#[tokio::test]
async fn run_ids_are_distinct_and_uuid_shaped() {
    let runner = StromaRunner::quick();
    let a = runner.run(&add_one, 0).await.unwrap().run_id;
    let b = runner.run(&add_one, 0).await.unwrap().run_id;
    assert_ne!(a, b);
    assert_eq!(a.to_string().len(), 36);
}

#[tokio::test]
async fn a_failing_node_is_named_and_keeps_what_ran_before_it() {
    let p = pipeline![note_seen, bump, add_one, fail_on_odd, add_one];
    let err = StromaRunner::quick()
        .run_with_model(&p, 4, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.node(), "fail_on_odd");
    assert_eq!(err.to_string(), "node `fail_on_odd` failed: 5 is odd");
    assert!(!err.is_panic());
    let statuses: Vec<_> = err.records().iter().map(|r| (r.name, r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("note_seen", NodeStatus::Completed),
            ("bump", NodeStatus::Completed),
            ("add_one", NodeStatus::Completed),
            ("fail_on_odd", NodeStatus::Failed),
        ]
    );
    assert_eq!(*err.context().get_named::<u64>("seen").unwrap(), 4);
    assert_eq!(err.model::<Vec<u64>>(), Some(&vec![4]));
    assert_eq!(err.into_model::<Vec<u64>>(), Some(vec![4]));
}

#[tokio::test]
async fn a_panicking_node_fails_its_run_not_the_process() {
    let runner = StromaRunner::quick();
    let p = pipeline![add_one, add_one, panic_on_three, add_one];
    let err = runner.run(&p, 1).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "panic_on_three");
    assert!(
        err.to_string().starts_with(
            "node `panic_on_three` panicked: assertion `left != right` failed: three is not allowed"
        ),
        "{err}"
    );
    let panic = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<NodePanic>())
        .expect("the panic is the source");
    assert!(panic.message().contains("three is not allowed"));
    let last = err.records().last().unwrap();
    assert_eq!(
        (last.name, last.status),
        ("panic_on_three", NodeStatus::Failed)
    );
    assert_eq!(err.records().len(), 3);

    // The runner goes on working, for this pipeline and others.
    assert_eq!(runner.run(&p, 5).await.unwrap().final_state, 8);
}

#[tokio::test]
async fn a_panic_inside_a_spawned_run_is_contained_too() {
    let runner = StromaRunner::quick();
    let handle = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(&panic_on_three, 3).await.map(|r| r.final_state) }
    });
    let outcome = handle.await.expect("the task itself did not panic");
    assert!(outcome.unwrap_err().is_panic());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_runs_on_one_runner_keep_their_writes_apart() {
    #[node]
    async fn write_tenant(tenant: u64, ctx: &Context) -> u64 {
        ctx.insert_named("tenant", tenant);
        // Let other runs interleave between the write and the read.
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        tenant
    }

    #[node]
    async fn check_tenant(tenant: u64, ctx: &Context) -> Result<u64, NodeError> {
        tokio::task::yield_now().await;
        let seen = *ctx.get_named::<u64>("tenant")?;
        if seen != tenant {
            return Err(NodeError::msg(format!("run {tenant} saw tenant {seen}")));
        }
        ctx.update_named("hits", |hits: &mut u64| *hits += 1)?;
        Ok(seen)
    }

    let runner = StromaRunner::quick().with_context(Context::new().with_named("hits", 0_u64));
    let p = pipeline![write_tenant, check_tenant, check_tenant];
    let runs: Vec<_> = (0..100_u64)
        .map(|tenant| {
            let (runner, p) = (runner.clone(), p);
            tokio::spawn(async move { runner.run(&p, tenant).await })
        })
        .collect();
    for (tenant, run) in runs.into_iter().enumerate() {
        let result = run.await.unwrap().unwrap();
        assert_eq!(result.final_state, tenant as u64);
        // Each run counted only its own two hits on top of the shared zero.
        assert_eq!(*result.context.get_named::<u64>("hits").unwrap(), 2);
    }
    assert_eq!(
        *runner.config().context().get_named::<u64>("hits").unwrap(),
        0,
        "runner-level entries are read-only for runs"
    );
}

#[tokio::test]
async fn with_records_off_a_failing_or_panicking_node_is_still_named() {
    // Runs that record nothing take the plain path: the node must still be known.
    let runner = StromaRunner::new(RunConfig::default().records(false));
    let err = runner
        .run(&pipeline![add_one, fail_on_odd], 4)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "node `fail_on_odd` failed: 5 is odd");
    let err = runner
        .run(&pipeline![add_one, add_one, panic_on_three], 1)
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "panic_on_three");
    assert!(err.records().is_empty());
}

#[node]
async fn needs_limit(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    struct Limit;
    ctx.require::<Limit>()?;
    Ok(n)
}

#[tokio::test]
async fn with_records_off_nested_context_and_model_nodes_behave_as_with_records() {
    let runner = StromaRunner::new(RunConfig::default().records(false));
    // A context-taking node's own context error names it.
    let err = runner
        .run(&pipeline![add_one, needs_limit], 0)
        .await
        .unwrap_err();
    assert_eq!(err.node(), "needs_limit");
    assert!(err.to_string().contains("needs_limit"), "{err}");
    // A panic deep in a named, nested pipeline names the leaf that panicked.
    let inner = pipeline![add_one, panic_on_three].named("inner");
    let err = runner
        .run(&pipeline![add_one, inner, add_one], 1)
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "panic_on_three");
    // A model node on the plain path keeps its write; the later failure names its node.
    let err = runner
        .run_with_model(&pipeline![bump, add_one, fail_on_odd], 2, vec![7])
        .await
        .unwrap_err();
    assert_eq!(err.node(), "fail_on_odd");
    assert_eq!(err.into_model::<Vec<u64>>().unwrap(), [7, 2]);
}

#[tokio::test]
async fn time_spent_outside_nodes_is_not_counted_in_the_next_nodes_record() {
    // A node's record starts where the previous node ended only when nothing
    // else ran between; a slow loop condition must not land in the body's record.
    let slow_until = |n: &u64, _: &()| {
        std::thread::sleep(Duration::from_millis(20));
        *n >= 3
    };
    let result = StromaRunner::quick()
        .run(&stroma::loop_until(add_one, slow_until), 0)
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
    assert_eq!(result.records().len(), 3);
    for record in result.records() {
        assert!(record.duration < Duration::from_millis(20), "{record:?}");
    }
}

/// A pipeline returned under the trait's former name, `RunsWith`.
fn counted_under_the_old_name() -> impl RunsWith<Vec<u64>, Input = u64, Output = u64> {
    pipeline![add_one, bump]
}

#[tokio::test]
async fn code_naming_runs_with_still_runs_its_pipelines() {
    let runner = StromaRunner::quick();
    let done = runner
        .run_with_model(&counted_under_the_old_name(), 1, Vec::new())
        .await
        .expect("add_one and bump never fail");
    assert_eq!((done.final_state, done.model), (2, vec![2]));
}

/// Many runs kept in one collection: each entry point returns a named
/// `RunFuture`, so the runs need no box of their own.
#[tokio::test]
async fn runs_can_be_kept_under_their_named_type() {
    let runner = StromaRunner::quick();
    let p = pipeline![add_one, add_one];
    let runs: Vec<RunFuture<'_, u64>> = (0..4).map(|x| runner.run(&p, x)).collect();
    let done = futures::future::join_all(runs).await;
    let outputs: Vec<u64> = done
        .into_iter()
        .map(|r| r.expect("add_one never fails").final_state)
        .collect();
    assert_eq!(outputs, [2, 3, 4, 5]);
}

/// A model that may go to another thread but not be shared: `Cell` is not `Sync`.
#[derive(Clone, Debug, Default)]
struct Unshared {
    steps: std::cell::Cell<u32>,
}

#[node]
async fn step_then_fail(n: u64, model: &mut Unshared) -> Result<u64, NodeError> {
    model.steps.set(model.steps.get() + 1);
    Err(NodeError::msg(format!("{n} is not welcome")))
}

async fn run_for_anyhow(runner: &StromaRunner) -> anyhow::Result<u64> {
    let done = runner
        .run_with_model(&pipeline![step_then_fail], 7, Unshared::default())
        .await?;
    Ok(done.final_state)
}

#[tokio::test]
async fn a_run_error_is_shareable_whatever_the_model_and_converts_into_anyhow() {
    fn shareable<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let runner = StromaRunner::quick();
    let err = runner
        .run_with_model(&pipeline![step_then_fail], 7, Unshared::default())
        .await
        .unwrap_err();
    shareable(&err);
    // The model, not `Sync`, is taken by value: as before the node that failed.
    assert_eq!(err.into_model::<Unshared>().unwrap().steps.get(), 0);

    // `?` into `anyhow::Error`, which asks `Send + Sync + 'static`.
    let err = run_for_anyhow(&runner).await.unwrap_err();
    let run_error = err
        .downcast_ref::<RunError>()
        .expect("the run's error inside");
    assert_eq!(run_error.node(), "step_then_fail");

    // A model that is `Sync` is lent out in place.
    let err = runner
        .run_with_model(&pipeline![add_one, bump, fail_on_odd], 2, vec![1_u64])
        .await
        .unwrap_err();
    assert_eq!(err.model::<Vec<u64>>(), Some(&vec![1, 3]));
}

/// A node returning `anyhow::Result`.
#[node]
async fn page_count(text: String) -> anyhow::Result<u32> {
    let n: u32 = text.trim().parse()?;
    anyhow::ensure!(n > 0, "zero is not a page count");
    Ok(n)
}

/// A node returning `eyre::Result`.
#[node]
async fn page_count_eyre(text: String) -> eyre::Result<u32> {
    let n: u32 = text.trim().parse()?;
    eyre::ensure!(n > 0, "zero is not a page count");
    Ok(n)
}

#[tokio::test]
async fn anyhow_and_eyre_errors_fail_their_node_with_their_message_and_source() {
    let runner = StromaRunner::quick();
    assert_eq!(
        runner
            .run(&page_count, "12".into())
            .await
            .unwrap()
            .final_state,
        12
    );
    let err = runner.run(&page_count, "0".into()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `page_count` failed: zero is not a page count"
    );
    let err = runner.run(&page_count_eyre, "0".into()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `page_count_eyre` failed: zero is not a page count"
    );
    // An error `?` converted stays reachable under the node's error.
    for err in [
        runner.run(&page_count, "x".into()).await.unwrap_err(),
        runner.run(&page_count_eyre, "x".into()).await.unwrap_err(),
    ] {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err.cause());
        let mut found = false;
        while let Some(error) = cause {
            found |= error.downcast_ref::<std::num::ParseIntError>().is_some()
                || error.to_string() == "invalid digit found in string";
            cause = error.source();
        }
        assert!(found, "the parse error is under {err:?}");
    }
}
