//! [`StromaRunner`] and its [`RunConfig`]: what starts runs.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tracing::Instrument;

use crate::combinators::flow::{ScopeLabel, Var, VarScope, declare};
use crate::context::execution::ExecutionContext;
use crate::context::propagation::{Situation, within};
use crate::context::propagation::{current_execution_context, with_cell};
use crate::context::tasks::AbortTasksUnlessFinished;
use crate::context::{Context, SharedEntries};
use crate::durable::bounds::{Durable, Saveable};
use crate::engine::failure::{NodeFailure, NodePanic};
use crate::engine::observe::{Journaled, Lean, Observer, Recorded, Watched};
use crate::engine::state::{Cx, RunSetup, RunState};
use crate::error::BoxError;
use crate::node::Runnable;
use crate::run::cancel::{Limit, unless_stopped};
use crate::run::event::{Event, EventSink, Sinks};
use crate::run::future::{RunFuture, RunStream};
use crate::run::handler::Handler;
use crate::run::middleware::{HookArg, Middleware, around};
use crate::run::outcome::{RunError, RunResult};
use crate::run::resume::ResumeOptions;
use crate::run::run_context::RunContext;
use crate::run::run_id::RunId;
use crate::session::Session;
use crate::tree::record::NodeStatus;
use crate::tree::results::ResultsStore;
use crate::tree::shape::shape_of;
use crate::tree::trace::{Entry, Paths, Trace, TraceParts};
use serde::Serialize;
use std::borrow::Cow;

/// How a runner runs: the context it shares with every run, and whether runs keep records.
///
/// ```
/// use stroma_core::{Context, RunConfig, StromaRunner};
///
/// let config = RunConfig::default()
///     .with_context(Context::new().with_named("max_tokens", 500_u32))
///     .records(false);
/// let runner = StromaRunner::new(config);
/// # let _ = runner;
/// ```
#[derive(Clone)]
pub struct RunConfig {
    context: Context,
    records: bool,
    /// Whether runs keep outputs; `None`: as records.
    results: Option<bool>,
    execution: ExecutionContext,
    /// Shared as is with every run.
    middleware: Arc<[Arc<dyn Middleware>]>,
    /// The variables every run sees.
    vars: Option<Arc<VarScope>>,
    /// What receives every run's events, unless a run gives its own.
    handler: Option<Arc<dyn Handler>>,
    /// Every run's conversation session, unless a run gives its own.
    session: Option<Arc<dyn Session>>,
    /// Where durable runs are saved.
    pub(crate) store: Option<Arc<dyn crate::store::RunStore>>,
    pub(crate) durability: crate::durable::Durability,
    pub(crate) lease_ttl: std::time::Duration,
    /// At most this many runs at once, if set.
    max_concurrent_runs: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            context: Context::new(),
            records: true,
            results: None,
            execution: ExecutionContext::new(),
            middleware: Arc::new([]),
            vars: None,
            handler: None,
            session: None,
            store: None,
            durability: crate::durable::Durability::Sync,
            lease_ttl: std::time::Duration::from_secs(30),
            max_concurrent_runs: None,
        }
    }
}

impl fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let middleware: Vec<&str> = self.middleware.iter().map(|m| m.name()).collect();
        f.debug_struct("RunConfig")
            .field("context", &self.context)
            .field("records", &self.records)
            .field("results", &self.keeps_results())
            .field("execution", &self.execution)
            .field("middleware", &middleware)
            .finish()
    }
}

