//! `.retry(policy)`: a node run again when it fails, each attempt from the
//! model and context as they were before the first.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::propagation::with_context;
use crate::durable::journal::Record;
use crate::durable::run::DurableRun;
use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::error::BoxError;
use crate::node::{Node, Runnable};
use crate::run::event::Event;
use crate::store::RunStatus;
use crate::tree::trace::Loc;

/// Which errors a policy retries.
type Predicate = Arc<dyn Fn(&(dyn std::error::Error + 'static)) -> bool + Send + Sync>;

/// When and how often a failed node is run again; see
/// [`NodeExt::retry`](crate::NodeExt::retry).
///
/// ```
/// use std::time::Duration;
/// use stroma_core::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(Duration::from_millis(100))
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(10))
///     .when(|err| !err.to_string().contains("404"));
/// # let _ = policy;
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    first_delay: Duration,
    exponential: bool,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    when: Option<Predicate>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("first_delay", &self.first_delay)
            .field("exponential", &self.exponential)
            .field("max_attempts", &self.max_attempts)
            .field("max_elapsed", &self.max_elapsed)
            .field("when", &self.when.as_ref().map(|_| ".."))
            .finish()
    }
}

impl RetryPolicy {
    /// The same `delay` before every attempt after the first; 3 attempts in all.
    pub fn fixed(delay: Duration) -> Self {
        RetryPolicy {
            first_delay: delay,
            exponential: false,
            max_attempts: 3,
            max_elapsed: None,
            when: None,
        }
    }

    /// `first_delay` before the second attempt, doubling before each one
    /// after, each delay drawn at random between half and all of it
    /// (jitter: retries of many runs do not fall in step); 3 attempts in all.
    pub fn exponential(first_delay: Duration) -> Self {
        RetryPolicy {
            exponential: true,
            ..Self::fixed(first_delay)
        }
    }

    /// At most `n` attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// No attempt starts once `limit` has passed since the first started.
    pub fn max_elapsed(mut self, limit: Duration) -> Self {
        self.max_elapsed = Some(limit);
        self
    }

    /// Retries only errors for which `retryable` says `true` (it sees the
    /// node's own error). An error made with [`NodeError::permanent`](crate::NodeError::permanent)
    /// is never retried, whatever this says.
    pub fn when(
        mut self,
        retryable: impl Fn(&(dyn std::error::Error + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.when = Some(Arc::new(retryable));
        self
    }

    /// The delay before attempt `attempt` (2 for the first retry).
    fn delay(&self, attempt: u32) -> Duration {
        if !self.exponential {
            return self.first_delay;
        }
        let doublings = attempt.saturating_sub(2).min(20);
        let full = self.first_delay.saturating_mul(1 << doublings);
        // Half of it, plus a random part of the other half.
        let half = full / 2;
        half + half.mul_f64(jitter())
    }

    /// Whether `cause`, an attempt's error, may be retried.
    fn retries(&self, cause: &(dyn std::error::Error + 'static)) -> bool {
        let mut error = Some(cause);
        while let Some(current) = error {
            if current.is::<Permanent>() {
                return false;
            }
            error = current.source();
        }
        self.when.as_ref().is_none_or(|when| when(cause))
    }
}

/// A number in [0, 1), different at each call: enough for jitter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// An error never retried: see [`NodeError::permanent`](crate::NodeError::permanent).
#[derive(Debug)]
pub(crate) struct Permanent(pub(crate) BoxError);

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Permanent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The error of a retried node that failed on every attempt: how many were
/// made, and the last attempt's error (its `source`).
#[derive(Debug)]
pub struct RetriesExhausted {
    attempts: u32,
    last: BoxError,
}

impl RetriesExhausted {
    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for RetriesExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(f, "{} (after {} attempt{plural})", self.last, self.attempts)
    }
}

impl RetriesExhausted {
    /// The last attempt's error, to tell the failures inside it their paths.
    pub(crate) fn cause_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        &mut *self.last
    }
}

impl std::error::Error for RetriesExhausted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.last)
    }
}

