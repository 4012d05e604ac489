//! What a run returns: [`RunResult`] on success, [`RunError`] on failure.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::context::Context;
use crate::engine::failure::NodeFailure;
use crate::run::model_slot::ModelSlot;
use crate::run::run_id::RunId;
use crate::tree::record::NodeRecord;
use crate::tree::trace::Trace;
use crate::tree::{ResultError, Scope, ScopePath};

/// A finished run: its output, its id, its final model and its context;
/// its tree of scopes, records and kept outputs through methods.
#[non_exhaustive]
pub struct RunResult<O, M = ()> {
    /// The last node's output.
    pub final_state: O,
    /// The run's id.
    pub run_id: RunId,
    /// The model as the last node left it (`()` for [`StromaRunner::run`](crate::StromaRunner::run)).
    pub model: M,
    /// The run's context: the runner's entries plus everything the run wrote.
    pub context: Context,
    pub(crate) trace: Trace,
}

impl<O, M> RunResult<O, M> {
    /// The pipeline's [`Diagram`](crate::Diagram), each node coloured by
    /// how it ended in this run (needs records, on by default).
    pub fn diagram(&self) -> crate::Diagram {
        self.trace.diagram()
    }

    /// One record per node, in the order nodes finished; empty when records are off.
    pub fn records(&self) -> &[NodeRecord] {
        self.trace.records()
    }

    /// The run tree: its root is the run, and every node and scope of the
    /// pipeline is inside, with its path, status and time. Made on first call.
    ///
    /// ```
    /// # use stroma_core::{NodeStatus, RunResult, ScopeKind};
    /// # fn doc(result: RunResult<u32>) {
    /// for scope in result.tree().walk().filter(|s| s.kind == ScopeKind::Node) {
    ///     println!("{} {:?} {:?}", scope.path, scope.status, scope.duration);
    /// }
    /// # }
    /// ```
    pub fn tree(&self) -> &Scope {
        self.trace.tree()
    }

    /// The scope at `path` (`stage.parse`, `inc#2`, `refine[2].assess`; see
    /// [`ScopePath`]), if the run has one.
    pub fn scope(&self, path: &str) -> Option<&Scope> {
        self.trace.scope(path)
    }

    /// The output the node at `path` produced, kept by the run.
    ///
    /// An error names the path: an unknown one (with the nearest existing
    /// paths), a node that did not complete, an output of another type, or
    /// one whose type cannot be kept (it is not `Clone + Send + Sync`).
    /// Outputs are kept unless [`RunConfig::results`](crate::RunConfig::results) is off.
    pub fn result<T: Send + Sync + 'static>(&self, path: &str) -> Result<Arc<T>, ResultError> {
        self.trace.result(path)
    }
}

impl<O: fmt::Debug, M: fmt::Debug> fmt::Debug for RunResult<O, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunResult")
            .field("final_state", &self.final_state)
            .field("run_id", &self.run_id)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// A failed run: which node failed and why, and everything the run had done before.
///
/// Its message names the failing node's path; [`source`](StdError::source)
/// is the node's error (or a [`NodePanic`](crate::NodePanic) for a panic).
/// The run tree (with the nodes never reached marked
/// [`Skipped`](crate::NodeStatus::Skipped)), the records of the nodes that
/// finished, the context the run wrote and the model are all kept.
///
/// It is `Send + Sync + 'static`, as `anyhow::Error`, tower's `BoxError`
/// and axum's error handlers ask of an error, whatever the model.
pub struct RunError {
    inner: Box<Failed>,
}

struct Failed {
    failure: NodeFailure,
    /// The innermost failing node's path.
    path: ScopePath,
    run_id: RunId,
    trace: Trace,
    context: Context,
    model: ModelSlot,
}

