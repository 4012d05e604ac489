//! A panic anywhere user code runs (a middleware hook, the event handler,
//! a loop condition, the `Drop` of an output no longer needed, a run's
//! future dropped when it is cancelled) fails only its run, with an error
//! naming where, and the error already in flight is kept beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stroma::prelude::*;
use stroma::{
    BoxError, BoxFuture, HandlerPanicked, Middleware, MiddlewareError, Next, NodeCall, RunContext,
};

#[node]
async fn first(x: u32) -> u32 {
    x + 1
}

#[node]
async fn fails(x: u32) -> Result<u32, NodeError> {
    Err(NodeError::msg(format!("{x} is refused")))
}

// ---- middleware ----------------------------------------------------------------

/// Panics in `on_run` after the pipeline, or in `on_node` around `first`.
struct Breaks {
    in_run: bool,
}

impl Middleware for Breaks {
    fn name(&self) -> &str {
        "breaks"
    }

    fn on_run<'a>(
        &'a self,
        _: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let outcome = next.run().await;
            if self.in_run {
                panic!("audit log unreachable");
            }
            outcome
        })
    }

    fn on_node<'a>(
        &'a self,
        node: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let outcome = next.run().await;
            if !self.in_run && node.node == "first" {
                panic!("metrics overflow");
            }
            outcome
        })
    }
}

#[tokio::test]
async fn a_run_hook_panic_names_the_middleware_not_the_last_node() {
    let runner = StromaRunner::quick().with_middleware(Breaks { in_run: true });
    let err = runner
        .run(&pipeline![first, first].named("p"), 1)
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert!(err.is_run_stopped());
    assert_eq!(
        err.to_string(),
        "run of `p` failed: middleware `breaks` panicked in `on_run`: audit log unreachable"
    );
    let statuses: Vec<NodeStatus> = err.records().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [NodeStatus::Completed, NodeStatus::Completed]);
    let blamed = err.cause().downcast_ref::<MiddlewareError>().unwrap();
    assert_eq!(blamed.middleware(), "breaks");
    assert_eq!(blamed.in_flight(), None);
}

#[tokio::test]
async fn a_run_hook_panic_after_a_node_failed_keeps_that_failure() {
    let runner = StromaRunner::quick().with_middleware(Breaks { in_run: true });
    let err = runner
        .run(&pipeline![first, fails].named("p"), 1)
        .await
        .unwrap_err();
    let blamed = err.cause().downcast_ref::<MiddlewareError>().unwrap();
    assert_eq!(
        blamed.in_flight(),
        Some("node `p.fails` failed: 2 is refused")
    );
    assert!(err.to_string().ends_with(
        "panicked in `on_run`: audit log unreachable \
         (after it had failed: node `p.fails` failed: 2 is refused)"
    ));
}

#[tokio::test]
async fn a_node_hook_panic_fails_that_node_naming_the_middleware() {
    let runner = StromaRunner::quick().with_middleware(Breaks { in_run: false });
    let err = runner.run(&pipeline![first, first], 1).await.unwrap_err();
    assert_eq!(err.path().as_str(), "first");
    assert_eq!(
        err.to_string(),
        "node `first` failed: middleware `breaks` panicked in `on_node`: metrics overflow"
    );
    assert!(err.is_panic());
}

#[node]
async fn explodes(_x: u32) -> u32 {
    panic!("the node itself")
}

#[tokio::test]
async fn a_node_panic_under_middleware_is_still_the_node_s() {
    let runner = StromaRunner::quick().with_middleware(Breaks { in_run: false });
    let err = runner.run(&pipeline![explodes], 1).await.unwrap_err();
    assert_eq!(err.to_string(), "node `explodes` panicked: the node itself");
}

// ---- the event handler -----------------------------------------------------------

#[tokio::test]
async fn a_handler_panic_fails_the_run_naming_the_event_and_later_events_still_arrive() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let runner = StromaRunner::quick().with_handler(move |event: &Event| {
        seen.fetch_add(1, Ordering::SeqCst);
        if matches!(event, Event::NodeCompleted { .. }) {
            panic!("the dashboard is down");
        }
    });
    let err = runner
        .run(&pipeline![first].named("p"), 1)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "run of `p` failed: the run's event handler panicked on `node_completed` of `p.first`: \
         the dashboard is down"
    );
    assert!(err.cause().downcast_ref::<HandlerPanicked>().is_some());
    // Run started, scope `p` started, node started, node completed
    // (panicked), scope ended: all delivered.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_handler_panic_is_kept_beside_a_node_failure() {
    let runner = StromaRunner::quick().with_handler(|event: &Event| {
        if matches!(event, Event::NodeFailed { .. }) {
            panic!("the dashboard is down");
        }
    });
    let err = runner
        .run(&pipeline![first, fails].named("p"), 1)
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "p.fails");
    assert_eq!(err.also().len(), 1);
    assert_eq!(
        err.to_string(),
        "node `p.fails` failed: 2 is refused; then run of `p` failed: the run's event \
         handler panicked on `node_failed` of `p.fails`: the dashboard is down"
    );
}

