//! [`Middleware`]: code around every run and every node, in registration order.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt as _;

use crate::context::Context;
use crate::engine::failure::NodePanic;
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
                // A panic of the run or node itself is held here and raised
                // again once the hooks are done, so that it is not taken for
                // a panic of theirs; they see it as an error.
                let outcome = match AssertUnwindSafe(self.target).catch_unwind().await {
                    Ok(outcome) => outcome,
                    Err(payload) => {
                        let panic = NodePanic::from_payload(&*payload);
                        *self.state.lock_target_panic() = Some(payload);
                        Err(Box::new(panic) as BoxError)
                    }
                };
                if let Err(err) = &outcome {
                    self.state.target_failed.store(true, Ordering::Relaxed);
                    *self.state.lock_in_flight() = Some(err.to_string());
                }
                return outcome;
            };
            let next = Next {
                chain: rest,
                hook: self.hook,
                target: self.target,
                state: self.state,
            };
            let (hooked, hook) = match self.hook {
                Hook::Run(run) => (first.on_run(run, next), "in `on_run`"),
                Hook::Node(node) => (first.on_node(node, next), "in `on_node`"),
            };
            match AssertUnwindSafe(hooked).catch_unwind().await {
                Ok(outcome) => self.state.attribute(outcome, &**first),
                Err(payload) => Err(Box::new(MiddlewareError {
                    middleware: first.name().to_owned(),
                    cause: Box::new(NodePanic::from_payload(&*payload).during(hook)),
                    in_flight: self.state.lock_in_flight().take(),
                })),
            }
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
    /// The target's error, as text, while the hooks handle it: kept in
    /// the error of a hook that panics on its way out.
    in_flight: Mutex<Option<String>>,
    /// The target's own panic, raised again after the hooks.
    target_panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl ChainState {
    fn lock_in_flight(&self) -> MutexGuard<'_, Option<String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_target_panic(&self) -> MutexGuard<'_, Option<Box<dyn Any + Send>>> {
        self.target_panic.lock().unwrap_or_else(|e| e.into_inner())
    }

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
                in_flight: None,
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
                in_flight: None,
            })),
        }
    }
}

/// A middleware stopped a run or node, or panicked in its hook: its name
/// and its reason.
#[derive(Debug)]
pub struct MiddlewareError {
    middleware: String,
    cause: BoxError,
    in_flight: Option<String>,
}

impl MiddlewareError {
    /// The middleware's name.
    pub fn middleware(&self) -> &str {
        &self.middleware
    }

    /// The error the run or node had already failed with when the hook
    /// panicked on its way out, if it had.
    pub fn in_flight(&self) -> Option<&str> {
        self.in_flight.as_deref()
    }
}

impl fmt::Display for MiddlewareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cause.is::<NodePanic>() {
            write!(f, "middleware `{}` {}", self.middleware, self.cause)?;
        } else {
            write!(
                f,
                "stopped by middleware `{}`: {}",
                self.middleware, self.cause
            )?;
        }
        match &self.in_flight {
            Some(in_flight) => write!(f, " (after it had failed: {in_flight})"),
            None => Ok(()),
        }
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
    let target_panic = state.lock_target_panic().take();
    if let Some(payload) = target_panic {
        std::panic::resume_unwind(payload);
    }
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
