//! Each error kind, with its exact message.

mod common;

use stroma_template::{Template, TemplateErrorKind};

/// Renders `source` over the common scope, expecting an error of kind
/// `kind` whose `Display` is `expected`.
#[track_caller]
fn check(source: &str, is_kind: fn(&TemplateErrorKind) -> bool, expected: &str) {
    let err = match Template::parse(source) {
        Ok(t) => t.render(&common::scope()).expect_err(source),
        Err(e) => e,
    };
    assert_eq!(err.to_string(), expected, "{source:?}");
    assert!(is_kind(err.kind()), "{source:?}: {:?}", err.kind());
}

#[test]
fn unknown_variable_lists_what_is_in_scope() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::UnknownVariable { .. });
    check(
        "Task: $expr{task_spek.id}",
        is,
        "unknown variable `task_spek` at line 1, column 13; in scope: empty, index, list, m, my-var, n, name, nothing, task_spec, x\nTask: $expr{task_spek.id}\n            ^",
    );
    check(
        "$var{unknown}",
        is,
        "unknown variable `unknown` at line 1, column 6; in scope: empty, index, list, m, my-var, n, name, nothing, task_spec, x\n$var{unknown}\n     ^",
    );
}

#[test]
fn missing_field_lists_the_fields() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::MissingField { .. });
    check(
        "$hier{implementation.code_gen.files}",
        is,
        "no field `code_gen` in the output of node `implementation` at line 1, column 22; fields: summary\n$hier{implementation.code_gen.files}\n                     ^",
    );
    check(
        "$expr{task_spec.owner}",
        is,
        "no field `owner` at line 1, column 17; fields: description, id, tags\n$expr{task_spec.owner}\n                ^",
    );
    check(
        "$expr{m.nested.deep[1].y}",
        is,
        "no field `y` at line 1, column 24; fields: x\n$expr{m.nested.deep[1].y}\n                       ^",
    );
}

#[test]
fn unknown_node_suggests_the_nearest() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::UnknownNode { .. });
    check(
        "$hier{nowhere}",
        is,
        "unknown node `nowhere` at line 1, column 7; no node path is near it\n$hier{nowhere}\n      ^",
    );
    check(
        "See $hier{code_generator.files}",
        is,
        "unknown node `code_generator.files` at line 1, column 11; nearest nodes: implementation.code_generator\nSee $hier{code_generator.files}\n          ^",
    );
}

#[test]
fn unknown_function_lists_the_known_ones() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::UnknownFunction { .. });
    check(
        "$expr{shout(name)}",
        is,
        "unknown function `shout` at line 1, column 7; known functions: default, join, json, keys, len, lower, trim, upper\n$expr{shout(name)}\n      ^",
    );
}

#[test]
fn wrong_argument_count() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::WrongArgumentCount { .. });
    check(
        "$expr{len(list, 1)}",
        is,
        "`len` takes 1 argument, found 2 at line 1, column 7\n$expr{len(list, 1)}\n      ^",
    );
    check(
        "$expr{default(1)}",
        is,
        "`default` takes 2 arguments, found 1 at line 1, column 7\n$expr{default(1)}\n      ^",
    );
}

