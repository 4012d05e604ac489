//! Chaos: many concurrent runs of a 10-node pipeline across 100 tenants,
//! with faults injected at random (errors, panics, nodes past their
//! `.timeout`, retried nodes that recover or run out of attempts, runs
//! cancelled by a token or their own time limit, runs dropped midway). It
//! proves that
//!
//! - every run ends with exactly one outcome, the one its fault calls for
//!   (kind, failing node path, attempts), and the counts of outcomes
//!   reconcile exactly with the faults injected;
//! - no run sees another tenant's or another run's execution context,
//!   context entries or session items;
//! - nothing is left behind, also by runs whose future is dropped midway:
//!   resident memory and the heap's live bytes return to their level before
//!   the runs, and no task is left alive on the runtime.
//!
//! Each run's fault is drawn up front from a seeded generator, so its
//! expected outcome is known. The suite runs 10,000 runs by default (kept
//! small per node so a debug build stays quick); `STROMA_CHAOS_RUNS` asks
//! for more, in batches of 10,000 at once so memory stays bounded:
//!
//! ```sh
//! STROMA_CHAOS_RUNS=1000000 cargo test --release --test chaos -- --nocapture
//! ```
//!
//! `STROMA_CHAOS_SEED` replays another seed. Figures are printed (use
//! `--nocapture` to see them).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use stroma::prelude::*;
use tokio::runtime::Runtime;

// ---------------------------------------------------------------------------
// Live heap bytes, counted exactly by a global allocator.

/// The system allocator, keeping count of the bytes it has handed out and
/// not yet been given back, on every thread: the heap this process holds.
struct LiveBytes;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        // A failed realloc leaves the old block as it was.
        if !moved.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        moved
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

/// Resident memory in bytes, from `/proc/self/statm` (resident pages, of 4 KiB).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field: resident pages");
    pages * 4096
}

/// glibc's allocator gives freed memory back to the system when it sees
/// fit, and keeps caches per thread. Measured here, with the same live heap,
/// resident memory after a batch of runs swung between 90 and 220 MiB from
/// one batch to the next, and between 9.9 and 10.9 MiB even trimmed while
/// the runtime's threads were alive; trimmed then and again once they are
/// gone, it ranged over 5 % (see `RESIDENT_JITTER`). So the figures
/// compared are read so: what is in use (and the pages fragments of it
/// pin), which is what a leak grows.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's own entry point, taking no pointer; it locks the arenas itself.
    unsafe { malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}

/// Resident memory with the allocator's free pages given back first.
fn resident_bytes_in_use() -> u64 {
    trim_allocator();
    resident_bytes()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------
// Settings.

const TENANTS: usize = 100;
/// Runs in flight at once; a longer suite runs batch after batch of them.
const BATCH: u64 = 10_000;
const DEFAULT_RUNS: u64 = 10_000;
const DEFAULT_SEED: u64 = 0x5eed_c4a0_5000_0001;

/// `fetch`'s retry policy: fixed delays, this many attempts in all.
const FETCH_ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(1);
/// `lookup`'s `.timeout`.
const LOOKUP_LIMIT: Duration = Duration::from_millis(5);
/// How long a node asked to hang sleeps: far past every limit, so only a
/// limit or a cancellation can end it (or the batch deadline, as a hang).
const HANG: Duration = Duration::from_secs(3600);
/// Items a node reads back from its tenant's session.
const SESSION_WINDOW: usize = 32;
/// A batch not finished by then is a hang; generous for debug builds on a
/// loaded 2-core machine.
const BATCH_DEADLINE: Duration = Duration::from_secs(180);
/// How long aborted tasks may take to be reaped once their runs ended.
const REAP_DEADLINE: Duration = Duration::from_secs(10);

const TENANT_ENTRY: &str = "chaos_tenant";
const RUN_ENTRY: &str = "chaos_run";
const RUN_KEY: &str = "chaos_run";
/// The payload of every injected panic; the panic hook keeps these quiet.
const INJECTED_PANIC: &str = "chaos: injected panic";
const INJECTED_ERROR: &str = "chaos: injected error";
const TRANSIENT_ERROR: &str = "chaos: transient failure";

// ---------------------------------------------------------------------------
// A run's plan: its tenant and its fault, drawn from the seed.

/// splitmix64: a small, seeded, deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The ten nodes, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Admit,
    Parse,
    Enrich,
    Fetch,
    Lookup,
    Validate,
    Score,
    Hold,
    Audit,
    Respond,
}

impl Step {
    const ALL: [Step; 10] = [
        Step::Admit,
        Step::Parse,
        Step::Enrich,
        Step::Fetch,
        Step::Lookup,
        Step::Validate,
        Step::Score,
        Step::Hold,
        Step::Audit,
        Step::Respond,
    ];

