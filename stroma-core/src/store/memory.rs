//! [`MemoryStore`]: runs held in the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{
    Checkpoint, Lease, RunStatus, RunStore, RunSummary, StoreError, StoreErrorKind, cutoff,
    new_token,
};
use crate::run::middleware::BoxFuture;

/// A run store kept in memory: for tests, and for runs that need not outlive
/// the process (nothing survives it).
///
/// A cheap handle: clones share the same runs. Leases are decided under one
/// lock, so two tasks acquiring at once cannot both win.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use stroma_core::{Checkpoint, MemoryStore, RunStatus, RunStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// store.create_run("run-1", "fp-abc", None).await?;
///
/// let lease = store.acquire("run-1", "worker-a", Duration::from_secs(30)).await?;
/// // A second worker is turned away while the lease is live.
/// assert!(store.acquire("run-1", "worker-b", Duration::from_secs(30)).await.is_err());
///
/// let cp = Checkpoint::new("run-1", 1, RunStatus::Running, "fp-abc", json!({"next": "b"}));
/// store.save(cp.clone(), &lease).await?;
/// assert_eq!(store.latest("run-1").await?, Some(cp));
///
/// store.release(&lease).await?;
/// assert_eq!(store.list(Some(RunStatus::Running)).await?.len(), 1);
/// # Ok::<(), stroma_core::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    runs: Arc<Mutex<HashMap<String, Run>>>,
    ttl: Option<Duration>,
}

#[derive(Debug)]
struct Run {
    status: RunStatus,
    updated_at: SystemTime,
    parent_run: Option<String>,
    checkpoints: Vec<Checkpoint>,
    lease: Option<Lease>,
}

impl Run {
    fn live_lease(&self, now: SystemTime) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.expires_at() > now)
    }
}

impl MemoryStore {
    /// An empty store, without a TTL.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// This store (sharing its runs) with a TTL: [`prune_expired`](Self::prune_expired)
    /// deletes runs not updated for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> MemoryStore {
        self.ttl = Some(ttl);
        self
    }

    /// Deletes the runs (any status) not updated for the store's TTL, except
    /// runs under a live lease; returns how many. Without a TTL, deletes none.
    pub async fn prune_expired(&self) -> Result<usize, StoreError> {
        match self.ttl {
            Some(ttl) => self.prune(ttl, None).await,
            None => Ok(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Run>> {
        // Every change below is made whole under the lock; a panic cannot
        // leave a half-made one.
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RunStore for MemoryStore {
    fn create_run<'a>(
        &'a self,
        run_id: &'a str,
        _fingerprint: &'a str,
        parent_run: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut runs = self.lock();
            if runs.contains_key(run_id) {
                return Err(StoreError::with_kind(
                    "create_run",
                    run_id,
                    StoreErrorKind::RunExists,
                    "a run with this id already exists",
                ));
            }
            runs.insert(
                run_id.to_owned(),
                Run {
                    status: RunStatus::Running,
                    updated_at: SystemTime::now(),
                    parent_run: parent_run.map(str::to_owned),
                    checkpoints: Vec::new(),
                    lease: None,
                },
            );
            Ok(())
        })
    }

    fn save<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let id = checkpoint.run_id.clone();
            if lease.run_id() != id {
                return Err(StoreError::stale_lease("save", id, lease.holder()));
            }
            let mut runs = self.lock();
            let run = runs
                .get_mut(&id)
                .ok_or_else(|| StoreError::unknown_run("save", &id))?;
            let now = SystemTime::now();
            if run.live_lease(now).map(Lease::token) != Some(lease.token()) {
                return Err(StoreError::stale_lease("save", id, lease.holder()));
            }
            let latest = run.checkpoints.last().map_or(0, |c| c.seq);
            if checkpoint.seq <= latest {
                return Err(StoreError::with_kind(
                    "save",
                    id,
                    StoreErrorKind::SeqConflict { latest },
                    format!(
                        "checkpoint seq {} is not above the latest seq {latest}",
                        checkpoint.seq
                    ),
                ));
            }
            run.status = checkpoint.status;
            run.updated_at = now;
            run.checkpoints.push(checkpoint);
            Ok(())
        })
    }

    fn latest<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .get(run_id)
                .and_then(|r| r.checkpoints.last().cloned()))
        })
    }

    fn checkpoints<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Checkpoint>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .get(run_id)
                .map(|r| r.checkpoints.clone())
                .unwrap_or_default())
        })
    }

    fn list(
        &self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        Box::pin(async move {
            let mut out: Vec<RunSummary> = self
                .lock()
                .iter()
                .filter(|(_, r)| status.is_none_or(|s| s == r.status))
                .map(|(id, r)| {
                    RunSummary::new(
                        id.clone(),
                        r.status,
                        r.checkpoints.last().map_or(0, |c| c.seq),
                        r.updated_at,
                        r.parent_run.clone(),
                    )
                })
                .collect();
            out.sort_by(|a, b| {
                b.updated_at
                    .cmp(&a.updated_at)
                    .then_with(|| a.run_id.cmp(&b.run_id))
            });
            Ok(out)
        })
    }

    fn acquire<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let mut runs = self.lock();
            let run = runs
                .get_mut(run_id)
                .ok_or_else(|| StoreError::unknown_run("acquire", run_id))?;
            let now = SystemTime::now();
            if let Some(held) = run.live_lease(now) {
                return Err(StoreError::lease_held("acquire", run_id, held.holder()));
            }
            let expires_at = now
                .checked_add(ttl)
                .ok_or_else(|| StoreError::new("acquire", run_id, "the ttl is too long"))?;
            let lease = Lease::new(run_id, holder, new_token(), expires_at);
            run.lease = Some(lease.clone());
            Ok(lease)
        })
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let mut runs = self.lock();
            let now = SystemTime::now();
            let run = runs
                .get_mut(lease.run_id())
                .filter(|r| r.live_lease(now).map(Lease::token) == Some(lease.token()))
                .ok_or_else(|| StoreError::stale_lease("renew", lease.run_id(), lease.holder()))?;
            let expires_at = now
                .checked_add(ttl)
                .ok_or_else(|| StoreError::new("renew", lease.run_id(), "the ttl is too long"))?;
            let renewed = Lease::new(lease.run_id(), lease.holder(), lease.token(), expires_at);
            run.lease = Some(renewed.clone());
            Ok(renewed)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(run) = self.lock().get_mut(lease.run_id())
                && run.lease.as_ref().map(Lease::token) == Some(lease.token())
            {
                run.lease = None;
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.lock().remove(run_id).is_some()) })
    }

    fn prune(
        &self,
        older_than: Duration,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(async move {
            let now = SystemTime::now();
            let before = cutoff(now, older_than);
            let mut runs = self.lock();
            let n = runs.len();
            runs.retain(|_, r| {
                !(r.updated_at < before
                    && status.is_none_or(|s| s == r.status)
                    && r.live_lease(now).is_none())
            });
            Ok(n - runs.len())
        })
    }
}
