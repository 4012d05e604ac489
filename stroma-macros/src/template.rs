//! `template!("...")`: a template checked when the crate compiles, with
//! the same parser the runtime uses, giving a `Template`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Path};

use crate::forms::parse_crate_prefix;

/// `[crate = path;] "template"`
struct TemplateInput {
    krate: Path,
    source: LitStr,
}

impl Parse for TemplateInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate = parse_crate_prefix(input)?;
        let source = input.parse::<LitStr>().map_err(|err| {
            syn::Error::new(
                err.span(),
                "`template!` takes one string literal: `template!(\"Task: $var{task}\")`",
            )
        })?;
        Ok(TemplateInput { krate, source })
    }
}

pub(crate) fn expand(tokens: TokenStream) -> TokenStream {
    let TemplateInput { krate, source } = match syn::parse2::<TemplateInput>(tokens) {
        Ok(input) => input,
        Err(err) => return err.to_compile_error(),
    };
    if let Err(err) = stroma_template::Template::parse(&source.value()) {
        // The whole message, caret line included, on the literal.
        return syn::Error::new(source.span(), format!("invalid template: {err}"))
            .to_compile_error();
    }
    quote! {{
        static __STROMA_TEMPLATE: ::std::sync::LazyLock<#krate::Template> =
            ::std::sync::LazyLock::new(|| #krate::__private::checked_template(#source));
        ::core::clone::Clone::clone(&*__STROMA_TEMPLATE)
    }}
}
