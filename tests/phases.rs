//! Phases, the run's handler and custom events: the handler sees every
//! event in order, phases around their nodes' events, and code anywhere in
//! a phase (spawned tasks and branches included) can tell which phase it
//! is in.

use std::sync::{Arc, Mutex};

use serde_json::json;
use stroma::prelude::*;
use stroma::{Event, current_handler, current_phase, in_phase, phase};

#[node]
async fn where_am_i(n: u32) -> String {
    let here = current_phase().map_or("none".to_owned(), |p| {
        format!("{}:{}", p.label(), p.share_context())
    });
    // A task started with `stroma::spawn` sees the same phase.
    let spawned = stroma::spawn(async { current_phase().map(|p| p.label()) })
        .await
        .unwrap();
    format!("{n} {here} {spawned:?} {}", in_phase())
}

#[node]
async fn shout(text: String, ctx: &Context) -> String {
    ctx.emit("shouted", json!({ "text": text.to_uppercase() }));
    text
}

/// A handler that writes down each event it gets, briefly.
fn recorder() -> (
    Arc<Mutex<Vec<String>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&seen);
    let handler = move |event: &Event| {
        let line = match event {
            Event::RunStarted { .. } => "run".to_owned(),
            Event::PhaseStarted { label, .. } => format!("phase {label} started"),
            Event::PhaseEnded { label, status, .. } => format!("phase {label} ended {status:?}"),
            Event::NodeStarted { path, .. } => format!("start {path}"),
            Event::NodeCompleted { path, .. } => format!("done {path}"),
            Event::Custom { name, data, path } => format!("custom {name} {data} from {path}"),
            _ => return,
        };
        writer.lock().unwrap().push(line);
    };
    (seen, handler)
}

#[tokio::test]
async fn the_handler_sees_every_event_in_order_with_phases_around_their_nodes() {
    let (seen, handler) = recorder();
    let runner = StromaRunner::quick().with_handler(handler);
    let p = pipeline![where_am_i, phase("research", true, shout)];
    let result = runner.run(&p, 1).await.unwrap();
    assert_eq!(result.final_state, "1 none None false");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "run",
            "start where_am_i",
            "done where_am_i",
            "phase research started",
            "start research.shout",
            "custom shouted {\"text\":\"1 NONE NONE FALSE\"} from research.shout",
            "done research.shout",
            "phase research ended Completed",
        ]
    );
}

#[tokio::test]
async fn code_in_a_phase_knows_it_and_the_innermost_phase_decides() {
    let p = phase("outer", false, phase("inner", true, where_am_i));
    let result = StromaRunner::quick().run(&p, 2).await.unwrap();
    assert_eq!(result.final_state, "2 inner:true Some(\"inner\") true");
    assert_eq!(
        result.tree().find("outer.inner").unwrap().kind,
        ScopeKind::Phase
    );

    // In branches too.
    let p = phase("fan", false, parallel![where_am_i, where_am_i]);
    let result = StromaRunner::quick().run(&p, 3).await.unwrap();
    assert_eq!(result.final_state.0, "3 fan:false Some(\"fan\") true");
    assert_eq!(result.final_state.1, result.final_state.0);
    assert!(current_phase().is_none());
    assert!(!in_phase());
}

#[node]
async fn has_handler(n: u32) -> bool {
    let _ = n;
    current_handler().is_some()
}

#[tokio::test]
async fn a_runs_own_handler_wins_and_is_reachable_task_locally() {
    let (runner_seen, runner_handler) = recorder();
    let (run_seen, run_handler) = recorder();
    let runner = StromaRunner::quick().with_handler(runner_handler);
    let result = runner
        .run_with(&has_handler, 1, RunOptions::new().handler(run_handler))
        .await
        .unwrap();
    assert!(result.final_state);
    assert!(runner_seen.lock().unwrap().is_empty());
    assert_eq!(run_seen.lock().unwrap().len(), 3);
    assert!(
        !StromaRunner::quick()
            .run(&has_handler, 1)
            .await
            .unwrap()
            .final_state
    );
}

#[tokio::test]
async fn a_handler_that_panics_fails_its_run_but_not_the_process() {
    let calls = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&calls);
    let runner = StromaRunner::quick().with_handler(move |event: &Event| {
        *counter.lock().unwrap() += 1;
        if matches!(event, Event::NodeStarted { .. }) {
            panic!("the handler broke");
        }
    });
    let err = runner.run(&pipeline![where_am_i], 4).await.unwrap_err();
    assert!(err.is_panic());
    assert!(
        err.to_string().ends_with(
            "the run's event handler panicked on `node_started` of `where_am_i`: the handler broke"
        ),
        "{err}"
    );
    // Run started, node started (panicked), node completed: the later ones still came.
    assert_eq!(*calls.lock().unwrap(), 3);
    // The runner goes on.
    let quiet = StromaRunner::quick()
        .run(&pipeline![where_am_i], 4)
        .await
        .unwrap();
    assert_eq!(quiet.final_state, "4 none None false");
}

#[tokio::test]
async fn custom_events_reach_a_stream_too() {
    use futures::StreamExt;
    let runner = StromaRunner::quick();
    let p = phase("p", true, shout);
    let mut stream = std::pin::pin!(runner.stream(&p, "hi".to_owned()));
    let mut custom = Vec::new();
    while let Some(item) = stream.next().await {
        if let RunEvent::Event(Event::Custom { name, data, .. }) = item {
            custom.push((name, data));
        }
    }
    assert_eq!(custom, [("shouted".to_owned(), json!({"text": "HI"}))]);
}
