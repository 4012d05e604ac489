//! The typed run model: `PipelineContext` built-ins and user fields, serde,
//! partial initial data, any model type, validation, rollback of failed nodes
//! and `updates_context` merges.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use stroma::prelude::*;
use stroma::{
    Append, ExecutedCommandLog, HumanInteraction, MergeConflict, ModelUpdateError, ModelValidate,
    PipelineContext, Sum,
};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Discovery {
    frontier: Vec<u32>,
    seen: Vec<u32>,
    max_depth: u32,
}

/// A model whose defaults are not all zero, so "missing means default" is visible.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Settings {
    depth: u32,
    label: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            depth: 3,
            label: "unnamed".into(),
        }
    }
}

/// The user's fields of the model most tests run with; at most 1000 words.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    words: u32,
    tags: Vec<String>,
    edits: u32,
}

impl ModelValidate for Doc {
    fn validate(&self) -> Result<(), String> {
        if self.words > 1000 {
            return Err(format!("{} words is over the limit of 1000", self.words));
        }
        Ok(())
    }
}

type DocModel = PipelineContext<Doc>;

fn doc() -> DocModel {
    PipelineContext::new(Doc {
        title: "draft".into(),
        words: 10,
        tags: vec!["a".into()],
        edits: 0,
    })
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn interaction() -> HumanInteraction {
    HumanInteraction {
        asked_at: at(100),
        answered_at: Some(at(160)),
        prompt: "approve?".into(),
        response: Some("yes".into()),
    }
}

fn command() -> ExecutedCommandLog {
    ExecutedCommandLog {
        started_at: at(200),
        finished_at: at(201),
        command: "ls".into(),
        succeeded: true,
        outcome: "a b".into(),
    }
}

// ---- PipelineContext built-ins and user fields -------------------------------

#[test]
fn built_ins_start_empty_and_user_fields_are_reached_through_deref() {
    let mut ctx = PipelineContext::new(Discovery {
        frontier: vec![123],
        ..Discovery::default()
    });
    assert_eq!(ctx.initial_input, Value::Null);
    assert!(ctx.scratchpad.is_empty());
    assert!(ctx.hitl_history.is_empty());
    assert!(ctx.command_log.is_empty());

    assert_eq!(ctx.frontier, [123]);
    ctx.seen.push(123);
    ctx.max_depth = 4;
    assert_eq!(ctx.data.seen, [123]);
    assert_eq!(ctx.data.max_depth, 4);

    let default = PipelineContext::<Settings>::default();
    assert_eq!(default.depth, 3);
    assert_eq!(default.initial_input, Value::Null);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Query {
    text: String,
    limit: u32,
}

#[node]
async fn shout(query: Query) -> String {
    query.text.to_uppercase()
}

#[node]
async fn note_initial_input(text: String, ctx: &mut PipelineContext<Discovery>) -> String {
    let seen = ctx.initial_input.clone();
    ctx.scratchpad.insert("initial input seen".into(), seen);
    text
}

#[tokio::test]
async fn the_runner_fills_initial_input_with_the_runs_input_before_a_node_sees_the_model() {
    // The first node takes no model and changes the value: the model still
    // gets the run's input, not what reached the model-taking node.
    let p = pipeline![shout, note_initial_input];
    let input = Query {
        text: "find".into(),
        limit: 2,
    };
    let result = StromaRunner::quick()
        .run_with_model(&p, input, PipelineContext::new(Discovery::default()))
        .await
        .unwrap();
    let expected = json!({"text": "find", "limit": 2});
    assert_eq!(result.final_state, "FIND");
    assert_eq!(result.model.scratchpad["initial input seen"], expected);
    assert_eq!(result.model.initial_input, expected);
}

#[node]
async fn count_seen(n: u32, ctx: &mut PipelineContext<Discovery>) -> u32 {
    // One key per item: the items' copies merge without conflict.
    ctx.scratchpad
        .insert(format!("item {n}"), ctx.initial_input.clone());
    n
}

#[tokio::test]
async fn a_run_whose_first_node_is_a_for_each_keeps_the_whole_list_as_its_input() {
    // Every item's branch sees the run's input, the list, not its own item:
    // no item changes it, so the merge keeps it.
    let each = for_each(count_seen).concurrency(2);
    for runner in [
        StromaRunner::quick(),
        StromaRunner::new(RunConfig::default().records(false)),
    ] {
        let result = runner
            .run_with_model(
                &each,
                vec![3, 1, 2],
                PipelineContext::new(Discovery::default()),
            )
            .await
            .unwrap();
        assert_eq!(result.final_state, [3, 1, 2]);
        assert_eq!(result.model.initial_input, json!([3, 1, 2]));
        for item in [3, 1, 2] {
            assert_eq!(
                result.model.scratchpad[&format!("item {item}")],
                json!([3, 1, 2])
            );
        }
    }
}

// ---- fields that combine, in a PipelineContext ------------------------------

/// What a crawl over pages keeps: fields every page's item may change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Crawl {
    words: Sum<u32>,
    titles: Append<String>,
}

/// Counts a page's words and keeps its title, its first word; notes that a
/// page was read in the scratchpad key named by `note`, when that is set.
#[node]
async fn read_page(text: String, ctx: &mut PipelineContext<Crawl>) -> usize {
    let words = text.split_whitespace().count();
    ctx.words += words as u32;
    ctx.titles
        .push(text.split_whitespace().next().unwrap_or("").to_string());
    if let Some(Value::String(key)) = ctx.scratchpad.get("note").cloned() {
        ctx.scratchpad.insert(key, json!(true));
    }
    words
}

#[tokio::test]
async fn sums_and_appends_combine_the_items_changes_and_a_scratchpad_key_takes_one_writer() {
    // Plain JSON in and out: the wrappers mark themselves only inside a merge.
    let model =
        PipelineContext::<Crawl>::from_initial(json!({"words": 5, "titles": ["intro"]})).unwrap();
    let pages = vec![
        "alpha beta".to_string(),
        "gamma delta epsilon".into(),
        "zeta".into(),
    ];
    let result = StromaRunner::quick()
        .run_with_model(
            &for_each(read_page).concurrency(3),
            pages.clone(),
            model.clone(),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, [2, 3, 1]);
    assert_eq!(result.model.words.0, 11);
    assert_eq!(result.model.titles.0, ["intro", "alpha", "gamma", "zeta"]);
    let json = serde_json::to_value(&result.model).unwrap();
    assert_eq!(json["words"], json!(11));
    assert_eq!(json["titles"], json!(["intro", "alpha", "gamma", "zeta"]));

    // A scratchpad entry is a field too: every item writing one key
    // conflicts, though all write the same value.
    let mut noting = model;
    noting.scratchpad.insert("note".into(), json!("read"));
    let err = StromaRunner::quick()
        .run_with_model(&for_each(read_page), pages, noting.clone())
        .await
        .unwrap_err();
    let conflict = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<MergeConflict>())
        .expect("a merge conflict");
    assert_eq!(conflict.field(), "scratchpad.read");
    assert!(
        conflict.to_string().starts_with(
            "3 branches changed the model field `scratchpad.read` (values: true; true; true): "
        ),
        "{conflict}"
    );
    let after = err.model::<PipelineContext<Crawl>>().unwrap();
    assert_eq!(
        (&after.data, &after.scratchpad),
        (&noting.data, &noting.scratchpad)
    );
}

