//! [`SqliteSession`]: sessions in an embedded SQLite file.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError};

use crate::sqlite_file::{SharedConnection, on_blocking_pool, set_up};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Item, Session, SessionError, SessionErrorKind};
use crate::run::middleware::BoxFuture;

/// The version of the table layout [`SqliteSession`] reads and writes, kept
/// in `stroma_meta` under the key `session_schema_version`. A file with any
/// other version is refused at [`open`](SqliteSession::open) rather than
/// misread.
pub const SCHEMA_VERSION: i64 = 1;

const VERSION_KEY: &str = "session_schema_version";

/// A session stored in a SQLite file: items survive the process.
///
/// Many sessions, each with its own id, can share one file. A handle is cheap
/// to clone: clones share one connection, and writes through it are done one
/// at a time, so concurrent tasks lose nothing. Every SQLite call runs on
/// tokio's blocking pool, never on a runtime worker; the methods must be
/// awaited inside a tokio runtime (outside one they return an error).
///
/// Other processes, or other [`open`](Self::open)s of the same file, may write
/// at the same time: the file is in WAL mode, writes take the write lock
/// before they read, and a write waits up to 5 s for another to finish.
///
/// # Schema (version [`SCHEMA_VERSION`] = 1)
///
/// ```sql
/// CREATE TABLE stroma_meta (
///     key   TEXT PRIMARY KEY NOT NULL,   -- 'session_schema_version'
///     value TEXT NOT NULL                -- '1'
/// );
/// CREATE TABLE stroma_session_items (
///     session_id TEXT NOT NULL,
///     seq        INTEGER NOT NULL,       -- 1, 2, 3, .. within a session: the order
///     item       TEXT NOT NULL,          -- the item as JSON text
///     PRIMARY KEY (session_id, seq)
/// );
/// ```
///
/// A new item gets the session's highest `seq` plus one. A row whose `item`
/// is not valid JSON text is an error of kind
/// [`CorruptItem`](SessionErrorKind::CorruptItem) naming the session and the
/// `seq`; it is never skipped or replaced.
///
/// # Durability
///
/// Commits use `synchronous = NORMAL`: a committed write survives the process
/// crashing; a power loss may undo the last few commits but never corrupts
/// the file.
///
/// # Cancellation
///
/// Dropping a method's future after it was first polled does not stop the
/// SQLite work: the write may still happen, whole or not at all.
///
/// ```
/// use serde_json::json;
/// use stroma_core::{Session, SqliteSession};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("stroma-doc-sqlite-{}.db", std::process::id()));
///
/// let session = SqliteSession::open(&path, "chat-1").await?;
/// session.add_items(vec![json!({"role": "user", "content": "Hi"})]).await?;
/// session.close().await?;
///
/// // Reopened, the items are still there.
/// let session = SqliteSession::open(&path, "chat-1").await?;
/// assert_eq!(session.get_items(None).await?, vec![json!({"role": "user", "content": "Hi"})]);
///
/// // Another conversation in the same file, on the same connection.
/// let other = session.with_session_id("chat-2");
/// assert!(other.get_items(None).await?.is_empty());
///
/// drop(other);
/// session.close().await?;
/// # for suffix in ["", "-wal", "-shm"] {
/// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
/// # }
/// # Ok::<(), stroma_core::SessionError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteSession {
    store: Arc<SharedConnection>,
    session_id: Arc<str>,
}

/// Where an operation runs: for error messages.
struct At<'a> {
    operation: &'static str,
    session_id: &'a str,
    path: &'a Path,
}

impl At<'_> {
    fn storage(&self, err: impl fmt::Display) -> SessionError {
        SessionError::new(
            self.operation,
            self.session_id,
            format!("{}: {err}", self.path.display()),
        )
    }

    fn corrupt(&self, seq: i64, err: impl Into<crate::BoxError>) -> SessionError {
        SessionError::corrupt_item(self.operation, self.session_id, seq, err)
    }
}

impl SqliteSession {
    /// Opens (creating if needed) the SQLite file at `path`, and the session
    /// `session_id` in it. The tables are created on first use; a file with
    /// another schema version is refused with an error of kind
    /// [`SchemaVersion`](SessionErrorKind::SchemaVersion).
    ///
    /// Each call opens its own connection; to put several sessions on one
    /// connection, use [`with_session_id`](Self::with_session_id).
    pub async fn open(
        path: impl AsRef<Path>,
        session_id: impl Into<String>,
    ) -> Result<SqliteSession, SessionError> {
        let path = path.as_ref().to_path_buf();
        let session_id: Arc<str> = session_id.into().into();
        let (p, id) = (path.clone(), session_id.clone());
        let conn = blocking("open", &session_id, move || {
            let at = At {
                operation: "open",
                session_id: &id,
                path: &p,
            };
            let mut conn = Connection::open(&p).map_err(|e| at.storage(e))?;
            prepare(&mut conn, &at)?;
            Ok(conn)
        })
        .await?;
        Ok(SqliteSession {
            store: Arc::new(SharedConnection::new(path, conn)),
            session_id,
        })
    }

