//! The server of `examples/http_service.rs`, shared with
//! `tests/http_service.rs`: a quote pipeline behind axum, one run per
//! request, for the tenant the request names.
//!
//! - `POST /quotes` with an [`Order`] as JSON and an `x-tenant-id` header:
//!   200 and the [`Quote`]; 422 and `{"error", "path", "run_id"}` when the
//!   run fails; 400 without the header.
//! - `POST /quotes/events`, the same request: the run's events as
//!   server-sent events named by their `type` (`run_started`,
//!   `node_started`, ...), then `finished` with the quote or `failed` with
//!   the error.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use stroma::prelude::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// The header that names the tenant a request is for.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// What a client asks a quote for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub item: String,
    pub quantity: u32,
}

/// What it gets back. `tenant` is the one the pipeline's last node read
/// from its run's execution context, not from the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub item: String,
    pub quantity: u32,
    pub total_cents: u64,
    pub tenant: String,
}

// ---------------------------------------------------------------------------
// The pipeline: validate, price, receipt.
// ---------------------------------------------------------------------------

/// Unit prices in cents: a resource every run shares through the runner's context.
struct Catalogue(HashMap<&'static str, u64>);

#[derive(Clone, Debug)]
struct Priced {
    order: Order,
    total_cents: u64,
}

#[node]
async fn validate(order: Order) -> Result<Order, NodeError> {
    if order.quantity == 0 {
        return Err(NodeError::msg("the quantity must be at least 1"));
    }
    Ok(order)
}

#[node]
async fn price(order: Order, ctx: &Context) -> Result<Priced, NodeError> {
    let catalogue = ctx.require::<Catalogue>()?;
    let Some(unit_cents) = catalogue.0.get(order.item.as_str()) else {
        return Err(NodeError::msg(format!("no price for `{}`", order.item)));
    };
    let total_cents = unit_cents * u64::from(order.quantity);
    // Other runs take their turn here: a tenant leaking from one run into
    // another would show in the quote.
    tokio::task::yield_now().await;
    Ok(Priced { order, total_cents })
}

#[node]
async fn receipt(priced: Priced) -> Result<Quote, NodeError> {
    // No parameter carries the tenant: it is the run's, read task-locally.
    let Some(tenant) = stroma::current_tenant_id() else {
        return Err(NodeError::msg("a quote is always for a tenant"));
    };
    Ok(Quote {
        item: priced.order.item,
        quantity: priced.order.quantity,
        total_cents: priced.total_cents,
        tenant,
    })
}

// ---------------------------------------------------------------------------
// The routes: the pipeline as a tower service, called by axum handlers.
// ---------------------------------------------------------------------------

/// The application: a runner with the catalogue, its quote pipeline as a
/// service, and the routes that call it.
pub fn router() -> Router {
    let catalogue = Catalogue(HashMap::from([("tea", 450), ("coffee", 300)]));
    let runner = StromaRunner::quick().with_context(Context::new().with(catalogue));
    routes(runner.service(pipeline![validate, price, receipt].named("quote")))
}

/// Generic over the pipeline, whose type `pipeline!` makes and no one names.
fn routes<P>(quotes: StromaService<P>) -> Router
where
    P: Runnable<(), Input = Order, Output = Quote>,
{
    Router::new()
        .route("/quotes", post(quote::<P>))
        .route("/quotes/events", post(quote_events::<P>))
        .with_state(quotes)
}

/// `POST /quotes`: one run, its quote or its error.
async fn quote<P>(
    State(quotes): State<StromaService<P>>,
    tenant: Tenant,
    Json(order): Json<Order>,
) -> Response
where
    P: Runnable<(), Input = Order, Output = Quote>,
{
    match quotes.oneshot(tenant.run(order)).await {
        Ok(result) => Json(result.final_state).into_response(),
        Err(err) => (StatusCode::UNPROCESSABLE_ENTITY, Json(failure(&err))).into_response(),
    }
}

/// `POST /quotes/events`: one run, streamed as it goes.
async fn quote_events<P>(
    State(quotes): State<StromaService<P>>,
    tenant: Tenant,
    Json(order): Json<Order>,
) -> Sse<impl Stream<Item = Result<SseEvent, axum::Error>>>
where
    P: Runnable<(), Input = Order, Output = Quote>,
{
    // The stream owns the run: the response body drives it, and a client
    // that hangs up drops it, which stops the run.
    Sse::new(quotes.stream(tenant.run(order)).map(server_sent))
}

/// The tenant a request names in its [`TENANT_HEADER`]; a request without
/// one is refused with 400 before anything runs.
struct Tenant(String);

impl Tenant {
    /// A run of `order` for this tenant: its nodes see the tenant in their
    /// execution context.
    fn run(self, order: Order) -> RunRequest<Order> {
        let tenant = ExecutionContext::of([("tenant_id", self.0)]);
        RunRequest::new(order).with_options(RunOptions::new().execution_context(tenant))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = (StatusCode, Json<Value>);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let named = parts.headers.get(TENANT_HEADER).map(|value| value.to_str());
        match named {
            Some(Ok(tenant)) if !tenant.is_empty() => Ok(Tenant(tenant.to_owned())),
            _ => Err((
                StatusCode::BAD_REQUEST,
                Json(
                    json!({ "error": format!("a `{TENANT_HEADER}` header must name the tenant") }),
                ),
            )),
        }
    }
}

/// A failed run as JSON: its message and the path of the node that failed.
/// Every failure of this pipeline is the order's (a quantity of 0, an item
/// with no price), hence 422 where it is answered.
fn failure(err: &RunError) -> Value {
    json!({
        "error": err.to_string(),
        "path": err.path().to_string(),
        "run_id": err.run_id().to_string(),
    })
}

/// One item of a streamed run as a server-sent event, named by its `type`.
fn server_sent(item: RunEvent<Quote>) -> Result<SseEvent, axum::Error> {
    let data = match item {
        RunEvent::Event(event) => return SseEvent::default().event(event.kind()).json_data(&event),
        RunEvent::Finished(Ok(result)) => json!({
            "type": "finished",
            "run_id": result.run_id.to_string(),
            "quote": result.final_state,
        }),
        RunEvent::Finished(Err(err)) => {
            let mut data = failure(&err);
            data["type"] = json!("failed");
            data
        }
    };
    let name = data["type"].as_str().unwrap_or("message").to_owned();
    SseEvent::default().event(name).json_data(&data)
}

// ---------------------------------------------------------------------------
// Serving on loopback, and reading what is served.
// ---------------------------------------------------------------------------

/// The application served on 127.0.0.1, at a port the system picked, on a
/// task of its own until [`stop`](Server::stop).
pub struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds 127.0.0.1 at a free port and serves [`router`] there.
    pub async fn start() -> std::io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Server { addr, stop, task })
    }

    /// The address of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops taking connections, lets the requests under way finish, and
    /// waits (10 s at most) for the server to end.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(ended) => ended.map_err(std::io::Error::other)?,
            Err(_) => Err(std::io::Error::other("the server did not stop within 10 s")),
        }
    }
}

/// The events of a server-sent event body, each as its name and its data
/// read as JSON.
pub fn server_sent_events(body: &str) -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut events = Vec::new();
    for block in body.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut name = String::from("message");
        let mut data = String::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
        events.push((name, serde_json::from_str(&data)?));
    }
    Ok(events)
}