/// An input a retried node can be given again: `Clone`.
#[diagnostic::on_unimplemented(
    message = "`.retry()` gives its node the same input on every attempt, and `{Self}` is not `Clone`",
    label = "this node's input is `{Self}`",
    note = "derive or implement `Clone` for `{Self}`, or retry inside the node instead"
)]
pub trait RetryInput: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> RetryInput for T {}

/// A node run again when it fails; see [`NodeExt::retry`](crate::NodeExt::retry).
#[derive(Clone, Debug)]
pub struct Retry<N> {
    pub(crate) node: N,
    pub(crate) policy: RetryPolicy,
}

super::wrapper_node!(
    Retry,
    N::MAY_CHANGE_MODEL,
    |retry: &Retry<N>, out: super::Note<'_>| write!(out, "retry ×{}", retry.policy.max_attempts)
);

impl<M, N> Runnable<M> for Retry<N>
where
    M: Clone + Send + 'static,
    N: Runnable<M>,
    N::Input: Clone,
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
            // In a durable run, the attempts are counted in the journal.
            let journal = AttemptJournal::of(cx, slot, N::SLOTS);
            let mut attempt = match &journal {
                Some(journal) => journal.next_attempt(self.policy.max_attempts, cx, slot)?,
                None => 1,
            };
            // The clock is read only for a policy that needs it.
            let started = self.policy.max_elapsed.map(|_| Instant::now());
            // Each attempt starts from the model as it was before the first.
            let kept = N::MAY_CHANGE_MODEL.then(|| cx.model().clone());
            loop {
                if let Some(journal) = &journal {
                    journal.begin(attempt, cx.state_ref().loc(slot)).await?;
                }
                let outcome = self.attempt::<O, M>(input.clone(), cx, slot).await;
                let failure = match outcome {
                    Ok(output) => {
                        if let Some(journal) = &journal {
                            journal.finish(attempt, cx.state_ref().loc(slot)).await?;
                        }
                        return Ok(output);
                    }
                    Err(failure) => failure,
                };
                let retry = attempt < self.policy.max_attempts
                    && !failure.is_panic()
                    && self.policy.retries(failure.innermost().cause());
                let delay = self.policy.delay(attempt + 1);
                let in_time = match (self.policy.max_elapsed, started) {
                    (Some(limit), Some(started)) => started.elapsed() + delay < limit,
                    _ => true,
                };
                if !retry || !in_time {
                    return Err(failure.map_cause(|last| {
                        Box::new(RetriesExhausted {
                            attempts: attempt,
                            last,
                        })
                    }));
                }
                if let Some(kept) = &kept {
                    *cx.model_mut() = kept.clone();
                }
                attempt += 1;
                let state = cx.state_ref();
                if state.streams() {
                    let loc = failure.innermost().loc().unwrap_or(state.loc(slot));
                    let path = state.path_now(loc.slot);
                    let name = state.id_of(loc.slot);
                    let error = failure.innermost().cause().to_string();
                    state.emit(|| Event::NodeRetrying {
                        name,
                        path,
                        attempt,
                        error,
                        delay,
                    });
                }
                tokio::time::sleep(delay).await;
                cx.state().clock_moved();
            }
        }
    }
}

impl<N: Node> Retry<N> {
    /// One attempt, in a context layer of its own kept only if it succeeds.
    async fn attempt<O: Observer, M>(
        &self,
        input: N::Input,
        cx: &mut Cx<M>,
        slot: u32,
    ) -> Result<N::Output, NodeFailure>
    where
        M: Send + 'static,
        N: Runnable<M>,
    {
        if !N::USES_CONTEXT {
            return self.node.run::<O>(input, cx, slot).await;
        }
        let outer = cx.state().open_layer();
        let inner = cx.state_ref().context.clone();
        let outcome = Box::pin(with_context(&inner, self.node.run::<O>(input, cx, slot))).await;
        cx.state().close_layer(outer, outcome.is_ok());
        outcome
    }
}

