//! `loop_until`: output fed back, per-iteration model isolation, failures and
//! panics naming their iteration, the cap both ways, names, nesting.

use serde_json::json;
use stroma::prelude::*;
use stroma::{
    Append, LoopCapReached, LoopIterationFailed, MergeConflict, PipelineContext, Runnable, Sum,
    loop_until,
};

// ---- the refinement example ---------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RefinementContext {
    current_definition: String,
    is_clear: bool,
    iteration_count: u32,
}

type Refinement = PipelineContext<RefinementContext>;

#[derive(Clone, Debug, PartialEq, Serialize)]
struct Assessment {
    is_clear: bool,
    current_definition: String,
}

/// Counts on the model directly; the verdict reaches the model through the output.
#[node(updates_context)]
async fn assess_and_refine(definition: String, ctx: &mut Refinement) -> Assessment {
    ctx.iteration_count += 1;
    if definition.contains("clear") || ctx.iteration_count >= 3 {
        Assessment {
            is_clear: true,
            current_definition: definition,
        }
    } else {
        Assessment {
            is_clear: false,
            current_definition: format!("{definition} (clarified)"),
        }
    }
}

#[node]
async fn next_definition(assessment: Assessment) -> String {
    assessment.current_definition
}

fn refinement_loop() -> impl Runnable<Refinement, Input = String, Output = String> {
    loop_until(
        pipeline![assess_and_refine, next_definition],
        |_definition: &String, ctx: &Refinement| ctx.is_clear,
    )
    .max_loops(5)
    .named("refinement_loop")
}

#[tokio::test]
async fn refinement_counts_across_iterations_and_stops_when_clear() {
    let initial = Refinement::from_initial(json!({
        "current_definition": "ambiguous definition",
    }))
    .unwrap();
    let result = StromaRunner::quick()
        .run_with_model(&refinement_loop(), "ambiguous definition".into(), initial)
        .await
        .unwrap();
    // Iterations 1 and 2 clarify; iteration 3 reaches the count and is clear.
    let refined = "ambiguous definition (clarified) (clarified)";
    assert_eq!(result.final_state, refined);
    let ctx = &result.model;
    assert_eq!(ctx.iteration_count, 3);
    assert!(ctx.is_clear);
    assert_eq!(ctx.current_definition, refined);
    assert_eq!(ctx.initial_input, json!("ambiguous definition"));
    let names: Vec<_> = result.records().iter().map(|r| r.name).collect();
    assert_eq!(names, ["assess_and_refine", "next_definition"].repeat(3));
}

#[tokio::test]
async fn refinement_of_a_clear_definition_takes_one_iteration() {
    let result = StromaRunner::quick()
        .run_with_model(
            &refinement_loop(),
            "a clear definition".into(),
            Refinement::default(),
        )
        .await
        .unwrap();
    assert_eq!(result.final_state, "a clear definition");
    assert_eq!(result.model.iteration_count, 1);
    assert!(result.model.is_clear);
}

// ---- output fed back, model read by the exit condition --------------------------

#[node]
async fn double_and_note(n: u64, inputs: &mut Vec<u64>) -> u64 {
    inputs.push(n);
    n * 2
}