    /// The node's path in [`chaos_pipeline`]: five of them in the named
    /// pipeline `work`.
    fn path(self) -> &'static str {
        match self {
            Step::Admit => "admit",
            Step::Parse => "parse",
            Step::Enrich => "work.enrich",
            Step::Fetch => "work.fetch",
            Step::Lookup => "work.lookup",
            Step::Validate => "work.validate",
            Step::Score => "work.score",
            Step::Hold => "hold",
            Step::Audit => "audit",
            Step::Respond => "respond",
        }
    }

    fn at_path(path: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.path() == path)
    }
}

/// What goes wrong in a run, decided before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Healthy,
    /// The node returns an error (a permanent one: not retried even by `fetch`).
    Error(Step),
    Panic(Step),
    /// `lookup` sleeps past its `.timeout`.
    NodeTimeout,
    /// `fetch` fails its first `failures` attempts.
    Flaky {
        failures: u32,
    },
    /// A spawned task cancels the run's token after `after` (zero: before
    /// the run starts); `hold` hangs until then.
    Cancel {
        after: Duration,
    },
    /// The run's own time limit; `hold` hangs past it.
    RunTimeout {
        limit: Duration,
    },
    /// The caller stops waiting after `after` and drops the run's future;
    /// `hold` hangs until then.
    Abandon {
        after: Duration,
    },
}

/// The kinds of outcome a run can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Completed,
    RetriedThenSucceeded,
    NodeError,
    Panicked,
    NodeTimedOut,
    RetriesExhausted,
    Cancelled,
    RunTimedOut,
    /// The run's future was dropped before it ended: no result at all.
    Dropped,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Completed,
        Kind::RetriedThenSucceeded,
        Kind::NodeError,
        Kind::Panicked,
        Kind::NodeTimedOut,
        Kind::RetriesExhausted,
        Kind::Cancelled,
        Kind::RunTimedOut,
        Kind::Dropped,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl Fault {
    /// Roughly: 36 % healthy, 10 % each of errors and panics, 8 % each of
    /// node time limits, cancellations, run time limits and dropped runs,
    /// 12 % flaky (half of them recover, half run out of attempts).
    fn draw(rng: &mut SplitMix64) -> Fault {
        let any_step = |rng: &mut SplitMix64| Step::ALL[rng.below(Step::ALL.len() as u64) as usize];
        match rng.below(100) {
            0..36 => Fault::Healthy,
            36..46 => Fault::Error(any_step(rng)),
            46..56 => Fault::Panic(any_step(rng)),
            56..64 => Fault::NodeTimeout,
            64..76 => Fault::Flaky {
                failures: 1 + rng.below(u64::from(FETCH_ATTEMPTS) + 1) as u32,
            },
            76..84 => Fault::Cancel {
                after: Duration::from_millis(rng.below(6)),
            },
            84..92 => Fault::RunTimeout {
                limit: Duration::from_millis(1 + rng.below(10)),
            },
            _ => Fault::Abandon {
                after: Duration::from_millis(1 + rng.below(10)),
            },
        }
    }

    fn expected_kind(self) -> Kind {
        match self {
            Fault::Healthy => Kind::Completed,
            Fault::Error(_) => Kind::NodeError,
            Fault::Panic(_) => Kind::Panicked,
            Fault::NodeTimeout => Kind::NodeTimedOut,
            Fault::Flaky { failures } if failures < FETCH_ATTEMPTS => Kind::RetriedThenSucceeded,
            Fault::Flaky { .. } => Kind::RetriesExhausted,
            Fault::Cancel { .. } => Kind::Cancelled,
            Fault::RunTimeout { .. } => Kind::RunTimedOut,
            Fault::Abandon { .. } => Kind::Dropped,
        }
    }

    /// How many times `fetch` runs; `None` where that depends on when a
    /// cancellation lands.
    fn fetch_calls(self) -> Option<u32> {
        match self {
            Fault::Flaky { failures } => Some((failures + 1).min(FETCH_ATTEMPTS)),
            Fault::Error(step) | Fault::Panic(step) if step < Step::Fetch => Some(0),
            Fault::Cancel { .. } | Fault::RunTimeout { .. } | Fault::Abandon { .. } => None,
            _ => Some(1),
        }
    }
}

/// Run `run` of the suite seeded `seed`: its tenant and its fault.
fn plan(seed: u64, run: u64) -> (usize, Fault) {
    // Each run's own stream: runs can be planned in any order.
    let mut rng = SplitMix64(seed ^ run.wrapping_mul(0xd6e8_feb8_6659_fd93));
    let tenant = rng.below(TENANTS as u64) as usize;
    (tenant, Fault::draw(&mut rng))
}

// ---------------------------------------------------------------------------
// The pipeline.

/// What flows through the nodes: the run's identity (carried in the input
/// too, so every node can compare it with what the runner gives it), its
/// fault, and a trail each node stamps, so the output shows every node ran
/// once, in order, on this run's value.
#[derive(Clone, Debug)]
struct Job {
    run: u64,
    tenant: String,
    fault: Fault,
    trail: u64,
    /// Shared by the clones `.retry` makes: counts `fetch`'s attempts.
    fetch_calls: Arc<AtomicU32>,
    /// Lets the task `admit` starts end: given only to runs that end by
    /// themselves. A run cancelled, timed out or dropped must abort it.
    release: Arc<tokio::sync::Notify>,
}