    /// Another session, `session_id`, in the same file and on the same
    /// connection as this one.
    pub fn with_session_id(&self, session_id: impl Into<String>) -> SqliteSession {
        SqliteSession {
            store: self.store.clone(),
            session_id: session_id.into().into(),
        }
    }

    /// This session's id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.store.path
    }

    /// Drops this handle; if it was the last one on its connection, closes
    /// the connection and waits for that (dropping the last handle closes it
    /// too, in the background). Closing folds the WAL back into the file.
    pub async fn close(self) -> Result<(), SessionError> {
        let Ok(store) = Arc::try_unwrap(self.store) else {
            return Ok(());
        };
        let id = self.session_id.clone();
        blocking("close", &self.session_id, move || {
            let mut store = store;
            let conn = store
                .conn
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let at = At {
                operation: "close",
                session_id: &id,
                path: &store.path,
            };
            match conn {
                Some(conn) => conn.close().map_err(|(_, e)| at.storage(e)),
                None => Ok(()),
            }
        })
        .await
    }

    /// Runs `work` with the connection, on the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Connection, &At<'_>) -> Result<T, SessionError> + Send + 'static,
    ) -> Result<T, SessionError> {
        let store = self.store.clone();
        let id = self.session_id.clone();
        blocking(operation, &self.session_id, move || {
            let at = At {
                operation,
                session_id: &id,
                path: &store.path,
            };
            // A panic inside rusqlite while the lock was held rolled its
            // transaction back as it unwound: the connection is still sound.
            let mut conn = store.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = conn
                .as_mut()
                .ok_or_else(|| at.storage("the connection is closed"))?;
            work(conn, &at)
        })
        .await
    }
}

/// Runs `work` on tokio's blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    session_id: &str,
    work: impl FnOnce() -> Result<T, SessionError> + Send + 'static,
) -> Result<T, SessionError> {
    on_blocking_pool(work, |message| {
        SessionError::new(operation, session_id, message)
    })
    .await
}

/// Sets a new connection up and brings the file to [`SCHEMA_VERSION`].
fn prepare(conn: &mut Connection, at: &At<'_>) -> Result<(), SessionError> {
    set_up(conn, "NORMAL").map_err(|e| at.storage(e))?;

    // IMMEDIATE: two processes creating the tables at once take turns.
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
                "CREATE TABLE IF NOT EXISTS stroma_session_items (
                     session_id TEXT NOT NULL,
                     seq        INTEGER NOT NULL,
                     item       TEXT NOT NULL,
                     PRIMARY KEY (session_id, seq)
                 );",
            )
            .map_err(|e| at.storage(e))?;
            tx.execute(
                "INSERT INTO stroma_meta (key, value) VALUES (?1, ?2)",
                params![VERSION_KEY, SCHEMA_VERSION.to_string()],
            )
            .map_err(|e| at.storage(e))?;
        }
        Some(text) => {
            let version: i64 = text.trim().parse().map_err(|_| {
                at.storage(format!(
                    "stroma_meta.{VERSION_KEY} is {text:?}, not a version number"
                ))
            })?;
            if version != SCHEMA_VERSION {
                return Err(at
                    .storage(format!("this build reads version {SCHEMA_VERSION}"))
                    .with_kind(SessionErrorKind::SchemaVersion { found: version }));
            }
        }
    }
    tx.commit().map_err(|e| at.storage(e))
}

/// The item in a row's `item` column, or why it is not one.
fn decode(at: &At<'_>, seq: i64, value: ValueRef<'_>) -> Result<Item, SessionError> {
    match value {
        ValueRef::Text(bytes) => serde_json::from_slice(bytes).map_err(|e| at.corrupt(seq, e)),
        other => Err(at.corrupt(
            seq,
            format!("the row holds {:?}, not JSON text", other.data_type()),
        )),
    }
}