impl RunConfig {
    /// Adds `context`'s entries to what every run sees (later entries win).
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = merge(&self.context, &context);
        self
    }

    /// Whether runs keep a [`NodeRecord`](crate::NodeRecord) per node and
    /// the statuses and times of the run tree (default: on).
    ///
    /// Off, a plain chain allocates nothing per node, and outputs are not
    /// kept unless [`results`](Self::results) asks; on, one allocation per
    /// run holds all records.
    pub fn records(mut self, on: bool) -> Self {
        self.records = on;
        self
    }

    /// Whether runs keep each node's output, for
    /// [`RunResult::result`](crate::RunResult::result) (default: as
    /// [`records`](Self::records), so on unless records are off).
    ///
    /// A kept output is a copy of the node's output behind an `Arc`, made
    /// for outputs whose type is `Clone + Send + Sync` (others are not kept,
    /// and a look-up says so).
    pub fn results(mut self, on: bool) -> Self {
        self.results = Some(on);
        self
    }

    /// Adds `context`'s keys to the execution context of every run (later keys win).
    ///
    /// A run's execution context is, key by key: the per-run one
    /// ([`RunOptions::execution_context`]) over the runner's over the one of
    /// the enclosing [`ExecutionContext::scope`]. A run with no correlation id
    /// gets its run id as one.
    pub fn with_execution_context(mut self, context: ExecutionContext) -> Self {
        self.execution = self.execution.overlaid_with(&context);
        self
    }

    /// Adds `middleware` around every run and node; the first added is the outermost.
    pub fn with_middleware(mut self, middleware: impl Middleware) -> Self {
        let added: Arc<dyn Middleware> = Arc::new(middleware);
        self.middleware = self.middleware.iter().cloned().chain([added]).collect();
        self
    }

    /// Declares the run-level variable `name`, holding `value`, for every
    /// run: nodes read it with [`Context::var`](crate::Context::var) and
    /// templates with `$var{name}`; a flow's variable of the same name, or
    /// a run's own ([`RunOptions::var`]), shadows it.
    pub fn with_var<T: Serialize + Send + Sync + 'static>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        let outer = self.vars.iter().flat_map(|scope| scope.vars.iter());
        let vars = declare(outer, Var::new(name, value));
        self.vars = Some(Arc::new(VarScope {
            label: ScopeLabel::Run,
            vars,
            parent: None,
        }));
        self
    }

    /// Gives every run's events to `handler`, in order (a run's own
    /// [`RunOptions::handler`] wins); see [`Handler`].
    pub fn with_handler(mut self, handler: impl Handler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Gives every run `session` as its conversation (a run's own
    /// [`RunOptions::session`] wins); see [`Context::session`](crate::Context::session).
    pub fn with_session(mut self, session: impl Session + 'static) -> Self {
        self.session = Some(Arc::new(session));
        self
    }

    /// Saves durable runs ([`StromaRunner::run_durable`]) in `store`.
    pub fn with_store(mut self, store: impl crate::store::RunStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// When durable runs write their checkpoints (default:
    /// [`Durability::Sync`](crate::Durability::Sync)).
    pub fn durability(mut self, durability: crate::durable::Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a durable run's lease lasts without a checkpoint renewing
    /// it (default: 30 s). A run whose process died can be taken over by
    /// another once its lease has run out.
    pub fn lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// At most `n` runs of this runner (and its clones) at once (at least
    /// 1): a further [`run`](StromaRunner::run) waits for one to end (the
    /// wait ends if its future is dropped), and
    /// [`try_run`](StromaRunner::try_run) fails at once. Unlimited unless set.
    pub fn max_concurrent_runs(mut self, n: usize) -> Self {
        self.max_concurrent_runs = Some(n.max(1));
        self
    }

    /// The context every run starts from.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether runs keep records.
    pub fn keeps_records(&self) -> bool {
        self.records
    }

    /// Whether runs keep outputs.
    pub fn keeps_results(&self) -> bool {
        self.results.unwrap_or(self.records)
    }
}

fn merge(base: &Context, extra: &Context) -> Context {
    Context::from_shared(base.freeze_with(extra))
}

/// Runs pipelines. Cheap to clone; one runner runs any number of pipelines at
/// once, from any number of tasks.
///
/// ```
/// use stroma_core::{Context, StromaRunner};
///
/// struct ApiKey(&'static str);
/// let runner = StromaRunner::quick().with_context(Context::new().with(ApiKey("k")));
/// let for_another_task = runner.clone();
/// # let _ = for_another_task;
/// ```
#[derive(Clone)]
pub struct StromaRunner {
    inner: Arc<Shared>,
}

struct Shared {
    config: RunConfig,
    entries: SharedEntries,
    /// The run slots, when `max_concurrent_runs` is set.
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for StromaRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StromaRunner")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for StromaRunner {
    fn default() -> Self {
        Self::quick()
    }
}

impl StromaRunner {
    /// A runner with the default configuration: empty context, records on.
    pub fn quick() -> Self {
        Self::new(RunConfig::default())
    }

    /// A runner with `config`.
    pub fn new(config: RunConfig) -> Self {
        let entries = config.context.freeze();
        let slots = config
            .max_concurrent_runs
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        StromaRunner {
            inner: Arc::new(Shared {
                config,
                entries,
                slots,
            }),
        }
    }

    /// This runner with `context`'s entries added to what every run sees.
    pub fn with_context(self, context: Context) -> Self {
        Self::new(self.inner.config.clone().with_context(context))
    }

    /// This runner with `context`'s keys added to every run's execution
    /// context; see [`RunConfig::with_execution_context`].
    pub fn with_execution_context(self, context: ExecutionContext) -> Self {
        Self::new(self.inner.config.clone().with_execution_context(context))
    }

    /// This runner with the run-level variable `name` for every run; see
    /// [`RunConfig::with_var`].
    pub fn with_var<T: Serialize + Send + Sync + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        Self::new(self.inner.config.clone().with_var(name, value))
    }

    /// This runner with `session` as every run's conversation; see
    /// [`RunConfig::with_session`].
    pub fn with_session(self, session: impl Session + 'static) -> Self {
        Self::new(self.inner.config.clone().with_session(session))
    }

    /// This runner with `store` for durable runs; see [`run_durable`](Self::run_durable).
    pub fn with_store(self, store: impl crate::store::RunStore + 'static) -> Self {
        Self::new(self.inner.config.clone().with_store(store))
    }

    /// This runner with `durability` for durable runs; see [`RunConfig::durability`].
    pub fn with_durability(self, durability: crate::durable::Durability) -> Self {
        Self::new(self.inner.config.clone().durability(durability))
    }

    /// This runner with `ttl` as the lease time of durable runs; see [`RunConfig::lease_ttl`].
    pub fn with_lease_ttl(self, ttl: std::time::Duration) -> Self {
        Self::new(self.inner.config.clone().lease_ttl(ttl))
    }

    /// This runner with `handler` receiving every run's events; see [`Handler`].
    pub fn with_handler(self, handler: impl Handler) -> Self {
        Self::new(self.inner.config.clone().with_handler(handler))
    }

    /// This runner with `middleware` around every run and node; the first
    /// added is the outermost.
    pub fn with_middleware(self, middleware: impl Middleware) -> Self {
        Self::new(self.inner.config.clone().with_middleware(middleware))
    }

    /// The runner's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.inner.config
    }

    /// The run slots, when [`RunConfig::max_concurrent_runs`] is set.
    #[cfg(feature = "tower")]
    pub(crate) fn slots(&self) -> Option<&Arc<tokio::sync::Semaphore>> {
        self.inner.slots.as_ref()
    }

    /// Runs `pipeline` on `input` with the unit model `()`.
    ///
    /// Errors with a [`RunError`] naming the node that failed or panicked; the
    /// runner stays usable either way.
    // The entry points are plain `fn`s returning a named `RunFuture`: a
    // bound a pipeline does not meet is one error, on the argument (see
    // `run/future.rs`). Each boxes the one inner future, made in its box.
    pub fn run<'a, P>(&'a self, pipeline: &'a P, input: P::Input) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
    {
        RunFuture::new(|| {
            self.run_reporting(
                pipeline,
                input,
                RunOptions::new(),
                RunStart::default(),
                Plain,
            )
        })
    }

    /// [`run`](Self::run), or at once an error if the runner already runs
    /// as many runs as [`RunConfig::max_concurrent_runs`] allows: a caller
    /// under load sheds work instead of queueing it.
    pub fn try_run<'a, P>(&'a self, pipeline: &'a P, input: P::Input) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
    {
        RunFuture::new(|| self.try_run_inner(pipeline, input))
    }

    async fn try_run_inner<P>(
        &self,
        pipeline: &P,
        input: P::Input,
    ) -> Result<RunResult<P::Output>, RunError>
    where
        P: Runnable<()>,
    {
        let held = match &self.inner.slots {
            None => None,
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let limit = self.inner.config.max_concurrent_runs.unwrap_or(0);
                    return Err(RunError::before_run(
                        pipeline,
                        RunId::new(),
                        crate::run::cancel::AtCapacity { limit },
                    ));
                }
            },
        };
        let start = RunStart {
            held,
            ..RunStart::default()
        };
        self.run_reporting(pipeline, input, RunOptions::new(), start, Plain)
            .await
    }

    /// Runs `pipeline` on `input` with `model` as the run's typed model; the
    /// model as the run leaves it is in [`RunResult::model`] (or, on failure,
    /// [`RunError::into_model`]).
    pub fn run_with_model<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        model: M,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        RunFuture::new(|| {
            self.run_reporting(
                pipeline,
                input,
                RunOptions::new().model(model),
                RunStart::default(),
                Plain,
            )
        })
    }

    /// Runs `pipeline` on `input` with per-run `options`: the model, and an
    /// execution context that takes precedence over the runner's.
    ///
    /// ```
    /// use stroma_core::{ExecutionContext, RunOptions};
    ///
    /// let options = RunOptions::new()
    ///     .model(vec![0_u32])
    ///     .execution_context(ExecutionContext::of([("tenant_id", "acme")]));
    /// // runner.run_with(&pipeline, input, options).await
    /// # let _ = options;
    /// ```
    pub fn run_with<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        options: RunOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        RunFuture::new(|| self.run_reporting(pipeline, input, options, RunStart::default(), Plain))
    }

    /// Runs `pipeline` on `input` as [`run`](Self::run) does, and reports
    /// what happens as it happens: a stream of [`RunEvent::Event`](crate::RunEvent::Event)s (run
    /// started, each node started and completed or failed with its duration,
    /// each loop iteration, in order), then one [`RunEvent::Finished`](crate::RunEvent::Finished) with
    /// the run's result.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use stroma_core::{RunEvent, StromaRunner};
    ///
    /// # async fn show<P: stroma_core::Runnable<(), Input = u32>>(p: P) where P::Output: std::fmt::Debug {
    /// let runner = StromaRunner::quick();
    /// let mut events = std::pin::pin!(runner.stream(&p, 1));
    /// while let Some(item) = events.next().await {
    ///     match item {
    ///         RunEvent::Event(event) => println!("{event:?}"),
    ///         RunEvent::Finished(result) => println!("done: {:?}", result.map(|r| r.final_state)),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn stream<'a, P>(&'a self, pipeline: &'a P, input: P::Input) -> RunStream<'a, P::Output>
    where
        P: Runnable<()>,
    {
        self.stream_with(pipeline, input, RunOptions::new())
    }

    /// [`stream`](Self::stream) for a run with `model` as its typed model,
    /// as [`run_with_model`](Self::run_with_model).
    pub fn stream_with_model<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        model: M,
    ) -> RunStream<'a, P::Output, M>
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        self.stream_with(pipeline, input, RunOptions::new().model(model))
    }

    /// [`stream`](Self::stream) with per-run options (the model among
    /// them), as [`run_with`](Self::run_with).
    pub fn stream_with<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        options: RunOptions<M>,
    ) -> RunStream<'a, P::Output, M>
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        let (sink, events) = futures::channel::mpsc::unbounded();
        let run = RunFuture::new(|| {
            self.run_reporting(
                pipeline,
                input,
                options,
                RunStart {
                    sink: Some(sink),
                    ..RunStart::default()
                },
                Plain,
            )
        });
        RunStream::new(run, events)
    }

    pub(crate) async fn run_reporting<P, M, D>(
        &self,
        pipeline: &P,
        input: P::Input,
        options: RunOptions<M>,
        start: RunStart,
        _drive: D,
    ) -> Result<RunResult<P::Output, M>, RunError>
    where
        P: Runnable<M>,
        M: Send + 'static,
        D: Drive,
    {
        let RunStart {
            sink,
            durable,
            held,
        } = start;
        let (run_id, durable) = match durable {
            Some((run_id, durable)) => (run_id, Some(durable)),
            None => (RunId::new(), None),
        };
        let journaled = durable.is_some();
        let (cancel, limit) = match &options.stop {
            Some(stop) => (stop.run_token(), stop.limit.map(Limit::starting_now)),
            None => (None, None),
        };
        // A run slot (unless the caller holds one), kept until the run
        // ends; waiting for it ends with the future, or as the run is
        // stopped from outside.
        let _slot = match (&self.inner.slots, held) {
            (Some(slots), None) => {
                let acquire = Arc::clone(slots).acquire_owned();
                match &cancel {
                    None => acquire.await.ok(),
                    Some(token) => match unless_stopped(acquire, token, limit).await {
                        Ok(slot) => slot.ok(),
                        Err(why) => return Err(RunError::before_run(pipeline, run_id, why)),
                    },
                }
            }
            (_, held) => held,
        };
        let execution = self.execution_for(run_id, options.execution.as_ref());
        let context = Context::for_run(&self.inner.entries, execution.clone());
        // Declared before the run's future: on a drop midway it aborts the
        // run's tasks after the future is gone.
        let mut tasks = AbortTasksUnlessFinished::new(context.cell());
        let run = RunContext {
            graph_id: pipeline.name(),
            run_id,
            context: execution,
        };
        let span = tracing::info_span!(
            "stroma.run",
            run_id = %run_id,
            pipeline = run.graph_id,
            tenant = run.context.tenant_id(),
            user = run.context.user_id(),
            correlation = run.context.correlation_id(),
        );
        let config = &self.inner.config;
        let (records, results) = (config.records, config.keeps_results());
        // What watches the run is decided once, here: the whole run is
        // compiled for it.
        let handler = options.handler.or_else(|| config.handler.clone());
        let delivery = handler.clone().map(crate::run::handler::start);
        let watched = journaled
            || sink.is_some()
            || delivery.is_some()
            || !config.middleware.is_empty()
            || tracing::level_enabled!(tracing::Level::INFO);
        let streamed = sink.is_some() || delivery.is_some();
        let state = RunState::new(RunSetup {
            context,
            run,
            records,
            results,
            expected_entries: pipeline.leaf_count(),
            middleware: Arc::clone(&config.middleware),
            sinks: Sinks {
                stream: sink,
                handler: delivery.as_ref().map(|(sink, _)| sink.clone()),
            },
            session: options.session.or_else(|| config.session.clone()),
            shape: watched.then(|| shape_of(pipeline)),
            // Only a node given `&Context` (which can look up results or its
            // path) or a `keep_going` list (which names failures by path) asks.
            store: P::ASKS_PATHS.then(|| Arc::new(ResultsStore::new(shape_of(pipeline), results))),
            vars: self.vars_for(options.vars),
            durable,
            cancel: cancel.clone(),
        });
        let mut cx = Cx::new(state, options.model);
        if streamed {
            cx.state().emit(|| Event::RunStarted {
                run_id,
                graph_id: pipeline.name(),
            });
        }
        let started = (records || streamed).then(std::time::Instant::now);
        // The run's future borrows `cx`; a panic inside drops it, so `cx`
        // still tells which node was running.
        let cell = cx.context().cell();
        // An `async` block holding only the arguments: the pipeline's future
        // is made inside it when first polled, not made here and then moved
        // through each wrapper.
        let session = cx
            .state_ref()
            .shared()
            .session
            .is_some()
            .then(|| cx.state_ref().session_view());
        let cx_ref = &mut cx;
        let guarded = with_cell(cell, async move {
            let run = D::drive(pipeline, input, cx_ref, watched, records || results);
            if handler.is_some() || session.is_some() {
                // Boxed: only runs with a handler or session carry them task-locally.
                let situation = Situation {
                    phase: None,
                    handler,
                    session,
                };
                Box::pin(within(situation, run)).await
            } else {
                run.await
            }
        });
        // One future, instrumented even when the span is disabled: awaiting
        // it bare in one branch and wrapped in the other would hold it twice.
        let outcome = match cancel {
            None => {
                let outcome = guarded.instrument(span).await;
                tasks.finished();
                outcome
            }
            // Boxed: only runs that can be stopped carry the race.
            Some(token) => match Box::pin(crate::run::cancel::race(
                guarded.instrument(span),
                token,
                limit,
            ))
            .await
            {
                Ok(outcome) => {
                    tasks.finished();
                    outcome
                }
                // Stopped from outside: its tasks are aborted with it.
                Err(stopped) => {
                    let failure = cx.state().cancelled_here(pipeline.name(), stopped.why);
                    let dropped = stopped.dropped.map(|payload| {
                        let panic =
                            NodePanic::from_payload(&*payload).during("while it was cancelled");
                        cx.state_ref()
                            .failure_here(pipeline.name(), Box::new(panic))
                    });
                    Ok(Err(failure.followed_by_any(dropped)))
                }
            },
        };
        let duration = started.map(|at| at.elapsed());
        let handler_panicked = match delivery {
            Some((sink, task)) => {
                // Every event is handed over before the run returns.
                let _ = sink.unbounded_send(None);
                task.await.ok().flatten()
            }
            None => None,
        };
        let mut outcome = cx.state().settle_caught(outcome, 0);
        if let Some(panicked) = handler_panicked {
            // The handler's panic fails the run, after its own failure if it had one.
            let panicked = NodeFailure::run_stopped(pipeline.name(), Box::new(panicked));
            outcome = Err(match outcome {
                Ok(output) => {
                    let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(output)));
                    panicked.followed_by_any(dropped.err().map(|payload| {
                        let panic = NodePanic::from_payload(&*payload)
                            .during("while its output was dropped");
                        cx.state_ref()
                            .failure_here(pipeline.name(), Box::new(panic))
                    }))
                }
                Err(failure) => failure.followed_by(panicked),
            });
        }
        let (state, model) = cx.into_parts();
        let shape = state.shared().shape.clone();
        let (mut entries, frames, context) = state.finish();
        if let Err(failure) = &outcome
            && !(records || results)
            && let Some(loc) = failure.innermost().loc()
        {
            // Records off: the failing node is the one entry the tree shows.
            entries.push(Entry {
                loc,
                status: NodeStatus::Failed,
                duration: std::time::Duration::ZERO,
                output: None,
            });
        }
        let status = if outcome.is_ok() {
            NodeStatus::Completed
        } else {
            NodeStatus::Failed
        };
        let trace = Trace::new(
            pipeline,
            TraceParts {
                shape,
                entries,
                frames,
                records_on: records,
                results_on: results,
                status,
                duration,
            },
        );
        let mut failure = match outcome {
            Ok(final_state) => {
                return Ok(RunResult {
                    final_state,
                    run_id,
                    model,
                    context,
                    trace,
                });
            }
            Err(failure) => failure,
        };
        {
            let shape = trace.shape();
            let paths = Paths::new(shape, &trace.frames);
            failure.resolve(shape, &paths);
        }
        tracing::debug!(run_id = %run_id, node = failure.node(), "run failed");
        Err(RunError::new(failure, run_id, trace, context, model))
    }

    /// The variables of a new run: its own over the runner's.
    fn vars_for(&self, per_run: Vec<Var>) -> Option<Arc<VarScope>> {
        let runner = self.inner.config.vars.clone();
        if per_run.is_empty() {
            return runner;
        }
        Some(Arc::new(VarScope {
            label: ScopeLabel::Run,
            vars: per_run.into(),
            parent: runner,
        }))
    }

    /// The execution context of a new run, from the nearest source out.
    pub(crate) fn execution_for(
        &self,
        run_id: RunId,
        per_run: Option<&ExecutionContext>,
    ) -> ExecutionContext {
        let runner = &self.inner.config.execution;
        // Borrowed where one source alone decides, so the usual run, with
        // no outer scope and nothing per run, copies no context.
        let Some(outer) = current_execution_context() else {
            return match per_run {
                None => runner.for_run(run_id),
                Some(per_run) => runner.overlaid_with(per_run).for_run(run_id),
            };
        };
        let mut execution = outer.overlaid_with(runner);
        if let Some(per_run) = per_run {
            execution = execution.overlaid_with(per_run);
        }
        execution.for_run(run_id)
    }
}

