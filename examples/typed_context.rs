//! A typed run model shared by every node of a run: iterative refinement in a
//! loop, discovery over a graph with a frontier, how strictly the model is
//! guarded, and live progress from a streamed run.
//!
//! `cargo run --example typed_context`

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use stroma::prelude::*;
use stroma::{Event, ModelUpdateError, ModelValidate, PipelineContext, RunEvent, loop_until};

// ---------------------------------------------------------------------------
// 1. Iterative refinement
// ---------------------------------------------------------------------------

/// The refinement loop's cap; the model refuses to count past it.
const MAX_ITERATIONS: u32 = 5;

/// The user's fields; `PipelineContext` adds the built-ins beside them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RefinementContext {
    current_definition: String,
    is_clear: bool,
    iteration_count: u32,
}

/// Checked after every node that changes the model.
impl ModelValidate for RefinementContext {
    fn validate(&self) -> Result<(), String> {
        if self.iteration_count > MAX_ITERATIONS {
            return Err(format!(
                "iteration_count {} is over the maximum of {MAX_ITERATIONS}",
                self.iteration_count
            ));
        }
        Ok(())
    }
}

type Refinement = PipelineContext<RefinementContext>;

/// What an assessment says; `updates_context` merges it into the model by field name.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Assessment {
    is_clear: bool,
    current_definition: String,
}

/// Assesses a definition: clear once it says so or after three rounds,
/// otherwise clarified a little more.
#[node(updates_context)]
async fn assess_and_refine(definition: String, model: &mut Refinement) -> Assessment {
    // A direct change through `&mut`; the returned fields are merged after it.
    model.iteration_count += 1;
    // Stands in for a call to a model or a reviewer.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let is_clear = definition.to_lowercase().contains("clear") || model.iteration_count >= 3;
    let current_definition = if is_clear {
        definition
    } else {
        format!("{definition} (clarified)")
    };
    Assessment {
        is_clear,
        current_definition,
    }
}

/// Hands the definition on to the next round: a loop's body takes what it gives.
#[node]
async fn next_round(assessment: Assessment) -> String {
    assessment.current_definition
}

// ---------------------------------------------------------------------------
// 2. Discovery
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Discovery {
    frontier: Vec<u32>,
    seen: BTreeSet<u32>,
    /// The order nodes were visited in.
    order: Vec<u32>,
}

/// A resource every run shares: who links to whom.
struct Graph(BTreeMap<u32, Vec<u32>>);

/// Visits the next node on the frontier and queues its neighbours not yet
/// seen nor queued; counts the visits.
#[node]
async fn explore(
    visits: u32,
    ctx: &Context,
    model: &mut PipelineContext<Discovery>,
) -> Result<u32, NodeError> {
    let graph = ctx.require::<Graph>()?;
    let Some(id) = model.frontier.pop() else {
        return Ok(visits);
    };
    let neighbours = graph
        .0
        .get(&id)
        .ok_or_else(|| NodeError::msg(format!("node {id} is not in the graph")))?;
    model.seen.insert(id);
    model.order.push(id);
    for &next in neighbours {
        if !model.seen.contains(&next) && !model.frontier.contains(&next) {
            model.frontier.push(next);
        }
    }
    Ok(visits + 1)
}

// ---------------------------------------------------------------------------
// 3. Strictness
// ---------------------------------------------------------------------------

/// An output with a field the model does not have.
#[derive(Clone, Debug, Serialize)]
struct Scored {
    is_clear: bool,
    clarity_score: f32,
}

#[node(updates_context)]
async fn score_clarity(_definition: String, model: &mut Refinement) -> Scored {
    // Undone with the rest when the merge is refused.
    model.iteration_count += 1;
    Scored {
        is_clear: true,
        clarity_score: 0.9,
    }
}

