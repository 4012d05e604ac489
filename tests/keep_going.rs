//! `for_each(node).keep_going()`: every item runs, and the output is each
//! item's outcome in item order, failures named with their paths; the
//! items that succeeded merge their model copies and context writes.

use std::time::Duration;

use stroma::prelude::*;
use stroma::{Append, NodeFailure, Sum};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Crawl {
    fetched: Sum<u32>,
    seen: Append<String>,
}

/// Fetches a link: a dead one (`dead…`) fails, a `panic…` one panics; the
/// rest count in the model and the context, in varying finishing order.
#[node]
async fn fetch(url: String, ctx: &Context, model: &mut Crawl) -> Result<usize, NodeError> {
    let delay = url.bytes().map(u64::from).sum::<u64>() % 7;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    model.seen.push(url.clone());
    ctx.insert_named(url.clone(), url.len());
    if url.starts_with("dead") {
        return Err(NodeError::msg(format!("{url}: 404")));
    }
    if url.starts_with("panic") {
        panic!("{url} broke the parser");
    }
    model.fetched += 1;
    Ok(url.len())
}

fn links() -> Vec<String> {
    ["a", "dead-1", "bb", "panic-1", "ccc", "dead-22"]
        .map(String::from)
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_runs_and_gives_its_outcome_in_order() {
    for concurrency in [1, 3, 6] {
        let p = pipeline![for_each(fetch).keep_going().concurrency(concurrency)];
        let result = StromaRunner::quick()
            .run_with_model(&p, links(), Crawl::default())
            .await
            .unwrap();
        let outcomes = &result.final_state;
        assert_eq!(outcomes.len(), 6);
        let lengths: Vec<Option<usize>> =
            outcomes.iter().map(|o| o.as_ref().ok().copied()).collect();
        assert_eq!(lengths, [Some(1), None, Some(2), None, Some(3), None]);
        let failure = |i: usize| -> &NodeFailure { outcomes[i].as_ref().unwrap_err() };
        assert_eq!(failure(1).path().unwrap().as_str(), "for_each[1].fetch");
        assert_eq!(failure(1).node(), "fetch");
        assert_eq!(
            failure(1).to_string(),
            "node `for_each[1].fetch` failed: dead-1: 404"
        );
        assert_eq!(failure(3).path().unwrap().as_str(), "for_each[3].fetch");
        assert!(
            failure(3)
                .to_string()
                .contains("panicked: panic-1 broke the parser"),
            "{}",
            failure(3)
        );
        assert_eq!(failure(5).path().unwrap().as_str(), "for_each[5].fetch");
        // Only the items that succeeded left their model changes and context writes.
        assert_eq!(result.model.fetched.0, 3, "concurrency {concurrency}");
        assert_eq!(result.model.seen.0, ["a", "bb", "ccc"]);
        assert_eq!(*result.context.get_named::<usize>("bb").unwrap(), 2);
        assert!(result.context.get_named::<usize>("dead-1").is_err());
        // The tree shows each item; the list itself completed.
        let tree = result.tree();
        assert_eq!(tree.find("for_each").unwrap().status, NodeStatus::Completed);
        assert_eq!(
            result.scope("for_each[1].fetch").unwrap().status,
            NodeStatus::Failed
        );
        assert_eq!(
            result.scope("for_each[2].fetch").unwrap().status,
            NodeStatus::Completed
        );
    }
}

#[node]
async fn count_ok(outcomes: Vec<Result<usize, NodeFailure>>) -> usize {
    outcomes.iter().filter(|o| o.is_ok()).count()
}

#[node]
async fn to_links(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                format!("ok-{i}")
            } else {
                format!("dead-{i}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_outcomes_flow_on_to_the_next_node_inside_a_named_pipeline() {
    let p = pipeline![
        to_links,
        for_each(fetch).keep_going().named("links"),
        count_ok
    ]
    .named("crawl");
    let result = StromaRunner::quick()
        .run_with_model(&p, 5, Crawl::default())
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
    assert_eq!(result.model.fetched.0, 3);
}

#[node]
async fn names_failures(outcomes: Vec<Result<usize, NodeFailure>>) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .map(|f| f.path().map(|p| p.as_str().to_owned()).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn failures_are_named_with_their_full_path_in_a_nested_scope() {
    let p = pipeline![
        to_links,
        for_each(fetch).keep_going().named("links"),
        names_failures
    ]
    .named("crawl");
    let result = StromaRunner::quick()
        .run_with_model(&p, 4, Crawl::default())
        .await
        .unwrap();
    assert_eq!(
        result.final_state,
        ["crawl.links[1].fetch", "crawl.links[3].fetch"]
    );
}

#[tokio::test]
async fn an_empty_list_gives_no_outcomes() {
    let result = StromaRunner::quick()
        .run_with_model(&for_each(fetch).keep_going(), vec![], Crawl::default())
        .await
        .unwrap();
    assert!(result.final_state.is_empty());
}
