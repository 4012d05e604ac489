//! The node traits: [`Node`] (types and name), [`RunsWith`] (execution against
//! a model) and [`Accepts`] (the compile-time link check), and [`Cx`], the
//! per-run state a node executes against.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::context::Context;
use crate::error::BoxError;
use crate::event::{Event, EventSink};
use crate::failure::{NodeFailure, NodePanic};
use crate::middleware::{HookArg, Middleware, NodeCall, around};
use crate::record::{NodeRecord, NodeStatus};
use crate::run_context::RunContext;
use crate::run_id::RunId;

/// A step of a pipeline: its input type, its output type and its name.
///
/// `#[node]` implements it for the zero-sized value it makes of an `async fn`;
/// `pipeline![..]` implements it for the pipeline it builds, so pipelines nest.
/// What runs a node is [`RunsWith`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stroma node",
    label = "not a node",
    note = "make an `async fn` a node with `#[node]`, or chain nodes with `pipeline![..]`"
)]
pub trait Node: Clone + Send + Sync + 'static {
    /// What the node takes.
    type Input: Send + 'static;
    /// What the node gives.
    type Output: Send + 'static;

    /// The name shown in errors, records and tracing spans.
    fn name(&self) -> &'static str;

    /// How many leaf nodes this node runs on its straight path; sizes the
    /// record buffer of a run so records cost one allocation per run.
    #[doc(hidden)]
    fn leaf_count(&self) -> usize {
        1
    }

    /// Whether running this node may change the run's model. When no branch
    /// of `parallel!` or `for_each` may, their copies of the model are not
    /// merged back. `#[node]` says `false` for a function that takes no
    /// `&mut M` and does not update the model from its output; combinators
    /// say what their nodes say. `true`, the safe answer, unless overridden.
    /// A change made through `&M` by interior mutability is not counted.
    #[doc(hidden)]
    const MAY_CHANGE_MODEL: bool = true;

    /// `input` as JSON, if it has a JSON form: what a model that keeps the
    /// run's input ([`PipelineContext::initial_input`](crate::PipelineContext::initial_input))
    /// is given before the first node runs, or `null` when this is `None`.
    ///
    /// `#[node]` answers for its input type (`Some` when it is `Serialize`);
    /// pipelines and the crate's combinators ask the node that takes the
    /// input first (`for_each` makes a list of its items'). A hand-written
    /// node that wraps another should forward to it; otherwise `None`.
    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        let _ = input;
        None
    }
}

/// Runs a [`Node`] in a run whose typed model is `M`.
///
/// A node whose function takes no model implements `RunsWith<M>` for every
/// `M`; a node taking `&mut M` or `&M` only for that `M`. A pipeline runs with
/// `M` when all of its nodes do.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run with the model `{M}`",
    label = "this runs with the model `{M}`",
    note = "`{Self}` takes the run's model (`&mut M` or `&M`), so it runs only with a model of that type",
    note = "`runner.run(&pipeline, input)` runs with the model `()`; give the model with \
            `runner.run_with_model(&pipeline, input, model)`"
)]
pub trait RunsWith<M>: Node {
    /// Runs the node on `input`, against the run state `cx`.
    fn run<'a>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a;

    /// Runs the node when only records, if anything, watch the run (see
    /// [`Cx::direct`]): no events, middleware or enabled spans. `R` says
    /// whether the run keeps records. `#[node]` and `pipeline!`
    /// implement it with no bookkeeping around the node's own future beyond
    /// its record, so the compiler can fold a chain as if written by hand.
    #[doc(hidden)]
    #[inline]
    fn run_direct<'a, R: RecordMode>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        self.run(input, cx)
    }
}

/// Evaluates `$direct_run` with `$mode` naming the record mode when
/// `$direct` (a run's [`Cx::direct`], read once by the caller) allows nodes
/// to run directly, and `$general` otherwise: the one place that picks a
/// node's path, for the runner, loops and branches. A macro, not a
/// function, so each path's future is awaited in place by the caller with
/// no layer between (a function returning one combined future measured
/// slower for branches, and an `async fn` adds a layer).
macro_rules! by_path {
    ($direct:expr, |$mode:ident| $direct_run:expr, $general:expr) => {
        match $direct {
            Some(false) => {
                type $mode = $crate::node::Plain;
                $direct_run
            }
            Some(true) => {
                type $mode = $crate::node::Recorded;
                $direct_run
            }
            None => $general,
        }
    };
}
pub(crate) use by_path;

