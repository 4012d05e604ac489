//! `stream` and `stream_with`: events in order, live as they happen, then
//! exactly one result as the last item.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::json;
use stroma::prelude::*;
use stroma::{Event, PipelineContext, RunEvent, loop_until};
use tokio::sync::Notify;

#[node]
async fn add_one(n: u64) -> u64 {
    n + 1
}

#[node]
async fn double(n: u64) -> u64 {
    n * 2
}

#[node]
async fn refuse(n: u64) -> Result<u64, NodeError> {
    Err(NodeError::msg(format!("{n} is refused")))
}

#[node]
async fn explode(_n: u64) -> u64 {
    panic!("boom");
}

/// An event as a short line, so a whole run's events compare as one list.
fn describe(event: &Event) -> String {
    match event {
        Event::RunStarted { .. } => "run started".into(),
        Event::NodeStarted { path, .. } => format!("started {path}"),
        Event::NodeCompleted { path, .. } => format!("completed {path}"),
        Event::NodeFailed { path, error, .. } => format!("failed {path}: {error}"),
        Event::LoopIteration {
            path, iteration, ..
        } => format!("{path} iteration {iteration}"),
        Event::ScopeStarted { path, kind, .. } => format!("{kind} {path} started"),
        Event::ScopeEnded {
            path, kind, status, ..
        } => format!("{kind} {path} ended {status:?}"),
        Event::ItemStarted { path, index, total } => format!("item {path} {index} of {total}"),
        other => format!("{other:?}"),
    }
}

/// Every item of a streamed run: the events, then the result, checked to be
/// the one and only `Finished` and the last item.
async fn collect<O, M>(
    stream: impl Stream<Item = RunEvent<O, M>>,
) -> (Vec<Event>, Result<RunResult<O, M>, RunError>) {
    let mut stream = pin!(stream);
    let mut events = Vec::new();
    let mut result = None;
    while let Some(item) = stream.next().await {
        assert!(result.is_none(), "an item came after the result");
        match item {
            RunEvent::Event(event) => events.push(event),
            RunEvent::Finished(finished) => result = Some(finished),
        }
    }
    (events, result.expect("the stream ends with the result"))
}

fn lines(events: &[Event]) -> Vec<String> {
    events.iter().map(describe).collect()
}

#[tokio::test]
async fn a_run_streams_its_start_each_node_in_order_then_its_result() {
    let runner = StromaRunner::quick();
    let p = pipeline![add_one, double, add_one];
    let (events, result) = collect(runner.stream(&p, 1)).await;
    let result = result.unwrap();
    assert_eq!(result.final_state, 5);
    assert_eq!(
        lines(&events),
        [
            "run started",
            "started add_one",
            "completed add_one",
            "started double",
            "completed double",
            "started add_one#2",
            "completed add_one#2",
        ]
    );
    match &events[0] {
        Event::RunStarted { run_id, graph_id } => {
            assert_eq!(*run_id, result.run_id);
            assert_eq!(*graph_id, p.name());
        }
        other => panic!("the first event is the run's start, not {other:?}"),
    }
}

#[tokio::test]
async fn a_failing_run_streams_the_failure_then_its_error() {
    let runner = StromaRunner::quick();
    let p = pipeline![add_one, refuse, double];
    let (events, result) = collect(runner.stream(&p, 1)).await;
    let err = result.unwrap_err();
    assert_eq!(err.node(), "refuse");
    assert_eq!(err.to_string(), "node `refuse` failed: 2 is refused");
    // `double` never starts.
    assert_eq!(
        lines(&events),
        [
            "run started",
            "started add_one",
            "completed add_one",
            "started refuse",
            "failed refuse: 2 is refused",
        ]
    );
}

#[tokio::test]
async fn a_panicking_node_streams_its_failure_then_the_error() {
    let runner = StromaRunner::quick();
    let p = pipeline![add_one, explode];
    let (events, result) = collect(runner.stream(&p, 1)).await;
    let err = result.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.node(), "explode");
    assert_eq!(
        lines(&events),
        [
            "run started",
            "started add_one",
            "completed add_one",
            "started explode",
            "failed explode: panicked",
        ]
    );
}

#[tokio::test]
async fn loops_stream_each_iteration_before_its_nodes() {
    let climb = loop_until(add_one, |n: &u64, _: &()| *n >= 3).named("climb");
    let p = pipeline![double, climb];
    let runner = StromaRunner::quick();
    let (events, result) = collect(runner.stream(&p, 0)).await;
    assert_eq!(result.unwrap().final_state, 3);
    assert_eq!(
        lines(&events),
        [
            "run started",
            "started double",
            "completed double",
            "loop climb started",
            "climb iteration 1",
            "started climb[1].add_one",
            "completed climb[1].add_one",
            "climb iteration 2",
            "started climb[2].add_one",
            "completed climb[2].add_one",
            "climb iteration 3",
            "started climb[3].add_one",
            "completed climb[3].add_one",
            "loop climb ended Completed",
        ]
    );
}

#[tokio::test]
async fn a_loop_that_reaches_its_cap_streams_its_iterations_then_the_error() {
    let stuck = loop_until(add_one, |_: &u64, _: &()| false)
        .max_loops(2)
        .named("stuck");
    let runner = StromaRunner::quick();
    let (events, result) = collect(runner.stream(&stuck, 0)).await;
    assert_eq!(result.unwrap_err().node(), "stuck");
    assert_eq!(
        lines(&events),
        [
            "run started",
            "loop stuck started",
            "stuck iteration 1",
            "started stuck[1].add_one",
            "completed stuck[1].add_one",
            "stuck iteration 2",
            "started stuck[2].add_one",
            "completed stuck[2].add_one",
            "loop stuck ended Failed",
        ]
    );
}

