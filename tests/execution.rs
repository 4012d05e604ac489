//! The execution context: immutability, accessors, precedence, propagation, enrichment.

use std::time::Duration;

use serde_json::json;
use stroma::prelude::*;
use stroma::{
    ExecutionContext, NodeExt, RunOptions, current_correlation_id, current_execution_context,
    current_tenant_id, current_user_id, require_execution_context,
};

#[test]
fn every_change_returns_a_new_context_and_leaves_the_original() {
    let original = ExecutionContext::of([("tenant_id", "acme")]);
    let copy = original.clone();
    let plus = original.plus("user_id", "u-1");
    let plus_all = original.plus_all([("region", json!("eu")), ("tenant_id", json!("other"))]);
    assert_eq!(original, copy);
    assert_eq!(original.len(), 1);
    assert_eq!(plus.len(), 2);
    assert_eq!(plus_all.tenant_id(), Some("other"));
    assert_eq!(original.tenant_id(), Some("acme"));
}

#[test]
fn accessors_read_built_in_and_custom_keys() {
    let ctx = ExecutionContext::of([
        ("tenant_id", json!("t-1")),
        ("user_id", json!("u-1")),
        ("correlation_id", json!("c-1")),
        ("attempt", json!(3)),
        ("beta", json!(true)),
    ]);
    assert_eq!(ctx.tenant_id(), Some("t-1"));
    assert_eq!(ctx.user_id(), Some("u-1"));
    assert_eq!(ctx.correlation_id(), Some("c-1"));
    assert_eq!(ctx.get("attempt"), Some(&json!(3)));
    assert_eq!(ctx.get_as::<u8>("attempt").unwrap(), Some(3));
    assert_eq!(ctx.get_as::<bool>("beta").unwrap(), Some(true));
    assert_eq!(ctx.get_as::<String>("missing").unwrap(), None);
    assert!(ctx.contains("beta") && !ctx.contains("missing"));
    assert_eq!(ctx.len(), 5);
    assert!(!ctx.is_empty() && ExecutionContext::new().is_empty());
    assert_eq!(ctx.to_map()["tenant_id"], json!("t-1"));

    let mismatch = ctx.get_as::<String>("attempt").unwrap_err();
    assert!(
        mismatch
            .to_string()
            .starts_with("execution context key `attempt` is not a `alloc::string::String`"),
        "{mismatch}"
    );
    // A built-in key holding a non-string is not a tenant, and no panic either.
    assert_eq!(ExecutionContext::of([("tenant_id", 7)]).tenant_id(), None);
}

#[test]
fn of_takes_strings_numbers_bools_and_json() {
    let ctx = ExecutionContext::of([("a", "str")])
        .plus("b", String::from("string"))
        .plus("c", 1.5)
        .plus("d", false)
        .plus("e", json!({"nested": [1, 2]}));
    assert_eq!(
        serde_json::to_value(&ctx).unwrap(),
        json!({"a": "str", "b": "string", "c": 1.5, "d": false, "e": {"nested": [1, 2]}})
    );
}

