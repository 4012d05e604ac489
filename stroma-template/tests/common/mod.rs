//! A scope over two maps, as an engine would give, for the tests.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use stroma_template::{Resolve, Template, TemplateError};

#[derive(Default)]
pub struct Scope {
    pub vars: BTreeMap<String, Value>,
    pub nodes: BTreeMap<String, Value>,
}

impl Scope {
    pub fn var(mut self, name: &str, value: Value) -> Self {
        self.vars.insert(name.to_owned(), value);
        self
    }

    pub fn node(mut self, path: &str, value: Value) -> Self {
        self.nodes.insert(path.to_owned(), value);
        self
    }
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
        self.nodes
            .keys()
            .filter(|p| p.split('.').any(|s| s == first))
            .cloned()
            .collect()
    }
}

/// The scope most tests read.
pub fn scope() -> Scope {
    Scope::default()
        .var(
            "task_spec",
            json!({"id": "T-7", "description": "  Add a cache  ", "tags": ["perf", "io"]}),
        )
        .var("index", json!(1))
        .var("n", json!(7))
        .var("x", json!(2.5))
        .var("name", json!("Ada"))
        .var("empty", json!(""))
        .var("nothing", json!(null))
        .var("list", json!([10, 20, 30]))
        .var(
            "m",
            json!({"key": "value", "two words": 2, "nested": {"deep": [1, {"x": true}]}}),
        )
        .var("my-var", json!("dashed"))
        .node(
            "implementation.code_generator",
            json!({"files": ["a.rs", "b.rs", "c.rs"], "outcome": {"text": "done"}}),
        )
        .node("implementation", json!({"summary": "the flow"}))
        .node("refine[2].assess", json!({"score": 9}))
        .node("review#2", json!({"verdict": "ok"}))
}

pub fn render(source: &str) -> Result<String, TemplateError> {
    Template::parse(source)?.render(&scope())
}

pub fn evaluate(source: &str) -> Result<Value, TemplateError> {
    Template::parse(source)?.evaluate(&scope())
}

/// The rendered text, panicking with the error's own message otherwise.
#[track_caller]
pub fn ok(source: &str) -> String {
    render(source).unwrap_or_else(|e| panic!("{source:?} failed:\n{e}"))
}

#[track_caller]
pub fn value(source: &str) -> Value {
    evaluate(source).unwrap_or_else(|e| panic!("{source:?} failed:\n{e}"))
}

/// The error's full message.
#[track_caller]
pub fn err(source: &str) -> String {
    match render(source) {
        Ok(text) => panic!("{source:?} rendered {text:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}
