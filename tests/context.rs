//! The shared Context inside runs: visibility, isolation, errors.

use std::collections::BTreeMap;

use stroma::ContextError;
use stroma::prelude::*;

struct HttpClient;

#[node]
async fn step1(n: i64, ctx: &Context) -> i64 {
    ctx.insert_named("step1_complete", true);
    n + 1
}

#[node]
async fn step2(n: i64, ctx: &Context) -> Result<i64, NodeError> {
    let done = ctx.get_named::<bool>("step1_complete")?;
    assert!(*done, "step1 ran first");
    Ok(n * 2)
}

#[node]
async fn needs_client(n: i64, ctx: &Context) -> Result<i64, NodeError> {
    ctx.require::<HttpClient>()?;
    Ok(n)
}

#[node]
async fn reads_limit_as_string(n: i64, ctx: &Context) -> Result<i64, NodeError> {
    ctx.get_named::<String>("limit")?;
    Ok(n)
}

#[node]
async fn time_it(n: i64, ctx: &Context) -> Result<i64, NodeError> {
    ctx.update_named("timings", |t: &mut BTreeMap<String, i64>| {
        t.insert(format!("step{}", t.len()), n)
    })?;
    Ok(n + 1)
}

#[node]
async fn count_by_type(n: i64, ctx: &Context) -> Result<i64, NodeError> {
    ctx.update(|count: &mut u32| *count += 1)?;
    Ok(n)
}

#[tokio::test]
async fn a_write_is_seen_by_every_later_node() {
    let result = StromaRunner::quick()
        .run(&pipeline![step1, step2], 1)
        .await
        .unwrap();
    assert_eq!(result.final_state, 4);
    assert!(*result.context.get_named::<bool>("step1_complete").unwrap());
}

#[tokio::test]
async fn a_missing_resource_names_the_type_and_the_node() {
    let err = StromaRunner::quick()
        .run(&pipeline![step1, needs_client], 1)
        .await
        .unwrap_err();
    assert_eq!(err.node(), "needs_client");
    let cause = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<ContextError>())
        .expect("a ContextError");
    assert!(matches!(
        cause,
        ContextError::MissingType {
            node: Some("needs_client"),
            ..
        }
    ));
    // On its own, the context error names the node too.
    assert!(
        cause
            .to_string()
            .starts_with("node `needs_client`: no `context::HttpClient`"),
        "{cause}"
    );
    assert_eq!(
        err.to_string(),
        "node `needs_client` failed: no `context::HttpClient` in the context; \
         add one to the runner with `Context::new().with(value)`"
    );
    // The same pipeline runs once the resource is there.
    let runner = StromaRunner::quick().with_context(Context::new().with(HttpClient));
    assert!(runner.run(&pipeline![step1, needs_client], 1).await.is_ok());
}

#[tokio::test]
async fn a_named_entry_of_another_type_is_an_error_not_a_panic() {
    let runner = StromaRunner::quick().with_context(Context::new().with_named("limit", 500_u32));
    let err = runner.run(&reads_limit_as_string, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `reads_limit_as_string` failed: context entry `limit` holds a `u32`, \
         not a `alloc::string::String`"
    );
}

#[tokio::test]
async fn the_caller_reads_what_the_run_accumulated_and_the_runner_keeps_its_original() {
    let runner = StromaRunner::quick()
        .with_context(Context::new().with_named("timings", BTreeMap::<String, i64>::new()));
    let result = runner
        .run(&pipeline![time_it, time_it, time_it], 10)
        .await
        .unwrap();
    let timings = result
        .context
        .get_named::<BTreeMap<String, i64>>("timings")
        .unwrap();
    assert_eq!(
        *timings,
        BTreeMap::from([
            ("step0".into(), 10),
            ("step1".into(), 11),
            ("step2".into(), 12)
        ])
    );
    let original = runner
        .config()
        .context()
        .get_named::<BTreeMap<String, i64>>("timings")
        .unwrap();
    assert!(original.is_empty());
}

#[tokio::test]
async fn values_by_type_update_per_run() {
    let runner = StromaRunner::quick().with_context(Context::new().with(0_u32));
    let p = pipeline![count_by_type, count_by_type];
    for _ in 0..3 {
        let result = runner.run(&p, 0).await.unwrap();
        assert_eq!(*result.context.get::<u32>().unwrap(), 2);
    }
}

#[tokio::test]
async fn updating_a_missing_entry_fails_the_node_and_writes_nothing() {
    let err = StromaRunner::quick().run(&time_it, 1).await.unwrap_err();
    assert!(
        err.to_string().contains("no entry named `timings`"),
        "{err}"
    );
    assert!(!err.context().contains_named("timings"));
}

#[tokio::test]
async fn run_config_carries_the_context_and_later_entries_win() {
    let config = RunConfig::default()
        .with_context(Context::new().with_named("limit", 1_u32).with(HttpClient))
        .with_context(Context::new().with_named("limit", 2_u32));
    let runner = StromaRunner::new(config).with_context(Context::new().with_named("extra", true));
    let ctx = runner.config().context();
    assert_eq!(*ctx.get_named::<u32>("limit").unwrap(), 2);
    assert!(ctx.get::<HttpClient>().is_some());
    assert!(*ctx.get_named::<bool>("extra").unwrap());
    assert!(runner.run(&needs_client, 0).await.is_ok());
}

#[tokio::test]
async fn a_one_parameter_node_runs_alongside_a_context_it_never_sees() {
    #[node]
    async fn plain(n: i64) -> i64 {
        n - 1
    }
    let runner = StromaRunner::quick().with_context(Context::new().with(HttpClient));
    let result = runner
        .run(&pipeline![plain, needs_client, plain], 5)
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
}