struct Gate(Arc<Notify>);

#[node]
async fn wait_for_gate(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    ctx.require::<Gate>()?.0.notified().await;
    Ok(n + 1)
}

#[tokio::test]
async fn events_arrive_while_the_run_is_still_going() {
    let gate = Arc::new(Notify::new());
    let runner = StromaRunner::quick().with_context(Context::new().with(Gate(Arc::clone(&gate))));
    let p = pipeline![add_one, wait_for_gate, double];
    let mut stream = pin!(runner.stream(&p, 1));
    // Bounded, so a stream that holds its events back until the run ends
    // fails here instead of hanging: the run cannot end before the gate opens.
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event is delivered while the run waits")
            .expect("the stream has not ended")
    };
    let mut seen = Vec::new();
    loop {
        match next().await {
            RunEvent::Event(event) => {
                let line = describe(&event);
                seen.push(line.clone());
                if line == "started wait_for_gate" {
                    break;
                }
            }
            RunEvent::Finished(_) => panic!("the run finished before its gate opened"),
        }
    }
    assert_eq!(
        seen,
        [
            "run started",
            "started add_one",
            "completed add_one",
            "started wait_for_gate",
        ]
    );
    gate.notify_one();

    let mut rest = Vec::new();
    let result = loop {
        match next().await {
            RunEvent::Event(event) => rest.push(describe(&event)),
            RunEvent::Finished(result) => break result.unwrap(),
        }
    };
    assert_eq!(result.final_state, 6);
    assert_eq!(
        rest,
        [
            "completed wait_for_gate",
            "started double",
            "completed double"
        ]
    );
    assert!(stream.next().await.is_none(), "nothing follows the result");
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Steps {
    taken: Vec<u64>,
}

#[node]
async fn take_step(n: u64, ctx: &mut PipelineContext<Steps>) -> u64 {
    ctx.taken.push(n);
    n + 1
}

#[tokio::test]
async fn stream_with_runs_with_a_model_and_returns_it() {
    let runner = StromaRunner::quick();
    let p = pipeline![take_step, double, take_step];
    let options = RunOptions::new().model(PipelineContext::new(Steps::default()));
    let (events, result) = collect(runner.stream_with(&p, 4, options)).await;
    let result = result.unwrap();
    assert_eq!(result.final_state, 11);
    assert_eq!(result.model.taken, [4, 10]);
    assert_eq!(result.model.initial_input, json!(4));
    assert_eq!(events.len(), 7);
    assert_eq!(
        describe(events.last().unwrap()),
        "completed take_step#2",
        "{events:?}"
    );
}

#[tokio::test]
async fn stream_with_model_streams_a_run_with_a_model_and_returns_it() {
    let runner = StromaRunner::quick();
    let p = pipeline![take_step, double, take_step];
    let model = PipelineContext::new(Steps::default());
    let (events, result) = collect(runner.stream_with_model(&p, 4, model)).await;
    let result = result.unwrap();
    assert_eq!(result.final_state, 11);
    assert_eq!(result.model.taken, [4, 10]);
    assert_eq!(
        lines(&events),
        [
            "run started",
            "started take_step",
            "completed take_step",
            "started double",
            "completed double",
            "started take_step#2",
            "completed take_step#2",
        ]
    );
}

#[tokio::test]
async fn stream_with_a_failing_model_node_returns_the_restored_model() {
    let runner = StromaRunner::quick();
    let p = pipeline![take_step, refuse];
    let options = RunOptions::new().model(PipelineContext::new(Steps::default()));
    let (events, result) = collect(runner.stream_with(&p, 4, options)).await;
    let err = result.unwrap_err();
    assert_eq!(err.model::<PipelineContext<Steps>>().unwrap().taken, [4]);
    assert_eq!(
        describe(events.last().unwrap()),
        "failed refuse: 5 is refused"
    );
}

#[tokio::test]
async fn each_event_s_kind_and_path_are_those_its_json_carries() {
    let runner = StromaRunner::quick();
    let p = pipeline![
        add_one,
        loop_until(double, |n: &u64, _: &()| *n > 10).named("grow"),
        for_each_of_three,
        stroma::for_each(add_one).named("each"),
        phase("last", false, pipeline![sum_up]),
    ]
    .named("p");
    let (events, result) = collect(runner.stream(&p, 1)).await;
    result.unwrap();
    let mut kinds = Vec::new();
    for event in &events {
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], event.kind(), "{event:?}");
        match event.path() {
            Some(path) => assert_eq!(json["path"], path.as_str(), "{event:?}"),
            None => assert!(json.get("path").is_none(), "{event:?}"),
        }
        kinds.push(event.kind());
    }
    for kind in [
        "run_started",
        "scope_started",
        "node_started",
        "node_completed",
        "loop_iteration",
        "item_started",
        "phase_started",
        "phase_ended",
        "scope_ended",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
}

#[node]
async fn for_each_of_three(n: u64) -> Vec<u64> {
    vec![n; 3]
}

#[node]
async fn sum_up(ns: Vec<u64>) -> u64 {
    ns.iter().sum()
}
