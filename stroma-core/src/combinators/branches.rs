//! Concurrent branches: `parallel![..]` and [`for_each`]. Each branch runs on
//! its own copy of the model; when all succeed the copies are merged back in
//! declaration order (see the merge rule on [`Mergeable`](crate::Mergeable));
//! when any fails, the whole fails, reporting every branch, and the model is
//! left as it was.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context as TaskContext;
use std::task::{Poll, Wake, Waker};

use futures::task::AtomicWaker;

use crate::context::Context;
use crate::context::propagation::with_context;
use crate::engine::failure::{NodeFailure, drop_caught};
use crate::engine::observe::Observer;
use crate::engine::run_caught;
use crate::engine::state::{Cx, ScopeToken};
use crate::model::merge::{Mergeable, merge_models};
use crate::node::{Accepts, Node, Runnable};
use crate::run::event::Event;
use crate::tree::ScopeKind;
use crate::tree::shape::{Shape, ShapeBuilder};
use crate::tree::trace::{Entry, FrameRow, Loc, Paths};
use futures::FutureExt as _;
use std::panic::AssertUnwindSafe;

/// A branch of `cx`'s run, for `parallel!`.
#[doc(hidden)]
#[inline]
pub fn fork<M: Clone>(cx: &mut Cx<M>) -> Cx<M> {
    cx.fork()
}

/// Enters the composite scope at `slot`, for generated combinators.
#[doc(hidden)]
#[inline(always)]
pub fn enter_scope<O: Observer, M>(cx: &mut Cx<M>, slot: u32) -> ScopeToken {
    cx.state().enter_scope::<O>(slot)
}

/// Leaves a scope entered with [`enter_scope`], which failed with `failure` if any.
#[doc(hidden)]
#[inline(always)]
pub fn leave_scope<O: Observer, M>(
    cx: &mut Cx<M>,
    token: ScopeToken,
    failure: Option<&NodeFailure>,
) {
    cx.state().leave_scope::<O>(token, failure)
}

/// Runs `node` (at `slot`) as the branch `index` of the dynamic scope at
/// `scope`, in a frame of its own, turning a panic into its failure.
#[doc(hidden)]
pub async fn run_branch<O, N, M>(
    node: &N,
    input: N::Input,
    cx: &mut Cx<M>,
    scope: u32,
    index: u32,
    slot: u32,
) -> Result<N::Output, NodeFailure>
where
    O: Observer,
    N: Runnable<M>,
    M: Send + 'static,
{
    let frame = cx.state().enter_frame::<O>(scope, index);
    let caught = if N::USES_CONTEXT {
        // A layer of its own: its writes merge back only if every branch succeeds.
        let layer = cx.state_ref().context.child();
        cx.state().context = layer.clone();
        let run = AssertUnwindSafe(node.run::<O>(input, cx, slot)).catch_unwind();
        // Boxed: the branch's future stays small for nodes that do not write
        // the context, which make no layer and are most branches and items.
        Box::pin(with_context(&layer, run)).await
    } else {
        run_caught!(O, node, input, cx, slot)
    };
    let outcome = cx.state().settle_caught(caught, slot);
    cx.state().leave_frame::<O>(frame, outcome.is_err());
    outcome
}

/// One finished branch: its id, its copy of the run, whether its node may
/// change the model ([`Node::MAY_CHANGE_MODEL`]), and its failure if it failed.
#[doc(hidden)]
pub struct Settled<'b, M> {
    pub name: &'static str,
    pub cx: &'b mut Cx<M>,
    pub may_change_model: bool,
    /// Whether the branch has a context layer of its own to merge back.
    pub uses_context: bool,
    pub failure: Option<NodeFailure>,
}