impl Job {
    fn stamped(mut self, step: Step) -> Job {
        self.trail = stamp(self.trail, step);
        self
    }
}

fn stamp(trail: u64, step: Step) -> u64 {
    trail.wrapping_mul(31).wrapping_add(step as u64 + 1)
}

/// A healthy run's output.
#[derive(Clone, Debug, PartialEq)]
struct Receipt {
    run: u64,
    tenant: String,
    trail: u64,
}

fn expected_receipt(run: u64, tenant: &str) -> Receipt {
    Receipt {
        run,
        tenant: tenant.to_owned(),
        trail: Step::ALL.into_iter().fold(run, stamp),
    }
}

/// Identity checks made, session items checked, and what failed a check.
static IDENTITY_CHECKS: AtomicU64 = AtomicU64::new(0);
static SESSION_ITEMS_CHECKED: AtomicU64 = AtomicU64::new(0);
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);
static VIOLATION_EXAMPLES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counts a leak between runs, keeping the first few for the failure message.
/// (It does not fail the node: that would change the run's outcome.)
fn violation(what: impl FnOnce() -> String) {
    if VIOLATIONS.fetch_add(1, Ordering::Relaxed) < 10 {
        VIOLATION_EXAMPLES.lock().unwrap().push(what());
    }
}

/// Checks that what the runner gives this node belongs to the run `job`
/// was started as: the task-local tenant and run, and, given the node's
/// context, its execution context and, once `admit` has written them, the
/// context entries.
fn check_identity(job: &Job, step: Step, ctx: Option<&Context>) {
    IDENTITY_CHECKS.fetch_add(1, Ordering::Relaxed);
    let tenant = current_tenant_id();
    if tenant.as_deref() != Some(job.tenant.as_str()) {
        violation(|| {
            format!(
                "{step:?} of run {} ({}) saw tenant {tenant:?}",
                job.run, job.tenant
            )
        });
    }
    let run = current_execution_context().and_then(|e| e.get_as::<u64>(RUN_KEY).ok().flatten());
    if run != Some(job.run) {
        violation(|| format!("{step:?} of run {} saw run {run:?} task-locally", job.run));
    }
    let Some(ctx) = ctx else { return };
    let execution = ctx.execution();
    if execution.tenant_id() != Some(job.tenant.as_str()) {
        violation(|| {
            format!(
                "{step:?} of run {} ({}) had ctx.execution() of {:?}",
                job.run,
                job.tenant,
                execution.tenant_id()
            )
        });
    }
    if step == Step::Admit {
        return;
    }
    let entry = ctx.get_named::<String>(TENANT_ENTRY);
    if entry.as_deref().ok() != Some(&job.tenant) {
        violation(|| {
            format!(
                "{step:?} of run {} ({}) read entry {entry:?}",
                job.run, job.tenant
            )
        });
    }
    let entry = ctx.get_named::<u64>(RUN_ENTRY);
    if entry.as_deref().ok() != Some(&job.run) {
        violation(|| format!("{step:?} of run {} read run entry {entry:?}", job.run));
    }
}

/// Checks that every item the node sees in the session is its tenant's.
async fn check_session(job: &Job, step: Step, view: SessionView) -> Result<(), NodeError> {
    let items = view.recent(Some(SESSION_WINDOW)).await?;
    SESSION_ITEMS_CHECKED.fetch_add(items.len() as u64, Ordering::Relaxed);
    for item in &items {
        if item["tenant"] != job.tenant.as_str() {
            violation(|| {
                format!(
                    "{step:?} of run {} ({}) saw item {item}",
                    job.run, job.tenant
                )
            });
        }
    }
    Ok(())
}

/// The fault `job` asks of `step`, if any: an error, or a panic.
fn inject(job: &Job, step: Step) -> Result<(), NodeError> {
    match job.fault {
        Fault::Error(at) if at == step => Err(NodeError::permanent(format!(
            "{INJECTED_ERROR} at {}",
            step.path()
        ))),
        Fault::Panic(at) if at == step => std::panic::panic_any(INJECTED_PANIC),
        _ => Ok(()),
    }
}

/// The common end of a node: lets other runs in (so their nodes interleave
/// with this one's), checks the identity again after that, then the fault.
async fn pass(job: Job, step: Step, ctx: Option<&Context>) -> Result<Job, NodeError> {
    tokio::task::yield_now().await;
    check_identity(&job, step, ctx);
    inject(&job, step)?;
    Ok(job.stamped(step))
}

