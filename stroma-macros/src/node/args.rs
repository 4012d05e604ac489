//! The attribute's arguments: `input = I, output = O, name = "..", updates_context, crate = path`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{LitStr, Path, Type};

use crate::forms::default_crate_path;

#[derive(Default)]
pub(crate) struct NodeArgs {
    pub(crate) input: Option<Type>,
    pub(crate) output: Option<Type>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    /// `updates_context`: merge the output into the model by field name.
    pub(crate) updates_context: Option<Path>,
}

impl NodeArgs {
    /// Parses every argument, collecting all errors rather than stopping at
    /// the first, and keeping the arguments that did parse (the crate path,
    /// the name), for a node generated despite the errors.
    pub(crate) fn parse(tokens: TokenStream) -> (Self, Option<syn::Error>) {
        let mut args = NodeArgs::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |err: syn::Error| match &mut errors {
            Some(all) => all.combine(err),
            None => errors = Some(err),
        };
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.clone();
            let result = if key.is_ident("input") {
                set_once(&mut args.input, &key, meta.value()?.parse()?)
            } else if key.is_ident("output") {
                set_once(&mut args.output, &key, meta.value()?.parse()?)
            } else if key.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                if name.value().trim().is_empty() {
                    Err(syn::Error::new_spanned(
                        &name,
                        "a node's name cannot be empty",
                    ))
                } else {
                    set_once(&mut args.name, &key, name)
                }
            } else if key.is_ident("updates_context") {
                if meta.input.peek(syn::Token![=]) {
                    Err(syn::Error::new_spanned(
                        &key,
                        "`updates_context` takes no value: write `#[node(updates_context)]`",
                    ))
                } else {
                    set_once(&mut args.updates_context, &key, key.clone())
                }
            } else if key.is_ident("crate") {
                set_once(&mut args.krate, &key, meta.value()?.parse()?)
            } else {
                let shown = key
                    .get_ident()
                    .map_or_else(|| quote::quote!(#key).to_string(), ToString::to_string);
                Err(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown `#[node]` argument `{shown}`; \
                         expected `input = Type`, `output = Type`, `name = \"..\"`, \
                         `updates_context` or `crate = path`"
                    ),
                ))
            };
            if let Err(err) = result {
                push(err);
                // Skip this argument's value so the next one still parses.
                if meta.input.peek(syn::Token![=]) {
                    let _ = meta.value()?.parse::<syn::Expr>();
                }
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(tokens) {
            push(err);
        }
        (args, errors)
    }

    pub(crate) fn crate_path(&self) -> Path {
        self.krate.clone().unwrap_or_else(default_crate_path)
    }
}

fn set_once<T>(slot: &mut Option<T>, key: &Path, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new_spanned(
            key,
            format!(
                "`{}` is given twice",
                key.get_ident().map(ToString::to_string).unwrap_or_default()
            ),
        ));
    }
    *slot = Some(value);
    Ok(())
}
