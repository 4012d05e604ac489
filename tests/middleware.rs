//! Middleware: order, short-circuits, blame, and the built-in timing middleware.

use std::sync::{Arc, Mutex};

use stroma::prelude::*;
use stroma::{
    BoxError, BoxFuture, ExecutionContext, Middleware, MiddlewareError, Next, NodeCall, NodeExt,
    NodeStatus, NodeTimings, RunContext, TimingMiddleware,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Logs entering and leaving every hook, under its name.
struct Tracer {
    name: &'static str,
    log: Log,
}

impl Tracer {
    fn new(name: &'static str, log: &Log) -> Self {
        Tracer {
            name,
            log: Arc::clone(log),
        }
    }

    fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
}

impl Middleware for Tracer {
    fn name(&self) -> &str {
        self.name
    }

    fn on_run<'a>(
        &'a self,
        run: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.push(format!("{} run {} >", self.name, run.graph_id));
            let outcome = next.run().await;
            self.push(format!("{} run < {}", self.name, ok_or_err(&outcome)));
            outcome
        })
    }

    fn on_node<'a>(
        &'a self,
        node: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            self.push(format!("{} {} >", self.name, node.node));
            let outcome = next.run().await;
            self.push(format!(
                "{} {} < {}",
                self.name,
                node.node,
                ok_or_err(&outcome)
            ));
            outcome
        })
    }
}

fn ok_or_err(outcome: &Result<(), BoxError>) -> String {
    match outcome {
        Ok(()) => "ok".into(),
        Err(err) => format!("err({err})"),
    }
}

fn log() -> Log {
    Arc::default()
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[node]
async fn first(n: u32, ctx: &Context) -> u32 {
    ctx.insert_named("first ran", true);
    n + 1
}

#[node]
async fn second(n: u32) -> Result<u32, NodeError> {
    if n > 100 {
        return Err(NodeError::msg("too big"));
    }
    Ok(n * 2)
}

#[node]
async fn explode(n: u32) -> u32 {
    if n > 0 {
        panic!("boom");
    }
    n
}

#[tokio::test]
async fn middlewares_nest_in_registration_order_around_runs_and_nodes() {
    let log = log();
    let runner = StromaRunner::quick()
        .with_middleware(Tracer::new("outer", &log))
        .with_middleware(Tracer::new("inner", &log));
    let result = runner
        .run(&pipeline![first, second].named("job"), 1)
        .await
        .unwrap();
    assert_eq!(result.final_state, 4);
    assert_eq!(
        lines(&log),
        [
            "outer run job >",
            "inner run job >",
            "outer first >",
            "inner first >",
            "inner first < ok",
            "outer first < ok",
            "outer second >",
            "inner second >",
            "inner second < ok",
            "outer second < ok",
            "inner run < ok",
            "outer run < ok",
        ]
    );
}

/// Stops every node named `second` before it runs.
struct Gate;

impl Middleware for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn on_node<'a>(
        &'a self,
        node: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if node.node == "second" {
                return Err("closed for `second`".into());
            }
            next.run().await
        })
    }
}

#[tokio::test]
async fn a_node_hook_can_stop_a_node_and_is_named_for_it() {
    let log = log();
    let runner = StromaRunner::quick()
        .with_middleware(Tracer::new("outer", &log))
        .with_middleware(Gate);
    let err = runner.run(&pipeline![first, second], 1).await.unwrap_err();
    assert_eq!(err.node(), "second");
    assert_eq!(
        err.to_string(),
        "node `second` failed: stopped by middleware `gate`: closed for `second`"
    );
    let cause = std::error::Error::source(&err).unwrap();
    assert_eq!(
        cause
            .downcast_ref::<MiddlewareError>()
            .unwrap()
            .middleware(),
        "gate"
    );
    // The outer middleware saw the stop; the run kept what `first` wrote.
    assert!(lines(&log).contains(
        &"outer second < err(stopped by middleware `gate`: closed for `second`)".to_string()
    ));
    assert!(*err.context().get_named::<bool>("first ran").unwrap());
}

/// Refuses runs without a tenant.
struct RequireTenant;

impl Middleware for RequireTenant {
    fn on_run<'a>(
        &'a self,
        run: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if run.context.tenant_id().is_none() {
                return Err("every run needs a tenant".into());
            }
            next.run().await
        })
    }
}

