//! Serving pipelines over HTTP: a pipeline as a tower `Service`, behind axum.
//!
//! `cargo run --example http_service`
//!
//! `runner.service(pipeline)` is a `tower::Service`: it takes the
//! pipeline's input, or a `RunRequest` (the input and per-run options),
//! and answers with the run's result. The server in `http_service/app.rs`
//! quotes orders: its handlers call the service once per request.
//!
//! The rules this program shows, and checks:
//! - each request runs for the tenant its `x-tenant-id` header names: the
//!   handler puts it in the run's execution context, where the nodes read it;
//! - a failed run is an HTTP error (422) naming the path of the node that failed;
//! - `service.stream(request)` is a stream that owns its run, so it can be
//!   a response body: the run's events as server-sent events, in order,
//!   then the result;
//! - runs of several tenants at once never see each other's tenant.
//!
//! It serves on 127.0.0.1 at a free port, makes its own requests, checks
//! the answers and stops.

#[path = "http_service/app.rs"]
mod app;

use std::error::Error;
use std::time::Duration;

use app::{Order, Quote, Server, TENANT_HEADER};
use reqwest::StatusCode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start().await?;
    println!("serving on {}", server.url(""));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let tea = |quantity| Order {
        item: "tea".into(),
        quantity,
    };

    // 1. One request, one run, for the tenant the header names.
    let response = client
        .post(server.url("/quotes"))
        .header(TENANT_HEADER, "acme")
        .json(&tea(3))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let quote: Quote = response.json().await?;
    println!("acme: {quote:?}");
    assert_eq!(
        quote,
        Quote {
            item: "tea".into(),
            quantity: 3,
            total_cents: 3 * 450,
            tenant: "acme".into(),
        }
    );

    // 2. A run that fails is a 422 naming the node that failed.
    let response = client
        .post(server.url("/quotes"))
        .header(TENANT_HEADER, "acme")
        .json(&tea(0))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: serde_json::Value = response.json().await?;
    println!("refused: {refused}");
    assert_eq!(refused["path"], "quote.validate");

    // 3. No tenant, no run.
    let response = client
        .post(server.url("/quotes"))
        .json(&tea(1))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // 4. The same run as server-sent events: its events as they happen,
    //    then its result.
    let body = client
        .post(server.url("/quotes/events"))
        .header(TENANT_HEADER, "globex")
        .json(&tea(2))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let events = app::server_sent_events(&body)?;
    for (name, data) in &events {
        println!("event {name}: {data}");
    }
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "run_started",
            "scope_started",
            "node_started",
            "node_completed",
            "node_started",
            "node_completed",
            "node_started",
            "node_completed",
            "scope_ended",
            "finished",
        ]
    );
    assert_eq!(events[2].1["path"], "quote.validate");
    assert_eq!(events[9].1["quote"]["tenant"], "globex");

    // 5. Tenants at once: every answer is for the tenant that asked.
    let tenants = ["acme", "globex", "initech", "umbrella"];
    let asks = (0..20_u32).map(|i| {
        let tenant = tenants[i as usize % tenants.len()];
        let request = client
            .post(server.url("/quotes"))
            .header(TENANT_HEADER, tenant)
            .json(&tea(i + 1))
            .send();
        async move {
            let quote: Quote = request.await?.error_for_status()?.json().await?;
            Ok::<_, reqwest::Error>((tenant, i + 1, quote))
        }
    });
    for answer in futures::future::join_all(asks).await {
        let (tenant, quantity, quote) = answer?;
        assert_eq!((quote.tenant.as_str(), quote.quantity), (tenant, quantity));
    }
    println!("20 quotes for 4 tenants at once: none mixed");

    drop(client);
    server.stop().await?;
    Ok(())
}