impl Session for SqliteSession {
    fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>> {
        // SQLite reads a negative LIMIT as no limit.
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        Box::pin(self.with_conn("get_items", move |conn, at| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, item FROM (
                         SELECT seq, item FROM stroma_session_items
                         WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2
                     ) ORDER BY seq ASC",
                )
                .map_err(|e| at.storage(e))?;
            let mut rows = stmt
                .query(params![at.session_id, limit])
                .map_err(|e| at.storage(e))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(|e| at.storage(e))? {
                let seq: i64 = row.get(0).map_err(|e| at.storage(e))?;
                let value = row.get_ref(1).map_err(|e| at.storage(e))?;
                items.push(decode(at, seq, value)?);
            }
            Ok(items)
        }))
    }

    fn add_items(&self, items: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(());
            }
            self.with_conn("add_items", move |conn, at| {
                // IMMEDIATE takes the write lock before reading the last seq,
                // so no other connection can take the same seq in between.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| at.storage(e))?;
                let last: i64 = tx
                    .query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM stroma_session_items
                         WHERE session_id = ?1",
                        [at.session_id],
                        |row| row.get(0),
                    )
                    .map_err(|e| at.storage(e))?;
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO stroma_session_items (session_id, seq, item)
                             VALUES (?1, ?2, ?3)",
                        )
                        .map_err(|e| at.storage(e))?;
                    let mut seq = last;
                    for item in &items {
                        seq = seq
                            .checked_add(1)
                            .ok_or_else(|| at.storage("seq is at its largest value"))?;
                        let text = serde_json::to_string(item).map_err(|e| at.storage(e))?;
                        insert
                            .execute(params![at.session_id, seq, text])
                            .map_err(|e| at.storage(e))?;
                    }
                }
                // An early return above drops `tx`, which rolls back: all or none.
                tx.commit().map_err(|e| at.storage(e))
            })
            .await
        })
    }

    fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>> {
        Box::pin(self.with_conn("pop_item", |conn, at| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| at.storage(e))?;
            let last = tx
                .query_row(
                    "SELECT seq, item FROM stroma_session_items
                     WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1",
                    [at.session_id],
                    |row| {
                        let seq: i64 = row.get(0)?;
                        Ok((seq, decode(at, seq, row.get_ref(1)?)))
                    },
                )
                .optional()
                .map_err(|e| at.storage(e))?;
            let Some((seq, item)) = last else {
                return Ok(None);
            };
            // A row that cannot be decoded stays where it is: the error names it.
            let item = item?;
            tx.execute(
                "DELETE FROM stroma_session_items WHERE session_id = ?1 AND seq = ?2",
                params![at.session_id, seq],
            )
            .map_err(|e| at.storage(e))?;
            tx.commit().map_err(|e| at.storage(e))?;
            Ok(Some(item))
        }))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(self.with_conn("clear", |conn, at| {
            conn.execute(
                "DELETE FROM stroma_session_items WHERE session_id = ?1",
                [at.session_id],
            )
            .map(drop)
            .map_err(|e| at.storage(e))
        }))
    }
}

impl fmt::Debug for SqliteSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSession")
            .field("path", &self.store.path)
            .field("session_id", &self.session_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at() -> At<'static> {
        At {
            operation: "get_items",
            session_id: "s",
            path: Path::new("/x/y.db"),
        }
    }

    #[test]
    fn decode_reads_json_text_and_names_the_seq_of_anything_else() {
        assert_eq!(
            decode(&at(), 1, ValueRef::Text(br#"{"a":1}"#)).unwrap(),
            json!({"a": 1})
        );
        for bad in [
            ValueRef::Text(b"{"),
            ValueRef::Text(b""),
            ValueRef::Text(b"\xff"),
            ValueRef::Blob(b"[]"),
            ValueRef::Null,
            ValueRef::Integer(3),
        ] {
            let err = decode(&at(), 4, bad).unwrap_err();
            assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 4 });
            assert!(
                err.to_string()
                    .starts_with("session \"s\": get_items failed: item at seq 4"),
                "{err}"
            );
        }
    }

    #[test]
    fn storage_errors_name_the_file() {
        let err = at().storage("disk I/O error");
        assert_eq!(
            err.to_string(),
            "session \"s\": get_items failed: /x/y.db: disk I/O error"
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_works_and_clones_share_it() {
        let session = SqliteSession::open(":memory:", "s").await.unwrap();
        let clone = session.clone();
        session.add_items(vec![json!(1), json!(2)]).await.unwrap();
        assert_eq!(clone.get_items(Some(1)).await.unwrap(), vec![json!(2)]);
        assert_eq!(
            format!("{clone:?}"),
            r#"SqliteSession { path: ":memory:", session_id: "s" }"#
        );
        drop(clone);
        session.close().await.unwrap();
    }

    #[tokio::test]
    async fn close_with_other_handles_alive_leaves_them_working() {
        let session = SqliteSession::open(":memory:", "s").await.unwrap();
        let other = session.with_session_id("t");
        session.close().await.unwrap();
        other.add_items(vec![json!("still open")]).await.unwrap();
        assert_eq!(
            other.get_items(None).await.unwrap(),
            vec![json!("still open")]
        );
    }
}
