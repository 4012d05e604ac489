//! `pipeline![a, b, c]`: one generated struct per pipeline, with one async
//! body, and a link check placed on each node after the first.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

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

    // Each node after the first must accept the previous node's output.
    let run_bounds = params.iter().enumerate().map(|(i, param)| {
        if i == 0 {
            quote!(#param: __stroma::RunsWith<__M>)
        } else {
            let prev = &params[i - 1];
            quote!(#param: __stroma::RunsWith<__M> + __stroma::Accepts<<#prev as __stroma::Node>::Output>)
        }
    });
    // Each node runs knowing its first slot: the pipeline's own first slot
    // plus the slots of the nodes before it (constants, folded away).
    let steps = params.iter().zip(fields.iter()).enumerate().map(|(i, (param, field))| {
        let before = &params[..i];
        let slot = quote!(__slot #(+ <#before as __stroma::Node>::SLOTS)*);
        if i == 0 {
            quote!(let __value = self.#field.run::<__O>(input, cx, #slot).await?;)
        } else {
            let prev = &params[i - 1];
            quote! {
                let __value = self.#field.run::<__O>(
                    <#param as __stroma::Accepts<<#prev as __stroma::Node>::Output>>::accept(__value),
                    cx,
                    #slot,
                ).await?;
            }
        }
    });
    // Every element must be a node: the first is checked here, each other one
    // by its link (`Accepts` implies `Node`), so each is reported once.
    let lets = values
        .iter()
        .zip(nodes.iter())
        .enumerate()
        .map(|(i, (value, node))| {
            if i == 0 {
                quote_spanned! {node.span()=> let #value = __first_node(#node);}
            } else {
                quote!(let #value = #node;)
            }
        });
    let links = nodes.iter().enumerate().skip(1).map(|(i, node)| {
        let prev = &values[i - 1];
        let next = &values[i];
        quote_spanned! {node.span()=> let #next = __stroma::link(&#prev, #next);}
    });

    let node_impls = list.node_impls(
        &quote::format_ident!("__StromaPipeline"),
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

        // `__first_node(value)` is `value`, if it is a node. Its type is
        // written through the node's `Input`, which keeps the first link from
        // reporting a value that is not a node a second time.
        trait __First {
            type First;
            fn first(self) -> Self::First;
        }
        impl<A, B> __First for (A, ::core::marker::PhantomData<B>) {
            type First = A;
            #[inline(always)]
            fn first(self) -> A {
                self.0
            }
        }
        #[inline(always)]
        fn __first_node<N: __stroma::Node>(
            node: N,
        ) -> <(N, ::core::marker::PhantomData<<N as __stroma::Node>::Input>) as __First>::First {
            __First::first((node, ::core::marker::PhantomData::<<N as __stroma::Node>::Input>))
        }

        #[derive(Clone, Copy)]
        struct __StromaPipeline<#(#params),*>(#(#params),*);

        #node_impls

        impl<__M: ::core::marker::Send + 'static, #(#run_bounds),*> __stroma::RunsWith<__M>
            for __StromaPipeline<#(#params),*>
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
        #(#links)*
        __StromaPipeline(#(#values),*)
    }}
}
