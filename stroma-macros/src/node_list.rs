//! What `pipeline!` and `parallel!` share: parsing `[crate = path;] a, b, c`
//! and naming the generated struct's parameters, fields and values.

use proc_macro2::{Ident, Span, TokenStream};
use quote::format_ident;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Index, Path, Token};

use crate::forms::{default_crate_path, display_name};

/// `[crate = path;] node, node, ...`
struct ListInput {
    krate: Path,
    nodes: Punctuated<Expr, Token![,]>,
}

impl Parse for ListInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate = if input.peek(Token![crate]) && input.peek2(Token![=]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let path = input.parse()?;
            input.parse::<Token![;]>()?;
            path
        } else {
            default_crate_path()
        };
        let nodes = Punctuated::parse_terminated(input)?;
        Ok(ListInput { krate, nodes })
    }
}

/// A parsed, non-empty list of nodes, with the names generated code uses for them.
pub(crate) struct NodeList {
    pub(crate) krate: Path,
    pub(crate) nodes: Vec<Expr>,
    /// `N0, N1, ..`: the generated struct's type parameters.
    pub(crate) params: Vec<Ident>,
    /// `__node0, ..`: the values, spanned at their node so errors point there.
    pub(crate) values: Vec<Ident>,
    /// `0, 1, ..`: the struct's fields.
    pub(crate) fields: Vec<Index>,
}

impl NodeList {
    /// The node expressions as written, joined by `separator`: the default name.
    pub(crate) fn name(&self, separator: &str) -> String {
        self.nodes
            .iter()
            .map(display_name)
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// Parses `tokens` and hands the list to `generate`; an empty list is the
/// error `empty_message`, pointing at the whole call.
pub(crate) fn expand(
    tokens: TokenStream,
    empty_message: &str,
    generate: impl FnOnce(&NodeList) -> TokenStream,
) -> TokenStream {
    let input = match syn::parse2::<ListInput>(tokens) {
        Ok(input) => input,
        Err(err) => return err.to_compile_error(),
    };
    if input.nodes.is_empty() {
        return syn::Error::new(Span::call_site(), empty_message).to_compile_error();
    }
    let nodes: Vec<Expr> = input.nodes.into_iter().collect();
    let count = nodes.len();
    let list = NodeList {
        krate: input.krate,
        params: (0..count).map(|i| format_ident!("N{}", i)).collect(),
        values: nodes
            .iter()
            .enumerate()
            .map(|(i, node)| format_ident!("__node{}", i, span = node.span()))
            .collect(),
        fields: (0..count).map(Index::from).collect(),
        nodes,
    };
    generate(&list)
}
