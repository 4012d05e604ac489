//! Compile-time promises of `#[node]` and `pipeline!`: forms that must compile,
//! and mistakes that must fail with the message recorded beside each case.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
