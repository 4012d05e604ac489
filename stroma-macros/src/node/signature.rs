//! Reads a node function's signature: the input, the output, and what to inject.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, GenericParam, PathArguments, ReturnType, Signature, Type};

use crate::forms::ACCEPTED_FORMS;

/// How the run's model reaches the function.
pub(crate) enum ModelParam {
    Shared(Type),
    Exclusive(Type),
}

impl ModelParam {
    pub(crate) fn ty(&self) -> &Type {
        match self {
            ModelParam::Shared(ty) | ModelParam::Exclusive(ty) => ty,
        }
    }
}

pub(crate) struct NodeSignature {
    pub(crate) input: Type,
    pub(crate) output: Type,
    /// `Some` when the return type is `Result<output, E>`: where `E` is
    /// written (or the `Result` type, for an alias such as `io::Result<T>`),
    /// for an error about `E` to point at.
    pub(crate) error: Option<Span>,
    pub(crate) takes_context: bool,
    pub(crate) model: Option<ModelParam>,
}

/// What one parameter after the input asks for.
enum Injected {
    Context,
    Model(Box<ModelParam>),
}

impl NodeSignature {
    /// Reads `sig`, reporting every problem it has at once.
    pub(crate) fn read(sig: &Signature) -> syn::Result<Self> {
        let mut errors = Errors::default();
        if sig.asyncness.is_none() {
            errors.push(syn::Error::new_spanned(
                sig.fn_token,
                "a node must be an `async fn`: add `async` before `fn`",
            ));
        }
        if let Some(constness) = &sig.constness {
            errors.push(syn::Error::new_spanned(
                constness,
                "a node cannot be a `const fn`",
            ));
        }
        if let Some(abi) = &sig.abi {
            errors.push(syn::Error::new_spanned(abi, "a node cannot declare an ABI"));
        }
        if let Some(variadic) = &sig.variadic {
            errors.push(syn::Error::new_spanned(
                variadic,
                "a node cannot be variadic",
            ));
        }
        for param in &sig.generics.params {
            if !matches!(param, GenericParam::Lifetime(_)) {
                errors.push(syn::Error::new_spanned(
                    param,
                    "a node cannot have generic parameters: a node has one concrete input \
                     and output type, so `pipeline!` can check its links; \
                     write one node per type, or a generic helper fn that nodes call",
                ));
            }
        }
        if let Some(where_clause) = &sig.generics.where_clause {
            errors.push(syn::Error::new_spanned(
                where_clause,
                "a node cannot have a `where` clause: its types are concrete",
            ));
        }

        let mut params = sig.inputs.iter().peekable();
        let receiver = match params.peek() {
            Some(FnArg::Receiver(receiver)) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "a node is a free `async fn`, not a method: remove `self` and \
                     take the node's input as the first parameter",
                ));
                // Read the rest as if `self` were not there, so it is the only error.
                params.next()
            }
            _ => None,
        };
        let input = match params.next() {
            Some(FnArg::Typed(first)) => {
                if let Type::Reference(reference) = &*first.ty {
                    errors.push(syn::Error::new_spanned(
                        reference,
                        "a node takes its input by value: the previous node's output \
                         moves into it; use an owned type (for shared data, `Arc<T>`)",
                    ));
                }
                Some((*first.ty).clone())
            }
            Some(FnArg::Receiver(receiver)) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "`self` can only be the first parameter, and a node takes none",
                ));
                None
            }
            None if receiver.is_some() => None,
            None => {
                errors.push(syn::Error::new(
                    sig.paren_token.span.join(),
                    format!("a node takes its input as its first parameter\n{ACCEPTED_FORMS}"),
                ));
                None
            }
        };

        let mut takes_context = false;
        let mut model = None;
        for (position, param) in params.enumerate() {
            let FnArg::Typed(typed) = param else {
                errors.push(syn::Error::new_spanned(
                    param,
                    "`self` can only be the first parameter, and a node takes none",
                ));
                continue;
            };
            if position >= 2 {
                // Reported at the first parameter too many only.
                if position == 2 {
                    errors.push(syn::Error::new_spanned(
                        typed,
                        format!("a node takes at most three parameters\n{ACCEPTED_FORMS}"),
                    ));
                }
                continue;
            }
            match classify(&typed.ty) {
                Ok(Injected::Context) if takes_context => errors.push(syn::Error::new_spanned(
                    &typed.ty,
                    "the context is already taken by an earlier parameter",
                )),
                Ok(Injected::Context) if model.is_some() => errors.push(syn::Error::new_spanned(
                    &typed.ty,
                    format!("`&Context` comes before the model\n{ACCEPTED_FORMS}"),
                )),
                Ok(Injected::Context) => takes_context = true,
                Ok(Injected::Model(_)) if model.is_some() => errors.push(syn::Error::new_spanned(
                    &typed.ty,
                    "the model is already taken by an earlier parameter",
                )),
                Ok(Injected::Model(param)) => model = Some(*param),
                Err(err) => errors.push(err),
            }
        }

        let (output, error) = read_output(&sig.output);
        errors.finish()?;
        Ok(NodeSignature {
            input: input.expect("no input is an error, returned above"),
            output,
            error,
            takes_context,
            model,
        })
    }
}

/// Tells a context parameter from a model parameter, or rejects it.
fn classify(ty: &Type) -> syn::Result<Injected> {
    let Type::Reference(reference) = ty else {
        let hint = if names_context(ty) {
            "take the context by reference: `ctx: &Context`"
        } else {
            "the parameters after the input are references: `&Context`, `&mut M` or `&M`"
        };
        return Err(syn::Error::new_spanned(
            ty,
            format!("{hint}\n{ACCEPTED_FORMS}"),
        ));
    };
    if names_context(&reference.elem) {
        if let Some(mutability) = reference.mutability {
            return Err(syn::Error::new_spanned(
                mutability,
                "take the context as `&Context`, not `&mut Context`: it is shared by \
                 the run's nodes, and its methods (`insert`, `update_named`, ..) write to it",
            ));
        }
        return Ok(Injected::Context);
    }
    if let Some(lifetime) = &reference.lifetime {
        return Err(syn::Error::new_spanned(
            lifetime,
            "leave the model's lifetime out: `&mut M` or `&M`",
        ));
    }
    let model_ty = (*reference.elem).clone();
    Ok(Injected::Model(Box::new(
        if reference.mutability.is_some() {
            ModelParam::Exclusive(model_ty)
        } else {
            ModelParam::Shared(model_ty)
        },
    )))
}

/// `Context`, `stroma::Context`, ...: a path ending in `Context` with no arguments.
fn names_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Context" && last.arguments.is_none()),
        Type::Paren(inner) => names_context(&inner.elem),
        Type::Group(inner) => names_context(&inner.elem),
        _ => false,
    }
}

/// The node's output type and, if the function returns a `Result` of it,
/// where its error type is.
fn read_output(output: &ReturnType) -> (Type, Option<Span>) {
    let ty = match output {
        ReturnType::Default => return (syn::parse_quote!(()), None),
        ReturnType::Type(_, ty) => ty,
    };
    if let Type::Path(path) = &**ty
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
    {
        let error = args
            .args
            .iter()
            .nth(1)
            .map_or_else(|| ty.span(), Spanned::span);
        return (ok.clone(), Some(error));
    }
    ((**ty).clone(), None)
}

/// Collects errors so one compile shows them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
