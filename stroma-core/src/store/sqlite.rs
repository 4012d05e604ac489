//! [`SqliteStore`]: runs in an embedded SQLite file.
//!
//! Built on `rusqlite` (bundled), the same dependency and the same patterns
//! as [`SqliteSession`](crate::SqliteSession): one connection per
//! [`open`](SqliteStore::open), every call on tokio's blocking pool, WAL,
//! `IMMEDIATE` write transactions, a schema version row in `stroma_meta`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sqlite_file::{SharedConnection, on_blocking_pool, set_up};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    Checkpoint, Lease, RunStatus, RunStore, RunSummary, StoreError, StoreErrorKind, cutoff,
    new_token,
};
use crate::run::middleware::BoxFuture;

/// The version of the table layout [`SqliteStore`] reads and writes, kept in
/// `stroma_meta` under the key `run_store_schema_version`.
pub const RUN_STORE_SCHEMA_VERSION: i64 = 1;

const VERSION_KEY: &str = "run_store_schema_version";

/// A run store in a SQLite file: checkpoints survive the process.
///
/// A handle is cheap to clone: clones share one connection. Every SQLite call
/// runs on tokio's blocking pool; the methods must be awaited inside a tokio
/// runtime (outside one they return an error). Several processes, or several
/// [`open`](Self::open)s of one file, may use it at once: leases are granted
/// inside `IMMEDIATE` transactions, so of two workers acquiring one run at
/// once exactly one wins, whichever connection they are on. The file may be
/// the one a [`SqliteSession`](crate::SqliteSession) uses: the tables differ.
///
/// # Schema (version [`RUN_STORE_SCHEMA_VERSION`] = 1)
///
/// ```sql
/// CREATE TABLE stroma_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
/// -- key 'run_store_schema_version', value '1'
/// CREATE TABLE stroma_runs (
///     run_id      TEXT PRIMARY KEY NOT NULL,
///     status      TEXT NOT NULL,      -- 'running' | 'completed' | 'failed' | 'interrupted'
///     fingerprint TEXT NOT NULL,
///     parent_run  TEXT,
///     latest_seq  INTEGER NOT NULL,   -- 0 before the first checkpoint
///     created_at  INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
///     updated_at  INTEGER NOT NULL
/// );
/// CREATE TABLE stroma_checkpoints (
///     run_id      TEXT NOT NULL,
///     seq         INTEGER NOT NULL,
///     status      TEXT NOT NULL,
///     fingerprint TEXT NOT NULL,
///     state       TEXT NOT NULL,      -- the state as JSON text
///     written_at  INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
///     PRIMARY KEY (run_id, seq)
/// );
/// CREATE TABLE stroma_leases (
///     run_id      TEXT PRIMARY KEY NOT NULL,
///     holder      TEXT NOT NULL,
///     token       TEXT NOT NULL,
///     expires_at  INTEGER NOT NULL    -- nanoseconds since the Unix epoch
/// );
/// ```
///
/// A value that cannot be decoded (a `state` that is not JSON text, an
/// unknown `status`, ..) is an error of kind [`StoreErrorKind::Corrupt`]
/// naming the run and the field; it is never skipped or replaced.
///
/// # Migrations
///
/// The version only goes up. [`open`](Self::open) creates the tables in an
/// empty file and writes version 1. A later layout will bump
/// [`RUN_STORE_SCHEMA_VERSION`] and add a step that [`open`](Self::open) runs,
/// inside the same `IMMEDIATE` transaction, on files of each older version
/// (so concurrent opens migrate once). A file of a newer version than this
/// build knows is refused with [`StoreErrorKind::SchemaVersion`], never
/// misread or downgraded.
///
/// # Durability
///
/// The file is in WAL mode. By default commits use `synchronous = NORMAL`:
/// a [`save`](RunStore::save) that returned `Ok` is in the file's WAL and
/// survives a kill of the process (`SIGKILL`, a panic, an OOM kill; the
/// crash test kills a run mid-node and resumes it from the file); a power
/// loss or an OS crash may undo the last few commits, never corrupt the
/// file. A run then resumes from an earlier checkpoint and runs those nodes
/// again, so what completed still runs at least once; a journaled
/// [`step`](crate::Context::step) among them may run again too (guard its
/// effect with [`idempotency_key`](crate::Context::idempotency_key)).
/// [`sync_on_commit(true)`](Self::sync_on_commit) makes each commit wait for
/// the disk (`FULL`), so an acknowledged checkpoint also survives a power
/// loss, at about one disk sync per node (0.25 ms on a VM disk, measured in
/// `benches/durable.rs`). Leases need no more than `NORMAL`: a power loss
/// ends every process on the machine that could hold one.
///
/// Commits that do not wait for the disk run in place on a multi-threaded
/// tokio runtime (`block_in_place`); everything else runs on the blocking
/// pool.
///
/// # Cancellation
///
/// Dropping a method's future after it was first polled does not stop the
/// SQLite work: the write may still happen, whole or not at all.
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use stroma_core::{Checkpoint, RunStatus, RunStore, SqliteStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("stroma-doc-runstore-{}.db", std::process::id()));
///
/// let store = SqliteStore::open(&path).await?;
/// store.create_run("run-1", "fp-abc", None).await?;
/// let lease = store.acquire("run-1", "worker-a", Duration::from_secs(30)).await?;
/// let cp = Checkpoint::new("run-1", 1, RunStatus::Completed, "fp-abc", json!({"out": 42}));
/// store.save(cp.clone(), &lease).await?;
/// store.release(&lease).await?;
/// drop(store);
///
/// // Another open of the file sees the checkpoint.
/// let store = SqliteStore::open(&path).await?;
/// assert_eq!(store.latest("run-1").await?, Some(cp));
/// assert_eq!(store.list(Some(RunStatus::Completed)).await?.len(), 1);
/// # drop(store);
/// # for suffix in ["", "-wal", "-shm"] {
/// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
/// # }
/// # Ok::<(), stroma_core::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<SharedConnection>,
    ttl: Option<Duration>,
    /// Whether commits wait for the disk; shared by every clone, as the
    /// connection's setting is.
    synced: Arc<std::sync::atomic::AtomicBool>,
}

