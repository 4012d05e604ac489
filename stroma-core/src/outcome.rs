//! What a run returns: [`RunResult`] on success, [`RunError`] on failure.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;

use crate::context::Context;
use crate::failure::NodeFailure;
use crate::record::NodeRecord;
use crate::run_id::RunId;

/// A finished run: its output, its id, its final model, its records and its context.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunResult<O, M = ()> {
    /// The last node's output.
    pub final_state: O,
    /// The run's id.
    pub run_id: RunId,
    /// The model as the last node left it (`()` for [`StromaRunner::run`](crate::StromaRunner::run)).
    pub model: M,
    /// One record per node, in the order nodes finished; empty when records are off.
    pub records: Vec<NodeRecord>,
    /// The run's context: the runner's entries plus everything the run wrote.
    pub context: Context,
}

/// A failed run: which node failed and why, and everything the run had done before.
///
/// Its message names the node; [`source`](StdError::source) is the node's
/// error (or a [`NodePanic`](crate::NodePanic) for a panic). The records of the nodes that
/// finished, the context the run wrote and the model are all kept.
pub struct RunError {
    inner: Box<Failed>,
}

struct Failed {
    failure: NodeFailure,
    run_id: RunId,
    records: Vec<NodeRecord>,
    context: Context,
    model: Box<dyn Any + Send>,
}

impl RunError {
    pub(crate) fn new<M: Send + 'static>(
        failure: NodeFailure,
        run_id: RunId,
        records: Vec<NodeRecord>,
        context: Context,
        model: M,
    ) -> Self {
        RunError {
            inner: Box::new(Failed {
                failure,
                run_id,
                records,
                context,
                model: Box::new(model),
            }),
        }
    }

    /// The name of the node that failed; the pipeline's name when a
    /// middleware stopped the whole run (see [`is_run_stopped`](Self::is_run_stopped)).
    pub fn node(&self) -> &'static str {
        self.inner.failure.node
    }

    /// The failed run's id.
    pub fn run_id(&self) -> RunId {
        self.inner.run_id
    }

    /// Whether a middleware's run hook stopped the whole run, rather than one node failing.
    pub fn is_run_stopped(&self) -> bool {
        self.inner.failure.whole_run
    }

    /// Whether the node panicked (rather than returned an error).
    pub fn is_panic(&self) -> bool {
        self.inner.failure.is_panic()
    }

    /// The node's error.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.inner.failure.cause()
    }

    /// Records of the run up to and including the failed node.
    pub fn records(&self) -> &[NodeRecord] {
        &self.inner.records
    }

    /// The run's context as the failure left it.
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// The run's model as the failure left it, if it is an `M`.
    pub fn model<M: 'static>(&self) -> Option<&M> {
        self.inner.model.downcast_ref()
    }

    /// Takes the run's model, if it is an `M`.
    pub fn into_model<M: 'static>(self) -> Option<M> {
        self.inner.model.downcast().ok().map(|m| *m)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.failure, f)
    }
}

impl fmt::Debug for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunError")
            .field("node", &self.node())
            .field("cause", &self.inner.failure.cause)
            .field("run_id", &self.inner.run_id)
            .field("records", &self.inner.records)
            .finish_non_exhaustive()
    }
}

impl StdError for RunError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.inner.failure.cause)
    }
}