/// Writes the run's identity to its context and its tenant's session.
#[node]
async fn admit(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Admit, Some(ctx));
    ctx.insert_named(TENANT_ENTRY, job.tenant.clone());
    ctx.insert_named(RUN_ENTRY, job.run);
    ctx.session()
        .add_items(vec![json!({"tenant": job.tenant, "run": job.run})])
        .await?;
    // A task of the run's: it sees the run's tenant, and waits to be let go.
    let (tenant, release) = (job.tenant.clone(), Arc::clone(&job.release));
    stroma::spawn(async move {
        if current_tenant_id().as_deref() != Some(tenant.as_str()) {
            violation(|| format!("a task of {tenant}'s run saw {:?}", current_tenant_id()));
        }
        release.notified().await;
    });
    pass(job, Step::Admit, Some(ctx)).await
}

/// Takes no context: sees the run only task-locally.
#[node]
async fn parse(job: Job) -> Result<Job, NodeError> {
    check_identity(&job, Step::Parse, None);
    pass(job, Step::Parse, None).await
}

#[node]
async fn enrich(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Enrich, Some(ctx));
    check_session(&job, Step::Enrich, ctx.session()).await?;
    pass(job, Step::Enrich, Some(ctx)).await
}

/// Retried: fails the first attempts a `Flaky` run asks for.
#[node]
async fn fetch(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    let attempt = job.fetch_calls.fetch_add(1, Ordering::SeqCst) + 1;
    check_identity(&job, Step::Fetch, Some(ctx));
    if let Fault::Flaky { failures } = job.fault
        && attempt <= failures
    {
        return Err(NodeError::msg(format!(
            "{TRANSIENT_ERROR} on attempt {attempt}"
        )));
    }
    pass(job, Step::Fetch, Some(ctx)).await
}

/// Under `.timeout(LOOKUP_LIMIT)`. Its healthy path never awaits:
/// `.timeout` polls the node before its timer, so a node done at its first
/// poll cannot time out however loaded the runtime is, and only the runs
/// meant to time out do.
#[node]
async fn lookup(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Lookup, Some(ctx));
    if job.fault == Fault::NodeTimeout {
        tokio::time::sleep(HANG).await;
    }
    inject(&job, Step::Lookup)?;
    Ok(job.stamped(Step::Lookup))
}

#[node]
async fn validate(job: Job) -> Result<Job, NodeError> {
    check_identity(&job, Step::Validate, None);
    pass(job, Step::Validate, None).await
}

#[node]
async fn score(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Score, Some(ctx));
    tokio::task::yield_now().await;
    pass(job, Step::Score, Some(ctx)).await
}

/// Hangs in the runs to be stopped from outside, so they cannot finish first.
#[node]
async fn hold(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Hold, Some(ctx));
    if matches!(
        job.fault,
        Fault::Cancel { .. } | Fault::RunTimeout { .. } | Fault::Abandon { .. }
    ) {
        tokio::time::sleep(HANG).await;
    }
    pass(job, Step::Hold, Some(ctx)).await
}

/// Reads the session task-locally, as code with no context parameter would.
#[node]
async fn audit(job: Job, ctx: &Context) -> Result<Job, NodeError> {
    check_identity(&job, Step::Audit, Some(ctx));
    match current_session() {
        Some(view) => check_session(&job, Step::Audit, view).await?,
        None => violation(|| format!("Audit of run {} had no session", job.run)),
    }
    pass(job, Step::Audit, Some(ctx)).await
}

#[node]
async fn respond(job: Job, ctx: &Context) -> Result<Receipt, NodeError> {
    check_identity(&job, Step::Respond, Some(ctx));
    let job = pass(job, Step::Respond, Some(ctx)).await?;
    Ok(Receipt {
        run: job.run,
        tenant: job.tenant,
        trail: job.trail,
    })
}

fn chaos_pipeline() -> impl Runnable<(), Input = Job, Output = Receipt> + Send + Sync + 'static {
    let work = pipeline![
        enrich,
        fetch.retry(RetryPolicy::fixed(RETRY_DELAY).max_attempts(FETCH_ATTEMPTS)),
        lookup.timeout(LOOKUP_LIMIT),
        validate,
        score
    ]
    .named("work");
    pipeline![admit, parse, work, hold, audit, respond]
}

// ---------------------------------------------------------------------------
// One run, and what it ended with.

/// What one run was expected to end with, and what it ended with.
struct Verdict {
    expected: Kind,
    /// `None`: an outcome of no known kind.
    observed: Option<Kind>,
    /// What did not match: the kind, or a detail of it.
    problem: Option<String>,
}

/// The first error of type `E` in the chain of causes from `err`'s.
fn find_cause<E: std::error::Error + 'static>(err: &RunError) -> Option<&E> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err.cause());
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        cause = current.source();
    }
    None
}

