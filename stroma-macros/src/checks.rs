//! The checks `pipeline!`, `parallel!` and `route!` place on each node they
//! are given, spanned at that node: each mistake is one error there, and a
//! node that fails a check becomes a value of an error type, so nothing
//! after it (the links, the pipeline's use) reports it again.
//!
//! The functions and traits checked live at the `stroma` crate's root
//! (hidden), reached through the alias [`ROOT`], because rustc names them
//! by their path in its notes.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Path};

/// The alias generated code reaches the `stroma` crate's root through,
/// spanned at `span`: a check's call is spanned at its node throughout, so
/// that rustc reports it there once.
pub(crate) fn root_at(span: Span) -> Ident {
    Ident::new("__stroma_root", span)
}

/// The alias, spanned at the macro's call.
pub(crate) fn root() -> Ident {
    root_at(Span::call_site())
}

/// `use <crate> as __stroma_root;` and the probe traits the checks call.
pub(crate) fn imports(krate: &Path) -> TokenStream {
    let root = root();
    quote! {
        use #krate as #root;
        #[allow(unused_imports)]
        use #root::{
            NameByFirst as _, NameByType as _, ProbeNode as _, ProbeNotNode as _,
        };
    }
}

/// `let value = <value, if it is a node>;`, spanned at `node`. A value that
/// is not a node is one error, "`name` is not a node: mark it `#[node]`",
/// where `name` is what was written (a path's last segment), or else the
/// value's type.
pub(crate) fn is_node(value: &Ident, node: &Expr) -> TokenStream {
    let span = node.span();
    let root = root_at(span);
    match written_name(node) {
        Some(name) => quote_spanned! {span=>
            let #value = {
                // Named as written, so the error names it so; only ever a
                // type argument, for the error to print.
                #[allow(non_camel_case_types, dead_code)]
                enum #name {}
                #root::is_node(
                    (&#root::NodeProbe(&#value)).stroma_verdict(),
                    ::core::marker::PhantomData::<#name>,
                    #value,
                )
            };
        },
        None => quote_spanned! {span=>
            let #value = #root::is_node(
                (&#root::NodeProbe(&#value)).stroma_verdict(),
                #root::type_of(&#value),
                #value,
            );
        },
    }
}

/// The name a node's check calls it by, for a checked node (named by the
/// node that takes its input, or its own type): `(&NameProbe(&v)).stroma_name()`.
pub(crate) fn name_of(value: &Ident, span: Span) -> TokenStream {
    let root = root_at(span);
    quote_spanned! {span=> (&#root::NameProbe(&#value)).stroma_name() }
}

/// A path's last identifier (`fetch`, `nodes::fetch`), through parentheses:
/// the name an element that is not a node is called by.
fn written_name(node: &Expr) -> Option<Ident> {
    match node {
        Expr::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let ident = &last.ident;
            let reserved = ["self", "Self", "super", "crate"];
            if !last.arguments.is_none() || reserved.iter().any(|r| ident == r) {
                return None;
            }
            Some(ident.clone())
        }
        Expr::Paren(inner) => written_name(&inner.expr),
        Expr::Group(inner) => written_name(&inner.expr),
        _ => None,
    }
}
