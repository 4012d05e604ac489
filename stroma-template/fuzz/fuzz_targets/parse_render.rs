//! Any bytes: parsing, rendering and evaluating must not panic, overflow
//! the stack or exceed the limits, with the default limits and tight ones.
#![no_main]

use std::borrow::Cow;
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use stroma_template::{Limits, Resolve, Template};

struct Scope {
    vars: BTreeMap<String, Value>,
    nodes: BTreeMap<String, Value>,
}

impl Resolve for Scope {
    fn var(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.vars.get(name).map(Cow::Borrowed)
    }
    fn node(&self, path: &str) -> Option<Cow<'_, Value>> {
        self.nodes.get(path).map(Cow::Borrowed)
    }
    fn var_names(&self) -> Vec<String> {
        self.vars.keys().cloned().collect()
    }
    fn nearest_nodes(&self, path: &str) -> Vec<String> {
        let first = path.split('.').next().unwrap_or(path);
        self.nodes.keys().filter(|p| p.starts_with(first)).cloned().collect()
    }
}

fn scope() -> Scope {
    let vars = json!({
        "task_spec": {"id": "T-7", "description": " Add a cache ", "tags": ["perf", "io"]},
        "index": 1, "n": 7, "x": 2.5, "name": "Ada", "empty": "", "nothing": null,
        "list": [10, 20, 30], "m": {"key": "value", "nested": {"deep": [1, {"x": true}]}},
        "big": "x".repeat(4096),
    });
    let nodes = json!({
        "implementation.code_generator": {"files": ["a.rs", "b.rs"], "outcome": {"text": "done"}},
        "implementation": {"summary": "the flow"},
        "refine[2].assess": {"score": 9},
        "review#2": {"verdict": "ok"},
    });
    let map = |v: Value| match v {
        Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    Scope { vars: map(vars), nodes: map(nodes) }
}

fn exercise(source: &str, limits: Limits, scope: &Scope) {
    let Ok(template) = Template::parse_with(source, limits) else {
        return;
    };
    if let Ok(text) = template.render(scope) {
        assert!(text.len() <= limits.max_output_len);
    }
    let _ = template.evaluate(scope);
    let _ = template.references().count();
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let scope = scope();
    exercise(source, Limits::default(), &scope);
    let mut tight = Limits::default();
    tight.max_depth = 8;
    tight.max_output_len = 256;
    tight.max_list_len = 8;
    tight.max_build_len = 4096;
    exercise(source, tight, &scope);
});
