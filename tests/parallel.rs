//! parallel! and for_each: concurrency, input copies, deterministic model merges, failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use stroma::prelude::*;
use stroma::{
    Append, BranchesFailed, ExecutionContext, MergeConflict, NodeStatus, Reduce, Reducer, Runnable,
    Sum, current_tenant_id,
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
    let names: Vec<_> = result.records().iter().map(|r| r.name).collect();
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

#[tokio::test]
async fn two_branches_writing_one_same_value_conflict_and_one_writer_does_not() {
    // Equal values are two writers all the same: they may be lost updates.
    let err = StromaRunner::quick()
        .run_with_model(
            &parallel![write_shared_1, read_only, write_shared_1],
            0,
            Model::default(),
        )
        .await
        .unwrap_err();
    let conflict = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<MergeConflict>())
        .expect("a merge conflict");
    assert_eq!(conflict.field(), "shared");
    assert!(
        err.to_string()
            .contains("2 branches changed the model field `shared` (values: 1; 1)"),
        "{err}"
    );
    assert_eq!(err.model::<Model>(), Some(&Model::default()));

    // One writer beside branches that leave the field alone.
    let result = StromaRunner::quick()
        .run_with_model(
            &parallel![read_only, write_shared_2, set_a],
            0,
            Model::default(),
        )
        .await
        .unwrap();
    assert_eq!((result.model.shared, result.model.a), (2, 1));
}

/// Whether a page of the crawl below is fine: all but every fourth, 21 of 27.
fn page_ok(page: u64) -> bool {
    page % 4 != 3
}

/// A crawl's counts kept in plain fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct PlainCrawl {
    ok: u32,
}

/// A crawl's counts kept in fields that say how to combine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Crawl {
    ok: Sum<u32>,
    failed: Append<u64>,
}

#[node]
async fn count_plain(page: u64, model: &mut PlainCrawl) -> u64 {
    jitter(page).await;
    model.ok += 1;
    page
}

#[node]
async fn check_page(page: u64, model: &mut Crawl) -> u64 {
    jitter(page).await;
    if page_ok(page) {
        model.ok += 1;
    } else {
        model.failed.push(page);
    }
    page
}