#[tokio::test]
async fn a_nested_or_named_first_node_still_gives_the_model_the_runs_input() {
    let p = pipeline![pipeline![take_notes].named("inner"), take_notes];
    let result = StromaRunner::new(RunConfig::default().records(false))
        .run_with_model(&p, 4, PipelineContext::new(Discovery::default()))
        .await
        .unwrap();
    assert_eq!(result.model.initial_input, json!(4));
    let looped = loop_until(take_notes, |n: &u32, _: &PipelineContext<Discovery>| *n > 5);
    let result = StromaRunner::quick()
        .run_with_model(&looped, 3, PipelineContext::new(Discovery::default()))
        .await
        .unwrap();
    assert_eq!(result.model.initial_input, json!(3));
}

/// An input with no JSON form: `Serialize` fails on it.
struct Opaque(u32);

impl Serialize for Opaque {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no JSON form"))
    }
}

#[node]
async fn unwrap_opaque(input: Opaque) -> u32 {
    input.0
}

/// Panics when asked for its JSON.
#[derive(Clone)]
struct Touchy;

impl Serialize for Touchy {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("do not serialize me")
    }
}

#[node]
async fn accept_touchy(_input: Touchy) -> u32 {
    1
}

#[tokio::test]
async fn an_input_with_no_json_leaves_initial_input_null_not_stale() {
    let mut model = PipelineContext::new(Discovery::default());
    model.initial_input = json!("an earlier run's");
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![unwrap_opaque], Opaque(3), model)
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
    assert_eq!(result.model.initial_input, Value::Null);
}

