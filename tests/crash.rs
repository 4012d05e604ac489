//! A real crash test for durable runs: a process is killed mid-run and a
//! new process finishes the run from its SQLite store.
//!
//! For several `k`, [`a_run_killed_while_node_k_runs_resumes_in_a_new_process`]
//! starts this test binary again as a child process (role `run`, entering
//! through [`child_entry`]) that runs a 10-node durable pipeline `n0 → … →
//! n9` on a SQLite store. Each node appends its name to a log file, synced
//! to disk, before doing its work; node `k` then sleeps, and the parent
//! kills the child with `SIGKILL` as soon as `k`'s line is in the log: no
//! destructor, no flush and no lease release runs. Then:
//!
//! - from the parent, listing the store's running runs finds the crashed run,
//!   with exactly `k` completed nodes (`n0 … n{k-1}`): each checkpoint was
//!   committed before the next node started;
//! - a second child process (role `resume`) opens the same file, finds the
//!   run in the listing, and resumes it once the dead process's lease has
//!   run out (until then, each resume is refused with `LeaseHeld` and the
//!   child retries; the test reports how many times);
//! - the log shows each node before `k` ran exactly once (completed nodes
//!   are not run again), node `k` at most twice (once in the killed
//!   process, once in the resume) and every node after `k` exactly once;
//! - the resumed run's final output equals that of an uninterrupted run of
//!   the same pipeline on the same input.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stroma::prelude::*;

/// The child's role: unset in the test run itself; `run` or `resume` in a child.
const ROLE: &str = "STROMA_CRASH_ROLE";
/// The SQLite file of the runs.
const DB: &str = "STROMA_CRASH_DB";
/// The file each node appends its name to.
const LOG: &str = "STROMA_CRASH_LOG";
/// The node that hangs (in role `run`) until the child is killed.
const K: &str = "STROMA_CRASH_K";

/// How long a lease lives: a dead process's lease runs out after this.
const LEASE_TTL: Duration = Duration::from_secs(1);

/// The value carried through the pipeline; `sum` depends on the order the
/// nodes ran in, `trail` lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Acc {
    sum: u64,
    trail: Vec<u32>,
}

/// What node `i` does: log its name (in a child), hang if it is node `k`
/// of a `run` child, then fold `i` into the value.
async fn step(i: u32, mut acc: Acc) -> Acc {
    if let Ok(log) = std::env::var(LOG) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the log");
        file.write_all(format!("n{i}\n").as_bytes())
            .expect("write the log");
        file.sync_all().expect("sync the log");
        let hang = std::env::var(ROLE).as_deref() == Ok("run")
            && std::env::var(K).ok().and_then(|k| k.parse().ok()) == Some(i);
        if hang {
            // The parent kills this process while it sleeps here.
            tokio::time::sleep(Duration::from_secs(60)).await;
            panic!("node n{i} was not killed within 60 s");
        }
    }
    acc.sum = acc.sum * 31 + u64::from(i) + 1;
    acc.trail.push(i);
    acc
}

#[node]
async fn n0(acc: Acc) -> Acc {
    step(0, acc).await
}

#[node]
async fn n1(acc: Acc) -> Acc {
    step(1, acc).await
}

#[node]
async fn n2(acc: Acc) -> Acc {
    step(2, acc).await
}

#[node]
async fn n3(acc: Acc) -> Acc {
    step(3, acc).await
}

#[node]
async fn n4(acc: Acc) -> Acc {
    step(4, acc).await
}

#[node]
async fn n5(acc: Acc) -> Acc {
    step(5, acc).await
}

#[node]
async fn n6(acc: Acc) -> Acc {
    step(6, acc).await
}

#[node]
async fn n7(acc: Acc) -> Acc {
    step(7, acc).await
}

#[node]
async fn n8(acc: Acc) -> Acc {
    step(8, acc).await
}

#[node]
async fn n9(acc: Acc) -> Acc {
    step(9, acc).await
}

fn input() -> Acc {
    Acc {
        sum: 7,
        trail: Vec::new(),
    }
}

fn runner(store: SqliteStore) -> StromaRunner {
    StromaRunner::quick()
        .with_store(store)
        .with_lease_ttl(LEASE_TTL)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The child's entry point: does nothing in a plain test run; in a child
/// started by the crash test, plays the role its environment names.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let db = PathBuf::from(std::env::var(DB).expect("STROMA_CRASH_DB"));
    runtime().block_on(async move {
        let runner = runner(SqliteStore::open(&db).await.expect("open the store"));
        let p = pipeline![n0, n1, n2, n3, n4, n5, n6, n7, n8, n9];
        match role.as_str() {
            "run" => {
                runner.run_durable(&p, input()).await.expect("the run");
                panic!("the run finished: node k never hung");
            }
            "resume" => {
                let running = runner
                    .store()
                    .list(Some(RunStatus::Running))
                    .await
                    .expect("list the runs");
                assert_eq!(running.len(), 1, "one crashed run: {running:?}");
                let id = running[0].summary.run_id.clone();
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut refused = 0;
                let done = loop {
                    match runner.resume(&p, &id).await {
                        Ok(done) => break done,
                        Err(e) if lease_held(&e) && Instant::now() < deadline => {
                            // The killed process's lease is still live.
                            refused += 1;
                            tokio::time::sleep(LEASE_TTL / 4).await;
                        }
                        Err(e) => panic!("resume failed: {e}"),
                    }
                };
                assert_eq!(done.run_id.to_string(), id, "a resume keeps the run's id");
                let json = serde_json::to_string(&done.final_state).expect("encode the output");
                println!("\nREFUSED {refused}\nRESULT {json}");
            }
            other => panic!("unknown role {other:?}"),
        }
    });
}

