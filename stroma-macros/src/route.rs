//! `route![classify => { Pattern(payload) => node, .. }]`: a node that runs
//! `classify`, matches its output against the arms' patterns (Rust's own
//! `match`, so a missing variant is rustc's non-exhaustive error) and runs
//! the arm's node on what the pattern binds.
//!
//! The patterns are compiled once, at the call, into a plain function from
//! the classified value to a generated enum with one variant per arm; the
//! generated node is generic over that enum's payload types, so its `run`
//! needs to know nothing of the user's enum.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Pat, Path, Token, braced};

use crate::checks;
use crate::forms::parse_crate_prefix;

/// `[crate = path;] classify => { arm, .. }`
struct RouteInput {
    krate: Path,
    classify: Expr,
    arms: Vec<Arm>,
}

/// `Pattern [if guard] => node`
struct Arm {
    pat: Pat,
    guard: Option<Expr>,
    node: Expr,
}

impl Parse for RouteInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate = parse_crate_prefix(input)?;
        let classify = Expr::parse_without_eager_brace(input)?;
        input.parse::<Token![=>]>()?;
        let body;
        braced!(body in input);
        let mut arms = Vec::new();
        while !body.is_empty() {
            let pat = Pat::parse_multi_with_leading_vert(&body)?;
            let guard = if body.peek(Token![if]) {
                body.parse::<Token![if]>()?;
                Some(body.parse::<Expr>()?)
            } else {
                None
            };
            body.parse::<Token![=>]>()?;
            let node = body.parse::<Expr>()?;
            arms.push(Arm { pat, guard, node });
            if body.is_empty() {
                break;
            }
            body.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the arms of `route!`"));
        }
        Ok(RouteInput {
            krate,
            classify,
            arms,
        })
    }
}

pub(crate) fn expand(tokens: TokenStream) -> TokenStream {
    let input = match syn::parse2::<RouteInput>(tokens) {
        Ok(input) => input,
        Err(err) => return err.to_compile_error(),
    };
    if input.arms.is_empty() {
        return syn::Error::new(
            Span::call_site(),
            "`route!` needs at least one arm: `route![classify => { Kind::A(x) => handle_a, .. }]`",
        )
        .to_compile_error();
    }
    generate(&input)
}

