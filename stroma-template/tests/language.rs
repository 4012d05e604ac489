//! Each feature of the language, by example.

mod common;

use common::{evaluate, ok, scope, value};
use serde_json::json;
use stroma_template::{Reference, Template};

#[test]
fn text_is_copied_as_is() {
    assert_eq!(ok(""), "");
    assert_eq!(
        ok("plain text\nover lines {braces} }"),
        "plain text\nover lines {braces} }"
    );
    assert_eq!(
        ok("costs $5, $ alone, $$ doubled, $x{}, $var"),
        "costs $5, $ alone, $$ doubled, $x{}, $var"
    );
    assert_eq!(ok("ends with $"), "ends with $");
    assert_eq!(ok("émoji 🦀 and ünïcode"), "émoji 🦀 and ünïcode");
}

#[test]
fn doubled_dollar_before_an_opener_is_one_literal_dollar() {
    assert_eq!(ok("$$var{name}"), "$var{name}");
    assert_eq!(
        ok("$$hier{a.b} and $$expr{1 + }"),
        "$hier{a.b} and $expr{1 + }"
    );
    assert_eq!(ok("$$$var{name}"), "$$var{name}");
    assert_eq!(ok("$$var{name} is $var{name}"), "$var{name} is Ada");
    assert_eq!(ok(r#"$expr{"$"}$var{name}"#), "$Ada");
}

#[test]
fn var_reads_a_variable() {
    assert_eq!(ok("Hello, $var{name}!"), "Hello, Ada!");
    assert_eq!(ok("$var{ name }"), "Ada");
    assert_eq!(ok("$var{my-var}"), "dashed");
    assert_eq!(ok("$var{index}$var{n}"), "17");
}

#[test]
fn hier_takes_the_longest_prefix_that_names_a_node() {
    assert_eq!(
        ok("$hier{implementation.code_generator.files}"),
        r#"["a.rs","b.rs","c.rs"]"#
    );
    assert_eq!(
        ok("$hier{implementation.code_generator.outcome.text}"),
        "done"
    );
    assert_eq!(ok("$hier{implementation.summary}"), "the flow");
    assert_eq!(ok("$hier{implementation.code_generator.files[-1]}"), "c.rs");
    assert_eq!(ok("$hier{ refine[2].assess.score }"), "9");
    assert_eq!(ok("$hier{review#2.verdict}"), "ok");
}

#[test]
fn hier_asks_for_prefixes_longest_first() {
    use std::borrow::Cow;
    use std::cell::RefCell;

    use serde_json::Value;
    use stroma_template::Resolve;

    struct Recording(RefCell<Vec<String>>, Value);
    impl Resolve for Recording {
        fn var(&self, _: &str) -> Option<Cow<'_, Value>> {
            None
        }
        fn node(&self, path: &str) -> Option<Cow<'_, Value>> {
            self.0.borrow_mut().push(path.to_owned());
            (path == "a").then_some(Cow::Borrowed(&self.1))
        }
        fn var_names(&self) -> Vec<String> {
            Vec::new()
        }
        fn nearest_nodes(&self, _: &str) -> Vec<String> {
            Vec::new()
        }
    }
    let scope = Recording(RefCell::default(), json!({"b": [{"c": 1}]}));
    let t = Template::parse("$hier{a.b[0].c}").unwrap();
    assert_eq!(t.render(&scope).unwrap(), "1");
    assert_eq!(*scope.0.borrow(), ["a.b[0].c", "a.b[0]", "a.b", "a"]);

    // A `#k` names a node: the node path runs at least to the last one.
    scope.0.borrow_mut().clear();
    assert!(
        Template::parse("$hier{a.x#2.y}")
            .unwrap()
            .render(&scope)
            .is_err()
    );
    assert_eq!(*scope.0.borrow(), ["a.x#2.y", "a.x#2"]);
}