#[test]
fn type_mismatch() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::TypeMismatch { .. });
    check(
        "$expr{name + 1}",
        is,
        "cannot apply `+` to a string and a number at line 1, column 12\n$expr{name + 1}\n           ^",
    );
    check(
        "$expr{upper(n)}",
        is,
        "`upper` takes a string, found a number at line 1, column 13\n$expr{upper(n)}\n            ^",
    );
    check(
        "$expr{n.field}",
        is,
        "cannot read field `field` of a number at line 1, column 9\n$expr{n.field}\n        ^",
    );
    check(
        "$expr{list['a']}",
        is,
        "cannot index a list with a string; it takes an integer at line 1, column 11\n$expr{list['a']}\n          ^",
    );
    check(
        "$expr{list[1.5]}",
        is,
        "an index must be an integer, found 1.5 at line 1, column 11\n$expr{list[1.5]}\n          ^",
    );
    check(
        "$expr{m[0]}",
        is,
        "cannot index an object with a number; it takes a string key at line 1, column 8\n$expr{m[0]}\n       ^",
    );
    check(
        "$expr{n[0]}",
        is,
        "cannot index a number at line 1, column 8\n$expr{n[0]}\n       ^",
    );
    check(
        "$expr{1 < 'a'}",
        is,
        "cannot compare a number with a string using `<` at line 1, column 9\n$expr{1 < 'a'}\n        ^",
    );
    check(
        "$expr{-name}",
        is,
        "cannot negate a string at line 1, column 7\n$expr{-name}\n      ^",
    );
    check(
        "$expr{join(list, 1)}",
        is,
        "`join` takes a separator string, found a number at line 1, column 18\n$expr{join(list, 1)}\n                 ^",
    );
    check(
        "$expr{join(name, 1)}",
        is,
        "`join` takes a list and a separator string, found a string at line 1, column 12\n$expr{join(name, 1)}\n           ^",
    );
    check(
        "$expr{keys(list)}",
        is,
        "`keys` takes an object, found a list at line 1, column 12\n$expr{keys(list)}\n           ^",
    );
    check(
        "$expr{'tab\there' + 1}",
        is,
        "cannot apply `+` to a string and a number at line 1, column 18\n$expr{'tab\there' + 1}\n          \t      ^",
    );
}

#[test]
fn index_out_of_range() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::IndexOutOfRange { .. });
    check(
        "$expr{list[3]}",
        is,
        "index 3 is out of range for length 3 at line 1, column 11\n$expr{list[3]}\n          ^",
    );
    check(
        "$expr{list[-4]}",
        is,
        "index -4 is out of range for length 3 at line 1, column 11\n$expr{list[-4]}\n          ^",
    );
    check(
        "$expr{name[3]}",
        is,
        "index 3 is out of range for length 3 at line 1, column 11\n$expr{name[3]}\n          ^",
    );
}

#[test]
fn division_by_zero() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::DivisionByZero);
    check(
        "$expr{n / 0}",
        is,
        "division by zero at line 1, column 9\n$expr{n / 0}\n        ^",
    );
    check(
        "$expr{n % 0}",
        is,
        "division by zero at line 1, column 9\n$expr{n % 0}\n        ^",
    );
    check(
        "$expr{x / 0.0}",
        is,
        "division by zero at line 1, column 9\n$expr{x / 0.0}\n        ^",
    );
}

#[test]
fn overflow() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::Overflow);
    check(
        "$expr{9223372036854775807 + 1}",
        is,
        "arithmetic overflow at line 1, column 27\n$expr{9223372036854775807 + 1}\n                          ^",
    );
    check(
        "$expr{1e308 * 10}",
        is,
        "arithmetic overflow at line 1, column 13\n$expr{1e308 * 10}\n            ^",
    );
    check(
        "$expr{-9223372036854775807 - 1 - 1}",
        is,
        "arithmetic overflow at line 1, column 32\n$expr{-9223372036854775807 - 1 - 1}\n                               ^",
    );
}

