//! JSON nested deeper than serde_json reads from text (128 levels of arrays
//! and objects) is refused with an error naming where, before stroma walks
//! it: through `updates_context`, branch merges, initial data and a durable
//! run's codecs. Each test runs on a thread with the test harness's default
//! stack, 2 MiB, so a walk that recursed over the issue's 1,340 levels
//! would crash the test binary instead of failing one test.

use std::future::Future;

use serde_json::{Value, json};
use stroma::prelude::*;
use stroma::{ModelDataError, ModelUpdateError};

/// The issue's depth: enough to overflow a 2 MiB stack in serde's
/// `#[serde(flatten)]` buffering, which `PipelineContext` deserializes through.
const ISSUE_LEVELS: usize = 1340;

/// The test harness's default stack for a test thread.
const TEST_STACK: usize = 2 * 1024 * 1024;

/// Runs `test` on a thread of its own with [`TEST_STACK`], whatever
/// `RUST_MIN_STACK` says, driving its future with a multi-threaded
/// runtime's `block_on`, as in the issue: the run is polled on that thread.
fn on_test_stack<T, F>(test: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    std::thread::Builder::new()
        .stack_size(TEST_STACK)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(test())
        })
        .expect("a test thread")
        .join()
        .expect("the test thread finished")
}

/// `levels` arrays, each the only item of the one around it.
fn nested(levels: usize) -> Value {
    (0..levels).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

/// [`nested`] as JSON text.
fn nested_text(levels: usize) -> String {
    format!("{}null{}", "[".repeat(levels), "]".repeat(levels))
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Deep {
    doc: Value,
}

type DeepModel = PipelineContext<Deep>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Patch {
    doc: Value,
}

/// The model every run starts with: `doc` holds a marker, to tell whether it changed.
fn before() -> DeepModel {
    PipelineContext::new(Deep {
        doc: json!("before"),
    })
}

/// [`before`] as a run given `input` leaves it when no node changed it.
fn unchanged(input: usize) -> DeepModel {
    let mut model = before();
    model.initial_input = json!(input);
    model
}

/// The issue's node: writes `doc` nested `levels` deep through its output.
#[node(updates_context)]
async fn grow(levels: usize, _model: &mut DeepModel) -> Patch {
    Patch {
        doc: nested(levels),
    }
}

#[test]
fn an_output_nested_past_the_limit_fails_its_node_naming_the_field_and_the_model_is_unchanged() {
    let err = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(&pipeline![grow], ISSUE_LEVELS, before())
            .await
            .unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "node `grow` failed: the output nests arrays and objects 128 levels deep at \
         `doc[0][0][0]…`, the limit: serde_json reads no deeper; nothing was written"
    );
    match err.cause().downcast_ref::<ModelUpdateError>() {
        Some(ModelUpdateError::TooDeep { field, .. }) => assert_eq!(field, "doc"),
        other => panic!("expected a too-deep error, got {other:?}"),
    }
    assert_eq!(err.into_model::<DeepModel>(), Some(unchanged(ISSUE_LEVELS)));
}

#[test]
fn the_deepest_output_accepted_leaves_a_model_that_reads_back_from_text() {
    // The model's object is one level: `doc` may add 126 more, 127 in all,
    // the most serde_json reads.
    let deepest = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(&pipeline![grow], 126, before())
            .await
            .unwrap()
            .model
    });
    assert_eq!(deepest.doc, nested(126));
    let text = serde_json::to_string(&deepest).unwrap();
    assert_eq!(
        serde_json::from_str::<DeepModel>(&text).unwrap(),
        deepest,
        "what stroma accepted reads back from text"
    );

    let err = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(&pipeline![grow], 127, before())
            .await
            .unwrap_err()
    });
    assert!(
        matches!(
            err.cause().downcast_ref::<ModelUpdateError>(),
            Some(ModelUpdateError::TooDeep { field, .. }) if field == "doc"
        ),
        "one level more is refused: {err}"
    );
    assert_eq!(err.into_model::<DeepModel>(), Some(unchanged(127)));
}

/// Makes the model deep directly, not through its output.
#[node]
async fn deepen(levels: usize, model: &mut DeepModel) -> usize {
    model.doc = nested(levels);
    levels
}

