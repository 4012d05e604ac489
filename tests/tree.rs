//! The run tree: every node's id, path, kind and status, and its kept
//! output, for flat, nested, named, looped, branched and listed runs, and
//! for failed ones.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use stroma::prelude::*;
use stroma::{ResultError, loop_until};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Page {
    url: String,
    words: usize,
}

#[node]
async fn inc(n: u64) -> u64 {
    n + 1
}

#[node]
async fn double(n: u64) -> u64 {
    n * 2
}

#[node]
async fn fetch(n: u64) -> Page {
    Page {
        url: format!("https://example.test/{n}"),
        words: n as usize * 10,
    }
}

#[node]
async fn count(page: Page) -> usize {
    page.words
}

#[node]
async fn refuse(n: u64) -> Result<u64, NodeError> {
    if n > 3 {
        return Err(NodeError::msg(format!("{n} is too big")));
    }
    Ok(n)
}

#[node]
async fn to_list(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// Not `Clone`: its outputs cannot be kept.
#[derive(Debug)]
struct Handle(#[allow(dead_code)] u64);

#[node]
async fn open(n: u64) -> Handle {
    Handle(n)
}

#[node]
async fn close(handle: Handle) -> u64 {
    handle.0
}

/// `(path, kind, status)` of every scope of a tree, depth first.
fn shape(scope: &Scope) -> Vec<(String, ScopeKind, NodeStatus)> {
    scope
        .walk()
        .map(|s| (s.path.to_string(), s.kind, s.status))
        .collect()
}

fn row(path: &str, kind: ScopeKind, status: NodeStatus) -> (String, ScopeKind, NodeStatus) {
    (path.to_owned(), kind, status)
}

use NodeStatus::{Completed, Failed, Skipped};
use ScopeKind as K;

#[tokio::test]
async fn a_flat_chain_names_each_node_and_tells_siblings_of_one_id_apart() {
    let p = pipeline![inc, double, inc, inc];
    let result = StromaRunner::quick().run(&p, 1).await.unwrap();
    assert_eq!(result.final_state, 6);
    let tree = result.tree();
    assert_eq!(tree.kind, K::Run);
    assert!(tree.path.is_root());
    assert_eq!(tree.id, "inc > double > inc > inc");
    assert_eq!(
        shape(tree)[1..],
        [
            row("inc", K::Node, Completed),
            row("double", K::Node, Completed),
            row("inc#2", K::Node, Completed),
            row("inc#3", K::Node, Completed),
        ]
    );
    // Ids stay the node's name; the suffix is only in the path.
    assert!(
        tree.children
            .iter()
            .all(|c| ["inc", "double"].contains(&c.id.as_str()))
    );
    assert!(tree.children.iter().all(|c| c.duration.is_some()));
    // Each kept output by path, typed.
    assert_eq!(*result.result::<u64>("inc").unwrap(), 2);
    assert_eq!(*result.result::<u64>("double").unwrap(), 4);
    assert_eq!(*result.result::<u64>("inc#2").unwrap(), 5);
    assert_eq!(*result.result::<u64>("inc#3").unwrap(), 6);
    // Records carry the same paths, in the order nodes finished.
    let paths: Vec<_> = result
        .records()
        .iter()
        .map(|r| r.path.to_string())
        .collect();
    assert_eq!(paths, ["inc", "double", "inc#2", "inc#3"]);
}

#[tokio::test]
async fn an_unnamed_nested_pipeline_is_transparent_and_a_named_one_is_a_scope() {
    let p = pipeline![
        inc,
        pipeline![inc, double],
        pipeline![inc, double].named("stage"),
        pipeline![double.named("twice"), inc].named("stage")
    ];
    let result = StromaRunner::quick().run(&p, 0).await.unwrap();
    assert_eq!(result.final_state, 2 * ((2 * 2 + 1) * 2) + 1);
    assert_eq!(
        shape(result.tree())[1..],
        [
            row("inc", K::Node, Completed),
            row("inc#2", K::Node, Completed),
            row("double", K::Node, Completed),
            row("stage", K::Scope, Completed),
            row("stage.inc", K::Node, Completed),
            row("stage.double", K::Node, Completed),
            row("stage#2", K::Scope, Completed),
            row("stage#2.twice", K::Node, Completed),
            row("stage#2.inc", K::Node, Completed),
        ]
    );
    // `.named` on a leaf renames it.
    assert_eq!(result.scope("stage#2.twice").unwrap().id, "twice");
    // A scope's output is that of its last node.
    assert_eq!(*result.result::<u64>("stage").unwrap(), 10);
    assert_eq!(*result.result::<u64>("stage.double").unwrap(), 10);
}

#[tokio::test]
async fn loops_branches_and_items_are_indexed_children() {
    let climb = loop_until(pipeline![inc, double], |n: &u64, _: &()| *n >= 10).named("climb");
    let p = pipeline![
        climb,
        parallel![inc, pipeline![double, inc].named("twice")].named("both"),
        first_of,
        to_list,
        for_each(double).concurrency(3).named("pages"),
        total
    ];
    let result = StromaRunner::quick().run(&p, 0).await.unwrap();
    // climb: 0 -> 2 -> 6 -> 14; both: (15, 29); first: 15; list 0..15; total 2 * 105
    assert_eq!(result.final_state, 210);
    let tree = result.tree();
    let climb = tree.find("climb").unwrap();
    assert_eq!(climb.kind, K::Loop);
    assert_eq!(
        shape(climb),
        [
            row("climb", K::Loop, Completed),
            row("climb[1]", K::Iteration, Completed),
            row("climb[1].inc", K::Node, Completed),
            row("climb[1].double", K::Node, Completed),
            row("climb[2]", K::Iteration, Completed),
            row("climb[2].inc", K::Node, Completed),
            row("climb[2].double", K::Node, Completed),
            row("climb[3]", K::Iteration, Completed),
            row("climb[3].inc", K::Node, Completed),
            row("climb[3].double", K::Node, Completed),
        ]
    );
    assert_eq!(*result.result::<u64>("climb[2].double").unwrap(), 6);
    // A loop's output is its last iteration's.
    assert_eq!(*result.result::<u64>("climb").unwrap(), 14);
    assert_eq!(
        shape(tree.find("both").unwrap()),
        [
            row("both", K::Parallel, Completed),
            row("both[0]", K::Branch, Completed),
            row("both[0].inc", K::Node, Completed),
            row("both[1]", K::Branch, Completed),
            row("both[1].twice", K::Scope, Completed),
            row("both[1].twice.double", K::Node, Completed),
            row("both[1].twice.inc", K::Node, Completed),
        ]
    );
    assert_eq!(*result.result::<u64>("both[1].twice").unwrap(), 29);
    let pages = tree.find("pages").unwrap();
    assert_eq!(pages.kind, K::ForEach);
    assert_eq!(pages.children.len(), 15);
    for (index, item) in pages.children.iter().enumerate() {
        assert_eq!(item.kind, K::Item);
        assert_eq!(item.path.to_string(), format!("pages[{index}]"));
        assert_eq!(
            item.children[0].path.to_string(),
            format!("pages[{index}].double")
        );
        let output = result
            .result::<u64>(&format!("pages[{index}].double"))
            .unwrap();
        assert_eq!(*output, 2 * index as u64);
    }
    // The composite outputs are their children's.
    let err = result.result::<Vec<u64>>("pages").unwrap_err();
    assert!(matches!(err, ResultError::NoOutput { .. }), "{err}");
}

#[node]
async fn first_of(pair: (u64, u64)) -> u64 {
    pair.0
}

#[node]
async fn total(items: Vec<u64>) -> u64 {
    items.iter().sum()
}

#[tokio::test]
async fn a_failed_run_shows_the_failure_and_skips_what_it_never_reached() {
    let p = pipeline![inc, refuse, pipeline![double, inc].named("after"), inc];
    let err = StromaRunner::quick().run(&p, 3).await.unwrap_err();
    assert_eq!(err.path().as_str(), "refuse");
    assert_eq!(err.to_string(), "node `refuse` failed: 4 is too big");
    assert_eq!(
        shape(err.tree()),
        [
            row("", K::Run, Failed),
            row("inc", K::Node, Completed),
            row("refuse", K::Node, Failed),
            row("after", K::Scope, Skipped),
            row("after.double", K::Node, Skipped),
            row("after.inc", K::Node, Skipped),
            row("inc#2", K::Node, Skipped),
        ]
    );
    // What completed before the failure is kept.
    assert_eq!(*err.result::<u64>("inc").unwrap(), 4);
    let not_run = err.result::<u64>("after.double").unwrap_err();
    assert_eq!(
        not_run.to_string(),
        "node `after.double` has no output: it did not complete (status Skipped)"
    );
}

#[tokio::test]
async fn a_failure_inside_branches_items_and_loops_is_named_by_its_path() {
    let p = pipeline![
        inc,
        parallel![inc, pipeline![inc, refuse].named("checked")].named("both"),
        first_of
    ];
    let err = StromaRunner::quick().run(&p, 2).await.unwrap_err();
    assert_eq!(err.path().as_str(), "both[1].checked.refuse");
    assert_eq!(
        err.to_string(),
        "node `both` failed: 1 of 2 branches of `both` failed (the model and context are as \
         before the branches): [1] node `both[1].checked.refuse` failed: 4 is too big;"
    );
    assert_eq!(err.scope("both[0].inc").unwrap().status, Completed);
    assert_eq!(err.scope("both[1].checked.refuse").unwrap().status, Failed);
    assert_eq!(err.scope("first_of").unwrap().status, Skipped);

    let listed = pipeline![to_list, for_each(refuse).concurrency(2).named("items")];
    let err = StromaRunner::quick().run(&listed, 6).await.unwrap_err();
    assert_eq!(err.path().as_str(), "items[4].refuse");
    let message = err.to_string();
    // Only the failed items are listed.
    assert!(
        message.contains("2 of 6 items of `items` failed"),
        "{message}"
    );
    assert!(message.contains("[4] node `items[4].refuse` failed: 4 is too big;"));
    assert!(message.contains("[5] node `items[5].refuse` failed: 5 is too big;"));
    assert!(!message.contains("items[3]"), "{message}");

    let climbing = loop_until(pipeline![inc, refuse], |_: &u64, _: &()| false).named("climb");
    let err = StromaRunner::quick().run(&climbing, 1).await.unwrap_err();
    assert_eq!(err.path().as_str(), "climb[3].refuse");
    assert_eq!(err.scope("climb[3]").unwrap().status, Failed);
    assert_eq!(err.scope("climb[2]").unwrap().status, Completed);
}

#[tokio::test]
async fn the_paths_are_the_same_with_records_off() {
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let p = pipeline![to_list, for_each(refuse).concurrency(2).named("items")];
    let err = lean.run(&p, 6).await.unwrap_err();
    assert_eq!(err.path().as_str(), "items[4].refuse");
    assert!(err.records().is_empty());
    // The failing node is in the tree; what else happened was not recorded.
    assert_eq!(err.scope("items[4].refuse").unwrap().status, Failed);
    assert_eq!(err.scope("to_list").unwrap().status, NodeStatus::Pending);
    let climbing = loop_until(pipeline![inc, refuse], |_: &u64, _: &()| false).named("climb");
    let err = lean.run(&climbing, 1).await.unwrap_err();
    assert_eq!(err.path().as_str(), "climb[3].refuse");
}

#[tokio::test]
async fn kept_outputs_are_typed_and_errors_name_the_path() {
    let result = StromaRunner::quick()
        .run(&pipeline![inc, fetch, count], 2)
        .await
        .unwrap();
    let page = result.result::<Page>("fetch").unwrap();
    assert_eq!(page.words, 30);
    // Read as JSON, serialized when asked.
    assert_eq!(
        result.scope("fetch").unwrap().output_json(),
        Some(json!({"url": "https://example.test/3", "words": 30}))
    );
    let wrong = result.result::<String>("fetch").unwrap_err();
    assert_eq!(
        wrong.to_string(),
        format!(
            "the output of node `fetch` is a `{}`, not a `alloc::string::String`",
            std::any::type_name::<Page>()
        )
    );
    let unknown = result.result::<u64>("fecth").unwrap_err();
    assert!(
        unknown
            .to_string()
            .starts_with("no node at `fecth` in this run; the nearest are `fetch`"),
        "{unknown}"
    );
    let bad = result.result::<u64>("fetch..x").unwrap_err();
    assert!(bad.to_string().contains("is not a node path"), "{bad}");
}

#[tokio::test]
async fn an_output_that_cannot_be_kept_says_so() {
    let result = StromaRunner::quick()
        .run(&pipeline![open, close], 7)
        .await
        .unwrap();
    assert_eq!(result.final_state, 7);
    let err = result.result::<Handle>("open").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the output of node `open` is not kept: its type `{}` is not `Clone + Send + Sync`",
            std::any::type_name::<Handle>()
        )
    );
    assert!(result.scope("open").unwrap().output_json().is_none());
}

