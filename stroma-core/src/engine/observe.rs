//! The one node-execution path and its observers.
//!
//! Every node a pipeline runs goes through [`Observer::leaf`]; every
//! composite scope through `RunState::enter_scope`/`leave_scope` and every
//! iteration, branch and item through `enter_frame`/`leave_frame`. What
//! watches the run is a type chosen once when the run starts:
//!
//! - [`Lean`]: nothing kept; a node costs the store that marks it running;
//! - [`Recorded`]: each node's entry (status, time, kept output);
//! - [`Watched`]: entries as the run's configuration says, plus tracing
//!   spans, middleware and events.
//!
//! Generated code is generic over the observer, so each run's code is
//! monomorphized for it and what is off is compiled out.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use tracing::Instrument;

use crate::durable::bounds::LeafCodec;
use crate::engine::failure::NodeFailure;
use crate::engine::state::{Cx, RunState};
use crate::error::BoxError;
use crate::run::event::Event;
use crate::run::middleware::{HookArg, NodeCall, around};
use crate::tree::kept::Kept;

/// What watches a run; see the module docs. Not implemented outside the crate.
#[doc(hidden)]
pub trait Observer: Send + Sync + 'static {
    /// Whether nodes keep entries (when the run's configuration asks).
    const KEEPS: bool;
    /// Whether spans, middleware and events watch nodes.
    const WATCHED: bool;
    /// Whether the run is durable: each node's completion is saved.
    const JOURNALED: bool = false;

    /// Runs the node at `slot`: `future` is its function's future,
    /// `outcome` makes its outcome of what the function returned, `keep`
    /// keeps its output.
    fn leaf<'a, F, O, C, K>(
        run: &'a mut RunState,
        slot: u32,
        future: F,
        outcome: C,
        keep: K,
    ) -> impl Future<Output = Result<O, NodeFailure>> + Send + 'a
    where
        F: Future + Send + 'a,
        O: Send + 'a,
        C: Fn(F::Output) -> Result<O, BoxError> + Send + 'a,
        K: Fn(&O) -> Kept + Send + 'a;

    /// Runs a whole `#[node]` at `slot`: `body` is its generated body, which
    /// goes through [`leaf`](Self::leaf). Every observer but a durable
    /// run's calls `body` and adds nothing; a durable run's replays a node
    /// it saved, and saves each node that completes.
    #[inline(always)]
    fn node<'a, M, I, T, K, B, F>(
        cx: &'a mut Cx<M>,
        slot: u32,
        input: I,
        codec: LeafCodec<T>,
        keep: K,
        body: B,
    ) -> impl Future<Output = Result<T, NodeFailure>> + Send + 'a
    where
        M: Send + 'static,
        I: Send + 'static,
        T: Send + 'static,
        K: Fn(&T) -> Kept + Send + 'a,
        B: FnOnce(&'a mut Cx<M>, I) -> F + Send + 'a,
        F: Future<Output = Result<T, NodeFailure>> + Send + 'a,
    {
        let _ = (slot, codec, keep);
        body(cx, input)
    }
}

/// Nothing watches the run.
#[doc(hidden)]
pub enum Lean {}

/// The run keeps an entry per node.
#[doc(hidden)]
pub enum Recorded {}

/// Spans, middleware or events watch the run.
#[doc(hidden)]
pub enum Watched {}

/// A durable run: watched as [`Watched`] is, and each node saved as it
/// completes (see `journaled.rs`).
#[doc(hidden)]
pub enum Journaled {}

impl Observer for Journaled {
    const KEEPS: bool = true;
    const WATCHED: bool = true;
    const JOURNALED: bool = true;

    fn leaf<'a, F, O, C, K>(
        run: &'a mut RunState,
        slot: u32,
        future: F,
        outcome: C,
        keep: K,
    ) -> impl Future<Output = Result<O, NodeFailure>> + Send + 'a
    where
        F: Future + Send + 'a,
        O: Send + 'a,
        C: Fn(F::Output) -> Result<O, BoxError> + Send + 'a,
        K: Fn(&O) -> Kept + Send + 'a,
    {
        watched_leaf(run, slot, future, outcome, keep)
    }

    fn node<'a, M, I, T, K, B, F>(
        cx: &'a mut Cx<M>,
        slot: u32,
        input: I,
        codec: LeafCodec<T>,
        keep: K,
        body: B,
    ) -> impl Future<Output = Result<T, NodeFailure>> + Send + 'a
    where
        M: Send + 'static,
        I: Send + 'static,
        T: Send + 'static,
        K: Fn(&T) -> Kept + Send + 'a,
        B: FnOnce(&'a mut Cx<M>, I) -> F + Send + 'a,
        F: Future<Output = Result<T, NodeFailure>> + Send + 'a,
    {
        crate::engine::journaled::journaled_node(cx, slot, input, codec, keep, body)
    }
}

impl Observer for Lean {
    const KEEPS: bool = false;
    const WATCHED: bool = false;

    #[inline(always)]
    fn leaf<'a, F, O, C, K>(
        run: &'a mut RunState,
        slot: u32,
        future: F,
        outcome: C,
        keep: K,
    ) -> impl Future<Output = Result<O, NodeFailure>> + Send + 'a
    where
        F: Future + Send + 'a,
        O: Send + 'a,
        C: Fn(F::Output) -> Result<O, BoxError> + Send + 'a,
        K: Fn(&O) -> Kept + Send + 'a,
    {
        let _ = keep;
        // Marked as running; a failure is located by whoever catches it,
        // from the same mark, so the future holds nothing but the node's own.
        run.start_node(slot, false);
        LeanLeaf { future, outcome }
    }
}

