//! Durable runs: checkpoints after each node, resume from where a run
//! stopped, interrupts answered later, steps journaled, one writer per run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use stroma::prelude::*;
use stroma::{CHECKPOINT_FORMAT_VERSION, Checkpoint, RunId};

/// How many times each node ran, by name: nodes count themselves.
static RUNS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

fn ran(name: &str) -> u32 {
    RUNS.lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, c)| *c)
        .sum()
}

fn count(name: &str) {
    RUNS.lock().unwrap().push((name.to_owned(), 1));
}

/// Tests share the counters above: each uses node names of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    total: u32,
}

#[node]
async fn a_price(order: Order) -> Order {
    count("a_price");
    Order {
        total: order.total + 10,
        ..order
    }
}

static FAIL_TAX: AtomicU32 = AtomicU32::new(1);

#[node]
async fn a_tax(order: Order) -> Result<Order, NodeError> {
    count("a_tax");
    if FAIL_TAX.load(Ordering::SeqCst) > 0 {
        FAIL_TAX.fetch_sub(1, Ordering::SeqCst);
        return Err(NodeError::msg("tax service down"));
    }
    Ok(Order {
        total: order.total * 2,
        ..order
    })
}

#[node]
async fn a_ship(order: Order) -> String {
    count("a_ship");
    format!("order {} ships at {}", order.id, order.total)
}

#[tokio::test]
async fn a_failed_run_resumes_from_the_node_that_failed_and_completed_nodes_never_rerun() {
    let store = MemoryStore::new();
    let runner = StromaRunner::quick().with_store(store.clone());
    let p = pipeline![a_price, a_tax, a_ship];
    let err = runner
        .run_durable(&p, Order { id: 7, total: 5 })
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "a_tax");
    let id = err.run_id().to_string();
    let listed = runner.store().list(Some(RunStatus::Failed)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].completed, ["a_price"]);
    assert!(
        listed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("tax service down")
    );

    let done = runner.resume(&p, &id).await.unwrap();
    assert_eq!(done.final_state, "order 7 ships at 30");
    assert_eq!(done.run_id.to_string(), id, "a resume keeps the run's id");
    assert_eq!((ran("a_price"), ran("a_tax"), ran("a_ship")), (1, 2, 1));
    // The replayed node is in the tree, as completed.
    assert_eq!(
        done.tree().find("a_price").unwrap().status,
        NodeStatus::Completed
    );

    // Resuming a completed run returns its stored result; nothing runs.
    let again = runner.resume(&p, &id).await.unwrap();
    assert_eq!(again.final_state, "order 7 ships at 30");
    assert_eq!((ran("a_price"), ran("a_tax"), ran("a_ship")), (1, 2, 1));
    let summary = &runner
        .store()
        .list(Some(RunStatus::Completed))
        .await
        .unwrap()[0];
    assert_eq!(summary.completed, ["a_price", "a_tax", "a_ship"]);
    assert_eq!(
        summary.tree(),
        "a_price\na_tax\na_ship\n",
        "the listing draws what completed"
    );
}

#[node]
async fn b_one(x: u32) -> u32 {
    x + 1
}

#[node]
async fn b_two(x: u32) -> u32 {
    x * 10
}

#[node]
async fn b_three(x: u32) -> String {
    x.to_string()
}

#[tokio::test]
async fn a_pipeline_of_another_shape_is_refused_naming_the_first_difference() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let saved = runner
        .run_durable(&pipeline![b_one, b_two, b_three], 1)
        .await
        .unwrap();
    let id = saved.run_id.to_string();
    let err = runner
        .resume(&pipeline![b_one, b_one, b_two, b_three], &id)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err.durable_error(),
            Some(DurableError::FingerprintMismatch { .. })
        ),
        "{text}"
    );
    assert!(text.contains("first difference at `b_one#2`"), "{text}");
    assert!(
        text.contains("saved: b_two Node u32; given: b_one#2 Node u32"),
        "{text}"
    );
    assert!(text.contains("nothing was run"), "{text}");
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Draft {
    text: String,
    approved_by: Option<String>,
}

#[node]
async fn c_write(topic: String) -> Draft {
    count("c_write");
    Draft {
        text: format!("all about {topic}"),
        approved_by: None,
    }
}

