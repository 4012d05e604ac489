//! Templates in nodes: `ctx.render` and `ctx.evaluate` over the node's
//! variables and the run's kept results, parsed at run time or with
//! `template!` at compile time.

use serde_json::json;
use stroma::prelude::*;
use stroma::{TemplateErrorKind, flow};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Analysis {
    outcome: Outcome,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Outcome {
    results: Vec<String>,
}

#[node]
async fn dynamic_repo_analysis(_: ()) -> Analysis {
    Analysis {
        outcome: Outcome {
            results: vec!["src/lib.rs".into(), "src/main.rs".into()],
        },
    }
}

#[node]
async fn prompt(_: Analysis, ctx: &Context) -> Result<String, NodeError> {
    Ok(ctx.render(
        "Task $expr{task_spec.task_id}: $var{goal} over $expr{len($hier{dynamic_repo_analysis}.outcome.results)} files, \
         last $expr{$hier{dynamic_repo_analysis}.outcome.results[-1]}",
    )?)
}

#[node]
async fn operations(_: String, ctx: &Context) -> Result<serde_json::Value, NodeError> {
    Ok(ctx.evaluate(&template!(
        "$expr{$hier{dynamic_repo_analysis}.outcome.results}"
    ))?)
}

fn implementation() -> impl stroma::Runnable<(), Input = (), Output = serde_json::Value> {
    flow(
        "implementation",
        pipeline![dynamic_repo_analysis, prompt, operations],
    )
    .var("task_spec", json!({"task_id": "T-7"}))
    .var("goal", "tidy up")
}

#[tokio::test]
async fn a_node_renders_text_and_evaluates_values_from_variables_and_results() {
    let result = StromaRunner::quick()
        .run(&implementation(), ())
        .await
        .unwrap();
    assert_eq!(result.final_state, json!(["src/lib.rs", "src/main.rs"]));
    assert_eq!(
        *result.result::<String>("implementation.prompt").unwrap(),
        "Task T-7: tidy up over 2 files, last src/main.rs"
    );
}

#[node]
async fn render_unknown_var(_: (), ctx: &Context) -> Result<String, NodeError> {
    Ok(ctx.render("Task: $var{task_spek}")?)
}

#[tokio::test]
async fn an_unknown_variable_lists_what_is_in_scope() {
    let p = flow("f", render_unknown_var)
        .var("task_spec", 1)
        .var("index", 0);
    let err = StromaRunner::quick().run(&p, ()).await.unwrap_err();
    let template_error = err
        .cause()
        .downcast_ref::<TemplateError>()
        .expect("the cause is the template's error");
    assert!(matches!(
        template_error.kind(),
        TemplateErrorKind::UnknownVariable { .. }
    ));
    let message = template_error.to_string();
    assert!(
        message.contains("unknown variable `task_spek`"),
        "{message}"
    );
    assert!(message.contains("task_spec"), "{message}");
    assert!(message.contains("index"), "{message}");
    // The template line with a caret under the position.
    assert!(message.contains("Task: $var{task_spek}\n"), "{message}");
    assert!(message.contains('^'), "{message}");
}

#[node]
async fn render_unknown_node(_: Analysis, ctx: &Context) -> Result<String, NodeError> {
    Ok(ctx.render("$hier{dynamic_repo_analysys.outcome}")?)
}

#[tokio::test]
async fn an_unknown_node_suggests_the_nearest() {
    let err = StromaRunner::quick()
        .run(&pipeline![dynamic_repo_analysis, render_unknown_node], ())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("dynamic_repo_analysis"), "{message}");
    assert!(message.contains("dynamic_repo_analysys"), "{message}");
}

#[node]
async fn branch_prompt(n: u32, ctx: &Context) -> Result<String, NodeError> {
    Ok(ctx.render(format!("branch {n} of $var{{name}}"))?)
}

#[node]
async fn join_pair(pair: (String, String)) -> String {
    format!("{} / {}", pair.0, pair.1)
}

#[tokio::test]
async fn branches_render_with_the_variables_of_their_scope() {
    let p = flow(
        "pair",
        pipeline![parallel![branch_prompt, branch_prompt], join_pair],
    )
    .var("name", "the pair");
    let result = StromaRunner::quick().run(&p, 3).await.unwrap();
    assert_eq!(
        result.final_state,
        "branch 3 of the pair / branch 3 of the pair"
    );
}

#[node]
async fn pre_parsed(_: (), ctx: &Context) -> Result<String, NodeError> {
    let template = Template::parse("$var{goal} ($expr{len(goal)} chars)")?;
    Ok(ctx.render(&template)?)
}

#[tokio::test]
async fn a_template_parsed_ahead_renders_in_a_node() {
    let p = flow("f", pre_parsed).var("goal", "tidy up");
    let result = StromaRunner::quick().run(&p, ()).await.unwrap();
    assert_eq!(result.final_state, "tidy up (7 chars)");
    let err = Template::parse("$expr{1 +").unwrap_err();
    assert!(err.to_string().contains("unclosed `$expr{`"), "{err}");
}

#[test]
fn template_parses_at_compile_time_and_renders_outside_a_run_without_references() {
    let plain = template!("no references, $$var{escaped}");
    assert_eq!(
        Context::new().render(&plain).unwrap(),
        "no references, $var{escaped}"
    );
    assert_eq!(Context::new().evaluate("$expr{1 + 2}").unwrap(), json!(3));
}