#[test]
fn fields_and_indices() {
    assert_eq!(ok("$expr{task_spec.id}"), "T-7");
    assert_eq!(ok("$expr{task_spec.tags[0]}"), "perf");
    assert_eq!(ok("$expr{task_spec.tags[-1]}"), "io");
    assert_eq!(
        ok("$expr{list[index]} $expr{list[$var{index}]} $expr{list[index + 1]}"),
        "20 20 30"
    );
    assert_eq!(
        ok(r#"$expr{m["key"]} $expr{m['two words']} $expr{m.nested.deep[1].x}"#),
        "value 2 true"
    );
    assert_eq!(ok("$expr{name[0]}$expr{name[-1]}"), "Aa");
    assert_eq!(ok("$expr{'héllo'[1]}"), "é");
    assert_eq!(ok("$expr{[1, [2, 3]][1][0]}"), "2");
    assert_eq!(
        ok("$expr{$hier{implementation.code_generator}.files[$var{index}]}"),
        "b.rs"
    );
    // Keywords are fine as field names.
    let scope = common::Scope::default().var("o", json!({"if": 1, "null": 2, "not": 3}));
    let t = Template::parse("$expr{o.if + o.null + o.not}").unwrap();
    assert_eq!(t.render(&scope).unwrap(), "6");
}

#[test]
fn literals() {
    assert_eq!(value("$expr{42}"), json!(42));
    assert_eq!(value("$expr{-42}"), json!(-42));
    assert_eq!(value("$expr{1.5}"), json!(1.5));
    assert_eq!(value("$expr{2e3}"), json!(2000.0));
    assert_eq!(value("$expr{1.5E-1}"), json!(0.15));
    assert_eq!(value("$expr{true}"), json!(true));
    assert_eq!(value("$expr{false}"), json!(false));
    assert_eq!(value("$expr{null}"), json!(null));
    assert_eq!(value(r#"$expr{"double"}"#), json!("double"));
    assert_eq!(value("$expr{'single'}"), json!("single"));
    assert_eq!(
        value(r#"$expr{"q\" a\' b\\ n\n t\t r\r z\0 u\u{1F980} }"}"#),
        json!("q\" a' b\\ n\n t\t r\r z\0 u🦀 }")
    );
    assert_eq!(value("$expr{[]}"), json!([]));
    assert_eq!(
        value("$expr{[1, 'a', [true, null],]}"),
        json!([1, "a", [true, null]])
    );
    assert_eq!(value("$expr{\n  [1,\n   2]\n}"), json!([1, 2]));
}

#[test]
fn arithmetic() {
    assert_eq!(value("$expr{1 + 2 * 3}"), json!(7));
    assert_eq!(value("$expr{(1 + 2) * 3}"), json!(9));
    assert_eq!(value("$expr{10 - 2 - 3}"), json!(5));
    assert_eq!(value("$expr{-n + 1}"), json!(-6));
    assert_eq!(value("$expr{- -n}"), json!(7));
    assert_eq!(value("$expr{8 / 2}"), json!(4));
    assert_eq!(value("$expr{7 / 2}"), json!(3.5));
    assert_eq!(
        value("$expr{7 % 3} $expr{-7 % 3} $expr{7 % -3}"),
        json!("1 2 -2")
    );
    assert_eq!(value("$expr{x * 2}"), json!(5.0));
    assert_eq!(value("$expr{x + 1}"), json!(3.5));
    assert_eq!(value("$expr{7.5 % 2}"), json!(1.5));
    assert_eq!(value("$expr{-7.5 % 2}"), json!(0.5));
    assert_eq!(value("$expr{name + '!' + '?'}"), json!("Ada!?"));
    assert_eq!(value("$expr{list + [40] + []}"), json!([10, 20, 30, 40]));
    assert_eq!(
        value("$expr{9223372036854775807 - 1}"),
        json!(9_223_372_036_854_775_806_i64)
    );
}

#[test]
fn comparisons() {
    let cases = [
        ("1 < 2", true),
        ("2 <= 2", true),
        ("3 > 4", false),
        ("4 >= 4.0", true),
        ("1 == 1.0", true),
        ("1 != 1", false),
        ("'a' < 'b'", true),
        ("'Z' < 'a'", true),
        ("'abc' >= 'abd'", false),
        ("1 == '1'", false),
        ("null == null", true),
        ("[1, [2]] == [1, [2.0]]", true),
        ("[1, 2] == [2, 1]", false),
        ("m == m", true),
        ("m.nested != m", true),
        ("not 1 == 2", true),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            value(&format!("$expr{{{expr}}}")),
            json!(expected),
            "{expr}"
        );
    }
}

#[test]
fn truthiness_and_logic() {
    for falsy in [
        "null", "false", "0", "0.0", "-0.0", "''", "[]", "empty", "nothing",
    ] {
        assert_eq!(
            value(&format!("$expr{{not {falsy}}}")),
            json!(true),
            "{falsy}"
        );
    }
    for truthy in ["true", "1", "-0.5", "'0'", "[0]", "m", "name"] {
        assert_eq!(
            value(&format!("$expr{{not {truthy}}}")),
            json!(false),
            "{truthy}"
        );
    }
    // `and` / `or` give the operand that decided, and short-circuit.
    assert_eq!(value("$expr{empty or 'anonymous'}"), json!("anonymous"));
    assert_eq!(value("$expr{name or unknown_is_not_read}"), json!("Ada"));
    assert_eq!(value("$expr{0 and unknown_is_not_read}"), json!(0));
    assert_eq!(value("$expr{1 and 'last'}"), json!("last"));
    assert_eq!(value("$expr{true and false or 'x'}"), json!("x"));
    assert_eq!(value("$expr{not not n}"), json!(true));
    // `not` binds looser than comparisons and tighter than `and` / `or`.
    assert_eq!(value("$expr{not 1 == 2 and not false}"), json!(true));
    assert_eq!(value("$expr{not 0 or 0}"), json!(true));
    assert_eq!(value("$expr{1 == (not 0)}"), json!(false));
    assert!(common::render("$expr{1 == not 0}").is_err());
}

#[test]
fn conditional() {
    assert_eq!(ok("$expr{'big' if n > 5 else 'small'}"), "big");
    assert_eq!(ok("$expr{'a' if n < 0 else 'b' if n < 5 else 'c'}"), "c");
    assert_eq!(ok("$expr{(1 if false else 2) * 10}"), "20");
    // The branch not taken is not evaluated.
    assert_eq!(ok("$expr{1 if true else unknown}"), "1");
}

#[test]
fn functions() {
    assert_eq!(value("$expr{len('héllo')}"), json!(5));
    assert_eq!(value("$expr{len(list)} $expr{len(m)}"), json!("3 3"));
    assert_eq!(
        value("$expr{upper(name)} $expr{lower('ÀB')}"),
        json!("ADA àb")
    );
    assert_eq!(
        value("$expr{trim(task_spec.description)}"),
        json!("Add a cache")
    );
    assert_eq!(
        value("$expr{join(task_spec.tags, ', ')}"),
        json!("perf, io")
    );
    assert_eq!(
        value("$expr{join([1, 'a', null, [2]], '-')}"),
        json!("1-a-null-[2]")
    );
    assert_eq!(value("$expr{join([], ', ')}"), json!(""));
    assert_eq!(
        value("$expr{keys(m)}"),
        json!(["key", "nested", "two words"])
    );
    assert_eq!(
        value("$expr{json(task_spec.tags)}"),
        json!(r#"["perf","io"]"#)
    );
    assert_eq!(value("$expr{json('a\"b')}"), json!(r#""a\"b""#));
    assert_eq!(
        value("$expr{upper(join(keys(m.nested), ''))}"),
        json!("DEEP")
    );
}

#[test]
fn default_covers_absence_not_falsiness() {
    assert_eq!(ok("$expr{default(unknown, 'fb')}"), "fb");
    assert_eq!(ok("$expr{default($var{unknown}, 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(nothing, 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(task_spec.owner, 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(task_spec.owner.name, 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(nothing.field[3], 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(list[10], 'fb')}"), "fb");
    assert_eq!(ok("$expr{default($hier{no.such.node}, 'fb')}"), "fb");
    assert_eq!(
        ok("$expr{default($hier{implementation.code_generator.missing}, 'fb')}"),
        "fb"
    );
    assert_eq!(ok("$expr{default(m['nope'], 'fb')}"), "fb");
    // Anywhere inside the first argument.
    assert_eq!(ok("$expr{default(len(task_spec.files), 0)}"), "0");
    assert_eq!(ok("$expr{default(upper(nope) + '!', 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(list[missing_index], 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(default(nope, nothing), 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(default(nope, also_nope), 'fb')}"), "fb");
    assert_eq!(ok("$expr{default(nope, 1) + default(list[9], 2)}"), "3");
    // Present values are kept, falsy or not.
    assert_eq!(ok("$expr{default(empty, 'fb')}|$expr{default(0, 1)}"), "|0");
    assert_eq!(ok("$expr{default(task_spec.id, 'fb')}"), "T-7");
    // The fallback itself is read strictly.
    assert!(common::render("$expr{default(unknown, other_unknown)}").is_err());
    // Only absence is forgiven, not a wrong type.
    assert!(common::render("$expr{default(name.field, 'fb')}").is_err());
}

#[test]
fn rendering_rule() {
    assert_eq!(ok("[$var{name}]"), "[Ada]");
    assert_eq!(ok("[$var{nothing}]"), "[null]");
    assert_eq!(
        ok("[$expr{true}] [$expr{1.0}] [$expr{-0.25}]"),
        "[true] [1.0] [-0.25]"
    );
    assert_eq!(
        ok("$var{task_spec}"),
        r#"{"description":"  Add a cache  ","id":"T-7","tags":["perf","io"]}"#
    );
    assert_eq!(
        ok(r#"$expr{["a\"b", "\n", m.nested]}"#),
        r#"["a\"b","\n",{"deep":[1,{"x":true}]}]"#
    );
}

#[test]
fn evaluate_gives_the_value_of_a_lone_reference() {
    assert_eq!(value("$var{task_spec}"), scope().vars["task_spec"]);
    assert_eq!(value("$hier{refine[2].assess}"), json!({"score": 9}));
    assert_eq!(value("$expr{list}"), json!([10, 20, 30]));
    assert_eq!(value("$expr{n > 1}"), json!(true));
    assert_eq!(value("$var{nothing}"), json!(null));
    // With any text around it, even whitespace, it is text.
    assert_eq!(value(" $expr{list}"), json!(" [10,20,30]"));
    assert_eq!(value("$expr{n}$expr{n}"), json!("77"));
    assert_eq!(value(""), json!(""));
    assert_eq!(value("just text"), json!("just text"));
    assert!(evaluate("$expr{unknown}").is_err());
}

#[test]
fn references_lists_every_mention_in_order() {
    let t = Template::parse(
        "$var{a} $hier{flow.node.field} $expr{b.c + len(d) + $var{e-f} + $hier{g[1]}.h} $$var{not_one} $var{a}",
    )
    .unwrap();
    assert_eq!(
        t.references().collect::<Vec<_>>(),
        [
            Reference::Var("a"),
            Reference::Hier("flow.node.field"),
            Reference::Var("b"),
            Reference::Var("d"),
            Reference::Var("e-f"),
            Reference::Hier("g[1]"),
            Reference::Var("a"),
        ]
    );
    assert_eq!(Template::parse("no refs").unwrap().references().count(), 0);
}

#[test]
fn templates_are_shareable_values() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Template>();
    assert_traits::<stroma_template::TemplateError>();
    let t = Template::parse("Hi $var{name}").unwrap();
    let copy = t.clone();
    assert_eq!(copy.source(), "Hi $var{name}");
    assert_eq!(copy.render(&scope()).unwrap(), "Hi Ada");
    assert!(format!("{t:?}").contains("Hi $var{name}"));
    let t2 = std::thread::spawn(move || t.render(&scope()).unwrap())
        .join()
        .unwrap();
    assert_eq!(t2, "Hi Ada");
}

#[test]
fn json_matches_serde_json() {
    let tricky = json!({
        "s": "quote\" backslash\\ nl\n tab\t cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f} 🦀 é",
        "n": [0, -1, 1.5, 1e300, -0.0, 18446744073709551615u64, i64::MIN],
        "e": [[], {}, [[]], null, true, false],
    });
    let scope = common::Scope::default().var("v", tricky.clone());
    let t = Template::parse("$expr{json(v)}").unwrap();
    assert_eq!(
        t.evaluate(&scope).unwrap(),
        json!(serde_json::to_string(&tricky).unwrap())
    );
    let t = Template::parse("$var{v}").unwrap();
    assert_eq!(
        t.render(&scope).unwrap(),
        serde_json::to_string(&tricky).unwrap()
    );
}
