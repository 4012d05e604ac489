//! Pipelines as tower services: `runner.service(p)` through tower's
//! `ServiceExt` and layers, its owned event stream, events as JSON, and the
//! axum server of `examples/http_service.rs` driven over loopback with
//! reqwest: responses, failures, the server-sent event stream, and
//! concurrent tenants that never mix.

#[path = "../examples/http_service/app.rs"]
mod app;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::{Order, Quote, Server, TENANT_HEADER};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stroma::prelude::*;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt};

/// Every wait of these tests is bounded: a hang is a failure, not a stuck CI.
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within 60 s"),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client with no TLS and no proxy builds")
}

fn order(item: &str, quantity: u32) -> Order {
    Order {
        item: item.into(),
        quantity,
    }
}

// ---------------------------------------------------------------------------
// The service, through tower.
// ---------------------------------------------------------------------------

#[node]
async fn double(n: u64) -> u64 {
    n * 2
}

#[node]
async fn tagged(n: u64) -> String {
    let tenant = stroma::current_tenant_id().unwrap_or_else(|| "nobody".into());
    format!("{n} for {tenant}")
}

#[node]
async fn refuse(n: u64) -> Result<u64, NodeError> {
    Err(NodeError::msg(format!("{n} is refused")))
}

fn for_tenant(tenant: &str) -> RunOptions {
    RunOptions::new().execution_context(ExecutionContext::of([("tenant_id", tenant)]))
}

#[tokio::test]
async fn a_service_runs_its_pipeline_once_per_call_on_an_input_or_a_request() {
    let runner = StromaRunner::quick();
    let service = runner.service(pipeline![double, tagged]);

    let plain = service.clone().oneshot(4_u64).await.unwrap();
    assert_eq!(plain.final_state, "8 for nobody");
    assert_eq!(plain.records().len(), 2, "one run of both nodes");

    let request = RunRequest::new(5_u64).with_options(for_tenant("acme"));
    let for_acme = service.clone().oneshot(request).await.unwrap();
    assert_eq!(for_acme.final_state, "10 for acme");
    assert_ne!(
        plain.run_id, for_acme.run_id,
        "each call is a run of its own"
    );

    // Always ready; named request type, since a service takes several.
    let mut service = service;
    let ready = ServiceExt::<u64>::ready(&mut service).await.unwrap();
    assert_eq!(
        ready.call(6_u64).await.unwrap().final_state,
        "12 for nobody"
    );
}

#[tokio::test]
async fn a_failed_run_is_the_services_error_naming_the_node() {
    let service = StromaRunner::quick().service(pipeline![double, refuse].named("stage"));
    let err = service.oneshot(3_u64).await.unwrap_err();
    assert_eq!(err.path().to_string(), "stage.refuse");
    assert_eq!(err.to_string(), "node `stage.refuse` failed: 6 is refused");
}

#[tokio::test]
async fn a_service_goes_behind_tower_layers_and_erases_to_a_shareable_box() {
    let runner = StromaRunner::quick();
    // A layer in front (the tenant from the request) and one behind (the
    // output alone), boxed as an axum state or a field would hold it.
    let stack: BoxCloneSyncService<(&'static str, u64), String, RunError> =
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .map_request(|(tenant, n): (&'static str, u64)| {
                    RunRequest::new(n).with_options(for_tenant(tenant))
                })
                .map_response(|result: RunResult<String>| result.final_state)
                .service(runner.service(pipeline![double, tagged])),
        );
    let answers = futures::future::join_all(
        [("acme", 1), ("globex", 2), ("acme", 3)].map(|ask| stack.clone().oneshot(ask)),
    )
    .await;
    let answers: Vec<String> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, ["2 for acme", "4 for globex", "6 for acme"]);
}

struct Release(Arc<tokio::sync::Semaphore>);

#[node]
async fn wait_for_release(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    let release = &ctx.require::<Release>()?.0;
    release.acquire().await?.forget();
    Ok(n)
}

/// `poll_ready` once, by hand: whether the service is ready now.
fn ready_now<P>(service: &mut StromaService<P>) -> bool
where
    P: Runnable<(), Input = u64>,
{
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    match Service::<u64>::poll_ready(service, &mut cx) {
        std::task::Poll::Ready(ready) => {
            ready.expect("a service is never broken");
            true
        }
        std::task::Poll::Pending => false,
    }
}

