//! Execution context: who a run is for (tenant, user, correlation id), readable
//! from any code the run executes without passing it down.
//!
//! `cargo run --example execution_context`
//!
//! The rules this program shows, and checks:
//! - a plain `async fn` deep in a node's call stack reads `current_tenant_id()`
//!   and friends with no context parameter;
//! - a run's execution context comes, key by key, from the per-run options,
//!   then the runner, then the enclosing `ExecutionContext::scope`;
//! - a run given no correlation id uses its run id;
//! - middleware sees each run's context, and can refuse a run;
//! - a node can enrich the context for later nodes without changing what
//!   earlier ones saw and without losing a key;
//! - `stroma::spawn` carries the context into a new task, `tokio::spawn` does not;
//! - secret values never show in `Debug` output;
//! - `TimingMiddleware` leaves each node's time in the run's result.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stroma::prelude::*;
use stroma::{
    BoxError, BoxFuture, ExecutionContext, Middleware, MiddlewareError, Next, NodeTimings,
    RunContext, RunOptions, TimingMiddleware, current_correlation_id, current_execution_context,
    current_tenant_id, current_user_id,
};

// ---------------------------------------------------------------------------
// The service layer: plain async functions, no context parameter anywhere.
// ---------------------------------------------------------------------------

/// What the audit log wrote, and for whom.
#[derive(Debug, Clone, PartialEq)]
struct AuditEntry {
    action: String,
    tenant: Option<String>,
    user: Option<String>,
    correlation: Option<String>,
}

/// Writes an audit entry. Two calls below the node that started it, and it
/// still knows who the run is for.
async fn audit_log(action: String) -> AuditEntry {
    AuditEntry {
        action,
        tenant: current_tenant_id(),
        user: current_user_id(),
        correlation: current_correlation_id(),
    }
}

/// A stored order row.
#[derive(Debug, Clone)]
struct Saved {
    order_id: u32,
    total_cents: u64,
    tenant: String,
    /// Everything the repository could see, for the checks below.
    context: ExecutionContext,
    audit: AuditEntry,
}

/// The repository: scopes every write to the current tenant, and refuses to
/// write without one rather than guess.
async fn save_order(order: &Priced) -> Result<Saved, NodeError> {
    // A database round trip: the context survives awaits and thread hops.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let tenant = current_tenant_id().ok_or_else(|| NodeError::msg("no tenant to save for"))?;
    let context = current_execution_context().unwrap_or_default();
    let audit = audit_log(format!("order {} saved", order.id)).await;
    Ok(Saved {
        order_id: order.id,
        total_cents: order.total_cents,
        tenant,
        context,
        audit,
    })
}

// ---------------------------------------------------------------------------
// The pipeline: validate > price > persist.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct OrderRequest {
    id: u32,
    items: Vec<(&'static str, u32)>,
}

#[derive(Debug, Clone)]
struct Order {
    id: u32,
    items: Vec<(&'static str, u32)>,
}

#[derive(Debug, Clone)]
struct Priced {
    id: u32,
    total_cents: u64,
}

#[derive(Debug)]
struct Receipt {
    saved: Saved,
    /// The fraud score as `persist` read it from its `&Context`.
    fraud_score: Option<u32>,
    /// Audit entries written from a spawned task, one per way of spawning.
    carried: AuditEntry,
    detached: AuditEntry,
}

#[node]
async fn validate(request: OrderRequest) -> Result<Order, NodeError> {
    if request.items.is_empty() {
        return Err(NodeError::msg("an order needs at least one item"));
    }
    Ok(Order {
        id: request.id,
        items: request.items,
    })
}

/// Prices the order and scores it for fraud; the score is metadata about the
/// run, not part of the order, so it goes into the execution context.
#[node]
async fn price(order: Order, ctx: &Context) -> Priced {
    let before = ctx.execution();
    let total_cents = order
        .items
        .iter()
        .map(|(item, quantity)| {
            let unit = match *item {
                "tea" => 450,
                "cake" => 1_900,
                _ => 1_000,
            };
            unit * u64::from(*quantity)
        })
        .sum();
    let fraud_score = if total_cents > 10_000 { 70 } else { 12 };
    ctx.enrich([("fraud_score", fraud_score)]);
    // Kept so the caller can check that this snapshot never changed.
    ctx.insert_named("seen_by_price", before);
    Priced {
        id: order.id,
        total_cents,
    }
}

#[node]
async fn persist(priced: Priced, ctx: &Context) -> Result<Receipt, NodeError> {
    let fraud_score = ctx.execution().get_as::<u32>("fraud_score")?;
    let saved = save_order(&priced).await?;
    // An export audit off the request path: `stroma::spawn` takes the context
    // along; plain `tokio::spawn` starts a task with none.
    let carried = stroma::spawn(audit_log(format!("order {} exported", priced.id)));
    let detached = tokio::spawn(audit_log(format!("order {} exported", priced.id)));
    Ok(Receipt {
        saved,
        fraud_score,
        carried: carried.await?,
        detached: detached.await?,
    })
}

// ---------------------------------------------------------------------------
// Middleware: a tenant log, and a guard registered after it.
// ---------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<String>>>;

/// Logs each run's tenant when it starts and how it ended.
struct TenantLog {
    lines: Log,
}

impl TenantLog {
    fn write(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }
}

impl Middleware for TenantLog {
    fn on_run<'a>(
        &'a self,
        run: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let tenant = run.context.tenant_id().unwrap_or("<none>");
            self.write(format!("start {} tenant={tenant}", run.graph_id));
            let outcome = next.run().await;
            let ended = if outcome.is_ok() { "done" } else { "fail" };
            self.write(format!("{ended:<5} {} tenant={tenant}", run.graph_id));
            outcome
        })
    }
}

