//! Stopping a run from outside: a [`CancellationToken`] or a time limit
//! for the whole run ([`RunOptions::cancel_token`](crate::RunOptions::cancel_token),
//! [`RunOptions::timeout`](crate::RunOptions::timeout)).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use std::panic::AssertUnwindSafe;
use std::task::Poll;

use futures::future::{Either, select};
use tokio_util::sync::CancellationToken;

/// Why a run was stopped from outside: its token was cancelled, or its
/// time limit passed. A run stopped so fails with this as the cause of the
/// node that was running; [`RunError::is_cancelled`](crate::RunError::is_cancelled) tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    limit: Option<Duration>,
}

impl Cancelled {
    /// The run's time limit, if that is what stopped it.
    pub fn timed_out_after(&self) -> Option<Duration> {
        self.limit
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Some(limit) => write!(
                f,
                "the run timed out after {limit:?} and was cancelled here"
            ),
            None => f.write_str("the run was cancelled here"),
        }
    }
}

impl std::error::Error for Cancelled {}

/// What stops a run from outside, if anything does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stop {
    pub(crate) token: Option<CancellationToken>,
    pub(crate) limit: Option<Duration>,
}

impl Stop {
    pub(crate) fn is_set(&self) -> bool {
        self.token.is_some() || self.limit.is_some()
    }

    /// The token nodes see through `Context::cancelled`: a child of the
    /// caller's, cancelled as well when the time limit passes.
    pub(crate) fn run_token(&self) -> Option<CancellationToken> {
        self.is_set().then(|| {
            self.token
                .as_ref()
                .map_or_else(CancellationToken::new, CancellationToken::child_token)
        })
    }
}

/// A run's time limit, and when it passes: set when the run is first
/// polled, so time spent waiting for a run slot counts.
#[derive(Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) after: Duration,
    pub(crate) at: tokio::time::Instant,
}

impl Limit {
    /// `after` from now.
    pub(crate) fn starting_now(after: Duration) -> Self {
        Limit {
            after,
            at: tokio::time::Instant::now() + after,
        }
    }
}

/// Ends when the run is stopped from outside: its token cancelled, or its
/// time limit passed (which cancels the token, so nodes watching
/// `Context::cancelled` see it too).
async fn stopped(token: &CancellationToken, limit: Option<Limit>) -> Cancelled {
    match limit {
        None => {
            token.cancelled().await;
            Cancelled { limit: None }
        }
        Some(limit) => {
            let expired = tokio::time::sleep_until(limit.at);
            match select(std::pin::pin!(token.cancelled()), std::pin::pin!(expired)).await {
                Either::Left(_) => Cancelled { limit: None },
                Either::Right(_) => {
                    token.cancel();
                    Cancelled {
                        limit: Some(limit.after),
                    }
                }
            }
        }
    }
}

/// Waits for `slot` (a run slot) unless the run is stopped first: a
/// waiting run is cancelled as a running one is.
pub(crate) async fn unless_stopped<F: Future>(
    slot: F,
    token: &CancellationToken,
    limit: Option<Limit>,
) -> Result<F::Output, Cancelled> {
    match select(std::pin::pin!(slot), std::pin::pin!(stopped(token, limit))).await {
        Either::Left((slot, _)) => Ok(slot),
        Either::Right((why, _)) => Err(why),
    }
}

/// Runs `run` until it ends or `token` is cancelled or `limit` passes,
/// whichever comes first; then `run` is dropped where it stands.
pub(crate) async fn race<F: Future>(
    run: F,
    token: CancellationToken,
    limit: Option<Limit>,
) -> Result<F::Output, Stopped> {
    until(run, stopped(&token, limit))
        .await
        .map_err(|(why, dropped)| Stopped { why, dropped })
}

/// Runs `run` until `stop` ends first, polling `run` first each time (a
/// run done at its first poll is never stopped). A run stopped so is
/// dropped here, where a panic in a `Drop` of its code is caught: `Err`
/// holds what `stop` gave and that panic, if there was one.
pub(crate) async fn until<F: Future, S: Future>(
    run: F,
    stop: S,
) -> Result<F::Output, (S::Output, Option<Box<dyn std::any::Any + Send>>)> {
    // Held in an `Option` so that, once stopped, it is dropped here.
    let mut run = std::pin::pin!(Some(run));
    let mut stop = std::pin::pin!(stop);
    let ended = std::future::poll_fn(|task| {
        let running = run
            .as_mut()
            .as_pin_mut()
            .expect("polled only until it ends");
        if let Poll::Ready(output) = running.poll(task) {
            return Poll::Ready(Ok(output));
        }
        stop.as_mut().poll(task).map(Err)
    })
    .await;
    ended.map_err(|why| {
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| run.set(None))).err();
        (why, dropped)
    })
}

/// A run stopped from outside: why, and the panic dropping its future
/// raised, if it did.
pub(crate) struct Stopped {
    pub(crate) why: Cancelled,
    pub(crate) dropped: Option<Box<dyn std::any::Any + Send>>,
}

/// The error of [`StromaRunner::try_run`](crate::StromaRunner::try_run)
/// when the runner already runs as many runs as it may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtCapacity {
    pub(crate) limit: usize,
}

impl AtCapacity {
    /// How many runs the runner allows at once.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for AtCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the runner already runs {} runs, its max_concurrent_runs; nothing was run",
            self.limit
        )
    }
}

impl std::error::Error for AtCapacity {}