#[node]
async fn idle(levels: usize) -> usize {
    levels
}

/// How many arrays `patch.doc` nests: the input of the nodes after it.
#[node]
async fn levels_of(patch: Patch) -> usize {
    let mut levels = 0;
    let mut doc = &patch.doc;
    while let Some(items) = doc.as_array() {
        levels += 1;
        doc = items.first().unwrap_or(&Value::Null);
    }
    levels
}

#[test]
fn a_branch_leaving_the_model_nested_past_the_limit_fails_the_merge_and_the_model_is_unchanged() {
    let err = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(
                &pipeline![parallel![idle, deepen].named("both")],
                ISSUE_LEVELS,
                before(),
            )
            .await
            .unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "node `both` failed: a branch's copy of the model nests arrays and objects 128 levels \
         deep at `doc[0][0][0]…`, the limit: serde_json reads no deeper; nothing was merged"
    );
    assert_eq!(err.into_model::<DeepModel>(), Some(unchanged(ISSUE_LEVELS)));
}

/// Writes `doc` through its output, shallow whatever the model holds.
#[node(updates_context)]
async fn mark(levels: usize, _model: &mut DeepModel) -> Patch {
    Patch { doc: json!(levels) }
}

#[test]
fn a_model_made_deep_in_place_is_refused_at_the_next_merge_and_kept_as_it_was() {
    // `mark` copies the deep model before it runs and puts it back after:
    // serde_json's own clone and drop, at the issue's depth.
    let err = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(&pipeline![deepen, mark], ISSUE_LEVELS, before())
            .await
            .unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "node `mark` failed: the model nests arrays and objects 128 levels deep at \
         `doc[0][0][0]…`, the limit: serde_json reads no deeper; nothing was written"
    );
    let model = err.into_model::<DeepModel>().unwrap();
    assert_eq!(model.doc, nested(ISSUE_LEVELS), "as `deepen` left it");
}

#[test]
fn a_value_under_the_limit_goes_through_updates_merges_and_a_durable_run() {
    const LEVELS: usize = 100;
    let result = on_test_stack(|| async {
        StromaRunner::quick()
            .run_with_model(
                &pipeline![grow, levels_of, parallel![idle, deepen]],
                LEVELS,
                before(),
            )
            .await
            .unwrap()
    });
    assert_eq!(result.final_state, (LEVELS, LEVELS));
    assert_eq!(result.model.doc, nested(LEVELS));

    // Saved after each node, and read back on replay.
    let (done, replayed) = on_test_stack(|| async {
        let p = pipeline![grow, levels_of, parallel![idle, deepen]];
        let runner = StromaRunner::quick().with_store(MemoryStore::new());
        let done = runner
            .run_durable_with(&p, LEVELS, RunOptions::new().model(before()))
            .await
            .unwrap();
        let replayed = runner
            .resume_with_options(
                &p,
                &done.run_id.to_string(),
                ResumeOptions::new().model::<DeepModel>(),
            )
            .await
            .unwrap();
        (done.model, replayed.model)
    });
    assert_eq!(done.doc, nested(LEVELS));
    assert_eq!(replayed, done);
}

#[test]
fn deep_text_is_refused_by_serde_json_and_the_same_value_built_in_code_by_stroma() {
    // `{"doc": ..}` is one level: 127 in all is the most serde_json reads.
    let readable = format!("{{\"doc\": {}}}", nested_text(126));
    let data: Value = serde_json::from_str(&readable).unwrap();
    let model = on_test_stack(move || async move { DeepModel::from_initial(data) }).unwrap();
    assert_eq!(model.doc, nested(126));

    for levels in [127, ISSUE_LEVELS] {
        let text = format!("{{\"doc\": {}}}", nested_text(levels));
        for err in [
            serde_json::from_str::<Value>(&text).unwrap_err(),
            serde_json::from_str::<DeepModel>(&text).unwrap_err(),
        ] {
            assert!(
                err.to_string().starts_with("recursion limit exceeded"),
                "{err}"
            );
        }
        let err: ModelDataError = on_test_stack(move || async move {
            DeepModel::from_initial(json!({ "doc": nested(levels) }))
        })
        .unwrap_err();
        assert_eq!(err.key(), Some("doc"));
        assert_eq!(
            err.to_string(),
            "model field `doc`: the value nests arrays and objects 128 levels deep at \
             `doc[0][0][0]…`, the limit: serde_json reads no deeper"
        );
    }
}