/// Awaits `node` on `input` against `cx` on the path [`by_path!`] picks,
/// catching a panic: how loops and branches run their nodes.
macro_rules! run_caught {
    ($node:expr, $input:expr, $cx:expr, $direct:expr) => {{
        use ::futures::FutureExt as _;
        use ::std::panic::AssertUnwindSafe;
        $crate::node::by_path!(
            $direct,
            |Mode| AssertUnwindSafe($node.run_direct::<Mode>($input, $cx))
                .catch_unwind()
                .await,
            AssertUnwindSafe($node.run($input, $cx))
                .catch_unwind()
                .await
        )
    }};
}
pub(crate) use run_caught;

/// "This node takes `T` as input": the bound `pipeline!` checks on every link.
///
/// `#[node]` implements it for the node's own input type only, so a link whose
/// types differ fails to compile with a message naming the node and both types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot follow a node whose output is `{T}`",
    label = "this node does not take `{T}` as input",
    note = "in `pipeline![..]` each node's input type must be the previous node's output type",
    note = "each element must be a node: an `async fn` marked `#[node]`, or a `pipeline![..]`"
)]
pub trait Accepts<T>: Node {
    /// The node itself. `pipeline!` stores each node under this type, so a
    /// link that does not fit is reported once, where it is written, and not
    /// again wherever the pipeline is used.
    #[doc(hidden)]
    type Checked;

    /// Passes the previous node's output on as this node's input (they are one type).
    fn accept(value: T) -> Self::Input;
}

/// The state of one run that nodes execute against: the shared [`Context`],
/// the typed model `M`, the run's identity, records and middleware.
///
/// `#[node]` and `pipeline!` generate the code that uses it; a hand-written
/// [`RunsWith`] implementation reads the context and model through it.
pub struct Cx<M> {
    state: RunState,
    model: M,
}

impl<M> Cx<M> {
    pub(crate) fn new(state: RunState, model: M) -> Self {
        Cx { state, model }
    }

    /// The run's shared context.
    pub fn context(&self) -> &Context {
        &self.state.shared.context
    }

    /// The run's model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The run's model, to change.
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.state.shared.run.run_id
    }

    /// The run: pipeline name, id, and the execution context it started with.
    pub fn run_context(&self) -> &RunContext {
        &self.state.shared.run
    }

    /// Whether nodes may now run through [`RunsWith::run_direct`]: `None`
    /// when events, middleware or a tracing subscriber that wants node spans
    /// watch the run; otherwise whether the run keeps records.
    #[doc(hidden)]
    #[inline]
    pub fn direct(&self) -> Option<bool> {
        self.state.direct()
    }

    /// The run's machinery and its model, borrowed apart so a node's body
    /// can hold the model while the machinery runs it.
    #[doc(hidden)]
    #[inline]
    pub fn split(&mut self) -> (&mut RunState, &mut M) {
        (&mut self.state, &mut self.model)
    }

    pub(crate) fn state(&mut self) -> &mut RunState {
        &mut self.state
    }

    pub(crate) fn state_ref(&self) -> &RunState {
        &self.state
    }

    pub(crate) fn into_parts(self) -> (RunState, M) {
        (self.state, self.model)
    }
}

/// A `#[node]` function's name, as a constant.
#[doc(hidden)]
pub trait LeafName {
    /// The name.
    const NAME: &'static str;
    /// The name, behind one thin pointer: what the running-node marker
    /// holds, so marking a node is one store.
    const NAME_REF: &'static &'static str = &Self::NAME;
}

/// How a node run directly ([`RunsWith::run_direct`]) keeps its record:
/// [`Plain`] keeps none, [`Recorded`] one per node.
#[doc(hidden)]
pub trait RecordMode: Send + 'static {
    /// What a running node holds for its record: nothing, or the run and
    /// when the node started.
    type Slot<'a>: Send;

    /// The node `L` starts on `run`: it is marked as running (a panic is
    /// attributed to it) and, if recorded, its start is noted.
    fn start<L: LeafName>(run: &mut RunState) -> Self::Slot<'_>;

    /// The node ended, having failed if `failed`.
    fn finish<L: LeafName>(slot: &mut Self::Slot<'_>, failed: bool);
}

/// Direct nodes keep no records; see [`RecordMode`].
#[doc(hidden)]
pub enum Plain {}

/// Direct nodes keep a record each; see [`RecordMode`].
#[doc(hidden)]
pub enum Recorded {}

impl RecordMode for Plain {
    type Slot<'a> = ();

    #[inline(always)]
    fn start<L: LeafName>(run: &mut RunState) {
        run.current = Some(L::NAME_REF);
    }

    #[inline(always)]
    fn finish<L: LeafName>(_: &mut (), _: bool) {}
}