// The durable entry points, whose work is in `run/durable.rs`. They stand
// in this module, beside `StromaRunner`, so that a compile error quoting a
// bound of theirs names them `StromaRunner::run_durable`, as rustc names
// the methods of an impl in the type's own module, not
// `stroma_core::run::durable::<impl StromaRunner>::run_durable`.
impl StromaRunner {
    /// Runs `pipeline` on `input` durably, with the model `()`: after every
    /// node, its completion is saved in the runner's store
    /// ([`with_store`](Self::with_store)), so the run can be
    /// [`resume`](Self::resume)d if it fails, crashes or stops to ask a
    /// person. The run's id ([`RunResult::run_id`], [`RunError::run_id`])
    /// names it in the store.
    ///
    /// Every node's output, the input and the model must be
    /// `Serialize + DeserializeOwned`; a pipeline whose are not does not
    /// compile here, naming the type and the node (it still runs with
    /// [`run`](Self::run)).
    ///
    /// ```
    /// use stroma::prelude::*;
    ///
    /// #[node]
    /// async fn double(x: u32) -> u32 { x * 2 }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let runner = StromaRunner::quick().with_store(MemoryStore::new());
    /// let p = pipeline![double, double];
    /// let done = runner.run_durable(&p, 3).await?;
    /// assert_eq!(done.final_state, 12);
    /// // Resuming a completed run gives its saved result; nothing runs again.
    /// let again = runner.resume(&p, &done.run_id.to_string()).await?;
    /// assert_eq!(again.final_state, 12);
    /// # Ok::<(), RunError>(())
    /// # }).unwrap();
    /// ```
    // The public entry points are plain `fn`s returning a named
    // `RunFuture`: a bound a pipeline does not meet is reported once, on
    // the argument.
    pub fn run_durable<'a, P>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_start(pipeline, input, RunOptions::new()))
    }

    /// [`run_durable`](Self::run_durable) with per-run options: the model
    /// (saved with the run), the execution context, variables.
    pub fn run_durable_with<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        options: RunOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_start(pipeline, input, options))
    }

    /// Resumes the durable run `run_id` (model `()`): a failed run runs
    /// again from the node that failed, a crashed one from the node that
    /// was running, an interrupted one asks again (answer with
    /// [`resume_with`](Self::resume_with)); nodes saved as completed are not
    /// run again. A completed run gives back its saved result.
    ///
    /// Errors, with nothing run: the pipeline's shape differs from the
    /// saved one (naming the first node that differs), another worker holds
    /// the run, or the store fails or holds something it cannot read.
    pub fn resume<'a, P>(&'a self, pipeline: &'a P, run_id: &'a str) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_resume(pipeline, run_id, ResumeOptions::new()))
    }

    /// Resumes the interrupted run `run_id` (model `()`) with `answer` to
    /// its one pending question; the node that asked runs again, and its
    /// [`Context::interrupt`](crate::Context::interrupt) returns the answer.
    /// With several questions pending, answer each by id
    /// ([`ResumeOptions::answer_to`]); this is then an error listing them.
    pub fn resume_with<'a, P>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        answer: impl serde::Serialize,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| {
            self.durable_resume(pipeline, run_id, ResumeOptions::new().answer(answer))
        })
    }

    /// Resumes the durable run `run_id` with `options`: answers by id, the
    /// model type, per-run variables.
    pub fn resume_with_options<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        options: ResumeOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_resume(pipeline, run_id, options))
    }

    /// Starts a new durable run (a new id, linked to `run_id` as its
    /// parent) from the checkpoint after the node at `path` completed in
    /// the run `run_id`: the nodes up to it give their saved outputs, the
    /// nodes after it run again. For replaying a run with a node fixed.
    pub fn resume_from<'a, P>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        path: &'a str,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_fork(pipeline, run_id, path, ResumeOptions::new()))
    }

    /// [`resume_from`](Self::resume_from) with `options` (the model type, variables).
    pub fn resume_from_with_options<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        path: &'a str,
        options: ResumeOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_fork(pipeline, run_id, path, options))
    }
}

