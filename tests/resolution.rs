//! Context resolution: every row of the order (isolated, snapshot, sharing
//! phase, history phase, global, none), alone and nested, through
//! `ctx.session()` and task-locally through `stroma::current_session()`.

use serde_json::{Value, json};
use stroma::prelude::*;
use stroma::{MemorySession, Session, SessionMode, current_session, phase};

/// Reads the history it sees, adds one message, and says what it saw.
#[node]
async fn talk(tag: String, ctx: &Context) -> Result<String, NodeError> {
    let view = ctx.session();
    let seen = view.items().await?;
    view.add_items(vec![json!({"role": "assistant", "content": tag.clone()})])
        .await?;
    // The same view task-locally, also in a spawned task.
    let spawned = stroma::spawn(async { current_session().map(|view| view.mode()) })
        .await
        .unwrap();
    // (A run with no session has none task-locally either.)
    let expected = (view.mode() != SessionMode::None).then(|| view.mode());
    assert_eq!(spawned, expected, "the task-local view follows the node's");
    Ok(format!(
        "{tag}:{:?}:{}",
        view.mode(),
        contents(&seen).join("+")
    ))
}

#[node]
async fn then(previous: String, ctx: &Context) -> Result<String, NodeError> {
    let reply = talk::call("then".to_owned(), ctx).await?;
    Ok(format!("{previous} | {reply}"))
}

fn contents(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn history(session: &MemorySession) -> Vec<String> {
    contents(&session.get_items(None).await.unwrap())
}

fn seeded() -> MemorySession {
    MemorySession::with_items(vec![json!({"role": "user", "content": "hello"})])
}

#[tokio::test]
async fn global_reads_and_writes_the_runs_session_and_none_has_nothing() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let result = runner.run(&talk, "a".to_owned()).await.unwrap();
    assert_eq!(result.final_state, "a:Global:hello");
    assert_eq!(history(&session).await, ["hello", "a"]);

    // A run's own session wins over the runner's.
    let own = MemorySession::new();
    let result = runner
        .run_with(
            &talk,
            "b".to_owned(),
            RunOptions::new().session(own.clone()),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, "b:Global:");
    assert_eq!(history(&own).await, ["b"]);
    assert_eq!(history(&session).await, ["hello", "a"]);

    let result = StromaRunner::quick()
        .run(&talk, "c".to_owned())
        .await
        .unwrap();
    assert_eq!(result.final_state, "c:None:");
}

#[tokio::test]
async fn isolated_sees_no_history_and_writes_nowhere() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let result = runner.run(&talk.isolated(), "a".to_owned()).await.unwrap();
    assert_eq!(result.final_state, "a:Isolated:");
    assert_eq!(history(&session).await, ["hello"]);
}

#[tokio::test]
async fn snapshot_reads_the_runs_session_and_its_writes_are_discarded() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let result = runner
        .run(&pipeline![talk.snapshot(), then], "a".to_owned())
        .await
        .unwrap();
    assert_eq!(result.final_state, "a:Snapshot:hello | then:Global:hello");
    assert_eq!(history(&session).await, ["hello", "then"]);
}

#[tokio::test]
async fn a_sharing_phase_accumulates_its_own_session_and_leaves_the_runs() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let result = runner
        .run(
            &phase("research", true, pipeline![talk, then]),
            "a".to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        "a:PhaseShared:hello | then:PhaseShared:hello+a"
    );
    assert_eq!(history(&session).await, ["hello"]);
}

#[tokio::test]
async fn a_history_phase_reads_a_copy_and_discards_writes() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let result = runner
        .run(
            &phase("review", false, pipeline![talk, then]),
            "a".to_owned(),
        )
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        "a:PhaseHistory:hello | then:PhaseHistory:hello"
    );
    assert_eq!(history(&session).await, ["hello"]);
}

#[tokio::test]
async fn nested_the_innermost_decides_and_modifiers_come_before_phases() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    // A snapshot inside a sharing phase reads the phase's session.
    let p = phase("research", true, pipeline![talk, then.snapshot()]);
    let result = runner.run(&p, "a".to_owned()).await.unwrap();
    assert_eq!(
        result.final_state,
        "a:PhaseShared:hello | then:Snapshot:hello+a"
    );
    // Isolated inside a phase is isolated.
    let p = phase("research", true, talk.isolated());
    assert_eq!(
        runner.run(&p, "b".to_owned()).await.unwrap().final_state,
        "b:Isolated:"
    );
    // A history phase inside a sharing one copies the sharing one's history.
    let p = phase("outer", true, pipeline![talk, phase("inner", false, then)]);
    let result = runner.run(&p, "c".to_owned()).await.unwrap();
    assert_eq!(
        result.final_state,
        "c:PhaseShared:hello | then:PhaseHistory:hello+c"
    );
    assert_eq!(history(&session).await, ["hello"]);
    assert_eq!(
        parallel_modes(&runner).await,
        ("x:Snapshot:hello".to_owned(), "x:Snapshot:hello".to_owned())
    );
}

/// Snapshot nodes in `parallel!` read the same history at once and write nothing.
async fn parallel_modes(runner: &StromaRunner) -> (String, String) {
    runner
        .run(&parallel![talk.snapshot(), talk.snapshot()], "x".to_owned())
        .await
        .unwrap()
        .final_state
}

#[tokio::test]
async fn outside_a_run_there_is_no_session() {
    assert!(current_session().is_none());
}

#[node]
async fn pair_up(pair: (String, String)) -> String {
    format!("{} & {}", pair.0, pair.1)
}

#[tokio::test]
async fn two_sharing_phases_in_parallel_branches_each_accumulate_their_own() {
    let session = seeded();
    let runner = StromaRunner::quick().with_session(session.clone());
    let p = pipeline![
        parallel![
            phase("left", true, pipeline![talk, then]),
            phase("right", true, pipeline![talk, then])
        ],
        pair_up
    ];
    let result = runner.run(&p, "x".to_owned()).await.unwrap();
    assert_eq!(
        result.final_state,
        "x:PhaseShared:hello | then:PhaseShared:hello+x & x:PhaseShared:hello | then:PhaseShared:hello+x"
    );
    assert_eq!(history(&session).await, ["hello"]);
}