impl Observer for Recorded {
    const KEEPS: bool = true;
    const WATCHED: bool = false;

    #[inline(always)]
    fn leaf<'a, F, O, C, K>(
        run: &'a mut RunState,
        slot: u32,
        future: F,
        outcome: C,
        keep: K,
    ) -> impl Future<Output = Result<O, NodeFailure>> + Send + 'a
    where
        F: Future + Send + 'a,
        O: Send + 'a,
        C: Fn(F::Output) -> Result<O, BoxError> + Send + 'a,
        K: Fn(&O) -> Kept + Send + 'a,
    {
        DirectLeaf::<Self, F, C, K>::new(run, slot, future, outcome, keep)
    }
}

impl Observer for Watched {
    const KEEPS: bool = true;
    const WATCHED: bool = true;

    fn leaf<'a, F, O, C, K>(
        run: &'a mut RunState,
        slot: u32,
        future: F,
        outcome: C,
        keep: K,
    ) -> impl Future<Output = Result<O, NodeFailure>> + Send + 'a
    where
        F: Future + Send + 'a,
        O: Send + 'a,
        C: Fn(F::Output) -> Result<O, BoxError> + Send + 'a,
        K: Fn(&O) -> Kept + Send + 'a,
    {
        watched_leaf(run, slot, future, outcome, keep)
    }
}

pin_project_lite::pin_project! {
    /// A node awaited in place with nothing kept: the function's own future
    /// and what turns its output into the node's outcome.
    #[doc(hidden)]
    pub struct LeanLeaf<F, C> {
        #[pin]
        future: F,
        outcome: C,
    }
}

impl<F, O, C> Future for LeanLeaf<F, C>
where
    F: Future,
    C: Fn(F::Output) -> Result<O, BoxError>,
{
    type Output = Result<O, NodeFailure>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let returned = ready!(this.future.poll(task));
        Poll::Ready((this.outcome)(returned).map_err(NodeFailure::unlocated))
    }
}

pin_project_lite::pin_project! {
    /// A node awaited in place: the function's own future, what turns its
    /// output into the node's outcome, and (when the observer `R` keeps
    /// entries) its start. A chain of them folds like hand-written `.await`s.
    #[doc(hidden)]
    pub struct DirectLeaf<'a, R, F, C, K> {
        #[pin]
        future: F,
        outcome: C,
        keep: K,
        run: &'a mut RunState,
        slot: u32,
        started: Option<Instant>,
        observer: std::marker::PhantomData<R>,
    }
}

impl<'a, R: Observer, F, C, K> DirectLeaf<'a, R, F, C, K> {
    #[inline(always)]
    fn new(run: &'a mut RunState, slot: u32, future: F, outcome: C, keep: K) -> Self {
        let started = run.start_node(slot, R::KEEPS && run.keeps());
        DirectLeaf {
            future,
            outcome,
            keep,
            run,
            slot,
            started,
            observer: std::marker::PhantomData,
        }
    }
}

impl<R: Observer, F, O, C, K> Future for DirectLeaf<'_, R, F, C, K>
where
    F: Future,
    C: Fn(F::Output) -> Result<O, BoxError>,
    K: Fn(&O) -> Kept,
{
    type Output = Result<O, NodeFailure>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let returned = ready!(this.future.poll(task));
        let outcome = (this.outcome)(returned);
        if R::KEEPS
            && let Some(started) = *this.started
        {
            this.run
                .end_node(*this.slot, started, &outcome, &*this.keep);
        }
        Poll::Ready(outcome.map_err(|cause| NodeFailure::at(this.run.loc(*this.slot), cause)))
    }
}

/// A node of a watched run: in its span, inside the middleware, reported.
async fn watched_leaf<F, O, C, K>(
    run: &mut RunState,
    slot: u32,
    future: F,
    outcome: C,
    keep: K,
) -> Result<O, NodeFailure>
where
    F: Future + Send,
    O: Send,
    C: Fn(F::Output) -> Result<O, BoxError> + Send,
    K: Fn(&O) -> Kept + Send,
{
    let timed = run.keeps() || run.streams();
    let started = run.start_node(slot, timed);
    let name = run.id_of(slot);
    let path = run.streams().then(|| run.path_now(slot));
    if let Some(path) = &path {
        run.emit(|| Event::NodeStarted {
            name,
            path: path.clone(),
        });
    }
    let body = async move {
        let returned = future.await;
        outcome(returned)
    };
    let span = tracing::info_span!("stroma.node", node = name);
    let result = if !run.middleware().is_empty() {
        // Boxed, so runs without middleware do not carry the chain's state.
        let context = run.node_context(name, slot);
        let run_context = run.shared().run.clone();
        let middleware = std::sync::Arc::clone(run.middleware());
        let call = NodeCall {
            node: name,
            run: &run_context,
            context: &context,
        };
        Box::pin(around(
            &middleware,
            HookArg::Node(&call),
            body.instrument(span),
        ))
        .await
    } else if span.is_disabled() {
        body.await
    } else {
        body.instrument(span).await
    };
    if let Some(started) = started {
        let duration = started.elapsed();
        if run.keeps() {
            run.end_node(slot, started, &result, &keep);
        } else {
            run.end_unkept();
        }
        if let Some(path) = path {
            run.emit(|| match &result {
                Ok(_) => Event::NodeCompleted {
                    name,
                    path,
                    duration,
                },
                Err(error) => Event::NodeFailed {
                    name,
                    path,
                    duration,
                    error: error.to_string(),
                },
            });
        }
    }
    let loc = run.loc(slot);
    result.map_err(|cause| NodeFailure::at(loc, cause))
}