/// The model error behind a failed run, if that is what failed it.
fn update_error(err: &RunError) -> Option<&ModelUpdateError> {
    err.cause().downcast_ref::<ModelUpdateError>()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let graph = Graph(BTreeMap::from([
        (1, vec![2, 3]),
        (2, vec![4]),
        (3, vec![4, 5]),
        (4, vec![1]),
        (5, vec![]),
        // An island the search never reaches.
        (6, vec![7]),
        (7, vec![6]),
    ]));
    let runner = StromaRunner::quick().with_context(Context::new().with(graph));

    // Each iteration works on a copy of the model, merged back when it succeeds,
    // so `iteration_count` accumulates and `is_clear` can end the loop.
    let refinement = loop_until(
        pipeline![assess_and_refine, next_round],
        |_, ctx: &Refinement| ctx.is_clear,
    )
    .max_loops(MAX_ITERATIONS)
    .named("refinement");

    println!("== 1. iterative refinement ==");
    // Partial data: the fields not given take their defaults.
    let model = Refinement::from_initial(json!({"current_definition": "ambiguous definition"}))?;
    let result = runner
        .run_with_model(&refinement, "ambiguous definition".to_string(), model)
        .await?;
    let ctx = &result.model;
    println!("output:           {:?}", result.final_state);
    println!(
        "model:            is_clear={} iteration_count={} current_definition={:?}",
        ctx.is_clear, ctx.iteration_count, ctx.current_definition
    );
    println!("initial_input:    {}", ctx.initial_input);
    assert!(ctx.is_clear);
    assert_eq!(ctx.iteration_count, 3);
    assert_eq!(
        ctx.current_definition,
        "ambiguous definition (clarified) (clarified)"
    );
    assert_eq!(result.final_state, ctx.current_definition);
    assert_eq!(ctx.initial_input, json!("ambiguous definition"));

    println!();
    println!("== 2. discovery ==");
    let discovery = loop_until(explore, |_, ctx: &PipelineContext<Discovery>| {
        ctx.frontier.is_empty()
    })
    .max_loops(20)
    .named("discovery");
    let model = PipelineContext::<Discovery>::from_initial(json!({"frontier": [1]}))?;
    let result = runner.run_with_model(&discovery, 0, model).await?;
    let ctx = &result.model;
    println!("visits:           {}", result.final_state);
    println!("visit order:      {:?}", ctx.order);
    println!("seen:             {:?}", ctx.seen);
    assert_eq!(result.final_state, 5);
    assert_eq!(ctx.order, [1, 3, 5, 4, 2]);
    assert_eq!(ctx.seen, BTreeSet::from([1, 2, 3, 4, 5]));
    assert!(ctx.frontier.is_empty());

    println!();
    println!("== 3. strictness ==");
    let start = json!({"current_definition": "a draft", "iteration_count": 1});

    // A field the model lacks: the whole update is refused, naming the field,
    // and the node's direct change is undone too.
    let model = Refinement::from_initial(start.clone())?;
    let before = model.data.clone();
    let err = runner
        .run_with_model(&score_clarity, "a draft".to_string(), model)
        .await
        .expect_err("`clarity_score` is not a field of the model");
    println!("unknown field:    {err}");
    assert_eq!(err.node(), "score_clarity");
    assert!(matches!(
        update_error(&err),
        Some(ModelUpdateError::UnknownField { field, .. }) if field == "clarity_score"
    ));
    let after = err.into_model::<Refinement>().expect("the run's model");
    assert_eq!(after.data, before);

    // Validation: a fifth assessment is the last; a sixth would be over the
    // maximum, so the change is refused and the model stays as it was.
    let model = Refinement::from_initial(json!({
        "current_definition": "a draft",
        "iteration_count": MAX_ITERATIONS,
    }))?;
    let before = model.data.clone();
    let err = runner
        .run_with_model(&assess_and_refine, "a draft".to_string(), model)
        .await
        .expect_err("validation refuses a sixth iteration");
    println!("invalid update:   {err}");
    assert!(matches!(
        update_error(&err),
        Some(ModelUpdateError::Invalid { reason }) if reason.contains("iteration_count 6")
    ));
    let after = err.into_model::<Refinement>().expect("the run's model");
    assert_eq!(after.data, before);
    assert_eq!(after.iteration_count, MAX_ITERATIONS);

    // Initial data with a typo, or a value of the wrong type: refused, naming the key.
    let err = Refinement::from_initial(json!({"current_defintion": "a draft"}))
        .expect_err("a misspelt key");
    println!("typo:             {err}");
    assert_eq!(err.key(), Some("current_defintion"));
    let err = Refinement::from_initial(json!({"iteration_count": "three"}))
        .expect_err("a string where a number goes");
    println!("wrong type:       {err}");
    assert_eq!(err.key(), Some("iteration_count"));

    println!();
    println!("== 4. live progress ==");
    // The same loop, streamed: events arrive as they happen, the result last.
    let model = Refinement::from_initial(json!({"current_definition": "ambiguous definition"}))?;
    let options = RunOptions::new().model(model);
    let mut events = std::pin::pin!(runner.stream_with(
        &refinement,
        "ambiguous definition".to_string(),
        options
    ));
    let mut iterations = Vec::new();
    let mut completed = 0;
    let mut finished = None;
    while let Some(item) = events.next().await {
        assert!(finished.is_none(), "the result comes last");
        match item {
            RunEvent::Event(Event::RunStarted { graph_id, .. }) => {
                println!("run started       {graph_id}");
            }
            RunEvent::Event(Event::LoopIteration {
                path, iteration, ..
            }) => {
                println!("loop {path} iteration {iteration}");
                iterations.push(iteration);
            }
            RunEvent::Event(Event::NodeStarted { path, .. }) => println!("  started   {path}"),
            RunEvent::Event(Event::NodeCompleted { path, duration, .. }) => {
                println!("  completed {path:<28} in {duration:.1?}");
                completed += 1;
            }
            RunEvent::Event(Event::NodeFailed { path, error, .. }) => {
                println!("  failed    {path}: {error}");
            }
            RunEvent::Event(Event::ScopeStarted { path, kind, .. }) => {
                println!("{kind} {path} started");
            }
            RunEvent::Event(Event::ScopeEnded { path, status, .. }) => {
                println!("{path} ended: {status:?}");
            }
            RunEvent::Event(other) => println!("  {other:?}"),
            RunEvent::Finished(result) => finished = Some(result?),
        }
    }
    let result = finished.expect("a streamed run ends with its result");
    println!(
        "finished          {:?} (is_clear={}, iteration_count={})",
        result.final_state, result.model.is_clear, result.model.iteration_count
    );
    assert_eq!(iterations, [1, 2, 3]);
    // Two nodes per iteration.
    assert_eq!(completed, 6);
    assert!(result.model.is_clear);
    assert_eq!(result.model.iteration_count, 3);
    Ok(())
}