#[node]
async fn c_approve(draft: Draft, ctx: &Context) -> Result<Draft, NodeError> {
    count("c_approve");
    let charged: u32 = ctx
        .step("charge", async {
            count("c_charge");
            42
        })
        .await?;
    assert_eq!(charged, 42);
    let who: String = ctx.interrupt(format!("publish `{}`?", draft.text))?;
    Ok(Draft {
        approved_by: Some(who),
        ..draft
    })
}

#[node]
async fn c_publish(draft: Draft) -> String {
    count("c_publish");
    format!(
        "{} (approved by {})",
        draft.text,
        draft.approved_by.unwrap()
    )
}

#[tokio::test]
async fn an_interrupt_stops_the_run_and_the_answer_resumes_it_where_steps_are_not_repeated() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![c_write, c_approve, c_publish];
    let err = runner
        .run_durable(&p, "otters".to_string())
        .await
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    let asked = err.interrupts();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].id, "c_approve:0");
    assert_eq!(asked[0].question, "publish `all about otters`?");
    let id = err.run_id().to_string();
    let stored = runner.store().get(&id).await.unwrap().unwrap();
    assert_eq!(stored.summary.status, RunStatus::Interrupted);
    assert_eq!(stored.interrupts, asked, "the question is in the store");

    // A wrong type: an error naming the expected type; still interrupted.
    let wrong = runner.resume_with(&p, &id, 17).await.unwrap_err();
    assert!(wrong.is_interrupted());
    assert!(
        wrong.to_string().contains("alloc::string::String"),
        "{wrong}"
    );
    let stored = runner.store().get(&id).await.unwrap().unwrap();
    assert_eq!(stored.summary.status, RunStatus::Interrupted);

    let done = runner.resume_with(&p, &id, "Ada").await.unwrap();
    assert_eq!(done.final_state, "all about otters (approved by Ada)");
    assert_eq!(ran("c_write"), 1);
    assert_eq!(ran("c_approve"), 3, "asked, refused, answered");
    assert_eq!(ran("c_charge"), 1, "the journaled step ran once");
    assert_eq!(ran("c_publish"), 1);

    // Answering a run that asks nothing is an error.
    let err = runner.resume_with(&p, &id, "Bob").await.unwrap_err();
    assert!(
        matches!(
            err.durable_error(),
            Some(DurableError::NotInterrupted {
                status: RunStatus::Completed
            })
        ),
        "{err}"
    );
    // An id that is not pending is named, with what is.
    let err = runner
        .resume_with_options(&p, &id, ResumeOptions::new().answer_to("nope:0", 1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no question `nope:0` is pending"),
        "{err}"
    );
}

#[node]
async fn d_ask(x: u32, ctx: &Context) -> Result<u32, NodeError> {
    let more: u32 = ctx.interrupt(format!("add to {x}?"))?;
    Ok(x + more)
}

#[tokio::test]
async fn interrupts_in_parallel_branches_are_answered_by_id() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![parallel![d_ask, b_two.named("fixed"), d_ask], d_sum_three];
    let err = runner.run_durable(&p, 1).await.unwrap_err();
    let ids: Vec<String> = err.interrupts().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["parallel[0].d_ask:0", "parallel[2].d_ask:0"]);
    let id = err.run_id().to_string();

    let err = runner.resume_with(&p, &id, 5).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err.durable_error(),
            Some(DurableError::SeveralPending { .. })
        ),
        "{text}"
    );
    assert!(text.contains("parallel[0].d_ask:0") && text.contains("parallel[2].d_ask:0"));

    let done = runner
        .resume_with_options(
            &p,
            &id,
            ResumeOptions::new()
                .answer_to("parallel[0].d_ask:0", 100)
                .answer_to("parallel[2].d_ask:0", 1000),
        )
        .await
        .unwrap();
    assert_eq!(done.final_state, 101 + 10 + 1001);
}

#[node]
async fn d_sum_three(triple: (u32, u32, u32)) -> u32 {
    triple.0 + triple.1 + triple.2
}

static E_FAIL_AT: AtomicU32 = AtomicU32::new(3);

