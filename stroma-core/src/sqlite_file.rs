//! What the SQLite-backed stores share: one connection per opened file,
//! closed off the runtime's workers, and work run on the blocking pool.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

/// How long a write waits for another connection's write to finish (another
/// process, or another open of the same file) before it fails with
/// "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to one file, shared by every handle made from one open.
pub(crate) struct SharedConnection {
    pub(crate) path: PathBuf,
    /// `None` only once closed. A std mutex: it is locked only on the
    /// blocking pool, and its holder runs one short statement or transaction.
    pub(crate) conn: Mutex<Option<Connection>>,
}

impl SharedConnection {
    pub(crate) fn new(path: PathBuf, conn: Connection) -> Self {
        SharedConnection {
            path,
            conn: Mutex::new(Some(conn)),
        }
    }
}

impl Drop for SharedConnection {
    fn drop(&mut self) {
        // Closing checkpoints the WAL into the file: I/O that must not run on
        // a runtime worker, so it goes to the blocking pool when there is one.
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(conn), Ok(runtime)) = (conn, tokio::runtime::Handle::try_current()) {
            runtime.spawn_blocking(move || drop(conn));
        }
    }
}

/// Runs `work` on tokio's blocking pool and waits for it; `error` makes the
/// caller's error of a message when that cannot be done (no runtime: where
/// `spawn_blocking` would panic) or the task did not finish.
pub(crate) async fn on_blocking_pool<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
    error: impl Fn(String) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| error(e.to_string()))?;
    runtime
        .spawn_blocking(work)
        .await
        .map_err(|e| error(format!("the SQLite task did not finish: {e}")))?
}

/// Sets a new connection up: the busy timeout, WAL (readers beside the one
/// writer; an in-memory database answers "memory", fine too) and `synchronous`.
pub(crate) fn set_up(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", synchronous)
}