/// What an entry point hands a run besides its options: where its events
/// go, its durable part, and a run slot it already holds.
#[derive(Default)]
pub(crate) struct RunStart {
    pub(crate) sink: Option<EventSink>,
    pub(crate) durable: Option<(RunId, Arc<crate::durable::run::DurableRun>)>,
    pub(crate) held: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How a run's pipeline is driven, chosen by the entry point: plain runs
/// never compile the durable observer's code, nor durable runs the others'.
pub(crate) trait Drive: Send + 'static {
    /// Runs `pipeline` on `input` against `cx`, catching a panic:
    /// `watched` and `keeps` say what watches the run.
    fn drive<'a, P, M>(
        pipeline: &'a P,
        input: P::Input,
        cx: &'a mut Cx<M>,
        watched: bool,
        keeps: bool,
    ) -> impl Future<Output = std::thread::Result<Result<P::Output, NodeFailure>>> + Send + 'a
    where
        P: Runnable<M>,
        M: Send + 'static;
}

/// A plain run: `Watched`, `Recorded` or `Lean`, decided once per run.
pub(crate) struct Plain;

impl Drive for Plain {
    // Written out and inlined rather than an `async fn`: a lean run of 10
    // nodes measured 345 ns as an `async fn`, 309 ns this way.
    #[allow(clippy::manual_async_fn)]
    #[inline(always)]
    fn drive<'a, P, M>(
        pipeline: &'a P,
        input: P::Input,
        cx: &'a mut Cx<M>,
        watched: bool,
        keeps: bool,
    ) -> impl Future<Output = std::thread::Result<Result<P::Output, NodeFailure>>> + Send + 'a
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        async move {
            if watched {
                AssertUnwindSafe(guarded::<Watched, P, M>(pipeline, input, cx))
                    .catch_unwind()
                    .await
            } else if keeps {
                AssertUnwindSafe(guarded::<Recorded, P, M>(pipeline, input, cx))
                    .catch_unwind()
                    .await
            } else {
                AssertUnwindSafe(guarded::<Lean, P, M>(pipeline, input, cx))
                    .catch_unwind()
                    .await
            }
        }
    }
}