/// Whether `e` is the refusal of a resume while another process's lease
/// on the run is live.
fn lease_held(e: &RunError) -> bool {
    matches!(e.durable_error(), Some(DurableError::Store(s))
        if matches!(s.kind(), stroma::StoreErrorKind::LeaseHeld { .. }))
}

/// A child process of this test binary in `role`, for the crash with node `k`.
fn child(role: &str, k: u32, db: &Path, log: &Path) -> Command {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DB, db)
        .env(LOG, log)
        .env(K, k.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// How many times each of `n0 … n9` appears in the log.
fn counts(log: &Path) -> [u32; 10] {
    let mut counts = [0; 10];
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines() {
        let i: usize = line
            .strip_prefix('n')
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected log line {line:?}"));
        counts[i] += 1;
    }
    counts
}

/// One crash and resume with node `k` killed; gives the log's counts and
/// how many times the resume was turned away by the dead process's lease.
fn crash_at(k: u32, expected: &Acc) -> ([u32; 10], u32) {
    let dir = std::env::temp_dir();
    let tag = format!("stroma-crash-{}-k{k}", std::process::id());
    let db = dir.join(format!("{tag}.db"));
    let log = dir.join(format!("{tag}.log"));
    let cleanup = || {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let _ = std::fs::remove_file(&log);
    };
    cleanup();

    // The run: killed with SIGKILL once node k has started.
    let mut running = child("run", k, &db, &log)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts(&log)[k as usize] == 0 {
        if let Some(status) = running.try_wait().expect("poll the run") {
            panic!("the run exited before node n{k} started: {status}");
        }
        assert!(Instant::now() < deadline, "node n{k} never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    running.kill().expect("SIGKILL the run");
    let status = running.wait().expect("reap the run");
    assert!(!status.success(), "the run was killed: {status}");
    let before = counts(&log);
    let mut at_kill = [0; 10];
    at_kill[..=k as usize].fill(1);
    assert_eq!(
        before, at_kill,
        "n0..=n{k} started once each before the kill"
    );

    // The listing finds the crashed run, with the k nodes before n{k} completed.
    runtime().block_on(async {
        let runner = runner(SqliteStore::open(&db).await.expect("open the store"));
        let running = runner
            .store()
            .list(Some(RunStatus::Running))
            .await
            .expect("list the runs");
        assert_eq!(running.len(), 1, "the crashed run is listed: {running:?}");
        let names: Vec<String> = (0..k).map(|i| format!("n{i}")).collect();
        assert_eq!(running[0].completed, names, "k = {k}");
    });

    // The resume, in a new process.
    let out = child("resume", k, &db, &log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the resume")
        .wait_with_output()
        .expect("wait for the resume");
    assert!(out.status.success(), "the resume failed: {}", out.status);
    // The harness prints `test child_entry ... ` before the child's lines.
    let line = |tag: &str| {
        BufReader::new(&out.stdout[..])
            .lines()
            .map(|l| l.expect("the resume's output"))
            .find_map(|l| l.strip_prefix(tag).map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "the resume printed no {tag}line: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
    };
    let refused: u32 = line("REFUSED ").parse().expect("the refusal count");
    let result = line("RESULT ");
    let resumed: Acc = serde_json::from_str(&result).expect("decode the output");
    assert_eq!(
        &resumed, expected,
        "k = {k}: resumed output = uninterrupted"
    );

    let counts = counts(&log);
    for (i, &c) in counts.iter().enumerate() {
        match (i as u32).cmp(&k) {
            std::cmp::Ordering::Less => assert_eq!(c, 1, "k = {k}: n{i} ran exactly once"),
            std::cmp::Ordering::Equal => {
                assert!((1..=2).contains(&c), "k = {k}: n{i} ran {c} times")
            }
            std::cmp::Ordering::Greater => assert_eq!(c, 1, "k = {k}: n{i} ran exactly once"),
        }
    }
    cleanup();
    (counts, refused)
}

#[test]
fn a_run_killed_while_node_k_runs_resumes_in_a_new_process() {
    // An uninterrupted run, in this process (no log: the nodes do not hang).
    let expected = runtime().block_on(async {
        let runner = StromaRunner::quick().with_store(MemoryStore::new());
        let p = pipeline![n0, n1, n2, n3, n4, n5, n6, n7, n8, n9];
        runner.run_durable(&p, input()).await.unwrap().final_state
    });
    assert_eq!(expected.trail, (0..10).collect::<Vec<u32>>());

    for k in [0, 4, 9] {
        let started = Instant::now();
        let (counts, refused) = crash_at(k, &expected);
        eprintln!(
            "crash at n{k}: counts {counts:?}, resume refused {refused}x (lease held), {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
}