/// Joins finished branches back into `cx`, in declaration order: their
/// records, then (if all succeeded) their models, merged. If any failed,
/// fails naming every branch's outcome and leaves the model as it was.
///
/// Only the copies that may differ from the model are merged (an unchanged
/// copy adds nothing to a merge); when none may, nothing is merged. The
/// branches are borrowed, not moved: each is a whole run state and a model,
/// which would be copied on the way in.
#[doc(hidden)]
pub fn settle<M: Mergeable>(
    cx: &mut Cx<M>,
    slot: u32,
    name: &'static str,
    branches: &mut [Settled<'_, M>],
) -> Result<(), NodeFailure> {
    for branch in branches.iter_mut() {
        cx.state().join(branch.cx.state());
    }
    let at = cx.state_ref().loc(slot);
    if branches.iter().any(|b| b.failure.is_some()) {
        let outcomes = branches
            .iter_mut()
            .map(|branch| (branch.name, branch.failure.take()))
            .collect();
        return Err(NodeFailure::at(
            at,
            Box::new(BranchesFailed {
                name,
                kind: ScopeKind::Parallel,
                outcomes,
            }),
        ));
    }
    let mut copies = branches
        .iter()
        .filter(|b| b.may_change_model)
        .map(|b| b.cx.model())
        .peekable();
    let merged = if copies.peek().is_some() {
        Some(merge_caught(cx.model(), copies).map_err(|cause| NodeFailure::at(at, cause))?)
    } else {
        None
    };
    // The context after the model, and the model assigned only after both
    // merged: a conflict in either leaves both as before the branches.
    let layers: Vec<&Context> = branches
        .iter()
        .filter(|b| b.uses_context)
        .map(|b| &b.cx.state_ref().context)
        .collect();
    if !layers.is_empty() {
        cx.state_ref()
            .context
            .merge_children(&layers)
            .map_err(|conflict| NodeFailure::at(at, Box::new(conflict)))?;
    }
    if let Some(merged) = merged {
        *cx.model_mut() = merged;
    }
    cx.state().clock_moved();
    Ok(())
}

/// [`merge_models`], with a panic in user code it calls (a `Reducer`, a
/// `Serialize`) as the merge's error, blamed on the scope that merges.
fn merge_caught<'b, M: Mergeable>(
    base: &M,
    copies: impl IntoIterator<Item = &'b M>,
) -> Result<M, crate::error::BoxError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| merge_models(base, copies))).unwrap_or_else(
        |payload| {
            Err(
                Box::new(crate::engine::failure::NodePanic::from_payload(&*payload))
                    as crate::error::BoxError,
            )
        },
    )
}

/// At least one branch of a `parallel!` (or item of a `for_each`) failed:
/// every branch's outcome, in declaration (or item) order.
#[derive(Debug)]
pub struct BranchesFailed {
    name: &'static str,
    kind: ScopeKind,
    outcomes: Vec<(&'static str, Option<NodeFailure>)>,
}

impl BranchesFailed {
    /// Each branch's id and, if it failed, its failure.
    pub fn outcomes(&self) -> impl Iterator<Item = (&'static str, Option<&NodeFailure>)> {
        self.outcomes
            .iter()
            .map(|(name, failure)| (*name, failure.as_ref()))
    }

    /// The failures alone, with the index of the branch or item each is.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &NodeFailure)> {
        self.outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, (_, failure))| failure.as_ref().map(|f| (index, f)))
    }

    pub(crate) fn first_failure(&self) -> Option<&NodeFailure> {
        self.failures().next().map(|(_, failure)| failure)
    }

    /// Tells the failures their paths, and this its scope's id (`owner`).
    pub(crate) fn resolve(&mut self, shape: &Shape, paths: &Paths<'_>, owner: &'static str) {
        if !owner.is_empty() {
            self.name = owner;
        }
        for failure in self.outcomes.iter_mut().filter_map(|(_, f)| f.as_mut()) {
            failure.resolve(shape, paths);
        }
    }
}

impl fmt::Display for BranchesFailed {
    /// Names the failed branches or items only; the others completed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failures().count();
        let (what, state) = match self.kind {
            ScopeKind::ForEach => ("items", "the model and context are as before the list"),
            _ => (
                "branches",
                "the model and context are as before the branches",
            ),
        };
        write!(
            f,
            "{failed} of {} {what} of `{}` failed ({state}):",
            self.outcomes.len(),
            self.name
        )?;
        for (index, failure) in self.failures() {
            write!(f, " [{index}] {failure};")?;
        }
        Ok(())
    }
}

impl std::error::Error for BranchesFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.outcomes
            .iter()
            .find_map(|(_, failure)| failure.as_ref())
            .map(|failure| failure as &(dyn std::error::Error + 'static))
    }
}

/// Runs `node` on every item of a `Vec`, at most [`concurrency`](ForEach::concurrency)
/// at a time (1 unless set), and gives the outputs in the items' order.
///
/// Each item runs as a branch on its own copy of the model; the copies are
/// merged in item order, as `parallel!` merges its branches (and, as there,
/// only when the node may change the model through `&mut M`). If any item
/// fails, the whole fails reporting every item's outcome
/// ([`BranchesFailed`]), and the model is left as it was.
pub fn for_each<N: Node>(node: N) -> ForEach<N> {
    ForEach {
        node,
        concurrency: 1,
        name: "for_each",
    }
}