#[tokio::test]
async fn keeping_outputs_follows_the_configuration() {
    let p = pipeline![inc, double];
    let records_only = StromaRunner::new(RunConfig::default().results(false));
    let result = records_only.run(&p, 1).await.unwrap();
    assert_eq!(result.records().len(), 2);
    assert!(matches!(
        result.result::<u64>("inc"),
        Err(ResultError::NotKept)
    ));

    let outputs_only = StromaRunner::new(RunConfig::default().records(false).results(true));
    let result = outputs_only.run(&p, 1).await.unwrap();
    assert!(result.records().is_empty());
    assert_eq!(*result.result::<u64>("double").unwrap(), 4);

    let lean = StromaRunner::new(RunConfig::default().records(false));
    let result = lean.run(&p, 1).await.unwrap();
    assert!(result.result::<u64>("double").is_err());
    let _: Arc<u64> = StromaRunner::quick()
        .run(&p, 1)
        .await
        .unwrap()
        .result("inc")
        .unwrap();
}

#[tokio::test]
async fn events_carry_paths_and_items_say_k_of_n() {
    let p = pipeline![to_list, for_each(double).named("pages")];
    let runner = StromaRunner::quick();
    let mut events = Vec::new();
    let mut stream = std::pin::pin!(runner.stream(&p, 3));
    while let Some(item) = stream.next().await {
        if let RunEvent::Event(event) = item {
            events.push(event);
        }
    }
    let items: Vec<(String, usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ItemStarted {
                path,
                index,
                total: of,
            } => Some((path.to_string(), *index, *of)),
            _ => None,
        })
        .collect();
    assert_eq!(
        items,
        [
            ("pages[0]".to_owned(), 0, 3),
            ("pages[1]".to_owned(), 1, 3),
            ("pages[2]".to_owned(), 2, 3)
        ]
    );
    let completed: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::NodeCompleted { path, .. } => Some(path.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        completed,
        [
            "to_list",
            "pages[0].double",
            "pages[1].double",
            "pages[2].double"
        ]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ScopeEnded { path, kind: ScopeKind::ForEach, status: NodeStatus::Completed, .. }
            if path.as_str() == "pages"
    )));
}

#[tokio::test]
async fn run_error_debug_is_the_message_and_its_causes() {
    let err = StromaRunner::quick()
        .run(&pipeline![inc, refuse, inc], 3)
        .await
        .unwrap_err();
    assert_eq!(format!("{err:?}"), "node `refuse` failed: 4 is too big");
    let looped = loop_until(refuse, |_: &u64, _: &()| false).named("again");
    let err = StromaRunner::quick().run(&looped, 9).await.unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        "node `again[1].refuse` failed: 9 is too big (in iteration 1 of loop `again`, \
         whose changes were discarded)\n\nCaused by:\n    9 is too big"
    );
}
