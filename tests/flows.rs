//! Flows and their variables, and the results store: what a node reads of
//! its scopes and of the nodes that ran before it.

use serde_json::json;
use stroma::prelude::*;
use stroma::{ContextError, flow, loop_until};

#[node]
async fn read_level(_: (), ctx: &Context) -> Result<String, NodeError> {
    Ok(format!(
        "{}@{}",
        ctx.var::<String>("level")?,
        ctx.scope_path()
    ))
}

#[node]
async fn read_depth(_: (), ctx: &Context) -> Result<u32, NodeError> {
    Ok(*ctx.var::<u32>("depth")?)
}

#[node]
async fn then_depth(_: String, ctx: &Context) -> Result<u32, NodeError> {
    Ok(*ctx.var::<u32>("depth")?)
}

#[tokio::test]
async fn an_inner_variable_shadows_an_outer_one_through_three_nested_flows() {
    let innermost = flow("inner", pipeline![read_level]).var("level", "inner".to_owned());
    let middle = flow("middle", innermost).var("depth", 2_u32);
    let outer = flow("outer", pipeline![middle]).var("level", "outer".to_owned());
    let result = StromaRunner::quick().run(&outer, ()).await.unwrap();
    assert_eq!(result.final_state, "inner@outer.middle.inner.read_level");

    // Without the inner declaration, the outer one is seen; the middle's
    // `depth` is seen from inside `inner` too.
    let innermost = flow("inner", pipeline![read_level, then_depth]);
    let outer = flow("outer", flow("middle", innermost).var("depth", 2_u32))
        .var("level", "outer".to_owned());
    let result = StromaRunner::quick()
        .run(&pipeline![outer], ())
        .await
        .unwrap();
    assert_eq!(result.final_state, 2);
    assert_eq!(
        *result
            .result::<String>("outer.middle.inner.read_level")
            .unwrap(),
        "outer@outer.middle.inner.read_level"
    );
    let tree = result.tree();
    assert_eq!(tree.find("outer").unwrap().kind, ScopeKind::Flow);
    assert_eq!(
        tree.find("outer.middle.inner").unwrap().kind,
        ScopeKind::Flow
    );
}

#[tokio::test]
async fn a_missing_variable_names_it_and_the_scopes_searched() {
    let p = flow("outer", flow("inner", read_depth).var("other", 1_u8)).var("more", 2_u8);
    let err = StromaRunner::quick().run(&p, ()).await.unwrap_err();
    let missing = err.cause().downcast_ref::<ContextError>().unwrap();
    assert_eq!(
        missing,
        &ContextError::MissingVariable {
            name: "depth".to_owned(),
            searched: vec!["flow `inner`".to_owned(), "flow `outer`".to_owned()],
            node: Some("read_depth"),
        }
    );
    assert_eq!(
        err.to_string(),
        "node `outer.inner.read_depth` failed: no variable `depth` in scope (searched flow \
         `inner`, flow `outer`); declare it with `flow(..).var(\"depth\", value)` or \
         `RunOptions::new().var(..)`"
    );
}

#[tokio::test]
async fn a_variable_of_another_type_names_the_scope_and_both_types() {
    let p = flow("settings", read_depth).var("depth", "deep".to_owned());
    let err = StromaRunner::quick().run(&p, ()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `settings.read_depth` failed: variable `depth` of flow `settings` holds a \
         `alloc::string::String`, not a `u32`"
    );
}

#[tokio::test]
async fn run_level_variables_come_from_the_runner_and_the_run_which_wins() {
    let runner = StromaRunner::quick()
        .with_var("depth", 1_u32)
        .with_var("level", "runner".to_owned());
    let p = pipeline![read_level, then_depth];
    assert_eq!(runner.run(&p, ()).await.unwrap().final_state, 1);
    let options = RunOptions::new().var("depth", 7_u32);
    let result = runner.run_with(&p, (), options).await.unwrap();
    assert_eq!(result.final_state, 7);
    assert_eq!(
        *result.result::<String>("read_level").unwrap(),
        "runner@read_level"
    );
    // A flow's variable shadows the run's.
    let shadowed = flow("f", read_depth).var("depth", 3_u32);
    let result = runner
        .run_with(&shadowed, (), RunOptions::new().var("depth", 7_u32))
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Analysis {
    files: Vec<String>,
}

#[node]
async fn dynamic_repo_analysis(_: ()) -> Analysis {
    Analysis {
        files: vec!["lib.rs".into(), "main.rs".into()],
    }
}

#[node]
async fn count_files(_: Analysis, ctx: &Context) -> Result<usize, NodeError> {
    Ok(ctx.result::<Analysis>("dynamic_repo_analysis")?.files.len())
}

#[node]
async fn code_generator(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("file{i}.rs")).collect()
}

