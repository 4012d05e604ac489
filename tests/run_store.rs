//! The run store contract, checked on `MemoryStore` and `SqliteStore` through
//! the same functions.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stroma::{Checkpoint, MemoryStore, RunStatus, RunStore, StoreErrorKind};
use tokio::sync::Barrier;

const LONG: Duration = Duration::from_secs(60);

fn cp(run: &str, seq: u64, status: RunStatus) -> Checkpoint {
    Checkpoint::new(
        run,
        seq,
        status,
        "fp-1",
        json!({"path": [seq], "model": {"n": seq}}),
    )
}

/// Round trip, list by status, seq order, delete.
async fn check_basics(store: &dyn RunStore) {
    store.create_run("a", "fp-1", None).await.unwrap();
    store.create_run("b", "fp-1", Some("a")).await.unwrap();
    let err = store.create_run("a", "fp-1", None).await.unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::RunExists);
    assert_eq!(err.run_id(), "a");

    assert_eq!(store.latest("a").await.unwrap(), None);
    assert_eq!(store.latest("nope").await.unwrap(), None);

    let lease = store.acquire("a", "w1", LONG).await.unwrap();
    assert_eq!((lease.run_id(), lease.holder()), ("a", "w1"));
    store
        .save(cp("a", 1, RunStatus::Running), &lease)
        .await
        .unwrap();
    let last = cp("a", 2, RunStatus::Completed);
    store.save(last.clone(), &lease).await.unwrap();
    assert_eq!(store.latest("a").await.unwrap(), Some(last));

    // seq must go up.
    let err = store
        .save(cp("a", 2, RunStatus::Running), &lease)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::SeqConflict { latest: 2 });
    // A lease on one run does not cover another.
    let err = store
        .save(cp("b", 1, RunStatus::Running), &lease)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    store.release(&lease).await.unwrap();

    let all = store.list(None).await.unwrap();
    assert_eq!(all.len(), 2);
    let completed = store.list(Some(RunStatus::Completed)).await.unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].run_id, "a");
    assert_eq!(completed[0].latest_seq, 2);
    assert_eq!(completed[0].parent_run, None);
    let running = store.list(Some(RunStatus::Running)).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].run_id, "b");
    assert_eq!(running[0].latest_seq, 0);
    assert_eq!(running[0].parent_run.as_deref(), Some("a"));
    assert!(
        store
            .list(Some(RunStatus::Failed))
            .await
            .unwrap()
            .is_empty()
    );

    // Unknown runs.
    let err = store.acquire("nope", "w1", LONG).await.unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::UnknownRun);

    // Delete removes the run, its checkpoints and its lease.
    let lease = store.acquire("a", "w2", LONG).await.unwrap();
    assert!(store.delete("a").await.unwrap());
    assert!(!store.delete("a").await.unwrap());
    assert_eq!(store.latest("a").await.unwrap(), None);
    assert_eq!(store.list(None).await.unwrap().len(), 1);
    // Recreated, it starts afresh: no checkpoints, no lease.
    store.create_run("a", "fp-2", None).await.unwrap();
    assert_eq!(store.latest("a").await.unwrap(), None);
    let err = store
        .save(cp("a", 1, RunStatus::Running), &lease)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    let lease = store.acquire("a", "w3", LONG).await.unwrap();
    store
        .save(cp("a", 1, RunStatus::Running), &lease)
        .await
        .unwrap();
}