#[test]
fn syntax() {
    let is = |k: &TemplateErrorKind| matches!(k, TemplateErrorKind::Syntax { .. });
    check(
        "$expr{1 + not x}",
        is,
        "`not` needs parentheses here: write `(not ...)` at line 1, column 11\n$expr{1 + not x}\n          ^",
    );
    check(
        "Task: $expr{task.id",
        is,
        "unclosed `$expr{` at line 1, column 7\nTask: $expr{task.id\n      ^",
    );
    check(
        "$expr{}",
        is,
        "empty `$expr{}`: write an expression at line 1, column 1\n$expr{}\n^",
    );
    check(
        "$expr{ }",
        is,
        "empty `$expr{}`: write an expression at line 1, column 1\n$expr{ }\n^",
    );
    check(
        "$expr{a b}",
        is,
        "expected an operator or `}`, found `b` at line 1, column 9\n$expr{a b}\n        ^",
    );
    check(
        "$expr{a @ b}",
        is,
        "unexpected `@` in expression at line 1, column 9\n$expr{a @ b}\n        ^",
    );
    check(
        "$expr{a = b}",
        is,
        "unexpected `=`; compare with `==` at line 1, column 9\n$expr{a = b}\n        ^",
    );
    check(
        "$expr{!a}",
        is,
        "unexpected `!`; negate with `not` at line 1, column 7\n$expr{!a}\n      ^",
    );
    check(
        "$expr{a && b}",
        is,
        "unexpected `&&`; write `and` at line 1, column 9\n$expr{a && b}\n        ^",
    );
    check(
        "$expr{a || b}",
        is,
        "unexpected `||`; write `or` at line 1, column 9\n$expr{a || b}\n        ^",
    );
    check(
        "$expr{1 < 2 < 3}",
        is,
        "comparisons do not chain: `<` after `<`; combine them with `and` at line 1, column 13\n$expr{1 < 2 < 3}\n            ^",
    );
    check(
        "$expr{(a}",
        is,
        "expected `)`, found `}` at line 1, column 9\n$expr{(a}\n        ^",
    );
    check(
        "$expr{[1, 2}",
        is,
        "expected `,` or `]`, found `}` at line 1, column 12\n$expr{[1, 2}\n           ^",
    );
    check(
        "$expr{a.}",
        is,
        "expected a field name after `.`, found `}`; for other keys write `[\"key\"]` at line 1, column 9\n$expr{a.}\n        ^",
    );
    check(
        "$expr{a.1}",
        is,
        "expected a field name after `.`, found `1`; for other keys write `[\"key\"]` at line 1, column 9\n$expr{a.1}\n        ^",
    );
    check(
        "$expr{'abc}",
        is,
        "unterminated string at line 1, column 7\n$expr{'abc}\n      ^",
    );
    check(
        "$expr{'\\q'}",
        is,
        "unknown escape `\\q` in string at line 1, column 8\n$expr{'\\q'}\n       ^",
    );
    check(
        "$expr{'\\u{110000}'}",
        is,
        "`\\u{110000}` is not a Unicode scalar value at line 1, column 8\n$expr{'\\u{110000}'}\n       ^",
    );
    check(
        "$expr{'\\u{zz}'}",
        is,
        "bad escape: write `\\u{...}` with 1 to 6 hex digits at line 1, column 8\n$expr{'\\u{zz}'}\n       ^",
    );
    check(
        "$expr{99999999999999999999}",
        is,
        "integer `99999999999999999999` is out of range at line 1, column 7\n$expr{99999999999999999999}\n      ^",
    );
    check(
        "$expr{1e999}",
        is,
        "number `1e999` is out of range at line 1, column 7\n$expr{1e999}\n      ^",
    );
    check(
        "$expr{12abc}",
        is,
        "unexpected `a` after a number at line 1, column 9\n$expr{12abc}\n        ^",
    );
    check(
        "$expr{a if b}",
        is,
        "expected `else` after the condition, found `}` at line 1, column 13\n$expr{a if b}\n            ^",
    );
    check(
        "$expr{and}",
        is,
        "expected an expression, found `and` at line 1, column 7\n$expr{and}\n      ^",
    );
    check(
        "$expr{$expr{a}}",
        is,
        "`$expr{` inside `$expr{}`: write the inner expression in parentheses at line 1, column 7\n$expr{$expr{a}}\n      ^",
    );
    check(
        "$expr{$foo}",
        is,
        "unexpected `$` in expression; references are `$var{name}` and `$hier{path}` at line 1, column 7\n$expr{$foo}\n      ^",
    );
    check(
        "$expr{{}}",
        is,
        "unexpected `{` in expression at line 1, column 7\n$expr{{}}\n      ^",
    );
    check(
        "$var{}",
        is,
        "empty `$var{}`: write a variable name at line 1, column 1\n$var{}\n^",
    );
    check(
        "$var{a",
        is,
        "unclosed `$var{` at line 1, column 1\n$var{a\n^",
    );
    check(
        "$var{a.b}",
        is,
        "unexpected `.` in `$var{}`: it takes one variable name; to read fields, write `$expr{name.field}` at line 1, column 7\n$var{a.b}\n      ^",
    );
    check(
        "$var{a b}",
        is,
        "unexpected `b` in `$var{}` at line 1, column 8\n$var{a b}\n       ^",
    );
    check(
        "$hier{}",
        is,
        "empty `$hier{}`: write a node path at line 1, column 1\n$hier{}\n^",
    );
    check(
        "$hier{a..b}",
        is,
        "expected a name in `$hier{}` path, found `.` at line 1, column 9\n$hier{a..b}\n        ^",
    );
    check(
        "$hier{a#}",
        is,
        "expected digits after `#` at line 1, column 9\n$hier{a#}\n        ^",
    );
    check(
        "$hier{a[x]}",
        is,
        "expected an integer index after `[` at line 1, column 9\n$hier{a[x]}\n        ^",
    );
    check(
        "$hier{a[1}",
        is,
        "expected `]` after the index at line 1, column 10\n$hier{a[1}\n         ^",
    );
    check(
        "$hier{a",
        is,
        "unclosed `$hier{` at line 1, column 1\n$hier{a\n^",
    );
    check(
        "$hier{a b}",
        is,
        "unexpected `b` in `$hier{}` path at line 1, column 9\n$hier{a b}\n        ^",
    );
    check(
        "line one\n\tsecond $expr{1 +}",
        is,
        "expected an expression, found `}` at line 2, column 18\n\tsecond $expr{1 +}\n\t                ^",
    );
}

