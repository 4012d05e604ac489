//! The limits hold: deep nesting, huge outputs, long lists and copies give
//! `LimitExceeded`, never a crash.

mod common;

use serde_json::{Value, json};
use stroma_template::{Limit, Limits, Template, TemplateError, TemplateErrorKind};

#[track_caller]
fn limit_of(err: &TemplateError) -> Limit {
    match err.kind() {
        TemplateErrorKind::LimitExceeded { limit, .. } => *limit,
        other => panic!("expected LimitExceeded, got {other:?}: {err}"),
    }
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    f(&mut limits);
    limits
}

#[test]
fn defaults_are_as_documented() {
    let l = Limits::default();
    assert_eq!(l, Limits::DEFAULT);
    assert_eq!(l.max_source_len, 1 << 20);
    assert_eq!(l.max_depth, 64);
    assert_eq!(l.max_output_len, 16 << 20);
    assert_eq!(l.max_list_len, 100_000);
    assert_eq!(l.max_build_len, 64 << 20);
}

#[test]
fn source_length() {
    let source = "x".repeat((1 << 20) + 1);
    let err = Template::parse(&source).unwrap_err();
    assert_eq!(limit_of(&err), Limit::SourceLength);
    assert!(
        err.to_string()
            .starts_with("template is longer than the limit of 1048576 bytes")
    );
    assert!(Template::parse(&source[1..]).is_ok());
}

/// Nestings of every kind that adds a level: the one at the limit parses,
/// one more is `LimitExceeded`, and far more (10,000 deep) is too.
#[test]
fn nesting_depth() {
    let kinds: [(&str, &str); 7] = [
        ("(", ")"),
        ("[", "]"),
        ("not ", ""),
        ("-", ""),
        ("len(", ")"),
        ("list[", "]"),
        ("1 if true else ", ""),
    ];
    for (open, close) in kinds {
        let nest = |n: usize| format!("$expr{{{}1{}}}", open.repeat(n), close.repeat(n));
        // The expression itself is one level.
        assert!(Template::parse(&nest(63)).is_ok(), "{open}");
        for n in [64, 10_000] {
            let err = Template::parse(&nest(n)).unwrap_err();
            assert_eq!(limit_of(&err), Limit::Depth, "{open}");
            assert!(
                err.to_string()
                    .starts_with("expression nests deeper than the limit of 64")
            );
        }
    }
}

#[test]
fn depth_is_capped_whatever_it_is_set_to() {
    let l = limits(|l| l.max_depth = usize::MAX);
    let source = format!("$expr{{{}1{}}}", "(".repeat(100_000), ")".repeat(100_000));
    let err = Template::parse_with(&source, l).unwrap_err();
    assert!(matches!(
        err.kind(),
        TemplateErrorKind::LimitExceeded {
            limit: Limit::Depth,
            max: Limits::HARD_MAX_DEPTH
        }
    ));
}

#[test]
fn long_flat_chains_do_not_nest() {
    let scope = common::scope();
    let sum = format!("$expr{{0{}}}", " + 1".repeat(100_000));
    assert_eq!(
        Template::parse(&sum).unwrap().render(&scope).unwrap(),
        "100000"
    );
    let ors = format!("$expr{{{}1}}", "0 or ".repeat(50_000));
    assert_eq!(Template::parse(&ors).unwrap().render(&scope).unwrap(), "1");
    let fields = format!("$expr{{m.nested{}}}", ".deep".repeat(50_000));
    let err = Template::parse(&fields)
        .unwrap()
        .render(&scope)
        .unwrap_err();
    assert!(matches!(err.kind(), TemplateErrorKind::TypeMismatch { .. }));
}

#[test]
fn long_hier_paths_are_bounded() {
    let path = vec!["a"; 65].join(".");
    let err = Template::parse(&format!("$hier{{{path}}}")).unwrap_err();
    assert_eq!(limit_of(&err), Limit::Depth);
    assert!(Template::parse(&format!("$hier{{{}}}", vec!["a"; 64].join("."))).is_ok());
}

fn big_scope(len: usize) -> common::Scope {
    common::scope().var("big", Value::String("x".repeat(len)))
}

#[test]
fn output_length() {
    // 17 copies of 1 MiB is past the default 16 MiB.
    let scope = big_scope(1 << 20);
    let t = Template::parse(&"$var{big}".repeat(17)).unwrap();
    let err = t.render(&scope).unwrap_err();
    assert_eq!(limit_of(&err), Limit::OutputLength);
    assert_eq!(err.position(), 16 * 9 + 5);
    assert!(
        Template::parse(&"$var{big}".repeat(16))
            .unwrap()
            .render(&scope)
            .is_ok()
    );

    // Text, values and JSON all count.
    let small = limits(|l| l.max_output_len = 10);
    let render = |source: &str| {
        Template::parse_with(source, small)
            .unwrap()
            .render(&common::scope())
    };
    assert_eq!(render("0123456789").unwrap(), "0123456789");
    assert_eq!(
        limit_of(&render("0123456789x").unwrap_err()),
        Limit::OutputLength
    );
    assert_eq!(
        limit_of(&render("$var{task_spec}").unwrap_err()),
        Limit::OutputLength
    );
    assert_eq!(
        limit_of(&render("12345$var{list}").unwrap_err()),
        Limit::OutputLength
    );
}

