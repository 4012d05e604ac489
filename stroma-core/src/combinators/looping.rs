//! [`loop_until`]: run a node again and again on its own output, each
//! iteration on a copy of the model that is kept only if the iteration succeeds.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use crate::context::propagation::with_context;
use crate::engine::failure::{NodeFailure, NodePanic, drop_caught};
use crate::engine::observe::Observer;
use crate::engine::run_caught;
use crate::engine::state::Cx;
use crate::error::BoxError;
use crate::node::{Accepts, Node, Runnable};
use crate::run::event::Event;
use crate::tree::ScopeKind;
use crate::tree::shape::ShapeBuilder;
use futures::FutureExt as _;

/// A node that can be a loop's body: its output type is its input type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a loop body: its output type must be its input type",
    label = "this node's output type is not its input type",
    note = "`loop_until` feeds each iteration's output to the next iteration as its input"
)]
pub trait LoopBody: Node {
    /// Passes an iteration's output on as the next iteration's input.
    fn feed(output: Self::Output) -> Self::Input;
}

impl<B: Node + Accepts<<B as Node>::Output>> LoopBody for B {
    #[inline(always)]
    fn feed(output: Self::Output) -> Self::Input {
        B::accept(output)
    }
}

/// Runs `body` on its own output until `until(output, model)` says done.
///
/// Each iteration runs on a copy of the model that is kept only if the
/// iteration succeeds; a failed iteration leaves the model as the previous
/// one left it and fails the loop, naming the iteration. Reaching the cap
/// ([`max_loops`](LoopUntil::max_loops), 10 unless set) without `until`
/// saying done is an error naming the loop and its cap (the iterations that
/// completed keep their changes to the model), or, with
/// [`return_last_on_cap`](LoopUntil::return_last_on_cap), returns the last
/// output.
///
/// The condition names the model's type (`|output, model: &M| ..`), since
/// the loop runs with that model; `&()` when the run has none.
///
/// ```
/// use stroma_core::loop_until;
/// # fn doc<B: stroma_core::LoopBody<Input = String, Output = String>>(refine: B) {
/// let refinement = loop_until(refine, |text: &String, _model: &()| text.len() > 40)
///     .max_loops(5)
///     .named("refinement");
/// # let _ = refinement;
/// # }
/// ```
pub fn loop_until<B, F, M>(body: B, until: F) -> LoopUntil<B, F, M>
where
    B: LoopBody,
    F: Fn(&B::Output, &M) -> bool,
{
    LoopUntil {
        body,
        until,
        max_loops: 10,
        name: "loop_until",
        on_cap: OnCap::Fail,
        model: PhantomData,
    }
}

/// A loop; see [`loop_until`].
pub struct LoopUntil<B, F, M> {
    body: B,
    until: F,
    max_loops: u32,
    name: &'static str,
    on_cap: OnCap,
    model: PhantomData<fn(&M)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnCap {
    Fail,
    ReturnLast,
}

impl<B, F, M> LoopUntil<B, F, M> {
    /// At most `n` iterations (at least one runs).
    pub fn max_loops(mut self, n: u32) -> Self {
        self.max_loops = n.max(1);
        self
    }

    /// The loop's id in the run tree, paths, errors and events (default `loop_until`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// At the cap, return the last iteration's output instead of failing.
    pub fn return_last_on_cap(mut self) -> Self {
        self.on_cap = OnCap::ReturnLast;
        self
    }
}

impl<B: Clone, F: Clone, M> Clone for LoopUntil<B, F, M> {
    fn clone(&self) -> Self {
        LoopUntil {
            body: self.body.clone(),
            until: self.until.clone(),
            max_loops: self.max_loops,
            name: self.name,
            on_cap: self.on_cap,
            model: PhantomData,
        }
    }
}

impl<B: crate::durable::Durable, F, M> crate::durable::Durable for LoopUntil<B, F, M> {}

#[diagnostic::do_not_recommend]
impl<B, F, M> Node for LoopUntil<B, F, M>
where
    B: LoopBody,
    F: Fn(&B::Output, &M) -> bool + Clone + Send + Sync + 'static,
    M: 'static,
{
    type Input = B::Input;
    type Output = B::Output;

    fn name(&self) -> &'static str {
        self.name
    }

    fn leaf_count(&self) -> usize {
        self.body.leaf_count()
    }

    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        B::input_json(input)
    }

    const MAY_CHANGE_MODEL: bool = B::MAY_CHANGE_MODEL;

    const USES_CONTEXT: bool = B::USES_CONTEXT;

    const ASKS_PATHS: bool = B::ASKS_PATHS;

    const SLOTS: u32 = 1 + B::SLOTS;

    fn describe(&self, shape: &mut ShapeBuilder) {
        shape.noted(
            |out| write!(out, "at most {} loops", self.max_loops),
            |shape| {
                shape.scope(self.name, ScopeKind::Loop, |inner| {
                    self.body.describe(inner)
                })
            },
        );
    }
}

#[diagnostic::do_not_recommend]
impl<B, F, M> Accepts<B::Input> for LoopUntil<B, F, M>
where
    B: LoopBody,
    F: Fn(&B::Output, &M) -> bool + Clone + Send + Sync + 'static,
    M: 'static,
{
    #[inline(always)]
    fn accept(value: B::Input) -> B::Input {
        value
    }
}