/// Classifies a run's result, whatever was expected, then compares.
fn judge(
    fault: Fault,
    tenant: &str,
    run: u64,
    fetch_calls: u32,
    result: Result<RunResult<Receipt>, RunError>,
) -> Verdict {
    let expected = fault.expected_kind();
    let mut problems = Vec::new();
    let observed = match &result {
        Ok(done) => {
            if done.final_state != expected_receipt(run, tenant) {
                problems.push(format!("output {:?}", done.final_state));
            }
            for step in Step::ALL {
                let shown = done.tree().find(step.path()).map(|scope| scope.status);
                if shown != Some(NodeStatus::Completed) {
                    problems.push(format!("tree shows `{}` {shown:?}", step.path()));
                }
            }
            Some(if fetch_calls > 1 {
                Kind::RetriedThenSucceeded
            } else {
                Kind::Completed
            })
        }
        Err(err) => classify_failure(err, fault, &mut problems),
    };
    if let Some(calls) = fault.fetch_calls()
        && calls != fetch_calls
    {
        problems.push(format!("fetch ran {fetch_calls} times, not {calls}"));
    }
    // The tree counts the attempts as they were made.
    let tree = match &result {
        Ok(done) => done.tree(),
        Err(err) => err.tree(),
    };
    let attempts = tree.find(Step::Fetch.path()).map(|scope| scope.attempts());
    if attempts != Some(fetch_calls) {
        problems.push(format!(
            "tree says {attempts:?} attempts, fetch ran {fetch_calls} times"
        ));
    }
    if observed != Some(expected) {
        problems.push(format!("ended {observed:?}"));
    }
    if let Err(err) = &result
        && !problems.is_empty()
    {
        problems.push(format!("error: {err}"));
    }
    Verdict {
        expected,
        observed,
        problem: (!problems.is_empty())
            .then(|| format!("run {run}, {fault:?}: {}", problems.join("; "))),
    }
}

/// The kind of a failed run, noting in `problems` any detail that does not
/// fit it: the failing node's path, the limit, the attempts, the tree.
fn classify_failure(err: &RunError, fault: Fault, problems: &mut Vec<String>) -> Option<Kind> {
    let path = err.path().as_str();
    let text = err.to_string();
    let expect_path = |step: Step, problems: &mut Vec<String>| {
        if path != step.path() {
            problems.push(format!("failed at `{path}`, not `{}`", step.path()));
        }
    };
    let expected_step = match fault {
        Fault::Error(step) | Fault::Panic(step) => Some(step),
        Fault::NodeTimeout => Some(Step::Lookup),
        Fault::Flaky { .. } => Some(Step::Fetch),
        _ => None,
    };
    let (kind, status) = if err.is_panic() {
        if !text.contains(INJECTED_PANIC) {
            problems.push("a panic not injected".to_owned());
        }
        (Kind::Panicked, NodeStatus::Failed)
    } else if err.is_cancelled() {
        let cancelled = find_cause::<Cancelled>(err);
        let limit = cancelled.and_then(Cancelled::timed_out_after);
        if let Fault::RunTimeout { limit: expected } = fault
            && limit != Some(expected)
        {
            problems.push(format!("cancelled with limit {limit:?}"));
        }
        // The run hangs in `hold`: it is stopped there or before.
        if Step::at_path(path).is_none_or(|step| step > Step::Hold) {
            problems.push(format!("cancelled at `{path}`"));
        }
        let kind = if limit.is_some() {
            Kind::RunTimedOut
        } else {
            Kind::Cancelled
        };
        (kind, NodeStatus::Cancelled)
    } else if let Some(timed_out) = find_cause::<TimedOut>(err) {
        if timed_out.limit() != LOOKUP_LIMIT || !text.contains("timed out after") {
            problems.push(format!("timed out after {:?}", timed_out.limit()));
        }
        (Kind::NodeTimedOut, NodeStatus::Failed)
    } else if text.contains(INJECTED_ERROR) {
        // Permanent: even under `fetch`'s retry, one attempt only.
        if let Some(exhausted) = find_cause::<RetriesExhausted>(err)
            && exhausted.attempts() != 1
        {
            problems.push(format!(
                "a permanent error retried: {}",
                exhausted.attempts()
            ));
        }
        (Kind::NodeError, NodeStatus::Failed)
    } else if let Some(exhausted) = find_cause::<RetriesExhausted>(err)
        && text.contains(TRANSIENT_ERROR)
    {
        if exhausted.attempts() != FETCH_ATTEMPTS {
            problems.push(format!("gave up after {} attempts", exhausted.attempts()));
        }
        (Kind::RetriesExhausted, NodeStatus::Failed)
    } else {
        problems.push("an error of no known kind".to_owned());
        return None;
    };
    if let Some(step) = expected_step {
        expect_path(step, problems);
    }
    // The tree agrees: the nodes before the failing one completed, it ended
    // so, and the ones after it never ran.
    let tree = err.tree();
    let failed_at = Step::at_path(path);
    for step in Step::ALL {
        let wanted = match failed_at.map(|at| step.cmp(&at)) {
            Some(std::cmp::Ordering::Less) => NodeStatus::Completed,
            Some(std::cmp::Ordering::Equal) => status,
            _ => NodeStatus::Skipped,
        };
        let shown = tree.find(step.path()).map(|scope| scope.status);
        if shown != Some(wanted) {
            problems.push(format!("tree shows `{}` {shown:?}", step.path()));
        }
    }
    Some(kind)
}