/// Refuses runs with no tenant, before any node runs.
struct RequireTenant;

impl Middleware for RequireTenant {
    fn on_run<'a>(
        &'a self,
        run: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if run.context.tenant_id().is_none() {
                return Err("orders are always placed for a tenant".into());
            }
            next.run().await
        })
    }
}

fn request(id: u32) -> OrderRequest {
    OrderRequest {
        id,
        items: vec![("tea", 2), ("cake", 1)],
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let log = Log::default();
    // The first middleware registered is the outermost: the log sees even
    // the runs the guard refuses.
    let base = StromaRunner::quick()
        .with_middleware(TenantLog { lines: log.clone() })
        .with_middleware(RequireTenant)
        .with_middleware(TimingMiddleware);
    let acme = ExecutionContext::of([("tenant_id", "acme"), ("region", "eu")])
        .plus_secret("api_key", "sk-live-4242");
    let runner = base.clone().with_execution_context(acme.clone());
    let orders = pipeline![validate, price, persist].named("orders");

    // -- 1. The service layer reads the tenant with no parameter. ------------
    println!("1. service layer: who is the repository writing for?");

    // From the runner. No correlation id given: the run id stands in.
    let first = runner.run(&orders, request(1)).await?;
    let saved = &first.final_state.saved;
    println!(
        "   runner:            tenant={} correlation={} (the run id)",
        saved.tenant,
        saved.audit.correlation.as_deref().unwrap_or("-")
    );
    assert_eq!((saved.order_id, saved.total_cents), (1, 2 * 450 + 1_900));
    assert_eq!(saved.tenant, "acme");
    assert_eq!(saved.audit.tenant.as_deref(), Some("acme"));
    assert_eq!(saved.audit.user, None);
    assert_eq!(
        saved.audit.correlation,
        Some(first.run_id.to_text()),
        "a run with no correlation id uses its run id"
    );

    // A per-run override wins over the runner, key by key: `region` stays.
    let per_run = ExecutionContext::of([
        ("tenant_id", "globex"),
        ("user_id", "u-7"),
        ("correlation_id", "req-123"),
    ]);
    let second = runner
        .run_with(
            &orders,
            request(2),
            RunOptions::new().execution_context(per_run.clone()),
        )
        .await?;
    let saved = &second.final_state.saved;
    println!(
        "   per-run:           tenant={} user={} correlation={} region={}",
        saved.tenant,
        saved.audit.user.as_deref().unwrap_or("-"),
        saved.audit.correlation.as_deref().unwrap_or("-"),
        saved
            .context
            .get_as::<String>("region")?
            .unwrap_or_default()
    );
    assert_eq!(saved.tenant, "globex");
    assert_eq!(saved.audit.user.as_deref(), Some("u-7"));
    assert_eq!(saved.audit.correlation.as_deref(), Some("req-123"));
    assert_eq!(
        saved.context.get_as::<String>("region")?.as_deref(),
        Some("eu")
    );

    // An enclosing scope, as a request handler would set up; a runner with
    // no execution context of its own takes it whole.
    let request_scope = ExecutionContext::of([
        ("tenant_id", "initech"),
        ("user_id", "u-scope"),
        ("channel", "web"),
    ]);
    let third =
        ExecutionContext::scope(request_scope.clone(), base.run(&orders, request(3))).await?;
    let saved = &third.final_state.saved;
    println!(
        "   scope:             tenant={} user={}",
        saved.tenant,
        saved.audit.user.as_deref().unwrap_or("-")
    );
    assert_eq!(saved.tenant, "initech");
    assert_eq!(saved.audit.user.as_deref(), Some("u-scope"));

    // All three at once: per-run > runner > scope, each key on its own.
    let fourth = ExecutionContext::scope(
        request_scope,
        runner.run_with(
            &orders,
            request(4),
            RunOptions::new().execution_context(ExecutionContext::of([("user_id", "u-7")])),
        ),
    )
    .await?;
    let seen = &fourth.final_state.saved.context;
    let show = |key: &str| seen.get(key).and_then(|v| v.as_str()).unwrap_or("-");
    println!(
        "   all three layers:  tenant={} (runner) user={} (per-run) channel={} (scope) region={} (runner)",
        show("tenant_id"),
        show("user_id"),
        show("channel"),
        show("region")
    );
    assert_eq!(seen.tenant_id(), Some("acme"), "the runner beats the scope");
    assert_eq!(seen.user_id(), Some("u-7"), "per-run beats the scope");
    assert_eq!(seen.get_as::<String>("channel")?.as_deref(), Some("web"));
    assert_eq!(seen.get_as::<String>("region")?.as_deref(), Some("eu"));
    assert_eq!(
        seen.correlation_id(),
        Some(fourth.run_id.to_text().as_str())
    );

    // Once a run is over, this task has no execution context left.
    assert_eq!(current_tenant_id(), None);
    assert!(current_execution_context().is_none());
    println!("   after the runs, outside any scope: current_tenant_id() = None");

    // -- 2. Middleware: a tenant log, and a guard that refuses. --------------
    println!("\n2. middleware");
    let err = base
        .run(&orders, request(5))
        .await
        .expect_err("no tenant anywhere: the guard refuses");
    println!("   refused: {err}");
    assert_eq!(
        err.to_string(),
        "run of `orders` failed: stopped by middleware `RequireTenant`: \
         orders are always placed for a tenant"
    );
    let refused_by = err
        .cause()
        .downcast_ref::<MiddlewareError>()
        .map(MiddlewareError::middleware);
    assert_eq!(refused_by, Some("RequireTenant"));
    // A run hook's refusal is charged to the pipeline, by its name.
    assert_eq!(err.node(), "orders");
    assert!(err.records().is_empty(), "no node ran");

    let lines = log.lock().unwrap().clone();
    println!("   tenant log:");
    for line in &lines {
        println!("     {line}");
    }
    assert_eq!(
        lines,
        [
            "start orders tenant=acme",
            "done  orders tenant=acme",
            "start orders tenant=globex",
            "done  orders tenant=globex",
            "start orders tenant=initech",
            "done  orders tenant=initech",
            "start orders tenant=acme",
            "done  orders tenant=acme",
            "start orders tenant=<none>",
            "fail  orders tenant=<none>",
        ]
    );

    // -- 3. Enrichment: price adds a fraud score, persist reads it. ----------
    println!("\n3. enrichment");
    let receipt = &first.final_state;
    let before = first
        .context
        .get_named::<ExecutionContext>("seen_by_price")?;
    let after = first.context.execution();
    let in_repository = receipt.saved.context.get_as::<u32>("fraud_score")?;
    println!(
        "   fraud_score set by price: {:?} in persist's ctx.execution(), {:?} in the repository's current_execution_context()",
        receipt.fraud_score, in_repository
    );
    assert_eq!(receipt.fraud_score, Some(12));
    assert_eq!(in_repository, Some(12));
    // What `price` saw before enriching is still what it was.
    assert!(!before.contains("fraud_score"));
    // Nothing was lost: every key `price` saw is still there, unchanged.
    for (key, value) in before.iter() {
        assert_eq!(after.get(key), Some(value), "key `{key}` changed");
    }
    assert_eq!(after.len(), before.len() + 1);
    println!(
        "   price's own snapshot: {} keys, no fraud_score; the run's context now: {} keys",
        before.len(),
        after.len()
    );

    // -- 4. Spawned tasks. ----------------------------------------------------
    println!("\n4. spawned audit writes");
    println!(
        "   stroma::spawn: tenant={:?} correlation={:?}",
        receipt.carried.tenant, receipt.carried.correlation
    );
    println!(
        "   tokio::spawn:  tenant={:?} correlation={:?}",
        receipt.detached.tenant, receipt.detached.correlation
    );
    assert_eq!(receipt.carried.action, "order 1 exported");
    assert_eq!(receipt.carried.tenant.as_deref(), Some("acme"));
    assert_eq!(receipt.carried.correlation, receipt.saved.audit.correlation);
    assert_eq!(receipt.detached.tenant, None);
    assert_eq!(receipt.detached.correlation, None);

    // -- 5. Secrets: readable by code, never shown by Debug. -----------------
    println!("\n5. secrets");
    let shown = format!("{acme:?}");
    println!("   runner's context: {shown}");
    assert!(shown.contains(r#""api_key": "<redacted>""#));
    assert!(!shown.contains("sk-live-4242"));
    // The mark survives into the run: the repository can use the key, and
    // still cannot leak it by logging the context.
    let inside = &receipt.saved.context;
    assert_eq!(
        inside.get_as::<String>("api_key")?.as_deref(),
        Some("sk-live-4242")
    );
    assert!(inside.is_secret("api_key"));
    assert!(!format!("{inside:?}").contains("sk-live-4242"));
    println!("   inside the run: readable by the repository, still redacted in Debug");

    // -- 6. TimingMiddleware. -------------------------------------------------
    println!("\n6. node timings");
    let timings = first
        .context
        .get::<NodeTimings>()
        .ok_or("TimingMiddleware recorded nothing")?;
    for (node, took) in &timings.0 {
        println!("   {node:<9} {took:.1?}");
    }
    let names: Vec<&str> = timings.0.iter().map(|(node, _)| *node).collect();
    assert_eq!(names, ["validate", "price", "persist"]);
    assert!(
        timings.0[2].1 >= Duration::from_millis(5),
        "persist sleeps 5ms"
    );

    println!("\nall checks passed");
    Ok(())
}
