//! Shared context: resources, flags and metrics that the nodes of a run share.
//!
//! `cargo run --example shared_context`
//!
//! Nodes often need things that are not part of the data flowing through the
//! pipeline: an HTTP client, configuration, feature flags, a place to put
//! metrics. Globals make that hard to test and unsafe under concurrency; a
//! [`Context`] given to the runner is the alternative. A node receives it by
//! taking `&Context` as its second parameter.
//!
//! The rules this program shows, and checks:
//! - entries given to the runner are shared, read-only, by every run;
//! - a value a node writes is seen by every later node of the same run,
//!   never by another run, and the caller can read it after the run;
//! - a missing resource fails the run with an error naming the node and the type;
//! - a node without a `&Context` parameter is given nothing.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stroma::ContextError;
use stroma::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------
// A tiny local HTTP server, so the example needs no network beyond loopback.
// ---------------------------------------------------------------------------

const HOME: &str = "<!doctype html><html><head><title>Example Domain</title></head>\
<body><h1>Example Domain</h1><p>This domain is for use in documentation examples.</p></body></html>";

const ARTICLE: &str = "Shared context lets the nodes of a run reach their clients, \
flags and metrics without globals. Each run writes into a layer of its own, so \
runs going on at the same time never see each other's values.";

/// Binds 127.0.0.1 on a free port and serves [`HOME`] at `/` and [`ARTICLE`]
/// at `/article` until the program ends.
async fn start_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    Ok(addr)
}

/// Reads one request head and answers it with a fixed body for its path.
async fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    // "GET /article HTTP/1.1" -> "/article"
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        "/" => ("200 OK", HOME),
        "/article" => ("200 OK", ARTICLE),
        _ => ("404 Not Found", "not found"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

// ---------------------------------------------------------------------------
// 1. A resource: the HTTP client.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Url(String);

#[derive(Clone, Debug)]
struct Page {
    body: String,
}

/// Fetches a page with the client the runner was given: one client, and so one
/// connection pool, for every run, with no global in sight.
#[node]
async fn fetch(url: Url, ctx: &Context) -> Result<Page, NodeError> {
    let client = ctx.require::<reqwest::Client>()?;
    let body = client
        .get(&url.0)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Page { body })
}

// ---------------------------------------------------------------------------
// 2. Writes carry forward: step1 leaves a note for step2.
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Input {
    value: i64,
}

#[derive(Debug)]
struct Intermediate {
    value: i64,
}

#[derive(Debug)]
struct Output {
    result: i64,
}

#[node]
async fn step1(state: Input, ctx: &Context) -> Intermediate {
    // Not part of the data flowing on; a flag for whoever comes later.
    ctx.insert_named("step1_complete", true);
    Intermediate {
        value: state.value + 1,
    }
}

#[node]
async fn step2(state: Intermediate, ctx: &Context) -> Result<Output, NodeError> {
    // The previous node's write is visible here.
    assert!(*ctx.get_named::<bool>("step1_complete")?);
    Ok(Output {
        result: state.value * 2,
    })
}

// ---------------------------------------------------------------------------
// 3. Feature flags: runner-level named entries that change what a node does.
// ---------------------------------------------------------------------------

/// Cuts a page down to `max_tokens` words when `enable_summarization` is on;
/// passes it through whole otherwise.
#[node]
async fn summarize(page: Page, ctx: &Context) -> Result<String, NodeError> {
    if !*ctx.get_named::<bool>("enable_summarization")? {
        return Ok(page.body);
    }
    let max_tokens = *ctx.get_named::<u32>("max_tokens")? as usize;
    let words: Vec<&str> = page.body.split_whitespace().collect();
    if words.len() <= max_tokens {
        return Ok(page.body);
    }
    Ok(format!("{} …", words[..max_tokens].join(" ")))
}

// ---------------------------------------------------------------------------
// 4. Metrics: each node adds its timing to a map in the context.
// ---------------------------------------------------------------------------

type Timings = BTreeMap<&'static str, Duration>;

/// Adds the time since `started` to the run's `node_timings`, under the
/// name of the node that holds `ctx`.
fn record_timing(ctx: &Context, started: Instant) -> Result<(), ContextError> {
    let node = ctx.node().unwrap_or("outside a node");
    let elapsed = started.elapsed();
    ctx.update_named("node_timings", |timings: &mut Timings| {
        timings.insert(node, elapsed);
    })
}

#[node]
async fn load(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    let started = Instant::now();
    record_timing(ctx, started)?;
    Ok(n)
}

#[node]
async fn slow_step(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(30)).await; // an expensive call
    record_timing(ctx, started)?;
    Ok(n * 2)
}

#[node]
async fn fast_step(n: u64, ctx: &Context) -> Result<u64, NodeError> {
    let started = Instant::now();
    record_timing(ctx, started)?;
    Ok(n + 1)
}

// ---------------------------------------------------------------------------
// 6. A node that takes only its input: nothing is injected.
// ---------------------------------------------------------------------------

