//! Items the macros' generated code names: not part of the public API, and
//! free to change between any two releases.

pub use serde_json::Value as JsonValue;
pub use std::future::Future;

pub use crate::branches::{
    Settled, branch, poll_branch, run_branch, settle, settled_output, split_outcome,
};
use crate::error::BoxError;
pub use crate::failure::NodeFailure;
pub use crate::merge::Mergeable;
pub use crate::node::{Accepts, Cx, LeafName, Node, RecordMode, RunState, RunsWith};
pub use crate::update::{
    InputAsJson, InputNotJson, InputProbe, Snapshot, ValidateAlways, ValidateProbe,
    ValidateWithModel, merge_fields,
};

/// Runs `future`, turning a panic inside it into its error, so a node that
/// changes the model can put the model back before the run reports it.
pub async fn catch_panic<F: Future>(future: F) -> Result<F::Output, BoxError> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| Box::new(crate::failure::NodePanic::from_payload(&*payload)) as BoxError)
}

/// A node's outcome as its failure names it: the node `L`.
#[inline(always)]
fn tagged<L: LeafName, O>(outcome: Result<O, BoxError>) -> Result<O, NodeFailure> {
    outcome.map_err(|cause| NodeFailure::error(L::NAME, cause))
}

pin_project_lite::pin_project! {
    /// A node run directly: the function's own future, what turns its output
    /// into the node's outcome, and what its record needs (nothing when `R`
    /// is [`Plain`]). Polled inline, so a chain of them folds like
    /// hand-written `.await`s.
    pub struct DirectNode<'a, L, R: RecordMode, F, C> {
        #[pin]
        future: F,
        outcome: C,
        slot: R::Slot<'a>,
        node: std::marker::PhantomData<L>,
    }
}

/// The node `L`, run directly on `run`: `future` is its function's future;
/// `outcome` (a closure without captures) makes its outcome of the output.
#[inline(always)]
pub fn direct_node<'a, L, R, F, C, O>(
    run: &'a mut RunState,
    future: F,
    outcome: C,
) -> DirectNode<'a, L, R, F, C>
where
    L: LeafName,
    R: RecordMode,
    F: Future,
    C: Fn(F::Output) -> Result<O, BoxError>,
{
    DirectNode {
        future,
        outcome,
        slot: R::start::<L>(run),
        node: std::marker::PhantomData,
    }
}

impl<L, R, F, C, O> Future for DirectNode<'_, L, R, F, C>
where
    L: LeafName,
    R: RecordMode,
    F: Future,
    C: Fn(F::Output) -> Result<O, BoxError>,
{
    type Output = Result<O, NodeFailure>;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.future.poll(cx).map(|returned| {
            let outcome = tagged::<L, O>((this.outcome)(returned));
            R::finish::<L>(this.slot, outcome.is_err());
            outcome
        })
    }
}

/// A node body's plain output, as the outcome every node body produces.
#[inline]
pub fn ok<O>(output: O) -> Result<O, BoxError> {
    Ok(output)
}

/// A node body's `Result`, with its error boxed.
#[inline]
pub fn from_result<O, E: Into<BoxError>>(result: Result<O, E>) -> Result<O, BoxError> {
    result.map_err(Into::into)
}

/// Checks, at compile time, that `#[node(input = A)]` names the signature's type `B`.
#[diagnostic::on_unimplemented(
    message = "`#[node]` declares `{Self}`, but the function's signature has `{B}`",
    label = "the function's signature has `{B}`",
    note = "make the attribute and the signature name the same type, or drop \
            `input`/`output` from the attribute: `#[node]` infers both"
)]
pub trait SameType<B> {}
impl<T> SameType<T> for T {}

/// Compiles only when `A` and `B` are one type.
pub const fn same_type<A: SameType<B>, B>() {}

/// Compiles only when `next` takes `prev`'s output: one call per pipeline link,
/// placed on the second node so the error points there. Returns `next`.
#[inline(always)]
pub fn link<A: Node, B: Accepts<A::Output, Checked = B>>(
    _prev: &A,
    next: B,
) -> <B as Accepts<A::Output>>::Checked {
    next
}
