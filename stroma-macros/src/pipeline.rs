//! `pipeline![a, b, c]`: one generated struct per pipeline, with a general
//! and a direct async body, and a link check placed on each node after the first.

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
    let steps = params.iter().zip(fields.iter()).enumerate().map(|(i, (param, field))| {
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
    let direct_steps = params.iter().zip(fields.iter()).enumerate().map(|(i, (param, field))| {
        if i == 0 {
            quote!(let __value = self.#field.run_direct::<__R>(input, cx).await?;)
        } else {
            let prev = &params[i - 1];
            quote! {
                let __value = self.#field.run_direct::<__R>(
                    <#param as __stroma::Accepts<<#prev as __stroma::Node>::Output>>::accept(__value),
                    cx,
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

    // What `run` and `run_direct` return.
    let returns = quote! {
        impl __stroma::Future<
            Output = ::core::result::Result<<#last as __stroma::Node>::Output, __stroma::NodeFailure>,
        > + ::core::marker::Send + 'a
    };

    let node_impls = list.node_impls(
        &quote::format_ident!("__StromaPipeline"),
        quote!(<#last as __stroma::Node>::Output),
        &default_name,
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
            fn run<'a>(
                &'a self,
                input: <#first as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
            ) -> #returns {
                // The general path: the runner, loops and branches take the
                // direct one (`run_direct`) when nothing but records watches the run.
                async move {
                    #(#steps)*
                    ::core::result::Result::Ok(__value)
                }
            }

            #[inline]
            fn run_direct<'a, __R: __stroma::RecordMode>(
                &'a self,
                input: <#first as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
            ) -> #returns {
                async move {
                    #(#direct_steps)*
                    ::core::result::Result::Ok(__value)
                }
            }
        }

        #(#lets)*
        #(#links)*
        __StromaPipeline(#(#values),*)
    }}
}