fn generate(input: &RouteInput) -> TokenStream {
    let RouteInput {
        krate,
        classify,
        arms,
    } = input;
    let count = arms.len();
    let arm_params: Vec<Ident> = (0..count).map(|i| format_ident!("A{}", i)).collect();
    let payload_params: Vec<Ident> = (0..count).map(|i| format_ident!("P{}", i)).collect();
    let variants: Vec<Ident> = (0..count).map(|i| format_ident!("Arm{}", i)).collect();
    let arm_values: Vec<Ident> = arms
        .iter()
        .enumerate()
        .map(|(i, arm)| format_ident!("__arm{}", i, span = arm.node.span()))
        .collect();
    let fields: Vec<syn::Index> = (1..=count).map(syn::Index::from).collect();
    let split_field = syn::Index::from(count + 1);
    let labels: Vec<String> = arms.iter().map(|arm| label(&arm.pat)).collect();
    let first_arm = &arm_params[0];

    // The patterns, each giving its arm's variant with what it binds.
    let split_arms = arms.iter().zip(&variants).map(|(arm, variant)| {
        let pat = &arm.pat;
        let guard = arm.guard.as_ref().map(|guard| quote!(if #guard));
        let payload = payload(&arm.pat);
        quote!(#pat #guard => __Routed::#variant(#payload),)
    });
    let split = quote_spanned! {classify.span()=>
        __stroma::route_split(&__classify, |__value| match __value {
            #(#split_arms)*
        })
    };

    // One check per arm, on the arm: its node takes the payload, and
    // (after the first) gives what the first gives. The payload's type is
    // read off the split function by an accessor per arm, which asks nothing.
    let payload_readers = (0..count).map(|i| {
        let reader = format_ident!("__payload{}", i);
        let payload = &payload_params[i];
        quote! {
            #[inline(always)]
            fn #reader<__V, #(#payload_params),*>(
                _split: &fn(__V) -> __Routed<#(#payload_params),*>,
            ) -> ::core::marker::PhantomData<#payload> {
                ::core::marker::PhantomData
            }
        }
    });
    let takes_checks = (0..count).map(|i| {
        let value = &arm_values[i];
        let reader = format_ident!("__payload{}", i);
        let node = &arms[i].node;
        quote_spanned! {node.span()=>
            let #value = arm_input(#reader(&__split), #value);
        }
    });
    let gives_checks = (1..count).map(|i| {
        let value = &arm_values[i];
        let first = &arm_values[0];
        let node = &arms[i].node;
        quote_spanned! {node.span()=>
            let #value = arm_output(&#first, #value);
        }
    });

    // Each arm's node runs at its first slot: after the route's own and
    // the classifying node's, and the slots of the arms before it.
    let run_arms = (0..count).map(|i| {
        let variant = &variants[i];
        let field = &fields[i];
        let before = &arm_params[..i];
        quote! {
            __Routed::#variant(__payload) => {
                self.#field
                    .run::<__O>(
                        __payload,
                        cx,
                        __slot + 1 + <C as __stroma::Node>::SLOTS #(+ <#before as __stroma::Node>::SLOTS)*,
                    )
                    .await
            }
        }
    });
    let describe_arms = labels.iter().zip(&fields).map(|(label, field)| {
        quote!(__shape.arm(#label, |__shape| __stroma::Node::describe(&self.#field, __shape));)
    });
    let runs_bounds = arm_params.iter().zip(&payload_params).enumerate().map(|(i, (arm, payload))| {
        if i == 0 {
            quote!(#arm: __stroma::Runnable<__M> + __stroma::Node<Input = #payload>)
        } else {
            quote!(#arm: __stroma::Runnable<__M> + __stroma::Node<Input = #payload, Output = <#first_arm as __stroma::Node>::Output>)
        }
    });
    let arm_nodes = arms.iter().map(|arm| &arm.node);
    // The classifying node and every arm's node are nodes, each checked on
    // itself: one error there, and nothing more from what uses it.
    let classify_value = format_ident!("__classify", span = classify.span());
    let classify_check = checks::is_node(&classify_value, classify);
    let arm_checks = arm_values
        .iter()
        .zip(arms)
        .map(|(value, arm)| checks::is_node(value, &arm.node));
    let imports = checks::imports(krate);
    let root = checks::root();

    let generated = crate::node_list::generated_type_name("Route");
    quote! {{
        use #krate::__private as __stroma;
        #imports

        /// Which arm a classified value took, with what its pattern bound.
        enum __Routed<#(#payload_params),*> {
            #(#variants(#payload_params)),*
        }

        struct #generated<C: __stroma::Node, #(#arm_params,)* #(#payload_params),*>(
            C,
            #(#arm_params,)*
            fn(<C as __stroma::Node>::Output) -> __Routed<#(#payload_params),*>,
        );

        // By hand: a derive would ask the payloads to be `Clone` too.
        impl<C: __stroma::Node, #(#arm_params: ::core::clone::Clone,)* #(#payload_params),*>
            ::core::clone::Clone for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
            fn clone(&self) -> Self {
                #generated(
                    ::core::clone::Clone::clone(&self.0),
                    #(::core::clone::Clone::clone(&self.#fields),)*
                    self.#split_field,
                )
            }
        }

        #[diagnostic::do_not_recommend]
        impl<C: __stroma::Node, #(#arm_params: __stroma::Node,)* #(#payload_params: ::core::marker::Send + 'static),*>
            __stroma::Node for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
            type Input = <C as __stroma::Node>::Input;
            type Output = <#first_arm as __stroma::Node>::Output;
            #[inline]
            fn name(&self) -> &'static str {
                "route"
            }
            fn leaf_count(&self) -> usize {
                self.0.leaf_count() #(+ self.#fields.leaf_count())*
            }
            const MAY_CHANGE_MODEL: bool = <C as __stroma::Node>::MAY_CHANGE_MODEL
                #(|| <#arm_params as __stroma::Node>::MAY_CHANGE_MODEL)*;
            const USES_CONTEXT: bool = <C as __stroma::Node>::USES_CONTEXT
                #(|| <#arm_params as __stroma::Node>::USES_CONTEXT)*;
            const ASKS_PATHS: bool = <C as __stroma::Node>::ASKS_PATHS
                #(|| <#arm_params as __stroma::Node>::ASKS_PATHS)*;
            const SLOTS: u32 = 1 + <C as __stroma::Node>::SLOTS
                #(+ <#arm_params as __stroma::Node>::SLOTS)*;
            fn describe(&self, __shape: &mut __stroma::ShapeBuilder) {
                __shape.route(__stroma::Node::name(self), |__shape| {
                    __stroma::Node::describe(&self.0, __shape);
                    #(#describe_arms)*
                });
            }
            #[inline]
            fn input_json(
                input: &<C as __stroma::Node>::Input,
            ) -> ::core::option::Option<__stroma::JsonValue> {
                <C as __stroma::Node>::input_json(input)
            }
        }

        // An error about what it takes names its classifying node.
        impl<C: __stroma::Node + #root::FirstNode, #(#arm_params,)* #(#payload_params),*>
            #root::FirstNode for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
            type First = <C as #root::FirstNode>::First;
        }

        // Durable when the classifying node and every arm are.
        impl<C: __stroma::Node + __stroma::Durable, #(#arm_params: __stroma::Durable,)* #(#payload_params: ::core::marker::Send + 'static),*>
            __stroma::Durable for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
        }

        // It takes what its classifying node takes.
        impl<__T, C: __stroma::Accepts<__T>, #(#arm_params: __stroma::Node,)* #(#payload_params: ::core::marker::Send + 'static),*>
            __stroma::Accepts<__T> for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
            #[inline(always)]
            fn accept(value: __T) -> <C as __stroma::Node>::Input {
                <C as __stroma::Accepts<__T>>::accept(value)
            }
        }

        impl<__M: ::core::marker::Send + 'static, C: __stroma::Runnable<__M>, #(#runs_bounds,)* #(#payload_params: ::core::marker::Send + 'static),*>
            __stroma::Runnable<__M> for #generated<C, #(#arm_params,)* #(#payload_params),*>
        {
            fn run<'a, __O: __stroma::Observer>(
                &'a self,
                input: <C as __stroma::Node>::Input,
                cx: &'a mut __stroma::Cx<__M>,
                __slot: u32,
            ) -> impl __stroma::Future<
                Output = ::core::result::Result<<#first_arm as __stroma::Node>::Output, __stroma::NodeFailure>,
            > + ::core::marker::Send + 'a {
                async move {
                    let __scope = __stroma::enter_scope::<__O, __M>(cx, __slot);
                    let __outcome = async {
                        let __classified = self.0.run::<__O>(input, cx, __slot + 1).await?;
                        match (self.#split_field)(__classified) {
                            #(#run_arms)*
                        }
                    }
                    .await;
                    __stroma::leave_scope::<__O, __M>(cx, __scope, __outcome.as_ref().err());
                    __outcome
                }
            }
        }

        #(#payload_readers)*

        // Named plainly: a mismatch's note says "required by a bound in `arm_input`".
        #[inline(always)]
        fn arm_input<P, A>(
            _payload: ::core::marker::PhantomData<P>,
            arm: A,
        ) -> <<A as __stroma::Node>::Input as __stroma::PayloadFits<P, A>>::Checked
        where
            A: __stroma::Node,
            <A as __stroma::Node>::Input: __stroma::PayloadFits<P, A>,
        {
            <<A as __stroma::Node>::Input as __stroma::PayloadFits<P, A>>::checked(arm)
        }

        #[inline(always)]
        fn arm_output<F, A>(
            _first: &F,
            arm: A,
        ) -> <<A as __stroma::Node>::Output as __stroma::OutputFits<<F as __stroma::Node>::Output, A>>::Checked
        where
            F: __stroma::Node,
            A: __stroma::Node,
            <A as __stroma::Node>::Output: __stroma::OutputFits<<F as __stroma::Node>::Output, A>,
        {
            <<A as __stroma::Node>::Output as __stroma::OutputFits<<F as __stroma::Node>::Output, A>>::checked(arm)
        }

        let #classify_value = #classify;
        #(let #arm_values = #arm_nodes;)*
        #classify_check
        #(#arm_checks)*
        let __split = #split;
        #(#takes_checks)*
        #(#gives_checks)*
        #generated(__classify, #(#arm_values,)* __split)
    }}
}