#[tokio::test]
async fn for_each_counting_in_a_plain_field_is_a_conflict_and_in_a_sum_adds_up() {
    let pages: Vec<u64> = (0..27).collect();
    // Every item's copy says `ok = 1`: taking it would count 1 page, not 27.
    let err = StromaRunner::quick()
        .run_with_model(
            &for_each(count_plain).concurrency(8),
            pages.clone(),
            PlainCrawl::default(),
        )
        .await
        .unwrap_err();
    let conflict = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<MergeConflict>())
        .expect("a merge conflict");
    assert_eq!(conflict.field(), "ok");
    assert_eq!(
        conflict.to_string(),
        "27 branches changed the model field `ok` (values: 1; 1; 1; and 24 more): a field \
         changed by more than one branch or item must say how to combine the changes: make it \
         a `Sum` (numbers add up) or an `Append` (lists concatenate), or a `Reduce`, or let one \
         branch write it"
    );
    assert_eq!(err.node(), "for_each");
    assert_eq!(err.model::<PlainCrawl>(), Some(&PlainCrawl::default()));

    // With a `Sum` the items' counts add up, and the `Append` gathers the
    // failed pages in item order, whatever order the items finished in.
    let result = StromaRunner::quick()
        .run_with_model(
            &for_each(check_page).concurrency(8),
            pages.clone(),
            Crawl::default(),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, pages);
    assert_eq!(result.model.ok.0, 21);
    assert_eq!(result.model.failed.0, [3, 7, 11, 15, 19, 23]);
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
    assert_eq!(err.node(), "parallel");
    // The innermost failing node: the first branch that failed, by its path.
    assert_eq!(err.path().as_str(), "parallel[1].fail_b");
    let outcomes = outcomes_of(&err);
    assert_eq!(
        outcomes,
        [
            ("set_a", None),
            (
                "fail_b",
                Some("node `parallel[1].fail_b` failed: b could not handle 1".into())
            ),
            (
                "panic_c",
                Some("node `parallel[2].panic_c` panicked: c broke on 1".into())
            ),
        ]
    );
    // The message lists the failed branches only.
    assert_eq!(
        err.to_string(),
        "node `parallel` failed: 2 of 3 branches of `parallel` failed \
         (the model and context are as before the branches): \
         [1] node `parallel[1].fail_b` failed: b could not handle 1; \
         [2] node `parallel[2].panic_c` panicked: c broke on 1;"
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
    assert_eq!(result.records().len(), 40);
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
    assert_eq!(
        err.to_string(),
        "node `for_each` failed: 1 of 4 items of `for_each` failed \
         (the model and context are as before the list): \
         [2] node `for_each[2].fail_on_three` failed: three;"
    );
    assert_eq!(err.path().as_str(), "for_each[2].fail_on_three");
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

/// The model after one run of `p` on 1 from the default model.
async fn model_after<P: Runnable<Model, Input = u64>>(p: &P) -> Model {
    StromaRunner::quick()
        .run_with_model(p, 1, Model::default())
        .await
        .unwrap()
        .model
}

#[node]
async fn reads_model(n: u64, model: &Model) -> u64 {
    n + u64::from(model.a)
}

#[tokio::test]
async fn a_branch_that_writes_the_model_is_merged_however_it_is_wrapped() {
    // Beside branches that cannot change the model, `set_a` wrapped in a
    // pipeline, a nested `parallel!`, a loop, `named` and `for_each`: were a
    // wrapper to say its node cannot change the model, the write would be lost.
    let wrote_a = |model: Model, what: &str| {
        assert_eq!(model.a, 1, "{what}");
        assert_eq!(model.log.0, ["a"], "{what}");
    };
    wrote_a(
        model_after(&parallel![read_only, pipeline![read_only, set_a]]).await,
        "a nested pipeline",
    );
    wrote_a(
        model_after(&parallel![reads_model, parallel![read_only, set_a]]).await,
        "a nested parallel!",
    );
    wrote_a(
        model_after(&parallel![
            read_only,
            loop_until(set_a, |_: &u64, _: &Model| true)
        ])
        .await,
        "a loop",
    );
    wrote_a(
        model_after(&parallel![read_only, set_a.named("renamed")]).await,
        "named",
    );
    // Every item writes, so only to fields that combine (`set_a`'s plain `a`
    // written by three items would be a conflict).
    let each = pipeline![for_each(pipeline![read_only, log_a]).concurrency(2), sum_up];
    let model = StromaRunner::quick()
        .run_with_model(&each, vec![1, 2, 3], Model::default())
        .await
        .unwrap()
        .model;
    assert_eq!(model.log.0, ["a", "a", "a"], "for_each");
    assert_eq!(model.hits.0, 3, "for_each");
}

/// `set_a`'s writes to the fields that combine, for many items.
#[node]
async fn log_a(seed: u64, model: &mut Model) -> u64 {
    model.log.push("a".into());
    model.hits += 1;
    seed
}

#[node]
async fn sum_up(ns: Vec<u64>) -> u64 {
    ns.into_iter().sum()
}

#[node(updates_context)]
async fn updates_from_output(n: u64, _model: &Model) -> Shared {
    Shared { shared: n as u32 }
}

#[derive(Serialize)]
struct Shared {
    shared: u32,
}

/// `N::MAY_CHANGE_MODEL`, for a node value.
fn may_change<N: Node>(_: &N) -> bool {
    N::MAY_CHANGE_MODEL
}

#[test]
fn nodes_say_whether_they_may_change_the_model() {
    // `#[node]`: only `&mut M` or `updates_context` may change the model.
    assert!(!may_change(&read_only));
    assert!(!may_change(&reads_model));
    assert!(may_change(&set_a));
    assert!(may_change(&updates_from_output));
    // Combinators: any of their nodes.
    assert!(!may_change(&pipeline![read_only, reads_model]));
    assert!(may_change(&pipeline![read_only, set_a]));
    assert!(!may_change(&parallel![read_only, reads_model]));
    assert!(may_change(&parallel![read_only, set_a]));
    assert!(!may_change(&for_each(read_only)));
    assert!(may_change(&for_each(set_a)));
    assert!(!may_change(&read_only.named("renamed")));
    assert!(may_change(&set_a.named("renamed")));
    let never = |_: &u64, _: &Model| false;
    assert!(!may_change(&loop_until(read_only, never)));
    assert!(may_change(&loop_until(set_a, never)));
}

#[tokio::test]
async fn a_parallel_first_gives_the_model_the_runs_input() {
    // `parallel!` answers for its input through its first branch, so the
    // runner gives the model the run's input even though no branch can
    // change the model (and nothing is merged).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Notes {
        count: u32,
    }
    #[node]
    async fn echo(n: u64) -> u64 {
        n
    }
    #[node]
    async fn first(pair: (u64, u64)) -> u64 {
        pair.0
    }
    let result = StromaRunner::quick()
        .run_with_model(
            &pipeline![parallel![echo, echo], first],
            7,
            PipelineContext::new(Notes::default()),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, 7);
    assert_eq!(result.model.initial_input, json!(7));
}

#[node]
async fn first_step(n: u64) -> u64 {
    jitter(n).await;
    n
}