// ---- outputs whose `Drop` panics ----------------------------------------------------

/// An output that panics when dropped.
#[derive(Debug)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Bomb dropped");
        }
    }
}

#[node]
async fn arm(_x: u32) -> Bomb {
    Bomb
}

#[node]
async fn slow_fail(x: u32) -> Result<Bomb, NodeError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Err(NodeError::msg(format!("{x} failed late")))
}

#[tokio::test]
async fn a_bomb_dropped_beside_a_failed_branch_keeps_the_branch_error() {
    let err = StromaRunner::quick()
        .run(&pipeline![first, parallel![arm, slow_fail]], 1)
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "parallel[1].slow_fail", "{err}");
    assert!(err.to_string().contains("2 failed late"), "{err}");
    assert_eq!(err.also().len(), 1, "{err}");
    // Named by its id: a branch that succeeded keeps no frame to tell its index.
    assert_eq!(
        err.also()[0].to_string(),
        "node `arm` panicked while its output was dropped: Bomb dropped"
    );
    assert!(!err.to_string().contains("node `first`"), "{err}");
}

#[node]
async fn bomb_unless_three(x: u32) -> Result<Bomb, NodeError> {
    if x == 3 {
        return Err(NodeError::msg("three"));
    }
    Ok(Bomb)
}

#[tokio::test]
async fn bombs_dropped_after_a_failed_item_keep_the_item_error() {
    let err = StromaRunner::quick()
        .run(&for_each(bomb_unless_three), vec![1, 2, 3, 4])
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "for_each[2].bomb_unless_three");
    assert_eq!(err.also().len(), 3, "{err}");
    for dropped in err.also() {
        assert!(
            dropped
                .to_string()
                .ends_with("panicked while its output was dropped: Bomb dropped"),
            "{dropped}"
        );
        assert_eq!(dropped.node(), "bomb_unless_three");
    }
}

#[node]
async fn tick(bomb: Bomb) -> Bomb {
    // The input is passed on, not dropped.
    bomb
}

#[tokio::test]
async fn a_bomb_dropped_at_a_loop_cap_keeps_the_cap_error() {
    let looped = loop_until(tick, |_: &Bomb, _: &()| false)
        .max_loops(3)
        .named("ticks");
    let err = StromaRunner::quick()
        .run(&pipeline![arm, looped], 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("node `ticks` failed: "),
        "{err}"
    );
    assert!(
        err.to_string().contains("3"),
        "the cap error is kept: {err}"
    );
    let cap = err.cause().downcast_ref::<LoopCapReached>();
    assert!(cap.is_some(), "the cause is the cap, not the panic: {err}");
    assert_eq!(err.also().len(), 1, "{err}");
    assert!(
        err.also()[0]
            .to_string()
            .ends_with("panicked while its output was dropped: Bomb dropped"),
        "{}",
        err.also()[0]
    );
}

#[tokio::test]
async fn a_loop_condition_panic_names_the_loop_and_keeps_a_bomb() {
    let looped = loop_until(tick, |_: &Bomb, _: &()| panic!("bad condition")).named("ticks");
    let err = StromaRunner::quick()
        .run(&pipeline![arm, looped], 1)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string().split("; then").next().unwrap(),
        "node `ticks` panicked: bad condition \
         (in iteration 1 of loop `ticks`, whose changes were discarded)"
    );
    assert_eq!(err.also().len(), 1, "{err}");
}

// ---- a run cancelled while its code panics on drop ----------------------------------

/// Panics when dropped midway, as a future holding it is when its run is cancelled.
struct PanicsOnCancel;

impl Drop for PanicsOnCancel {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("cleanup failed");
        }
    }
}

#[node]
async fn waits(x: u32) -> u32 {
    let guard = PanicsOnCancel;
    tokio::time::sleep(Duration::from_secs(30)).await;
    std::mem::forget(guard);
    x
}

#[tokio::test]
async fn a_cancelled_run_whose_node_panics_on_drop_is_cancelled_and_says_so() {
    let err = StromaRunner::quick()
        .run_with(
            &pipeline![first, waits],
            1,
            RunOptions::new().timeout(Duration::from_millis(20)),
        )
        .await
        .unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.path().as_str(), "waits");
    assert_eq!(err.also().len(), 1);
    assert_eq!(
        err.also()[0].to_string(),
        "node `waits` panicked while it was cancelled: cleanup failed"
    );
}

#[tokio::test]
async fn a_node_cut_off_by_its_time_limit_that_panics_on_drop_keeps_the_timeout() {
    let err = StromaRunner::quick()
        .run(
            &pipeline![first, waits.timeout(Duration::from_millis(20))],
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "waits");
    assert!(err.cause().is::<TimedOut>(), "{err}");
    assert_eq!(err.also().len(), 1);
    assert_eq!(
        err.also()[0].to_string(),
        "node `waits` panicked while it was cut off: cleanup failed"
    );
}