/// A node over a list; see [`for_each`].
#[derive(Debug, Clone, Copy)]
pub struct ForEach<N> {
    node: N,
    concurrency: usize,
    name: &'static str,
}

impl<N> ForEach<N> {
    /// At most `n` items in flight at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The id in the run tree, paths, errors and spans (default `for_each`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Every item runs whatever the others do: the output is each item's
    /// outcome, in item order (`Vec<Result<O, NodeFailure>>`), so one bad
    /// item (a dead link, a failed call) does not fail the list. Each
    /// failure names its node and path (`for_each[3].fetch`); the items
    /// that succeeded merge their copies of the model and their context
    /// writes, the failed ones leave nothing.
    ///
    /// ```
    /// use stroma::prelude::*;
    ///
    /// #[node]
    /// async fn parse(text: String) -> Result<u32, std::num::ParseIntError> {
    ///     text.parse()
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let p = pipeline![for_each(parse).keep_going()];
    /// let input = vec!["1".to_string(), "two".into(), "3".into()];
    /// let outcomes = StromaRunner::quick().run(&p, input).await.unwrap().final_state;
    /// assert_eq!(outcomes[0].as_ref().ok(), Some(&1));
    /// let failed = outcomes[1].as_ref().unwrap_err();
    /// assert_eq!(failed.path().unwrap().as_str(), "for_each[1].parse");
    /// assert_eq!(outcomes[2].as_ref().ok(), Some(&3));
    /// # });
    /// ```
    pub fn keep_going(self) -> KeepGoing<N> {
        KeepGoing { each: self }
    }
}

/// A [`for_each`] whose items all run, giving each one's outcome; see
/// [`ForEach::keep_going`].
#[derive(Debug, Clone, Copy)]
pub struct KeepGoing<N> {
    each: ForEach<N>,
}

impl<N> KeepGoing<N> {
    /// At most `n` items in flight at once (at least 1).
    pub fn concurrency(self, n: usize) -> Self {
        KeepGoing {
            each: self.each.concurrency(n),
        }
    }

    /// The id in the run tree, paths, errors and spans (default `for_each`).
    pub fn named(self, name: &'static str) -> Self {
        KeepGoing {
            each: self.each.named(name),
        }
    }
}

impl<N: crate::durable::Durable> crate::durable::Durable for KeepGoing<N> {}

#[diagnostic::do_not_recommend]
impl<N: Node> Node for KeepGoing<N> {
    type Input = Vec<N::Input>;
    type Output = Vec<Result<N::Output, NodeFailure>>;

    fn name(&self) -> &'static str {
        self.each.name
    }

    const MAY_CHANGE_MODEL: bool = N::MAY_CHANGE_MODEL;

    const USES_CONTEXT: bool = N::USES_CONTEXT;

    // The failures it gives are named with their paths while the run goes
    // on, which takes the run's record of paths.
    const ASKS_PATHS: bool = true;

    const SLOTS: u32 = ForEach::<N>::SLOTS;

    fn describe(&self, shape: &mut ShapeBuilder) {
        self.each.describe(shape)
    }

    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        ForEach::<N>::input_json(input)
    }
}

#[diagnostic::do_not_recommend]
impl<N: Node> Accepts<Vec<N::Input>> for KeepGoing<N> {
    fn accept(value: Vec<N::Input>) -> Vec<N::Input> {
        value
    }
}

impl<N, M> Runnable<M> for KeepGoing<N>
where
    N: Runnable<M>,
    M: Mergeable,
{
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        self.each
            .run_list::<O, M, Outcomes<N::Output>>(input, cx, slot)
    }
}

impl<N: crate::durable::Durable> crate::durable::Durable for ForEach<N> {}

#[diagnostic::do_not_recommend]
impl<N: Node> Node for ForEach<N> {
    type Input = Vec<N::Input>;
    type Output = Vec<N::Output>;

