//! Generates a node: the unit struct, its `call` fn and the trait impls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, LitStr, Type};

use super::args::NodeArgs;
use super::signature::{ModelParam, NodeSignature};

/// What every generated node is made of, from the function as written: the
/// unit struct's name and visibility, the node's id, the doc comments (on
/// the struct) apart from the other attributes (on `call`), and `call`, the
/// function itself under that name.
struct NodeParts {
    krate: syn::Path,
    vis: syn::Visibility,
    block: Box<syn::Block>,
    ident: syn::Ident,
    name: LitStr,
    docs: Vec<syn::Attribute>,
    other_attrs: Vec<syn::Attribute>,
    call_fn: syn::Signature,
}

impl NodeParts {
    /// The unit struct, with the function as its `call`: the same for a
    /// node that compiles and one that does not.
    fn item(&self) -> TokenStream {
        let NodeParts {
            vis,
            block,
            ident,
            docs,
            other_attrs,
            call_fn,
            ..
        } = self;
        quote! {
            #(#docs)*
            #[allow(non_camel_case_types)]
            #[derive(Clone, Copy, Debug, Default)]
            #vis struct #ident;

            impl #ident {
                /// The node's function, callable directly (in a unit test, say) without a runner.
                #(#other_attrs)*
                #vis #call_fn #block
            }
        }
    }

    /// Its id as a constant, and itself as its own first node (what a link
    /// error names): inside the generated `const _` block.
    fn names(&self) -> TokenStream {
        let NodeParts { ident, name, .. } = self;
        quote! {
            impl __stroma::LeafName for #ident {
                const NAME: &'static str = #name;
            }

            impl __stroma_root::FirstNode for #ident {
                type First = Self;
            }
        }
    }

    fn of(args: &NodeArgs, item: ItemFn) -> Self {
        let ItemFn {
            attrs,
            vis,
            sig: fn_sig,
            block,
        } = item;
        let ident = fn_sig.ident.clone();
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
        let (docs, other_attrs) = attrs.into_iter().partition(|a| a.path().is_ident("doc"));
        let call_fn = syn::Signature {
            ident: format_ident!("call", span = ident.span()),
            ..fn_sig
        };
        NodeParts {
            krate: args.crate_path(),
            vis,
            block,
            ident,
            name,
            docs,
            other_attrs,
            call_fn,
        }
    }
}

/// The fn `f` becomes a unit struct `f` (the value put in `pipeline!`) whose
/// associated fn `f::call` is the original function, kept callable for tests.
pub(crate) fn node(args: &NodeArgs, sig: &NodeSignature, item: ItemFn) -> TokenStream {
    let parts = NodeParts::of(args, item);
    let (item, names) = (parts.item(), parts.names());
    let NodeParts {
        krate, ident, name, ..
    } = parts;

    let input = &sig.input;
    let output = &sig.output;
    let declared_checks = [
        args.input
            .as_ref()
            .map(|declared| same_type(declared, input)),
        args.output
            .as_ref()
            .map(|declared| same_type(declared, output)),
    ];

    let run_impl = run_impl(&ident, &name, sig, args.updates_context.is_some());
    // Only a `&mut M` parameter or `updates_context` lets a node change the
    // model; a node without either is not merged back from a branch.
    // Only a node given `&Context` can write it or enrich the execution context.
    let uses_context = sig.takes_context;
    let may_change_model =
        matches!(sig.model, Some(ModelParam::Exclusive(_))) || args.updates_context.is_some();

    quote! {
        #item

        const _: () = {
            use #krate::__private as __stroma;
            use #krate as __stroma_root;
            #(#declared_checks)*

            impl __stroma::Node for #ident {
                type Input = #input;
                type Output = #output;
                #[inline]
                fn name(&self) -> &'static str {
                    <Self as __stroma::LeafName>::NAME
                }
                const MAY_CHANGE_MODEL: bool = #may_change_model;
                const USES_CONTEXT: bool = #uses_context;
                fn input_json(input: &#input) -> ::core::option::Option<__stroma::JsonValue> {
                    #[allow(unused_imports)]
                    use __stroma::{InputAsJson as _, InputNotJson as _};
                    (&__stroma::InputProbe(input)).stroma_input_json()
                }
            }

            // Durable when its output can be saved. The bound is made
            // higher-ranked so that an output that cannot be saved leaves the
            // impl out (and `run_durable` names it) instead of failing here.
            impl __stroma::Durable for #ident where for<'__x> #output: __stroma::Saveable {}

            #names

            impl __stroma::Accepts<#input> for #ident {
                #[inline(always)]
                fn accept(value: #input) -> #input {
                    value
                }
            }

            #run_impl
        };
    }
}