#[node]
async fn e_step(x: u32) -> Result<u32, NodeError> {
    count("e_step");
    if x == E_FAIL_AT.load(Ordering::SeqCst) {
        E_FAIL_AT.store(u32::MAX, Ordering::SeqCst);
        return Err(NodeError::msg("flaky"));
    }
    Ok(x + 1)
}

#[node]
async fn e_item(x: u32) -> Result<u32, NodeError> {
    count(&format!("e_item{x}"));
    if x == 2 && ran("e_item2") == 1 {
        return Err(NodeError::msg("flaky item"));
    }
    Ok(x * x)
}

#[tokio::test]
async fn loops_and_for_each_resume_mid_way() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let looped = pipeline![loop_until(e_step, |x: &u32, _: &()| *x >= 5).max_loops(10)];
    let err = runner.run_durable(&looped, 0).await.unwrap_err();
    assert_eq!(err.path().as_str(), "loop_until[4].e_step");
    let done = runner
        .resume(&looped, &err.run_id().to_string())
        .await
        .unwrap();
    assert_eq!(done.final_state, 5);
    assert_eq!(
        ran("e_step"),
        6,
        "iterations 1 to 3 ran once; the 4th twice; then the 5th"
    );

    let items = pipeline![for_each(e_item).concurrency(1)];
    let err = runner
        .run_durable(&items, vec![0, 1, 2, 3])
        .await
        .unwrap_err();
    let id = err.run_id().to_string();
    let done = runner.resume(&items, &id).await.unwrap();
    assert_eq!(done.final_state, vec![0, 1, 4, 9]);
    assert_eq!(ran("e_item0"), 1);
    assert_eq!(ran("e_item1"), 1);
    assert_eq!(ran("e_item2"), 2);
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Tally {
    seen: Vec<u32>,
}

#[node]
async fn f_note(x: u32, tally: &mut Tally) -> u32 {
    count("f_note");
    tally.seen.push(x);
    x + 1
}

static F_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn f_check(x: u32, tally: &Tally) -> Result<u32, NodeError> {
    if F_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("not yet"));
    }
    Ok(x + tally.seen.len() as u32)
}

#[tokio::test]
async fn the_model_is_saved_after_each_node_that_changes_it() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![f_note, f_note, f_check];
    let err = runner
        .run_durable_with(&p, 1, RunOptions::new().model(Tally::default()))
        .await
        .unwrap_err();
    let done = runner
        .resume_with_options(
            &p,
            &err.run_id().to_string(),
            ResumeOptions::new().model::<Tally>(),
        )
        .await
        .unwrap();
    assert_eq!(done.model.seen, [1, 2], "restored, not re-applied");
    assert_eq!(done.final_state, 3 + 2);
    assert_eq!(ran("f_note"), 2);
}

#[node]
async fn g_slow(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(200)).await;
    x
}

#[node]
async fn g_fail(_x: u32) -> Result<u32, NodeError> {
    Err(NodeError::msg("stop here"))
}

#[node]
async fn g_slow_fail(x: u32) -> Result<u32, NodeError> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(NodeError::msg(format!("still failing at {x}")))
}

#[tokio::test]
async fn one_writer_per_run_two_resumes_at_once_one_is_refused() {
    let store = MemoryStore::new();
    let runner = StromaRunner::quick().with_store(store.clone());
    let failing = pipeline![g_slow, g_slow_fail];
    let err = runner.run_durable(&failing, 1).await.unwrap_err();
    let id = err.run_id().to_string();
    // Both resumes replay `g_slow`; one holds the run while its `g_slow_fail` runs.
    let first = runner.resume(&failing, &id);
    let second = runner.resume(&failing, &id);
    let (a, b) = tokio::join!(first, second);
    let refused: Vec<&RunError> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| {
            matches!(e.durable_error(), Some(DurableError::Store(s))
                if matches!(s.kind(), stroma::StoreErrorKind::LeaseHeld { .. }))
        })
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "exactly one was turned away: {a:?} / {b:?}"
    );
    assert!(
        refused[0].to_string().contains("leased by"),
        "{}",
        refused[0]
    );
}

