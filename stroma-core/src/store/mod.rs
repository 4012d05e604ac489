//! Durable runs, the storage layer: checkpoints of a run's progress, and
//! leases that let exactly one worker drive a run at a time.
//!
//! One object-safe trait, [`RunStore`], and two implementations:
//! [`MemoryStore`] (in the process, for tests) and, with the `sqlite` feature
//! (on by default), [`SqliteStore`] (an embedded SQLite file). The trait
//! assumes nothing about SQLite: a store shared by many workers (PostgreSQL,
//! say) can implement it with row locks or conditional updates.

mod error;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use error::{StoreError, StoreErrorKind};
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{RUN_STORE_SCHEMA_VERSION, SqliteStore};

use crate::run::middleware::BoxFuture;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped to ask a person (`Context::interrupt`); resumed with the
    /// answer. (A run whose process died is still `Running`.)
    Interrupted,
}

impl RunStatus {
    /// The status as stored: `"running"`, `"completed"`, `"failed"`,
    /// `"interrupted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The status named `text` (as written by [`as_str`](Self::as_str)).
    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One saved point of a run's progress.
///
/// `state` is opaque to the store: the engine puts in it whatever it needs
/// to resume (last completed path, next input, model, kept outputs, ..) and
/// the store keeps it as given.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The run.
    pub run_id: String,
    /// The checkpoint's position in the run: each saved checkpoint's `seq`
    /// must be above the previous one's.
    pub seq: u64,
    /// The run's status as of this checkpoint.
    pub status: RunStatus,
    /// Identifies the pipeline's shape, so a resume can refuse a pipeline
    /// that changed.
    pub fingerprint: String,
    /// What the engine needs to resume; opaque to the store.
    pub state: serde_json::Value,
    /// When the checkpoint was made.
    pub written_at: SystemTime,
}

impl Checkpoint {
    /// A checkpoint written now.
    pub fn new(
        run_id: impl Into<String>,
        seq: u64,
        status: RunStatus,
        fingerprint: impl Into<String>,
        state: serde_json::Value,
    ) -> Checkpoint {
        Checkpoint {
            run_id: run_id.into(),
            seq,
            status,
            fingerprint: fingerprint.into(),
            state,
            written_at: SystemTime::now(),
        }
    }

    /// This checkpoint with `written_at` set.
    pub fn with_written_at(mut self, written_at: SystemTime) -> Checkpoint {
        self.written_at = written_at;
        self
    }
}

/// A run as [`RunStore::list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Its status: that of its latest checkpoint, or `Running` before the
    /// first.
    pub status: RunStatus,
    /// The `seq` of its latest checkpoint; 0 before the first.
    pub latest_seq: u64,
    /// When it was created or last saved.
    pub updated_at: SystemTime,
    /// The run it was started from, if any.
    pub parent_run: Option<String>,
}

impl RunSummary {
    /// A summary (for implementers of [`RunStore`]).
    pub fn new(
        run_id: impl Into<String>,
        status: RunStatus,
        latest_seq: u64,
        updated_at: SystemTime,
        parent_run: Option<String>,
    ) -> RunSummary {
        RunSummary {
            run_id: run_id.into(),
            status,
            latest_seq,
            updated_at,
            parent_run,
        }
    }
}

/// The right to drive one run until a time: who holds it, and a token that
/// tells this grant apart from every other grant on the run.
///
/// Got from [`RunStore::acquire`]; [`RunStore::save`] refuses a lease that is
/// no longer the run's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    run_id: String,
    holder: String,
    token: String,
    expires_at: SystemTime,
}

impl Lease {
    /// A lease (for implementers of [`RunStore`]); `token` must be unique
    /// among the grants on `run_id`.
    pub fn new(
        run_id: impl Into<String>,
        holder: impl Into<String>,
        token: impl Into<String>,
        expires_at: SystemTime,
    ) -> Lease {
        Lease {
            run_id: run_id.into(),
            holder: holder.into(),
            token: token.into(),
            expires_at,
        }
    }

    /// The leased run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Who holds it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// What tells this grant apart from the others.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When it runs out unless released sooner.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// Where durable runs keep their checkpoints and leases.
///
/// Every method is async and returns a [`BoxFuture`], so the trait is
/// object-safe (`Arc<dyn RunStore>`).
///
/// # Contract
///
/// - [`acquire`](Self::acquire) grants at most one live lease per run, and
///   decides that atomically in the store (two workers asking at once: one
///   wins, the other gets [`StoreErrorKind::LeaseHeld`] naming the holder).
///   A lease is live until released or until its time runs out.
/// - [`save`](Self::save) appends one checkpoint atomically, and only under
///   the run's current live lease ([`StoreErrorKind::StaleLease`]
///   otherwise); its `seq` must be above the run's latest
///   ([`StoreErrorKind::SeqConflict`]).
/// - Lease times are judged by the clock of whoever decides: for
///   [`MemoryStore`] and [`SqliteStore`] that is the local clock (workers on
///   one machine); a store shared across machines should judge expiry by
///   its server's clock (`now()` in the database), not the callers'.
/// - A stored value that cannot be decoded is an error of kind
///   [`StoreErrorKind::Corrupt`] naming the run and the field, never a
///   default.
pub trait RunStore: Send + Sync {
    /// Records a new run, status [`RunStatus::Running`], no checkpoint yet.
    /// Fails with [`StoreErrorKind::RunExists`] if `run_id` is taken.
    fn create_run<'a>(
        &'a self,
        run_id: &'a str,
        fingerprint: &'a str,
        parent_run: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Appends `checkpoint` to its run, atomically, under `lease`; the run's
    /// status becomes the checkpoint's.
    fn save<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The run's checkpoint with the highest `seq`; `None` if it has none
    /// (or the run is unknown).
    fn latest<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>>;