#[tokio::test]
async fn an_input_whose_serialize_panics_fails_the_run_not_the_process() {
    let err = StromaRunner::quick()
        .run_with_model(
            &accept_touchy,
            Touchy,
            PipelineContext::new(Discovery::default()),
        )
        .await
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(err.to_string().contains("do not serialize me"), "{err}");
}

/// A wrapped first node (here renamed) still gives the model the run's input.
#[tokio::test]
async fn a_wrapped_first_node_gives_the_runs_input() {
    let result = StromaRunner::quick()
        .run_with_model(
            &pipeline![take_notes.named("first"), take_notes],
            4,
            PipelineContext::new(Discovery::default()),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, 6);
    assert_eq!(result.model.initial_input, json!(4));
}

#[node]
async fn take_notes(n: u32, ctx: &mut PipelineContext<Discovery>) -> u32 {
    ctx.scratchpad.insert("last".into(), json!(n));
    ctx.hitl_history.push(interaction());
    ctx.command_log.push(command());
    ctx.frontier.push(n);
    n + 1
}

#[tokio::test]
async fn nodes_write_scratchpad_records_and_user_fields_and_the_caller_gets_them() {
    let p = pipeline![take_notes, take_notes];
    let result = StromaRunner::quick()
        .run_with_model(&p, 7, PipelineContext::new(Discovery::default()))
        .await
        .unwrap();
    let model = result.model;
    assert_eq!(model.initial_input, json!(7));
    assert_eq!(model.scratchpad["last"], json!(8));
    assert_eq!(model.hitl_history, [interaction(), interaction()]);
    assert_eq!(model.command_log, [command(), command()]);
    assert_eq!(model.frontier, [7, 8]);
}

// ---- serde ------------------------------------------------------------------

#[test]
fn serde_round_trips_with_user_fields_as_top_level_keys() {
    let mut ctx = PipelineContext::new(Discovery {
        frontier: vec![1, 2],
        seen: vec![3],
        max_depth: 5,
    });
    ctx.initial_input = json!("start");
    ctx.scratchpad.insert("note".into(), json!({"k": [1]}));
    ctx.hitl_history.push(interaction());
    ctx.command_log.push(command());

    let value = serde_json::to_value(&ctx).unwrap();
    let Value::Object(map) = &value else {
        panic!("a model serializes as an object, not {value}")
    };
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "command_log",
            "frontier",
            "hitl_history",
            "initial_input",
            "max_depth",
            "scratchpad",
            "seen"
        ]
    );
    assert_eq!(value["frontier"], json!([1, 2]));
    assert_eq!(value["hitl_history"][0]["prompt"], json!("approve?"));
    assert_eq!(value["command_log"][0]["command"], json!("ls"));

    let back: PipelineContext<Discovery> = serde_json::from_value(value).unwrap();
    assert_eq!(back, ctx);
    let text = serde_json::to_string(&ctx).unwrap();
    assert_eq!(
        serde_json::from_str::<PipelineContext<Discovery>>(&text).unwrap(),
        ctx
    );
}

// ---- from_initial -----------------------------------------------------------

#[test]
fn from_initial_fills_missing_fields_with_the_defaults() {
    let ctx = PipelineContext::<Settings>::from_initial(json!({"label": "mine"})).unwrap();
    assert_eq!(ctx.label, "mine");
    assert_eq!(ctx.depth, 3);
    assert_eq!(ctx.initial_input, Value::Null);
    assert!(ctx.scratchpad.is_empty() && ctx.hitl_history.is_empty());

    let ctx = PipelineContext::<Discovery>::from_initial(json!({
        "frontier": [123],
        "scratchpad": {"k": 1},
    }))
    .unwrap();
    assert_eq!(ctx.frontier, [123]);
    assert!(ctx.seen.is_empty());
    assert_eq!(ctx.scratchpad["k"], json!(1));

    let empty = PipelineContext::<Settings>::from_initial(json!({})).unwrap();
    assert_eq!(empty, PipelineContext::default());
}

