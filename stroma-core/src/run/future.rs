//! A run's future and its stream of events, under names.
//!
//! The entry points return [`RunFuture`] and [`RunStream`] rather than an
//! `impl Future` or `impl Stream`:
//! rustc reports a bound that a fn returning an `impl Future` does not meet
//! three times (at the argument, the call and the `.await`), and a fn
//! returning a named type once, at the argument. Naming the run's future
//! takes a box: one allocation per run.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc::UnboundedReceiver;

use crate::run::event::Event;
use crate::run::outcome::{RunError, RunResult};

/// A run: what [`StromaRunner::run`](crate::StromaRunner::run) and the
/// other entry points return. Await it for the run's result.
///
/// Nothing runs until it is first polled; dropping it before it finishes
/// cancels the run, as a cancelled token does.
///
/// ```
/// use stroma::prelude::*;
///
/// #[node]
/// async fn double(x: u32) -> u32 { x * 2 }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let runner = StromaRunner::quick();
/// let p = pipeline![double, double];
/// // A named type: it can be kept in a field or a `Vec` without boxing it again.
/// let runs: Vec<RunFuture<'_, u32>> = (1..=3).map(|x| runner.run(&p, x)).collect();
/// let done = futures::future::try_join_all(runs).await.unwrap();
/// assert_eq!(done.iter().map(|r| r.final_state).collect::<Vec<_>>(), [4, 8, 12]);
/// # });
/// ```
#[must_use = "a run does nothing unless it is awaited"]
pub struct RunFuture<'a, O, M = ()> {
    run: Pin<Box<dyn Future<Output = Outcome<O, M>> + Send + 'a>>,
}

type Outcome<O, M> = Result<RunResult<O, M>, RunError>;

impl<'a, O, M> RunFuture<'a, O, M> {
    /// The run `start` makes, made in its box: a run's future is about
    /// 2 KiB, and made first then boxed it would be copied there.
    #[inline(always)]
    pub(crate) fn new<F>(start: impl FnOnce() -> F) -> Self
    where
        F: Future<Output = Result<RunResult<O, M>, RunError>> + Send + 'a,
    {
        let run: Box<F> = Box::write(Box::new_uninit(), start());
        RunFuture {
            run: Box::into_pin(run),
        }
    }
}

impl<O, M> Future for RunFuture<'_, O, M> {
    type Output = Result<RunResult<O, M>, RunError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.run.as_mut().poll(cx)
    }
}

impl<O, M> fmt::Debug for RunFuture<'_, O, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunFuture").finish_non_exhaustive()
    }
}

/// What a [`RunStream`] yields: events as they happen, then the result.
// The result is large and comes once; boxing it would cost every run an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RunEvent<O, M = ()> {
    /// Something happened.
    Event(Event),
    /// The run ended; always the last item.
    Finished(Result<RunResult<O, M>, RunError>),
}

/// A run's events as they happen, then its result: what
/// [`StromaRunner::stream`](crate::StromaRunner::stream) returns.
///
/// Polling it drives the run. It yields a [`RunEvent::Event`] for each
/// event in order, then one [`RunEvent::Finished`], then ends. Dropping it
/// cancels the run.
#[must_use = "a run does nothing unless its stream is polled"]
pub struct RunStream<'a, O, M = ()> {
    run: Option<RunFuture<'a, O, M>>,
    events: UnboundedReceiver<Event>,
    result: Option<Result<RunResult<O, M>, RunError>>,
}

// Nothing inside is ever pinned but the run, which is boxed.
impl<O, M> Unpin for RunStream<'_, O, M> {}

impl<'a, O, M> RunStream<'a, O, M> {
    pub(crate) fn new(run: RunFuture<'a, O, M>, events: UnboundedReceiver<Event>) -> Self {
        RunStream {
            run: Some(run),
            events,
            result: None,
        }
    }
}

impl<O, M> Stream for RunStream<'_, O, M> {
    type Item = RunEvent<O, M>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(run) = this.run.as_mut() {
            // An event already sent goes out before the run is driven on.
            if let Poll::Ready(Some(event)) = Pin::new(&mut this.events).poll_next(cx) {
                return Poll::Ready(Some(RunEvent::Event(event)));
            }
            match Pin::new(run).poll(cx) {
                Poll::Ready(result) => {
                    this.result = Some(result);
                    this.run = None;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // The run is over: the events it sent last, then its result.
        if let Ok(event) = this.events.try_recv() {
            return Poll::Ready(Some(RunEvent::Event(event)));
        }
        Poll::Ready(this.result.take().map(RunEvent::Finished))
    }
}

impl<O, M> fmt::Debug for RunStream<'_, O, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStream")
            .field("finished", &self.run.is_none())
            .finish_non_exhaustive()
    }
}
