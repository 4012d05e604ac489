//! parallel! and for_each: concurrency, input copies, deterministic model merges, failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stroma::prelude::*;
use stroma::{
    Append, BranchesFailed, ExecutionContext, MergeConflict, Reduce, Reducer, Sum,
    current_tenant_id,
};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Model {
    a: u32,
    b: String,
    log: Append<String>,
    hits: Sum<i64>,
    best: Reduce<u32, Highest>,
    shared: u32,
}

struct Highest;

impl Reducer<u32> for Highest {
    fn reduce(base: &u32, changed: Vec<u32>) -> u32 {
        changed.into_iter().fold(*base, u32::max)
    }
}

/// Sleeps a pseudo-random few hundred microseconds, so branches finish in varying orders.
async fn jitter(seed: u64) {
    let micros = (seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33)
        % 400;
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

#[node]
async fn set_a(seed: u64, model: &mut Model) -> u64 {
    jitter(seed).await;
    model.a = 1;
    model.log.push("a".into());
    *model.hits += 1;
    *model.best = 3;
    seed
}

#[node]
async fn set_b(seed: u64, model: &mut Model) -> String {
    jitter(seed.rotate_left(7)).await;
    model.b = "b".into();
    model.log.push("b".into());
    *model.hits += 10;
    *model.best = 9;
    format!("b{seed}")
}

#[node]
async fn read_only(seed: u64) -> u64 {
    jitter(seed.rotate_left(13)).await;
    seed * 2
}

#[tokio::test]
async fn branches_get_the_input_run_concurrently_and_give_a_tuple() {
    // Each branch waits until all three have started: run one after another,
    // they would never finish (the timeout turns that into a failure).
    static ALL_STARTED: std::sync::LazyLock<tokio::sync::Barrier> =
        std::sync::LazyLock::new(|| tokio::sync::Barrier::new(3));
    #[node]
    async fn wait_a(n: u32) -> u32 {
        ALL_STARTED.wait().await;
        n + 1
    }
    #[node]
    async fn wait_b(n: u32) -> String {
        ALL_STARTED.wait().await;
        n.to_string()
    }
    let (runner, p) = (StromaRunner::quick(), parallel![wait_a, wait_b, wait_a]);
    let run = runner.run(&p, 1);
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the branches ran concurrently")
        .unwrap();
    assert_eq!(result.final_state, (2, "1".to_string(), 2));
    let names: Vec<_> = result.records.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        ["wait_a", "wait_b", "wait_a"],
        "records in declaration order"
    );
}

#[tokio::test]
async fn model_merges_are_the_same_over_200_runs_whatever_finishes_first() {
    let runner = StromaRunner::quick();
    let p = parallel![set_a, set_b, read_only];
    let mut first: Option<Model> = None;
    for seed in 0..200_u64 {
        let result = runner
            .run_with_model(&p, seed, Model::default())
            .await
            .unwrap();
        assert_eq!(result.final_state, (seed, format!("b{seed}"), seed * 2));
        let model = result.model;
        assert_eq!(
            model.log.0,
            ["a", "b"],
            "appends in declaration order (seed {seed})"
        );
        match &first {
            None => first = Some(model),
            Some(first) => assert_eq!(&model, first, "seed {seed}"),
        }
    }
    let model = first.unwrap();
    assert_eq!(
        (model.a, model.b.as_str(), model.hits.0, *model.best),
        (1, "b", 11, 9)
    );
}

#[node]
async fn write_shared_1(n: u64, model: &mut Model) -> u64 {
    model.shared = 1;
    n
}

#[node]
async fn write_shared_2(n: u64, model: &mut Model) -> u64 {
    model.shared = 2;
    n
}

#[tokio::test]
async fn two_branches_writing_one_plain_field_is_an_error_naming_it() {
    let err = StromaRunner::quick()
        .run_with_model(
            &parallel![write_shared_1, write_shared_2],
            0,
            Model::default(),
        )
        .await
        .unwrap_err();
    let conflict = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<MergeConflict>())
        .expect("a merge conflict");
    assert_eq!(conflict.field(), "shared");
    assert!(err.to_string().contains("model field `shared`"), "{err}");
    assert_eq!(
        err.model::<Model>(),
        Some(&Model::default()),
        "the model is unchanged"
    );
}

#[node]
async fn fail_b(n: u64, model: &mut Model) -> Result<u64, NodeError> {
    model.b = "half-written".into();
    Err(NodeError::msg(format!("b could not handle {n}")))
}