#[test]
fn from_initial_names_an_unknown_key() {
    let err = PipelineContext::<Discovery>::from_initial(json!({"frontier": [1], "sen": []}))
        .unwrap_err();
    assert_eq!(err.key(), Some("sen"));
    let message = err.to_string();
    assert!(message.contains("`sen`"), "{message}");
    // The message lists what the model does have.
    assert!(
        message.contains("frontier") && message.contains("seen"),
        "{message}"
    );
}

#[test]
fn from_initial_names_a_mistyped_key() {
    // The well-typed key comes first: the error must still name the bad one.
    let err = PipelineContext::<Discovery>::from_initial(json!({
        "frontier": [1],
        "seen": "not a list",
    }))
    .unwrap_err();
    assert_eq!(err.key(), Some("seen"));
    assert!(err.to_string().contains("`seen`"), "{err}");

    let err = PipelineContext::<Settings>::from_initial(json!({"depth": -1})).unwrap_err();
    assert_eq!(err.key(), Some("depth"));

    let err = PipelineContext::<Settings>::from_initial(json!({"scratchpad": 5})).unwrap_err();
    assert_eq!(err.key(), Some("scratchpad"));
}

#[test]
fn from_initial_refuses_data_that_is_not_an_object() {
    let err = PipelineContext::<Settings>::from_initial(json!([1, 2])).unwrap_err();
    assert_eq!(err.key(), None);
    assert!(err.to_string().contains("JSON object"), "{err}");
}

// ---- any model --------------------------------------------------------------

/// A model with no serde and no `PipelineContext`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    calls: u32,
    seen: Vec<u64>,
}

#[node]
async fn tally(n: u64, model: &mut Tally) -> u64 {
    model.calls += 1;
    model.seen.push(n);
    n * 2
}

#[node]
async fn push_len(text: String, model: &mut Vec<usize>) -> usize {
    model.push(text.len());
    text.len()
}

#[tokio::test]
async fn any_model_type_runs_and_comes_back_as_result_model() {
    let runner = StromaRunner::quick();
    let result = runner
        .run_with_model(&pipeline![tally, tally], 3, Tally::default())
        .await
        .unwrap();
    assert_eq!(result.final_state, 12);
    assert_eq!(
        result.model,
        Tally {
            calls: 2,
            seen: vec![3, 6]
        }
    );

    let result = runner
        .run_with_model(&pipeline![push_len], "four".into(), vec![1])
        .await
        .unwrap();
    assert_eq!(result.model, [1, 4]);

    let options = RunOptions::new().model(Tally::default());
    let result = runner
        .run_with(&pipeline![tally], 5, options)
        .await
        .unwrap();
    assert_eq!(result.model.seen, [5]);
}

// ---- validation, and rollback of failed nodes --------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Budget {
    spent: u32,
    limit: u32,
    log: Vec<String>,
}

impl ModelValidate for Budget {
    fn validate(&self) -> Result<(), String> {
        if self.spent > self.limit {
            return Err(format!(
                "spent {} over the limit of {}",
                self.spent, self.limit
            ));
        }
        Ok(())
    }
}

#[node]
async fn spend(amount: u32, budget: &mut Budget) -> u32 {
    budget.spent += amount;
    budget.log.push(format!("spent {amount}"));
    amount * 2
}

#[node]
async fn after_spending(amount: u32, budget: &mut Budget) -> u32 {
    budget.log.push("after".into());
    amount
}

#[tokio::test]
async fn failed_validation_fails_the_node_and_restores_the_model() {
    let budget = Budget {
        spent: 0,
        limit: 10,
        log: Vec::new(),
    };
    // 3 is fine; the second `spend` adds 6 (9 in all) and is fine; the third adds 12.
    let p = pipeline![spend, spend, spend, after_spending];
    let err = StromaRunner::quick()
        .run_with_model(&p, 3, budget)
        .await
        .unwrap_err();
    assert_eq!(err.node(), "spend");
    // The third of three siblings with one id.
    assert_eq!(err.path().as_str(), "spend#3");
    assert_eq!(
        err.to_string(),
        "node `spend#3` failed: the model is invalid after this node: \
         spent 21 over the limit of 10; the change was undone"
    );
    assert_eq!(
        err.cause().downcast_ref::<ModelUpdateError>(),
        Some(&ModelUpdateError::Invalid {
            reason: "spent 21 over the limit of 10".into()
        })
    );
    assert!(!err.is_panic());
    // As the second `spend` left it; `after_spending` never ran.
    assert_eq!(
        err.into_model::<Budget>().unwrap(),
        Budget {
            spent: 9,
            limit: 10,
            log: vec!["spent 3".into(), "spent 6".into()]
        }
    );
}

