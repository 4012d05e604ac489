//! Items the macros' generated code names: not part of the public API, and
//! free to change between any two releases.

pub use serde_json::Value as JsonValue;
pub use std::future::Future;

pub use crate::combinators::branches::{
    Settled, branch, drop_branch_output, enter_scope, fork, leave_scope, poll_branch, run_branch,
    settle, settled_output, split_outcome,
};
pub use crate::combinators::route::{OutputFits, PayloadFits, route_split};
pub use crate::durable::bounds::{CodecProbe, Durable, LeafCodec, NoCodec, SaveCodec, Saveable};
pub use crate::engine::failure::NodeFailure;
pub use crate::engine::guard::ModelGuard;
pub use crate::engine::observe::Observer;
pub use crate::engine::state::{Cx, RunState};
use crate::error::BoxError;
pub use crate::model::merge::Mergeable;
pub use crate::model::update::{
    InputAsJson, InputNotJson, InputProbe, Snapshot, ValidateAlways, ValidateProbe,
    ValidateWithModel, merge_fields,
};
pub use crate::node::{Accepts, LeafName, Node, RunsWith};
pub use crate::tree::kept::{AsJson, JsonProbe, KeepCloned, KeepNothing, KeepProbe, Kept, NoJson};
pub use crate::tree::shape::ShapeBuilder;

/// Runs `future`, turning a panic inside it into its error, so a node that
/// changes the model can put the model back before the run reports it.
pub async fn catch_panic<F: Future>(future: F) -> Result<F::Output, BoxError> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| {
            Box::new(crate::engine::failure::NodePanic::from_payload(&*payload)) as BoxError
        })
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

/// A template `template!` checked when the crate compiled.
pub fn checked_template(source: &str) -> stroma_template::Template {
    stroma_template::Template::parse(source).unwrap_or_else(|err| {
        unreachable!("`template!` checked this template when compiling: {err}")
    })
}
