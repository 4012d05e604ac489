//! Every run and every node runs inside a tracing span carrying the run id,
//! tenant, user and correlation id, and the node name.

use std::sync::{Arc, Mutex};

use stroma::prelude::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Remembers each new span's name and fields, and which span was its parent.
#[derive(Clone, Default)]
struct SpanLog {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    current: Arc<Mutex<Vec<u64>>>,
}

#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    fields: Vec<(String, String)>,
    parent: Option<u64>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for SpanLog {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().unwrap();
        let parent = self.current.lock().unwrap().last().copied();
        spans.push(SpanSeen {
            name: attrs.metadata().name(),
            fields,
            parent,
        });
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        self.current.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.current.lock().unwrap().pop();
    }
}

#[node]
async fn first(n: u32) -> u32 {
    n + 1
}

#[node(name = "second step")]
async fn second(n: u32) -> u32 {
    n * 2
}

#[test]
fn runs_and_nodes_are_spanned() {
    let log = SpanLog::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = tracing::subscriber::with_default(log.clone(), || {
        let runner = StromaRunner::quick().with_execution_context(stroma::ExecutionContext::of([
            ("tenant_id", "acme"),
            ("user_id", "ada"),
        ]));
        runtime.block_on(runner.run(&pipeline![first, second], 1))
    })
    .unwrap();

    let spans = log.spans.lock().unwrap().clone();
    let field = |span: &SpanSeen, key: &str| {
        span.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let run = &spans[0];
    assert_eq!(run.name, "stroma.run");
    assert_eq!(field(run, "run_id"), Some(result.run_id.to_string()));
    assert_eq!(field(run, "tenant").as_deref(), Some("acme"));
    assert_eq!(field(run, "user").as_deref(), Some("ada"));
    assert_eq!(field(run, "correlation"), Some(result.run_id.to_string()));
    assert_eq!(field(run, "pipeline").as_deref(), Some("first > second"));
    let nodes: Vec<_> = spans[1..]
        .iter()
        .map(|s| (s.name, field(s, "node").unwrap(), s.parent))
        .collect();
    assert_eq!(
        nodes,
        [
            ("stroma.node", "first".to_owned(), Some(1)),
            ("stroma.node", "second step".to_owned(), Some(1)),
        ],
        "one span per node, inside the run's span"
    );
}
