//! The checks `#[node]`, `pipeline!` and `parallel!` place on what a user
//! writes, so that each mistake is one compile error, on the token that is
//! wrong, in the user's words.
//!
//! Each check is a call to a small function spanned at the offending token,
//! whose return type is an associated type of the check's trait. When the
//! check fails, that type cannot be found, so the checked value becomes an
//! error type and every later use of it raises nothing more. Traits that
//! compare two types are implemented for "a type and itself", with the type
//! looked at on the `Self` side: a mismatch is then an unimplemented trait
//! (E0277, with the trait's own message) rather than a type inequality.
//!
//! The items are re-exported, hidden, at the crate root (not in
//! `__private`): rustc names them by that path in its notes.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;
use crate::node::Node;

// ---------------------------------------------------------------------------
// "This element is a node."

/// What the autoref probe says of an element of `pipeline!`: a node.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct IsANode;

/// What the autoref probe says of an element of `pipeline!`: not a node.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct NotANode;

/// A verdict and what the check looks at: nothing for a node; for anything
/// else, `Name`, which prints as what the user wrote.
#[doc(hidden)]
pub trait NodeVerdict {
    /// What [`IsNode`] is asked of.
    type Subject<Name>;
}

impl NodeVerdict for IsANode {
    type Subject<Name> = IsANode;
}

impl NodeVerdict for NotANode {
    type Subject<Name> = Name;
}

/// Looks at a value for the probes [`ProbeNode`] and [`ProbeNotNode`]:
/// `(&NodeProbe(&value)).stroma_verdict()` is [`IsANode`] for a node,
/// [`NotANode`] for anything else, decided where the value's type is known.
#[doc(hidden)]
pub struct NodeProbe<'a, T>(pub &'a T);

/// Chosen for nodes.
#[doc(hidden)]
pub trait ProbeNode {
    /// [`IsANode`].
    fn stroma_verdict(&self) -> IsANode;
}

impl<T: Node> ProbeNode for NodeProbe<'_, T> {
    #[inline(always)]
    fn stroma_verdict(&self) -> IsANode {
        IsANode
    }
}

/// Chosen for everything else.
#[doc(hidden)]
pub trait ProbeNotNode {
    /// [`NotANode`].
    fn stroma_verdict(&self) -> NotANode;
}

impl<T> ProbeNotNode for &NodeProbe<'_, T> {
    #[inline(always)]
    fn stroma_verdict(&self) -> NotANode {
        NotANode
    }
}

/// "This element of `pipeline!` or `parallel!` is a node." Implemented for
/// the verdict [`IsANode`] only; asked of what the user wrote otherwise.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a node: mark it `#[node]`",
    label = "not a node",
    note = "`pipeline!`, `parallel!` and `route!` take nodes: `async fn`s marked `#[node]`, \
            and what the macros, `loop_until`, `for_each` and `.named`, `.retry`, .. make of them"
)]
#[doc(hidden)]
pub trait IsNode {
    /// The checked value's type: the value's own.
    type Checked<N>;

    /// The value, checked.
    fn checked<N>(node: N) -> Self::Checked<N>;
}

#[diagnostic::do_not_recommend]
impl IsNode for IsANode {
    type Checked<N> = N;

    #[inline(always)]
    fn checked<N>(node: N) -> N {
        node
    }
}

/// `node` if it is a node (`verdict` is the probe's); else one error naming
/// `Name`, and a value of an error type that raises nothing more.
#[doc(hidden)]
#[inline(always)]
pub fn is_node<V, Name, N>(
    _verdict: V,
    _name: PhantomData<Name>,
    node: N,
) -> <<V as NodeVerdict>::Subject<Name> as IsNode>::Checked<N>
where
    V: NodeVerdict,
    <V as NodeVerdict>::Subject<Name>: IsNode,
{
    <<V as NodeVerdict>::Subject<Name> as IsNode>::checked(node)
}

/// The type of `value`, as a name for a check to print.
#[doc(hidden)]
#[inline(always)]
pub fn type_of<T>(_value: &T) -> PhantomData<T> {
    PhantomData
}