/// A durable run: `Journaled`.
pub(crate) struct Durably;

impl Drive for Durably {
    fn drive<'a, P, M>(
        pipeline: &'a P,
        input: P::Input,
        cx: &'a mut Cx<M>,
        _watched: bool,
        _keeps: bool,
    ) -> impl Future<Output = std::thread::Result<Result<P::Output, NodeFailure>>> + Send + 'a
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        // Not boxed: the run's future is made in its `RunFuture`'s box already.
        AssertUnwindSafe(guarded::<Journaled, P, M>(pipeline, input, cx)).catch_unwind()
    }
}

/// Runs the pipeline, watched by `O`, inside the run hooks of the middleware
/// if there are any.
async fn guarded<O, P, M>(
    pipeline: &P,
    input: P::Input,
    cx: &mut Cx<M>,
) -> Result<P::Output, NodeFailure>
where
    O: Observer,
    P: Runnable<M>,
    M: Send + 'static,
{
    // A model that keeps the run's input gets it (null if it has no JSON)
    // before any node runs; inside the runner's catch, so a panicking
    // `Serialize` fails the run rather than unwinding out of it.
    if let Some(fill) = crate::model::pipeline_context::input_filler::<M>() {
        fill(cx.model_mut(), P::input_json(&input).unwrap_or_default());
    }
    if !O::WATCHED || cx.state().middleware().is_empty() {
        return pipeline.run::<O>(input, cx, 0).await;
    }
    // Boxed, so runs without middleware do not carry the chain's state.
    Box::pin(guarded_by_middleware::<O, P, M>(pipeline, input, cx)).await
}