/// Where an operation runs: for error messages.
struct At<'a> {
    operation: &'static str,
    run_id: &'a str,
    path: &'a Path,
}

impl At<'_> {
    fn storage(&self, err: impl fmt::Display) -> StoreError {
        StoreError::new(
            self.operation,
            self.run_id,
            format!("{}: {err}", self.path.display()),
        )
    }

    fn corrupt(&self, run_id: &str, field: &'static str, err: impl fmt::Display) -> StoreError {
        StoreError::corrupt(self.operation, run_id, field, err)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite file at `path`. The tables are
    /// created on first use; a file of another schema version is refused
    /// with [`StoreErrorKind::SchemaVersion`].
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let conn = blocking("open", "", move || {
            let at = At {
                operation: "open",
                run_id: "",
                path: &p,
            };
            let mut conn = Connection::open(&p).map_err(|e| at.storage(e))?;
            prepare(&mut conn, &at)?;
            Ok(conn)
        })
        .await?;
        Ok(SqliteStore {
            inner: Arc::new(SharedConnection::new(path, conn)),
            ttl: None,
            synced: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// This store (on the same connection) with a TTL:
    /// [`prune_expired`](Self::prune_expired) deletes runs not updated for
    /// `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> SqliteStore {
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

    /// Whether each commit waits for the disk (`true`: SQLite's
    /// `synchronous = FULL`) or only for the operating system (`false`, the
    /// default: `NORMAL`); see the type's "Durability". Either way a checkpoint that was saved survives
    /// a kill of the process and the file is never corrupted; with `false`,
    /// a power loss or OS crash may undo the last checkpoints (the run then
    /// resumes from an earlier one, running those nodes again), in exchange
    /// for commits several times faster. Applies to the connection, so to
    /// every clone of this store.
    pub async fn sync_on_commit(self, on: bool) -> Result<SqliteStore, StoreError> {
        let level = if on { "FULL" } else { "NORMAL" };
        self.with_conn("sync_on_commit", "", move |conn, at| {
            conn.pragma_update(None, "synchronous", level)
                .map_err(|e| at.storage(e))
        })
        .await?;
        self.synced.store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(self)
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends `checkpoint` under `lease` in one transaction, giving the
    /// lease up in the same transaction if `release`.
    async fn commit_checkpoint(
        &self,
        checkpoint: Checkpoint,
        lease: &Lease,
        release: bool,
    ) -> Result<(), StoreError> {
        let run_id = checkpoint.run_id.clone();
        if lease.run_id() != run_id {
            return Err(StoreError::stale_lease("save", run_id, lease.holder()));
        }
        let lease = lease.clone();
        self.with_conn("save", &run_id, move |conn, at| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            append_checkpoint(&tx, at, &checkpoint, &lease)?;
            if release {
                tx.execute(
                    "DELETE FROM stroma_leases WHERE run_id = ?1 AND token = ?2",
                    params![at.run_id, lease.token()],
                )
                .map_err(|e| at.storage(e))?;
            }
            tx.commit().map_err(|e| at.storage(e))
        })
        .await
    }

    /// Runs `work` with the connection: in place when commits do not wait
    /// for the disk and the runtime is multi-threaded, else on the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        operation: &'static str,
        run_id: &str,
        work: impl FnOnce(&mut Connection, &At<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let id = run_id.to_owned();
        let run = move || {
            let at = At {
                operation,
                run_id: &id,
                path: &inner.path,
            };
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = conn
                .as_mut()
                .ok_or_else(|| at.storage("the connection is closed"))?;
            work(conn, &at)
        };
        if !self.synced.load(std::sync::atomic::Ordering::Relaxed)
            && !IN_PLACE_REFUSED.get()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            // A commit that does not wait for the disk takes tens of
            // microseconds: run it here, telling the runtime to move this
            // worker's other tasks elsewhere meanwhile, rather than pay a hop
            // to the blocking pool and back on every node.
            let mut work = Some(run);
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tokio::task::block_in_place(|| work.take().map(|run| run()))
            }));
            match (attempt, work.take()) {
                (Ok(Some(result)), _) => return result,
                // Refused before it ran (a `LocalSet`, a thread the runtime
                // does not drive): the blocking pool, here and from now on
                // on this thread.
                (_, Some(run)) => {
                    IN_PLACE_REFUSED.set(true);
                    return blocking(operation, run_id, run).await;
                }
                (Err(payload), None) => std::panic::resume_unwind(payload),
                (Ok(None), None) => {
                    return Err(StoreError::new(
                        operation,
                        run_id,
                        "the SQLite work was lost",
                    ));
                }
            }
        }
        blocking(operation, run_id, run).await
    }
}