#[tokio::test]
async fn a_service_is_ready_only_while_its_runner_has_a_run_slot_free() {
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let runner = StromaRunner::new(RunConfig::default().max_concurrent_runs(1))
        .with_context(Context::new().with(Release(Arc::clone(&release))));
    let mut first = runner.service(wait_for_release);
    let mut second = first.clone();

    // Ready holds the one slot for the call that follows; the clone, a
    // caller of its own, is not ready while it is held.
    assert!(ready_now(&mut first));
    assert!(!ready_now(&mut second));
    let running = tokio::spawn(Service::<u64>::call(&mut first, 1));
    assert!(!ready_now(&mut second));

    // The run ends and frees its slot: the clone is ready, and its call
    // runs in the slot it took.
    release.add_permits(1);
    let done = within("the first run", running).await.unwrap();
    assert_eq!(done.unwrap().final_state, 1);
    assert!(ready_now(&mut second));
    assert!(!ready_now(&mut first), "the slot is the clone's now");
    release.add_permits(1);
    let done = within("the second run", Service::<u64>::call(&mut second, 2)).await;
    assert_eq!(done.unwrap().final_state, 2);

    // A stream after readiness runs in the slot readiness took (were it
    // to wait for another, it would wait for itself). `first` asked first
    // for the slot the second run freed: it is `first`'s.
    assert!(ready_now(&mut first));
    release.add_permits(1);
    let items: Vec<RunEvent<u64>> =
        within("a stream in the held slot", first.stream(3_u64).collect()).await;
    let Some(RunEvent::Finished(Ok(result))) = items.last() else {
        panic!("the stream ends with the result")
    };
    assert_eq!(result.final_state, 3);

    // A service whose runner does not limit its runs is always ready.
    let mut unlimited = StromaRunner::quick().service(double);
    assert!(ready_now(&mut unlimited));
    assert!(ready_now(&mut unlimited.clone()));
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    seen: Vec<u64>,
}

#[node]
async fn count_in(n: u64, tally: &mut Tally) -> usize {
    tally.seen.push(n);
    tally.seen.len()
}

#[tokio::test]
async fn a_service_of_a_model_pipeline_starts_every_run_from_a_new_model() {
    let service = StromaRunner::quick()
        .service_with_model(pipeline![double, count_in], || Tally { seen: vec![100] });
    let answers = futures::future::join_all([1_u64, 2, 3].map(|n| {
        service
            .clone()
            .oneshot(RunRequest::new(n).with_options(for_tenant("acme")))
    }))
    .await;
    for (n, answer) in [1_u64, 2, 3].into_iter().zip(answers) {
        let result = answer.unwrap();
        // Each run saw the made model alone: nothing of the other runs.
        assert_eq!(result.final_state, 2);
        assert_eq!(
            result.model,
            Tally {
                seen: vec![100, n * 2]
            }
        );
    }
    // Its stream ends with the result and the run's model too.
    let items: Vec<RunEvent<usize, Tally>> = service.stream(5_u64).collect().await;
    let Some(RunEvent::Finished(Ok(result))) = items.last() else {
        panic!("the stream ends with the result")
    };
    assert_eq!(result.model.seen, [100, 10]);
}

#[node]
async fn slow(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(60)).await;
    n
}

#[tokio::test]
async fn a_service_goes_behind_layers_that_box_its_error() {
    // `timeout` boxes the inner error (`Into<BoxError>`, so `Send + Sync`):
    // a `RunError` goes in as it is, no `map_err` in front.
    let runner = StromaRunner::quick();
    fn limited<S>(service: S) -> tower::timeout::Timeout<S> {
        ServiceBuilder::new()
            .timeout(Duration::from_millis(20))
            .service(service)
    }
    let failed = limited(runner.service(refuse))
        .oneshot(1_u64)
        .await
        .unwrap_err();
    let failed = failed.downcast::<RunError>().expect("the run's own error");
    assert_eq!(failed.node(), "refuse");
    let late = limited(runner.service(slow))
        .oneshot(1_u64)
        .await
        .unwrap_err();
    assert!(late.is::<tower::timeout::error::Elapsed>(), "{late}");
}

/// Sets its flag when dropped: shows a node's future was dropped midway.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Dropped(Arc<AtomicBool>);

#[node]
async fn wait_forever(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    let _guard = SetOnDrop(Arc::clone(&ctx.require::<Dropped>()?.0));
    std::future::pending::<()>().await;
    Ok(n)
}