#[tokio::test]
async fn each_iterations_output_is_the_next_iterations_input() {
    let doubling = loop_until(double_and_note, |n: &u64, _: &Vec<u64>| *n >= 100);
    let result = StromaRunner::quick()
        .run_with_model(&doubling, 3, Vec::new())
        .await
        .unwrap();
    assert_eq!(result.final_state, 192);
    assert_eq!(result.model, [3, 6, 12, 24, 48, 96]);
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Total {
    sum: u64,
    iterations: u32,
}

#[node]
async fn add_to_total(n: u64, total: &mut Total) -> u64 {
    total.sum += n;
    total.iterations += 1;
    n
}

#[tokio::test]
async fn the_exit_condition_reads_the_model_as_the_iteration_left_it() {
    // The output never changes; only the model says when to stop.
    let until_ten = loop_until(add_to_total, |_: &u64, total: &Total| total.sum >= 10);
    let result = StromaRunner::quick()
        .run_with_model(&until_ten, 3, Total::default())
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
    assert_eq!(
        result.model,
        Total {
            sum: 12,
            iterations: 4
        }
    );
}

// ---- failures and panics ----------------------------------------------------------

#[node]
async fn note_input(n: u64, seen: &mut Vec<u64>) -> u64 {
    seen.push(n);
    n
}

#[node]
async fn refuse_two(n: u64) -> Result<u64, NodeError> {
    if n == 2 {
        return Err(NodeError::msg("2 is refused"));
    }
    Ok(n + 1)
}

#[node]
async fn panic_on_two(n: u64) -> u64 {
    if n == 2 {
        panic!("two is too many");
    }
    n + 1
}

#[node]
async fn note_then_panic_on_two(n: u64, seen: &mut Vec<u64>) -> u64 {
    seen.push(n * 100);
    if n == 2 {
        panic!("two is too many");
    }
    n + 1
}

/// The loop `counting`: `note_input` then `$step`, until the value passes 5.
macro_rules! counting {
    ($step:expr) => {
        loop_until(pipeline![note_input, $step], |n: &u64, _: &Vec<u64>| *n > 5).named("counting")
    };
}

/// Runs `counting` from 1 over the model `[0]`, expecting it to fail.
async fn fails_counting<P>(counting: P) -> RunError
where
    P: Runnable<Vec<u64>, Input = u64, Output = u64>,
{
    StromaRunner::quick()
        .run_with_model(&counting, 1, vec![0])
        .await
        .expect_err("the loop fails")
}

#[tokio::test]
async fn an_error_in_iteration_two_fails_the_loop_and_discards_only_that_iteration() {
    // `note_input` succeeds in iteration 2 before `refuse_two` fails: the
    // loop, not the node, must discard its write.
    let err = fails_counting(counting!(refuse_two)).await;
    assert_eq!(
        err.to_string(),
        "node `counting[2].refuse_two` failed: 2 is refused \
         (in iteration 2 of loop `counting`, whose changes were discarded)"
    );
    assert_eq!(err.node(), "refuse_two");
    assert_eq!(err.path().as_str(), "counting[2].refuse_two");
    assert!(!err.is_panic());
    let failed = err
        .cause()
        .downcast_ref::<LoopIterationFailed>()
        .expect("the cause names the iteration");
    assert_eq!(failed.iteration(), 2);
    assert_eq!(failed.loop_name(), "counting");
    assert_eq!(err.model::<Vec<u64>>(), Some(&vec![0, 1]));
}

#[tokio::test]
async fn a_panic_in_iteration_two_keeps_iteration_ones_changes() {
    // A panic in a node without the model: the loop catches it.
    let err = fails_counting(counting!(panic_on_two)).await;
    assert!(err.is_panic());
    assert_eq!(err.node(), "panic_on_two");
    assert_eq!(
        err.to_string(),
        "node `counting[2].panic_on_two` panicked: two is too many \
         (in iteration 2 of loop `counting`, whose changes were discarded)"
    );
    assert_eq!(
        err.cause()
            .downcast_ref::<LoopIterationFailed>()
            .unwrap()
            .iteration(),
        2
    );
    assert_eq!(err.into_model::<Vec<u64>>(), Some(vec![0, 1]));

    // A panic in a node that changes the model itself.
    let err = fails_counting(counting!(note_then_panic_on_two)).await;
    assert!(err.is_panic());
    assert_eq!(err.node(), "note_then_panic_on_two");
    assert_eq!(err.model::<Vec<u64>>(), Some(&vec![0, 1, 100]));
}

// ---- the cap ------------------------------------------------------------------------

#[node]
async fn count_up(n: u64, seen: &mut Vec<u64>) -> u64 {
    seen.push(n);
    n + 1
}

#[tokio::test]
async fn reaching_max_loops_is_an_error_naming_the_loop_and_its_cap() {
    let never_done = loop_until(count_up, |_: &u64, _: &Vec<u64>| false)
        .max_loops(3)
        .named("never_done");
    let err = StromaRunner::quick()
        .run_with_model(&never_done, 0, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `never_done` failed: loop `never_done` reached its cap of 3 iterations \
         without its exit condition holding; raise `max_loops`, or use \
         `return_last_on_cap()` to take the last output"
    );
    assert_eq!(err.node(), "never_done");
    assert!(err.cause().downcast_ref::<LoopCapReached>().is_some());
}

#[tokio::test]
async fn the_default_cap_is_ten_iterations() {
    let unnamed = loop_until(count_up, |_: &u64, _: &Vec<u64>| false);
    let err = StromaRunner::quick()
        .run_with_model(&unnamed, 0, Vec::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("loop `loop_until` reached its cap of 10 iterations"),
        "{err}"
    );
}

#[tokio::test]
async fn return_last_on_cap_returns_the_last_output() {
    let capped = loop_until(count_up, |_: &u64, _: &Vec<u64>| false)
        .max_loops(4)
        .return_last_on_cap();
    let result = StromaRunner::quick()
        .run_with_model(&capped, 0, Vec::new())
        .await
        .unwrap();
    assert_eq!(result.final_state, 4);
    assert_eq!(result.model, [0, 1, 2, 3]);
}

#[tokio::test]
async fn an_exit_on_the_last_allowed_iteration_is_not_a_cap_error() {
    let just_in_time = loop_until(count_up, |n: &u64, _: &Vec<u64>| *n == 3).max_loops(3);
    let result = StromaRunner::quick()
        .run_with_model(&just_in_time, 0, Vec::new())
        .await
        .unwrap();
    assert_eq!(result.final_state, 3);
}

// ---- names and nesting ------------------------------------------------------------------

#[node]
async fn add_one(n: u64) -> u64 {
    n + 1
}

#[test]
fn named_sets_the_loops_name() {
    let plain = loop_until(add_one, |_: &u64, _: &()| true);
    assert_eq!(plain.name(), "loop_until");
    assert_eq!(plain.named("climb").name(), "climb");
}

#[node]
async fn parse(text: String, seen: &mut Vec<u64>) -> Result<u64, NodeError> {
    let n = text.parse()?;
    seen.push(n);
    Ok(n)
}

#[node]
async fn render(n: u64, seen: &mut Vec<u64>) -> String {
    seen.push(n * 1000);
    format!("got {n}")
}

#[tokio::test]
async fn a_loop_runs_between_other_nodes_of_a_pipeline() {
    let climb = loop_until(count_up, |n: &u64, _: &Vec<u64>| *n >= 7).named("climb");
    let p = pipeline![parse, climb, render];
    let result = StromaRunner::quick()
        .run_with_model(&p, "5".into(), Vec::new())
        .await
        .unwrap();
    assert_eq!(result.final_state, "got 7");
    // `parse`, the loop's two iterations, then `render`.
    assert_eq!(result.model, [5, 5, 6, 7000]);
    let names: Vec<_> = result.records().iter().map(|r| r.name).collect();
    assert_eq!(names, ["parse", "count_up", "count_up", "render"]);
}

#[tokio::test]
async fn a_failing_loop_in_a_pipeline_keeps_what_came_before_it() {
    let p = pipeline![parse, counting!(refuse_two), render];
    let err = StromaRunner::quick()
        .run_with_model(&p, "1".into(), Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.node(), "refuse_two");
    // `parse` wrote 1, iteration 1 wrote 1; iteration 2 and `render` left nothing.
    assert_eq!(err.into_model::<Vec<u64>>(), Some(vec![1, 1]));
}

// ---- a loop over batches, each a for_each ----------------------------------------------

/// A crawl's counts, in batches of pages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Crawl {
    ok: Sum<u32>,
    failed: Append<u64>,
    /// Batches done: a plain field, so one writer per batch.
    batches: u32,
}