#[tokio::test]
async fn a_valid_change_passes_validation() {
    let budget = Budget {
        spent: 0,
        limit: 10,
        log: Vec::new(),
    };
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![spend, after_spending], 5, budget)
        .await
        .unwrap();
    assert_eq!(result.model.spent, 5);
    assert_eq!(result.model.log, ["spent 5", "after"]);
}

#[node]
async fn record_step(n: u64, model: &mut Tally) -> u64 {
    model.calls += 1;
    model.seen.push(n);
    n + 1
}

#[node]
async fn scribble_then_fail(n: u64, model: &mut Tally) -> Result<u64, NodeError> {
    model.calls = 99;
    model.seen.clear();
    Err(NodeError::msg(format!("cannot handle {n}")))
}

#[node]
async fn scribble_then_panic(n: u64, model: &mut Tally) -> u64 {
    model.calls = 99;
    model.seen.clear();
    panic!("cannot handle {n}");
}

fn after_one_step() -> Tally {
    Tally {
        calls: 1,
        seen: vec![1],
    }
}

#[tokio::test]
async fn a_node_that_errs_leaves_the_model_as_it_was_before_it() {
    let p = pipeline![record_step, scribble_then_fail, record_step];
    let err = StromaRunner::quick()
        .run_with_model(&p, 1, Tally::default())
        .await
        .unwrap_err();
    assert_eq!(err.node(), "scribble_then_fail");
    assert_eq!(
        err.to_string(),
        "node `scribble_then_fail` failed: cannot handle 2"
    );
    assert_eq!(err.model::<Tally>(), Some(&after_one_step()));
}

#[tokio::test]
async fn a_node_that_panics_leaves_the_model_as_it_was_before_it() {
    let p = pipeline![record_step, scribble_then_panic, record_step];
    let err = StromaRunner::quick()
        .run_with_model(&p, 1, Tally::default())
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "scribble_then_panic");
    assert_eq!(
        err.to_string(),
        "node `scribble_then_panic` panicked: cannot handle 2"
    );
    assert_eq!(err.into_model::<Tally>(), Some(after_one_step()));
}

// ---- updates_context --------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
struct Retitle {
    title: String,
    words: u32,
}

/// Changes the model directly and through its output: both are kept.
#[node(updates_context)]
async fn retitle(text: String, ctx: &mut DocModel) -> Retitle {
    ctx.edits += 1;
    Retitle {
        words: text.split_whitespace().count() as u32,
        title: text,
    }
}

#[tokio::test]
async fn updates_context_merges_the_outputs_fields_by_name() {
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![retitle], "a new title".into(), doc())
        .await
        .unwrap();
    assert_eq!(result.final_state.title, "a new title");
    let model = result.model;
    assert_eq!(model.title, "a new title");
    assert_eq!(model.words, 3);
    assert_eq!(model.edits, 1);
    // Fields the output does not name are untouched.
    assert_eq!(model.tags, ["a"]);
    assert_eq!(model.initial_input, json!("a new title"));
}

#[node(updates_context)]
async fn set_scratch(n: u32, _ctx: &mut DocModel) -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("scratchpad".to_owned(), json!({"n": n})),
        ("words".to_owned(), json!(n)),
    ])
}

#[tokio::test]
async fn updates_context_takes_a_map_and_reaches_built_in_fields() {
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![set_scratch], 42, doc())
        .await
        .unwrap();
    assert_eq!(result.model.scratchpad["n"], json!(42));
    assert_eq!(result.model.words, 42);
}

#[derive(Clone, Debug, Serialize)]
struct WithUnknown {
    title: String,
    colour: String,
}

#[node(updates_context)]
async fn set_colour(text: String, ctx: &mut DocModel) -> WithUnknown {
    ctx.edits += 1;
    WithUnknown {
        title: text,
        colour: "red".into(),
    }
}