#[tokio::test]
async fn a_corrupted_checkpoint_is_a_loud_error_naming_the_run_and_field() {
    let store = MemoryStore::new();
    let runner = StromaRunner::quick().with_store(store.clone());
    let p = pipeline![b_one, g_fail];
    let err = runner.run_durable(&p, 1).await.unwrap_err();
    let id = err.run_id().to_string();
    // Someone writes a row this build cannot read.
    let lease = store
        .acquire(&id, "vandal", Duration::from_secs(5))
        .await
        .unwrap();
    let latest = store.latest(&id).await.unwrap().unwrap();
    store
        .save(
            Checkpoint::new(
                &id,
                latest.seq + 1,
                RunStatus::Failed,
                latest.fingerprint.clone(),
                serde_json::json!({"v": CHECKPOINT_FORMAT_VERSION, "records": [{"kind": "node", "path": 3}]}),
            ),
            &lease,
        )
        .await
        .unwrap();
    store.release(&lease).await.unwrap();
    let err = runner.resume(&p, &id).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&id) && text.contains("state.records"),
        "{text}"
    );
    // Nothing else was lost: the earlier checkpoints are all there.
    assert_eq!(
        store.checkpoints(&id).await.unwrap().len() as u64,
        latest.seq + 1
    );
    assert!(RunId::parse(&id).is_some());
}

#[tokio::test]
async fn resume_from_replays_a_run_from_a_node_in_a_new_linked_run() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, b_two, b_three];
    let first = runner.run_durable(&p, 1).await.unwrap();
    let old = first.run_id.to_string();
    let again = runner.resume_from(&p, &old, "b_one").await.unwrap();
    assert_eq!(again.final_state, "20");
    assert_ne!(again.run_id, first.run_id);
    let stored = runner
        .store()
        .get(&again.run_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.summary.parent_run.as_deref(), Some(old.as_str()));
    let err = runner.resume_from(&p, &old, "nope").await.unwrap_err();
    assert!(
        err.to_string().contains("no node completed at `nope`"),
        "{err}"
    );
}

#[tokio::test]
async fn the_idempotency_key_is_the_run_id_and_path_across_attempts() {
    static KEYS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    #[node]
    async fn h_pay(x: u32, ctx: &Context) -> Result<u32, NodeError> {
        KEYS.lock().unwrap().push(ctx.idempotency_key());
        if KEYS.lock().unwrap().len() == 1 {
            return Err(NodeError::msg("timeout"));
        }
        Ok(x)
    }
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, h_pay];
    let err = runner.run_durable(&p, 1).await.unwrap_err();
    let id = err.run_id().to_string();
    runner.resume(&p, &id).await.unwrap();
    let keys = KEYS.lock().unwrap().clone();
    assert_eq!(keys, [format!("{id}/h_pay"), format!("{id}/h_pay")]);
}

#[tokio::test]
async fn without_a_store_a_durable_run_says_so() {
    let err = StromaRunner::quick()
        .run_durable(&pipeline![b_one], 1)
        .await
        .unwrap_err();
    assert!(matches!(err.durable_error(), Some(DurableError::NoStore)));
    assert!(err.to_string().contains("with_store"), "{err}");
}

#[tokio::test]
async fn every_durability_mode_completes_and_saves() {
    for mode in [Durability::Sync, Durability::Async, Durability::Exit] {
        let store = MemoryStore::new();
        let runner = StromaRunner::quick()
            .with_store(store.clone())
            .with_durability(mode);
        let done = runner
            .run_durable(&pipeline![b_one, b_two], 1)
            .await
            .unwrap();
        let id = done.run_id.to_string();
        let rows = store.checkpoints(&id).await.unwrap();
        let expected = if mode == Durability::Exit { 1 } else { 4 };
        assert_eq!(rows.len(), expected, "{mode:?}");
        assert_eq!(rows.last().unwrap().status, RunStatus::Completed);
        let again = runner.resume(&pipeline![b_one, b_two], &id).await.unwrap();
        assert_eq!(again.final_state, 20);
        // A copy from a node is written at once, whatever the mode.
        let copy = runner
            .resume_from(&pipeline![b_one, b_two], &id, "b_one")
            .await
            .unwrap();
        assert_eq!(copy.final_state, 20, "{mode:?}");
    }
}

