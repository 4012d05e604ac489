//! [`RunState`]: one run's machinery (context, identity, entries, frames,
//! middleware, events), and [`Cx`], that state with the run's model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::combinators::flow::VarScope;
use crate::combinators::modifiers::Modifier;
use crate::context::Context;
use crate::context::scoped::Place;
use crate::durable::run::{DurableRun, NodeJournal};
use crate::engine::failure::{NodeFailure, NodePanic};
use crate::engine::observe::Observer;
use crate::run::event::{Event, Sinks};
use crate::run::middleware::Middleware;
use crate::run::run_context::RunContext;
use crate::run::run_id::RunId;
use crate::session::Session;
use crate::session::view::{PhaseSession, SessionView};
use crate::tree::ScopePath;
use crate::tree::kept::Kept;
use crate::tree::record::NodeStatus;
use crate::tree::results::ResultsStore;
use crate::tree::shape::Shape;
use crate::tree::trace::{Entry, FrameRow, Loc, ROOT_FRAME};

/// The state of one run that nodes execute against: the run's machinery and
/// its typed model `M`. Made by the runner; generated code uses it.
#[doc(hidden)]
pub struct Cx<M> {
    state: RunState,
    model: M,
}

impl<M> Cx<M> {
    pub(crate) fn new(state: RunState, model: M) -> Self {
        Cx { state, model }
    }

