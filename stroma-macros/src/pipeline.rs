//! `pipeline![a, b, c]`: one generated struct per pipeline, with one async
//! body; a check that each element is a node placed on each, and a link
//! check on each node after the first.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::checks;
use crate::node_list::{self, NodeList};

pub(crate) fn expand(tokens: TokenStream) -> TokenStream {
    node_list::expand(
        tokens,
        "`pipeline![]` needs at least one node: `pipeline![fetch, parse, store]`",
        generate,
    )
}

fn generate(list: &NodeList) -> TokenStream {
    let NodeList {
        krate,
        nodes,
        params,
        values,
        fields,
    } = list;
    let count = nodes.len();
    // The default name lists the nodes as written: `fetch > parse > store`.
    let default_name = list.name(" > ");
    let first = &params[0];
    let last = &params[count - 1];

    // Each node after the first takes the previous node's output (checked
    // at the call, where the error names the node; here it is what lets the
    // body pass one's output to the other).
    let run_bounds = params.iter().enumerate().map(|(i, param)| {
        if i == 0 {
            quote!(#param: __stroma::Runnable<__M>)
        } else {
            let prev = &params[i - 1];
            quote!(#param: __stroma::Runnable<__M> + __stroma::Node<Input = <#prev as __stroma::Node>::Output>)
        }
    });
    // Each node runs knowing its first slot: the pipeline's own first slot
    // plus the slots of the nodes before it (constants, folded away).
    let steps = fields.iter().enumerate().map(|(i, field)| {
        let before = &params[..i];
        let slot = quote!(__slot #(+ <#before as __stroma::Node>::SLOTS)*);
        let value = if i == 0 {
            quote!(input)
        } else {
            quote!(__value)
        };
        quote!(let __value = self.#field.run::<__O>(#value, cx, #slot).await?;)
    });
    // Every element is a node, checked on each; then every link, on the node
    // after it. A check that fails is one error there and leaves a value of
    // an error type, so nothing after it reports the same mistake again.
    let lets = values
        .iter()
        .zip(nodes.iter())
        .map(|(value, node)| quote!(let #value = #node;));
    let node_checks = values
        .iter()
        .zip(nodes.iter())
        .map(|(value, node)| checks::is_node(value, node));
    let links = nodes.iter().enumerate().skip(1).map(|(i, node)| {
        let prev = &values[i - 1];
        let next = &values[i];
        let root = checks::root_at(node.span());
        // All of the call at the node, so rustc reports it there once.
        let prev = proc_macro2::Ident::new(&prev.to_string(), node.span());
        let name = checks::name_of(next, node.span());
        quote_spanned! {node.span()=> let #next = #root::link(&#prev, #name, #next);}
    });
    let imports = checks::imports(krate);

    let generated = crate::node_list::generated_type_name("Pipeline");
    let node_impls = list.node_impls(
        &generated,
        quote!(<#last as __stroma::Node>::Output),
        &default_name,
        // Unnamed, a pipeline is no scope: its nodes belong to the enclosing one.
        quote! {
            const SLOTS: u32 = 0 #(+ <#params as __stroma::Node>::SLOTS)*;
            const TRANSPARENT: bool = true;
            fn describe(&self, __shape: &mut __stroma::ShapeBuilder) {
                #(__stroma::Node::describe(&self.#fields, __shape);)*
            }
        },
    );

    quote! {{
        use #krate::__private as __stroma;
        #imports

        #[derive(Clone, Copy)]
        struct #generated<#(#params),*>(#(#params),*);

        #node_impls

        impl<__M: ::core::marker::Send + 'static, #(#run_bounds),*> __stroma::Runnable<__M>
            for #generated<#(#params),*>
        {
            #[inline]
            fn run<'a, __O: __stroma::Observer>(
                &'a self,
                input: <#first as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
                __slot: u32,
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
        #(#node_checks)*
        #(#links)*
        #generated(#(#values),*)
    }}
}