impl RecordMode for Recorded {
    type Slot<'a> = (&'a mut RunState, Instant);

    #[inline(always)]
    fn start<L: LeafName>(run: &mut RunState) -> (&mut RunState, Instant) {
        run.current = Some(L::NAME_REF);
        let now = run.last_end.take().unwrap_or_else(Instant::now);
        run.current_since = Some(now);
        (run, now)
    }

    #[inline]
    fn finish<L: LeafName>((run, started): &mut (&mut RunState, Instant), failed: bool) {
        run.leave::<L>(*started, failed);
    }
}

/// The run's machinery: context, identity, records, middleware. Used by
/// generated code through [`Cx::split`].
#[doc(hidden)]
pub struct RunState {
    /// What the run's branches share with it: one handle to clone per branch.
    shared: Shared,
    pub(crate) records: Vec<NodeRecord>,
    /// The node that started last, and when, if the run keeps records. Kept
    /// as two fields written whole: the lean path writes only the name.
    current: Option<&'static &'static str>,
    current_since: Option<Instant>,
    /// When the last node ended, if nothing but pipeline glue ran since: the
    /// next node starts then, which saves it a clock read.
    last_end: Option<Instant>,
}

/// The part of a run's state that never changes during the run, shared by
/// the run and all its branches.
#[derive(Clone)]
struct RunShared {
    context: Context,
    run: RunContext,
    recording: bool,
    middleware: Arc<[Arc<dyn Middleware>]>,
    /// Where events go, when the run is streamed.
    events: Option<EventSink>,
}

/// Where a state keeps its shared part: in place until the run forks its
/// first branch, then behind an `Arc` the branches share, so a run that
/// never branches allocates nothing for it and a branch costs one count.
enum Shared {
    Alone(RunShared),
    Forked(Arc<RunShared>),
}

impl std::ops::Deref for Shared {
    type Target = RunShared;

    #[inline]
    fn deref(&self) -> &RunShared {
        match self {
            Shared::Alone(shared) => shared,
            Shared::Forked(shared) => shared,
        }
    }
}

impl RunState {
    /// A run's state; `events` is where its events go, if it is streamed.
    pub(crate) fn new(
        context: Context,
        run: RunContext,
        recording: bool,
        expected_nodes: usize,
        middleware: Arc<[Arc<dyn Middleware>]>,
        events: Option<EventSink>,
    ) -> Self {
        RunState {
            shared: Shared::Alone(RunShared {
                context,
                run,
                recording,
                middleware,
                events,
            }),
            records: if recording {
                Vec::with_capacity(expected_nodes)
            } else {
                Vec::new()
            },
            current: None,
            current_since: None,
            last_end: None,
        }
    }

    /// A branch's state: same context, run, middleware and event sink;
    /// records of its own, joined back with [`join`](Self::join).
    pub(crate) fn fork(&mut self) -> RunState {
        let shared = match &self.shared {
            Shared::Forked(shared) => Arc::clone(shared),
            Shared::Alone(alone) => {
                // The run's first branch: its shared part moves behind an `Arc`, once.
                let shared = Arc::new(alone.clone());
                self.shared = Shared::Forked(Arc::clone(&shared));
                shared
            }
        };
        RunState {
            shared: Shared::Forked(shared),
            records: Vec::new(),
            current: None,
            current_since: None,
            last_end: None,
        }
    }

    /// Makes a finished branch's state, whose records were taken, a fresh
    /// fork of `self` again, so one state can serve branch after branch.
    pub(crate) fn refork(&self, branch: &mut RunState) {
        debug_assert!(branch.records.is_empty(), "the branch's records were taken");
        branch.current = None;
        branch.current_since = None;
        branch.last_end = None;
    }

    /// Takes a finished branch's records, appended to this state's; the
    /// branch keeps its buffer, for [`refork`](Self::refork).
    #[inline]
    pub(crate) fn join(&mut self, branch: &mut RunState) {
        // Most branches of a lean run have none: no call to make.
        if !branch.records.is_empty() {
            self.records.append(&mut branch.records);
        }
    }

    /// The run's records and its context, once it is over.
    pub(crate) fn into_records_and_context(self) -> (Vec<NodeRecord>, Context) {
        let context = match self.shared {
            Shared::Alone(shared) => shared.context,
            Shared::Forked(shared) => shared.context.clone(),
        };
        (self.records, context)
    }

    /// Reports `event` when the run is streamed.
    #[inline]
    pub(crate) fn emit(&self, event: Event) {
        if let Some(sink) = &self.shared.events {
            // A consumer that stopped listening does not stop the run.
            let _ = sink.unbounded_send(event);
        }
    }

    /// See [`Cx::direct`].
    #[inline]
    pub(crate) fn direct(&self) -> Option<bool> {
        let watched = self.shared.events.is_some()
            || !self.shared.middleware.is_empty()
            || tracing::level_enabled!(tracing::Level::INFO);
        (!watched).then_some(self.shared.recording)
    }

