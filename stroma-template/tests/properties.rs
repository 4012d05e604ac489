//! Property tests: whatever the input, parsing, rendering and evaluating
//! never panic, and the limits hold. Each property runs `CASES` cases, few
//! enough for CI (a few seconds in all); the fuzz target in `fuzz/` is for
//! longer runs.

mod common;

use proptest::prelude::*;
use serde_json::{Map, Value};
use stroma_template::{Limit, Limits, Template, TemplateErrorKind};

const CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Shrinking a failure stays quick; no files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parses, renders and evaluates; checks what must hold whenever they succeed.
fn exercise(source: &str, limits: Limits) -> Result<(), TestCaseError> {
    let Ok(template) = Template::parse_with(source, limits) else {
        return Ok(());
    };
    let scope = common::scope();
    let rendered = template.render(&scope);
    let evaluated = template.evaluate(&scope);
    if let Ok(text) = &rendered {
        prop_assert!(text.len() <= limits.max_output_len);
    }
    match (&rendered, &evaluated) {
        // Text and value agree: the value, rendered, is the text.
        (Ok(text), Ok(Value::String(s))) => prop_assert_eq!(text, s),
        (Ok(text), Ok(value)) => prop_assert_eq!(text, &serde_json::to_string(value).unwrap()),
        (Err(a), Err(b)) => prop_assert_eq!(a, b),
        // Rendering a lone value can hit the output limit where evaluating does not.
        (Err(e), Ok(_)) => {
            let is_output = matches!(
                e.kind(),
                TemplateErrorKind::LimitExceeded {
                    limit: Limit::OutputLength,
                    ..
                }
            );
            prop_assert!(is_output, "{}", e);
        }
        (Ok(_), Err(e)) => prop_assert!(false, "render succeeded, evaluate failed: {e}"),
    }
    for r in template.references() {
        let text = match r {
            stroma_template::Reference::Var(t) | stroma_template::Reference::Hier(t) => t,
        };
        prop_assert!(source.contains(text));
    }
    Ok(())
}

/// Names in the common scope, some missing ones, and keywords.
fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "task_spec",
        "index",
        "n",
        "x",
        "name",
        "empty",
        "nothing",
        "list",
        "m",
        "unknown",
        "len",
        "and",
        "or",
        "not",
        "if",
        "else",
        "true",
        "null",
        "id",
        "tags",
        "key",
        "nested",
        "deep",
    ])
    .prop_map(str::to_owned)
}

fn node_path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "implementation.code_generator.files",
            "implementation.code_generator.outcome.text",
            "implementation.summary",
            "implementation",
            "refine[2].assess.score",
            "review#2.verdict",
            "nowhere.at.all",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,6}(#[0-9])?(\\[-?[0-9]\\])?(\\.[a-z_]{1,6}(\\[[0-9]\\])?){0,3}",
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-1000i64..1000).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "\"([a-z $}{]|\\\\[nt\"'\\\\])*\"",
        "'[a-z $]*'",
        prop::sample::select(vec!["true", "false", "null", "[]", "0", "-0.0", "1e308"])
            .prop_map(str::to_owned),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        name(),
        literal(),
        name().prop_map(|n| format!("$var{{{n}}}")),
        node_path().prop_map(|p| format!("$hier{{{p}}}")),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        let op = prop::sample::select(vec![
            "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or",
        ]);
        let func = prop::sample::select(vec![
            "len", "upper", "lower", "trim", "join", "keys", "default", "json", "nope",
        ]);
        prop_oneof![
            (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), name()).prop_map(|(a, f)| format!("{a}.{f}")),
            (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("{a}[{i}]")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (func, prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(a, c, b)| format!("{a} if {c} else {b}")),
        ]
    })
}

/// Templates built from the language's own pieces, mostly well formed.
fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-zA-Z ,.:\n]{0,12}",
        4 => expr().prop_map(|e| format!("$expr{{{e}}}")),
        2 => name().prop_map(|n| format!("$var{{{n}}}")),
        2 => node_path().prop_map(|p| format!("$hier{{{p}}}")),
        1 => prop::sample::select(vec!["$", "$$", "$$var{", "$expr{", "}", "{", "$hier{a", "$var{ x }"])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// Strings dense in the characters the syntax cares about.