// ---------------------------------------------------------------------------
// How a node is named in an error: by the node that takes its input.

/// The node that takes this node's input: a `#[node]` itself, the first
/// node of a `pipeline!` or `parallel!`, the classifying node of a `route!`,
/// what a `.named(..)` wraps. A link error names it rather than a generated type.
#[doc(hidden)]
pub trait FirstNode {
    /// That node.
    type First;
}

/// Looks at a node for [`NameByFirst`] and [`NameByType`].
#[doc(hidden)]
pub struct NameProbe<'a, T>(pub &'a T);

/// Chosen for nodes that say which node takes their input.
#[doc(hidden)]
pub trait NameByFirst {
    /// The name: the first node's type.
    type Name;
    /// The name.
    fn stroma_name(&self) -> PhantomData<Self::Name>;
}

impl<T: FirstNode> NameByFirst for NameProbe<'_, T> {
    type Name = T::First;
    #[inline(always)]
    fn stroma_name(&self) -> PhantomData<T::First> {
        PhantomData
    }
}

/// Chosen for the others: their own type.
#[doc(hidden)]
pub trait NameByType {
    /// The name: the node's type.
    type Name;
    /// The name.
    fn stroma_name(&self) -> PhantomData<Self::Name>;
}

impl<T> NameByType for &NameProbe<'_, T> {
    type Name = T;
    #[inline(always)]
    fn stroma_name(&self) -> PhantomData<T> {
        PhantomData
    }
}

// ---------------------------------------------------------------------------
// Links and branches.

/// "The node `Name` takes what the node before it gives": `Self` is its
/// input, `T` the previous node's output.
#[diagnostic::on_unimplemented(
    message = "`{Name}` cannot follow a node whose output is `{T}`",
    label = "this node takes `{Self}`, not `{T}`",
    note = "in `pipeline![..]` each node's input type must be the previous node's output type"
)]
#[doc(hidden)]
pub trait Follows<T, Name> {
    /// The checked node's type: its own.
    type Checked<N>;

    /// The node, checked.
    fn checked<N>(node: N) -> Self::Checked<N>;
}

impl<T, Name> Follows<T, Name> for T {
    type Checked<N> = N;

    #[inline(always)]
    fn checked<N>(node: N) -> N {
        node
    }
}

/// `next` if it takes `prev`'s output: one call per link of `pipeline!`,
/// placed on the node after the link so the error points there.
#[doc(hidden)]
#[inline(always)]
pub fn link<A, B, Name>(
    _prev: &A,
    _name: PhantomData<Name>,
    next: B,
) -> <<B as Node>::Input as Follows<<A as Node>::Output, Name>>::Checked<B>
where
    A: Node,
    B: Node,
    <B as Node>::Input: Follows<<A as Node>::Output, Name>,
{
    <<B as Node>::Input as Follows<<A as Node>::Output, Name>>::checked(next)
}

/// "The branch `Name` takes what the first branch takes": `Self` is its
/// input, `T` the first branch's.
#[diagnostic::on_unimplemented(
    message = "`{Name}` cannot be a branch beside nodes that take `{T}`",
    label = "this branch takes `{Self}`, not `{T}`",
    note = "every branch of `parallel![..]` gets a copy of the same input, so all take one input type"
)]
#[doc(hidden)]
pub trait BranchFits<T, Name> {
    /// The checked branch's type: its own.
    type Checked<N>;

    /// The branch, checked.
    fn checked<N>(node: N) -> Self::Checked<N>;
}

impl<T, Name> BranchFits<T, Name> for T {
    type Checked<N> = N;

    #[inline(always)]
    fn checked<N>(node: N) -> N {
        node
    }
}

/// `branch` if it takes what `first` takes: one call per branch of
/// `parallel!` after the first, placed on that branch.
#[doc(hidden)]
#[inline(always)]
pub fn branch_beside<A, B, Name>(
    _first: &A,
    _name: PhantomData<Name>,
    branch: B,
) -> <<B as Node>::Input as BranchFits<<A as Node>::Input, Name>>::Checked<B>
where
    A: Node,
    B: Node,
    <B as Node>::Input: BranchFits<<A as Node>::Input, Name>,
{
    <<B as Node>::Input as BranchFits<<A as Node>::Input, Name>>::checked(branch)
}