#[tokio::test]
async fn an_unknown_output_field_is_named_and_nothing_is_written() {
    let err = StromaRunner::quick()
        .run_with_model(&pipeline![set_colour], "new".into(), doc())
        .await
        .unwrap_err();
    assert_eq!(err.node(), "set_colour");
    match err.cause().downcast_ref::<ModelUpdateError>() {
        Some(ModelUpdateError::UnknownField { field, .. }) => assert_eq!(field, "colour"),
        other => panic!("expected an unknown field error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "node `set_colour` failed: the output's field `colour` is not a field of the model \
         `PipelineContext<Doc>`; nothing was written"
    );
    // `title` comes before `colour` in the output and was not written either,
    // nor was the node's direct change to `edits` kept.
    let mut expected = doc();
    expected.initial_input = json!("new");
    assert_eq!(err.into_model::<DocModel>(), Some(expected));
}

#[derive(Clone, Debug, Serialize)]
struct WithWrongType {
    title: String,
    words: String,
}

#[node(updates_context)]
async fn set_words_as_text(text: String, ctx: &mut DocModel) -> WithWrongType {
    ctx.edits += 1;
    WithWrongType {
        title: text,
        words: "many".into(),
    }
}

#[tokio::test]
async fn a_mistyped_output_field_is_named_and_nothing_is_written() {
    let err = StromaRunner::quick()
        .run_with_model(&pipeline![set_words_as_text], "new".into(), doc())
        .await
        .unwrap_err();
    match err.cause().downcast_ref::<ModelUpdateError>() {
        Some(ModelUpdateError::WrongType { field, .. }) => assert_eq!(field, "words"),
        other => panic!("expected a wrong type error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with(
            "node `set_words_as_text` failed: the output's field `words` does not fit the model"
        ),
        "{message}"
    );
    let model = err.into_model::<DocModel>().unwrap();
    assert_eq!(model.title, "draft");
    assert_eq!(model.words, 10);
    assert_eq!(model.edits, 0);
}

#[node(updates_context)]
async fn output_a_number(n: u32, ctx: &mut DocModel) -> u32 {
    ctx.edits += 1;
    n
}

#[tokio::test]
async fn an_output_that_is_not_a_struct_is_an_error() {
    let err = StromaRunner::quick()
        .run_with_model(&pipeline![output_a_number], 5, doc())
        .await
        .unwrap_err();
    assert!(matches!(
        err.cause().downcast_ref::<ModelUpdateError>(),
        Some(ModelUpdateError::NotFields { .. })
    ));
    assert_eq!(
        err.to_string(),
        "node `output_a_number` failed: an `updates_context` node must output a struct \
         or map of fields, not `5`; nothing was written"
    );
    assert_eq!(err.model::<DocModel>().unwrap().edits, 0);
}

#[derive(Clone, Debug, Serialize)]
struct WordCount {
    words: u32,
}

#[node(updates_context)]
async fn count_words(n: u32, ctx: &mut DocModel) -> WordCount {
    ctx.edits += 1;
    WordCount { words: n }
}

#[node]
async fn bump_edits(n: u32, ctx: &mut DocModel) -> u32 {
    ctx.edits += 1;
    n
}

#[tokio::test]
async fn a_merge_that_fails_validation_leaves_the_model_unchanged() {
    let p = pipeline![bump_edits, count_words];
    let runner = StromaRunner::quick();
    let ok = runner.run_with_model(&p, 500, doc()).await.unwrap();
    assert_eq!((ok.model.words, ok.model.edits), (500, 2));

    let err = runner.run_with_model(&p, 5000, doc()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `count_words` failed: the model is invalid after this node: \
         5000 words is over the limit of 1000; the change was undone"
    );
    let model = err.into_model::<DocModel>().unwrap();
    // `bump_edits` ran before and keeps its change; `count_words` left nothing.
    assert_eq!((model.words, model.edits), (10, 1));
}

#[derive(Clone, Debug, Serialize)]
struct Tags {
    tags: Vec<String>,
}

#[node(updates_context)]
async fn tag_with_title(suffix: String, ctx: &DocModel) -> Tags {
    let mut tags = ctx.tags.clone();
    tags.push(format!("{}-{suffix}", ctx.title));
    Tags { tags }
}

#[tokio::test]
async fn a_shared_model_node_can_update_the_model_through_its_output() {
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![tag_with_title], "x".into(), doc())
        .await
        .unwrap();
    assert_eq!(result.model.tags, ["a", "draft-x"]);
    assert_eq!(result.model.title, "draft");
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Plain {
    count: u32,
    name: String,
}

#[derive(Clone, Debug, Serialize)]
struct Named {
    name: String,
}

#[node(updates_context)]
async fn name_it(name: String, _model: &Plain) -> Named {
    Named { name }
}

#[tokio::test]
async fn updates_context_works_on_a_model_that_is_not_a_pipeline_context() {
    let result = StromaRunner::quick()
        .run_with_model(&pipeline![name_it], "n".into(), Plain::default())
        .await
        .unwrap();
    assert_eq!(
        result.model,
        Plain {
            count: 0,
            name: "n".into()
        }
    );
}

/// A model whose check panics when `fragile` is set.
#[derive(Clone, Debug, Default, PartialEq)]
struct Fragile {
    value: u32,
    fragile: bool,
}

impl ModelValidate for Fragile {
    fn validate(&self) -> Result<(), String> {
        if self.fragile && self.value > 1 {
            panic!("the check itself broke");
        }
        if self.value > 10 {
            return Err(format!("{} is over 10", self.value));
        }
        Ok(())
    }
}

#[node]
async fn set_value(n: u32, model: &mut Fragile) -> u32 {
    model.value = n;
    n
}

#[tokio::test]
async fn a_check_that_panics_leaves_the_model_as_before_the_node() {
    let model = Fragile {
        value: 1,
        fragile: true,
    };
    let err = StromaRunner::quick()
        .run_with_model(&set_value, 5, model.clone())
        .await
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(err.to_string().contains("the check itself broke"), "{err}");
    assert_eq!(err.model::<Fragile>(), Some(&model));
}

/// An output whose `Drop` panics.
#[derive(Debug)]
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Bomb {} dropped", self.0);
        }
    }
}

