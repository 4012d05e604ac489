//! `.retry(policy)`: a failed node runs again from the model and context as
//! they were before its first attempt; permanent errors and panics are not
//! retried; the final error says how many attempts were made.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use stroma::prelude::*;

static CALLS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

fn calls(name: &str) -> u32 {
    CALLS
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == name)
        .count() as u32
}

fn called(name: &str) {
    CALLS.lock().unwrap().push((name.to_owned(), 1));
}

const FAST: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    marks: Vec<String>,
}

static FLAKY_LEFT: AtomicU32 = AtomicU32::new(2);
static SAW_EARLIER_ATTEMPT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Fails twice, writing the model and context each time, then succeeds.
#[node]
async fn flaky(x: u32, ctx: &Context, tally: &mut Tally) -> Result<u32, NodeError> {
    called("flaky");
    tally.marks.push(format!("try {}", calls("flaky")));
    // An attempt starts from the context as it was before the first: an
    // earlier attempt's own key is not there.
    if (1..calls("flaky"))
        .any(|earlier| ctx.get_named::<u32>(&format!("attempt {earlier}")).is_ok())
    {
        SAW_EARLIER_ATTEMPT.store(true, Ordering::SeqCst);
    }
    ctx.insert_named(format!("attempt {}", calls("flaky")), calls("flaky"));
    ctx.insert_named("tries", calls("flaky"));
    if FLAKY_LEFT.load(Ordering::SeqCst) > 0 {
        FLAKY_LEFT.fetch_sub(1, Ordering::SeqCst);
        return Err(NodeError::msg("service busy"));
    }
    Ok(x * 10)
}

#[node]
async fn mark(x: u32, tally: &mut Tally) -> u32 {
    tally.marks.push("before".into());
    x
}

#[tokio::test]
async fn a_flaky_node_succeeds_on_a_later_attempt_from_the_state_before_the_first() {
    let runner = StromaRunner::quick();
    let inner = pipeline![mark.named("inner_mark"), flaky];
    let p = pipeline![mark, inner.retry(RetryPolicy::fixed(FAST).max_attempts(5))];
    let mut stream =
        std::pin::pin!(runner.stream_with(&p, 4, RunOptions::new().model(Tally::default())));
    let mut retries = Vec::new();
    let mut finished = None;
    while let Some(item) = stream.next().await {
        match item {
            RunEvent::Event(Event::NodeRetrying {
                path,
                attempt,
                error,
                ..
            }) => retries.push((path.to_string(), attempt, error)),
            RunEvent::Finished(result) => finished = Some(result),
            _ => {}
        }
    }
    let done = finished.unwrap().unwrap();
    assert_eq!(done.final_state, 40);
    assert_eq!(calls("flaky"), 3);
    // The tree shows the attempts; its status is the last one's.
    let scope = done.tree().find("flaky").unwrap();
    assert_eq!((scope.attempts(), scope.status), (3, NodeStatus::Completed));
    assert_eq!(done.tree().find("mark").unwrap().attempts(), 1);
    assert_eq!(done.tree().find("inner_mark").unwrap().attempts(), 3);
    // The failed attempts' writes are gone: one "before" of the pipeline
    // before, and the whole retried pipeline once, from its last attempt.
    assert_eq!(done.model.marks, ["before", "before", "try 3"]);
    assert_eq!(*done.context.get_named::<u32>("tries").unwrap(), 3);
    assert!(done.context.get_named::<u32>("attempt 1").is_err());
    assert!(done.context.get_named::<u32>("attempt 2").is_err());
    assert_eq!(*done.context.get_named::<u32>("attempt 3").unwrap(), 3);
    assert!(
        !SAW_EARLIER_ATTEMPT.load(Ordering::SeqCst),
        "an attempt saw an earlier one's write"
    );
    assert_eq!(
        retries,
        [
            ("flaky".to_owned(), 2, "service busy".to_owned()),
            ("flaky".to_owned(), 3, "service busy".to_owned())
        ]
    );
}

#[node]
async fn always_down(_x: u32) -> Result<u32, NodeError> {
    called("always_down");
    Err(NodeError::msg("still down"))
}

#[tokio::test]
async fn the_final_error_says_how_many_attempts_were_made() {
    let runner = StromaRunner::quick();
    let p = pipeline![always_down.retry(RetryPolicy::exponential(FAST).max_attempts(3))];
    let err = runner.run(&p, 1).await.unwrap_err();
    assert_eq!(calls("always_down"), 3);
    assert_eq!(err.path().as_str(), "always_down");
    assert_eq!(
        err.to_string(),
        "node `always_down` failed: still down (after 3 attempts)"
    );
    let exhausted = err.cause().downcast_ref::<RetriesExhausted>().unwrap();
    assert_eq!(exhausted.attempts(), 3);
}

