//! `pipeline![a, b, c]`: one generated struct and one async body per pipeline,
//! with a link check placed on each node after the first.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Path, Token};

use crate::forms::default_crate_path;

/// `[crate = path;] node, node, ...`
struct PipelineInput {
    krate: Path,
    nodes: Punctuated<Expr, Token![,]>,
}

impl Parse for PipelineInput {
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
        Ok(PipelineInput { krate, nodes })
    }
}

pub(crate) fn expand(tokens: TokenStream) -> TokenStream {
    match syn::parse2::<PipelineInput>(tokens) {
        Ok(input) if input.nodes.is_empty() => syn::Error::new(
            Span::call_site(),
            "`pipeline![]` needs at least one node: `pipeline![fetch, parse, store]`",
        )
        .to_compile_error(),
        Ok(input) => generate(&input),
        Err(err) => err.to_compile_error(),
    }
}

fn generate(input: &PipelineInput) -> TokenStream {
    let krate = &input.krate;
    let nodes: Vec<&Expr> = input.nodes.iter().collect();
    let count = nodes.len();
    let params: Vec<_> = (0..count).map(|i| format_ident!("N{}", i)).collect();
    // Spanned at the node, so an error about a value points at that node.
    let values: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| format_ident!("__node{}", i, span = node.span()))
        .collect();
    let fields: Vec<_> = (0..count).map(syn::Index::from).collect();
    let first = &params[0];
    let last = &params[count - 1];

    // Each node after the first must accept the previous node's output.
    let run_bounds = params.iter().enumerate().map(|(i, param)| {
        if i == 0 {
            quote!(#param: __stroma::RunsWith<__M>)
        } else {
            let prev = &params[i - 1];
            quote!(#param: __stroma::RunsWith<__M> + __stroma::Accepts<<#prev as __stroma::Node>::Output>)
        }
    });
    let steps = params.iter().zip(&fields).enumerate().map(|(i, (param, field))| {
        if i == 0 {
            quote!(let __value = self.#field.run(input, cx).await?;)
        } else {
            let prev = &params[i - 1];
            quote! {
                let __value = self.#field.run(
                    <#param as __stroma::Accepts<<#prev as __stroma::Node>::Output>>::accept(__value),
                    cx,
                ).await?;
            }
        }
    });
    let lets = values
        .iter()
        .zip(&nodes)
        .map(|(value, node)| quote!(let #value = #node;));
    let links = nodes.iter().enumerate().skip(1).map(|(i, node)| {
        let prev = &values[i - 1];
        let next = &values[i];
        quote_spanned! {node.span()=> let #next = __stroma::link(&#prev, #next);}
    });

    quote! {{
        use #krate::__private as __stroma;

        #[derive(Clone, Copy)]
        struct __StromaPipeline<#(#params),*>(#(#params),*);

        impl<#(#params: __stroma::Node),*> __stroma::Node for __StromaPipeline<#(#params),*> {
            type Input = <#first as __stroma::Node>::Input;
            type Output = <#last as __stroma::Node>::Output;
            #[inline]
            fn name(&self) -> &'static str {
                "pipeline"
            }
            #[inline]
            fn leaf_count(&self) -> usize {
                0 #(+ self.#fields.leaf_count())*
            }
        }

        impl<#(#params: __stroma::Node),*> __stroma::Accepts<<#first as __stroma::Node>::Input>
            for __StromaPipeline<#(#params),*>
        {
            type Checked = Self;
            #[inline(always)]
            fn accept(value: <#first as __stroma::Node>::Input) -> <#first as __stroma::Node>::Input {
                value
            }
        }

        impl<__M: ::core::marker::Send + 'static, #(#run_bounds),*> __stroma::RunsWith<__M>
            for __StromaPipeline<#(#params),*>
        {
            fn run<'a>(
                &'a self,
                input: <#first as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
            ) -> impl __stroma::Future<
                Output = ::core::result::Result<<#last as __stroma::Node>::Output, __stroma::NodeFailure>,
            > + ::core::marker::Send + 'a {
                async move {
                    #(#steps)*
                    ::core::result::Result::Ok(__value)
                }
            }
        }

        #(#lets)*
        #(#links)*
        __StromaPipeline(#(#values),*)
    }}
}