thread_local! {
    /// Set on a thread where tokio refused `block_in_place` once.
    static IN_PLACE_REFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` on tokio's blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    run_id: &str,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    on_blocking_pool(work, |message| StoreError::new(operation, run_id, message)).await
}

/// Sets a new connection up and brings the file to the current version.
fn prepare(conn: &mut Connection, at: &At<'_>) -> Result<(), StoreError> {
    set_up(conn, "NORMAL").map_err(|e| at.storage(e))?;

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| at.storage(e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS stroma_meta (
             key   TEXT PRIMARY KEY NOT NULL,
             value TEXT NOT NULL
         );",
    )
    .map_err(|e| at.storage(e))?;
    let found: Option<String> = tx
        .query_row(
            "SELECT CAST(value AS TEXT) FROM stroma_meta WHERE key = ?1",
            [VERSION_KEY],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| at.storage(e))?;
    match found {
        None => {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS stroma_runs (
                     run_id      TEXT PRIMARY KEY NOT NULL,
                     status      TEXT NOT NULL,
                     fingerprint TEXT NOT NULL,
                     parent_run  TEXT,
                     latest_seq  INTEGER NOT NULL,
                     created_at  INTEGER NOT NULL,
                     updated_at  INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS stroma_runs_updated_at
                     ON stroma_runs (updated_at);
                 CREATE TABLE IF NOT EXISTS stroma_checkpoints (
                     run_id      TEXT NOT NULL,
                     seq         INTEGER NOT NULL,
                     status      TEXT NOT NULL,
                     fingerprint TEXT NOT NULL,
                     state       TEXT NOT NULL,
                     written_at  INTEGER NOT NULL,
                     PRIMARY KEY (run_id, seq)
                 );
                 CREATE TABLE IF NOT EXISTS stroma_leases (
                     run_id      TEXT PRIMARY KEY NOT NULL,
                     holder      TEXT NOT NULL,
                     token       TEXT NOT NULL,
                     expires_at  INTEGER NOT NULL
                 );",
            )
            .map_err(|e| at.storage(e))?;
            tx.execute(
                "INSERT INTO stroma_meta (key, value) VALUES (?1, ?2)",
                params![VERSION_KEY, RUN_STORE_SCHEMA_VERSION.to_string()],
            )
            .map_err(|e| at.storage(e))?;
        }
        Some(text) => {
            let version: i64 = text.trim().parse().map_err(|_| {
                at.storage(format!(
                    "stroma_meta.{VERSION_KEY} is {text:?}, not a version number"
                ))
            })?;
            // Migration steps from older versions go here, in order, each
            // ending by writing its version. There are none yet.
            if version != RUN_STORE_SCHEMA_VERSION {
                return Err(StoreError::with_kind(
                    at.operation,
                    at.run_id,
                    StoreErrorKind::SchemaVersion { found: version },
                    format!(
                        "{}: this build reads run store version {RUN_STORE_SCHEMA_VERSION}; \
                         open the file with a build that knows version {version}",
                        at.path.display()
                    ),
                ));
            }
        }
    }
    tx.commit().map_err(|e| at.storage(e))
}

/// A time as stored: nanoseconds since the Unix epoch.
fn to_nanos(at: &At<'_>, time: SystemTime) -> Result<i64, StoreError> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| at.storage(format!("the time {time:?} cannot be stored")))
}

fn to_seq(at: &At<'_>, seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| at.storage(format!("seq {seq} is above {}", i64::MAX)))
}

/// Decodes one column of a row, naming the field when it cannot.
struct Dec<'a, 'r> {
    at: &'a At<'a>,
    run_id: &'a str,
    row: &'a Row<'r>,
}

impl Dec<'_, '_> {
    fn value(&self, idx: usize) -> Result<ValueRef<'_>, StoreError> {
        self.row.get_ref(idx).map_err(|e| self.at.storage(e))
    }

    fn text(&self, idx: usize, field: &'static str) -> Result<String, StoreError> {
        match self.value(idx)? {
            ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
                .map_err(|e| self.at.corrupt(self.run_id, field, e)),
            other => Err(self.at.corrupt(
                self.run_id,
                field,
                format!("the row holds {:?}, not text", other.data_type()),
            )),
        }
    }

    fn opt_text(&self, idx: usize, field: &'static str) -> Result<Option<String>, StoreError> {
        match self.value(idx)? {
            ValueRef::Null => Ok(None),
            _ => self.text(idx, field).map(Some),
        }
    }

    fn int(&self, idx: usize, field: &'static str) -> Result<i64, StoreError> {
        match self.value(idx)? {
            ValueRef::Integer(n) => Ok(n),
            other => Err(self.at.corrupt(
                self.run_id,
                field,
                format!("the row holds {:?}, not an integer", other.data_type()),
            )),
        }
    }

    fn seq(&self, idx: usize, field: &'static str) -> Result<u64, StoreError> {
        let n = self.int(idx, field)?;
        u64::try_from(n).map_err(|_| {
            self.at
                .corrupt(self.run_id, field, format!("{n} is negative"))
        })
    }

    fn time(&self, idx: usize, field: &'static str) -> Result<SystemTime, StoreError> {
        let n = self.int(idx, field)?;
        u64::try_from(n)
            .ok()
            .and_then(|n| UNIX_EPOCH.checked_add(Duration::from_nanos(n)))
            .ok_or_else(|| {
                self.at
                    .corrupt(self.run_id, field, format!("{n} is not a time"))
            })
    }

    fn status(&self, idx: usize, field: &'static str) -> Result<RunStatus, StoreError> {
        let text = self.text(idx, field)?;
        RunStatus::parse(&text).ok_or_else(|| {
            self.at
                .corrupt(self.run_id, field, format!("{text:?} is not a run status"))
        })
    }

    fn json(&self, idx: usize, field: &'static str) -> Result<serde_json::Value, StoreError> {
        match self.value(idx)? {
            ValueRef::Text(bytes) => {
                serde_json::from_slice(bytes).map_err(|e| self.at.corrupt(self.run_id, field, e))
            }
            other => Err(self.at.corrupt(
                self.run_id,
                field,
                format!("the row holds {:?}, not JSON text", other.data_type()),
            )),
        }
    }
}

/// The current live lease's (holder, token) on `run_id`, if any.
fn live_lease(
    tx: &Connection,
    at: &At<'_>,
    run_id: &str,
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    tx.prepare_cached(
        "SELECT holder, token FROM stroma_leases WHERE run_id = ?1 AND expires_at > ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![run_id, now], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
    })
    .map_err(|e| at.storage(e))
}

/// Records a new run (status running, no checkpoint).
fn insert_run(
    conn: &Connection,
    at: &At<'_>,
    fingerprint: &str,
    parent_run: Option<&str>,
) -> Result<(), StoreError> {
    let now = to_nanos(at, SystemTime::now())?;
    let inserted = conn
        .execute(
            "INSERT INTO stroma_runs
                 (run_id, status, fingerprint, parent_run, latest_seq, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)
             ON CONFLICT (run_id) DO NOTHING",
            params![
                at.run_id,
                RunStatus::Running.as_str(),
                fingerprint,
                parent_run,
                now
            ],
        )
        .map_err(|e| at.storage(e))?;
    if inserted == 0 {
        return Err(StoreError::with_kind(
            at.operation,
            at.run_id,
            StoreErrorKind::RunExists,
            "a run with this id already exists",
        ));
    }
    Ok(())
}

/// Appends `checkpoint` under `lease`, inside a transaction holding the
/// write lock: the lease check, the seq check and the insert happen with
/// no other writer between.
fn append_checkpoint(
    tx: &Connection,
    at: &At<'_>,
    checkpoint: &Checkpoint,
    lease: &Lease,
) -> Result<(), StoreError> {
    let state = serde_json::to_string(&checkpoint.state).map_err(|e| at.storage(e))?;
    let seq = to_seq(at, checkpoint.seq)?;
    let written_at = to_nanos(at, checkpoint.written_at)?;
    let now = to_nanos(at, SystemTime::now())?;
    // Cached statements: a checkpoint is on every node's path, and
    // preparing its four statements anew would cost more than running them.
    let latest: Option<i64> = tx
        .prepare_cached("SELECT latest_seq FROM stroma_runs WHERE run_id = ?1")
        .and_then(|mut stmt| stmt.query_row([at.run_id], |row| row.get(0)).optional())
        .map_err(|e| at.storage(e))?;
    let Some(latest) = latest else {
        return Err(StoreError::unknown_run(at.operation, at.run_id));
    };
    let current = live_lease(tx, at, at.run_id, now)?;
    if current.as_ref().map(|(_, token)| token.as_str()) != Some(lease.token()) {
        return Err(StoreError::stale_lease(
            at.operation,
            at.run_id,
            lease.holder(),
        ));
    }
    if seq <= latest {
        return Err(StoreError::with_kind(
            at.operation,
            at.run_id,
            StoreErrorKind::SeqConflict {
                latest: latest.max(0) as u64,
            },
            format!(
                "checkpoint seq {} is not above the latest seq {latest}",
                checkpoint.seq
            ),
        ));
    }
    tx.prepare_cached(
        "INSERT INTO stroma_checkpoints
             (run_id, seq, status, fingerprint, state, written_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            at.run_id,
            seq,
            checkpoint.status.as_str(),
            checkpoint.fingerprint,
            state,
            written_at
        ])
    })
    .map_err(|e| at.storage(e))?;
    tx.prepare_cached(
        "UPDATE stroma_runs SET status = ?2, latest_seq = ?3, updated_at = ?4
         WHERE run_id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![at.run_id, checkpoint.status.as_str(), seq, now]))
    .map_err(|e| at.storage(e))?;
    Ok(())
}

/// Grants a lease on the run to `holder`, inside a transaction holding the write lock.
fn grant_lease(
    tx: &Connection,
    at: &At<'_>,
    holder: &str,
    ttl: Duration,
) -> Result<Lease, StoreError> {
    let now_time = SystemTime::now();
    let now = to_nanos(at, now_time)?;
    let expires_at = now_time
        .checked_add(ttl)
        .ok_or_else(|| at.storage("the ttl is too long"))?;
    let expires = to_nanos(at, expires_at)?;
    let exists = tx
        .query_row(
            "SELECT 1 FROM stroma_runs WHERE run_id = ?1",
            [at.run_id],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| at.storage(e))?;
    if exists.is_none() {
        return Err(StoreError::unknown_run(at.operation, at.run_id));
    }
    if let Some((held_by, _)) = live_lease(tx, at, at.run_id, now)? {
        return Err(StoreError::lease_held(at.operation, at.run_id, held_by));
    }
    let lease = Lease::new(at.run_id, holder, new_token(), expires_at);
    tx.execute(
        "INSERT INTO stroma_leases (run_id, holder, token, expires_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (run_id) DO UPDATE SET
             holder = excluded.holder, token = excluded.token,
             expires_at = excluded.expires_at",
        params![at.run_id, lease.holder(), lease.token(), expires],
    )
    .map_err(|e| at.storage(e))?;
    Ok(lease)
}

impl RunStore for SqliteStore {
    fn create_run<'a>(
        &'a self,
        run_id: &'a str,
        fingerprint: &'a str,
        parent_run: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let fingerprint = fingerprint.to_owned();
        let parent_run = parent_run.map(str::to_owned);
        Box::pin(self.with_conn("create_run", run_id, move |conn, at| {
            insert_run(conn, at, &fingerprint, parent_run.as_deref())
        }))
    }

    fn save<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.commit_checkpoint(checkpoint, lease, false))
    }

    fn latest<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        Box::pin(self.with_conn("latest", run_id, |conn, at| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, status, fingerprint, state, written_at FROM stroma_checkpoints
                     WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                )
                .map_err(|e| at.storage(e))?;
            let mut rows = stmt.query([at.run_id]).map_err(|e| at.storage(e))?;
            let Some(row) = rows.next().map_err(|e| at.storage(e))? else {
                return Ok(None);
            };
            let d = Dec {
                at,
                run_id: at.run_id,
                row,
            };
            Ok(Some(Checkpoint {
                run_id: at.run_id.to_owned(),
                seq: d.seq(0, "seq")?,
                status: d.status(1, "status")?,
                fingerprint: d.text(2, "fingerprint")?,
                state: d.json(3, "state")?,
                written_at: d.time(4, "written_at")?,
            }))
        }))
    }

    fn checkpoints<'a>(
        &'a self,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Checkpoint>, StoreError>> {
        Box::pin(self.with_conn("checkpoints", run_id, |conn, at| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, status, fingerprint, state, written_at FROM stroma_checkpoints
                     WHERE run_id = ?1 ORDER BY seq ASC",
                )
                .map_err(|e| at.storage(e))?;
            let mut rows = stmt.query([at.run_id]).map_err(|e| at.storage(e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| at.storage(e))? {
                let d = Dec {
                    at,
                    run_id: at.run_id,
                    row,
                };
                out.push(Checkpoint {
                    run_id: at.run_id.to_owned(),
                    seq: d.seq(0, "seq")?,
                    status: d.status(1, "status")?,
                    fingerprint: d.text(2, "fingerprint")?,
                    state: d.json(3, "state")?,
                    written_at: d.time(4, "written_at")?,
                });
            }
            Ok(out)
        }))
    }

    fn list(
        &self,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        Box::pin(self.with_conn("list", "", move |conn, at| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT run_id, status, latest_seq, updated_at, parent_run FROM stroma_runs
                     WHERE ?1 IS NULL OR status = ?1
                     ORDER BY updated_at DESC, run_id ASC",
                )
                .map_err(|e| at.storage(e))?;
            let mut rows = stmt
                .query([status.map(RunStatus::as_str)])
                .map_err(|e| at.storage(e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| at.storage(e))? {
                let run_id: String = row.get(0).map_err(|e| at.storage(e))?;
                let d = Dec {
                    at,
                    run_id: &run_id,
                    row,
                };
                out.push(RunSummary::new(
                    run_id.clone(),
                    d.status(1, "status")?,
                    d.seq(2, "latest_seq")?,
                    d.time(3, "updated_at")?,
                    d.opt_text(4, "parent_run")?,
                ));
            }
            Ok(out)
        }))
    }

    fn acquire<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let holder = holder.to_owned();
        Box::pin(self.with_conn("acquire", run_id, move |conn, at| {
            // IMMEDIATE: the check and the grant happen under the write lock,
            // so of two connections acquiring at once, one waits and then sees
            // the other's lease.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            let lease = grant_lease(&tx, at, &holder, ttl)?;
            tx.commit().map_err(|e| at.storage(e))?;
            Ok(lease)
        }))
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let run_id = lease.run_id();
        let lease = lease.clone();
        Box::pin(self.with_conn("renew", run_id, move |conn, at| {
            let now_time = SystemTime::now();
            let now = to_nanos(at, now_time)?;
            let expires_at = now_time
                .checked_add(ttl)
                .ok_or_else(|| at.storage("the ttl is too long"))?;
            let expires = to_nanos(at, expires_at)?;
            // One statement: only the current, live grant is extended.
            let changed = conn
                .execute(
                    "UPDATE stroma_leases SET expires_at = ?3
                     WHERE run_id = ?1 AND token = ?2 AND expires_at > ?4",
                    params![at.run_id, lease.token(), expires, now],
                )
                .map_err(|e| at.storage(e))?;
            if changed == 0 {
                return Err(StoreError::stale_lease(
                    at.operation,
                    at.run_id,
                    lease.holder(),
                ));
            }
            Ok(Lease::new(
                at.run_id,
                lease.holder(),
                lease.token(),
                expires_at,
            ))
        }))
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        let token = lease.token().to_owned();
        Box::pin(self.with_conn("release", lease.run_id(), move |conn, at| {
            conn.execute(
                "DELETE FROM stroma_leases WHERE run_id = ?1 AND token = ?2",
                params![at.run_id, token],
            )
            .map(drop)
            .map_err(|e| at.storage(e))
        }))
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
        let fingerprint = fingerprint.to_owned();
        let parent_run = parent_run.map(str::to_owned);
        let holder = holder.to_owned();
        Box::pin(self.with_conn("begin_run", run_id, move |conn, at| {
            // One transaction, one commit: the run, its lease, its first checkpoint.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            insert_run(&tx, at, &fingerprint, parent_run.as_deref())?;
            let lease = grant_lease(&tx, at, &holder, ttl)?;
            if let Some(first) = &first {
                append_checkpoint(&tx, at, first, &lease)?;
            }
            tx.commit().map_err(|e| at.storage(e))?;
            Ok(lease)
        }))
    }

    fn save_and_release<'a>(
        &'a self,
        checkpoint: Checkpoint,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.commit_checkpoint(checkpoint, lease, true))
    }

    fn delete<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.with_conn("delete", run_id, |conn, at| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            for sql in [
                "DELETE FROM stroma_checkpoints WHERE run_id = ?1",
                "DELETE FROM stroma_leases WHERE run_id = ?1",
            ] {
                tx.execute(sql, [at.run_id]).map_err(|e| at.storage(e))?;
            }
            let n = tx
                .execute("DELETE FROM stroma_runs WHERE run_id = ?1", [at.run_id])
                .map_err(|e| at.storage(e))?;
            tx.commit().map_err(|e| at.storage(e))?;
            Ok(n > 0)
        }))
    }

    fn prune(
        &self,
        older_than: Duration,
        status: Option<RunStatus>,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.with_conn("prune", "", move |conn, at| {
            let now_time = SystemTime::now();
            let now = to_nanos(at, now_time)?;
            let before = to_nanos(at, cutoff(now_time, older_than))?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS stroma_prune (run_id TEXT PRIMARY KEY); DELETE FROM stroma_prune;")
                .map_err(|e| at.storage(e))?;
            tx.execute(
                "INSERT INTO stroma_prune (run_id)
                 SELECT r.run_id FROM stroma_runs r
                 WHERE r.updated_at < ?1
                   AND (?2 IS NULL OR r.status = ?2)
                   AND NOT EXISTS (SELECT 1 FROM stroma_leases l
                                   WHERE l.run_id = r.run_id AND l.expires_at > ?3)",
                params![before, status.map(RunStatus::as_str), now],
            )
            .map_err(|e| at.storage(e))?;
            for sql in [
                "DELETE FROM stroma_checkpoints WHERE run_id IN (SELECT run_id FROM stroma_prune)",
                "DELETE FROM stroma_leases WHERE run_id IN (SELECT run_id FROM stroma_prune)",
            ] {
                tx.execute(sql, []).map_err(|e| at.storage(e))?;
            }
            let n = tx
                .execute(
                    "DELETE FROM stroma_runs WHERE run_id IN (SELECT run_id FROM stroma_prune)",
                    [],
                )
                .map_err(|e| at.storage(e))?;
            tx.execute("DELETE FROM stroma_prune", [])
                .map_err(|e| at.storage(e))?;
            tx.commit().map_err(|e| at.storage(e))?;
            Ok(n)
        }))
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("ttl", &self.ttl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decoding_names_the_field_of_anything_unexpected() {
        let conn = Connection::open_in_memory().unwrap();
        let at = At {
            operation: "latest",
            run_id: "r",
            path: Path::new(":memory:"),
        };
        let mut stmt = conn
            .prepare("SELECT 'x', -1, 3.5, NULL, '{', x'ff'")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        let d = Dec {
            at: &at,
            run_id: "r",
            row,
        };
        let field = |e: StoreError| e.kind().clone();
        assert_eq!(
            field(d.status(0, "status").unwrap_err()),
            StoreErrorKind::Corrupt { field: "status" }
        );
        assert_eq!(
            field(d.seq(1, "seq").unwrap_err()),
            StoreErrorKind::Corrupt { field: "seq" }
        );
        assert_eq!(
            field(d.time(1, "written_at").unwrap_err()),
            StoreErrorKind::Corrupt {
                field: "written_at"
            }
        );
        assert_eq!(
            field(d.int(2, "seq").unwrap_err()),
            StoreErrorKind::Corrupt { field: "seq" }
        );
        assert_eq!(d.opt_text(3, "parent_run").unwrap(), None);
        assert_eq!(
            field(d.text(3, "fingerprint").unwrap_err()),
            StoreErrorKind::Corrupt {
                field: "fingerprint"
            }
        );
        assert_eq!(
            field(d.json(4, "state").unwrap_err()),
            StoreErrorKind::Corrupt { field: "state" }
        );
        assert_eq!(
            field(d.json(5, "state").unwrap_err()),
            StoreErrorKind::Corrupt { field: "state" }
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_works() {
        let store = SqliteStore::open(":memory:").await.unwrap();
        store.create_run("r", "fp", None).await.unwrap();
        assert_eq!(store.list(None).await.unwrap().len(), 1);
        assert_eq!(
            format!("{store:?}"),
            r#"SqliteStore { path: ":memory:", ttl: None }"#
        );
    }
}
