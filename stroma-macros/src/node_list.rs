//! What `pipeline!` and `parallel!` share: parsing `[crate = path;] a, b, c`
//! and naming the generated struct's parameters, fields and values.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Index, Path, Token};

use crate::forms::{display_name, parse_crate_prefix};

/// `[crate = path;] node, node, ...`
struct ListInput {
    krate: Path,
    nodes: Punctuated<Expr, Token![,]>,
}

impl Parse for ListInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate = parse_crate_prefix(input)?;
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

/// The name of the struct a `pipeline!`, `parallel!` or `route!` call
/// generates: what it is (`kind`) and the line of the call, as in
/// `PipelineAtLine21`. A compile error's notes name the struct with its
/// nodes (`PipelineAtLine21<fetch, measure>`), and rustc writes a name no
/// other item in the crate has as it is; a name shared by every pipeline
/// would be written with the path of the function it is in, through
/// compiler-made segments (`run::{closure#0}::Pipeline<..>`).
pub(crate) fn generated_type_name(kind: &str) -> Ident {
    let line = proc_macro::Span::call_site().line();
    format_ident!("{kind}AtLine{line}")
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

impl NodeList {
    /// `Node` and `Accepts` for the generated struct `name` over these nodes:
    /// it takes what its first node takes and gives `output`, is called
    /// `default_name`, runs all its nodes' leaves, has the shape `shape`, may change the model if
    /// any node may, and answers for its input through its first node.
    pub(crate) fn node_impls(
        &self,
        name: &Ident,
        output: TokenStream,
        default_name: &str,
        shape: TokenStream,
    ) -> TokenStream {
        let NodeList { params, fields, .. } = self;
        let first = &params[0];
        let rest = &params[1..];
        let root = crate::checks::root();
        quote! {
            // Not listed among "other types that implement `Node`" when a value is not a node.
            #[diagnostic::do_not_recommend]
            impl<#(#params: __stroma::Node),*> __stroma::Node for #name<#(#params),*> {
                type Input = <#first as __stroma::Node>::Input;
                type Output = #output;
                #[inline]
                fn name(&self) -> &'static str {
                    #default_name
                }
                #[inline]
                fn leaf_count(&self) -> usize {
                    0 #(+ self.#fields.leaf_count())*
                }
                const MAY_CHANGE_MODEL: bool =
                    false #(|| <#params as __stroma::Node>::MAY_CHANGE_MODEL)*;
                const USES_CONTEXT: bool =
                    false #(|| <#params as __stroma::Node>::USES_CONTEXT)*;
                const ASKS_PATHS: bool =
                    false #(|| <#params as __stroma::Node>::ASKS_PATHS)*;
                #shape
                #[inline]
                fn input_json(
                    input: &<#first as __stroma::Node>::Input,
                ) -> ::core::option::Option<__stroma::JsonValue> {
                    <#first as __stroma::Node>::input_json(input)
                }
            }

            // An error about what it takes names its first node.
            impl<#first: #root::FirstNode, #(#rest),*> #root::FirstNode for #name<#(#params),*> {
                type First = <#first as #root::FirstNode>::First;
            }

            // Durable when every node is.
            impl<#(#params: __stroma::Durable),*> __stroma::Durable for #name<#(#params),*> {}

            // It takes what its first node takes. Stated as "whatever the
            // first node accepts" rather than `Accepts<N0::Input>`: a mismatch
            // then fails the first node's own `Accepts` bound (E0277, with its
            // message) instead of an associated-type equality (E0271, without
            // it), and that error names the first node, not this struct.
            impl<__T, #(#params: __stroma::Node),*> __stroma::Accepts<__T> for #name<#(#params),*>
            where
                #first: __stroma::Accepts<__T>,
            {
                #[inline(always)]
                fn accept(value: __T) -> <#first as __stroma::Node>::Input {
                    <#first as __stroma::Accepts<__T>>::accept(value)
                }
            }
        }
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
