//! Stopping a run from outside: a cancel token, a run-level time limit, and
//! dropping the run's future. The run ends at the next await point; the tree
//! shows what completed, what was cancelled and what was skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

// ---- tasks started with `stroma::spawn` --------------------------------------

/// Set when the task holding it ends, finished or aborted.
struct Ended(Arc<AtomicBool>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One flag per test, handed to the nodes through the run's context.
#[derive(Clone)]
struct Flags {
    attached: Arc<AtomicBool>,
    nested: Arc<AtomicBool>,
    detached: Arc<AtomicBool>,
    detached_finished: Arc<AtomicBool>,
}

impl Flags {
    fn new() -> Self {
        Flags {
            attached: Arc::default(),
            nested: Arc::default(),
            detached: Arc::default(),
            detached_finished: Arc::default(),
        }
    }
}

/// Starts a task of the run (which starts one of its own), and a detached
/// one, then waits long past any test's patience.
#[node]
async fn starts_tasks(x: u32, ctx: &Context) -> u32 {
    let flags = ctx.require::<Flags>().unwrap();
    let (attached, nested) = (Ended(flags.attached.clone()), flags.nested.clone());
    stroma::spawn(async move {
        let _ended = attached;
        let inner = Ended(nested);
        stroma::spawn(async move {
            let _ended = inner;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let (detached, finished) = (
        Ended(flags.detached.clone()),
        flags.detached_finished.clone(),
    );
    stroma::spawn_detached(async move {
        let _ended = detached;
        tokio::time::sleep(Duration::from_millis(150)).await;
        finished.store(true, Ordering::SeqCst);
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    x
}

/// Waits (up to 2 s) for `flag` to be set.
async fn eventually(flag: &AtomicBool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !flag.load(Ordering::SeqCst) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn runner_with(flags: &Flags) -> StromaRunner {
    StromaRunner::quick().with_context(Context::new().with(flags.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_aborts_its_tasks_and_theirs_but_not_detached_ones() {
    let flags = Flags::new();
    let err = runner_with(&flags)
        .run_with(
            &pipeline![starts_tasks],
            1,
            RunOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    assert!(
        eventually(&flags.attached).await,
        "the run's task was aborted"
    );
    assert!(eventually(&flags.nested).await, "and the task it started");
    assert!(
        eventually(&flags.detached_finished).await,
        "the detached task ran to its end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_aborts_its_tasks() {
    let flags = Flags::new();
    let runner = runner_with(&flags);
    let p = pipeline![starts_tasks];
    let dropped = tokio::time::timeout(Duration::from_millis(50), runner.run(&p, 1)).await;
    assert!(dropped.is_err(), "the run was dropped midway");
    assert!(eventually(&flags.attached).await);
    assert!(eventually(&flags.nested).await);
    assert!(eventually(&flags.detached_finished).await);
}

#[node]
async fn starts_a_task(x: u32, ctx: &Context) -> u32 {
    let flags = ctx.require::<Flags>().unwrap();
    let finished = flags.detached_finished.clone();
    stroma::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        finished.store(true, Ordering::SeqCst);
    });
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ends_by_itself_leaves_its_tasks_running() {
    let flags = Flags::new();
    let done = runner_with(&flags)
        .run(&pipeline![starts_a_task], 1)
        .await
        .unwrap();
    assert_eq!(done.final_state, 1);
    assert!(!flags.detached_finished.load(Ordering::SeqCst));
    assert!(eventually(&flags.detached_finished).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_node_tasks_belong_to_the_run_too() {
    let flags = Flags::new();
    let err = runner_with(&flags)
        .run_with(
            &pipeline![starts_tasks.isolated()],
            1,
            RunOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    assert!(eventually(&flags.attached).await);
    assert!(eventually(&flags.nested).await);
}

/// Starts a task of the run from inside an execution-context scope of its
/// own (a tenant switched for one call), then waits.
#[node]
async fn starts_task_in_a_scope(x: u32, ctx: &Context) -> u32 {
    let attached = Ended(ctx.require::<Flags>().unwrap().attached.clone());
    let other_tenant = ExecutionContext::of([("tenant_id", "globex")]);
    ExecutionContext::scope(other_tenant, async move {
        stroma::spawn(async move {
            let _ended = attached;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
    })
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_in_a_scope_inside_a_run_is_aborted_with_the_run() {
    let flags = Flags::new();
    let err = runner_with(&flags)
        .run_with(
            &pipeline![starts_task_in_a_scope],
            1,
            RunOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    assert!(
        eventually(&flags.attached).await,
        "the task started in the scope was aborted with its run"
    );
}