#[node]
async fn not_found(_x: u32) -> Result<u32, NodeError> {
    called("not_found");
    Err(NodeError::permanent("no such order"))
}

#[node]
async fn bad_request(_x: u32) -> Result<u32, NodeError> {
    called("bad_request");
    Err(NodeError::msg("400 bad request"))
}

#[tokio::test]
async fn permanent_errors_and_refused_ones_are_not_retried() {
    let runner = StromaRunner::quick();
    let err = runner
        .run(
            &pipeline![not_found.retry(RetryPolicy::fixed(FAST).max_attempts(5))],
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(calls("not_found"), 1);
    assert!(
        err.to_string().contains("no such order (after 1 attempt)"),
        "{err}"
    );

    let policy = RetryPolicy::fixed(FAST)
        .max_attempts(5)
        .when(|err| !err.to_string().starts_with("400"));
    let err = runner
        .run(&pipeline![bad_request.retry(policy)], 1)
        .await
        .unwrap_err();
    assert_eq!(calls("bad_request"), 1);
    assert!(err.to_string().contains("(after 1 attempt)"), "{err}");
}

#[node]
async fn slow_down(_x: u32) -> Result<u32, NodeError> {
    called("slow_down");
    Err(NodeError::msg("down"))
}

#[tokio::test]
async fn no_attempt_starts_past_max_elapsed() {
    let runner = StromaRunner::quick();
    let policy = RetryPolicy::fixed(Duration::from_millis(40))
        .max_attempts(100)
        .max_elapsed(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let err = runner
        .run(&pipeline![slow_down.retry(policy)], 1)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let attempts = err
        .cause()
        .downcast_ref::<RetriesExhausted>()
        .unwrap()
        .attempts();
    assert_eq!(attempts, calls("slow_down"));
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
}

#[node]
async fn panicky(_x: u32) -> u32 {
    called("panicky");
    panic!("bug")
}

#[tokio::test]
async fn a_panic_is_not_retried() {
    let runner = StromaRunner::quick();
    let err = runner
        .run(&pipeline![panicky.retry(RetryPolicy::fixed(FAST))], 1)
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(calls("panicky"), 1);
}

// ---- retries in durable runs ---------------------------------------------------

/// How each call of `r_flaky` behaves, in order: fail, hang (the process
/// "dies" during it), or succeed.
static R_SCRIPT: Mutex<Vec<&str>> = Mutex::new(Vec::new());

/// The tests below share `r_flaky`'s script: one at a time.
static R_ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[node]
async fn r_before(x: u32) -> u32 {
    called("r_before");
    x + 1
}

#[node]
async fn r_flaky(x: u32) -> Result<u32, NodeError> {
    called("r_flaky");
    let next = {
        let mut script = R_SCRIPT.lock().unwrap();
        if script.is_empty() {
            "ok"
        } else {
            script.remove(0)
        }
    };
    match next {
        "fail" => Err(NodeError::msg("upstream 503")),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(x)
        }
        _ => Ok(x * 10),
    }
}

/// Runs `p` durably until `r_flaky` hangs, then drops the run as a crash
/// would; gives the run's id.
async fn crash_during_an_attempt<P>(runner: &StromaRunner, p: &P) -> String
where
    P: stroma::Runnable<(), Input = u32> + stroma::Durable,
    P::Output: Saveable,
{
    let crashed = tokio::time::timeout(Duration::from_millis(200), runner.run_durable(p, 1)).await;
    assert!(
        crashed.is_err(),
        "the run hung in its attempt and was dropped"
    );
    let running = runner.store().list(Some(RunStatus::Running)).await.unwrap();
    assert_eq!(running.len(), 1);
    running[0].summary.run_id.clone()
}

fn durable_runner() -> StromaRunner {
    // A short lease: the "dead" process's lease runs out quickly.
    StromaRunner::quick()
        .with_store(MemoryStore::new())
        .with_lease_ttl(Duration::from_millis(100))
}

/// Resumes `id`, waiting out the dead process's lease.
async fn resume_after_the_lease<P>(
    runner: &StromaRunner,
    p: &P,
    id: &str,
) -> Result<RunResult<P::Output>, RunError>
where
    P: stroma::Runnable<(), Input = u32> + stroma::Durable,
    P::Output: Saveable,
{
    tokio::time::sleep(Duration::from_millis(150)).await;
    runner.resume(p, id).await
}

#[tokio::test]
async fn an_attempt_cut_off_by_a_crash_counts_and_the_resume_makes_the_next() {
    let _one = R_ONE_AT_A_TIME.lock().await;
    *R_SCRIPT.lock().unwrap() = vec!["fail", "hang", "ok"];
    let before = (calls("r_before"), calls("r_flaky"));
    let runner = durable_runner();
    let p = pipeline![
        r_before,
        r_flaky.retry(RetryPolicy::fixed(FAST).max_attempts(3))
    ];
    let id = crash_during_an_attempt(&runner, &p).await;
    let stored = runner.store().get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.attempts,
        [("r_flaky".to_owned(), 2)],
        "attempt 2 had begun"
    );

    let done = resume_after_the_lease(&runner, &p, &id).await.unwrap();
    assert_eq!(done.final_state, 20);
    // `r_before` ran once; `r_flaky` three times: failed, cut off, succeeded.
    assert_eq!(calls("r_before") - before.0, 1);
    assert_eq!(calls("r_flaky") - before.1, 3);
    let stored = runner.store().get(&id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, [("r_flaky".to_owned(), 3)]);
}

