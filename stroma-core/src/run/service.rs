//! A pipeline as a tower [`Service`]: [`StromaRunner::service`] makes a
//! [`StromaService`], which takes inputs (or [`RunRequest`]s, an input with
//! per-run options) and answers with the run's result, so pipelines go
//! behind tower's layers and into axum's routes.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::PollSemaphore;
use tower_service::Service;

use crate::node::Runnable;
use crate::run::event::EventSink;
use crate::run::future::{RunFuture, RunStream};
use crate::run::outcome::{RunError, RunResult};
use crate::run::runner::{Plain, RunOptions, RunStart, StromaRunner};

impl StromaRunner {
    /// `pipeline` as a tower [`Service`] that runs it with this runner: see
    /// [`StromaService`].
    ///
    /// ```
    /// use stroma::prelude::*;
    /// use tower::ServiceExt;
    ///
    /// #[node]
    /// async fn double(n: u32) -> u32 {
    ///     n * 2
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let doubler = StromaRunner::quick().service(double);
    /// let result = doubler.oneshot(21_u32).await?;
    /// assert_eq!(result.final_state, 42);
    /// # Ok::<(), RunError>(())
    /// # }).unwrap();
    /// ```
    pub fn service<P: Runnable<()>>(&self, pipeline: P) -> StromaService<P> {
        self.service_with_model(pipeline, || ())
    }

    /// `pipeline` as a tower [`Service`] whose every run starts with the
    /// model `model` makes: for a pipeline whose nodes take a model
    /// (`&mut M` or `&M`). Each answer carries the model as the run left
    /// it, in [`RunResult::model`].
    ///
    /// ```
    /// use stroma::prelude::*;
    /// use tower::ServiceExt;
    ///
    /// #[derive(Clone, Default)]
    /// struct Seen {
    ///     words: Vec<String>,
    /// }
    ///
    /// #[node]
    /// async fn remember(word: String, seen: &mut Seen) -> usize {
    ///     seen.words.push(word);
    ///     seen.words.len()
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let service = StromaRunner::quick().service_with_model(remember, Seen::default);
    /// let result = service.oneshot("hello".to_string()).await?;
    /// assert_eq!(result.final_state, 1);
    /// assert_eq!(result.model.words, ["hello"]);
    /// # Ok::<(), RunError>(())
    /// # }).unwrap();
    /// ```
    pub fn service_with_model<P, M>(
        &self,
        pipeline: P,
        model: impl Fn() -> M + Send + Sync + 'static,
    ) -> StromaService<P, M>
    where
        P: Runnable<M>,
        M: Send + 'static,
    {
        StromaService {
            runner: self.clone(),
            pipeline: Arc::new(pipeline),
            model: Arc::new(model),
            slots: self
                .slots()
                .map(|slots| PollSemaphore::new(Arc::clone(slots))),
            ready: Mutex::new(None),
        }
    }
}

/// A pipeline and the runner that runs it, as a tower [`Service`]: each
/// call is one run, with the unit model `()` or, made by
/// [`StromaRunner::service_with_model`], with the model `M` its maker
/// makes. Made by [`StromaRunner::service`].
///
/// It takes the pipeline's input, or a [`RunRequest`] (the input and
/// [`RunOptions`]: the execution context with the tenant, a time limit, a
/// cancel token, ...), and answers with the [`RunResult`] or the
/// [`RunError`]. Its future is boxed, `Send` and `'static`; cloning it is
/// cheap, and every clone runs the same pipeline with the same runner.
///
/// It is ready at once, unless its runner has
/// [`RunConfig::max_concurrent_runs`](crate::RunConfig::max_concurrent_runs):
/// then it is ready when a run slot is free, and holds that slot for its
/// next call, so tower's layers see the runner's capacity. Each clone waits
/// for a slot of its own. A call made without readiness waits for its slot
/// inside its future, as [`StromaRunner::run`] does. Requests being
/// generic, a caller of `ServiceExt::ready` names the request type:
/// `ServiceExt::<u32>::ready(&mut service)`.
///
/// ```
/// use stroma::prelude::*;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// #[node]
/// async fn greet(name: String) -> String {
///     let tenant = stroma::current_tenant_id().unwrap_or_default();
///     format!("Hello {name}, from {tenant}")
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // A layer in front: every request runs for the tenant it names.
/// let greeter = ServiceBuilder::new()
///     .map_request(|(tenant, name): (&str, String)| {
///         let tenant = ExecutionContext::of([("tenant_id", tenant)]);
///         RunRequest::new(name).with_options(RunOptions::new().execution_context(tenant))
///     })
///     .map_response(|result: RunResult<String>| result.final_state)
///     .service(StromaRunner::quick().service(greet));
/// let greeting = greeter.oneshot(("acme", "Ada".to_string())).await?;
/// assert_eq!(greeting, "Hello Ada, from acme");
/// # Ok::<(), RunError>(())
/// # }).unwrap();
/// ```
pub struct StromaService<P, M = ()> {
    runner: StromaRunner,
    /// Shared, so a clone per request costs a count, whatever the pipeline holds.
    pipeline: Arc<P>,
    /// Makes each run's model.
    model: Arc<dyn Fn() -> M + Send + Sync>,
    /// The runner's run slots, waited for in `poll_ready`, when it limits
    /// its runs ([`RunConfig::max_concurrent_runs`](crate::RunConfig::max_concurrent_runs)).
    slots: Option<PollSemaphore>,
    /// The slot `poll_ready` took, which the next run (`call` or
    /// `stream`) runs in. Behind a lock only for `stream`, which takes
    /// `&self`; `poll_ready` and `call` reach it without locking.
    ready: Mutex<Option<OwnedSemaphorePermit>>,
}

