//! `parallel![a, b, c]`: one generated struct whose async body runs every
//! branch concurrently on a copy of the input and joins them in declaration order.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::checks;
use crate::node_list::{self, NodeList};

pub(crate) fn expand(tokens: TokenStream) -> TokenStream {
    node_list::expand(
        tokens,
        "`parallel![]` needs at least one branch: `parallel![fetch_a, fetch_b]`",
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
    let forks: Vec<_> = (0..count).map(|i| format_ident!("__branch{}", i)).collect();
    let outcomes: Vec<_> = (0..count)
        .map(|i| format_ident!("__outcome{}", i))
        .collect();
    let outputs: Vec<_> = (0..count).map(|i| format_ident!("__output{}", i)).collect();
    let futures: Vec<_> = (0..count).map(|i| format_ident!("__future{}", i)).collect();
    let failures: Vec<_> = (0..count)
        .map(|i| format_ident!("__failure{}", i))
        .collect();
    // The default id: a word, so that paths inside read plainly
    // (`parallel[1].fetch`); `.named(..)` gives another.
    let default_name = "parallel".to_owned();
    // Each branch's first slot: after the `parallel!`'s own and the branches before it.
    let slots: Vec<_> = (0..count)
        .map(|i| {
            let before = &params[..i];
            quote!(__slot + 1 #(+ <#before as __stroma::Node>::SLOTS)*)
        })
        .collect();
    let indices: Vec<_> = (0..count as u32).collect();
    let first = &params[0];

    // Every branch takes the first one's input (checked at the call, where
    // the error names the branch; here it is what lets the body pass it).
    let run_bounds = params.iter().enumerate().map(|(i, param)| {
        if i == 0 {
            quote!(#param: __stroma::Runnable<__M>)
        } else {
            quote!(#param: __stroma::Runnable<__M> + __stroma::Node<Input = <#first as __stroma::Node>::Input>)
        }
    });
    // Every branch but the last gets a clone of the input; the last takes it.
    let inputs = (0..count).map(|i| {
        if i + 1 == count {
            quote!(input)
        } else {
            quote!(::core::clone::Clone::clone(&input))
        }
    });
    // Every branch is a node, checked on each; then each takes what the first
    // takes, checked on it. A failed check is one error there, and leaves a
    // value of an error type that nothing after it reports again.
    let lets = values
        .iter()
        .zip(nodes.iter())
        .map(|(value, node)| quote!(let #value = #node;));
    let node_checks = values
        .iter()
        .zip(nodes.iter())
        .map(|(value, node)| checks::is_node(value, node));
    let branch_checks = nodes.iter().enumerate().skip(1).map(|(i, node)| {
        let head = &values[0];
        let this = &values[i];
        let root = checks::root_at(node.span());
        // All of the call at the node, so rustc reports it there once.
        let head = proc_macro2::Ident::new(&head.to_string(), node.span());
        let name = checks::name_of(this, node.span());
        quote_spanned! {node.span()=> let #this = #root::branch_beside(&#head, #name, #this);}
    });
    let imports = checks::imports(krate);

    let generated = crate::node_list::generated_type_name("Parallel");
    let node_impls = list.node_impls(
        &generated,
        quote!((#(<#params as __stroma::Node>::Output,)*)),
        &default_name,
        quote! {
            const SLOTS: u32 = 1 #(+ <#params as __stroma::Node>::SLOTS)*;
            fn describe(&self, __shape: &mut __stroma::ShapeBuilder) {
                __shape.parallel(__stroma::Node::name(self), |__shape| {
                    #(__shape.branch(|__shape| __stroma::Node::describe(&self.#fields, __shape));)*
                });
            }
        },
    );

    quote! {{
        use #krate::__private as __stroma;
        #imports

        #[derive(Clone, Copy)]
        struct #generated<#(#params),*>(#(#params),*);

        #node_impls

        impl<__M: __stroma::Mergeable, #(#run_bounds),*> __stroma::Runnable<__M>
            for #generated<#(#params),*>
        where
            <#first as __stroma::Node>::Input: ::core::clone::Clone,
        {
            fn run<'a, __O: __stroma::Observer>(
                &'a self,
                input: <#first as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
                __slot: u32,
            ) -> impl __stroma::Future<
                Output = ::core::result::Result<
                    (#(<#params as __stroma::Node>::Output,)*),
                    __stroma::NodeFailure,
                >,
            > + ::core::marker::Send + 'a {
                async move {
                    let __scope = __stroma::enter_scope::<__O, __M>(cx, __slot);
                    #(let mut #forks = __stroma::fork(cx);)*
                    // The branches' futures are dropped at the end of this
                    // block, which ends their borrows of the forks.
                    let (#(#outcomes,)*) = {
                        #(let mut #futures = ::core::pin::pin!(
                            __stroma::run_branch::<__O, _, __M>(
                                &self.#fields, #inputs, &mut #forks, __slot, #indices, #slots,
                            )
                        );)*
                        #(let mut #outcomes = ::core::option::Option::None;)*
                        ::core::future::poll_fn(|__task| {
                            let mut __pending = false;
                            #(__pending |= __stroma::poll_branch(#futures.as_mut(), &mut #outcomes, __task);)*
                            if __pending {
                                ::core::task::Poll::Pending
                            } else {
                                ::core::task::Poll::Ready(())
                            }
                        })
                        .await;
                        (#(#outcomes,)*)
                    };
                    #(let (#outputs, #failures) = __stroma::split_outcome(#outcomes);)*
                    let __settled = __stroma::settle(
                        cx,
                        __slot,
                        __stroma::Node::name(self),
                        &mut [#(__stroma::Settled {
                            name: __stroma::Node::name(&self.#fields),
                            cx: &mut #forks,
                            may_change_model: <#params as __stroma::Node>::MAY_CHANGE_MODEL,
                            uses_context: <#params as __stroma::Node>::USES_CONTEXT,
                            failure: #failures,
                        }),*],
                    );
                    __stroma::leave_scope::<__O, __M>(cx, __scope, __settled.as_ref().err());
                    if let ::core::result::Result::Err(__failure) = __settled {
                        // The outputs of the branches that succeeded are dropped
                        // here, where a panicking `Drop` is told beside the failure.
                        #(let __failure = __stroma::drop_branch_output(cx, __failure, #outputs, #slots);)*
                        return ::core::result::Result::Err(__failure);
                    }
                    ::core::result::Result::Ok((#(__stroma::settled_output(#outputs),)*))
                }
            }
        }

        #(#lets)*
        #(#node_checks)*
        #(#branch_checks)*
        #generated(#(#values),*)
    }}
}
