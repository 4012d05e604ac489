//! Generates a node: the unit struct, its `call` fn and the trait impls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, LitStr, Type};

use super::args::NodeArgs;
use super::signature::{ModelParam, NodeSignature};

/// The fn `f` becomes a unit struct `f` (the value put in `pipeline!`) whose
/// associated fn `f::call` is the original function, kept callable for tests.
pub(crate) fn node(args: &NodeArgs, sig: &NodeSignature, item: ItemFn) -> TokenStream {
    let krate = args.crate_path();
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
    let (docs, other_attrs): (Vec<_>, Vec<_>) =
        attrs.into_iter().partition(|a| a.path().is_ident("doc"));

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

    let call_fn = syn::Signature {
        ident: format_ident!("call", span = ident.span()),
        ..fn_sig
    };

    let run_impl = run_impl(&ident, &name, sig);

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

        const _: () = {
            use #krate::__private as __stroma;
            #(#declared_checks)*

            impl __stroma::Node for #ident {
                type Input = #input;
                type Output = #output;
                #[inline]
                fn name(&self) -> &'static str {
                    #name
                }
            }

            impl __stroma::Accepts<#input> for #ident {
                type Checked = Self;
                #[inline(always)]
                fn accept(value: #input) -> #input {
                    value
                }
            }

            #run_impl
        };
    }
}

/// A compile-time check that the attribute's type is the signature's, pointing at the attribute.
fn same_type(declared: &Type, actual: &Type) -> TokenStream {
    quote_spanned! {declared.span()=>
        const _: () = __stroma::same_type::<#declared, #actual>();
    }
}

/// `RunsWith<M>` for every model, or for the one model the function takes.
fn run_impl(ident: &syn::Ident, name: &LitStr, sig: &NodeSignature) -> TokenStream {
    let input = &sig.input;
    let output = &sig.output;
    let (impl_generics, model_ty) = match &sig.model {
        Some(model) => {
            let ty = model.ty();
            (quote!(), quote!(#ty))
        }
        None => (quote!(<__M: ::core::marker::Send + 'static>), quote!(__M)),
    };

    let mut prepare = TokenStream::new();
    let mut args = vec![quote!(input)];
    if sig.takes_context {
        prepare.extend(quote!(let __ctx = __run.node_context(#name);));
        args.push(quote!(&__ctx));
    }
    match &sig.model {
        Some(ModelParam::Exclusive(_)) => args.push(quote!(__model)),
        Some(ModelParam::Shared(_)) => args.push(quote!(&*__model)),
        None => prepare.extend(quote!(let _ = __model;)),
    }
    // Spanned at the error type, so an error type that does not convert into
    // a boxed error is reported there.
    let outcome = match sig.error {
        Some(error) => quote_spanned!(error=> __stroma::from_result(__returned)),
        None => quote!(__stroma::ok(__returned)),
    };

    quote! {
        impl #impl_generics __stroma::RunsWith<#model_ty> for #ident {
            fn run<'a>(
                &'a self,
                input: #input,
                cx: &'a mut __stroma::Cx<#model_ty>,
            ) -> impl __stroma::Future<Output = ::core::result::Result<#output, __stroma::NodeFailure>>
                   + ::core::marker::Send + 'a {
                async move {
                    let (__run, __model) = cx.split();
                    #prepare
                    __run
                        .run_node(#name, async move {
                            let __returned = #ident::call(#(#args),*).await;
                            #outcome
                        })
                        .await
                }
            }
        }
    }
}
