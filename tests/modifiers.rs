//! `.isolated()` and `.snapshot()` on the model and context sides: what a
//! modified node sees, and that its writes are discarded.

use std::sync::{Arc, Mutex};

use stroma::prelude::*;
use stroma::{Event, flow};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Notes {
    lines: Vec<String>,
}

/// Reports what it sees, then writes to the model and the context.
#[node]
async fn look_and_write(tag: String, ctx: &Context, notes: &mut Notes) -> String {
    let seen = format!(
        "{tag}: notes={} run_entry={} runner_entry={} var={} result={}",
        notes.lines.len(),
        ctx.contains_named("written_by_run"),
        ctx.contains_named("resource"),
        ctx.var::<String>("topic").is_ok(),
        ctx.has_result("first"),
    );
    notes.lines.push(tag.clone());
    ctx.insert_named("written_by_modified", tag);
    seen
}

#[node]
async fn first(tag: String, ctx: &Context, notes: &mut Notes) -> String {
    notes.lines.push("first".into());
    ctx.insert_named("written_by_run", true);
    tag
}

fn runner() -> StromaRunner {
    StromaRunner::quick().with_context(Context::new().with_named("resource", 1_u8))
}

#[tokio::test]
async fn an_isolated_node_sees_only_resources_and_a_default_model_and_writes_nowhere() {
    let p = flow("f", pipeline![first, look_and_write.isolated()]).var("topic", "t".to_owned());
    let result = runner()
        .run_with_model(&p, "iso".to_owned(), Notes::default())
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        "iso: notes=0 run_entry=false runner_entry=true var=false result=false"
    );
    // Its model and context writes are gone; the earlier node's stay.
    assert_eq!(result.model.lines, ["first"]);
    assert!(!result.context.contains_named("written_by_modified"));
    assert!(result.context.contains_named("written_by_run"));
    // It keeps its id and path in the run tree.
    assert_eq!(
        result.scope("f.look_and_write").unwrap().status,
        NodeStatus::Completed
    );
}

#[tokio::test]
async fn a_snapshot_node_reads_everything_and_its_writes_are_discarded_and_reported() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&seen);
    let runner = runner().with_handler(move |event: &Event| {
        if let Event::WritesDiscarded { path, what } = event {
            writer.lock().unwrap().push(format!("{what} of {path}"));
        }
    });
    let p = flow("f", pipeline![first, look_and_write.snapshot()]).var("topic", "t".to_owned());
    let result = runner
        .run_with_model(&p, "snap".to_owned(), Notes::default())
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        "snap: notes=1 run_entry=true runner_entry=true var=true result=true"
    );
    assert_eq!(result.model.lines, ["first"]);
    assert!(!result.context.contains_named("written_by_modified"));
    assert_eq!(
        *seen.lock().unwrap(),
        ["context of f.look_and_write", "model of f.look_and_write"]
    );
}

#[tokio::test]
async fn modifiers_work_on_whole_pipelines_and_a_failure_inside_leaves_the_model() {
    #[node]
    async fn fail_after_writing(tag: String, notes: &mut Notes) -> Result<String, NodeError> {
        notes.lines.push("doomed".into());
        Err(NodeError::msg(format!("{tag} fails")))
    }
    let p = pipeline![
        first,
        pipeline![look_and_write, fail_after_writing].snapshot()
    ];
    let err = runner()
        .run_with_model(&p, "x".to_owned(), Notes::default())
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "fail_after_writing");
    assert_eq!(err.model::<Notes>().unwrap().lines, ["first"]);
}