#[tokio::test]
async fn a_services_stream_is_owned_and_dropping_it_stops_the_run() {
    let runner = StromaRunner::quick();
    let service = runner.service(pipeline![double, tagged]);
    // `'static`: it runs on another task, with the service gone.
    let stream = service.stream(RunRequest::new(21_u64).with_options(for_tenant("acme")));
    drop(service);
    let items = within("a streamed run", tokio::spawn(stream.collect::<Vec<_>>()))
        .await
        .unwrap();
    let (last, events) = items.split_last().unwrap();
    let RunEvent::Finished(Ok(result)) = last else {
        panic!("the stream ends with the result, not {last:?}")
    };
    assert_eq!(result.final_state, "42 for acme");
    assert!(matches!(
        events[0],
        RunEvent::Event(Event::RunStarted { .. })
    ));
    assert_eq!(
        events.len(),
        5,
        "run started, then each node started and completed"
    );

    let dropped = Arc::new(AtomicBool::new(false));
    let runner = StromaRunner::quick().with_context(Context::new().with(Dropped(dropped.clone())));
    let mut stream = Box::pin(runner.service(wait_forever).stream(1_u64));
    loop {
        match within("the node's start", stream.next()).await {
            Some(RunEvent::Event(Event::NodeStarted { .. })) => break,
            Some(RunEvent::Event(_)) => {}
            other => panic!("the node starts before the run ends, not {other:?}"),
        }
    }
    assert!(!dropped.load(Ordering::SeqCst), "the node is still waiting");
    drop(stream);
    assert!(
        dropped.load(Ordering::SeqCst),
        "dropping the stream dropped the node"
    );
}

// ---------------------------------------------------------------------------
// Events as JSON.
// ---------------------------------------------------------------------------

#[node]
async fn pair(n: u64) -> Vec<u64> {
    vec![n, n + 1]
}

#[node]
async fn total(ns: Vec<u64>, ctx: &Context) -> u64 {
    let sum = ns.iter().sum();
    ctx.emit("progress", json!({ "total": sum }));
    sum
}

#[tokio::test]
async fn events_serialize_as_flat_json_tagged_by_type() {
    let runner = StromaRunner::quick();
    let p = pipeline![pair, for_each(double).named("each"), total, refuse];
    let mut run_id = None;
    let mut events = Vec::new();
    let mut items = pin!(runner.stream(&p, 1));
    while let Some(item) = items.next().await {
        match item {
            RunEvent::Event(event) => events.push(serde_json::to_value(&event).unwrap()),
            RunEvent::Finished(result) => run_id = Some(result.unwrap_err().run_id()),
        }
    }
    // Durations are milliseconds as numbers; left out of the comparisons.
    for event in &mut events {
        if let Some(duration) = event.as_object_mut().unwrap().remove("duration_ms") {
            assert!(duration.as_f64().is_some_and(|ms| ms >= 0.0), "{duration}");
        }
    }
    let expected = [
        json!({"type": "run_started", "run_id": run_id.unwrap().to_string(), "graph_id": p.name()}),
        json!({"type": "node_completed", "name": "pair", "path": "pair"}),
        json!({"type": "scope_started", "id": "each", "path": "each", "kind": "for_each"}),
        json!({"type": "item_started", "path": "each[1]", "index": 1, "total": 2}),
        json!({"type": "node_started", "name": "double", "path": "each[1].double"}),
        json!({"type": "scope_ended", "id": "each", "path": "each", "kind": "for_each", "status": "completed"}),
        json!({"type": "custom", "name": "progress", "data": {"total": 6}, "path": "total"}),
        json!({"type": "node_failed", "name": "refuse", "path": "refuse", "error": "6 is refused"}),
    ];
    for event in &expected {
        assert!(events.contains(event), "{event} is not among {events:#?}");
    }
    assert_eq!(events.first(), expected.first());
    assert_eq!(events.last(), expected.last());
}

// ---------------------------------------------------------------------------
// The server of examples/http_service.rs, over loopback.
// ---------------------------------------------------------------------------

