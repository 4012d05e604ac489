//! The context follows the model's rules in branches, items and loop
//! iterations: each writes into a layer of its own, merged back in
//! declaration order only when all succeed; a conflict names the entry;
//! enrichment reaches only the nodes after it in its own scope.

use stroma::prelude::*;
use stroma::{ContextConflict, current_tenant_id, loop_until};

#[node]
async fn write_a(n: u32, ctx: &Context) -> u32 {
    ctx.insert_named("a", n);
    n
}

#[node]
async fn write_b(n: u32, ctx: &Context) -> u32 {
    ctx.insert_named("b", n * 10);
    n
}

#[node]
async fn write_a_too(n: u32, ctx: &Context) -> u32 {
    ctx.insert_named("a", n);
    n
}

#[node]
async fn write_then_fail(n: u32, ctx: &Context) -> Result<u32, NodeError> {
    ctx.insert_named("doomed", n);
    ctx.enrich([("tenant_id", "intruder")]);
    // Let the sibling run while this branch's writes exist.
    tokio::task::yield_now().await;
    Err(NodeError::msg("this branch fails"))
}

#[node]
async fn read_tenant(n: u32, ctx: &Context) -> String {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    format!(
        "{n}:{}:{}",
        current_tenant_id().unwrap_or_default(),
        ctx.contains_named("doomed")
    )
}

#[node]
async fn first(pair: (u32, u32)) -> u32 {
    pair.0
}

fn runner() -> StromaRunner {
    StromaRunner::quick().with_execution_context(ExecutionContext::of([("tenant_id", "acme")]))
}

#[tokio::test]
async fn disjoint_branch_writes_merge_into_the_run() {
    let result = runner()
        .run(&pipeline![parallel![write_a, write_b], first], 2)
        .await
        .unwrap();
    assert_eq!(*result.context.get_named::<u32>("a").unwrap(), 2);
    assert_eq!(*result.context.get_named::<u32>("b").unwrap(), 20);
}

#[tokio::test]
async fn two_branches_writing_one_entry_is_a_conflict_naming_it_and_nothing_is_written() {
    let err = runner()
        .run(&parallel![write_a, write_b, write_a_too], 2)
        .await
        .unwrap_err();
    let conflict = err
        .cause()
        .downcast_ref::<ContextConflict>()
        .expect("the cause is the conflict");
    assert_eq!(conflict.key(), "a");
    assert!(err.to_string().contains("\"a\""), "{err}");
    // All or nothing: not even the disjoint write of `b` is kept.
    assert!(!err.context().contains_named("a"));
    assert!(!err.context().contains_named("b"));
    assert_eq!(err.path().as_str(), "parallel");
}

#[tokio::test]
async fn a_failed_branch_takes_its_writes_and_enrichment_with_it() {
    let err = runner()
        .run(&parallel![write_then_fail, read_tenant], 1)
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "parallel[0].write_then_fail");
    // The sibling read neither the failed branch's entry nor its tenant.
    let read = err.result::<String>("parallel[1].read_tenant").unwrap();
    assert_eq!(*read, "1:acme:false");
    assert!(!err.context().contains_named("doomed"));
}

#[tokio::test]
async fn for_each_items_merge_their_writes_in_item_order_or_conflict() {
    #[node]
    async fn note_item(n: u32, ctx: &Context) -> u32 {
        ctx.insert_named(format!("item{n}"), n);
        n
    }
    let result = runner()
        .run(&for_each(note_item).concurrency(3), vec![1, 2, 3])
        .await
        .unwrap();
    for n in 1..=3 {
        assert_eq!(
            *result
                .context
                .get_named::<u32>(&format!("item{n}"))
                .unwrap(),
            n
        );
    }

    // Every item writes `a`: a conflict, nothing written.
    let err = runner()
        .run(&for_each(write_a).concurrency(2), vec![1, 2, 3])
        .await
        .unwrap_err();
    assert!(
        err.cause().downcast_ref::<ContextConflict>().is_some(),
        "{err}"
    );
    assert!(!err.context().contains_named("a"));

    // Items adding to a combined entry add up.
    #[node]
    async fn count_item(n: u32, ctx: &Context) -> u32 {
        ctx.insert_combined("seen", Sum(n));
        n
    }
    let counting =
        StromaRunner::quick().with_context(Context::new().with_combined("seen", Sum(0_u32)));
    let result = counting
        .run(&for_each(count_item).concurrency(2), vec![1, 2, 3, 4])
        .await
        .unwrap();
    assert_eq!(result.context.get_named::<Sum<u32>>("seen").unwrap().0, 10);

    // A failed item discards every item's writes.
    #[node]
    async fn note_or_fail(n: u32, ctx: &Context) -> Result<u32, NodeError> {
        ctx.insert_named(format!("item{n}"), n);
        if n == 2 {
            return Err(NodeError::msg("two"));
        }
        Ok(n)
    }
    let err = runner()
        .run(&for_each(note_or_fail), vec![1, 2, 3])
        .await
        .unwrap_err();
    assert!(!err.context().contains_named("item1"));
    assert!(!err.context().contains_named("item2"));
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Rounds {
    done: u32,
}

#[node]
async fn round(n: u32, ctx: &Context, rounds: &mut Rounds) -> Result<u32, NodeError> {
    rounds.done += 1;
    ctx.insert_named(format!("round{n}"), n);
    ctx.enrich([("last_round", n)]);
    if n == 3 {
        return Err(NodeError::msg("round three fails"));
    }
    Ok(n + 1)
}

#[tokio::test]
async fn a_failed_loop_iteration_discards_its_context_writes_as_it_does_its_model_changes() {
    let looped = loop_until(round, |_: &u32, _: &Rounds| false).named("rounds");
    let err = runner()
        .run_with_model(&looped, 1, Rounds::default())
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "rounds[3].round");
    // Iterations 1 and 2 succeeded: their writes stay; iteration 3's is gone.
    assert!(err.context().contains_named("round1"));
    assert!(err.context().contains_named("round2"));
    assert!(!err.context().contains_named("round3"));
    assert_eq!(err.model::<Rounds>().unwrap().done, 2);
    // So does their enrichment; iteration 3's is gone with it.
    let execution = err.context().execution();
    assert_eq!(execution.get_as::<u32>("last_round").unwrap(), Some(2));
}

#[tokio::test]
async fn enrichment_in_a_branch_ends_with_the_branch() {
    #[node]
    async fn enrich_branch(n: u32, ctx: &Context) -> u32 {
        ctx.enrich([("branch", n)]);
        n
    }
    #[node]
    async fn sees_branch(n: u32) -> bool {
        let _ = n;
        stroma::current_execution_context().is_some_and(|context| context.contains("branch"))
    }
    let result = runner()
        .run(
            &pipeline![parallel![enrich_branch, write_b], first, sees_branch],
            1,
        )
        .await
        .unwrap();
    assert!(!result.final_state);
}
