//! Text shared by the macros' error messages.

/// Every node signature `#[node]` accepts, for errors that reject one.
pub(crate) const ACCEPTED_FORMS: &str = "\
`#[node]` accepts these signatures (the return type `O` may also be `Result<O, E>`):
    async fn f(input: I) -> O
    async fn f(input: I, ctx: &Context) -> O
    async fn f(input: I, model: &mut M) -> O    (or `model: &M`)
    async fn f(input: I, ctx: &Context, model: &mut M) -> O";

/// The path generated code reaches the runtime through, unless `crate = path` says otherwise.
pub(crate) fn default_crate_path() -> syn::Path {
    syn::parse_quote!(::stroma)
}

/// An optional `crate = path;` before a macro's input: the path generated
/// code reaches the runtime through.
pub(crate) fn parse_crate_prefix(input: syn::parse::ParseStream) -> syn::Result<syn::Path> {
    if input.peek(syn::Token![crate]) && input.peek2(syn::Token![=]) {
        input.parse::<syn::Token![crate]>()?;
        input.parse::<syn::Token![=]>()?;
        let path = input.parse()?;
        input.parse::<syn::Token![;]>()?;
        Ok(path)
    } else {
        Ok(default_crate_path())
    }
}

/// A node expression as its name: the source text, spaced as people write it.
pub(crate) fn display_name(node: &syn::Expr) -> String {
    quote::ToTokens::to_token_stream(node)
        .to_string()
        .replace(" ,", ",")
        .replace("! [", "![")
        .replace(" (", "(")
        .replace(" . ", ".")
}