    /// Every checkpoint of the run, in `seq` order; empty if it has none
    /// (or the run is unknown).
    fn checkpoints<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Checkpoint>, StoreError>>;

    /// Every run (with `status`, if given), most recently updated first.
    fn list(&self, status: Option<RunStatus>)
    -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>>;

    /// A lease on `run_id` for `holder`, live for `ttl`. Fails with
    /// [`StoreErrorKind::LeaseHeld`] while another lease on the run is live
    /// (even one of the same holder), and with
    /// [`StoreErrorKind::UnknownRun`] for an unknown run.
    fn acquire<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>>;

    /// Extends `lease`, still the run's current live lease, to `ttl` from
    /// now; fails with [`StoreErrorKind::StaleLease`] otherwise.
    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>>;

    /// Gives `lease` up. Releasing a lease that is no longer current does
    /// nothing.
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a new run, leases it to `holder` for `ttl` and, if given,
    /// saves its first checkpoint: [`create_run`](Self::create_run),
    /// [`acquire`](Self::acquire) and [`save`](Self::save) as one step, all
    /// or nothing where the store can (one transaction for [`SqliteStore`]).
    fn begin_run<'a>(
        &'a self,
        run_id: &'a str,
        fingerprint: &'a str,
        parent_run: Option<&'a str>,
        holder: &'a str,
        ttl: Duration,
        first: Option<Checkpoint>,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            self.create_run(run_id, fingerprint, parent_run).await?;
            let lease = self.acquire(run_id, holder, ttl).await?;
            if let Some(first) = first {
                self.save(first, &lease).await?;
            }
            Ok(lease)
        })
    }

    /// Saves `checkpoint` and gives `lease` up: [`save`](Self::save) then
    /// [`release`](Self::release) as one step where the store can. The
    /// lease is released only if the checkpoint was saved.
    fn save_and_release<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.save(checkpoint, lease).await?;
            self.release(lease).await
        })
    }

    /// Removes the run: its checkpoints, lease and record. `false` if there
    /// was no such run.
    fn delete<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes every run (with `status`, if given) not updated for
    /// `older_than`, except runs under a live lease; returns how many.
    fn prune(
        &self,
        older_than: Duration,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;
}

/// A shared store is a store: `Arc<MemoryStore>`, `Arc<dyn RunStore>`.
impl<S: RunStore + ?Sized> RunStore for std::sync::Arc<S> {
    fn create_run<'a>(
        &'a self,
        run_id: &'a str,
        fingerprint: &'a str,
        parent_run: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).create_run(run_id, fingerprint, parent_run)
    }

    fn save<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).save(checkpoint, lease)
    }

    fn latest<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        (**self).latest(run_id)
    }

    fn checkpoints<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Checkpoint>, StoreError>> {
        (**self).checkpoints(run_id)
    }

    fn list(
        &self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        (**self).list(status)
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        (**self).renew(lease, ttl)
    }

    fn acquire<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        (**self).acquire(run_id, holder, ttl)
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).release(lease)
    }

    fn delete<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).delete(run_id)
    }

    fn begin_run<'a>(
        &'a self,
        run_id: &'a str,
        fingerprint: &'a str,
        parent_run: Option<&'a str>,
        holder: &'a str,
        ttl: Duration,
        first: Option<Checkpoint>,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        (**self).begin_run(run_id, fingerprint, parent_run, holder, ttl, first)
    }

    fn save_and_release<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).save_and_release(checkpoint, lease)
    }

    fn prune(
        &self,
        older_than: Duration,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        (**self).prune(older_than, status)
    }
}

/// A unique lease token: process id, time, and a counter.
pub(crate) fn new_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `now - age`, or the epoch if that is before it.
pub(crate) fn cutoff(now: SystemTime, age: Duration) -> SystemTime {
    now.checked_sub(age).unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text_and_serde() {
        for s in [
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), s);
        }
        assert_eq!(RunStatus::parse("Running"), None);
    }

    #[test]
    fn errors_name_the_run_the_operation_and_the_cause() {
        let err = StoreError::lease_held("acquire", "r1", "w1");
        assert_eq!(
            err.to_string(),
            "run \"r1\": acquire failed: the run is leased by \"w1\" and that lease has not expired"
        );
        let err = StoreError::corrupt("latest", "r1", "state", "EOF");
        assert_eq!(err.kind(), &StoreErrorKind::Corrupt { field: "state" });
        assert_eq!(
            err.to_string(),
            "run \"r1\": latest failed: stored field `state` cannot be decoded: EOF"
        );
        let err = StoreError::new("list", "", "disk I/O error");
        assert_eq!(err.to_string(), "run store: list failed: disk I/O error");
        fn is_send_sync<T: Send + Sync + std::error::Error + 'static>() {}
        is_send_sync::<StoreError>();
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
    }

    #[tokio::test]
    async fn the_trait_is_object_safe_and_a_shared_store_is_a_store() {
        let store: std::sync::Arc<dyn RunStore> = std::sync::Arc::new(MemoryStore::new());
        fn takes<S: RunStore>(s: S) -> S {
            s
        }
        let store = takes(store);
        store.create_run("r", "fp", None).await.unwrap();
        assert_eq!(store.list(None).await.unwrap().len(), 1);
    }
}