#[node]
async fn second_step(n: u64) -> u64 {
    jitter(n.rotate_left(3)).await;
    n * 10
}

#[tokio::test]
async fn for_each_reports_records_in_item_order_whatever_finishes_first() {
    let items: Vec<u64> = (0..24).collect();
    let result = StromaRunner::quick()
        .run(
            &for_each(pipeline![first_step, second_step]).concurrency(5),
            items.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        items.iter().map(|n| n * 10).collect::<Vec<_>>()
    );
    let names: Vec<&str> = result.records().iter().map(|r| r.name).collect();
    assert_eq!(names, ["first_step", "second_step"].repeat(items.len()));

    // Items whose records differ: odd items fail. Their records must come
    // in item order, not in the order the items finished.
    #[node]
    async fn fail_if_odd(n: u64) -> Result<u64, NodeError> {
        jitter(n).await;
        if n % 2 == 1 {
            return Err(NodeError::msg("odd"));
        }
        Ok(n)
    }
    let err = StromaRunner::quick()
        .run(&for_each(fail_if_odd).concurrency(5), items.clone())
        .await
        .unwrap_err();
    let statuses: Vec<NodeStatus> = err.records().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [NodeStatus::Completed, NodeStatus::Failed].repeat(items.len() / 2)
    );
}

#[tokio::test]
async fn for_each_fails_whole_on_a_panicking_item_keeps_every_record_and_the_model() {
    #[node]
    async fn count_or_panic(n: u64, model: &mut Model) -> u64 {
        jitter(n).await;
        model.a += 1;
        if n == 2 {
            panic!("two broke");
        }
        n
    }
    let err = StromaRunner::quick()
        .run_with_model(
            &for_each(count_or_panic).concurrency(3),
            vec![1, 2, 3, 4, 5],
            Model::default(),
        )
        .await
        .unwrap_err();
    let outcomes = outcomes_of(&err);
    assert_eq!(
        outcomes,
        [
            ("count_or_panic", None),
            (
                "count_or_panic",
                Some("node `for_each[1].count_or_panic` panicked: two broke".into())
            ),
            ("count_or_panic", None),
            ("count_or_panic", None),
            ("count_or_panic", None),
        ]
    );
    let statuses: Vec<NodeStatus> = err.records().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            NodeStatus::Completed,
            NodeStatus::Failed,
            NodeStatus::Completed,
            NodeStatus::Completed,
            NodeStatus::Completed,
        ],
        "one record per item, in item order"
    );
    assert_eq!(err.model::<Model>().unwrap().a, 0, "the model is unchanged");
}

/// Each branch's (or item's) name and failure text, from a run that failed
/// because some branches did.
fn outcomes_of(err: &RunError) -> Vec<(&'static str, Option<String>)> {
    std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<BranchesFailed>())
        .expect("every branch's outcome")
        .outcomes()
        .map(|(name, failure)| (name, failure.map(|f| f.to_string())))
        .collect()
}

mod panicking_reducer {
    use stroma::prelude::*;
    use stroma::{Reduce, Reducer};

    struct Explodes;

    impl Reducer<u32> for Explodes {
        fn reduce(_: &u32, _: Vec<u32>) -> u32 {
            panic!("the reducer broke")
        }
    }

    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    struct Tally {
        n: Reduce<u32, Explodes>,
    }

    #[node]
    async fn prep(n: u32) -> u32 {
        n
    }

    #[node]
    async fn bump(n: u32, tally: &mut Tally) -> u32 {
        *tally.n += 1;
        n
    }

    #[tokio::test]
    async fn a_panicking_reducer_is_blamed_on_the_merge_not_the_node_before() {
        let p = pipeline![prep, parallel![bump, bump].named("both")];
        let err = StromaRunner::quick()
            .run_with_model(&p, 1, Tally::default())
            .await
            .unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.path().as_str(), "both");
        assert!(err.to_string().contains("the reducer broke"), "{err}");
        assert_eq!(err.scope("prep").unwrap().status, NodeStatus::Completed);
    }

    #[node]
    async fn spread(n: u32) -> Vec<u32> {
        vec![n, n]
    }

    #[tokio::test]
    async fn a_panicking_reducer_in_a_list_is_blamed_on_the_list() {
        let p = pipeline![spread, for_each(bump).named("each")];
        let err = StromaRunner::quick()
            .run_with_model(&p, 1, Tally::default())
            .await
            .unwrap_err();
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.path().as_str(), "each");
        assert!(err.to_string().contains("the reducer broke"), "{err}");
        assert_eq!(err.scope("spread").unwrap().status, NodeStatus::Completed);
        assert_eq!(
            *err.model::<Tally>().unwrap().n,
            0,
            "the model is as before the list"
        );
    }
}