fn syntax_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "$", "{", "}", "(", ")", "[", "]", ".", "#", ",", "\"", "'", "\\", "-", "+", "*",
                "/", "%", "=", "<", ">", "!", " ", "\n", "\t", "0", "9", "e", "a", "_", "é", "var",
                "hier", "expr", "$var{", "$hier{", "$expr{", "not ", " and ", " if ", " else ",
                "len(", "\\u{", "🦀",
            ])
            .prop_map(str::to_owned),
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// Inserts `$` before each opener, as the crate docs say to write literal text.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let rest = &text[i..];
        if rest.starts_with("$var{") || rest.starts_with("$hier{") || rest.starts_with("$expr{") {
            out.push('$');
        }
        out.push(c);
    }
    out
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_strings_never_panic(source in any::<String>()) {
        exercise(&source, Limits::default())?;
    }

    #[test]
    fn syntax_soup_never_panics(source in syntax_soup()) {
        exercise(&source, Limits::default())?;
    }

    #[test]
    fn grammar_built_templates_never_panic(source in template()) {
        exercise(&source, Limits::default())?;
    }

    /// Damage to a well-formed template (a cut, a deletion, an insertion at
    /// any byte) lands in every error path.
    #[test]
    fn damaged_templates_never_panic(
        source in template(),
        at in any::<prop::sample::Index>(),
        len in 0usize..4,
        insert in prop::sample::select(vec!["", "$", "{", "}", "(", "]", "\"", "é", "$expr{"]),
    ) {
        let mut cut = at.index(source.len() + 1);
        while !source.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut end = (cut + len).min(source.len());
        while !source.is_char_boundary(end) {
            end += 1;
        }
        let damaged = format!("{}{insert}{}", &source[..cut], &source[end..]);
        exercise(&damaged, Limits::default())?;
    }

    /// Tight limits: every path that checks one is taken, and none panics.
    #[test]
    fn tight_limits_hold(
        source in template(),
        depth in 0usize..6,
        output in 0usize..64,
        list in 0usize..4,
        build in 0usize..512,
    ) {
        let mut limits = Limits::default();
        limits.max_depth = depth;
        limits.max_output_len = output;
        limits.max_list_len = list;
        limits.max_build_len = build;
        exercise(&source, limits)?;
    }

    /// Nesting deeper than the limit is `LimitExceeded`, never a crash; at the
    /// limit it parses.
    #[test]
    fn deep_nesting_is_a_limit_error(
        kinds in prop::collection::vec(0usize..6, 1..400),
    ) {
        // Each kind nests one level, but the last: the list is one, its
        // `else` branch another (and bracketed, so a `not` before it
        // cannot end where the `if` starts).
        const OPEN: [&str; 6] = ["(", "[", "not ", "-", "len(", "[1 if 1 else "];
        const CLOSE: [&str; 6] = [")", "]", "", "", ")", "]"];
        const LEVELS: [usize; 6] = [1, 1, 1, 1, 1, 2];
        // `-not x` is not an expression (as in Python): a `not` right after
        // a `-` becomes another `-`.
        let kinds: Vec<usize> = kinds
            .iter()
            .scan(0, |prev, &k| {
                let k = if k == 2 && *prev == 3 { 3 } else { k };
                *prev = k;
                Some(k)
            })
            .collect();
        let mut source = String::from("$expr{");
        for &k in &kinds {
            source.push_str(OPEN[k]);
        }
        source.push('1');
        for &k in kinds.iter().rev() {
            source.push_str(CLOSE[k]);
        }
        source.push('}');
        let parsed = Template::parse(&source);
        // The expression itself is one level.
        let depth = 1 + kinds.iter().map(|&k| LEVELS[k]).sum::<usize>();
        if depth <= Limits::DEFAULT_MAX_DEPTH {
            prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
        } else {
            let is_depth = matches!(
                parsed.as_ref().map_err(|e| e.kind()),
                Err(TemplateErrorKind::LimitExceeded { limit: Limit::Depth, .. })
            );
            prop_assert!(is_depth, "{:?}", parsed.err());
        }
    }

    /// Output past the limit is `LimitExceeded`; within it, the full text.
    #[test]
    fn output_is_bounded(copies in 0usize..40, len in 0usize..40, max in 0usize..400) {
        let mut limits = Limits::default();
        limits.max_output_len = max;
        let scope = common::scope().var("s", Value::String("x".repeat(len)));
        let template = Template::parse_with(&"$var{s}".repeat(copies), limits).unwrap();
        match template.render(&scope) {
            Ok(text) => {
                prop_assert!(copies * len <= max);
                prop_assert_eq!(text.len(), copies * len);
            }
            Err(e) => {
                prop_assert!(copies * len > max);
                let is_output = matches!(
                    e.kind(),
                    TemplateErrorKind::LimitExceeded { limit: Limit::OutputLength, .. }
                );
                prop_assert!(is_output);
            }
        }
    }

    /// Any text, escaped as documented, renders back to itself.
    #[test]
    fn escaped_text_renders_as_itself(text in syntax_soup()) {
        let template = Template::parse(&escape(&text)).unwrap();
        prop_assert_eq!(template.render(&common::Scope::default()).unwrap(), text);
        prop_assert_eq!(template.references().count(), 0);
    }

    /// Non-string values render as `serde_json::to_string` writes them, and
    /// `json()` is that text for every value.
    #[test]
    fn values_render_as_serde_json_writes_them(value in json_value()) {
        let scope = common::Scope::default().var("v", value.clone());
        let expected = serde_json::to_string(&value).unwrap();
        let json = Template::parse("$expr{json(v)}").unwrap().evaluate(&scope).unwrap();
        prop_assert_eq!(json, Value::String(expected.clone()));
        let text = Template::parse("$var{v}").unwrap().render(&scope).unwrap();
        match &value {
            Value::String(s) => prop_assert_eq!(&text, s),
            _ => prop_assert_eq!(&text, &expected),
        }
        let same = Template::parse("$expr{v == v}").unwrap().evaluate(&scope).unwrap();
        prop_assert_eq!(same, Value::Bool(true));
    }
}