async fn guarded_by_middleware<O, P, M>(
    pipeline: &P,
    input: P::Input,
    cx: &mut Cx<M>,
) -> Result<P::Output, NodeFailure>
where
    O: Observer,
    P: Runnable<M>,
    M: Send + 'static,
{
    let middleware = Arc::clone(cx.state().middleware());
    let run = cx.run_context().clone();
    let body = async {
        pipeline
            .run::<O>(input, cx, 0)
            .await
            .map_err(|mut failure| {
                // The run hooks see the failure named as the caller will.
                if let Some(shape) = cx.state_ref().shared().shape.clone() {
                    failure.resolve(&shape, &Paths::new(&shape, &cx.state_ref().frames));
                }
                BoxError::from(failure)
            })
    };
    around(&middleware, HookArg::Run(&run), body)
        .await
        .map_err(|err| match err.downcast::<NodeFailure>() {
            Ok(failure) => *failure,
            // A run hook stopped the run: no node to blame, the pipeline is named.
            Err(cause) => NodeFailure::run_stopped(run.graph_id, cause),
        })
}

/// Per-run options for [`StromaRunner::run_with`]: the model and the execution context.
#[derive(Debug, Clone, Default)]
pub struct RunOptions<M = ()> {
    pub(crate) model: M,
    pub(crate) execution: Option<ExecutionContext>,
    pub(crate) vars: Vec<Var>,
    handler: Option<Arc<dyn Handler>>,
    session: Option<Arc<dyn Session>>,
    /// Boxed: most runs have none, and every run moves its options.
    stop: Option<Box<crate::run::cancel::Stop>>,
}