/// [`grow`] for a durable run: the output is saved, the model is not touched.
#[node]
async fn grow_saved(levels: usize) -> Patch {
    Patch {
        doc: nested(levels),
    }
}

#[test]
fn a_durable_output_or_model_nested_past_the_limit_is_not_saved_and_fails_its_node() {
    let (err, completed) = on_test_stack(|| async {
        let runner = StromaRunner::quick().with_store(MemoryStore::new());
        let err = runner
            .run_durable(&pipeline![grow_saved], ISSUE_LEVELS)
            .await
            .unwrap_err();
        let runs = runner.store().list(Some(RunStatus::Failed)).await.unwrap();
        (err, runs[0].completed.clone())
    });
    assert_eq!(
        err.to_string(),
        "node `grow_saved` failed: the output of `grow_saved` cannot be saved: it nests arrays \
         and objects 128 levels deep at `doc[0][0][0]…`, counting the 3 levels of the \
         checkpoint around it, the limit: serde_json reads no deeper"
    );
    assert!(completed.is_empty(), "saved: {completed:?}");

    let (err, doc_after) = on_test_stack(|| async {
        let err = StromaRunner::quick()
            .with_store(MemoryStore::new())
            .run_durable_with(
                &pipeline![deepen],
                ISSUE_LEVELS,
                RunOptions::new().model(before()),
            )
            .await
            .unwrap_err();
        // Read here, on the test's stack: a model left deep would be deep to compare.
        let doc_after = err.model::<DeepModel>().map(|m| m.doc.clone());
        (err.to_string(), doc_after)
    });
    // The node failed, so its change is put back: the model is as before it.
    assert_eq!(doc_after, Some(json!("before")));
    assert_eq!(
        err,
        "node `deepen` failed: the model after `deepen` cannot be saved: it nests arrays \
         and objects 128 levels deep at `doc[0][0][0]…`, counting the 3 levels of the \
         checkpoint around it, the limit: serde_json reads no deeper"
    );
}