/// Lease exclusion, release, expiry, stale leases.
async fn check_leases(store: &dyn RunStore) {
    store.create_run("r", "fp-1", None).await.unwrap();
    let first = store.acquire("r", "w1", LONG).await.unwrap();
    for holder in ["w2", "w1"] {
        let err = store.acquire("r", holder, LONG).await.unwrap_err();
        assert_eq!(
            err.kind(),
            &StoreErrorKind::LeaseHeld {
                holder: "w1".into()
            }
        );
        let text = err.to_string();
        assert!(text.contains("\"r\"") && text.contains("\"w1\""), "{text}");
    }

    // After release the other can take it, and the old lease is stale.
    store.release(&first).await.unwrap();
    let second = store.acquire("r", "w2", LONG).await.unwrap();
    let err = store
        .save(cp("r", 1, RunStatus::Running), &first)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    assert!(err.to_string().contains("\"w1\""), "{err}");
    // Releasing a stale lease leaves the current one alone.
    store.release(&first).await.unwrap();
    store
        .save(cp("r", 1, RunStatus::Running), &second)
        .await
        .unwrap();
    store.release(&second).await.unwrap();

    // After expiry the other can take it, and the expired lease is stale.
    let short = store
        .acquire("r", "w1", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let err = store
        .save(cp("r", 2, RunStatus::Running), &short)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    let taken = store.acquire("r", "w2", LONG).await.unwrap();
    store
        .save(cp("r", 2, RunStatus::Running), &taken)
        .await
        .unwrap();
}

/// Prune by age and status; live leases protect a run.
async fn check_prune(store: &dyn RunStore) {
    store.create_run("old-done", "fp", None).await.unwrap();
    store.create_run("old-running", "fp", None).await.unwrap();
    store.create_run("old-leased", "fp", None).await.unwrap();
    let lease = store.acquire("old-done", "w", LONG).await.unwrap();
    store
        .save(cp("old-done", 1, RunStatus::Completed), &lease)
        .await
        .unwrap();
    store.release(&lease).await.unwrap();
    let _held = store.acquire("old-leased", "w", LONG).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.create_run("new", "fp", None).await.unwrap();

    // Wide margins: "new" must stay younger than `age` on a busy machine.
    let age = Duration::from_millis(250);
    assert_eq!(store.prune(age, Some(RunStatus::Failed)).await.unwrap(), 0);
    assert_eq!(
        store.prune(age, Some(RunStatus::Completed)).await.unwrap(),
        1
    );
    assert_eq!(store.latest("old-done").await.unwrap(), None);
    let mut left: Vec<_> = store
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    left.sort();
    assert_eq!(left, ["new", "old-leased", "old-running"]);

    assert_eq!(store.prune(age, None).await.unwrap(), 1);
    let left: Vec<_> = store.list(None).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|s| s.run_id != "old-running"));
}

