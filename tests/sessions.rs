//! Conversation sessions: the `Session` contract on `MemorySession` and
//! `SqliteSession`, and what only a file can do: survive a reopen, hold many
//! sessions, report a bad row, take many writers at once.

use std::sync::Arc;

use serde_json::json;
use stroma::{Item, MemorySession, Session};

fn msg(n: usize) -> Item {
    json!({"role": "user", "content": format!("message {n}")})
}

/// Every method of the contract, on an empty session.
async fn check_contract(session: &dyn Session) {
    // Empty.
    assert_eq!(session.get_items(None).await.unwrap(), Vec::<Item>::new());
    assert_eq!(
        session.get_items(Some(3)).await.unwrap(),
        Vec::<Item>::new()
    );
    assert_eq!(session.pop_item().await.unwrap(), None);

    // Appended in order, read oldest first, across several calls.
    session.add_items(vec![msg(0), msg(1)]).await.unwrap();
    session.add_items(vec![]).await.unwrap();
    session
        .add_items(vec![msg(2), msg(3), msg(4)])
        .await
        .unwrap();
    let all: Vec<Item> = (0..5).map(msg).collect();
    assert_eq!(session.get_items(None).await.unwrap(), all);

    // `limit`: the most recent ones, still oldest first.
    assert_eq!(
        session.get_items(Some(2)).await.unwrap(),
        vec![msg(3), msg(4)]
    );
    assert_eq!(
        session.get_items(Some(0)).await.unwrap(),
        Vec::<Item>::new()
    );
    assert_eq!(session.get_items(Some(5)).await.unwrap(), all);
    assert_eq!(session.get_items(Some(usize::MAX)).await.unwrap(), all);

    // `pop_item`: the most recent, removed; a later add goes after the rest.
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(4)));
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(3)));
    session.add_items(vec![msg(9)]).await.unwrap();
    assert_eq!(
        session.get_items(None).await.unwrap(),
        vec![msg(0), msg(1), msg(2), msg(9)]
    );

    // Any JSON value is an item, stored as given.
    let odd = vec![
        json!(null),
        json!(1.5),
        json!("text with \"quotes\" and \u{e9}"),
        json!([1, {"a": []}]),
    ];
    session.add_items(odd.clone()).await.unwrap();
    assert_eq!(session.get_items(Some(4)).await.unwrap(), odd);

    // `clear`: empty again, and usable.
    session.clear().await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), Vec::<Item>::new());
    assert_eq!(session.pop_item().await.unwrap(), None);
    session.add_items(vec![msg(7)]).await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), vec![msg(7)]);
    assert_eq!(session.pop_item().await.unwrap(), Some(msg(7)));
    assert_eq!(session.pop_item().await.unwrap(), None);
}

#[tokio::test]
async fn memory_session_keeps_the_contract() {
    check_contract(&MemorySession::new()).await;
}