/// What an arm's pattern binds, as its node's input: `()` for nothing, the
/// binding for one, a tuple in written order for several.
fn payload(pat: &Pat) -> TokenStream {
    let mut names = Vec::new();
    bindings(pat, &mut names);
    match names.as_slice() {
        [] => quote!(()),
        [one] => one.to_token_stream(),
        many => quote!((#(#many),*)),
    }
}

/// The names `pat` binds, in written order. An identifier starting with an
/// upper-case letter is taken for a constant or unit variant, as rustc does
/// by convention.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(ident) => {
            let name = ident.ident.to_string();
            let looks_like_a_path = name.starts_with(|c: char| c.is_uppercase());
            if ident.subpat.is_none() && looks_like_a_path {
                return;
            }
            out.push(ident.ident.clone());
            if let Some((_, sub)) = &ident.subpat {
                bindings(sub, out);
            }
        }
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(strukt) => strukt.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(reference) => bindings(&reference.pat, out),
        Pat::Paren(paren) => bindings(&paren.pat, out),
        Pat::Type(typed) => bindings(&typed.pat, out),
        // Every alternative binds the same names.
        Pat::Or(or) => {
            if let Some(first) = or.cases.first() {
                bindings(first, out);
            }
        }
        _ => {}
    }
}

/// An arm's label in the run tree's shape and in diagrams: the variant's
/// path (`Ticket::Bug`), or the pattern as written.
fn label(pat: &Pat) -> String {
    let path = match pat {
        Pat::TupleStruct(tuple) => Some(&tuple.path),
        Pat::Struct(strukt) => Some(&strukt.path),
        Pat::Path(path) => Some(&path.path),
        _ => None,
    };
    match path {
        Some(path) => path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect::<Vec<_>>()
            .join("::"),
        None => pat.to_token_stream().to_string(),
    }
}
