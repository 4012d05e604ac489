//! The compile errors recorded in `tests/ui/fail` are in the user's words:
//! one error per case, naming the user's types and the stroma traits a user
//! writes about (a pipeline's generated type under its readable name,
//! `PipelineAtLine21<fetch, measure>`), never an item named for the macros'
//! own use (`__private`, `__StromaPipeline`), the engine's former name
//! `RunsWith`, a closure's or `async` block's type, an `impl Future` type or
//! the inner crate's paths (`stroma_core::`).

use std::fs;
use std::path::Path;

#[test]
fn every_error_is_one_error_in_the_users_words() {
    let mut problems = Vec::new();
    let mut cases = 0;
    for entry in fs::read_dir(Path::new("tests/ui/fail")).expect("tests/ui/fail") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|ext| ext != "stderr") {
            continue;
        }
        let case = path.file_stem().unwrap().to_string_lossy().into_owned();
        cases += 1;
        let text = fs::read_to_string(&path).expect("a readable .stderr");
        let errors = text
            .lines()
            .filter(|line| line.starts_with("error"))
            .count();
        if errors != 1 {
            problems.push(format!("{case}: {errors} errors, not one"));
        }
        for (number, line) in text.lines().enumerate() {
            if let Some(what) = internal_word(line) {
                problems.push(format!("{case}.stderr:{}: {what}: {line}", number + 1));
            }
        }
    }
    assert!(cases > 0, "no .stderr files found in tests/ui/fail");
    assert!(
        problems.is_empty(),
        "compile errors that are not one error in the user's words:\n{}",
        problems.join("\n")
    );
}

/// What in `line` a user never wrote, if anything.
fn internal_word(line: &str) -> Option<&'static str> {
    if has_dunder_name(line) {
        return Some("a name starting `__`");
    }
    if line.contains("::_") {
        return Some("a private path (`::_`)");
    }
    if line.contains("RunsWith") {
        return Some("the engine's `RunsWith`");
    }
    if line.contains("Accepts<__") {
        return Some("`Accepts<__..>`");
    }
    if line.contains("{closure") || line.contains("closure#") {
        return Some("a closure's type");
    }
    if line.contains("impl Future")
        || line.contains("impl std::future::Future")
        || line.contains("impl core::future::Future")
        || line.contains("dyn Future")
    {
        return Some("an `impl Future` type");
    }
    if line.contains("{async") {
        return Some("an `async` block's or fn body's type");
    }
    if line.contains("stroma_core::") {
        return Some("the inner crate's path (`stroma_core::`)");
    }
    None
}

/// `__` starting a name (`__StromaPipeline`, `stroma::__private`), told
/// from the runs of `_` rustc draws multi-line spans with.
fn has_dunder_name(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.windows(3).enumerate().any(|(at, w)| {
        w[0] == b'_'
            && w[1] == b'_'
            && (w[2].is_ascii_alphanumeric())
            && (at == 0 || bytes[at - 1] != b'_')
    })
}

#[test]
fn the_check_tells_names_from_span_drawings() {
    assert!(has_dunder_name("required for `__StromaPipeline<a, b>`"));
    assert!(has_dunder_name("in `stroma::__private::link`"));
    assert!(!has_dunder_name("   |  __________________^"));
    assert!(!has_dunder_name("   | |______^ required by this bound"));
    assert!(internal_word("help: the trait `_::_serde::Serialize`").is_some());
    assert!(internal_word("`fn(u32) -> impl Future<Output = u32> {triple}`").is_some());
    assert!(internal_word("`run::{closure#0}::Node`").is_some());
    assert!(internal_word("`{async block@src/main.rs:3:5: 3:10}`").is_some());
    assert!(internal_word("`{async fn body of go()}`").is_some());
    assert!(internal_word("`impl std::future::Future<Output = u32>`").is_some());
    assert!(internal_word("`Pin<Box<dyn Future<Output = u32>>>`").is_some());
    assert!(
        internal_word("required by a bound in `stroma_core::run::durable::<impl X>::f`").is_some()
    );
    assert!(internal_word("`measure` cannot follow a node whose output is `String`").is_none());
}