#[tokio::test]
async fn memory_session_clones_share_items() {
    let session = MemorySession::with_items(vec![msg(0)]);
    let clone = session.clone();
    clone.add_items(vec![msg(1)]).await.unwrap();
    assert_eq!(session.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);

    // Behind `Arc<dyn Session>` as a run would hold it.
    let shared: Arc<dyn Session> = Arc::new(session);
    assert_eq!(shared.pop_item().await.unwrap(), Some(msg(1)));
    assert_eq!(clone.get_items(None).await.unwrap(), vec![msg(0)]);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use stroma::{SCHEMA_VERSION, SessionErrorKind, SqliteSession};

    use super::*;

    /// A SQLite file under the temp dir, removed (with its WAL files) on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(name: &str) -> TempDb {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let file = format!("stroma-test-{name}-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(file));
            db.remove();
            db
        }

        fn path(&self) -> &Path {
            &self.0
        }

        fn remove(&self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    #[tokio::test]
    async fn sqlite_session_keeps_the_contract() {
        let db = TempDb::new("contract");
        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        check_contract(&session).await;
        // And through `Arc<dyn Session>`.
        let shared: Arc<dyn Session> = Arc::new(session.with_session_id("other"));
        check_contract(&*shared).await;
        session.close().await.unwrap();
    }

    #[tokio::test]
    async fn items_survive_close_and_reopen() {
        let db = TempDb::new("reopen");
        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        session.add_items(vec![msg(0), msg(1)]).await.unwrap();
        session.close().await.unwrap();

        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        assert_eq!(session.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);
        session.add_items(vec![msg(2)]).await.unwrap();
        // Dropped rather than closed: the commit is what counts.
        drop(session);

        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        assert_eq!(
            session.get_items(None).await.unwrap(),
            vec![msg(0), msg(1), msg(2)]
        );
        assert_eq!(session.path(), db.path());
        assert_eq!(session.session_id(), "chat");
        session.close().await.unwrap();
    }

    #[tokio::test]
    async fn sessions_in_one_file_stay_apart() {
        let db = TempDb::new("apart");
        let a = SqliteSession::open(db.path(), "a").await.unwrap();
        // One on its own connection, one sharing `a`'s.
        let b = SqliteSession::open(db.path(), "b").await.unwrap();
        let c = a.with_session_id("c");

        a.add_items(vec![msg(1), msg(2)]).await.unwrap();
        b.add_items(vec![msg(10)]).await.unwrap();
        c.add_items(vec![msg(20), msg(21)]).await.unwrap();
        assert_eq!(a.get_items(None).await.unwrap(), vec![msg(1), msg(2)]);
        assert_eq!(b.get_items(None).await.unwrap(), vec![msg(10)]);
        assert_eq!(c.get_items(None).await.unwrap(), vec![msg(20), msg(21)]);

        // Popping and clearing one leaves the others alone.
        assert_eq!(b.pop_item().await.unwrap(), Some(msg(10)));
        assert_eq!(b.pop_item().await.unwrap(), None);
        a.clear().await.unwrap();
        assert_eq!(a.get_items(None).await.unwrap(), Vec::<Item>::new());
        assert_eq!(c.get_items(None).await.unwrap(), vec![msg(20), msg(21)]);

        drop(c);
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    /// Writes `item` as raw text, at `seq`, straight into the table.
    fn write_raw_row(path: &Path, session_id: &str, seq: i64, item: rusqlite::types::Value) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute(
            "INSERT INTO stroma_session_items (session_id, seq, item) VALUES (?1, ?2, ?3)",
            rusqlite::params![session_id, seq, item],
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_row_that_is_not_json_is_an_error_naming_session_and_seq() {
        let db = TempDb::new("corrupt");
        let session = SqliteSession::open(db.path(), "chat-9").await.unwrap();
        session.add_items(vec![msg(1)]).await.unwrap();
        write_raw_row(
            db.path(),
            "chat-9",
            2,
            "{\"role\": \"user\", \"content".to_owned().into(),
        );
        session.add_items(vec![msg(3)]).await.unwrap();

        let err = session.get_items(None).await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 2 });
        assert_eq!(err.session_id(), "chat-9");
        assert_eq!(err.operation(), "get_items");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "session \"chat-9\": get_items failed: item at seq 2 cannot be decoded: EOF while parsing"
            ),
            "{text}"
        );
        assert!(std::error::Error::source(&err).is_some());

        // A window that leaves the bad row out reads fine.
        assert_eq!(session.get_items(Some(1)).await.unwrap(), vec![msg(3)]);
        // Popping down to the bad row stops there, and the row stays.
        assert_eq!(session.pop_item().await.unwrap(), Some(msg(3)));
        let err = session.pop_item().await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 2 });
        assert_eq!(err.operation(), "pop_item");
        let err = session.pop_item().await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 2 });

        // A row that is not text at all is the same error.
        let blob = session.with_session_id("blob");
        write_raw_row(db.path(), "blob", 1, vec![0xffu8, 0x00].into());
        let err = blob.get_items(None).await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 1 });
        assert!(err.to_string().contains("not JSON text"), "{err}");

        // Clearing repairs the session.
        session.clear().await.unwrap();
        assert_eq!(session.get_items(None).await.unwrap(), Vec::<Item>::new());
        drop(blob);
        session.close().await.unwrap();
    }

    #[tokio::test]
    async fn add_items_is_all_or_none() {
        let db = TempDb::new("atomic");
        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        session.add_items(vec![msg(0)]).await.unwrap();
        // A trigger that refuses one item makes the third insert of a batch fail.
        rusqlite::Connection::open(db.path())
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON stroma_session_items
                 WHEN NEW.item = '\"refused\"'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            )
            .unwrap();

        let err = session
            .add_items(vec![msg(1), msg(2), json!("refused"), msg(3)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::Storage);
        assert_eq!(err.operation(), "add_items");
        assert!(err.to_string().contains("refused by the test"), "{err}");
        assert!(
            err.to_string().contains(&db.path().display().to_string()),
            "{err}"
        );
        assert_eq!(session.get_items(None).await.unwrap(), vec![msg(0)]);

        // The next batch goes right after what is stored.
        session.add_items(vec![msg(1)]).await.unwrap();
        assert_eq!(session.get_items(None).await.unwrap(), vec![msg(0), msg(1)]);
        session.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_file_of_another_schema_version_is_refused() {
        let db = TempDb::new("version");
        SqliteSession::open(db.path(), "chat")
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let version: String = conn
            .query_row(
                "SELECT value FROM stroma_meta WHERE key = 'session_schema_version'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
        conn.execute(
            "UPDATE stroma_meta SET value = '2' WHERE key = 'session_schema_version'",
            [],
        )
        .unwrap();
        drop(conn);

        let err = SqliteSession::open(db.path(), "chat").await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::SchemaVersion { found: 2 });
        assert_eq!(err.operation(), "open");
        assert!(
            err.to_string().contains("unknown schema version 2"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_an_error() {
        let db = TempDb::new("missing-dir");
        let path = db.path().join("no-such-dir").join("x.db");
        let err = SqliteSession::open(&path, "chat").await.unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::Storage);
        assert_eq!(err.operation(), "open");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[tokio::test]
    async fn polled_outside_tokio_it_is_an_error_not_a_panic() {
        let db = TempDb::new("no-runtime");
        let session = SqliteSession::open(db.path(), "chat").await.unwrap();
        let other = session.clone();
        let err = std::thread::spawn(move || futures::executor::block_on(other.get_items(None)))
            .join()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), SessionErrorKind::Storage);
        assert!(err.to_string().contains("Tokio"), "{err}");
        session.close().await.unwrap();
    }

    const TASKS: usize = 16;
    const ADDS: usize = 500;

    /// Every task's items, each exactly once and in that task's order.
    fn check_writers(items: &[Item], tasks: usize, adds: usize) {
        assert_eq!(items.len(), tasks * adds);
        let mut next = vec![0; tasks];
        for item in items {
            let task = item["task"].as_u64().unwrap() as usize;
            let n = item["n"].as_u64().unwrap() as usize;
            assert_eq!(n, next[task], "task {task} out of order");
            next[task] += 1;
        }
        assert!(next.iter().all(|&n| n == adds));
    }

    #[test]
    fn sixteen_tasks_writing_at_once_lose_nothing() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = TempDb::new("concurrent");
            let session = SqliteSession::open(db.path(), "chat").await.unwrap();
            let start = Instant::now();
            let writers = (0..TASKS).map(|task| {
                let session = session.clone();
                tokio::spawn(async move {
                    for n in 0..ADDS {
                        session
                            .add_items(vec![json!({"task": task, "n": n})])
                            .await
                            .unwrap();
                    }
                })
            });
            let all = futures::future::try_join_all(writers);
            tokio::time::timeout(Duration::from_secs(45), all)
                .await
                .expect("16 x 500 writes took over 45 s")
                .unwrap();
            let elapsed = start.elapsed();
            eprintln!("{TASKS} tasks x {ADDS} add_items: {elapsed:?}");

            check_writers(&session.get_items(None).await.unwrap(), TASKS, ADDS);
            session.close().await.unwrap();
        });
    }

    #[test]
    fn writers_on_separate_connections_lose_nothing() {
        const CONNECTIONS: usize = 4;
        const EACH: usize = 100;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = TempDb::new("connections");
            let mut writers = Vec::new();
            for task in 0..CONNECTIONS {
                let session = SqliteSession::open(db.path(), "chat").await.unwrap();
                writers.push(tokio::spawn(async move {
                    for n in 0..EACH {
                        session
                            .add_items(vec![json!({"task": task, "n": n})])
                            .await
                            .unwrap();
                    }
                    session.close().await.unwrap();
                }));
            }
            tokio::time::timeout(
                Duration::from_secs(30),
                futures::future::try_join_all(writers),
            )
            .await
            .expect("writes on 4 connections took over 30 s")
            .unwrap();

            let session = SqliteSession::open(db.path(), "chat").await.unwrap();
            check_writers(&session.get_items(None).await.unwrap(), CONNECTIONS, EACH);
            session.close().await.unwrap();
        });
    }
}