#[tokio::test]
async fn a_crash_during_the_last_allowed_attempt_exhausts_the_retries_on_resume() {
    let _one = R_ONE_AT_A_TIME.lock().await;
    *R_SCRIPT.lock().unwrap() = vec!["fail", "hang"];
    let before = calls("r_flaky");
    let runner = durable_runner();
    let p = pipeline![
        r_before,
        r_flaky.retry(RetryPolicy::fixed(FAST).max_attempts(2))
    ];
    let id = crash_during_an_attempt(&runner, &p).await;
    let err = resume_after_the_lease(&runner, &p, &id).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `r_flaky` failed: attempt 2 was cut off when the run's process stopped \
         (after 2 attempts)"
    );
    assert_eq!(calls("r_flaky") - before, 2, "no third attempt");
}

#[tokio::test]
async fn a_retried_node_that_completed_before_a_crash_is_replayed_not_counted() {
    let _one = R_ONE_AT_A_TIME.lock().await;
    *R_SCRIPT.lock().unwrap() = vec!["fail", "ok"];
    let before = calls("r_flaky");
    let runner = durable_runner();
    let p = pipeline![
        r_flaky.retry(RetryPolicy::fixed(FAST).max_attempts(2)),
        r_hang_after
    ];
    let crashed = tokio::time::timeout(Duration::from_millis(200), runner.run_durable(&p, 1)).await;
    assert!(crashed.is_err());
    let id = runner.store().list(Some(RunStatus::Running)).await.unwrap()[0]
        .summary
        .run_id
        .clone();
    R_HANG.store(0, Ordering::SeqCst);
    let done = resume_after_the_lease(&runner, &p, &id).await.unwrap();
    assert_eq!(done.final_state, 10);
    assert_eq!(
        calls("r_flaky") - before,
        2,
        "replayed, not run a third time"
    );
    let stored = runner.store().get(&id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, [("r_flaky".to_owned(), 2)]);
}

static R_HANG: AtomicU32 = AtomicU32::new(1);

#[node]
async fn r_hang_after(x: u32) -> u32 {
    if R_HANG.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    x
}

static BRANCH_CALLS: AtomicU32 = AtomicU32::new(0);

/// A branch that fails its first call.
#[node]
async fn branch_once_down(x: u32) -> Result<u32, NodeError> {
    if BRANCH_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(NodeError::msg("branch down"));
    }
    Ok(x + 1)
}

#[node]
async fn steady(x: u32) -> u32 {
    x * 2
}

#[node]
async fn never_up(_x: u32) -> Result<u32, NodeError> {
    Err(NodeError::msg("never up"))
}

#[tokio::test]
async fn a_parallel_and_a_flow_can_be_retried_as_one() {
    let runner = StromaRunner::quick();
    let both = parallel![steady, branch_once_down].retry(RetryPolicy::fixed(FAST).max_attempts(3));
    let done = runner.run(&pipeline![both], 5).await.unwrap();
    assert_eq!(done.final_state, (10, 6));
    assert_eq!(BRANCH_CALLS.load(Ordering::SeqCst), 2);
    // The parallel ran twice: its branches, as many times.
    let scope = done.tree().find("parallel").unwrap();
    assert_eq!((scope.attempts(), scope.status), (2, NodeStatus::Completed));

    // A flow whose node always fails: retried as one, then exhausted.
    let flowed = flow("deliver", pipeline![steady, never_up])
        .retry(RetryPolicy::fixed(FAST).max_attempts(2));
    let err = runner.run(&flowed, 1).await.unwrap_err();
    let exhausted = err
        .cause()
        .downcast_ref::<RetriesExhausted>()
        .expect("exhausted");
    assert_eq!(exhausted.attempts(), 2);
    assert_eq!(err.path().as_str(), "deliver.never_up");
}
