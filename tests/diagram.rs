//! Diagrams: a pipeline using every combinator, drawn as Mermaid and DOT
//! (compared with the snapshots in `tests/snapshots/`; `STROMA_BLESS=1`
//! writes them anew), and a run's diagram coloured by status.

use std::time::Duration;

use stroma::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Size {
    Small(u32),
    Large(u32),
}

#[node]
async fn fetch(n: u32) -> u32 {
    n + 1
}

#[node]
async fn parse(n: u32) -> u32 {
    n * 2
}

#[node]
async fn check(n: u32) -> Result<u32, NodeError> {
    if n == 12 {
        return Err(NodeError::msg("unlucky"));
    }
    Ok(n)
}

#[node]
async fn split(n: u32) -> Vec<u32> {
    (0..n % 4).collect()
}

#[node]
async fn score(n: u32) -> u32 {
    n + 3
}

#[node]
async fn total(items: Vec<u32>) -> u32 {
    items.iter().sum()
}

#[node]
async fn join(pair: (u32, u32)) -> u32 {
    pair.0 + pair.1
}

#[node]
async fn size(n: u32) -> Size {
    if n > 10 {
        Size::Large(n)
    } else {
        Size::Small(n)
    }
}

#[node]
async fn keep(n: u32) -> u32 {
    n
}

#[node]
async fn shrink(n: u32) -> u32 {
    n / 2
}

fn every_combinator() -> impl Runnable<(), Input = u32, Output = u32> {
    pipeline![
        fetch.retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(3)),
        flow(
            "prepare",
            pipeline![parse.timeout(Duration::from_secs(5)), check.isolated()]
        ),
        loop_until(pipeline![score, keep.snapshot()], |n: &u32, _: &()| *n > 20)
            .max_loops(4)
            .named("refine"),
        parallel![
            pipeline![split, for_each(score).concurrency(2), total],
            keep
        ],
        join,
        phase(
            "decide",
            false,
            route![size => {
                Size::Small(n) => keep,
                Size::Large(n) => shrink,
            }]
        ),
    ]
    .named("every")
}

/// `actual`, checked against the snapshot `name` (written anew when
/// `STROMA_BLESS` is set).
fn snapshot(name: &str, actual: &str) {
    let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("STROMA_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with STROMA_BLESS=1 to write it)"));
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

#[test]
fn every_combinator_draws_as_mermaid() {
    snapshot(
        "every_combinator.mmd",
        &every_combinator().diagram().mermaid(),
    );
}

#[test]
fn every_combinator_draws_as_dot() {
    snapshot("every_combinator.dot", &every_combinator().diagram().dot());
}

#[test]
fn the_drawing_has_what_the_pipeline_has() {
    let text = every_combinator().diagram().mermaid();
    for expected in [
        "fetch<br/>retry ×3",
        "parse<br/>timeout 5s",
        "check<br/>isolated",
        "keep<br/>snapshot",
        "refine (loop)<br/>at most 4 loops",
        "-.->|\"again\"|",
        "for_each (for each item)",
        "parallel (parallel)",
        "route (route)",
        "|\"Size::Small\"|",
        "|\"Size::Large\"|",
        "decide (phase)",
        "prepare (flow)",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_run_s_diagram_colours_each_node_by_how_it_ended() {
    let runner = StromaRunner::quick();
    // 6 → fetch 7 → parse 14 → check 14; refine: 17, 20, 23 → stops at 23.
    let done = runner.run(&every_combinator(), 6).await.unwrap();
    let text = done.diagram().mermaid();
    let class_of = |class: &str| -> Vec<String> {
        text.lines()
            .find(|line| line.trim_start().starts_with("class ") && line.ends_with(class))
            .map(|line| {
                line.trim()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let completed = class_of("completed");
    let skipped = class_of("skipped");
    assert!(text.contains("classDef completed fill:"), "{text}");
    // The route took one arm (23 is large: `shrink`): the other, its
    // `keep` (n18, as in the snapshot), is skipped; every other node ran.
    assert_eq!(skipped, ["n18"], "{text}");
    let leaves = text
        .lines()
        .filter(|line| line.trim_start().starts_with('n') && line.contains("[\""))
        .count();
    assert_eq!(completed.len(), leaves - 1, "{text}");

    // A failed run colours the failing node.
    let err = runner.run(&every_combinator(), 5).await.unwrap_err();
    assert_eq!(err.path().as_str(), "every.prepare.check");
    let text = err.diagram().dot();
    assert!(
        text.contains(
            "[label=\"check\\nisolated\", style=\"rounded,filled\", fillcolor=\"#ffe3e3\""
        ),
        "{text}"
    );
}

/// `fetch` retried, limited in time and looped, each by `n`: pipelines of one
/// type that differ only in these numbers.
fn limited(n: u32) -> impl Runnable<(), Input = u32, Output = u32> {
    let retried = fetch.retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(n));
    pipeline![
        retried,
        parse.timeout(Duration::from_secs(u64::from(n))),
        loop_until(shrink, |n: &u32, _: &()| *n == 0).max_loops(n),
    ]
}

#[test]
fn pipelines_of_one_type_differing_only_in_their_limits_draw_their_own() {
    // Drawn one after the other: a shape made for the first must not be
    // taken for the second.
    let three = limited(3).diagram().mermaid();
    let five = limited(5).diagram().mermaid();
    for (drawn, n) in [(&three, 3), (&five, 5)] {
        for note in [
            format!("retry ×{n}"),
            format!("timeout {n}s"),
            format!("at most {n} loops"),
        ] {
            assert!(drawn.contains(&note), "{note} missing from:\n{drawn}");
        }
    }
}

static FLAKY_CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Fails its first call, then succeeds.
#[node]
async fn flaky(n: u32) -> Result<u32, NodeError> {
    if FLAKY_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return Err(NodeError::msg("not yet"));
    }
    Ok(n)
}

#[tokio::test]
async fn a_node_is_coloured_by_its_last_attempt_and_unknown_without_records() {
    let retried = pipeline![
        flaky.retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(2)),
        parse
    ];
    let done = StromaRunner::quick().run(&retried, 1).await.unwrap();
    let text = done.diagram().mermaid();
    // Failed once, then completed: completed, like the node after it.
    assert!(
        !text.contains("class n0 failed") && !text.contains("failed\n"),
        "{text}"
    );
    assert!(text.contains("class n0,n1 completed"), "{text}");

    // With records and kept outputs off, a run keeps no entries: its nodes
    // are not known to have run, and none is drawn as skipped.
    let lean = StromaRunner::new(RunConfig::default().records(false).results(false));
    let done = lean.run(&pipeline![fetch, parse], 1).await.unwrap();
    let text = done.diagram().mermaid();
    assert!(!text.contains("skipped"), "{text}");
}