    /// The run's context, as this branch of it sees it.
    pub fn context(&self) -> &Context {
        &self.state.context
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

    /// The run's machinery and its model, borrowed apart so a node's body
    /// can hold the model while the machinery runs it.
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

impl<M: Clone> Cx<M> {
    /// A branch of this run: same context, run and middleware, its own copy
    /// of the model, its own entries and frames.
    pub(crate) fn fork(&mut self) -> Cx<M> {
        let state = self.state.fork();
        Cx::new(state, self.model.clone())
    }
}

/// The run's machinery: context, identity, entries, frames, middleware.
#[doc(hidden)]
pub struct RunState {
    /// What the run's branches share with it: one handle to clone per branch.
    shared: Shared,
    /// The context nodes see: the run's, or a branch's layer over it.
    pub(crate) context: Context,
    /// Nodes and scopes that ended, when the run keeps them.
    pub(crate) entries: Vec<Entry>,
    /// Loop iterations, branches and items: all of them when the run keeps
    /// entries; otherwise only those a failure passed through.
    pub(crate) frames: Vec<FrameRow>,
    /// The node that started last (slot `NO_SLOT` before any): a panic is blamed on it.
    pub(crate) current: Loc,
    /// When the node that started last started, while it runs and the run
    /// keeps entries.
    current_since: Option<Instant>,
    /// When the last node ended, if nothing but pipeline glue ran since: the
    /// next node starts then, which saves it a clock read.
    pub(crate) last_end: Option<Instant>,
    /// The frame nodes now run in.
    pub(crate) frame: u32,
    /// The path of that frame, when events need paths as they happen.
    frame_path: Option<ScopePath>,
    /// The variables of the scopes nodes now run in, nearest first.
    pub(crate) vars: Option<Arc<VarScope>>,
    /// Whether nodes now run `.isolated()` or `.snapshot()`.
    pub(crate) modifier: Modifier,
    /// The session of the phase nodes now run in, if any.
    pub(crate) phase_session: Option<PhaseSession>,
    /// In a durable run, the node running now: its steps and questions.
    pub(crate) durable_node: Option<Arc<NodeJournal>>,
}

/// The part of a run's state that never changes during the run, shared by
/// the run and all its branches.
pub(crate) struct RunShared {
    pub(crate) run: RunContext,
    pub(crate) records: bool,
    pub(crate) results: bool,
    pub(crate) middleware: Arc<[Arc<dyn Middleware>]>,
    /// Where events go: the run's stream and handler, if it has them.
    pub(crate) sinks: Sinks,
    /// The run's conversation session, if it has one.
    pub(crate) session: Option<Arc<dyn Session>>,
    /// The pipeline's shape, when the run is watched (events, spans, middleware).
    pub(crate) shape: Option<Arc<Shape>>,
    /// What nodes may look up of the nodes before them, when a node can (takes `&Context`).
    pub(crate) store: Option<Arc<ResultsStore>>,
    /// The run's store, lease and journal, when the run is durable.
    pub(crate) durable: Option<Arc<DurableRun>>,
    /// What nodes watch with `Context::cancelled`, when the run can be stopped.
    pub(crate) cancel: Option<tokio_util::sync::CancellationToken>,
    /// The next frame's number: frames are numbered across all branches.
    next_frame: AtomicU32,
}

impl Clone for RunShared {
    fn clone(&self) -> Self {
        RunShared {
            run: self.run.clone(),
            records: self.records,
            results: self.results,
            middleware: Arc::clone(&self.middleware),
            sinks: self.sinks.clone(),
            session: self.session.clone(),
            shape: self.shape.clone(),
            store: self.store.clone(),
            durable: self.durable.clone(),
            cancel: self.cancel.clone(),
            next_frame: AtomicU32::new(self.next_frame.load(Ordering::Relaxed)),
        }
    }
}

/// Where a state keeps its shared part: in place until the run forks its
/// first branch, then behind an `Arc` the branches share, so a run that
/// never branches allocates nothing for it and a branch costs one count.
#[derive(Clone)]
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

/// What a run starts with.
pub(crate) struct RunSetup {
    pub(crate) context: Context,
    pub(crate) run: RunContext,
    pub(crate) records: bool,
    pub(crate) results: bool,
    pub(crate) expected_entries: usize,
    pub(crate) middleware: Arc<[Arc<dyn Middleware>]>,
    pub(crate) sinks: Sinks,
    pub(crate) session: Option<Arc<dyn Session>>,
    pub(crate) shape: Option<Arc<Shape>>,
    pub(crate) store: Option<Arc<ResultsStore>>,
    pub(crate) vars: Option<Arc<VarScope>>,
    pub(crate) durable: Option<Arc<DurableRun>>,
    pub(crate) cancel: Option<tokio_util::sync::CancellationToken>,
}

/// No node has started yet.
const NO_NODE: Loc = Loc {
    slot: u32::MAX,
    frame: u32::MAX,
};

/// A loop iteration, branch or item entered with [`RunState::enter_frame`].
pub(crate) struct FrameToken {
    outer: u32,
    id: u32,
    slot: u32,
    index: u32,
    /// Where its row is, when rows are kept as frames start.
    row: Option<usize>,
    started: Option<Instant>,
    outer_path: Option<ScopePath>,
}

/// A composite scope entered with [`RunState::enter_scope`].
#[doc(hidden)]
pub struct ScopeToken {
    slot: u32,
    started: Option<Instant>,
}

impl RunState {
    pub(crate) fn new(setup: RunSetup) -> Self {
        let keeps = setup.records || setup.results;
        RunState {
            context: setup.context,
            shared: Shared::Alone(RunShared {
                run: setup.run,
                records: setup.records,
                results: setup.results,
                middleware: setup.middleware,
                sinks: setup.sinks,
                session: setup.session,
                shape: setup.shape,
                store: setup.store,
                durable: setup.durable,
                cancel: setup.cancel,
                next_frame: AtomicU32::new(ROOT_FRAME + 1),
            }),
            entries: if keeps {
                Vec::with_capacity(setup.expected_entries)
            } else {
                Vec::new()
            },
            frames: Vec::new(),
            current: NO_NODE,
            current_since: None,
            last_end: None,
            frame: ROOT_FRAME,
            frame_path: None,
            vars: setup.vars,
            modifier: Modifier::None,
            phase_session: None,
            durable_node: None,
        }
    }

    pub(crate) fn shared(&self) -> &RunShared {
        &self.shared
    }

    /// Whether the run keeps entries (records or outputs).
    #[inline]
    pub(crate) fn keeps(&self) -> bool {
        self.shared.records || self.shared.results
    }

    /// A branch's state: same shared part; its own entries and frames,
    /// joined back with [`join`](Self::join); it starts in this state's frame.
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
        self.branch_state(Shared::Forked(shared), Vec::new(), Vec::new())
    }

    /// A branch of this state over `shared`: it starts where this state is
    /// (its context, frame, variables, modifier, phase) and fills the
    /// buffers `entries` and `frames`, which it is given empty.
    fn branch_state(&self, shared: Shared, entries: Vec<Entry>, frames: Vec<FrameRow>) -> RunState {
        debug_assert!(entries.is_empty() && frames.is_empty());
        RunState {
            context: self.context.clone(),
            shared,
            entries,
            frames,
            current: NO_NODE,
            current_since: None,
            last_end: None,
            frame: self.frame,
            frame_path: self.frame_path.clone(),
            vars: self.vars.clone(),
            modifier: self.modifier,
            phase_session: self.phase_session.clone(),
            durable_node: None,
        }
    }

    /// Makes a finished branch's state, whose entries were taken, a fresh
    /// fork of `self` again, so one state can serve branch after branch.
    pub(crate) fn refork(&self, branch: &mut RunState) {
        // Whatever the last item left on it (a panic inside a flow, phase or
        // modified node leaves their settings): the next starts afresh.
        let entries = std::mem::take(&mut branch.entries);
        let frames = std::mem::take(&mut branch.frames);
        *branch = self.branch_state(branch.shared.clone(), entries, frames);
    }

    /// Takes a finished branch's entries and frames, appended to this
    /// state's; the branch keeps its buffers, for [`refork`](Self::refork).
    #[inline]
    pub(crate) fn join(&mut self, branch: &mut RunState) {
        // Most branches of a lean run have none: no call to make.
        if !branch.entries.is_empty() {
            self.entries.append(&mut branch.entries);
        }
        if !branch.frames.is_empty() {
            self.frames.append(&mut branch.frames);
        }
    }

    /// The run's entries, frames and context, once it is over.
    pub(crate) fn finish(self) -> (Vec<Entry>, Vec<FrameRow>, Context) {
        (self.entries, self.frames, self.context)
    }

    /// Gives what runs next a context layer of its own over the current
    /// one (an attempt, a time-limited node); returns the current one, for
    /// [`close_layer`](Self::close_layer).
    pub(crate) fn open_layer(&mut self) -> Context {
        let layer = self.context.child();
        std::mem::replace(&mut self.context, layer)
    }

    /// Back to `outer`, the layer [`open_layer`](Self::open_layer) returned;
    /// the writes made since are kept if `keep`, else dropped.
    pub(crate) fn close_layer(&mut self, outer: Context, keep: bool) {
        let own = std::mem::replace(&mut self.context, outer);
        if keep {
            self.context.commit_child(&own);
        }
    }

    /// Reports `event` when the run is streamed.
    #[inline]
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        self.shared.sinks.send(event);
    }