/// A retried node's attempts in a durable run: each is saved before it
/// begins, so that a resume counts one cut off by a crash as made.
struct AttemptJournal {
    run: Arc<DurableRun>,
    path: String,
    /// Whether the node is one leaf, whose own completion the journal holds;
    /// a retried pipeline saves its finished attempt itself.
    leaf: bool,
    /// How many attempts were begun before this process: the last, if
    /// any, a crash cut off.
    begun: u32,
}

impl AttemptJournal {
    /// The journal of the retried node at `slot` (with `slots` slots), if
    /// the run is durable and the node has not completed before.
    fn of<M>(cx: &Cx<M>, slot: u32, slots: u32) -> Option<Self> {
        let run = cx.state_ref().shared().durable.clone()?;
        if !run.writes() {
            return None;
        }
        let path = cx.state_ref().path_now(slot).to_string();
        let leaf = slots == 1;
        let (begun, done) = run.attempts_begun(&path);
        // Completed before: it replays, and no attempt is made.
        if done || (leaf && run.has_completed(&path)) {
            return None;
        }
        Some(AttemptJournal {
            run,
            path,
            leaf,
            begun,
        })
    }

    /// The number of the first attempt this process makes: one after the
    /// last begun before it, which a crash cut off; an error if that was the
    /// last attempt the policy allows.
    fn next_attempt<M>(
        &self,
        max_attempts: u32,
        cx: &Cx<M>,
        slot: u32,
    ) -> Result<u32, NodeFailure> {
        let begun = self.begun;
        let cut_off = || format!("attempt {begun} was cut off when the run's process stopped");
        if begun >= max_attempts {
            return Err(NodeFailure::at(
                cx.state_ref().loc(slot),
                Box::new(RetriesExhausted {
                    attempts: begun,
                    last: cut_off().into(),
                }),
            ));
        }
        if begun > 0 {
            let state = cx.state_ref();
            state.emit(|| Event::NodeRetrying {
                name: state.id_of(slot),
                path: state.path_now(slot),
                attempt: begun + 1,
                error: cut_off(),
                delay: Duration::ZERO,
            });
        }
        Ok(begun + 1)
    }

    /// Saves that `attempt` begins (a failure to save is the node's, at `at`).
    async fn begin(&self, attempt: u32, at: Loc) -> Result<(), NodeFailure> {
        self.save(attempt, false, at).await
    }

    /// Saves that `attempt` succeeded, for a retried pipeline.
    async fn finish(&self, attempt: u32, at: Loc) -> Result<(), NodeFailure> {
        if self.leaf {
            return Ok(());
        }
        self.save(attempt, true, at).await
    }

    async fn save(&self, attempt: u32, done: bool, at: Loc) -> Result<(), NodeFailure> {
        let record = Record::Attempt {
            path: self.path.clone(),
            attempt,
            done,
        };
        self.run
            .append(vec![record], RunStatus::Running)
            .await
            .map_err(|err| NodeFailure::at(at, Box::new(err)))
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn exponential_delays_double_and_are_jittered_within_their_upper_half() {
        let first = Duration::from_millis(100);
        let policy = RetryPolicy::exponential(first);
        // Before attempt k: between half and all of `first` doubled k - 2 times.
        for (attempt, full) in [(2, 100), (3, 200), (4, 400), (5, 800)] {
            let full = Duration::from_millis(full);
            for _ in 0..50 {
                let delay = policy.delay(attempt);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "attempt {attempt}: {delay:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        // Jittered: 50 draws are not all one delay.
        let draws: std::collections::HashSet<Duration> = (0..50).map(|_| policy.delay(3)).collect();
        assert!(draws.len() > 1, "no jitter: {draws:?}");
        // A fixed policy waits the same before every attempt.
        let fixed = RetryPolicy::fixed(first);
        assert!((2..10).all(|attempt| fixed.delay(attempt) == first));
    }
}
