//! Stopping a run from outside: a cancel token, a run-level time limit, and
//! dropping the run's future. The run ends at the next await point; the tree
//! shows what completed, what was cancelled and what was skipped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use stroma::prelude::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Log {
    lines: Vec<String>,
}

#[node]
async fn first(x: u32, log: &mut Log) -> u32 {
    log.lines.push("first".into());
    x + 1
}

static SLOW_FINISHED: AtomicU32 = AtomicU32::new(0);

#[node]
async fn slow(x: u32, log: &mut Log) -> u32 {
    log.lines.push("slow started".into());
    tokio::time::sleep(Duration::from_secs(5)).await;
    SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
    x
}

#[node]
async fn last(x: u32) -> u32 {
    x
}

#[tokio::test]
async fn a_cancelled_token_ends_the_run_at_the_node_that_was_running() {
    let runner = StromaRunner::quick();
    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.cancel();
    });
    let started = Instant::now();
    let err = runner
        .run_with(
            &pipeline![first, slow, last],
            1,
            RunOptions::new().model(Log::default()).cancel_token(token),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.is_cancelled());
    assert_eq!(err.path().as_str(), "slow");
    assert_eq!(
        err.to_string(),
        "node `slow` failed: the run was cancelled here"
    );
    let tree = err.tree();
    assert_eq!(tree.find("first").unwrap().status, NodeStatus::Completed);
    assert_eq!(tree.find("slow").unwrap().status, NodeStatus::Cancelled);
    assert_eq!(tree.find("last").unwrap().status, NodeStatus::Skipped);
    // The model is as it was before the cancelled node.
    assert_eq!(err.model::<Log>().unwrap().lines, ["first"]);
}

#[tokio::test]
async fn a_run_past_its_time_limit_is_cancelled_and_says_so() {
    let runner = StromaRunner::quick();
    let err = runner
        .run_with(
            &pipeline![first, slow, last],
            1,
            RunOptions::new()
                .model(Log::default())
                .timeout(Duration::from_millis(40)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    let cancelled = err.cause().downcast_ref::<Cancelled>().unwrap();
    assert_eq!(cancelled.timed_out_after(), Some(Duration::from_millis(40)));
    assert!(err.to_string().contains("timed out after 40ms"), "{err}");
    // A run within its limit is untouched.
    let done = runner
        .run_with(
            &pipeline![first, last],
            1,
            RunOptions::new()
                .model(Log::default())
                .timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(done.final_state, 2);
}

#[node]
async fn watcher(x: u32, ctx: &Context) -> u32 {
    // Work handed to a task of its own watches the run's cancellation.
    let ctx = ctx.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        ctx.cancelled().await;
        let _ = tx.send(ctx.is_cancelled());
    });
    WATCHED.lock().unwrap().replace(rx);
    tokio::time::sleep(Duration::from_secs(5)).await;
    x
}

static WATCHED: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<bool>>> =
    std::sync::Mutex::new(None);

#[tokio::test]
async fn nodes_can_watch_for_the_run_being_stopped() {
    let runner = StromaRunner::quick();
    let err = runner
        .run_with(
            &pipeline![watcher],
            1,
            RunOptions::new().timeout(Duration::from_millis(30)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    let rx = WATCHED.lock().unwrap().take().unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(2), rx)
        .await
        .expect("the watcher heard of it")
        .unwrap();
    assert!(seen, "ctx.is_cancelled() agrees");
}

#[tokio::test]
async fn dropping_the_run_leaves_nothing_running() {
    let runner = StromaRunner::quick();
    let before = SLOW_FINISHED.load(Ordering::SeqCst);
    let p = pipeline![first, slow, last];
    let dropped = tokio::time::timeout(
        Duration::from_millis(30),
        runner.run_with_model(&p, 1, Log::default()),
    )
    .await;
    assert!(dropped.is_err(), "the run was dropped midway");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(SLOW_FINISHED.load(Ordering::SeqCst), before);
}