/// Starts one run as its plan says and judges how it ended.
async fn run_one<P>(
    runner: StromaRunner,
    pipeline: Arc<P>,
    session: MemorySession,
    tenant: String,
    run: u64,
    fault: Fault,
) -> Verdict
where
    P: Runnable<(), Input = Job, Output = Receipt> + Send + Sync + 'static,
{
    let fetch_calls = Arc::new(AtomicU32::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let job = Job {
        release: Arc::clone(&release),
        run,
        tenant: tenant.clone(),
        fault,
        trail: run,
        fetch_calls: Arc::clone(&fetch_calls),
    };
    // Every run has a token, so the racing against it is exercised in all
    // of them; only the runs meant to be cancelled have it cancelled.
    let token = CancellationToken::new();
    let mut options = RunOptions::new()
        .execution_context(ExecutionContext::of([("tenant_id", tenant.clone())]).plus(RUN_KEY, run))
        .session(session)
        .cancel_token(token.clone());
    let mut canceller = None;
    match fault {
        Fault::Cancel { after } if after.is_zero() => token.cancel(),
        Fault::Cancel { after } => {
            canceller = Some(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                token.cancel();
            }));
        }
        Fault::RunTimeout { limit } => options = options.timeout(limit),
        _ => {}
    }
    let running = runner.run_with(&*pipeline, job, options);
    let result = match fault {
        Fault::Abandon { after } => match tokio::time::timeout(after, running).await {
            // Dropped where it stood, in `hold` or before: what it left
            // behind, the memory and task checks see.
            Err(_elapsed) => {
                return Verdict {
                    expected: Kind::Dropped,
                    observed: Some(Kind::Dropped),
                    problem: None,
                };
            }
            Ok(result) => result,
        },
        _ => running.await,
    };
    if let Some(canceller) = canceller {
        canceller.await.expect("the canceller does not panic");
    }
    // A run that ended by itself leaves its task to its owner, who lets it
    // go; a stopped run's task is aborted by the runner, or it would be
    // left alive for the check after the round.
    if !matches!(fault, Fault::Cancel { .. } | Fault::RunTimeout { .. }) {
        release.notify_one();
    }
    judge(
        fault,
        &tenant,
        run,
        fetch_calls.load(Ordering::SeqCst),
        result,
    )
}

// ---------------------------------------------------------------------------
// Rounds of runs, and their tally.

/// Runs not yet finished, by expected kind: what a hang left behind.
static UNFINISHED: [AtomicU64; Kind::ALL.len()] = [const { AtomicU64::new(0) }; Kind::ALL.len()];

#[derive(Default)]
struct Tally {
    runs: u64,
    injected: [u64; Kind::ALL.len()],
    observed: [u64; Kind::ALL.len()],
    unclassified: u64,
    mismatches: u64,
    examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, verdict: Verdict) {
        self.runs += 1;
        self.injected[verdict.expected.index()] += 1;
        match verdict.observed {
            Some(kind) => self.observed[kind.index()] += 1,
            None => self.unclassified += 1,
        }
        if let Some(problem) = verdict.problem {
            self.mismatches += 1;
            if self.examples.len() < 10 {
                self.examples.push(problem);
            }
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {:<24} {:>9} {:>9}", "outcome", "injected", "observed")?;
        for kind in Kind::ALL {
            writeln!(
                f,
                "  {:<24} {:>9} {:>9}",
                format!("{kind:?}"),
                self.injected[kind.index()],
                self.observed[kind.index()]
            )?;
        }
        if self.unclassified > 0 {
            writeln!(
                f,
                "  {:<24} {:>9} {:>9}",
                "(no known kind)", 0, self.unclassified
            )?;
        }
        write!(
            f,
            "  {:<24} {:>9} {:>9}",
            "total",
            self.runs,
            self.observed.iter().sum::<u64>() + self.unclassified
        )
    }
}

/// Runs `runs` runs, numbered from `first`, in batches of [`BATCH`] at once,
/// each batch with fresh sessions, one per tenant, shared by its runs.
fn run_round<P>(
    runtime: &Runtime,
    runner: &StromaRunner,
    pipeline: &Arc<P>,
    tenants: &[String],
    seed: u64,
    first: u64,
    runs: u64,
) -> Tally
where
    P: Runnable<(), Input = Job, Output = Receipt> + Send + Sync + 'static,
{
    let mut tally = Tally::default();
    let mut next = first;
    while next < first + runs {
        let end = (next + BATCH).min(first + runs);
        let sessions: Vec<MemorySession> = (0..TENANTS).map(|_| MemorySession::new()).collect();
        let handles: Vec<_> = (next..end)
            .map(|run| {
                let (tenant, fault) = plan(seed, run);
                UNFINISHED[fault.expected_kind().index()].fetch_add(1, Ordering::Relaxed);
                let started = run_one(
                    runner.clone(),
                    Arc::clone(pipeline),
                    sessions[tenant].clone(),
                    tenants[tenant].clone(),
                    run,
                    fault,
                );
                runtime.spawn(async move {
                    let verdict = started.await;
                    UNFINISHED[verdict.expected.index()].fetch_sub(1, Ordering::Relaxed);
                    verdict
                })
            })
            .collect();
        let verdicts = runtime.block_on(async {
            let all = futures::future::join_all(handles);
            tokio::time::timeout(BATCH_DEADLINE, all).await
        });
        let Ok(verdicts) = verdicts else {
            let left: Vec<String> = Kind::ALL
                .into_iter()
                .map(|kind| (kind, UNFINISHED[kind.index()].load(Ordering::Relaxed)))
                .filter(|(_, left)| *left > 0)
                .map(|(kind, left)| format!("{left} {kind:?}"))
                .collect();
            panic!(
                "runs {next}..{end} hung: not finished after {BATCH_DEADLINE:?}: {}",
                left.join(", ")
            );
        };
        for verdict in verdicts {
            tally.add(verdict.expect("a run's task does not panic: the runner catches panics"));
        }
        next = end;
    }
    tally
}

