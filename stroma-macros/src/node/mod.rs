//! `#[node]`: parse the attribute, read the signature, generate the node.

mod args;
mod generate;
mod signature;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Expands `#[node(args)] item`. On errors in the attribute or the
/// signature, still makes the node (see [`generate::broken`]), so that the
/// error is the only one: the node's uses raise nothing more.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let (parsed_args, args_error) = args::NodeArgs::parse(args);
    let item_fn = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(item_fn)) => item_fn,
        Ok(other) => {
            let (token, kind) = item_kind(&other);
            let mut err = syn::Error::new_spanned(
                token,
                format!("`#[node]` goes on an `async fn`, not on {kind}"),
            );
            if let Some(args_err) = args_error {
                err.combine(args_err);
            }
            return with_errors(item, err);
        }
        Err(err) => return with_errors(item, err),
    };
    let signature = signature::NodeSignature::read(&item_fn.sig).and_then(|signature| {
        match (&parsed_args.updates_context, &signature.model) {
            (Some(updates), None) if args_error.is_none() => Err(syn::Error::new_spanned(
                updates,
                "an `updates_context` node merges its output into the model, so it takes \
                 the model: add a parameter `model: &M` (or `&mut M`) naming the model's type",
            )),
            _ => Ok(signature),
        }
    });
    // A method (`self`) is inside an `impl` block, where no node can be
    // made: the item stays as it is, beside the errors.
    let in_impl = item_fn.sig.receiver().is_some();
    match (args_error, signature) {
        (None, Ok(signature)) => generate::node(&parsed_args, &signature, item_fn),
        (Some(mut a), Err(b)) if in_impl => {
            a.combine(b);
            with_errors(item, a)
        }
        (Some(e), _) | (_, Err(e)) if in_impl => with_errors(item, e),
        (Some(mut a), Err(b)) => {
            a.combine(b);
            generate::broken(&parsed_args, item_fn, a)
        }
        (Some(e), _) | (_, Err(e)) => generate::broken(&parsed_args, item_fn, e),
    }
}

fn with_errors(item: TokenStream, err: syn::Error) -> TokenStream {
    let mut out = err.to_compile_error();
    out.extend(item);
    out
}

/// The token that says what kind of item this is (`struct`, `impl`, ...), to
/// point at, and that kind in words.
fn item_kind(item: &syn::Item) -> (TokenStream, &'static str) {
    match item {
        syn::Item::Struct(i) => (i.struct_token.to_token_stream(), "a `struct`"),
        syn::Item::Enum(i) => (i.enum_token.to_token_stream(), "an `enum`"),
        syn::Item::Impl(i) => (i.impl_token.to_token_stream(), "an `impl` block"),
        syn::Item::Trait(i) => (i.trait_token.to_token_stream(), "a `trait`"),
        syn::Item::Const(i) => (i.const_token.to_token_stream(), "a `const`"),
        syn::Item::Static(i) => (i.static_token.to_token_stream(), "a `static`"),
        syn::Item::Mod(i) => (i.mod_token.to_token_stream(), "a `mod`"),
        syn::Item::Type(i) => (i.type_token.to_token_stream(), "a type alias"),
        syn::Item::Use(i) => (i.use_token.to_token_stream(), "a `use`"),
        other => (other.to_token_stream(), "this item"),
    }
}