/// A node whose attribute or signature is wrong: `errors`, and the node
/// anyway, whose input and output are of an error type (the first error is
/// made inside that type). Its uses in `pipeline!`, `parallel!`, a runner,
/// raise nothing more; the function stays callable as `f::call`.
pub(crate) fn broken(args: &NodeArgs, item: ItemFn, errors: syn::Error) -> TokenStream {
    let parts = NodeParts::of(args, item);
    let (item, names) = (parts.item(), parts.names());
    let NodeParts {
        krate, ident, name, ..
    } = parts;
    let mut errors = errors.into_iter();
    let first = errors
        .next()
        .map(|first| first.to_compile_error())
        .unwrap_or_default();
    let rest: TokenStream = errors.map(|err| err.to_compile_error()).collect();

    quote! {
        #rest

        #item

        const _: () = {
            use #krate::__private as __stroma;
            use #krate as __stroma_root;

            // The first error, made inside the type the node takes and
            // gives: a type that is an error raises nothing where it is used.
            type __Broken = [(); #first];

            impl __stroma::Node for #ident {
                type Input = __Broken;
                type Output = __Broken;
                fn name(&self) -> &'static str {
                    #name
                }
            }

            impl __stroma::Durable for #ident {}

            #names

            impl<__T> __stroma::Accepts<__T> for #ident {
                fn accept(_value: __T) -> __Broken {
                    ::core::unreachable!("a node that did not compile")
                }
            }

            impl<__M: ::core::marker::Send + 'static> __stroma::Runnable<__M> for #ident {
                fn run<'a, __O: __stroma::Observer>(
                    &'a self,
                    _input: __Broken,
                    _cx: &'a mut __stroma::Cx<__M>,
                    _slot: u32,
                ) -> impl __stroma::Future<Output = ::core::result::Result<__Broken, __stroma::NodeFailure>>
                    + ::core::marker::Send + 'a
                {
                    ::core::future::pending()
                }
            }
        };
    }
}

/// A compile-time check that the attribute's type is the signature's, pointing at the attribute.
fn same_type(declared: &Type, actual: &Type) -> TokenStream {
    quote_spanned! {declared.span()=>
        const _: () = __stroma_root::same_type::<#declared, #actual>();
    }
}