    /// Whether events are reported.
    #[inline]
    pub(crate) fn streams(&self) -> bool {
        self.shared.sinks.any()
    }

    /// Whether paths are made as nodes run: for events, and for a durable
    /// run, which saves each node by its path.
    #[inline]
    pub(crate) fn tracks_paths(&self) -> bool {
        self.streams() || self.shared.durable.is_some()
    }

    /// The context as the node `name`, at `slot`, sees it: its scopes'
    /// variables and the run's results; errors it returns name the node.
    #[doc(hidden)]
    #[inline]
    pub fn node_context(&self, name: &'static str, slot: u32) -> Context {
        self.context.for_node(
            name,
            Place {
                at: Some(self.loc(slot)),
                vars: self.vars.clone(),
                results: self.shared.store.clone(),
                sinks: self.shared.sinks.clone(),
                modifier: self.modifier,
                phase_session: self.phase_session.clone(),
                run_session: self.shared.session.clone(),
                durable: self.durable_node.clone(),
                run_id: Some(self.shared.run.run_id),
                cancel: self.shared.cancel.clone(),
            },
        )
    }

    /// Where the node at `slot` runs now.
    #[inline(always)]
    pub(crate) fn loc(&self, slot: u32) -> Loc {
        Loc {
            slot,
            frame: self.frame,
        }
    }

    /// The path of the node at `slot` in the current frame, made now; only
    /// for watched runs, which know the shape.
    pub(crate) fn path_now(&self, slot: u32) -> ScopePath {
        let relative = self
            .shared
            .shape
            .as_ref()
            .map(|shape| shape.relative_path(slot))
            .unwrap_or_default();
        match &self.frame_path {
            Some(frame) if !frame.is_root() => frame.child(&relative),
            _ => ScopePath::from_trusted(relative),
        }
    }

    /// The session view nodes here have: see [`resolve`](crate::session::view::resolve).
    pub(crate) fn session_view(&self) -> SessionView {
        crate::session::view::resolve(
            self.modifier,
            self.phase_session.as_ref(),
            self.shared.session.as_ref(),
        )
    }

