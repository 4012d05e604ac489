//! `RunConfig::max_concurrent_runs(n)`: further runs wait for a slot
//! (`run`) or fail at once (`try_run`); a wait ends with its future, its token or its time limit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use stroma::prelude::*;

static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

#[node]
async fn busy(x: u32) -> u32 {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn runs_beyond_the_limit_wait_for_a_slot() {
    let runner = StromaRunner::new(RunConfig::default().max_concurrent_runs(2));
    let runs = (0..8).map(|i| {
        let runner = runner.clone();
        async move { runner.run(&pipeline![busy], i).await.unwrap().final_state }
    });
    let outputs = futures::future::join_all(runs).await;
    assert_eq!(outputs, (0..8).collect::<Vec<_>>());
    assert_eq!(
        MOST.load(Ordering::SeqCst),
        2,
        "never more than two at once"
    );
}

#[node]
async fn hold(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(200)).await;
    x
}

#[tokio::test]
async fn try_run_fails_at_once_when_full_and_a_dropped_wait_frees_nothing() {
    let runner = StromaRunner::new(RunConfig::default().max_concurrent_runs(1));
    let p = pipeline![hold];
    let holding = runner.run(&p, 1);
    let probing = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = runner.try_run(&p, 2).await.unwrap_err();
        assert!(err.to_string().contains("max_concurrent_runs"), "{err}");
        assert_eq!(err.cause().downcast_ref::<AtCapacity>().unwrap().limit(), 1);
        // A waiting run given up on takes no slot with it.
        let gave_up = tokio::time::timeout(Duration::from_millis(20), runner.run(&p, 3)).await;
        assert!(gave_up.is_err());
    };
    let (held, ()) = tokio::join!(holding, probing);
    assert_eq!(held.unwrap().final_state, 1);
    // The slot is free again: a try_run now runs.
    assert_eq!(runner.try_run(&p, 4).await.unwrap().final_state, 4);
}

/// Lets `held_open` finish, once per permit.
static RELEASE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

/// Holds its run's slot until the test releases it.
#[node]
async fn held_open(x: u32) -> u32 {
    RELEASE.acquire().await.expect("never closed").forget();
    x
}

#[tokio::test]
async fn a_run_waiting_for_a_slot_is_cancelled_by_its_token_or_its_time_limit() {
    let runner = StromaRunner::new(RunConfig::default().max_concurrent_runs(1));
    let p = pipeline![held_open];
    // Holds the one slot until both waiting runs have ended: they end
    // while waiting, or not at all (and the test fails on its bound).
    let holding = runner.run(&p, 1);
    let waiting = async {
        let token = CancellationToken::new();
        let cancelled = runner.run_with(&p, 2, RunOptions::new().cancel_token(token.clone()));
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            token.cancel();
        };
        let (cancelled, ()) = tokio::join!(cancelled, cancel);
        let cancelled = cancelled.unwrap_err();
        assert!(cancelled.is_cancelled(), "{cancelled}");
        let why = cancelled.cause().downcast_ref::<Cancelled>().unwrap();
        assert_eq!(why.timed_out_after(), None);
        let limited = runner
            .run_with(&p, 3, RunOptions::new().timeout(Duration::from_millis(30)))
            .await
            .unwrap_err();
        assert!(limited.is_cancelled(), "{limited}");
        let why = limited.cause().downcast_ref::<Cancelled>().unwrap();
        assert_eq!(why.timed_out_after(), Some(Duration::from_millis(30)));
        RELEASE.add_permits(1);
    };
    let (held, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(holding, waiting)
    })
    .await
    .expect("the waiting runs end while the slot is held");
    assert_eq!(held.unwrap().final_state, 1);
    // Neither waiting run took the slot with it.
    RELEASE.add_permits(1);
    assert_eq!(runner.try_run(&p, 4).await.unwrap().final_state, 4);
}