/// `Runnable<M>` for every model, or for the one model the function takes.
fn run_impl(ident: &syn::Ident, name: &LitStr, sig: &NodeSignature, updates: bool) -> TokenStream {
    let input = &sig.input;
    let output = &sig.output;
    let (impl_generics, model_ty) = match &sig.model {
        Some(model) => {
            let ty = model.ty();
            (quote!(), quote!(#ty))
        }
        None => (quote!(<__M: ::core::marker::Send + 'static>), quote!(__M)),
    };

    let changes_model = matches!(sig.model, Some(ModelParam::Exclusive(_)));
    // Spanned at the error type, so an error type that does not convert into
    // a boxed error is reported there.
    let outcome = match sig.error {
        Some(error) => quote_spanned!(error=> __stroma_root::node_result(__returned)),
        None => quote!(__stroma::ok(__returned)),
    };
    // Keeps a copy of the output when its type allows (chosen by autoref,
    // where the output's type is concrete), readable as JSON when `Serialize`.
    let keep = quote! {
        |__output: &#output| {
            #[allow(unused_imports)]
            use __stroma::{AsJson as _, KeepCloned as _, KeepNothing as _, NoJson as _};
            (&__stroma::KeepProbe(__output))
                .stroma_keep((&__stroma::JsonProbe::<#output>::new()).stroma_to_json())
        }
    };

    let codec = quote! {{
        #[allow(unused_imports)]
        use __stroma::{NoCodec as _, SaveCodec as _};
        (&__stroma::CodecProbe::<#output>::new()).stroma_codec()
    }};
    let changes_model_now = changes_model || updates;

    let body = if sig.model.is_none() {
        let future = if sig.takes_context {
            quote! {{
                let __ctx = __run.node_context(#name, __slot);
                async move { #ident::call(input, &__ctx).await }
            }}
        } else {
            // No state of its own: the function's future itself.
            quote!(#ident::call(input))
        };
        quote! {
            __O::node(cx, __slot, input, #codec, #keep, move |cx: &'a mut __stroma::Cx<#model_ty>, input: #input| {
                let (__run, _) = cx.split();
                let __future = #future;
                __O::leaf(__run, __slot, __future, |__returned| #outcome, #keep)
            })
        }
    } else {
        let mut args = vec![quote!(input)];
        if sig.takes_context {
            args.push(quote!(&__ctx));
        }
        match &sig.model {
            Some(ModelParam::Exclusive(_)) => args.push(quote!(&mut *__model)),
            Some(ModelParam::Shared(_)) => args.push(quote!(&*__model)),
            None => {}
        }
        let call = quote!(#ident::call(#(#args),*));
        let prepare_ctx = sig
            .takes_context
            .then(|| quote!(let __ctx = __run.node_context(#name, __slot);));
        // A node that may change the model: a panic becomes its error, the
        // model is validated after it, and a guard puts the model back on
        // any failure, a panic while unwinding, or the future being dropped.
        // The types are written out so that a model or output that cannot be
        // merged is reported at its type in the signature.
        let merge = updates.then(|| {
            quote! {
                __stroma_root::merge_output::<#model_ty, #output>(&mut *__model, &__output, |__next| {
                    (&__stroma::ValidateProbe(__next)).stroma_validate()
                })?;
            }
        });
        let validate = changes_model
            .then(|| quote!((&__stroma::ValidateProbe(&*__model)).stroma_validate()?;));
        let node_body = quote! {
            async {
                let __returned = __stroma::catch_panic(#call).await?;
                let __output = #outcome?;
                #merge
                #validate
                ::core::result::Result::Ok(__output)
            }
        };
        let run = quote!(__O::leaf(__run, __slot, #node_body, |__outcome| __outcome, #keep).await);
        let guarded = if changes_model || updates {
            // Spanned at the model's type: a model that cannot be copied is reported there.
            let model_span = sig.model.as_ref().map_or(ident.span(), |m| m.ty().span());
            let snapshot = quote_spanned!(model_span=>
                <#model_ty as __stroma_root::ModelSnapshot>::model_snapshot(&*__model)
            );
            quote! {
                let __saved = #snapshot;
                let mut __guard = __stroma::ModelGuard::new(__model, __saved);
                let __model = __guard.model_mut();
                let __result = #run;
                // Only a durable run saves the model: the others skip this at compile time.
                let __result = if __O::JOURNALED {
                    __stroma::model_saveable(&*__run, __slot, &*__guard.model_mut(), __result)
                } else {
                    __result
                };
                __guard.settle(&__result);
                __result
            }
        } else {
            quote! {
                let __model = &*__model;
                #run
            }
        };
        quote! {
            #[allow(unused_imports)]
            use __stroma::{ValidateAlways as _, ValidateWithModel as _};
            __O::node(
                cx,
                __slot,
                input,
                #codec.changing_model(#changes_model_now),
                #keep,
                move |cx: &'a mut __stroma::Cx<#model_ty>, input: #input| async move {
                    let (__run, __model) = cx.split();
                    #prepare_ctx
                    #guarded
                },
            )
        }
    };

    quote! {
        impl #impl_generics __stroma::Runnable<#model_ty> for #ident {
            #[inline(always)]
            fn run<'a, __O: __stroma::Observer>(
                &'a self,
                input: #input,
                cx: &'a mut __stroma::Cx<#model_ty>,
                __slot: u32,
            ) -> impl __stroma::Future<Output = ::core::result::Result<#output, __stroma::NodeFailure>>
                + ::core::marker::Send + 'a
            {
                #body
            }
        }
    }
}