    /// The id of the node at `slot`; only for watched runs, which know the shape.
    pub(crate) fn id_of(&self, slot: u32) -> &'static str {
        self.shared
            .shape
            .as_ref()
            .map_or("?", |shape| shape.id(slot))
    }

    /// The node at `slot` starts: a panic from now on is blamed on it; if
    /// the run keeps entries, its start is noted and returned.
    #[inline(always)]
    pub(crate) fn start_node(&mut self, slot: u32, timed: bool) -> Option<Instant> {
        self.current = self.loc(slot);
        if timed {
            let now = self.last_end.take().unwrap_or_else(Instant::now);
            self.current_since = Some(now);
            Some(now)
        } else {
            None
        }
    }

    /// A node ended with nothing kept of it: only its end is noted.
    pub(crate) fn end_unkept(&mut self) {
        self.current_since = None;
        self.last_end = Some(Instant::now());
    }

    /// The node at `slot`, started `started`, ended: its entry, with its
    /// output if the run keeps outputs. Returns when it ended.
    #[inline]
    pub(crate) fn end_node<O>(
        &mut self,
        slot: u32,
        started: Instant,
        outcome: &Result<O, crate::error::BoxError>,
        keep: impl FnOnce(&O) -> Kept,
    ) -> Instant {
        let end = Instant::now();
        let (status, output) = match outcome {
            Ok(output) => (
                NodeStatus::Completed,
                self.shared.results.then(|| keep(output)),
            ),
            Err(_) => (NodeStatus::Failed, None),
        };
        if let (Some(results), Some(output)) = (&self.shared.store, &output) {
            results.keep(self.loc(slot), output.clone());
        }
        self.entries.push(Entry {
            loc: self.loc(slot),
            status,
            duration: end.duration_since(started),
            output,
        });
        self.current_since = None;
        self.last_end = Some(end);
        end
    }

    /// Enters the `index`-th iteration, branch or item of the dynamic scope
    /// at `slot`: nodes run in its frame until [`leave_frame`](Self::leave_frame).
    #[inline]
    pub(crate) fn enter_frame<O: Observer>(&mut self, slot: u32, index: u32) -> FrameToken {
        let id = self.shared.next_frame.fetch_add(1, Ordering::Relaxed);
        let outer = std::mem::replace(&mut self.frame, id);
        if let Some(results) = &self.shared.store {
            // Nodes that look results up by `[n]` need every frame.
            results.enter_frame(FrameRow {
                id,
                parent: outer,
                slot,
                index,
                status: NodeStatus::Running,
                duration: None,
            });
        }
        let keeps = (O::KEEPS || O::WATCHED) && self.keeps();
        let started = (keeps || (O::WATCHED && self.streams())).then(Instant::now);
        let row = keeps.then(|| {
            self.frames.push(FrameRow {
                id,
                parent: outer,
                slot,
                index,
                status: NodeStatus::Running,
                duration: None,
            });
            self.frames.len() - 1
        });
        let outer_path = if O::WATCHED && self.tracks_paths() {
            let path = {
                let saved = std::mem::replace(&mut self.frame, outer);
                let path = self.path_now(slot).indexed(index);
                self.frame = saved;
                path
            };
            self.frame_path.replace(path)
        } else {
            None
        };
        self.last_end = None;
        FrameToken {
            outer,
            id,
            slot,
            index,
            row,
            started,
            outer_path,
        }
    }

    /// Leaves a frame entered with [`enter_frame`](Self::enter_frame); it failed if `failed`.
    #[inline]
    pub(crate) fn leave_frame<O: Observer>(&mut self, token: FrameToken, failed: bool) {
        let status = if failed {
            NodeStatus::Failed
        } else {
            NodeStatus::Completed
        };
        let duration = token.started.map(|at| at.elapsed());
        match token.row {
            // The row may have moved only within this state's list, which
            // nothing but this frame's own nodes appended to.
            Some(row) => {
                if let Some(row) = self.frames.get_mut(row).filter(|r| r.id == token.id) {
                    row.status = status;
                    row.duration = duration;
                }
            }
            // Kept only on the failure's way out, so its path can be told.
            None if failed => self.frames.push(FrameRow {
                id: token.id,
                parent: token.outer,
                slot: token.slot,
                index: token.index,
                status,
                duration,
            }),
            None => {}
        }
        if O::WATCHED {
            self.frame_path = token.outer_path;
        }
        self.frame = token.outer;
        self.last_end = None;
    }

    /// Enters the composite scope at `slot` (a named pipeline, loop,
    /// `parallel!` or `for_each`).
    #[inline(always)]
    pub(crate) fn enter_scope<O: Observer>(&mut self, slot: u32) -> ScopeToken {
        if !O::KEEPS && !O::WATCHED {
            return ScopeToken {
                slot,
                started: None,
            };
        }
        let timed = self.keeps() || (O::WATCHED && self.streams());
        let started = timed.then(|| self.last_end.take().unwrap_or_else(Instant::now));
        if O::WATCHED && self.streams() {
            let path = self.path_now(slot);
            let id = self.id_of(slot);
            let kind = self
                .shared
                .shape
                .as_ref()
                .and_then(|s| s.slot(slot))
                .map(|s| s.kind);
            self.emit(|| Event::ScopeStarted {
                id,
                path,
                kind: kind.unwrap_or(crate::tree::ScopeKind::Scope),
            });
        }
        ScopeToken { slot, started }
    }

    /// Leaves a scope entered with [`enter_scope`](Self::enter_scope).
    #[inline(always)]
    pub(crate) fn leave_scope<O: Observer>(
        &mut self,
        token: ScopeToken,
        failure: Option<&NodeFailure>,
    ) {
        if !O::KEEPS && !O::WATCHED {
            return;
        }
        let Some(started) = token.started else {
            return;
        };
        let end = Instant::now();
        let duration = end.duration_since(started);
        let status = if failure.is_some() {
            NodeStatus::Failed
        } else {
            NodeStatus::Completed
        };
        if self.keeps() {
            self.entries.push(Entry {
                loc: self.loc(token.slot),
                status,
                duration,
                output: None,
            });
        }
        if O::WATCHED && self.streams() {
            let path = self.path_now(token.slot);
            let id = self.id_of(token.slot);
            let kind = self
                .shared
                .shape
                .as_ref()
                .and_then(|s| s.slot(token.slot))
                .map_or(crate::tree::ScopeKind::Scope, |s| s.kind);
            self.emit(|| Event::ScopeEnded {
                id,
                path,
                kind,
                status,
                duration,
            });
        }
        self.last_end = Some(end);
    }

    /// Code other than pipeline glue ran since the last node ended (a loop's
    /// condition, a merge): the next node reads the clock for its start.
    pub(crate) fn clock_moved(&mut self) {
        self.last_end = None;
    }

    /// What a node run inside a panic guard left: its outcome, with a
    /// failure located at the node that started last; a panic as that
    /// node's failure (or the node at `slot`'s, if none started). The one
    /// place the runner, loops, branches and modifiers turn what they caught
    /// into a failure.
    pub(crate) fn settle_caught<T>(
        &mut self,
        caught: std::thread::Result<Result<T, NodeFailure>>,
        slot: u32,
    ) -> Result<T, NodeFailure> {
        match caught {
            Ok(outcome) => outcome.map_err(|failure| failure.locate(self.current)),
            Err(payload) => {
                let at = self.loc(slot);
                Err(self.panic_failure(payload, at))
            }
        }
    }

    /// A panic caught around some nodes, as the failure of the node it came
    /// from (the one that started last; `outer` if none did), recorded.
    pub(crate) fn panic_failure(
        &mut self,
        payload: Box<dyn std::any::Any + Send>,
        outer: Loc,
    ) -> NodeFailure {
        let loc = if self.current == NO_NODE {
            outer
        } else {
            self.current
        };
        self.record_unfinished("panicked");
        NodeFailure::at(loc, Box::new(NodePanic::from_payload(&*payload)))
    }

    /// The run was stopped from outside (`why`) with its future dropped: a
    /// failure of the node that was running, recorded as cancelled, or of
    /// the whole run (`pipeline`) if none had started.
    pub(crate) fn cancelled_here(
        &mut self,
        pipeline: &'static str,
        why: crate::run::cancel::Cancelled,
    ) -> NodeFailure {
        if self.current == NO_NODE {
            return NodeFailure::run_stopped(pipeline, Box::new(why));
        }
        let at = self.current;
        self.record_stopped(NodeStatus::Cancelled, "cancelled");
        NodeFailure::at(at, Box::new(why))
    }

    /// `cause`, as the failure of the node that started last, or of the
    /// whole run (`pipeline`) if none had started.
    pub(crate) fn failure_here(
        &self,
        pipeline: &'static str,
        cause: crate::error::BoxError,
    ) -> NodeFailure {
        if self.current == NO_NODE {
            NodeFailure::run_stopped(pipeline, cause)
        } else {
            NodeFailure::at(self.current, cause)
        }
    }

    /// Records that the running node never finished (it panicked, or was
    /// cut off), as failed with `error`.
    pub(crate) fn record_unfinished(&mut self, error: &str) {
        self.record_stopped(NodeStatus::Failed, error);
    }

    /// Records that the running node never finished, with `status`.
    fn record_stopped(&mut self, status: NodeStatus, error: &str) {
        let loc = self.current;
        if let Some(at) = self.current_since.take() {
            if self.keeps() {
                self.entries.push(Entry {
                    loc,
                    status,
                    duration: at.elapsed(),
                    output: None,
                });
            }
            if self.streams() {
                let path = self.path_now(loc.slot);
                let name = self.id_of(loc.slot);
                let duration = at.elapsed();
                self.emit(|| Event::NodeFailed {
                    name,
                    path,
                    duration,
                    error: error.to_owned(),
                });
            }
        }
    }

    pub(crate) fn middleware(&self) -> &Arc<[Arc<dyn Middleware>]> {
        &self.shared.middleware
    }
}