    fn name(&self) -> &'static str {
        self.name
    }

    const MAY_CHANGE_MODEL: bool = N::MAY_CHANGE_MODEL;

    const USES_CONTEXT: bool = N::USES_CONTEXT;

    const ASKS_PATHS: bool = N::ASKS_PATHS;

    const SLOTS: u32 = 1 + N::SLOTS;

    fn describe(&self, shape: &mut ShapeBuilder) {
        shape.scope(self.name, ScopeKind::ForEach, |inner| {
            self.node.describe(inner)
        });
    }

    /// The run's input is the list: a list of the items' JSON.
    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        input
            .iter()
            .map(N::input_json)
            .collect::<Option<Vec<_>>>()
            .map(serde_json::Value::Array)
    }
}

#[diagnostic::do_not_recommend]
impl<N: Node> Accepts<Vec<N::Input>> for ForEach<N> {
    fn accept(value: Vec<N::Input>) -> Vec<N::Input> {
        value
    }
}

impl<N, M> Runnable<M> for ForEach<N>
where
    N: Runnable<M>,
    M: Mergeable,
{
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        self.run_list::<O, M, AllOrNothing<N::Output>>(input, cx, slot)
    }
}

impl<N: Node> ForEach<N> {
    /// Runs the list as its scope in the run tree; `C` gathers the items'
    /// outcomes into the output.
    async fn run_list<O: Observer, M, C: ItemOutcomes<N::Output>>(
        &self,
        input: Vec<N::Input>,
        cx: &mut Cx<M>,
        slot: u32,
    ) -> Result<C::Output, NodeFailure>
    where
        N: Runnable<M>,
        M: Mergeable,
    {
        let scope = cx.state().enter_scope::<O>(slot);
        let outcome = self.run_items::<O, M, C>(input, cx, slot).await;
        cx.state().leave_scope::<O>(scope, outcome.as_ref().err());
        outcome
    }

