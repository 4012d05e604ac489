//! Context resolution: a small chat over a conversation kept in SQLite.
//! A research phase shares one session among its nodes, a critic reads
//! everything as a `.snapshot()` and writes nothing, a summary runs
//! `.isolated()`, and a handler prints the phase events. The session is
//! reopened at the end to show what it holds.
//!
//! Run with `cargo run --example context_resolution`; it asserts what it
//! prints and removes its database file.

use std::error::Error;
use std::sync::{Arc, Mutex};

use serde_json::json;
use stroma::prelude::*;
use stroma::{Event, Session, SessionMode, SqliteSession, current_phase};

fn message(role: &str, content: impl Into<String>) -> serde_json::Value {
    json!({ "role": role, "content": content.into() })
}

/// Asks the question: written to the run's session.
#[node]
async fn ask(question: String, ctx: &Context) -> Result<String, NodeError> {
    ctx.session()
        .add_items(vec![message("user", question.clone())])
        .await?;
    Ok(question)
}

/// Researches inside the sharing phase: reads what the phase has so far and adds a finding.
#[node]
async fn gather(question: String, ctx: &Context) -> Result<usize, NodeError> {
    let session = ctx.session();
    assert_eq!(session.mode(), SessionMode::PhaseShared);
    let phase = current_phase().map(|p| p.label()).unwrap_or_default();
    let seen = session.items().await?.len();
    session
        .add_items(vec![message(
            "assistant",
            format!("[{phase}] finding {seen} on {question}"),
        )])
        .await?;
    Ok(seen + 1)
}

/// Digs further in the same phase: sees the first finding.
#[node]
async fn dig(found: usize, ctx: &Context) -> Result<usize, NodeError> {
    let session = ctx.session();
    let seen = session.items().await?.len();
    assert_eq!(
        seen, found,
        "the phase's session has the question and the finding"
    );
    session
        .add_items(vec![message("assistant", format!("finding {seen}"))])
        .await?;
    Ok(seen + 1)
}

/// Reads every finding of the phase; its own note is discarded.
#[node]
async fn critic(found: usize, ctx: &Context) -> Result<usize, NodeError> {
    let session = ctx.session();
    assert_eq!(session.mode(), SessionMode::Snapshot);
    let history = session.items().await?;
    session
        .add_items(vec![message("critic", "too thin")])
        .await?;
    Ok(history.len().max(found))
}

/// Summarizes with no history at all.
#[node]
async fn summary(count: usize, ctx: &Context) -> Result<String, NodeError> {
    let session = ctx.session();
    assert_eq!(session.mode(), SessionMode::Isolated);
    assert!(session.items().await?.is_empty());
    Ok(format!("{count} messages seen by the critic"))
}

/// Answers in the run's own session.
#[node]
async fn answer(text: String, ctx: &Context) -> Result<String, NodeError> {
    ctx.session()
        .add_items(vec![message("assistant", text.clone())])
        .await?;
    Ok(text)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::temp_dir().join(format!("stroma-chat-{}.db", std::process::id()));
    let session = SqliteSession::open(&path, "chat-1").await?;
    let phases = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&phases);
    let runner = StromaRunner::quick()
        .with_session(session.clone())
        .with_handler(move |event: &Event| match event {
            Event::PhaseStarted {
                label,
                share_context,
                ..
            } => {
                println!("phase {label} started (shares context: {share_context})");
                seen.lock().unwrap().push(format!("{label} started"));
            }
            Event::PhaseEnded { label, status, .. } => {
                println!("phase {label} ended: {status:?}");
                seen.lock().unwrap().push(format!("{label} ended"));
            }
            Event::WritesDiscarded { path, what } => println!("discarded {what} writes of {path}"),
            _ => {}
        });
    let chat = pipeline![
        ask,
        phase("research", true, pipeline![gather, dig]),
        critic.snapshot(),
        summary.isolated(),
        answer
    ];
    let result = runner.run(&chat, "what is a pipeline?".to_owned()).await?;
    println!("answer: {}", result.final_state);
    drop(session);

    // Reopened: the run's session holds the question and the answer; the
    // phase's findings stayed in the phase, the critic's note was discarded.
    let reopened = SqliteSession::open(&path, "chat-1").await?;
    let stored = reopened.get_items(None).await?;
    for item in &stored {
        println!("stored: {item}");
    }
    drop(reopened);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    // The critic saw the question and both findings.
    assert_eq!(result.final_state, "3 messages seen by the critic");
    assert_eq!(
        stored,
        [
            message("user", "what is a pipeline?"),
            message("assistant", "3 messages seen by the critic"),
        ]
    );
    assert_eq!(
        *phases.lock().unwrap(),
        ["research started", "research ended"]
    );
    println!("ok");
    Ok(())
}