#[test]
fn secret_values_are_not_shown_by_debug() {
    let ctx = ExecutionContext::of([("tenant_id", "acme")]).plus_secret("api_key", "sk-live-123");
    let shown = format!("{ctx:?}");
    assert!(!shown.contains("sk-live-123"), "{shown}");
    assert!(shown.contains(r#""api_key": "<redacted>""#), "{shown}");
    assert_eq!(shown, r#"{"api_key": "<redacted>", "tenant_id": "acme"}"#);
    assert_eq!(
        ctx.get_as::<String>("api_key").unwrap().as_deref(),
        Some("sk-live-123")
    );
    // A secret stays secret through later changes.
    assert!(!format!("{:?}", ctx.plus("x", 1)).contains("sk-live-123"));
}

/// What a node sees of the execution context, through every way of reading it.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    tenant: Option<String>,
    user: Option<String>,
    region: Option<String>,
    correlation: Option<String>,
}

#[node]
async fn observe(_: (), ctx: &Context) -> Seen {
    let from_context = ctx.execution();
    let seen = Seen {
        tenant: current_tenant_id(),
        user: current_user_id(),
        region: current_execution_context()
            .and_then(|c| c.get_as::<String>("region").ok().flatten()),
        correlation: current_correlation_id(),
    };
    assert_eq!(from_context.tenant_id(), seen.tenant.as_deref());
    seen
}

#[tokio::test]
async fn per_run_wins_over_runner_which_wins_over_the_enclosing_scope_key_by_key() {
    let scope = ExecutionContext::of([
        ("tenant_id", "scope"),
        ("user_id", "scope-user"),
        ("region", "scope-region"),
    ]);
    let runner = StromaRunner::quick().with_execution_context(ExecutionContext::of([
        ("tenant_id", "runner"),
        ("user_id", "runner-user"),
    ]));
    let per_run = RunOptions::new().execution_context(ExecutionContext::of([("tenant_id", "run")]));

    let seen = ExecutionContext::scope(scope, async {
        (
            runner
                .run_with(&observe, (), per_run)
                .await
                .unwrap()
                .final_state,
            runner.run(&observe, ()).await.unwrap().final_state,
            StromaRunner::quick()
                .run(&observe, ())
                .await
                .unwrap()
                .final_state,
        )
    })
    .await;
    let (with_all, runner_and_scope, scope_only) = seen;
    assert_eq!(with_all.tenant.as_deref(), Some("run"));
    assert_eq!(with_all.user.as_deref(), Some("runner-user"));
    assert_eq!(with_all.region.as_deref(), Some("scope-region"));
    assert_eq!(runner_and_scope.tenant.as_deref(), Some("runner"));
    assert_eq!(scope_only.tenant.as_deref(), Some("scope"));
    assert_eq!(scope_only.user.as_deref(), Some("scope-user"));
}

#[tokio::test]
async fn the_run_id_is_the_correlation_id_unless_one_is_given() {
    let runner = StromaRunner::quick();
    let result = runner.run(&observe, ()).await.unwrap();
    assert_eq!(
        result.final_state.correlation,
        Some(result.run_id.to_string())
    );

    let given =
        RunOptions::new().execution_context(ExecutionContext::of([("correlation_id", "req-9")]));
    let result = runner.run_with(&observe, (), given).await.unwrap();
    assert_eq!(result.final_state.correlation.as_deref(), Some("req-9"));
}

#[tokio::test]
async fn there_is_no_context_outside_a_run_or_scope() {
    assert!(current_execution_context().is_none());
    let err = require_execution_context().unwrap_err();
    assert!(
        err.to_string().starts_with("no execution context here"),
        "{err}"
    );
    let runner =
        StromaRunner::quick().with_execution_context(ExecutionContext::of([("tenant_id", "t")]));
    runner.run(&observe, ()).await.unwrap();
    assert!(
        current_tenant_id().is_none(),
        "the run's context ended with the run"
    );
}

/// A service function with no context parameter, two calls deep.
async fn audit_line(action: &str) -> String {
    tokio::task::yield_now().await;
    format!("{}:{action}", tenant_or_dash().await)
}

async fn tenant_or_dash() -> String {
    current_tenant_id().unwrap_or_else(|| "-".into())
}

#[node]
async fn audit_everywhere(action: String) -> Result<Vec<String>, NodeError> {
    let nested = audit_line(&action).await;
    let carried = stroma::spawn(async move { audit_line("spawned").await }).await?;
    let lost = tokio::spawn(async move { audit_line("plain").await }).await?;
    let carried_twice =
        stroma::spawn(async { stroma::spawn(async { audit_line("twice").await }).await }).await??;
    Ok(vec![nested, carried, lost, carried_twice])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_calls_and_stroma_spawn_see_the_context_plain_tokio_spawn_does_not() {
    let runner =
        StromaRunner::quick().with_execution_context(ExecutionContext::of([("tenant_id", "acme")]));
    let lines = runner
        .run(&audit_everywhere, "pay".into())
        .await
        .unwrap()
        .final_state;
    assert_eq!(lines, ["acme:pay", "acme:spawned", "-:plain", "acme:twice"]);
}

#[node]
async fn tenant_check(expected: String) -> Result<String, NodeError> {
    for round in 0..3 {
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        let seen = current_tenant_id().unwrap_or_default();
        if seen != expected {
            return Err(NodeError::msg(format!("run for {expected} saw {seen}")));
        }
    }
    Ok(expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_runs_each_see_only_their_own_tenant() {
    const RUNS: usize = 1_000;
    let runner = StromaRunner::quick();
    let p = pipeline![tenant_check, tenant_check, tenant_check];
    let runs: Vec<_> = (0..RUNS)
        .map(|i| {
            let (runner, tenant) = (runner.clone(), format!("tenant-{i}"));
            let options = RunOptions::new()
                .execution_context(ExecutionContext::of([("tenant_id", tenant.clone())]));
            tokio::spawn(async move { runner.run_with(&p, tenant, options).await })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let result = run.await.unwrap().unwrap();
        assert_eq!(result.final_state, format!("tenant-{i}"));
    }
}

#[node]
async fn remember_then_enrich(n: u32, ctx: &Context) -> (u32, ExecutionContext) {
    let before = ctx.execution();
    let after = ctx.enrich([("fraud_score", 12)]);
    assert_eq!(after.get_as::<u32>("fraud_score").unwrap(), Some(12));
    (n, before)
}

#[node]
async fn read_enriched(
    (n, earlier): (u32, ExecutionContext),
    ctx: &Context,
) -> Result<(u32, ExecutionContext, ExecutionContext), NodeError> {
    let now = require_execution_context()?;
    assert_eq!(now, ctx.execution());
    Ok((n, earlier, now))
}

#[tokio::test]
async fn enrichment_reaches_later_nodes_without_changing_earlier_snapshots_or_losing_keys() {
    let runner = StromaRunner::quick().with_execution_context(ExecutionContext::of([
        ("tenant_id", "acme"),
        ("user_id", "u"),
    ]));
    let result = runner
        .run(&pipeline![remember_then_enrich, read_enriched], 1)
        .await
        .unwrap();
    let (_, earlier, now) = result.final_state;
    assert!(!earlier.contains("fraud_score"));
    assert_eq!(now.get_as::<u32>("fraud_score").unwrap(), Some(12));
    for key in ["tenant_id", "user_id", "correlation_id"] {
        assert_eq!(now.get(key), earlier.get(key), "{key} kept");
    }
}

#[test]
fn a_pipeline_is_named_after_its_nodes_unless_named() {
    #[node]
    async fn describe(seen: Seen) -> String {
        format!("{seen:?}")
    }
    assert_eq!(pipeline![observe, describe].name(), "observe > describe");
    assert_eq!(
        pipeline![observe, describe].named("orders").name(),
        "orders"
    );
}