impl RunOptions {
    /// No model (`()`), no per-run execution context.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<M> RunOptions<M> {
    /// Runs with `model` as the typed model.
    pub fn model<N>(self, model: N) -> RunOptions<N> {
        RunOptions {
            model,
            execution: self.execution,
            vars: self.vars,
            handler: self.handler,
            session: self.session,
            stop: self.stop,
        }
    }

    /// Stops the run once `limit` has passed: the node running then is
    /// dropped where it stands (the model as before it), the run fails with
    /// [`Cancelled`](crate::Cancelled) ([`RunError::is_cancelled`](crate::RunError::is_cancelled)),
    /// and its tree shows what completed, what was cancelled and what was
    /// skipped.
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.stop.get_or_insert_default().limit = Some(limit);
        self
    }

    /// Stops the run when `token` is cancelled, as [`timeout`](Self::timeout)
    /// does; nodes can watch for it with [`Context::cancelled`](crate::Context::cancelled).
    ///
    /// ```
    /// use stroma_core::{CancellationToken, RunOptions};
    ///
    /// let token = CancellationToken::new();
    /// let options = RunOptions::new().cancel_token(token.clone());
    /// // token.cancel() from anywhere stops the run.
    /// # let _ = options;
    /// ```
    pub fn cancel_token(mut self, token: crate::CancellationToken) -> Self {
        self.stop.get_or_insert_default().token = Some(token);
        self
    }

    /// Declares the run-level variable `name`, holding `value`, for this run
    /// (over the runner's of the same name); see [`RunConfig::with_var`].
    pub fn var<T: Serialize + Send + Sync + 'static>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        let var = Var::new(name, value);
        self.vars.retain(|v| v.name != var.name);
        self.vars.push(var);
        self
    }

    /// Gives this run `session` as its conversation, instead of the runner's.
    pub fn session(mut self, session: impl Session + 'static) -> Self {
        self.session = Some(Arc::new(session));
        self
    }

    /// Gives this run's events to `handler`, in order, instead of the
    /// runner's; see [`Handler`].
    pub fn handler(mut self, handler: impl Handler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Adds `context`'s keys to this run's execution context; they win over
    /// the runner's and the enclosing scope's.
    pub fn execution_context(mut self, context: ExecutionContext) -> Self {
        self.execution = Some(match self.execution {
            Some(earlier) => earlier.overlaid_with(&context),
            None => context,
        });
        self
    }
}