impl<B, F, M> Runnable<M> for LoopUntil<B, F, M>
where
    B: LoopBody + Runnable<M>,
    F: Fn(&B::Output, &M) -> bool + Clone + Send + Sync + 'static,
    M: Clone + Send + 'static,
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
            let scope = cx.state().enter_scope::<O>(slot);
            let outcome = self.iterate::<O>(input, cx, slot).await;
            cx.state().leave_scope::<O>(scope, outcome.as_ref().err());
            outcome
        }
    }
}

impl<B, F, M> LoopUntil<B, F, M>
where
    B: LoopBody + Runnable<M>,
    F: Fn(&B::Output, &M) -> bool + Clone + Send + Sync + 'static,
    M: Clone + Send + 'static,
{
    async fn iterate<O: Observer>(
        &self,
        input: B::Input,
        cx: &mut Cx<M>,
        slot: u32,
    ) -> Result<B::Output, NodeFailure> {
        let mut value = input;
        let here = cx.state_ref().loc(slot);
        'iterations: for iteration in 1..=self.max_loops {
            if O::WATCHED && cx.state_ref().streams() {
                let path = cx.state_ref().path_now(slot);
                cx.state().emit(|| Event::LoopIteration {
                    name: self.name,
                    path,
                    iteration,
                });
            }
            let kept = cx.model().clone();
            let frame = cx.state().enter_frame::<O>(slot, iteration);
            // A body that may write the context writes into a layer of the
            // iteration's own, kept only if the iteration succeeds.
            let layer = B::USES_CONTEXT.then(|| {
                let layer = cx.state_ref().context.child();
                std::mem::replace(&mut cx.state().context, layer)
            });
            let outcome = match &layer {
                None => run_caught!(O, self.body, value, cx, slot + 1),
                Some(_) => {
                    let inner = cx.state_ref().context.clone();
                    let run = AssertUnwindSafe(self.body.run::<O>(value, cx, slot + 1));
                    Box::pin(with_context(&inner, run.catch_unwind())).await
                }
            };
            // Back to the loop's own layer; the iteration's is merged below if it succeeded.
            let iteration_layer =
                layer.map(|outer| std::mem::replace(&mut cx.state().context, outer));
            let failure = 'failed: {
                match cx.state().settle_caught(outcome, slot + 1) {
                    Ok(output) => {
                        // Where a panic dropping the body's output is blamed.
                        let body_at = cx.state_ref().loc(slot + 1);
                        // A condition that panics fails the loop itself, not
                        // the node that ran last.
                        let until = || (self.until)(&output, cx.model());
                        let done = match std::panic::catch_unwind(AssertUnwindSafe(until)) {
                            Ok(done) => done,
                            Err(payload) => {
                                let panic = NodePanic::from_payload(&*payload);
                                break 'failed NodeFailure::at(here, Box::new(panic))
                                    .followed_by_any(drop_caught(output, body_at));
                            }
                        };
                        cx.state().leave_frame::<O>(frame, false);
                        if let Some(layer) = &iteration_layer {
                            cx.state_ref().context.commit_child(layer);
                        }
                        if done {
                            return Ok(output);
                        }
                        if iteration == self.max_loops {
                            return match self.on_cap {
                                OnCap::ReturnLast => Ok(output),
                                OnCap::Fail => Err(NodeFailure::at(
                                    here,
                                    Box::new(LoopCapReached {
                                        name: self.name,
                                        max_loops: self.max_loops,
                                    }),
                                )
                                .followed_by_any(drop_caught(output, body_at))),
                            };
                        }
                        value = B::feed(output);
                        continue 'iterations;
                    }
                    Err(failure) => failure,
                }
            };
            cx.state().leave_frame::<O>(frame, true);
            // The failed iteration's changes are discarded.
            *cx.model_mut() = kept;
            return Err(failure.map_cause(|cause| {
                Box::new(LoopIterationFailed {
                    name: self.name,
                    iteration,
                    cause,
                })
            }));
        }
        unreachable!("max_loops is at least 1, and the last iteration returns")
    }
}

/// A loop ran `max_loops` iterations without its exit condition holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopCapReached {
    name: &'static str,
    max_loops: u32,
}

impl fmt::Display for LoopCapReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loop `{}` reached its cap of {} iterations without its exit condition holding; \
             raise `max_loops`, or use `return_last_on_cap()` to take the last output",
            self.name, self.max_loops
        )
    }
}

impl std::error::Error for LoopCapReached {}

/// An iteration of a loop failed; its changes to the model were discarded.
#[derive(Debug)]
pub struct LoopIterationFailed {
    name: &'static str,
    iteration: u32,
    cause: BoxError,
}

impl LoopIterationFailed {
    /// Which iteration failed, from 1.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The loop's name.
    pub fn loop_name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Display for LoopIterationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (in iteration {} of loop `{}`, whose changes were discarded)",
            self.cause, self.iteration, self.name
        )
    }
}

impl LoopIterationFailed {
    pub(crate) fn cause_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        &mut *self.cause
    }
}

impl std::error::Error for LoopIterationFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}