/// What a round left behind: read with its runtime alive (tasks, live
/// heap, resident memory as it stands), then once the runtime and its
/// threads are gone (live heap, resident memory in use).
struct Leftovers {
    alive_tasks: usize,
    live_with_runtime: usize,
    resident_with_runtime: u64,
    live: usize,
    resident_in_use: u64,
}

/// [`run_round`] on a runtime of its own (two workers), driven from a
/// thread of its own, so that their per-thread caches go with them.
fn round_on_own_runtime<P>(
    runner: &StromaRunner,
    pipeline: &Arc<P>,
    tenants: &[String],
    seed: u64,
    first: u64,
    runs: u64,
) -> (Tally, Leftovers, Duration)
where
    P: Runnable<(), Input = Job, Output = Receipt> + Send + Sync + 'static,
{
    let driven = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                let started = Instant::now();
                let tally = run_round(&runtime, runner, pipeline, tenants, seed, first, runs);
                let wall = started.elapsed();
                let alive_tasks = alive_tasks_after_reaping(&runtime);
                let live_with_runtime = LIVE.load(Ordering::SeqCst);
                let resident_with_runtime = resident_bytes();
                // Trimmed now too, with the threads' arenas still in use:
                // without it the reading below ranged over 15 % from round
                // to round, with it over 5 % at most (see `RESIDENT_JITTER`).
                trim_allocator();
                (
                    tally,
                    alive_tasks,
                    live_with_runtime,
                    resident_with_runtime,
                    wall,
                )
            })
            .join()
    });
    let (tally, alive_tasks, live_with_runtime, resident_with_runtime, wall) =
        driven.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let leftovers = Leftovers {
        alive_tasks,
        live_with_runtime,
        resident_with_runtime,
        live: LIVE.load(Ordering::SeqCst),
        resident_in_use: resident_bytes_in_use(),
    };
    (tally, leftovers, wall)
}

/// Waits until the runtime has no task alive (tasks of ended runs may take
/// a moment to be reaped), up to [`REAP_DEADLINE`]; returns how many are left.
fn alive_tasks_after_reaping(runtime: &Runtime) -> usize {
    let deadline = Instant::now() + REAP_DEADLINE;
    loop {
        let alive = runtime.metrics().num_alive_tasks();
        if alive == 0 || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Keeps the injected panics from printing thousands of messages; any other
/// panic (a failed assertion) is printed as usual.
fn silence_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&INJECTED_PANIC) {
            default(info);
        }
    }));
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => {
            let text = text.replace('_', "");
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number"))
        }
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------
// The suite.

/// Live bytes the measured runs may leave above the level before them:
/// room for a lazily made static (a `LazyLock`, a thread-local, a cache
/// entry) that only a rare path reaches, for the first time in the measured
/// runs rather than in the warm-up's. Measured: 0, with the runtime alive
/// and without. A leak of 1 byte a run in half the runs is above it at
/// 10,000 runs.
const LIVE_BYTES_SLACK: usize = 4 * 1024;

/// Growth of resident memory in use allowed beside the 5 %: the
/// allocator's page-level fragmentation. Which pages the last fragments of
/// the heap pin differs from round to round: over 30 rounds of 10,000 runs
/// with the same live heap to the byte, the reading ranged over 0.32 MiB
/// (6.32 to 6.64 MiB in a debug build), about 5 % of it. A leak of 1 MiB
/// over 10,000 runs is 105 bytes a run, which the live-byte count catches
/// (to under a byte a run).
const RESIDENT_JITTER: u64 = 1024 * 1024;