#[tokio::test]
async fn a_sqlite_store_survives_reopening() {
    let dir = std::env::temp_dir().join(format!("stroma-durable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    let p = pipeline![b_one, g_fail];
    let id = {
        let runner = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
        runner
            .run_durable(&p, 1)
            .await
            .unwrap_err()
            .run_id()
            .to_string()
    };
    let runner = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
    let failed = runner.store().list(Some(RunStatus::Failed)).await.unwrap();
    assert_eq!(failed[0].summary.run_id, id);
    assert_eq!(failed[0].completed, ["b_one"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Notes {
    asked: u32,
}

#[node]
async fn k_confirm(
    x: u32,
    ctx: &Context,
    model: &mut PipelineContext<Notes>,
) -> Result<u32, NodeError> {
    model.data.asked += 1;
    let yes: bool = ctx.interrupt(format!("double {x}?"))?;
    Ok(if yes { x * 2 } else { x })
}

#[tokio::test]
async fn questions_and_answers_go_into_the_models_hitl_history() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, k_confirm];
    let model = PipelineContext::new(Notes::default());
    let err = runner
        .run_durable_with(&p, 1, RunOptions::new().model(model))
        .await
        .unwrap_err();
    let done = runner
        .resume_with_options(
            &p,
            &err.run_id().to_string(),
            ResumeOptions::new()
                .model::<PipelineContext<Notes>>()
                .answer(true),
        )
        .await
        .unwrap();
    assert_eq!(done.final_state, 4);
    let history = &done.model.hitl_history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].prompt, "double 2?");
    assert_eq!(history[0].response.as_deref(), Some("true"));
    assert_eq!(
        done.model.data.asked, 1,
        "the model is as before the interrupted attempt"
    );
}

#[node]
async fn m_tenant(x: u32, ctx: &Context) -> Result<String, NodeError> {
    let tenant = ctx.execution().tenant_id().unwrap_or("none").to_owned();
    Ok(format!("{x} for {tenant}"))
}

static M_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn m_flaky(text: String) -> Result<String, NodeError> {
    if M_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("flaky"));
    }
    Ok(text)
}

#[tokio::test]
async fn the_execution_metadata_is_saved_and_given_back_on_resume() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, m_flaky_first, m_tenant, m_flaky];
    let options =
        RunOptions::new().execution_context(ExecutionContext::of([("tenant_id", "acme")]));
    let err = runner.run_durable_with(&p, 1, options).await.unwrap_err();
    // Resumed by a runner that knows nothing of the tenant.
    let done = runner.resume(&p, &err.run_id().to_string()).await.unwrap();
    assert_eq!(done.final_state, "2 for acme");
}

#[node]
async fn m_flaky_first(x: u32) -> u32 {
    x
}

#[tokio::test]
async fn two_processes_resuming_one_sqlite_run_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("stroma-durable-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    // Two stores on one file: two connections, as two processes would have.
    let one = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
    let two = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
    let p = pipeline![g_slow, g_slow_fail];
    let id = one
        .run_durable(&p, 1)
        .await
        .unwrap_err()
        .run_id()
        .to_string();
    let (a, b) = tokio::join!(one.resume(&p, &id), two.resume(&p, &id));
    let held = [&a, &b]
        .into_iter()
        .filter(|r| {
            r.as_ref()
                .err()
                .and_then(|e| e.durable_error())
                .is_some_and(|d| {
                    matches!(d, DurableError::Store(s)
                    if matches!(s.kind(), stroma::StoreErrorKind::LeaseHeld { .. }))
                })
        })
        .count();
    assert_eq!(held, 1, "{a:?} / {b:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[node]
async fn n_long(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(900)).await;
    x + 1
}

#[tokio::test]
async fn a_node_longer_than_the_lease_keeps_the_run() {
    let store = MemoryStore::new();
    let runner = StromaRunner::quick()
        .with_store(store.clone())
        .with_lease_ttl(Duration::from_millis(300));
    let p = pipeline![b_one, n_long];
    let run = runner.run_durable(&p, 1);
    let intruder = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let running = store.list(Some(RunStatus::Running)).await.unwrap();
        let id = running[0].run_id.clone();
        store
            .acquire(&id, "intruder", Duration::from_secs(5))
            .await
            .map(|_| ())
    };
    let (done, taken) = tokio::join!(run, intruder);
    let err = taken.expect_err("the lease was renewed while the node ran");
    assert!(
        matches!(err.kind(), stroma::StoreErrorKind::LeaseHeld { .. }),
        "{err}"
    );
    assert_eq!(done.unwrap().final_state, 3);
}