impl<P, M> Clone for StromaService<P, M> {
    fn clone(&self) -> Self {
        // A clone is a new caller: it waits for a slot of its own.
        StromaService {
            runner: self.runner.clone(),
            pipeline: Arc::clone(&self.pipeline),
            model: Arc::clone(&self.model),
            slots: self.slots.clone(),
            ready: Mutex::new(None),
        }
    }
}

impl<P: Runnable<M>, M> fmt::Debug for StromaService<P, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StromaService")
            .field("pipeline", &self.pipeline.name())
            .field("runner", &self.runner)
            .finish()
    }
}

impl<P: Runnable<M>, M: Send + 'static> StromaService<P, M> {
    /// Runs the pipeline on `request` as [`StromaRunner::stream_with`] does,
    /// as a stream that owns what it needs (`'static`): the body of a
    /// server-sent event response, a websocket, a channel to another task.
    ///
    /// The run goes on as the stream is polled, with no task of its own;
    /// dropping the stream stops the run, as dropping a run's future does.
    /// The last item is the [`RunEvent::Finished`](crate::RunEvent::Finished) result.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use stroma::prelude::*;
    ///
    /// #[node]
    /// async fn double(n: u32) -> u32 {
    ///     n * 2
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let doubler = StromaRunner::quick().service(double);
    /// // Owned: it could be returned, or handed to another task.
    /// let items: Vec<RunEvent<u32>> = doubler.stream(21_u32).collect().await;
    /// assert!(matches!(items[0], RunEvent::Event(Event::RunStarted { .. })));
    /// let Some(RunEvent::Finished(Ok(result))) = items.last() else {
    ///     panic!("the stream ends with the result")
    /// };
    /// assert_eq!(result.final_state, 42);
    /// # });
    /// ```
    pub fn stream<R: Into<RunRequest<P::Input>>>(
        &self,
        request: R,
    ) -> RunStream<'static, P::Output, M> {
        let held = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let (sink, events) = futures::channel::mpsc::unbounded();
        RunStream::new(self.owned_run(request, held, Some(sink)), events)
    }

    /// A run of `request` that owns what it needs (`'static`), in the run
    /// slot `held` if it holds one, reporting to `sink` if given.
    fn owned_run(
        &self,
        request: impl Into<RunRequest<P::Input>>,
        held: Option<OwnedSemaphorePermit>,
        sink: Option<EventSink>,
    ) -> RunFuture<'static, P::Output, M> {
        let RunRequest { input, options } = request.into();
        let options = options.model((self.model)());
        let runner = self.runner.clone();
        let pipeline = Arc::clone(&self.pipeline);
        let start = RunStart {
            held,
            sink,
            ..RunStart::default()
        };
        RunFuture::new(|| async move {
            runner
                .run_reporting(&*pipeline, input, options, start, Plain)
                .await
        })
    }
}

impl<P, M, R> Service<R> for StromaService<P, M>
where
    P: Runnable<M>,
    M: Send + 'static,
    R: Into<RunRequest<P::Input>>,
{
    type Response = RunResult<P::Output, M>;
    type Error = RunError;
    type Future = RunFuture<'static, P::Output, M>;

    /// Ready at once, unless the runner limits its runs: then ready once
    /// a run slot is free, which the next `call` runs in. So tower's
    /// layers (a load shedder, a balancer) see the runner's capacity.
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), RunError>> {
        let ready = self.ready.get_mut().unwrap_or_else(PoisonError::into_inner);
        if ready.is_none()
            && let Some(slots) = &mut self.slots
        {
            // `None` only once the semaphore is closed, which it never is.
            *ready = std::task::ready!(slots.poll_acquire(cx));
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        // Called without `poll_ready`, the run waits for its slot itself.
        let held = self
            .ready
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.owned_run(request, held, None)
    }
}

/// One run for a [`StromaService`]: its input and its [`RunOptions`].
///
/// A plain input converts into one with no options, so a service takes
/// either.
///
/// ```
/// use stroma_core::{ExecutionContext, RunOptions, RunRequest};
///
/// let tenant = ExecutionContext::of([("tenant_id", "acme")]);
/// let request = RunRequest::new(7_u32).with_options(RunOptions::new().execution_context(tenant));
/// assert_eq!(request.input, 7);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunRequest<I> {
    /// The pipeline's input.
    pub input: I,
    /// The run's options (its model is always `()`).
    pub options: RunOptions,
}

impl<I> RunRequest<I> {
    /// A run of `input` with no options.
    pub fn new(input: I) -> Self {
        RunRequest {
            input,
            options: RunOptions::new(),
        }
    }

    /// This request with `options` instead of its own.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }
}

impl<I> From<I> for RunRequest<I> {
    fn from(input: I) -> Self {
        RunRequest::new(input)
    }
}