impl RunError {
    pub(crate) fn new<M: Send + 'static>(
        failure: NodeFailure,
        run_id: RunId,
        trace: Trace,
        context: Context,
        model: M,
    ) -> Self {
        let path = failure
            .innermost()
            .path()
            .cloned()
            .unwrap_or_else(ScopePath::root);
        RunError {
            inner: Box::new(Failed {
                failure,
                path,
                run_id,
                trace,
                context,
                model: ModelSlot::new(model),
            }),
        }
    }

    /// The id of the node that failed; for a failed `parallel!` or
    /// `for_each`, of the scope whose branches failed; the pipeline's name
    /// when a middleware stopped the whole run (see [`is_run_stopped`](Self::is_run_stopped)).
    pub fn node(&self) -> &'static str {
        self.inner.failure.node()
    }

    /// The path of the innermost failing node: inside a failed `parallel!`
    /// or `for_each`, the first branch or item that failed, down to its node.
    /// Empty (the root's) when a middleware stopped the whole run.
    pub fn path(&self) -> &ScopePath {
        &self.inner.path
    }

    /// The failed run's id.
    pub fn run_id(&self) -> RunId {
        self.inner.run_id
    }

    /// Whether a middleware's run hook stopped the whole run, rather than one node failing.
    pub fn is_run_stopped(&self) -> bool {
        self.inner.failure.is_run_stopped()
    }

    /// Whether the run stopped to ask a person ([`Context::interrupt`](crate::Context::interrupt)),
    /// or was given an answer of the wrong type and stays interrupted;
    /// [`interrupts`](Self::interrupts) lists the questions.
    pub fn is_interrupted(&self) -> bool {
        !self.interrupts().is_empty()
    }

    /// The questions the run stopped on, one per asking node (several when
    /// `parallel!` branches or `for_each` items each asked), in declaration order.
    pub fn interrupts(&self) -> Vec<crate::Interrupt> {
        self.interrupted()
            .into_iter()
            .map(|i| i.interrupt().clone())
            .collect()
    }

    /// The [`Interrupted`](crate::Interrupted) errors the run stopped on.
    pub fn interrupted(&self) -> Vec<&crate::Interrupted> {
        let mut found = Vec::new();
        self.inner.failure.find_all(&mut found);
        found
    }

    /// Whether the run was stopped from outside: its cancel token was
    /// cancelled or its time limit passed ([`RunOptions::cancel_token`](crate::RunOptions::cancel_token),
    /// [`RunOptions::timeout`](crate::RunOptions::timeout)).
    pub fn is_cancelled(&self) -> bool {
        let mut found: Vec<&crate::Cancelled> = Vec::new();
        self.inner.failure.find_all(&mut found);
        !found.is_empty()
    }

    /// Why a durable run could not start, resume or save, if that is why it failed.
    pub fn durable_error(&self) -> Option<&crate::DurableError> {
        let mut found = Vec::new();
        self.inner.failure.find_all(&mut found);
        found.into_iter().next()
    }

    /// Whether the node panicked (rather than returned an error).
    pub fn is_panic(&self) -> bool {
        self.inner.failure.is_panic()
    }

    /// The node's error.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.inner.failure.cause()
    }

    /// The pipeline's [`Diagram`](crate::Diagram), each node coloured by
    /// how it ended in this run: where it failed, what completed, what was
    /// skipped (needs records, on by default).
    pub fn diagram(&self) -> crate::Diagram {
        self.inner.trace.diagram()
    }

    /// Failures that happened after the run's failure while it was on its
    /// way out (a panicking `Drop` of an output no longer needed, a
    /// middleware hook or the event handler panicking), kept rather than
    /// lost; each names where. See [`NodeFailure::also`].
    pub fn also(&self) -> &[NodeFailure] {
        self.inner.failure.also()
    }

    /// The failure, with the failures of branches and items inside it.
    pub fn failure(&self) -> &NodeFailure {
        &self.inner.failure
    }

    /// Records of the run up to and including the failed node.
    pub fn records(&self) -> &[NodeRecord] {
        self.inner.trace.records()
    }

    /// The run tree as the failure left it; see [`RunResult::tree`].
    pub fn tree(&self) -> &Scope {
        self.inner.trace.tree()
    }

    /// The scope at `path`, if the run has one.
    pub fn scope(&self, path: &str) -> Option<&Scope> {
        self.inner.trace.scope(path)
    }

    /// The output a node that completed before the failure produced.
    pub fn result<T: Send + Sync + 'static>(&self, path: &str) -> Result<Arc<T>, ResultError> {
        self.inner.trace.result(path)
    }

    /// The run's context as the failure left it.
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// The run's model as the failure left it, if it is an `M`.
    ///
    /// Lent out only as a `Sync` type, since the error may be shared between
    /// threads; a model that is not `Sync` is taken with
    /// [`into_model`](Self::into_model).
    pub fn model<M: Sync + 'static>(&self) -> Option<&M> {
        self.inner.model.lend()
    }

    /// Takes the run's model, if it is an `M`.
    pub fn into_model<M: 'static>(self) -> Option<M> {
        self.inner.model.take()
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.failure, f)
    }
}

impl fmt::Debug for RunError {
    /// The message, then the chain of causes under it: what `main`
    /// returning `Result<_, RunError>` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut cause = self.inner.failure.cause().source();
        let mut first = true;
        while let Some(error) = cause {
            if first {
                write!(f, "\n\nCaused by:")?;
                first = false;
            }
            write!(f, "\n    {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl StdError for RunError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.inner.failure.cause())
    }
}