#[test]
fn position_line_and_column() {
    let source = "first line\r\nsecond: é $expr{missing}\nthird";
    let err = Template::parse(source)
        .unwrap()
        .render(&common::Scope::default())
        .unwrap_err();
    assert_eq!(err.position(), source.find("missing").unwrap());
    assert_eq!((err.line(), err.column()), (2, 17));
    assert_eq!(
        err.to_string(),
        "unknown variable `missing` at line 2, column 17; no variables in scope\n\
         second: é $expr{missing}\n                ^"
    );
}

#[test]
fn a_long_line_is_shown_around_the_caret() {
    let source = format!("{}$expr{{oops}}{}", "a".repeat(500), "b".repeat(500));
    let err = Template::parse(&source)
        .unwrap()
        .render(&common::Scope::default())
        .unwrap_err();
    assert_eq!((err.line(), err.column()), (1, 507));
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[1],
        format!("…{}$expr{{oops}}{}…", "a".repeat(54), "b".repeat(55))
    );
    assert_eq!(lines[2], format!("{}^", " ".repeat(61)));
}

#[test]
fn long_lists_in_messages_are_cut() {
    let mut scope = common::Scope::default();
    for i in 0..25 {
        scope = scope.var(&format!("v{i:02}"), serde_json::json!(i));
    }
    let err = Template::parse("$var{w}")
        .unwrap()
        .render(&scope)
        .unwrap_err();
    let first = err.to_string().lines().next().unwrap().to_owned();
    assert!(first.ends_with("v17, v18, v19, and 5 more"), "{first}");
}

#[test]
fn errors_compare_and_clone() {
    let a = Template::parse("$expr{1 +}").unwrap_err();
    let b = Template::parse("$expr{1 +}").unwrap_err();
    assert_eq!(a, b.clone());
    assert_ne!(a, Template::parse("$expr{2 +}").unwrap_err());
    let _: &dyn std::error::Error = &a;
}