#[node]
async fn review(files: Vec<String>, ctx: &Context) -> Result<String, NodeError> {
    // By path into a nested flow, and by id in this scope.
    let generated = ctx.result::<Vec<String>>("implementation.code_generator")?;
    let count = ctx.result::<usize>("count_files")?;
    assert!(ctx.has_result("dynamic_repo_analysis"));
    assert!(!ctx.has_result("nothing_here"));
    Ok(format!(
        "{} of {count}, last {}",
        generated.len(),
        files.last().unwrap()
    ))
}

#[tokio::test]
async fn results_by_id_and_by_path_across_flows() {
    let p = pipeline![
        dynamic_repo_analysis,
        count_files,
        flow("implementation", pipeline![code_generator]),
        review
    ];
    let result = StromaRunner::quick().run(&p, ()).await.unwrap();
    assert_eq!(result.final_state, "2 of 2, last file1.rs");
}

#[node]
async fn bump(n: u32) -> u32 {
    n + 1
}

#[node]
async fn latest_bump(n: u32, ctx: &Context) -> Result<u32, NodeError> {
    Ok(*ctx.result::<u32>("bump")? * 100 + n)
}

#[node]
async fn read_iteration_two(n: u32, ctx: &Context) -> Result<u32, NodeError> {
    Ok(*ctx.result::<u32>("climb[2].bump")? * 1000 + n)
}

#[tokio::test]
async fn a_plain_id_inside_a_loop_gives_the_latest_iteration_and_an_index_a_given_one() {
    let climb = loop_until(bump, |n: &u32, _: &()| *n >= 3).named("climb");
    let result = StromaRunner::quick()
        .run(&pipeline![climb, latest_bump, read_iteration_two], 0)
        .await
        .unwrap();
    // bump ran three times (1, 2, 3); the latest is 3; iteration 2's is 2.
    assert_eq!(result.final_state, 2 * 1000 + 3 * 100 + 3);
}

#[node]
async fn ask_for_missing(_: (), ctx: &Context) -> Result<u32, NodeError> {
    Ok(*ctx.result::<u32>("dynamic_repo_analysys")?)
}

#[tokio::test]
async fn an_unknown_reference_names_it_and_suggests_the_nearest() {
    let err = StromaRunner::quick()
        .run(
            &pipeline![dynamic_repo_analysis, to_unit, ask_for_missing],
            (),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("no node at `dynamic_repo_analysys` in this run; the nearest are `dynamic_repo_analysis`"),
        "{message}"
    );
    let _ = json!(null);
}

#[node]
async fn to_unit(_: Analysis) {}

#[node]
async fn fetch_n(n: u32) -> u32 {
    // Later items finish first, so outputs land out of item order.
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(10 - n))).await;
    n * 10
}

#[node]
async fn own_fetch(fetched: u32, ctx: &Context) -> Result<bool, NodeError> {
    Ok(*ctx.result::<u32>("fetch_n")? == fetched)
}

#[tokio::test]
async fn an_item_reads_its_own_items_node_not_another_items() {
    let p = for_each(pipeline![fetch_n, own_fetch]).concurrency(4);
    let result = StromaRunner::quick()
        .run(&p, vec![1, 2, 3, 4, 5])
        .await
        .unwrap();
    assert_eq!(result.final_state, [true; 5]);
}

#[node]
async fn tag_a(n: u32) -> String {
    format!("a{n}")
}

#[node]
async fn tag_b(n: u32) -> String {
    format!("b{n}")
}

#[node]
async fn fetch_tag(tag: String) -> String {
    tag
}

#[node]
async fn second_branch(_: (String, String), ctx: &Context) -> Result<String, NodeError> {
    Ok(ctx.result::<String>("both[1].fetch_tag")?.to_string())
}

#[tokio::test]
async fn an_index_into_a_parallel_picks_that_branchs_node() {
    let p = pipeline![
        parallel![pipeline![tag_a, fetch_tag], pipeline![tag_b, fetch_tag]].named("both"),
        second_branch
    ];
    let result = StromaRunner::quick().run(&p, 7).await.unwrap();
    assert_eq!(result.final_state, "b7");
}

#[node]
async fn read_topic(n: u32, ctx: &Context) -> Result<u32, NodeError> {
    assert_eq!(*ctx.var::<String>("topic")?, "outer");
    Ok(n)
}

#[node]
async fn panic_on_first(n: u32) -> u32 {
    assert_ne!(n, 0, "item zero breaks");
    n
}

#[tokio::test]
async fn after_a_panic_inside_a_flow_the_next_item_is_back_in_the_enclosing_scope() {
    let p = for_each(pipeline![
        read_topic,
        flow("inner", panic_on_first).var("topic", "inner".to_owned())
    ]);
    let err = StromaRunner::quick()
        .run_with(
            &p,
            vec![0, 1, 2],
            RunOptions::new().var("topic", "outer".to_owned()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.path().as_str(), "for_each[0].inner.panic_on_first");
    // Items 1 and 2 read the run's variable, not the inner flow's.
    assert!(err.result::<u32>("for_each[1].read_topic").is_ok(), "{err}");
    assert!(
        err.result::<u32>("for_each[2].inner.panic_on_first")
            .is_ok(),
        "{err}"
    );
}
