//! Every accepted node form runs, gets what its signature asks for, and can be called without a runner.

use std::sync::Arc;

use stroma::prelude::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Url {
    url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Page {
    body: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    pages: u32,
    bytes: usize,
}

struct Body(&'static str);

/// Fetches a page body from the context's fake web.
#[node(input = Url, output = Page)]
async fn fetch(state: Url, ctx: &Context) -> Result<Page, NodeError> {
    let body = ctx.require::<Body>()?;
    Ok(Page {
        body: format!("{}:{}", state.url, body.0),
    })
}

#[node]
async fn measure(page: Page) -> usize {
    page.body.len()
}

#[node]
async fn count_page(page: Page, tally: &mut Tally) -> Page {
    tally.pages += 1;
    tally.bytes += page.body.len();
    page
}

#[node]
async fn report(bytes: usize, tally: &Tally) -> String {
    format!("{bytes} of {} pages", tally.pages)
}

#[node]
async fn count_and_flag(page: Page, ctx: &Context, tally: &mut Tally) -> Page {
    tally.pages += 10;
    ctx.insert_named("flagged", page.body.clone());
    page
}

#[node]
async fn parse_number(text: String) -> Result<u64, std::num::ParseIntError> {
    text.trim().parse()
}

#[node(name = "double it")]
async fn double(n: u64) -> u64 {
    n * 2
}

#[node]
async fn unit_output(_n: u64) {}

fn web() -> StromaRunner {
    StromaRunner::quick().with_context(Context::new().with(Body("hello")))
}

fn url() -> Url {
    Url {
        url: "http://a".into(),
    }
}

#[tokio::test]
async fn one_parameter_and_context_nodes_chain() {
    let result = web().run(&pipeline![fetch, measure], url()).await.unwrap();
    assert_eq!(result.final_state, "http://a:hello".len());
    let () = result.model;
}

#[tokio::test]
async fn model_nodes_get_the_runs_model_and_the_caller_gets_it_back() {
    let p = pipeline![fetch, count_page, count_page, measure, report];
    let result = web()
        .run_with_model(&p, url(), Tally::default())
        .await
        .unwrap();
    assert_eq!(result.final_state, "14 of 2 pages");
    assert_eq!(
        result.model,
        Tally {
            pages: 2,
            bytes: 28
        }
    );
}

#[tokio::test]
async fn a_node_can_take_context_and_model_together() {
    let p = pipeline![fetch, count_and_flag, measure];
    let result = web()
        .run_with_model(&p, url(), Tally::default())
        .await
        .unwrap();
    assert_eq!(result.model.pages, 10);
    assert_eq!(
        *result.context.get_named::<String>("flagged").unwrap(),
        "http://a:hello"
    );
}

#[tokio::test]
async fn result_nodes_use_any_std_error_and_fail_with_it() {
    let p = pipeline![parse_number, double];
    let runner = StromaRunner::quick();
    assert_eq!(runner.run(&p, " 21 ".into()).await.unwrap().final_state, 42);

    let err = runner.run(&p, "twenty".into()).await.unwrap_err();
    assert_eq!(err.node(), "parse_number");
    let cause = std::error::Error::source(&err).expect("the node's error is the source");
    assert!(cause.downcast_ref::<std::num::ParseIntError>().is_some());
    assert_eq!(
        err.to_string(),
        "node `parse_number` failed: invalid digit found in string"
    );
}

#[tokio::test]
async fn the_name_argument_names_the_node_in_records() {
    let result = StromaRunner::quick()
        .run(&pipeline![double, unit_output], 1)
        .await
        .unwrap();
    let names: Vec<_> = result.records().iter().map(|r| r.name).collect();
    assert_eq!(names, ["double it", "unit_output"]);
    assert_eq!(double.name(), "double it");
    assert_eq!(fetch.name(), "fetch");
}

#[tokio::test]
async fn nodes_are_callable_without_a_runner() {
    assert_eq!(double::call(4).await, 8);
    let ctx = Context::new().with(Body("x"));
    assert_eq!(
        fetch::call(url(), &ctx).await.unwrap(),
        Page {
            body: "http://a:x".into()
        }
    );
    let mut tally = Tally::default();
    count_page::call(Page { body: "abc".into() }, &mut tally).await;
    assert_eq!(tally.bytes, 3);
}

#[tokio::test]
async fn pipelines_nest_and_run_any_number_of_times() {
    let inner = pipeline![parse_number, double];
    let outer = pipeline![inner, double, pipeline![double]];
    let runner = StromaRunner::quick();
    for n in 0..5_u64 {
        let result = runner.run(&outer, n.to_string()).await.unwrap();
        assert_eq!(result.final_state, n * 8);
        assert_eq!(result.records().len(), 4);
    }
}

fn assert_shareable<T: Clone + Send + Sync + 'static>(_: &T) {}

#[tokio::test]
async fn a_pipeline_is_a_shareable_value() {
    let p = pipeline![parse_number, double,];
    assert_shareable(&p);
    let shared = Arc::new(p);
    let runner = StromaRunner::quick();
    let tasks: Vec<_> = (0..4_u64)
        .map(|n| {
            let (p, runner) = (Arc::clone(&shared), runner.clone());
            tokio::spawn(async move { runner.run(&*p, n.to_string()).await.unwrap().final_state })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), n as u64 * 2);
    }
}
