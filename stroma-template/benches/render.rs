//! Rendering one prompt-sized template beside minijinja on the same data.
//!
//! The template is ~200 bytes with five references: fields of a variable,
//! a bare variable, a field of a kept node output, and an index (by a
//! variable) into a list in that output. Stroma reads variables and nodes
//! from two `HashMap<String, Value>`s through `Resolve`; minijinja reads the
//! same JSON, converted once to its own value type, with the node outputs
//! under a `nodes` key.
//!
//! `render/stroma pre-parsed` and `render/minijinja pre-compiled` time one
//! render of an already parsed / compiled template; `render/stroma
//! parse+render` and `render/minijinja compile+render` parse or compile it
//! each time too. Both sides produce the same text (checked before timing).
//!
//!     cargo bench -p stroma-template --bench render

use std::borrow::Cow;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use stroma_template::{Resolve, Template};

const STROMA: &str = "Task $expr{task_spec.id}: $expr{task_spec.description}\n\
Owner: $var{owner}. Priority $expr{task_spec.priority}.\n\
Model: $hier{implementation.code_generator.model}; \
file: $expr{$hier{implementation.code_generator}.files[index]}.\n";

const MINIJINJA: &str = "Task {{ task_spec.id }}: {{ task_spec.description }}\n\
Owner: {{ owner }}. Priority {{ task_spec.priority }}.\n\
Model: {{ nodes[\"implementation.code_generator\"].model }}; \
file: {{ nodes[\"implementation.code_generator\"].files[index] }}.\n";

const EXPECTED: &str = "Task T-7: add a cache in front of the store\n\
Owner: ada. Priority 2.\n\
Model: small-coder; file: src/store.rs.\n";

struct Scope {
    vars: HashMap<String, Value>,
    nodes: HashMap<String, Value>,
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
    fn nearest_nodes(&self, _: &str) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }
}

fn data() -> (Value, Value) {
    let vars = json!({
        "task_spec": {
            "id": "T-7",
            "description": "add a cache in front of the store",
            "priority": 2,
            "tags": ["perf", "storage"],
        },
        "owner": "ada",
        "index": 1,
    });
    let generator = json!({
        "model": "small-coder",
        "files": ["src/cache.rs", "src/store.rs", "src/lib.rs"],
        "tokens": 1234,
    });
    (vars, generator)
}

fn keep_newline() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .unwrap()
}

fn render(c: &mut Criterion) {
    let (vars, generator) = data();
    let scope = Scope {
        vars: vars
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        nodes: HashMap::from([
            ("implementation".to_owned(), json!({"summary": "the flow"})),
            (
                "implementation.code_generator".to_owned(),
                generator.clone(),
            ),
        ]),
    };
    let mut context = vars.clone();
    context["nodes"] = json!({ "implementation.code_generator": generator });
    let context = minijinja::Value::from(minijinja::value::Serde(&context));

    let template = Template::parse(STROMA).unwrap();
    let mut env = minijinja::Environment::new();
    // As Stroma does, keep the text as written, final newline included.
    env.set_syntax(keep_newline());
    env.add_template("prompt.txt", MINIJINJA).unwrap();
    let compiled = env.get_template("prompt.txt").unwrap();
    assert!(STROMA.len() > 180 && STROMA.len() < 230, "{}", STROMA.len());
    assert_eq!(template.render(&scope).unwrap(), EXPECTED);
    assert_eq!(compiled.render(&context).unwrap(), EXPECTED);

    let mut group = c.benchmark_group("render");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("stroma pre-parsed", |b| {
        b.iter(|| black_box(&template).render(black_box(&scope)).unwrap())
    });
    group.bench_function("minijinja pre-compiled", |b| {
        b.iter(|| black_box(&compiled).render(black_box(&context)).unwrap())
    });
    group.bench_function("stroma parse+render", |b| {
        b.iter(|| {
            Template::parse(black_box(STROMA))
                .unwrap()
                .render(black_box(&scope))
                .unwrap()
        })
    });
    let mut bare = minijinja::Environment::new();
    bare.set_syntax(keep_newline());
    group.bench_function("minijinja compile+render", |b| {
        b.iter(|| {
            bare.render_str(black_box(MINIJINJA), black_box(&context))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