// ---------------------------------------------------------------------------
// `#[node]`: the attribute's types, the error type, the model.

/// Checks, at compile time, that `#[node(input = A)]` names the signature's type `B`.
#[diagnostic::on_unimplemented(
    message = "`#[node]` declares `{Self}`, but the function's signature has `{B}`",
    label = "the function's signature has `{B}`",
    note = "make the attribute and the signature name the same type, or drop \
            `input`/`output` from the attribute: `#[node]` infers both"
)]
#[doc(hidden)]
pub trait SameType<B> {}

impl<T> SameType<T> for T {}

/// Compiles only when `A` and `B` are one type.
#[doc(hidden)]
pub const fn same_type<A: SameType<B>, B>() {}

/// What a node's `Result<O, E>` may have as `E`: anything that converts into
/// a boxed error (`NodeError`, any `std::error::Error + Send + Sync + 'static`,
/// `anyhow::Error`, `eyre::Report`, a `String`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a node's error type",
    label = "not an error type",
    note = "a node that returns `Result<O, E>` fails with `E`, which must be an error: \
            `NodeError` (`NodeError::msg(..)` makes one from a message), any \
            `std::error::Error + Send + Sync + 'static`, `anyhow::Error` or `eyre::Report`"
)]
#[doc(hidden)]
pub trait NodeErrorType {
    /// The error, boxed.
    fn into_box_error(self) -> BoxError;
}

// Not looked through in errors: "`E` cannot be a node's error type" once,
// rather than `Into<Box<dyn Error + Send + Sync>>` and its auto traits.
#[diagnostic::do_not_recommend]
impl<E: Into<BoxError>> NodeErrorType for E {
    #[inline]
    fn into_box_error(self) -> BoxError {
        self.into()
    }
}

/// A node body's `Result`, with its error boxed.
#[doc(hidden)]
#[inline]
pub fn node_result<O, E: NodeErrorType>(result: Result<O, E>) -> Result<O, BoxError> {
    result.map_err(NodeErrorType::into_box_error)
}

/// A model a node may change must be `Clone`: the run keeps a copy to put
/// back when the node fails.
#[diagnostic::on_unimplemented(
    message = "the model `{Self}` must be `Clone` for a node that changes it",
    label = "a node that changes the model keeps a copy of it, to put back if the node fails",
    note = "a node changes the model when it takes `&mut {Self}` or is marked `updates_context`"
)]
#[doc(hidden)]
pub trait ModelSnapshot: Sized {
    /// A copy to roll back to.
    fn model_snapshot(&self) -> Self;
}

impl<M: Clone> ModelSnapshot for M {
    #[inline]
    fn model_snapshot(&self) -> Self {
        self.clone()
    }
}

/// What an `updates_context` node may output: a `Serialize` value whose
/// fields are merged into the model by name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot update the model: it is not `Serialize`",
    label = "an `updates_context` node's output is merged into the model field by field",
    note = "derive `serde::Serialize` for `{Self}`: its fields are merged into the model's fields of the same names"
)]
#[doc(hidden)]
pub trait ModelUpdate: Serialize {}

#[diagnostic::do_not_recommend]
impl<O: Serialize> ModelUpdate for O {}

/// What an `updates_context` node's model must be: read and written by field name.
#[diagnostic::on_unimplemented(
    message = "the model `{Self}` cannot take an `updates_context` node's output: it is not \
               `Serialize + Deserialize`",
    label = "an `updates_context` node merges its output into this model field by field",
    note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
)]
#[doc(hidden)]
pub trait UpdatableModel: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<M: Serialize + DeserializeOwned> UpdatableModel for M {}

/// Merges an `updates_context` node's output into the model (see
/// `model::update::merge_fields`).
#[doc(hidden)]
#[inline]
pub fn merge_output<M: UpdatableModel, O: ModelUpdate>(
    model: &mut M,
    output: &O,
    validate: impl FnOnce(&M) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    crate::model::update::merge_fields(model, output, validate)
}