static P_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn p_look_back(x: u32, ctx: &Context) -> Result<String, NodeError> {
    if P_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("not yet"));
    }
    let first = ctx.result::<u32>("b_one")?;
    Ok(format!("{x} after {first}"))
}

#[tokio::test]
async fn replayed_outputs_are_there_for_later_look_ups() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, b_two, p_look_back];
    let err = runner.run_durable(&p, 1).await.unwrap_err();
    let done = runner.resume(&p, &err.run_id().to_string()).await.unwrap();
    assert_eq!(done.final_state, "20 after 2");
}

#[node]
async fn q_left(x: u32) -> u32 {
    count("q_left");
    x + 1
}

static Q_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn q_right(x: u32) -> Result<u32, NodeError> {
    count("q_right");
    if Q_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("right branch down"));
    }
    Ok(x * 100)
}

#[node]
async fn q_join(pair: (u32, u32)) -> u32 {
    pair.0 + pair.1
}

#[tokio::test]
async fn a_parallel_resumes_with_only_its_failed_branch_running_again() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![parallel![q_left, q_right], q_join];
    let err = runner.run_durable(&p, 2).await.unwrap_err();
    assert_eq!(err.path().as_str(), "parallel[1].q_right");
    let done = runner.resume(&p, &err.run_id().to_string()).await.unwrap();
    assert_eq!(done.final_state, 3 + 200);
    assert_eq!(ran("q_left"), 1, "the finished branch is not run again");
    assert_eq!(ran("q_right"), 2);
}

#[node]
async fn r_two_questions(x: u32, ctx: &Context) -> Result<String, NodeError> {
    count("r_two_questions");
    let first: String = ctx.interrupt("first?")?;
    let second: String = ctx.interrupt("second?")?;
    Ok(format!("{x}: {first}, {second}"))
}

#[tokio::test]
async fn several_questions_in_one_node_are_answered_in_order() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![r_two_questions];
    let err = runner.run_durable(&p, 7).await.unwrap_err();
    assert_eq!(err.interrupts()[0].id, "r_two_questions:0");
    let id = err.run_id().to_string();
    let err = runner.resume_with(&p, &id, "one").await.unwrap_err();
    let asked = err.interrupts();
    assert_eq!(
        (asked[0].id.as_str(), &asked[0].question),
        ("r_two_questions:1", &serde_json::json!("second?"))
    );
    let done = runner.resume_with(&p, &id, "two").await.unwrap();
    assert_eq!(done.final_state, "7: one, two");
    assert_eq!(ran("r_two_questions"), 3);
}

static S_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn s_greet(x: u32, ctx: &Context) -> Result<String, NodeError> {
    if S_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("not yet"));
    }
    let text = ctx.render("$var{greeting}")?;
    let typed = ctx.var::<String>("greeting").map(|s| s.to_string());
    Ok(format!(
        "{text} {x} ({})",
        typed.unwrap_or_else(|_| "untyped".into())
    ))
}

#[tokio::test]
async fn per_run_variables_are_saved_for_templates_and_given_again_for_typed_reads() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![b_one, s_greet];
    let options = RunOptions::new().var("greeting", "hello".to_string());
    let err = runner.run_durable_with(&p, 1, options).await.unwrap_err();
    let id = err.run_id().to_string();
    // Not given again: the template reads the saved JSON; a typed read cannot.
    S_FAIL.store(0, Ordering::SeqCst);
    let done = runner.resume(&p, &id).await.unwrap();
    assert_eq!(done.final_state, "hello 2 (untyped)");
    // Replayed from scratch under a new run, with the variable given again.
    let again = runner
        .resume_from_with_options(
            &p,
            &id,
            "b_one",
            ResumeOptions::new().var("greeting", "hello".to_string()),
        )
        .await
        .unwrap();
    assert_eq!(again.final_state, "hello 2 (hello)");
}