#[tokio::test]
async fn a_run_hook_can_refuse_a_run_before_any_node_runs() {
    let runner = StromaRunner::quick().with_middleware(RequireTenant);
    let p = pipeline![first, second].named("billing");
    let err = runner.run(&p, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "run of `billing` failed: stopped by middleware `RequireTenant`: every run needs a tenant"
    );
    assert!(err.is_run_stopped());
    assert_eq!(err.node(), "billing");
    assert!(err.records().is_empty());
    assert!(!err.context().contains_named("first ran"));

    let runner = runner.with_execution_context(ExecutionContext::of([("tenant_id", "acme")]));
    assert_eq!(runner.run(&p, 1).await.unwrap().final_state, 4);
}

#[tokio::test]
async fn a_nodes_own_error_passes_through_middleware_unblamed() {
    let log = log();
    let runner = StromaRunner::quick().with_middleware(Tracer::new("t", &log));
    let err = runner
        .run(&pipeline![first, second], 200)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "node `second` failed: too big");
    assert!(lines(&log).contains(&"t second < err(too big)".to_string()));
    assert!(lines(&log).contains(&"t run < err(node `second` failed: too big)".to_string()));
}

/// Forgets to call `next`.
struct Forgetful;

impl Middleware for Forgetful {
    fn on_node<'a>(
        &'a self,
        _: &'a NodeCall<'a>,
        _: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_hook_that_never_calls_next_is_an_error_naming_it() {
    let runner = StromaRunner::quick().with_middleware(Forgetful);
    let err = runner.run(&second, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `second` failed: stopped by middleware `Forgetful`: it returned without calling `next`"
    );
}

/// Rejects outputs after the fact.
struct PostCheck;

impl Middleware for PostCheck {
    fn on_node<'a>(
        &'a self,
        _: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            next.run().await?;
            Err("audit trail unavailable".into())
        })
    }
}

#[tokio::test]
async fn an_error_a_hook_makes_after_next_is_blamed_on_it() {
    let runner = StromaRunner::quick().with_middleware(PostCheck);
    let err = runner.run(&second, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `second` failed: stopped by middleware `PostCheck`: audit trail unavailable"
    );
}

#[tokio::test]
async fn a_panic_under_middleware_still_fails_only_its_run() {
    let log = log();
    let runner = StromaRunner::quick().with_middleware(Tracer::new("t", &log));
    let err = runner.run(&pipeline![first, explode], 1).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "explode");
    assert_eq!(
        runner
            .run(&pipeline![explode], 0)
            .await
            .unwrap()
            .final_state,
        0
    );
}

#[tokio::test]
async fn node_hooks_see_the_run_and_its_context() {
    struct Spy(Log);
    impl Middleware for Spy {
        fn on_node<'a>(
            &'a self,
            node: &'a NodeCall<'a>,
            next: Next<'a>,
        ) -> BoxFuture<'a, Result<(), BoxError>> {
            Box::pin(async move {
                let outcome = next.run().await;
                self.0.lock().unwrap().push(format!(
                    "{} in {} for {} (first ran: {})",
                    node.node,
                    node.run.graph_id,
                    node.run.context.tenant_id().unwrap_or("-"),
                    node.context.contains_named("first ran"),
                ));
                outcome
            })
        }
    }
    let log = log();
    let runner = StromaRunner::quick()
        .with_execution_context(ExecutionContext::of([("tenant_id", "acme")]))
        .with_middleware(Spy(log.clone()));
    runner.run(&pipeline![first, second], 1).await.unwrap();
    assert_eq!(
        lines(&log),
        [
            "first in first > second for acme (first ran: true)",
            "second in first > second for acme (first ran: true)",
        ]
    );
}

#[tokio::test]
async fn the_timing_middleware_collects_every_nodes_time_into_the_result() {
    let runner = StromaRunner::quick().with_middleware(TimingMiddleware);
    let result = runner
        .run(&pipeline![first, second, first], 1)
        .await
        .unwrap();
    let timings = result
        .context
        .get::<NodeTimings>()
        .expect("timings collected");
    let names: Vec<_> = timings.0.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["first", "second", "first"]);
    assert!(runner.config().context().get::<NodeTimings>().is_none());
}

/// Panics in its run hook after the pipeline has finished.
struct PanicsAfterTheRun;

impl Middleware for PanicsAfterTheRun {
    fn on_run<'a>(
        &'a self,
        _: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            next.run().await?;
            panic!("after the last node");
        })
    }
}

#[tokio::test]
async fn a_panic_after_the_last_node_fails_the_run_and_records_no_node_as_failed() {
    let runner = StromaRunner::quick().with_middleware(PanicsAfterTheRun);
    let err = runner.run(&pipeline![first, first], 1).await.unwrap_err();
    assert!(err.is_panic());
    // Both nodes finished before the panic: neither is recorded again as failed.
    let statuses: Vec<NodeStatus> = err.records().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [NodeStatus::Completed, NodeStatus::Completed]);
}