#[node]
async fn panic_c(n: u64) -> u64 {
    if n > 0 {
        panic!("c broke on {n}");
    }
    n
}

#[tokio::test]
async fn a_failing_branch_fails_the_whole_reports_every_branch_and_keeps_the_model() {
    let err = StromaRunner::quick()
        .run_with_model(&parallel![set_a, fail_b, panic_c], 1, Model::default())
        .await
        .unwrap_err();
    assert_eq!(err.node(), "set_a | fail_b | panic_c");
    let failed = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<BranchesFailed>())
        .expect("every branch's outcome");
    let outcomes: Vec<(&str, Option<String>)> = failed
        .outcomes()
        .map(|(name, failure)| (name, failure.map(|f| f.to_string())))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("set_a", None),
            (
                "fail_b",
                Some("node `fail_b` failed: b could not handle 1".into())
            ),
            (
                "panic_c",
                Some("node `panic_c` panicked: c broke on 1".into())
            ),
        ]
    );
    assert!(
        err.to_string()
            .contains("2 of 3 branches of `set_a | fail_b | panic_c` failed"),
        "{err}"
    );
    assert_eq!(err.model::<Model>(), Some(&Model::default()));
}

#[tokio::test]
async fn branches_see_the_shared_context_and_the_execution_context() {
    #[node]
    async fn tenant_and_flag(_: (), ctx: &Context) -> Result<String, NodeError> {
        tokio::task::yield_now().await;
        Ok(format!(
            "{}:{}",
            current_tenant_id().unwrap_or_default(),
            ctx.get_named::<bool>("flag")?
        ))
    }
    let runner = StromaRunner::quick()
        .with_context(Context::new().with_named("flag", true))
        .with_execution_context(ExecutionContext::of([("tenant_id", "acme")]));
    let result = runner
        .run(&parallel![tenant_and_flag, tenant_and_flag], ())
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        ("acme:true".to_string(), "acme:true".to_string())
    );
}

#[tokio::test]
async fn parallels_nest_in_pipelines_and_take_pipelines_as_branches() {
    #[node]
    async fn add(pair: (u64, u64)) -> u64 {
        pair.0 + pair.1
    }
    let p = pipeline![parallel![read_only, pipeline![read_only, read_only]], add];
    let result = StromaRunner::quick().run(&p, 3).await.unwrap();
    assert_eq!(result.final_state, 6 + 12);
    assert_eq!(
        p.name(),
        "parallel![read_only, pipeline![read_only, read_only]] > add"
    );
}

#[tokio::test]
async fn for_each_keeps_order_and_bounds_concurrency() {
    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    #[node]
    async fn square(n: u64, model: &mut Model) -> u64 {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        jitter(n).await;
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        model.log.push(n.to_string());
        n * n
    }
    let items: Vec<u64> = (0..40).collect();
    let result = StromaRunner::quick()
        .run_with_model(
            &for_each(square).concurrency(4),
            items.clone(),
            Model::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        items.iter().map(|n| n * n).collect::<Vec<_>>()
    );
    assert!(
        PEAK.load(Ordering::SeqCst) <= 4,
        "peak {}",
        PEAK.load(Ordering::SeqCst)
    );
    assert!(PEAK.load(Ordering::SeqCst) > 1, "ran concurrently");
    let expected: Vec<String> = items.iter().map(u64::to_string).collect();
    assert_eq!(result.model.log.0, expected, "merged in item order");
    assert_eq!(result.records.len(), 40);
}

#[tokio::test]
async fn for_each_fails_whole_naming_the_failed_items_and_keeps_the_model() {
    #[node]
    async fn fail_on_three(n: u64, model: &mut Model) -> Result<u64, NodeError> {
        model.a += 1;
        if n == 3 {
            return Err(NodeError::msg("three"));
        }
        Ok(n)
    }
    let err = StromaRunner::quick()
        .run_with_model(
            &for_each(fail_on_three).concurrency(2),
            vec![1, 2, 3, 4],
            Model::default(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("1 of 4 branches of `for_each` failed"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("[3] `fail_on_three`: node `fail_on_three` failed: three"),
        "{err}"
    );
    assert_eq!(err.model::<Model>().unwrap().a, 0);
}

#[tokio::test]
async fn for_each_over_no_items_gives_no_outputs() {
    let result = StromaRunner::quick()
        .run(&for_each(read_only).concurrency(3), vec![])
        .await
        .unwrap();
    assert!(result.final_state.is_empty());
    let _ = Arc::new(());
}