    /// Runs every item; `C` gathers their outcomes into the output.
    async fn run_items<O: Observer, M, C: ItemOutcomes<N::Output>>(
        &self,
        input: Vec<N::Input>,
        cx: &mut Cx<M>,
        slot: u32,
    ) -> Result<C::Output, NodeFailure>
    where
        N: Runnable<M>,
        M: Mergeable,
    {
        {
            let count = input.len();
            // What each item's lane goes back to after the item (declared
            // first: the lanes borrow it until they are dropped).
            let outer_context = cx.context().clone();
            let outer_context = &outer_context;
            let merging = N::MAY_CHANGE_MODEL;
            let mut gathered = Gathered::<_, C, M>::new(count, merging);
            let mut items = input.into_iter().enumerate();
            // One lane per item in flight, at most `concurrency`. A lane keeps
            // its branch from item to item (a fork per lane, not per item),
            // boxes its future once and refills the box in place, and has its
            // own waker, so a wake-up polls only the lanes that were woken.
            let lanes = self.concurrency.min(count);
            // Each lane's branch of the run, made when the lane opens and kept
            // in place from item to item: an item's future holds a reference
            // to it, so running an item moves nothing but that reference.
            let mut forks: Vec<Option<Cx<M>>> = (0..lanes).map(|_| None).collect();
            let mut free_forks = forks.iter_mut();
            let mut running: Vec<Lane<_>> = Vec::with_capacity(lanes);
            let task_waker = Arc::new(AtomicWaker::new());
            let node = &self.node;
            let item_run = |index: usize, item: N::Input, branch| {
                run_item::<O, N, M>(node, index, item, branch, slot, count, outer_context)
            };
            std::future::poll_fn(|task| {
                // Registered before the lanes are looked at: a lane woken
                // after its look wakes this task again.
                task_waker.register(task.waker());
                for lane in 0..lanes {
                    if lane == running.len() {
                        // Every open lane has an item: open another, if items are left.
                        let Some((index, item)) = items.next() else {
                            break;
                        };
                        let Some(free) = free_forks.next() else {
                            break;
                        };
                        let branch = free.insert(cx.fork());
                        running.push(Lane::new(
                            item_run(index, item, branch),
                            Arc::clone(&task_waker),
                        ));
                    } else if !running[lane].take_wake() {
                        continue;
                    }
                    let Lane {
                        future,
                        busy,
                        waker,
                        ..
                    } = &mut running[lane];
                    let mut lane_task = TaskContext::from_waker(waker);
                    while let Poll::Ready((index, outcome, branch, layer)) =
                        future.as_mut().poll(&mut lane_task)
                    {
                        gathered.finish(cx, merging, index, outcome, &mut *branch, layer);
                        let Some((index, item)) = items.next() else {
                            *busy = false;
                            break;
                        };
                        // The lane takes the next item at once, on the same branch.
                        future.set(item_run(index, item, branch));
                    }
                }
                if running.iter().any(|lane| lane.busy) {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            drop(running);
            drop(free_forks);
            drop(forks);
            gathered.settle(cx, slot, self.name, self.node.name(), merging)
        }
    }
}

/// Runs the item `index` of `count` of the `for_each` at `slot` on its
/// lane's `branch`; gives back the branch and the item's context layer,
/// if it had one (the branch goes back to `outer` for the lane's next item).
async fn run_item<'f, O, N, M>(
    node: &'f N,
    index: usize,
    item: N::Input,
    branch: &'f mut Cx<M>,
    slot: u32,
    count: usize,
    outer: &'f Context,
) -> (
    usize,
    Result<N::Output, NodeFailure>,
    &'f mut Cx<M>,
    Option<Context>,
)
where
    O: Observer,
    N: Runnable<M>,
    M: Send + 'static,
{
    if O::WATCHED && branch.state_ref().streams() {
        let path = branch.state_ref().path_now(slot).indexed(index as u32);
        branch.state().emit(|| Event::ItemStarted {
            path,
            index,
            total: count,
        });
    }
    let outcome = run_branch::<O, N, M>(node, item, branch, slot, index as u32, slot + 1).await;
    let layer =
        N::USES_CONTEXT.then(|| std::mem::replace(&mut branch.state().context, outer.clone()));
    (index, outcome, branch, layer)
}

/// One item in flight of a `for_each`, or a lane done with its last item.
struct Lane<F> {
    future: Pin<Box<F>>,
    /// Whether `future` is still to finish.
    busy: bool,
    waker: Waker,
    woken: Arc<LaneWaker>,
}

impl<F> Lane<F> {
    fn new(future: F, task: Arc<AtomicWaker>) -> Self {
        let woken = Arc::new(LaneWaker {
            woken: AtomicBool::new(false),
            task,
        });
        Lane {
            future: Box::pin(future),
            busy: true,
            waker: Waker::from(Arc::clone(&woken)),
            woken,
        }
    }

    /// Whether the lane's item was woken since it was last polled (and is still to finish).
    fn take_wake(&self) -> bool {
        self.busy
            && self.woken.woken.load(Ordering::Relaxed)
            && self.woken.woken.swap(false, Ordering::Acquire)
    }
}

/// A lane's waker: marks the lane to be polled, and wakes the task that
/// polls the `for_each`.
struct LaneWaker {
    woken: AtomicBool,
    task: Arc<AtomicWaker>,
}

impl Wake for LaneWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// How a `for_each` gathers its items' outcomes into its output.
trait ItemOutcomes<O>: Send {
    type Output;

    fn with_capacity(count: usize) -> Self;

    /// Takes the outcome of the item `index` (items come in order).
    fn push(&mut self, index: usize, outcome: Result<O, NodeFailure>);

    /// The outcomes, if the list as a whole succeeded; else the failures
    /// that fail it, by item index, and the panics of outputs that were no
    /// longer needed when they were dropped, blamed on the node at `item()`.
    fn settled(self, item: impl FnOnce() -> Loc) -> Result<Self, ListFailed>
    where
        Self: Sized;

    /// The output, once the list succeeded; `resolve` names a failure kept in it.
    fn into_output(self, resolve: impl FnMut(&mut NodeFailure)) -> Self::Output;
}

/// Why a list failed: its failures by item index, and the panics of the
/// outputs dropped after them.
type ListFailed = (Vec<(usize, NodeFailure)>, Vec<NodeFailure>);

/// A plain `for_each`: all items succeed, or the list fails.
struct AllOrNothing<O> {
    /// The outputs, in item order; after a failure, those no longer needed.
    outputs: Vec<O>,
    failures: Vec<(usize, NodeFailure)>,
}

impl<O: Send> ItemOutcomes<O> for AllOrNothing<O> {
    type Output = Vec<O>;

    fn with_capacity(count: usize) -> Self {
        AllOrNothing {
            // Reserved at the item count: collecting would grow it by doubling.
            outputs: Vec::with_capacity(count),
            failures: Vec::new(),
        }
    }

    fn push(&mut self, index: usize, outcome: Result<O, NodeFailure>) {
        match outcome {
            // Kept even after a failure, to be dropped where a panicking
            // `Drop` is caught (`settled`).
            Ok(output) => self.outputs.push(output),
            Err(failure) => self.failures.push((index, failure)),
        }
    }

    fn settled(self, item: impl FnOnce() -> Loc) -> Result<Self, ListFailed> {
        if self.failures.is_empty() {
            return Ok(self);
        }
        let item = item();
        let dropped = self
            .outputs
            .into_iter()
            .filter_map(|output| drop_caught(output, item))
            .collect();
        Err((self.failures, dropped))
    }

    fn into_output(self, _resolve: impl FnMut(&mut NodeFailure)) -> Vec<O> {
        self.outputs
    }
}

/// A `for_each(..).keep_going()`: every item's outcome is the output.
struct Outcomes<O> {
    outcomes: Vec<Result<O, NodeFailure>>,
}

impl<O: Send> ItemOutcomes<O> for Outcomes<O> {
    type Output = Vec<Result<O, NodeFailure>>;

    fn with_capacity(count: usize) -> Self {
        Outcomes {
            outcomes: Vec::with_capacity(count),
        }
    }

    fn push(&mut self, _index: usize, outcome: Result<O, NodeFailure>) {
        self.outcomes.push(outcome);
    }

    /// Never fails: each failure is an item's outcome.
    fn settled(self, _item: impl FnOnce() -> Loc) -> Result<Self, ListFailed> {
        Ok(self)
    }

    fn into_output(mut self, mut resolve: impl FnMut(&mut NodeFailure)) -> Self::Output {
        for failure in self.outcomes.iter_mut().filter_map(|o| o.as_mut().err()) {
            resolve(failure);
        }
        self.outcomes
    }
}

/// What the items of a `for_each` left, gathered in item order as they finish.
struct Gathered<O, C, M> {
    /// The item gathered next.
    next: usize,
    outcomes: C,
    /// The succeeded items' copies of the model, to merge, when merging.
    models: Vec<M>,
    /// The succeeded items' context layers, to merge, when the node may write the context.
    layers: Vec<Context>,
    /// Items that finished before an earlier one: entry `i` is item `next + i`.
    early: VecDeque<Option<Early<O, M>>>,
}

/// An item that finished before an earlier one, waiting its turn.
struct Early<O, M> {
    outcome: Result<O, NodeFailure>,
    entries: Vec<Entry>,
    frames: Vec<FrameRow>,
    model: Option<M>,
    layer: Option<Context>,
}

impl<O, C: ItemOutcomes<O>, M: Mergeable> Gathered<O, C, M> {
    fn new(count: usize, merging: bool) -> Self {
        Gathered {
            next: 0,
            outcomes: C::with_capacity(count),
            models: Vec::with_capacity(if merging { count } else { 0 }),
            layers: Vec::new(),
            early: VecDeque::new(),
        }
    }

    /// Takes what the item `index` left on `branch`: in turn if every
    /// earlier item was gathered, later otherwise; then makes the branch
    /// ready for the lane's next item.
    fn finish(
        &mut self,
        cx: &mut Cx<M>,
        merging: bool,
        index: usize,
        outcome: Result<O, NodeFailure>,
        branch: &mut Cx<M>,
        layer: Option<Context>,
    ) {
        // The item's copy of the model is kept for the merge if it succeeded;
        // the next item starts from a fresh copy, since this one may have changed it.
        let model = merging.then(|| std::mem::replace(branch.model_mut(), cx.model().clone()));
        let model = model.filter(|_| outcome.is_ok());
        let state = branch.state();
        if index == self.next && self.early.is_empty() {
            // In turn: the records go straight to the run, the branch keeps its buffer.
            cx.state().join(state);
            self.gather(outcome, model, layer);
        } else {
            let offset = index - self.next;
            if self.early.len() <= offset {
                self.early.resize_with(offset + 1, || None);
            }
            self.early[offset] = Some(Early {
                outcome,
                entries: std::mem::take(&mut state.entries),
                frames: std::mem::take(&mut state.frames),
                model,
                layer,
            });
            while let Some(Some(_)) = self.early.front() {
                let Early {
                    outcome,
                    mut entries,
                    mut frames,
                    model,
                    layer,
                } = self.early.pop_front().flatten().expect("looked at above");
                cx.state().entries.append(&mut entries);
                cx.state().frames.append(&mut frames);
                self.gather(outcome, model, layer);
            }
        }
        cx.state_ref().refork(branch.state());
    }

    /// Gathers the item `self.next`: a failed item leaves no model or
    /// context writes to merge.
    fn gather(
        &mut self,
        outcome: Result<O, NodeFailure>,
        model: Option<M>,
        layer: Option<Context>,
    ) {
        if outcome.is_ok() {
            self.layers.extend(layer);
        }
        self.models.extend(model);
        self.outcomes.push(self.next, outcome);
        self.next += 1;
    }

    /// Once every item was gathered: the output, with the copies of the
    /// model merged in item order, or every item's outcome if the list failed.
    fn settle(
        self,
        cx: &mut Cx<M>,
        slot: u32,
        name: &'static str,
        item_name: &'static str,
        merging: bool,
    ) -> Result<C::Output, NodeFailure> {
        let at = cx.state_ref().loc(slot);
        let outcomes = match self.outcomes.settled(|| cx.state_ref().loc(slot + 1)) {
            Ok(outcomes) => outcomes,
            Err((failures, dropped)) => {
                let mut failures = failures.into_iter().peekable();
                let outcomes = (0..self.next)
                    .map(|index| {
                        let failure = failures.next_if(|(failed, _)| *failed == index);
                        (item_name, failure.map(|(_, failure)| failure))
                    })
                    .collect();
                let failure = NodeFailure::at(
                    at,
                    Box::new(BranchesFailed {
                        name,
                        kind: ScopeKind::ForEach,
                        outcomes,
                    }),
                );
                return Err(dropped.into_iter().fold(failure, NodeFailure::followed_by));
            }
        };
        let merged = if merging && !self.models.is_empty() {
            Some(
                merge_caught(cx.model(), &self.models)
                    .map_err(|cause| NodeFailure::at(at, cause))?,
            )
        } else {
            None
        };
        // As for `parallel!`: the model is assigned only once the context merged too.
        if !self.layers.is_empty() {
            let layers: Vec<&Context> = self.layers.iter().collect();
            cx.state_ref()
                .context
                .merge_children(&layers)
                .map_err(|conflict| NodeFailure::at(at, Box::new(conflict)))?;
        }
        if let Some(merged) = merged {
            *cx.model_mut() = merged;
        }
        cx.state().clock_moved();
        let store = &cx.state_ref().shared().store;
        Ok(outcomes.into_output(|failure| match store {
            Some(store) => store.with_paths(|shape, paths| failure.resolve(shape, paths)),
            // A `keep_going` list asks for paths (`ASKS_PATHS`), so its
            // run keeps a store; a hand-written wrapper that hides it
            // from its run gets the item's name alone.
            None => failure.name_if_unknown(item_name),
        }))
    }
}

/// Drops the output of the branch at `slot` after [`settle`] failed,
/// keeping a panic in its `Drop` beside `failure`.
#[doc(hidden)]
pub fn drop_branch_output<O, M>(
    cx: &Cx<M>,
    failure: NodeFailure,
    output: Option<O>,
    slot: u32,
) -> NodeFailure {
    failure.followed_by_any(drop_caught(output, cx.state_ref().loc(slot)))
}

/// Unwraps a branch's output once [`settle`] has said every branch succeeded.
#[doc(hidden)]
pub fn settled_output<O>(outcome: Option<O>) -> O {
    outcome.expect("settle fails the whole when a branch fails, so every branch has an output")
}

/// Polls a branch of `parallel!` that has not finished; its outcome goes
/// to `outcome`. Returns whether it is still pending.
///
/// `parallel!` joins its branches with this rather than `join!`, whose
/// `MaybeDone` copies each whole finished future to take its output.
#[doc(hidden)]
#[inline]
pub fn poll_branch<F: Future>(
    future: Pin<&mut F>,
    outcome: &mut Option<F::Output>,
    task: &mut TaskContext<'_>,
) -> bool {
    if outcome.is_some() {
        return false;
    }
    match future.poll(task) {
        Poll::Ready(done) => {
            *outcome = Some(done);
            false
        }
        Poll::Pending => true,
    }
}

/// Splits a finished branch's outcome into its output and its failure.
#[doc(hidden)]
pub fn split_outcome<O>(
    outcome: Option<Result<O, NodeFailure>>,
) -> (Option<O>, Option<NodeFailure>) {
    match outcome.expect("`parallel!` waits until every branch has finished") {
        Ok(output) => (Some(output), None),
        Err(failure) => (None, Some(failure)),
    }
}
