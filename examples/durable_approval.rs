//! A durable run that stops to ask a person, and finishes in another process.
//!
//! ```text
//! cargo run --example durable_approval                      # both halves
//! cargo run --example durable_approval -- start <db>        # first half: stops to ask
//! cargo run --example durable_approval -- answer <db> <run id> <name>   # second half
//! ```
//!
//! The pipeline drafts a press release, asks an editor to approve it, then
//! publishes it. The first invocation runs until the approval node asks and
//! exits; the run is saved in a SQLite file. The second invocation, a new
//! process, finds the run, answers the question, and the run finishes from
//! the approval node: the draft is not written again. With no arguments the
//! example runs the first half and then itself with `answer`, checking both.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use stroma::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Draft {
    title: String,
    body: String,
    approved_by: Option<String>,
}

/// How many drafts this process wrote: the second half must write none.
static DRAFTS_WRITTEN: AtomicU32 = AtomicU32::new(0);

#[node]
async fn write_draft(topic: String) -> Draft {
    DRAFTS_WRITTEN.fetch_add(1, Ordering::SeqCst);
    Draft {
        title: format!("Stroma now {topic}"),
        body: format!("Starting today, Stroma {topic}."),
        approved_by: None,
    }
}

#[node]
async fn approve(draft: Draft, ctx: &Context) -> Result<Draft, NodeError> {
    // Stops the run the first time; returns the editor's name once answered.
    let editor: String = ctx.interrupt(format!("Publish \"{}\"?", draft.title))?;
    Ok(Draft {
        approved_by: Some(editor),
        ..draft
    })
}

#[node]
async fn publish(draft: Draft) -> String {
    format!(
        "{} -- {} (approved by {})",
        draft.title,
        draft.body,
        draft.approved_by.unwrap_or_default()
    )
}

async fn runner(db: &str) -> Result<StromaRunner, StoreError> {
    let store = SqliteStore::open(db).await?;
    Ok(StromaRunner::quick().with_store(store))
}

/// The first half: runs until the approval node asks; returns the run's id.
async fn start(db: &str) -> String {
    let runner = runner(db).await.expect("the store opens");
    let p = pipeline![write_draft, approve, publish];
    let err = runner
        .run_durable(&p, "resumes runs after a crash".to_string())
        .await
        .expect_err("the run stops to ask");
    assert!(err.is_interrupted(), "{err}");
    let question = &err.interrupts()[0];
    println!("asked: {} (question {})", question.question, question.id);
    let run_id = err.run_id().to_string();

    let waiting = runner
        .store()
        .list(Some(RunStatus::Interrupted))
        .await
        .expect("the store lists runs");
    let saved = waiting
        .iter()
        .find(|r| r.summary.run_id == run_id)
        .expect("the interrupted run is in the store");
    assert_eq!(saved.completed, ["write_draft"]);
    assert_eq!(saved.interrupts[0].question, question.question);
    println!("saved run {run_id}; completed so far:\n{}", saved.tree());
    assert_eq!(DRAFTS_WRITTEN.load(Ordering::SeqCst), 1);
    run_id
}

/// The second half, in another process: answers and finishes the run.
async fn answer(db: &str, run_id: &str, editor: &str) {
    let runner = runner(db).await.expect("the store opens");
    let p = pipeline![write_draft, approve, publish];
    let done = runner
        .resume_with(&p, run_id, editor)
        .await
        .expect("the answered run finishes");
    println!("published: {}", done.final_state);
    assert_eq!(
        done.final_state,
        format!(
            "Stroma now resumes runs after a crash -- Starting today, Stroma resumes runs after \
             a crash. (approved by {editor})"
        )
    );
    assert_eq!(
        DRAFTS_WRITTEN.load(Ordering::SeqCst),
        0,
        "the draft was saved, not written again"
    );
    let stored = runner.store().get(run_id).await.unwrap().unwrap();
    assert_eq!(stored.summary.status, RunStatus::Completed);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["start", db] => {
            println!("{}", start(db).await);
        }
        ["answer", db, run_id, editor] => answer(db, run_id, editor).await,
        [] => {
            let dir = std::env::temp_dir().join(format!("stroma-approval-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temp dir");
            let db = dir.join("runs.db").display().to_string();
            let run_id = start(&db).await;
            // The answer comes from another process, as it would hours later.
            let status = Command::new(std::env::current_exe().expect("this program"))
                .args(["answer", &db, &run_id, "Grace"])
                .status()
                .expect("the second half starts");
            assert!(status.success(), "the second half failed: {status}");
            let _ = std::fs::remove_dir_all(&dir);
            println!("both halves done");
        }
        _ => {
            eprintln!("usage: durable_approval [start <db> | answer <db> <run id> <name>]");
            std::process::exit(2);
        }
    }
}
