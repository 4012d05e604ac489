//! `.timeout(limit)`: a node that fails once it takes longer than `limit`,
//! leaving the model and context as they were before it.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::context::propagation::with_context;
use crate::engine::failure::{NodeFailure, NodePanic};
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::node::Runnable;

/// A node run with a time limit; see [`NodeExt::timeout`](crate::NodeExt::timeout).
#[derive(Clone, Copy, Debug)]
pub struct Timeout<N> {
    pub(crate) node: N,
    pub(crate) limit: Duration,
}

/// The error of a node that took longer than its [`timeout`](crate::NodeExt::timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    limit: Duration,
}

impl TimedOut {
    /// The limit it ran past.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?}; the model and context are as before it",
            self.limit
        )
    }
}

impl std::error::Error for TimedOut {}

super::wrapper_node!(
    Timeout,
    N::MAY_CHANGE_MODEL,
    |timeout: &Timeout<N>, out: super::Note<'_>| write!(out, "timeout {:?}", timeout.limit)
);

impl<M, N> Runnable<M> for Timeout<N>
where
    M: Clone + Send + 'static,
    N: Runnable<M>,
{
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            // What to put back if the limit passes: the model (a node that
            // completed inside may have changed it) and a context layer of
            // the node's own, kept unless it timed out.
            let kept = N::MAY_CHANGE_MODEL.then(|| cx.model().clone());
            let before = cx.state_ref().current;
            let outer = N::USES_CONTEXT.then(|| cx.state().open_layer());
            let outcome = match &outer {
                None => cut_off_at(self.limit, self.node.run::<O>(input, cx, slot)).await,
                Some(_) => {
                    let inner = cx.state_ref().context.clone();
                    let run = cut_off_at(self.limit, self.node.run::<O>(input, cx, slot));
                    Box::pin(with_context(&inner, run)).await
                }
            };
            if let Some(outer) = outer {
                // Its writes are kept unless it was cut off.
                cx.state().close_layer(outer, outcome.is_ok());
            }
            match outcome {
                Ok(result) => result,
                Err(dropped) => {
                    if let Some(kept) = kept {
                        *cx.model_mut() = kept;
                    }
                    // Blamed on the node that was running when it was cut off.
                    let state = cx.state();
                    let at = if state.current == before {
                        state.loc(slot)
                    } else {
                        state.current
                    };
                    state.record_unfinished("timed out");
                    let failure = NodeFailure::at(at, Box::new(TimedOut { limit: self.limit }));
                    Err(failure.followed_by_any(dropped.map(|payload| {
                        let panic =
                            NodePanic::from_payload(&*payload).during("while it was cut off");
                        NodeFailure::at(at, Box::new(panic))
                    })))
                }
            }
        }
    }
}

/// `tokio::time::timeout`, except that a future cut off is dropped here,
/// where a panic in a `Drop` of its code is caught: `Err` holds that panic,
/// if there was one.
// Not `run::cancel::until(future, sleep(limit))`, which does the same:
// measured, a node under `.timeout` cost 20 to 35 ns more through it
// (`cargo bench --bench combinators -- timeout`).
async fn cut_off_at<F: Future>(
    limit: Duration,
    future: F,
) -> Result<F::Output, Option<Box<dyn Any + Send>>> {
    let mut timed = std::pin::pin!(Some(tokio::time::timeout(limit, future)));
    let ended = std::future::poll_fn(|task| {
        let running = timed
            .as_mut()
            .as_pin_mut()
            .expect("polled only until it ends");
        running.poll(task)
    })
    .await;
    match ended {
        Ok(output) => Ok(output),
        Err(_elapsed) => Err(catch_unwind(AssertUnwindSafe(|| timed.set(None))).err()),
    }
}
