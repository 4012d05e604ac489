//! Items the macros' generated code names: not part of the public API, and
//! free to change between any two releases.
//!
//! The checks whose names rustc prints in errors are not here but at the
//! crate root, hidden (see `node/checks.rs`): an error names no `__private`.

pub use serde_json::Value as JsonValue;
pub use std::future::Future;

pub use crate::combinators::branches::{
    Settled, drop_branch_output, enter_scope, fork, leave_scope, poll_branch, run_branch, settle,
    settled_output, split_outcome,
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
    InputAsJson, InputNotJson, InputProbe, ValidateAlways, ValidateProbe, ValidateWithModel,
};
pub use crate::node::{Accepts, LeafName, Node, Runnable};
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

/// A template `template!` checked when the crate compiled.
pub fn checked_template(source: &str) -> stroma_template::Template {
    stroma_template::Template::parse(source).unwrap_or_else(|err| {
        unreachable!("`template!` checked this template when compiling: {err}")
    })
}

/// In a durable run, the model a node changed, encoded for its checkpoint
/// while the node's guard can still put it back: a model that cannot be
/// saved fails the node (and so is restored) instead of staying changed.
/// Elsewhere `result` as it is.
#[inline]
pub fn model_saveable<M: 'static, T>(
    run: &RunState,
    slot: u32,
    model: &M,
    result: Result<T, NodeFailure>,
) -> Result<T, NodeFailure> {
    let (Ok(_), Some(journal)) = (&result, &run.durable_node) else {
        return result;
    };
    match journal.run.encode_model(model) {
        Some(Ok(json)) => {
            *journal
                .model_after
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(json);
            result
        }
        Some(Err(reason)) => Err(NodeFailure::at(
            run.loc(slot),
            Box::new(crate::durable::DurableError::Encode {
                what: format!("the model after `{}`", journal.path),
                reason,
            }),
        )),
        // A model of another type than the run's (an `.isolated()` one): not saved.
        None => result,
    }
}
