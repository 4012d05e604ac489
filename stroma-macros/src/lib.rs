//! The `#[node]` attribute and the `pipeline!` macro of Stroma.
//!
//! Use them through the `stroma` crate, which documents them; generated code
//! names only `::stroma::__private` items (or `<crate>::__private` with the
//! `crate = path` option).

mod checks;
mod debug;
mod forms;
mod node;
mod node_list;
mod parallel;
mod pipeline;
mod route;
mod template;

use proc_macro::TokenStream;

/// Turns an `async fn` into a pipeline node. Documented in the `stroma` crate.
#[proc_macro_attribute]
pub fn node(args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = node::expand(args.into(), item.into());
    debug::print("#[node]", &expanded);
    expanded.into()
}

/// Runs nodes concurrently on one input. Documented in the `stroma` crate.
#[proc_macro]
pub fn parallel(input: TokenStream) -> TokenStream {
    let expanded = parallel::expand(input.into());
    debug::print("parallel!", &expanded);
    expanded.into()
}

/// Chains nodes into a typed pipeline. Documented in the `stroma` crate.
#[proc_macro]
pub fn pipeline(input: TokenStream) -> TokenStream {
    let expanded = pipeline::expand(input.into());
    debug::print("pipeline!", &expanded);
    expanded.into()
}

/// Chooses the next node from a classifying node's enum output. Documented
/// in the `stroma` crate.
#[proc_macro]
pub fn route(input: TokenStream) -> TokenStream {
    let expanded = route::expand(input.into());
    debug::print("route!", &expanded);
    expanded.into()
}

/// A template checked at compile time. Documented in the `stroma` crate.
#[proc_macro]
pub fn template(input: TokenStream) -> TokenStream {
    let expanded = template::expand(input.into());
    debug::print("template!", &expanded);
    expanded.into()
}