#[test]
fn chaos_runs_end_as_injected_leak_nothing_between_tenants_and_leave_nothing_behind() {
    let runs = env_u64("STROMA_CHAOS_RUNS", DEFAULT_RUNS);
    let seed = env_u64("STROMA_CHAOS_SEED", DEFAULT_SEED);
    assert!(runs > 0, "STROMA_CHAOS_RUNS must be at least 1");
    silence_injected_panics();
    let runner = StromaRunner::quick();
    let pipeline = Arc::new(chaos_pipeline());
    let tenants: Vec<String> = (0..TENANTS).map(|t| format!("tenant-{t:03}")).collect();

    // Warm-up: the same workload, one batch, so the allocator and the
    // library's caches have reached their working size before the "before"
    // figures, which are what it leaves behind. Its runs are checked like any.
    let warm_up_runs = runs.min(BATCH);
    let (warm_up, before, _) =
        round_on_own_runtime(&runner, &pipeline, &tenants, seed, 0, warm_up_runs);

    // Nothing from here to "after" may allocate for good: no printing.
    let identity_checks_before = IDENTITY_CHECKS.load(Ordering::SeqCst);
    let session_items_before = SESSION_ITEMS_CHECKED.load(Ordering::SeqCst);
    PEAK.store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
    let (measured, after, wall) =
        round_on_own_runtime(&runner, &pipeline, &tenants, seed, warm_up_runs, runs);
    let peak = PEAK.load(Ordering::SeqCst);
    let identity_checks = IDENTITY_CHECKS.load(Ordering::SeqCst) - identity_checks_before;
    let session_items = SESSION_ITEMS_CHECKED.load(Ordering::SeqCst) - session_items_before;
    let violations = VIOLATIONS.load(Ordering::SeqCst);

    let change = |before: u64, after: u64| (after as f64 / before as f64 - 1.0) * 100.0;
    println!(
        "chaos: {runs} runs (seed {seed:#x}) of 10 nodes, {TENANTS} tenants, up to {BATCH} at \
         once, 2 worker threads, after {warm_up_runs} runs of warm-up"
    );
    println!("{measured}");
    println!(
        "  identity checks {identity_checks}, session items checked {session_items}; \
         violations {violations} (in all runs, warm-up included)"
    );
    println!(
        "  resident memory in use: before {:.2} MiB, after {:.2} MiB ({:+.2} %); \
         with the runtime alive, untrimmed: {:.1} and {:.1} MiB",
        mib(before.resident_in_use),
        mib(after.resident_in_use),
        change(before.resident_in_use, after.resident_in_use),
        mib(before.resident_with_runtime),
        mib(after.resident_with_runtime),
    );
    println!(
        "  live heap bytes: before {}, after {} ({:+}); with the runtime alive: {} and {} ({:+}); \
         peak during the runs {:.1} MiB",
        before.live,
        after.live,
        after.live as i64 - before.live as i64,
        before.live_with_runtime,
        after.live_with_runtime,
        after.live_with_runtime as i64 - before.live_with_runtime as i64,
        mib(peak as u64)
    );
    println!(
        "  alive tasks after the runs: {} (after the warm-up: {})",
        after.alive_tasks, before.alive_tasks
    );
    println!(
        "  wall time of the measured runs: {:.2} s",
        wall.as_secs_f64()
    );

    for (name, tally) in [("warm-up", &warm_up), ("measured", &measured)] {
        assert!(
            tally.mismatches == 0 && tally.unclassified == 0,
            "{name}: {} runs did not end as injected, e.g.:\n{}",
            tally.mismatches,
            tally.examples.join("\n")
        );
        assert_eq!(
            tally.injected, tally.observed,
            "{name}: outcomes do not reconcile:\n{tally}"
        );
    }
    assert_eq!(measured.runs, runs, "one outcome per run");
    if runs >= 1_000 {
        // Each kind is some 4 % of runs or more: none can be missing by chance.
        for kind in Kind::ALL {
            assert!(
                measured.injected[kind.index()] > 0,
                "no {kind:?} run: the plan is broken"
            );
        }
    }
    assert_eq!(
        violations,
        0,
        "runs saw other runs' identity:\n{}",
        VIOLATION_EXAMPLES.lock().unwrap().join("\n")
    );
    assert!(
        identity_checks > 0 && session_items > 0,
        "the identity and session checks checked nothing"
    );
    assert_eq!(before.alive_tasks, 0, "tasks left alive after the warm-up");
    assert_eq!(after.alive_tasks, 0, "tasks left alive after the runs");
    // With the runtime alive, a thread-local or a runtime's structure that
    // grew with the runs shows; with it gone, anything else kept.
    assert!(
        after.live_with_runtime <= before.live_with_runtime + LIVE_BYTES_SLACK,
        "{} live heap bytes more after the runs than before, with the runtime alive",
        after.live_with_runtime - before.live_with_runtime
    );
    assert!(
        after.live <= before.live + LIVE_BYTES_SLACK,
        "{} live heap bytes more after the runs than before",
        after.live - before.live
    );
    let allowed = (before.resident_in_use / 20).max(RESIDENT_JITTER);
    assert!(
        after.resident_in_use <= before.resident_in_use + allowed,
        "resident memory in use grew by more than {:.2} MiB, from {:.2} to {:.2} MiB",
        mib(allowed),
        mib(before.resident_in_use),
        mib(after.resident_in_use)
    );
}
