//! `route!`: a classifying node's enum output picks the arm that runs next,
//! its payload the arm's input; the route is one node and one scope.

use stroma::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Ticket {
    Bug(String),
    Feature { title: String, votes: u32 },
    Duplicate(u32, String),
    Spam,
}

#[node]
async fn classify(text: String) -> Ticket {
    if let Some(rest) = text.strip_prefix("bug: ") {
        Ticket::Bug(rest.to_owned())
    } else if let Some(rest) = text.strip_prefix("feature: ") {
        Ticket::Feature {
            title: rest.to_owned(),
            votes: rest.len() as u32,
        }
    } else if let Some(rest) = text.strip_prefix("dup: ") {
        Ticket::Duplicate(7, rest.to_owned())
    } else {
        Ticket::Spam
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reply {
    text: String,
}

#[node]
async fn reproduce(report: String) -> Result<String, NodeError> {
    if report.contains("cannot reproduce") {
        return Err(NodeError::msg("no steps to reproduce"));
    }
    Ok(format!("steps for {report}"))
}

#[node]
async fn fix(steps: String) -> Reply {
    Reply {
        text: format!("fixed after {steps}"),
    }
}

#[node]
async fn plan(request: (String, u32)) -> Reply {
    Reply {
        text: format!("planned {} with {} votes", request.0, request.1),
    }
}

#[node]
async fn link(duplicate: (u32, String)) -> Reply {
    Reply {
        text: format!("{} is #{}", duplicate.1, duplicate.0),
    }
}

#[node]
async fn reject(_nothing: ()) -> Reply {
    Reply {
        text: "rejected".into(),
    }
}

fn triage() -> impl Runnable<(), Input = String, Output = Reply> {
    route![classify => {
        Ticket::Bug(report) => pipeline![reproduce, fix],
        Ticket::Feature { title, votes } => plan,
        Ticket::Duplicate(of, title) => link,
        Ticket::Spam => reject,
    }]
}

#[tokio::test]
async fn the_arm_the_pattern_matches_runs_on_what_it_binds() {
    let runner = StromaRunner::quick();
    let cases = [
        ("bug: crash on save", "fixed after steps for crash on save"),
        ("feature: dark mode", "planned dark mode with 9 votes"),
        ("dup: old crash", "old crash is #7"),
        ("buy now", "rejected"),
    ];
    for (input, expected) in cases {
        let done = runner.run(&triage(), input.into()).await.unwrap();
        assert_eq!(done.final_state.text, expected, "{input}");
    }
}

#[tokio::test]
async fn the_route_is_a_scope_showing_the_arm_taken_and_the_others_skipped() {
    let done = StromaRunner::quick()
        .run(&triage(), "feature: export".into())
        .await
        .unwrap();
    let status = |path: &str| done.scope(path).unwrap().status;
    assert_eq!(status("route"), NodeStatus::Completed);
    assert_eq!(status("route.classify"), NodeStatus::Completed);
    assert_eq!(status("route.plan"), NodeStatus::Completed);
    assert_eq!(status("route.reproduce"), NodeStatus::Skipped);
    assert_eq!(status("route.fix"), NodeStatus::Skipped);
    assert_eq!(status("route.link"), NodeStatus::Skipped);
    assert_eq!(status("route.reject"), NodeStatus::Skipped);
    assert_eq!(done.tree().find("route").unwrap().kind, ScopeKind::Route);
    let ran: Vec<&str> = done.records().iter().map(|r| r.path.as_str()).collect();
    assert_eq!(ran, ["route.classify", "route.plan"]);
}

#[tokio::test]
async fn a_failing_arm_fails_the_route_naming_its_node() {
    let err = StromaRunner::quick()
        .run(&triage(), "bug: cannot reproduce".into())
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "route.reproduce");
    assert_eq!(
        err.to_string(),
        "node `route.reproduce` failed: no steps to reproduce"
    );
    assert_eq!(err.scope("route.fix").unwrap().status, NodeStatus::Skipped);
}

#[node]
async fn score(n: u32) -> u32 {
    n
}

#[node]
async fn high(n: u32) -> String {
    format!("high {n}")
}

#[node]
async fn low(n: u32) -> String {
    format!("low {n}")
}

#[node]
async fn shout(text: String) -> String {
    text.to_uppercase()
}

#[tokio::test]
async fn guards_and_catch_alls_work_and_a_named_route_nests_in_a_pipeline() {
    let p = pipeline![
        route![score => {
            n if n > 10 => high,
            n => low,
        }]
        .named("grade"),
        shout
    ];
    let runner = StromaRunner::quick();
    assert_eq!(runner.run(&p, 42).await.unwrap().final_state, "HIGH 42");
    let done = runner.run(&p, 3).await.unwrap();
    assert_eq!(done.final_state, "LOW 3");
    assert_eq!(
        done.scope("grade.low").unwrap().status,
        NodeStatus::Completed
    );
    assert_eq!(
        done.scope("grade.high").unwrap().status,
        NodeStatus::Skipped
    );
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counts {
    bugs: u32,
    other: u32,
}

#[node]
async fn count_bug(_report: String, counts: &mut Counts) -> u32 {
    counts.bugs += 1;
    counts.bugs
}

#[node]
async fn count_other(_nothing: (), counts: &mut Counts) -> u32 {
    counts.other += 1;
    counts.other
}

#[tokio::test]
async fn arms_change_the_model_like_any_node() {
    let p = route![classify => {
        Ticket::Bug(report) => count_bug,
        _ => count_other,
    }];
    let runner = StromaRunner::quick();
    let done = runner
        .run_with_model(&p, "bug: x".into(), Counts::default())
        .await
        .unwrap();
    assert_eq!(done.model, Counts { bugs: 1, other: 0 });
    let done = runner
        .run_with_model(&p, "hello".into(), done.model)
        .await
        .unwrap();
    assert_eq!(done.model, Counts { bugs: 1, other: 1 });
}

#[tokio::test]
async fn a_route_runs_durably_and_resumes_in_its_arm() {
    static FAILS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    #[node]
    async fn flaky_plan(request: (String, u32)) -> Result<Reply, NodeError> {
        if FAILS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            return Err(NodeError::msg("planner down"));
        }
        Ok(Reply {
            text: format!("planned {}", request.0),
        })
    }
    let p = route![classify => {
        Ticket::Bug(report) => pipeline![reproduce, fix],
        Ticket::Feature { title, votes } => flaky_plan,
        _ => reject,
    }];
    let runner = StromaRunner::quick().with_store(MemoryStore::new());
    let err = runner
        .run_durable(&p, "feature: sync".into())
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "route.flaky_plan");
    let done = runner.resume(&p, &err.run_id().to_string()).await.unwrap();
    assert_eq!(done.final_state.text, "planned sync");
    let stored = runner
        .store()
        .get(&err.run_id().to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.completed, ["route.classify", "route.flaky_plan"]);
}