    /// Records the end of the node `L`, begun `started`, run directly.
    #[inline]
    fn leave<L: LeafName>(&mut self, started: Instant, failed: bool) {
        let end = Instant::now();
        self.records.push(NodeRecord {
            name: L::NAME,
            status: if failed {
                NodeStatus::Failed
            } else {
                NodeStatus::Completed
            },
            duration: end.duration_since(started),
        });
        self.current_since = None;
        self.last_end = Some(end);
    }

    /// The context as the node `name` sees it: errors it returns name the node.
    #[doc(hidden)]
    #[inline]
    pub fn node_context(&self, name: &'static str) -> Context {
        self.shared.context.for_node(name)
    }

    /// Runs the body of the node `L`: in its span, inside the middleware,
    /// recorded, its error tagged with its name.
    ///
    /// The name comes from `L`'s constant rather than an argument, so it is
    /// never stored in the future only to be read back at once.
    #[doc(hidden)]
    #[inline]
    pub async fn run_node<L: LeafName, O: Send>(
        &mut self,
        body: impl Future<Output = Result<O, BoxError>> + Send,
    ) -> Result<O, NodeFailure> {
        let name = L::NAME;
        self.current = Some(L::NAME_REF);
        let started = if self.shared.recording || self.shared.events.is_some() {
            let now = self.last_end.take().unwrap_or_else(Instant::now);
            self.current_since = Some(now);
            self.emit(Event::NodeStarted { name });
            Some(now)
        } else {
            None
        };
        let span = tracing::info_span!("stroma.node", node = name);
        let outcome = if !self.shared.middleware.is_empty() {
            // Boxed, so runs without middleware do not carry the chain's state.
            Box::pin(self.run_in_middleware(name, body.instrument(span))).await
        } else if span.is_disabled() {
            // No subscriber wants the span: no wrapper to move and poll through.
            body.await
        } else {
            body.instrument(span).await
        };
        if let Some(at) = started {
            let error = outcome.as_ref().err().map(|err| err as &dyn fmt::Display);
            self.last_end = Some(self.finish_node(name, at, error));
            // Ended: a panic from here on is not this node's to record.
            self.current_since = None;
        }
        outcome.map_err(|cause| NodeFailure::error(name, cause))
    }

    async fn run_in_middleware<O: Send>(
        &self,
        name: &'static str,
        body: impl Future<Output = Result<O, BoxError>> + Send,
    ) -> Result<O, BoxError> {
        let context = self.shared.context.for_node(name);
        let call = NodeCall {
            node: name,
            run: &self.shared.run,
            context: &context,
        };
        around(&self.shared.middleware, HookArg::Node(&call), body).await
    }

    /// Code other than pipeline glue ran since the last node ended (a loop's
    /// condition, a merge): the next node reads the clock for its start.
    pub(crate) fn clock_moved(&mut self) {
        self.last_end = None;
    }

    /// A panic caught around some nodes, as the failure of the node it came
    /// from (the one that started last; `outer` if none did), recorded.
    pub(crate) fn panic_failure(
        &mut self,
        payload: Box<dyn std::any::Any + Send>,
        outer: &'static str,
    ) -> NodeFailure {
        self.record_panic();
        let node = self.current.map_or(outer, |name| *name);
        NodeFailure::error(node, Box::new(NodePanic::from_payload(&*payload)))
    }

    /// Records a panic of the running node, which never finished.
    pub(crate) fn record_panic(&mut self) {
        if let (Some(&name), Some(at)) = (self.current, self.current_since) {
            self.finish_node(name, at, Some(&"panicked"));
            // Reported once, even if an enclosing loop and the runner both catch it.
            self.current_since = None;
        }
    }

    /// Records the end of the node `name`, begun `at`, and reports it to a
    /// stream; `error` is its failure, if it failed. Returns when it ended.
    fn finish_node(
        &mut self,
        name: &'static str,
        at: Instant,
        error: Option<&dyn fmt::Display>,
    ) -> Instant {
        let end = Instant::now();
        let duration = end.duration_since(at);
        if self.shared.recording {
            self.records.push(NodeRecord {
                name,
                status: if error.is_none() {
                    NodeStatus::Completed
                } else {
                    NodeStatus::Failed
                },
                duration,
            });
        }
        if self.shared.events.is_some() {
            // The error's text is made only for a stream that shows it.
            self.emit(match error {
                None => Event::NodeCompleted { name, duration },
                Some(error) => Event::NodeFailed {
                    name,
                    duration,
                    error: error.to_string(),
                },
            });
        }
        end
    }

    pub(crate) fn middleware(&self) -> &Arc<[Arc<dyn Middleware>]> {
        &self.shared.middleware
    }
}