static T_LIMIT: AtomicU32 = AtomicU32::new(3);

#[tokio::test]
async fn replaying_a_completed_run_runs_nothing_even_if_its_logic_changed() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![
        loop_until(b_one, |x: &u32, _: &()| *x
            >= T_LIMIT.load(Ordering::SeqCst))
        .max_loops(10)
    ];
    let done = runner.run_durable(&p, 0).await.unwrap();
    assert_eq!(done.final_state, 3);
    // Same shape, another condition: the saved iterations end too early.
    T_LIMIT.store(5, Ordering::SeqCst);
    let err = runner
        .resume(&p, &done.run_id.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(err.durable_error(), Some(DurableError::NotInJournal { path }) if path == "loop_until[4].b_one"),
        "{err}"
    );
}

#[node]
async fn u_pairs(x: u32) -> std::collections::HashMap<(u32, u32), u32> {
    [((x, x), x)].into_iter().collect()
}

#[tokio::test]
async fn an_output_that_cannot_be_saved_is_said_so() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let err = runner
        .run_durable(&pipeline![u_pairs], 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the output of `u_pairs` cannot be saved: key must be a string"),
        "{text}"
    );
}

#[tokio::test]
async fn an_interrupt_in_a_plain_run_says_it_cannot_be_resumed() {
    let err = StromaRunner::quick()
        .run(&pipeline![d_ask], 1)
        .await
        .unwrap_err();
    assert!(err.is_interrupted());
    assert!(err.to_string().contains("not durable"), "{err}");
}

#[test]
fn a_sqlite_store_works_inside_a_local_set_on_a_multi_threaded_runtime() {
    // tokio refuses `block_in_place` there: commits go to the blocking pool.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("stroma-durable-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    let local = tokio::task::LocalSet::new();
    let done = local.block_on(&runtime, async {
        let runner = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
        runner.run_durable(&pipeline![b_one, b_two], 1).await
    });
    assert_eq!(done.unwrap().final_state, 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Budget {
    left: u32,
}

#[node]
async fn v_plan(x: u32, ctx: &Context) -> u32 {
    ctx.insert_saved("budget", Budget { left: 5 });
    ctx.insert_named("scratch", 99_u32);
    x
}

static V_FAIL: AtomicU32 = AtomicU32::new(1);

#[node]
async fn v_spend(x: u32, ctx: &Context) -> Result<String, NodeError> {
    if V_FAIL.swap(0, Ordering::SeqCst) == 1 {
        return Err(NodeError::msg("not yet"));
    }
    let budget = ctx.get_saved::<Budget>("budget")?;
    let scratch = ctx.get_named::<u32>("scratch").is_ok();
    Ok(format!("{x}: {} left, scratch {scratch}", budget.left))
}

#[tokio::test]
async fn entries_inserted_saved_come_back_on_resume_and_others_do_not() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let p = pipeline![v_plan, v_spend];
    let err = runner.run_durable(&p, 1).await.unwrap_err();
    let done = runner.resume(&p, &err.run_id().to_string()).await.unwrap();
    assert_eq!(done.final_state, "1: 5 left, scratch false");
    // In a plain run, both are simply there.
    V_FAIL.store(0, Ordering::SeqCst);
    let plain = StromaRunner::quick().run(&p, 2).await.unwrap();
    assert_eq!(plain.final_state, "2: 5 left, scratch true");
}

#[tokio::test]
async fn the_store_prunes_old_runs_by_status_and_keeps_the_others() {
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let done = runner.run_durable(&pipeline![b_one], 1).await.unwrap();
    let failed = runner
        .run_durable(&pipeline![b_one, g_fail], 1)
        .await
        .unwrap_err();
    let pruned = runner
        .store()
        .prune(Duration::ZERO, Some(RunStatus::Completed))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(
        runner
            .store()
            .get(&done.run_id.to_string())
            .await
            .unwrap()
            .is_none()
    );
    let left = runner
        .store()
        .get(&failed.run_id().to_string())
        .await
        .unwrap();
    assert_eq!(left.unwrap().summary.status, RunStatus::Failed);
}
