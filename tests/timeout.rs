//! `.timeout(limit)`: a node past its limit fails naming itself and the
//! limit, and leaves the model and context as they were before it.

use std::time::Duration;

use stroma::prelude::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Notes {
    lines: Vec<String>,
}

#[node]
async fn quick(x: u32) -> u32 {
    x + 1
}

#[node]
async fn slow(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_secs(5)).await;
    x
}

#[node]
async fn note(x: u32, ctx: &Context, notes: &mut Notes) -> u32 {
    notes.lines.push(format!("saw {x}"));
    ctx.insert_named("seen", x);
    x
}

#[node]
async fn slow_note(x: u32, notes: &mut Notes) -> u32 {
    notes.lines.push("started".into());
    tokio::time::sleep(Duration::from_secs(5)).await;
    x
}

#[tokio::test]
async fn a_node_within_its_limit_runs_as_ever() {
    let runner = StromaRunner::quick();
    let p = pipeline![quick.timeout(Duration::from_secs(5)), quick];
    let done = runner.run(&p, 1).await.unwrap();
    assert_eq!(done.final_state, 3);
    // Its id and path are its own.
    assert_eq!(
        done.tree().find("quick").unwrap().status,
        NodeStatus::Completed
    );
}

#[tokio::test]
async fn a_node_past_its_limit_fails_naming_itself_and_the_limit() {
    let runner = StromaRunner::quick();
    let p = pipeline![quick, slow.timeout(Duration::from_millis(50)), quick];
    let started = std::time::Instant::now();
    let err = runner.run(&p, 1).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut at the limit"
    );
    assert_eq!(err.path().as_str(), "slow");
    let text = err.to_string();
    assert!(
        text.contains("node `slow` failed: timed out after 50ms"),
        "{text}"
    );
    let timed_out = err.cause().downcast_ref::<TimedOut>().expect("a TimedOut");
    assert_eq!(timed_out.limit(), Duration::from_millis(50));
    assert_eq!(err.tree().find("slow").unwrap().status, NodeStatus::Failed);
    assert_eq!(
        err.tree().find("quick#2").unwrap().status,
        NodeStatus::Skipped
    );
}

#[tokio::test]
async fn a_pipeline_past_its_limit_leaves_the_model_and_context_as_before_it() {
    let runner = StromaRunner::quick();
    // Inside, `note` sees 8: its writes are the ones to be undone.
    let inner = pipeline![quick, note, slow_note];
    let p = pipeline![note, inner.timeout(Duration::from_millis(50))];
    let err = runner
        .run_with_model(&p, 7, Notes::default())
        .await
        .unwrap_err();
    // The node that was running is the one blamed.
    assert_eq!(err.path().as_str(), "slow_note");
    let notes = err.model::<Notes>().unwrap();
    assert_eq!(
        notes.lines,
        ["saw 7"],
        "only the node before the limited one"
    );
    // The limited pipeline's write of `seen` (8) is gone; the first node's is there.
    assert_eq!(*err.context().get_named::<u32>("seen").unwrap(), 7);
    let twice = pipeline![
        note,
        pipeline![note.named("again"), slow_note].timeout(Duration::from_millis(50))
    ];
    let err = runner
        .run_with_model(&twice, 3, Notes::default())
        .await
        .unwrap_err();
    assert_eq!(err.model::<Notes>().unwrap().lines, ["saw 3"]);
}

#[tokio::test]
async fn a_loop_can_have_a_limit_of_its_own() {
    let runner = StromaRunner::quick();
    let looped = loop_until(slow, |_: &u32, _: &()| false)
        .max_loops(3)
        .timeout(Duration::from_millis(30));
    let err = runner.run(&pipeline![looped], 1).await.unwrap_err();
    assert_eq!(err.path().as_str(), "loop_until[1].slow");
    assert!(err.to_string().contains("timed out after 30ms"), "{err}");
}

/// Slow for the item 2 only.
#[node]
async fn slow_on_two(x: u32) -> u32 {
    if x == 2 {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    x
}

#[tokio::test]
async fn a_list_a_parallel_and_a_route_can_have_a_limit_of_their_own() {
    let runner = StromaRunner::quick();
    let limit = Duration::from_millis(30);

    // A list: the list is blamed (its items may run several at once).
    let list = for_each(slow_on_two).timeout(limit);
    let err = runner.run(&list, vec![1, 2, 3]).await.unwrap_err();
    assert!(err.to_string().contains("timed out after 30ms"), "{err}");
    assert_eq!(err.path().as_str(), "for_each");

    // A parallel: the parallel is blamed, as the list is.
    let both = parallel![quick, slow].timeout(limit);
    let err = runner.run(&pipeline![both], 1).await.unwrap_err();
    assert!(err.cause().downcast_ref::<TimedOut>().is_some(), "{err}");
    assert_eq!(err.path().as_str(), "parallel");

    // A route: the arm taken is blamed.
    let routed = route![quick => {
        n if n == 2 => slow,
        n => quick,
    }]
    .timeout(limit);
    let err = runner.run(&routed, 1).await.unwrap_err();
    assert!(err.cause().downcast_ref::<TimedOut>().is_some(), "{err}");
    assert_eq!(err.path().as_str(), "route.slow");
    assert_eq!(runner.run(&routed, 5).await.unwrap().final_state, 7);
}