/// `POST path` with `order`, for `tenant` if given: the status and the body.
async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    tenant: Option<&str>,
    order: &Order,
) -> (StatusCode, String) {
    let mut request = client.post(server.url(path)).json(order);
    if let Some(tenant) = tenant {
        request = request.header(TENANT_HEADER, tenant);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    (status, response.text().await.expect("a whole body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_quotes_failures_and_requests_without_a_tenant() {
    let server = Server::start().await.unwrap();
    let client = client();
    within("the requests", async {
        let (status, body) = post(
            &client,
            &server,
            "/quotes",
            Some("acme"),
            &order("coffee", 4),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let quote: Quote = serde_json::from_str(&body).unwrap();
        assert_eq!(
            quote,
            Quote {
                item: "coffee".into(),
                quantity: 4,
                total_cents: 4 * 300,
                tenant: "acme".into(),
            }
        );

        // A failed run: 422, its message and the failing node's path.
        let (status, body) =
            post(&client, &server, "/quotes", Some("acme"), &order("tea", 0)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let refused: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(refused["path"], "quote.validate");
        assert_eq!(
            refused["error"],
            "node `quote.validate` failed: the quantity must be at least 1"
        );
        assert!(refused["run_id"].as_str().is_some_and(|id| !id.is_empty()));

        let (status, body) =
            post(&client, &server, "/quotes", Some("acme"), &order("cake", 1)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let refused: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(refused["path"], "quote.price");
        assert_eq!(
            refused["error"],
            "node `quote.price` failed: no price for `cake`"
        );

        // No tenant: refused before anything runs.
        let (status, body) = post(&client, &server, "/quotes", None, &order("tea", 1)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let refused: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            refused["error"],
            "a `x-tenant-id` header must name the tenant"
        );
    })
    .await;
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_is_the_runs_events_in_order_then_its_result() {
    let server = Server::start().await.unwrap();
    let client = client();
    within("the event streams", async {
        let response = client
            .post(server.url("/quotes/events"))
            .header(TENANT_HEADER, "globex")
            .json(&order("tea", 2))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = app::server_sent_events(&response.text().await.unwrap()).unwrap();
        let seen: Vec<String> = events
            .iter()
            .map(|(name, data)| {
                assert_eq!(
                    data["type"],
                    name.as_str(),
                    "each event is named by its type"
                );
                match data["path"].as_str() {
                    Some(path) => format!("{name} {path}"),
                    None => name.clone(),
                }
            })
            .collect();
        assert_eq!(
            seen,
            [
                "run_started",
                "scope_started quote",
                "node_started quote.validate",
                "node_completed quote.validate",
                "node_started quote.price",
                "node_completed quote.price",
                "node_started quote.receipt",
                "node_completed quote.receipt",
                "scope_ended quote",
                "finished",
            ]
        );
        let (started, finished) = (&events[0].1, &events[9].1);
        assert_eq!(started["graph_id"], "quote");
        assert_eq!(
            finished["run_id"], started["run_id"],
            "one run, start to end"
        );
        assert_eq!(
            finished["quote"],
            json!({"item": "tea", "quantity": 2, "total_cents": 900, "tenant": "globex"})
        );

        // A failing run streams up to its failure, then the error.
        let (status, body) = post(
            &client,
            &server,
            "/quotes/events",
            Some("globex"),
            &order("cake", 1),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the stream began before the run failed"
        );
        let events = app::server_sent_events(&body).unwrap();
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "run_started",
                "scope_started",
                "node_started",
                "node_completed",
                "node_started",
                "node_failed",
                "scope_ended",
                "failed",
            ]
        );
        assert_eq!(events[5].1["error"], "no price for `cake`");
        assert_eq!(events[6].1["status"], "failed");
        let failed = &events[7].1;
        assert_eq!(failed["path"], "quote.price");
        assert_eq!(
            failed["error"],
            "node `quote.price` failed: no price for `cake`"
        );
    })
    .await;
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_of_twenty_tenants_never_mix() {
    let server = Server::start().await.unwrap();
    let client = client();
    let asks = (0..200_u32).map(|i| {
        let tenant = format!("tenant-{}", i % 20);
        let request = client
            .post(server.url("/quotes"))
            .header(TENANT_HEADER, &tenant)
            .json(&order("tea", i + 1))
            .send();
        async move {
            let response = request.await.expect("the server answers");
            assert_eq!(response.status(), StatusCode::OK);
            let quote: Quote = response.json().await.expect("a quote");
            (tenant, i + 1, quote)
        }
    });
    let answers = within("200 requests", futures::future::join_all(asks)).await;
    assert_eq!(answers.len(), 200);
    for (tenant, quantity, quote) in answers {
        assert_eq!(
            quote.tenant, tenant,
            "the run for {tenant} saw another tenant"
        );
        assert_eq!(quote.quantity, quantity, "an answer for another request");
        assert_eq!(quote.total_cents, 450 * u64::from(quantity));
    }
    drop(client);
    server.stop().await.unwrap();
}