#[test]
fn strings_built_are_bounded_by_the_output_limit() {
    let scope = big_scope(9 << 20);
    for source in [
        "$expr{len(big + big)}",
        "$expr{len(join([big, big], ''))}",
        "$expr{len(json([big, big]))}",
    ] {
        let err = Template::parse(source).unwrap().render(&scope).unwrap_err();
        assert_eq!(limit_of(&err), Limit::OutputLength, "{source}");
    }
    let scope = big_scope(17 << 20);
    for source in ["$expr{len(upper(big))}", "$expr{len(trim(big))}"] {
        let err = Template::parse(source).unwrap().render(&scope).unwrap_err();
        assert_eq!(limit_of(&err), Limit::OutputLength, "{source}");
    }
}

#[test]
fn list_length() {
    let small = limits(|l| l.max_list_len = 3);
    let eval = |source: &str| {
        Template::parse_with(source, small)
            .unwrap()
            .evaluate(&common::scope())
    };
    assert_eq!(eval("$expr{[1, 2, 3]}").unwrap(), json!([1, 2, 3]));
    assert_eq!(
        limit_of(&eval("$expr{[1, 2, 3, 4]}").unwrap_err()),
        Limit::ListLength
    );
    assert_eq!(
        limit_of(&eval("$expr{list + [4]}").unwrap_err()),
        Limit::ListLength
    );
    assert_eq!(
        limit_of(&eval("$expr{keys(m) + keys(m)}").unwrap_err()),
        Limit::ListLength
    );

    let wide: serde_json::Map<String, Value> =
        (0..100_001).map(|i| (i.to_string(), Value::Null)).collect();
    let scope = common::scope().var("wide", Value::Object(wide));
    let err = Template::parse("$expr{len(keys(wide))}")
        .unwrap()
        .render(&scope)
        .unwrap_err();
    assert_eq!(limit_of(&err), Limit::ListLength);
}

#[test]
fn copies_are_bounded_by_the_build_limit() {
    // 80 copies of 1 MiB: each is within every other limit, together past 64 MiB.
    let scope = big_scope(1 << 20);
    let source = format!("$expr{{len([{}])}}", vec!["big"; 80].join(", "));
    let err = Template::parse(&source)
        .unwrap()
        .render(&scope)
        .unwrap_err();
    assert_eq!(limit_of(&err), Limit::BuildSize);
    let source = format!("$expr{{len([{}])}}", vec!["big"; 60].join(", "));
    assert_eq!(
        Template::parse(&source).unwrap().render(&scope).unwrap(),
        "60"
    );
}

/// A value nested far deeper than any stack allows for recursion: written,
/// compared and measured without recursion.
#[test]
fn deep_input_values_are_read_iteratively() {
    let mut deep = json!(1);
    for _ in 0..200_000 {
        deep = Value::Array(vec![deep]);
    }
    let scope = common::scope().var("deep", deep);
    let render = |source: &str| Template::parse(source).unwrap().render(&scope);
    let text = render("$var{deep}").unwrap();
    assert_eq!(text.len(), 400_001);
    assert_eq!(render("$expr{deep == deep}").unwrap(), "true");
    assert_eq!(render("$expr{len(json(deep))}").unwrap(), "400001");
    assert_eq!(render("$expr{len(deep[0][0][0])}").unwrap(), "1");
    // serde_json drops a Value recursively; leak this one rather than overflow here.
    std::mem::forget(scope);
}

/// Every kind of nesting, at the deepest the ceiling allows, parses and
/// renders on a thread with the 2 MiB stack that Rust and tokio give by
/// default, in this unoptimized test build too.
#[test]
fn the_deepest_template_fits_a_default_thread_stack() {
    let l = limits(|l| l.max_depth = Limits::HARD_MAX_DEPTH);
    let n = Limits::HARD_MAX_DEPTH - 1;
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let scope = common::scope();
            for (open, close) in [
                ("(", ")"),
                ("[", "][0]"),
                ("len(", ")"),
                ("not ", ""),
                ("-", ""),
            ] {
                let source = format!("$expr{{{}1{}}}", open.repeat(n), close.repeat(n));
                let t = Template::parse_with(&source, l).unwrap();
                let _ = t.render(&scope);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