/// Two tasks acquire each of several runs at the same moment: exactly one
/// wins each time, the other is told who holds it.
async fn check_race<S: RunStore + Clone + 'static>(a: S, b: S) {
    for i in 0..8 {
        let run = format!("race-{i}");
        a.create_run(&run, "fp", None).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [(a.clone(), "w-a"), (b.clone(), "w-b")]
            .into_iter()
            .map(|(store, holder)| {
                let (barrier, run) = (barrier.clone(), run.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.acquire(&run, holder, LONG).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let winner = winners[0].clone();
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(
            loser.kind(),
            &StoreErrorKind::LeaseHeld {
                holder: winner.holder().to_owned()
            }
        );
        assert_eq!(loser.run_id(), run);

        // After release the loser's side can take it.
        let loser_store = if winner.holder() == "w-a" { &b } else { &a };
        a.release(&winner).await.unwrap();
        let lease = loser_store.acquire(&run, "late", LONG).await.unwrap();
        let err = loser_store
            .save(cp(&run, 1, RunStatus::Running), &winner)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
        loser_store
            .save(cp(&run, 1, RunStatus::Running), &lease)
            .await
            .unwrap();
    }
}

/// A run begun in one step (run, lease, first checkpoint), all or nothing;
/// ended in one (last checkpoint, lease released); the whole journal in order.
async fn check_begin_and_end(store: &dyn RunStore) {
    let first = cp("j", 1, RunStatus::Running);
    let lease = store
        .begin_run("j", "fp-1", None, "w1", LONG, Some(first.clone()))
        .await
        .unwrap();
    assert_eq!(store.latest("j").await.unwrap(), Some(first.clone()));
    let err = store.acquire("j", "w2", LONG).await.unwrap_err();
    assert!(matches!(err.kind(), StoreErrorKind::LeaseHeld { .. }));

    // Beginning a run that exists changes nothing: no second lease, no row.
    let err = store
        .begin_run(
            "j",
            "fp-1",
            None,
            "w2",
            LONG,
            Some(cp("j", 9, RunStatus::Running)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::RunExists);
    assert_eq!(store.checkpoints("j").await.unwrap(), vec![first.clone()]);

    let second = cp("j", 2, RunStatus::Running);
    store.save(second.clone(), &lease).await.unwrap();
    let last = cp("j", 3, RunStatus::Completed);
    store.save_and_release(last.clone(), &lease).await.unwrap();
    assert_eq!(
        store.checkpoints("j").await.unwrap(),
        vec![first, second, last.clone()]
    );
    assert_eq!(
        store.list(Some(RunStatus::Completed)).await.unwrap()[0].run_id,
        "j"
    );
    // Released with the last checkpoint: another worker may take the run.
    let next = store.acquire("j", "w2", LONG).await.unwrap();
    // A stale lease saves nothing, and so releases nothing.
    let err = store
        .save_and_release(cp("j", 4, RunStatus::Running), &lease)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    assert_eq!(store.latest("j").await.unwrap(), Some(last));
    // Renewed, a lease lasts longer; a stale one cannot be renewed.
    let renewed = store.renew(&next, LONG * 2).await.unwrap();
    assert!(renewed.expires_at() > next.expires_at());
    assert_eq!(renewed.token(), next.token());
    let err = store.renew(&lease, LONG).await.unwrap_err();
    assert_eq!(err.kind(), &StoreErrorKind::StaleLease);
    // Without a first checkpoint: a run with a lease and no journal yet.
    store
        .begin_run("k", "fp-1", Some("j"), "w1", LONG, None)
        .await
        .unwrap();
    assert!(store.checkpoints("k").await.unwrap().is_empty());
    assert!(store.checkpoints("nope").await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_store_begin_and_end() {
    check_begin_and_end(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_basics() {
    check_basics(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_leases() {
    check_leases(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_prune() {
    check_prune(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_one_winner_per_race() {
    let store = MemoryStore::new();
    check_race(store.clone(), store).await;
}

#[tokio::test]
async fn memory_store_ttl() {
    let store = MemoryStore::new().with_ttl(Duration::from_millis(250));
    assert_eq!(MemoryStore::new().prune_expired().await.unwrap(), 0);
    store.create_run("old", "fp", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    store.create_run("new", "fp", None).await.unwrap();
    assert_eq!(store.prune_expired().await.unwrap(), 1);
    assert_eq!(store.list(None).await.unwrap()[0].run_id, "new");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use stroma::{RUN_STORE_SCHEMA_VERSION, SqliteStore};

    use super::*;

    /// A SQLite file under the temp dir, removed (with its WAL files) on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(name: &str) -> TempDb {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let file = format!("stroma-runstore-{name}-{}-{n}.db", std::process::id());
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
    async fn sqlite_store_begin_and_end() {
        let db = TempDb::new("begin");
        check_begin_and_end(&SqliteStore::open(db.path()).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_begin_and_end_in_place_and_synced() {
        // Commits in place (NORMAL, multi-threaded runtime), then on the
        // blocking pool (FULL): the same contract either way.
        let db = TempDb::new("begin-mt");
        check_begin_and_end(&SqliteStore::open(db.path()).await.unwrap()).await;
        let db = TempDb::new("begin-full");
        let store = SqliteStore::open(db.path())
            .await
            .unwrap()
            .sync_on_commit(true)
            .await
            .unwrap();
        check_begin_and_end(&store).await;
    }

    #[tokio::test]
    async fn sqlite_store_basics() {
        let db = TempDb::new("basics");
        check_basics(&SqliteStore::open(db.path()).await.unwrap()).await;
        // delete removed every row of the deleted run's first life.
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(
            count("SELECT COUNT(*) FROM stroma_checkpoints WHERE run_id = 'a'"),
            1
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM stroma_leases WHERE run_id = 'a'"),
            1
        );
    }

    #[tokio::test]
    async fn sqlite_store_leases() {
        let db = TempDb::new("leases");
        check_leases(&SqliteStore::open(db.path()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn sqlite_store_prune() {
        let db = TempDb::new("prune");
        let store = SqliteStore::open(db.path()).await.unwrap();
        check_prune(&store).await;
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM stroma_checkpoints WHERE run_id = 'old-done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_one_winner_per_race_on_one_connection() {
        let db = TempDb::new("race1");
        let store = SqliteStore::open(db.path()).await.unwrap();
        check_race(store.clone(), store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_one_winner_per_race_on_two_connections() {
        let db = TempDb::new("race2");
        let a = SqliteStore::open(db.path()).await.unwrap();
        let b = SqliteStore::open(db.path()).await.unwrap();
        check_race(a, b).await;
    }

    #[tokio::test]
    async fn sqlite_store_ttl_and_reopen() {
        let db = TempDb::new("ttl");
        let store = SqliteStore::open(db.path())
            .await
            .unwrap()
            .with_ttl(Duration::from_millis(250));
        store.create_run("old", "fp", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(450)).await;
        store.create_run("new", "fp", None).await.unwrap();
        assert_eq!(store.prune_expired().await.unwrap(), 1);
        drop(store);
        let store = SqliteStore::open(db.path()).await.unwrap();
        let left = store.list(None).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].run_id, "new");
        assert_eq!(store.prune_expired().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_corrupt_row_is_an_error_naming_run_and_field() {
        let db = TempDb::new("corrupt");
        let store = SqliteStore::open(db.path()).await.unwrap();
        for run in ["bad", "good"] {
            store.create_run(run, "fp", None).await.unwrap();
            let lease = store.acquire(run, "w", LONG).await.unwrap();
            store
                .save(cp(run, 1, RunStatus::Running), &lease)
                .await
                .unwrap();
        }
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute(
            "UPDATE stroma_checkpoints SET state = '{not json' WHERE run_id = 'bad'",
            [],
        )
        .unwrap();

        let err = store.latest("bad").await.unwrap_err();
        assert_eq!(err.kind(), &StoreErrorKind::Corrupt { field: "state" });
        assert_eq!(err.run_id(), "bad");
        assert_eq!(err.operation(), "latest");
        let text = err.to_string();
        assert!(
            text.starts_with("run \"bad\": latest failed: stored field `state` cannot be decoded"),
            "{text}"
        );
        assert_eq!(
            store.latest("good").await.unwrap(),
            Some(
                cp("good", 1, RunStatus::Running)
                    .with_written_at(store.latest("good").await.unwrap().unwrap().written_at)
            )
        );

        // Not text at all, and an unknown status.
        conn.execute(
            "UPDATE stroma_checkpoints SET state = x'00' WHERE run_id = 'bad'",
            [],
        )
        .unwrap();
        let err = store.latest("bad").await.unwrap_err();
        assert_eq!(err.kind(), &StoreErrorKind::Corrupt { field: "state" });
        conn.execute(
            "UPDATE stroma_runs SET status = 'paused' WHERE run_id = 'bad'",
            [],
        )
        .unwrap();
        let err = store.list(None).await.unwrap_err();
        assert_eq!(err.kind(), &StoreErrorKind::Corrupt { field: "status" });
        assert_eq!(err.run_id(), "bad");
        assert!(err.to_string().contains("\"paused\""), "{err}");
        // Filtering by another status skips the bad row; the good run reads.
        assert_eq!(store.list(Some(RunStatus::Running)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_newer_schema_version_is_refused() {
        let db = TempDb::new("version");
        drop(SqliteStore::open(db.path()).await.unwrap());
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        let version: String = conn
            .query_row(
                "SELECT value FROM stroma_meta WHERE key = 'run_store_schema_version'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(version, RUN_STORE_SCHEMA_VERSION.to_string());
        conn.execute(
            "UPDATE stroma_meta SET value = '2' WHERE key = 'run_store_schema_version'",
            [],
        )
        .unwrap();
        drop(conn);

        let err = SqliteStore::open(db.path()).await.unwrap_err();
        assert_eq!(err.kind(), &StoreErrorKind::SchemaVersion { found: 2 });
        assert_eq!(err.operation(), "open");
        let text = err.to_string();
        assert!(text.contains("unknown schema version 2"), "{text}");
        assert!(text.contains("reads run store version 1"), "{text}");
    }

    #[tokio::test]
    async fn a_session_and_a_run_store_share_a_file() {
        let db = TempDb::new("shared");
        let session = stroma::SqliteSession::open(db.path(), "chat")
            .await
            .unwrap();
        let store = SqliteStore::open(db.path()).await.unwrap();
        store.create_run("r", "fp", None).await.unwrap();
        session.close().await.unwrap();
        drop(store);
        let store = SqliteStore::open(db.path()).await.unwrap();
        assert_eq!(store.list(None).await.unwrap().len(), 1);
    }
}