/// Checks a page (all but every fourth are fine) and names the page in the next batch.
#[node]
async fn check_page(page: u64, crawl: &mut Crawl) -> u64 {
    if page % 4 != 3 {
        crawl.ok += 1;
    } else {
        crawl.failed.push(page);
    }
    page + 9
}

#[node]
async fn end_batch(next: Vec<u64>, crawl: &mut Crawl) -> Vec<u64> {
    crawl.batches += 1;
    next
}

/// Counts the batch in every page's item instead of once: 9 writers of one plain field.
#[node]
async fn count_batch_per_page(page: u64, crawl: &mut Crawl) -> u64 {
    crawl.batches += 1;
    page + 9
}

#[tokio::test]
async fn a_loop_of_for_each_batches_adds_each_batchs_counts_to_the_last() {
    // Three batches of 9 pages: each iteration's items merge onto the model
    // the previous iteration left.
    let crawl = loop_until(
        pipeline![for_each(check_page).concurrency(4), end_batch],
        |next: &Vec<u64>, _: &Crawl| next[0] >= 27,
    )
    .named("crawl");
    let result = StromaRunner::quick()
        .run_with_model(&crawl, (0..9).collect(), Crawl::default())
        .await
        .unwrap();
    assert_eq!(result.final_state, (27..36).collect::<Vec<u64>>());
    assert_eq!(result.model.ok.0, 21);
    assert_eq!(result.model.failed.0, [3, 7, 11, 15, 19, 23]);
    assert_eq!(result.model.batches, 3);
}

#[tokio::test]
async fn a_batch_whose_items_all_write_one_plain_field_fails_its_iteration() {
    let batches = loop_until(
        for_each(count_batch_per_page).concurrency(4),
        |next: &Vec<u64>, _: &Crawl| next[0] >= 27,
    )
    .named("crawl");
    let start = Crawl {
        batches: 5,
        ..Crawl::default()
    };
    let err = StromaRunner::quick()
        .run_with_model(&batches, (0..9).collect(), start.clone())
        .await
        .unwrap_err();
    let failed = err
        .cause()
        .downcast_ref::<LoopIterationFailed>()
        .expect("the cause names the iteration");
    assert_eq!((failed.loop_name(), failed.iteration()), ("crawl", 1));
    let conflict =
        std::iter::successors(Some(err.cause() as &dyn std::error::Error), |e| e.source())
            .find_map(|e| e.downcast_ref::<MergeConflict>())
            .expect("a merge conflict behind the failed iteration");
    assert_eq!(conflict.field(), "batches");
    assert!(
        conflict.to_string().starts_with(
            "9 branches changed the model field `batches` (values: 6; 6; 6; and 6 more)"
        ),
        "{conflict}"
    );
    assert_eq!(err.model::<Crawl>(), Some(&start));
}