#[node]
async fn arm(n: u32, model: &mut Fragile) -> Bomb {
    model.value = n;
    Bomb(n)
}

#[tokio::test]
async fn an_output_that_panics_when_dropped_after_a_refused_change_leaves_the_model() {
    let model = Fragile {
        value: 1,
        fragile: false,
    };
    // 50 is refused by the check; the refused output is then dropped, and panics.
    let err = StromaRunner::quick()
        .run_with_model(&arm, 50, model.clone())
        .await
        .unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.path().as_str(), "arm");
    assert_eq!(err.model::<Fragile>(), Some(&model));
}

/// Waits until told, after changing the model.
#[node]
async fn change_then_wait(n: u32, model: &mut Fragile) -> u32 {
    model.value = n;
    std::future::pending::<()>().await;
    n
}

#[tokio::test]
async fn a_run_dropped_midway_through_a_model_node_panics_nowhere_and_the_runner_goes_on() {
    let runner = StromaRunner::quick().with_context(Context::new().with_named("shared", 1_u32));
    let model = Fragile::default();
    let run = runner.run_with_model(&change_then_wait, 3, model);
    // The node starts, changes the model and waits; the run is dropped there.
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), run).await;
    assert!(timed_out.is_err());
    // The runner and its shared context keep working.
    let result = runner
        .run_with_model(&set_value, 4, Fragile::default())
        .await
        .unwrap();
    assert_eq!(result.model.value, 4);
    assert_eq!(*result.context.get_named::<u32>("shared").unwrap(), 1);
}

#[test]
fn from_initial_quotes_a_huge_bad_value_by_its_start_only() {
    let huge = "x".repeat(5 << 20);
    let err =
        PipelineContext::<Settings>::from_initial(json!({ "depth": huge.clone() })).unwrap_err();
    assert_eq!(err.key(), Some("depth"));
    let text = err.to_string();
    assert!(text.len() < 400, "{} bytes", text.len());
    assert!(text.contains("bytes in all"), "{text}");

    let err = PipelineContext::<Settings>::from_initial(json!(huge)).unwrap_err();
    let text = err.to_string();
    assert!(text.len() < 400, "{} bytes", text.len());
    assert!(text.contains("not a string"), "{text}");
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Clashing {
    scratchpad: u32,
}

#[test]
fn from_initial_names_a_field_named_like_a_built_in() {
    let err = PipelineContext::<Clashing>::from_initial(json!({})).unwrap_err();
    assert_eq!(err.key(), Some("scratchpad"));
    assert!(err.to_string().contains("rename it"), "{err}");
}