#[node]
async fn word_count(page: Page) -> usize {
    page.body.split_whitespace().count()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = start_server().await?;
    let base = format!("http://{addr}");
    println!("local server on {base}\n");

    // -- 1. The client is a resource of the runner, found by its type. -------
    println!("1. an HTTP client in the context");
    let client = reqwest::Client::new();
    let runner = StromaRunner::quick().with_context(Context::new().with(client));
    let result = runner
        .run(&pipeline![fetch], Url(format!("{base}/")))
        .await?;
    println!(
        "   fetched {base}/: {} bytes",
        result.final_state.body.len()
    );
    assert_eq!(result.final_state.body.len(), HOME.len());
    assert_eq!(result.final_state.body, HOME);

    // -- 2. A node's write is seen by the nodes after it, and by the caller. --
    println!("\n2. step1 writes, step2 reads");
    let result = runner
        .run(&pipeline![step1, step2], Input { value: 20 })
        .await?;
    let seen = *result.context.get_named::<bool>("step1_complete")?;
    println!(
        "   result {}; step1_complete = {seen} in the run's context",
        result.final_state.result
    );
    assert_eq!(result.final_state.result, 42);
    assert!(seen);
    // The write belonged to that run: the runner's own context never got it.
    assert!(!runner.config().context().contains_named("step1_complete"));
    println!("   the runner's context has no `step1_complete`: the write stayed in its run");

    // -- 3. Flags: same pipeline, two runners, two behaviours. ---------------
    // `with_context` layers entries over the runner's: both keep the client.
    println!("\n3. feature flags");
    let summarizing = runner.clone().with_context(
        Context::new()
            .with_named("enable_summarization", true)
            .with_named("max_tokens", 8_u32),
    );
    let verbatim = runner.clone().with_context(
        Context::new()
            .with_named("enable_summarization", false)
            .with_named("max_tokens", 8_u32),
    );
    let read_article = pipeline![fetch, summarize];
    let article = Url(format!("{base}/article"));
    let short = summarizing
        .run(&read_article, article.clone())
        .await?
        .final_state;
    let full = verbatim.run(&read_article, article).await?.final_state;
    println!("   on, max 8 tokens: {short:?}");
    println!(
        "   off:              the whole article, {} bytes",
        full.len()
    );
    assert_eq!(short.trim_end_matches(" …").split_whitespace().count(), 8);
    assert!(ARTICLE.starts_with(short.trim_end_matches(" …")));
    assert_eq!(full, ARTICLE);

    // -- 4. Metrics: accumulated per run, read by the caller afterwards. -----
    // The runner holds an empty map. Each run that updates it gets its own
    // copy, so two runs going on at once keep separate timings.
    println!("\n4. metrics in the context");
    let metered = StromaRunner::quick()
        .with_context(Context::new().with_named("node_timings", Timings::new()));
    let (slow_report, fast_report) = (pipeline![load, slow_step], pipeline![load, fast_step]);
    let (slow, fast) = tokio::join!(metered.run(&slow_report, 5), metered.run(&fast_report, 5));
    let (slow, fast) = (slow?, fast?);
    let slow_timings = slow.context.get_named::<Timings>("node_timings")?;
    let fast_timings = fast.context.get_named::<Timings>("node_timings")?;
    for (run, timings) in [("slow run", &slow_timings), ("fast run", &fast_timings)] {
        let shown: Vec<String> = timings
            .iter()
            .map(|(node, took)| format!("{node} {:.1?}", took))
            .collect();
        println!("   {run}: {}", shown.join(", "));
    }
    assert_eq!((slow.final_state, fast.final_state), (10, 6));
    // Each run sees only its own nodes: no `fast_step` in the slow run, and
    // the other way round.
    assert_eq!(
        slow_timings.keys().copied().collect::<Vec<_>>(),
        ["load", "slow_step"]
    );
    assert_eq!(
        fast_timings.keys().copied().collect::<Vec<_>>(),
        ["fast_step", "load"]
    );
    assert!(slow_timings["slow_step"] >= Duration::from_millis(30));
    // And the runner's map is still the empty one it was given.
    let runner_level = metered
        .config()
        .context()
        .get_named::<Timings>("node_timings")?;
    assert!(runner_level.is_empty());
    println!("   the runner's own `node_timings` is still empty");

    // -- 5. A missing resource is a clear error, not a panic. ----------------
    println!("\n5. a runner without the client");
    let bare = StromaRunner::quick();
    let err = bare
        .run(&pipeline![fetch], Url(format!("{base}/")))
        .await
        .expect_err("no client was given");
    println!("   {err}");
    assert_eq!(err.node(), "fetch");
    assert!(err.to_string().contains("`fetch`"));
    assert!(
        err.to_string()
            .contains(std::any::type_name::<reqwest::Client>())
    );
    assert!(matches!(
        err.cause().downcast_ref::<ContextError>(),
        Some(ContextError::MissingType { .. })
    ));

    // -- 6. A node taking only its input gets nothing, context or not. -------
    println!("\n6. a one-parameter node on a runner with context");
    let counted = runner
        .run(
            &pipeline![fetch, word_count],
            Url(format!("{base}/article")),
        )
        .await?;
    println!(
        "   word_count ran after fetch: {} words",
        counted.final_state
    );
    assert_eq!(counted.final_state, ARTICLE.split_whitespace().count());
    // Its signature is its input alone; that is all it is ever called with.
    let direct = word_count::call(Page {
        body: "three little words".into(),
    })
    .await;
    assert_eq!(direct, 3);
    println!("   called directly, with a page and nothing else: {direct} words");

    println!("\nall checks passed");
    Ok(())
}
