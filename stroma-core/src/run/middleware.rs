//! [`Middleware`]: code around every run and every node, in registration order.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::context::Context;
use crate::error::BoxError;
use crate::run::run_context::RunContext;

/// A boxed, sendable future: what middleware hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Code that runs around every run ([`on_run`](Middleware::on_run)) and every
/// node ([`on_node`](Middleware::on_node)) of a runner.
///
/// A hook does its work, calls `next.run().await` to go on (to the next
/// middleware, and at the end to the run or node itself), and returns. It can
/// look at the result of `next`, or not call `next` at all and return an
/// error: that fails the run or node with a message naming the middleware.
/// Middlewares compose in registration order: the first registered is the
/// outermost. Both hooks default to just calling `next`.
///
/// With no middleware installed, nodes run with no added cost.
///
/// ```
/// use stroma_core::{BoxError, BoxFuture, Middleware, Next, RunContext};
///
/// /// Refuses runs that have no tenant.
/// struct RequireTenant;
///
/// impl Middleware for RequireTenant {
///     fn on_run<'a>(&'a self, run: &'a RunContext, next: Next<'a>) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async move {
///             if run.context.tenant_id().is_none() {
///                 return Err("every run needs a tenant".into());
///             }
///             next.run().await
///         })
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// The name errors show; by default the type's name.
    fn name(&self) -> &str {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full)
    }

    /// Around a whole run.
    fn on_run<'a>(
        &'a self,
        run: &'a RunContext,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = run;
        next.run()
    }

    /// Around one node.
    fn on_node<'a>(
        &'a self,
        node: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = node;
        next.run()
    }
}

/// The node a [`Middleware::on_node`] hook runs around.
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeCall<'a> {
    /// The node's name.
    pub node: &'static str,
    /// The run it belongs to.
    pub run: &'a RunContext,
    /// The run's shared context.
    pub context: &'a Context,
}

/// A hook's way on: [`run`](Next::run) goes to the next middleware, and at
/// the end to the run or node itself.
pub struct Next<'a> {
    chain: &'a [Arc<dyn Middleware>],
    hook: Hook<'a>,
    target: Pin<&'a mut (dyn Future<Output = Result<(), BoxError>> + Send + 'a)>,
    state: &'a ChainState,
}

#[derive(Clone, Copy)]
enum Hook<'a> {
    Run(&'a RunContext),
    Node(&'a NodeCall<'a>),
}

impl<'a> Next<'a> {
    /// Goes on: to the next middleware, or to the run or node itself.
    pub fn run(self) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(self.go_on())
    }

    /// What [`run`](Self::run) boxes; awaited in place by the chain's first step.
    async fn go_on(self) -> Result<(), BoxError> {
        {
            let Some((first, rest)) = self.chain.split_first() else {
                self.state.reached.store(true, Ordering::Relaxed);
                let outcome = self.target.await;
                if outcome.is_err() {
                    self.state.target_failed.store(true, Ordering::Relaxed);
                }
                return outcome;
            };
            let next = Next {
                chain: rest,
                hook: self.hook,
                target: self.target,
                state: self.state,
            };
            let outcome = match self.hook {
                Hook::Run(run) => first.on_run(run, next).await,
                Hook::Node(node) => first.on_node(node, next).await,
            };
            self.state.attribute(outcome, &**first)
        }
    }
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("middlewares_left", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// What a chain did, so errors can be blamed on the right middleware.
#[derive(Default)]
struct ChainState {
    reached: AtomicBool,
    target_failed: AtomicBool,
}

impl ChainState {
    /// Names `middleware` in an error it made itself (not one from further in).
    /// The name is looked up only for an error: success stays cheap.
    fn attribute(
        &self,
        outcome: Result<(), BoxError>,
        middleware: &dyn Middleware,
    ) -> Result<(), BoxError> {
        match outcome {
            Ok(()) if !self.reached.load(Ordering::Relaxed) => Err(Box::new(MiddlewareError {
                middleware: middleware.name().to_owned(),
                cause: "it returned without calling `next`".into(),
            })),
            Ok(()) => Ok(()),
            Err(err)
                if err.is::<MiddlewareError>() || self.target_failed.load(Ordering::Relaxed) =>
            {
                Err(err)
            }
            Err(cause) => Err(Box::new(MiddlewareError {
                middleware: middleware.name().to_owned(),
                cause,
            })),
        }
    }
}

/// A middleware stopped a run or node: its name and its reason.
#[derive(Debug)]
pub struct MiddlewareError {
    middleware: String,
    cause: BoxError,
}

impl MiddlewareError {
    /// The middleware's name.
    pub fn middleware(&self) -> &str {
        &self.middleware
    }
}

impl fmt::Display for MiddlewareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stopped by middleware `{}`: {}",
            self.middleware, self.cause
        )
    }
}

impl StdError for MiddlewareError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.cause)
    }
}

/// Runs `target` inside `chain`'s hooks; returns its output, or the error
/// of the target or of the middleware that stopped it.
pub(crate) async fn around<'a, O: Send>(
    chain: &'a [Arc<dyn Middleware>],
    hook: HookArg<'a>,
    target: impl Future<Output = Result<O, BoxError>> + Send + 'a,
) -> Result<O, BoxError> {
    let mut output = None;
    let state = ChainState::default();
    let outcome = {
        let slot = &mut output;
        let target = std::pin::pin!(async move {
            let value = target.await?;
            *slot = Some(value);
            Ok(())
        });
        let hook = match hook {
            HookArg::Run(run) => Hook::Run(run),
            HookArg::Node(node) => Hook::Node(node),
        };
        // The first step is awaited in place: only hooks' own `next.run()` box.
        Next {
            chain,
            hook,
            target,
            state: &state,
        }
        .go_on()
        .await
    };
    match (outcome, output) {
        (Ok(()), Some(value)) => Ok(value),
        (Ok(()), None) => Err("a middleware returned success for a run or node that failed".into()),
        (Err(err), _) => Err(err),
    }
}

/// Which hook [`around`] calls.
pub(crate) enum HookArg<'a> {
    Run(&'a RunContext),
    Node(&'a NodeCall<'a>),
}

/// Built-in middleware: collects each node's wall-clock time into the run's
/// context, as [`NodeTimings`], readable from the result afterwards.
///
/// ```
/// use stroma_core::{NodeTimings, StromaRunner, TimingMiddleware};
///
/// let runner = StromaRunner::quick().with_middleware(TimingMiddleware);
/// // after a run: result.context.get::<NodeTimings>()
/// # let _ = runner;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingMiddleware;

/// Node timings collected by [`TimingMiddleware`], in the order nodes finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTimings(pub Vec<(&'static str, std::time::Duration)>);

impl Middleware for TimingMiddleware {
    fn name(&self) -> &str {
        "timing"
    }

    fn on_node<'a>(
        &'a self,
        node: &'a NodeCall<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let outcome = next.run().await;
            let entry = (node.node, started.elapsed());
            if node
                .context
                .update(|timings: &mut NodeTimings| timings.0.push(entry))
                .is_err()
            {
                node.context.insert(NodeTimings(vec![entry]));
            }
            outcome
        })
    }
}