#[test]
fn the_deepest_output_a_checkpoint_holds_is_read_back_from_sqlite_text() {
    let dir = std::env::temp_dir().join(format!("stroma-deep-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    // A checkpoint holds an output 3 levels down, and the output's object is
    // one more: `doc` may add 123, 127 in all.
    let (deepest, replayed, refused) = on_test_stack(move || async move {
        let p = pipeline![grow_saved];
        let runner = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
        let deepest = runner.run_durable(&p, 123).await.unwrap();
        let refused = runner.run_durable(&p, 124).await.unwrap_err().to_string();
        // A runner of its own: the checkpoint is read from the file's text.
        let reopened = StromaRunner::quick().with_store(SqliteStore::open(&path).await.unwrap());
        let replayed = reopened
            .resume(&p, &deepest.run_id.to_string())
            .await
            .unwrap();
        (deepest.final_state, replayed.final_state, refused)
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(deepest.doc, nested(123));
    assert_eq!(replayed, deepest);
    assert!(
        refused.contains("the output of `grow_saved` cannot be saved: it nests arrays and objects 128 levels deep"),
        "one level more is refused: {refused}"
    );
}

/// A node whose `Context::step` gives a value nested `levels` deep.
#[node]
async fn deep_step(levels: usize, ctx: &Context) -> Result<usize, NodeError> {
    let value: Value = ctx.step("fetch", async move { nested(levels) }).await?;
    Ok(value.as_array().map_or(0, Vec::len))
}

/// A node that saves a context entry nested `levels` deep.
#[node]
async fn deep_entry(levels: usize, ctx: &Context) -> usize {
    ctx.insert_saved("doc", nested(levels));
    levels
}

/// A node that saves a context entry that cannot be JSON: a map whose keys
/// are not strings.
#[node]
async fn unsaveable_entry(n: usize, ctx: &Context) -> usize {
    ctx.insert_saved("pairs", std::collections::HashMap::from([((1, 2), 3)]));
    n
}

#[test]
fn a_step_result_or_a_saved_entry_nested_past_the_limit_fails_its_node_and_is_not_saved() {
    let (step_err, entry_err, bad_err, saved) = on_test_stack(|| async {
        let runner = StromaRunner::quick().with_store(MemoryStore::new());
        let step_err = runner
            .run_durable(&pipeline![deep_step], ISSUE_LEVELS)
            .await
            .unwrap_err()
            .to_string();
        let entry_err = runner
            .run_durable(&pipeline![deep_entry], ISSUE_LEVELS)
            .await
            .unwrap_err()
            .to_string();
        let bad_err = runner
            .run_durable(&pipeline![unsaveable_entry], 1)
            .await
            .unwrap_err()
            .to_string();
        let failed = runner.store().list(Some(RunStatus::Failed)).await.unwrap();
        let saved: Vec<Vec<String>> = failed.iter().map(|run| run.completed.clone()).collect();
        (step_err, entry_err, bad_err, saved)
    });
    assert_eq!(
        step_err,
        "node `deep_step` failed: step `fetch` of `deep_step` cannot be saved: it nests arrays \
         and objects 128 levels deep at `[0][0][0][0]…`, counting the 3 levels of the checkpoint \
         around it, the limit: serde_json reads no deeper"
    );
    assert_eq!(
        entry_err,
        "node `deep_entry` failed: the context entry `doc` of `deep_entry` cannot be saved: it \
         nests arrays and objects 128 levels deep at `[0][0][0][0]…`, counting the 5 levels of the \
         checkpoint around it, the limit: serde_json reads no deeper"
    );
    // Not dropped in silence any more: an entry that cannot be saved fails its node.
    assert!(
        bad_err.starts_with(
            "node `unsaveable_entry` failed: the context entry `pairs` of `unsaveable_entry` \
             cannot be saved: key must be a string"
        ),
        "{bad_err}"
    );
    assert_eq!(
        saved,
        [Vec::<String>::new(), vec![], vec![]],
        "nothing saved as completed"
    );
}

/// A node asking a question nested `levels` deep, and taking a `Value` answer.
#[node]
async fn ask_deep(levels: usize, ctx: &Context) -> Result<Value, NodeError> {
    let answer: Value = ctx.interrupt(nested(levels))?;
    Ok(answer)
}

#[test]
fn a_question_or_an_answer_nested_past_the_limit_leaves_the_run_resumable() {
    let (question, refused, still_interrupted, answered) = on_test_stack(|| async {
        let runner = StromaRunner::quick().with_store(MemoryStore::new());
        let p = pipeline![ask_deep];
        let asked = runner.run_durable(&p, ISSUE_LEVELS).await.unwrap_err();
        let run_id = asked.run_id().to_string();
        let question = asked.interrupts()[0].question.clone();
        // An answer too deep to save: the resume is refused and runs nothing.
        let refused = runner
            .resume_with(&p, &run_id, nested(ISSUE_LEVELS))
            .await
            .unwrap_err()
            .to_string();
        let still_interrupted = runner
            .store()
            .get(&run_id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .status;
        // The question was saved as text that says why: the run reads back
        // and takes an answer that can be saved.
        let answered = runner
            .resume_with(&p, &run_id, json!("yes"))
            .await
            .unwrap()
            .final_state;
        (question, refused, still_interrupted, answered)
    });
    let question = question.as_str().unwrap_or_default().to_owned();
    assert!(
        question.starts_with(
            "(the question cannot be shown: it nests arrays and objects 128 levels deep at \
             `[0][0][0][0]…`, counting the 5 levels of the checkpoint around it"
        ),
        "{question}"
    );
    assert!(
        refused.contains(
            "the answer to `ask_deep:0` cannot be saved: it nests arrays and objects 128 levels \
             deep at `[0][0][0][0]…`, counting the 3 levels of the checkpoint around it"
        ),
        "{refused}"
    );
    assert_eq!(still_interrupted, RunStatus::Interrupted);
    assert_eq!(answered, json!("yes"));
}
