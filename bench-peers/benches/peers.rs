//! Stroma beside its peers on a chain of N trivial nodes, N = 10 and N = 100.
//!
//! Every case in `peers/N` runs the same node, `inc` (`x + 1`), N times:
//! - `hand-written`: `inc` awaited N times in a row, the limit;
//! - `stroma lean`: `pipeline![]` on a runner with records off;
//! - `stroma default`: the same pipeline on a runner with the default
//!   configuration (records on);
//! - `tower`: a `ServiceFn` followed by N - 1 `and_then` steps, each called
//!   through `oneshot`, as a tower user would call a service once;
//! - `boxed`: a `Vec` of boxed `Fn`s returning boxed futures, awaited in a loop,
//!   the usual dynamic runner;
//! - `graph-flow`: N tasks joined by edges, run by `Graph::execute_session` on
//!   a fresh session whose JSON context holds `x`.
//!
//! Throughput is N elements, so criterion reports time per node beside time
//! per run.

// The 10-deep tower `and_then` future nests past the default limit (128) when
// laid out, and past 256 when checked for `Unpin`.
#![recursion_limit = "512"]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::{BoxFuture, FutureExt};
use graph_flow::{GraphBuilder, NextAction, Session, Task, TaskResult};
use stroma::Runnable;
use stroma::prelude::*;
use tokio::runtime::{Builder, Runtime};
use tower::{Service, ServiceExt, service_fn};

#[path = "../../benches/support/mod.rs"]
mod support;
use support::bench_async;

#[path = "../../benches/support/chains.rs"]
mod chains;
use chains::{hand_10, hand_100, inc, pipeline_10, pipeline_100};

/// `inc` as a tower step: services and `and_then` steps return `Result`s.
async fn inc_ok(x: u64) -> Result<u64, Infallible> {
    Ok(inc::call(x).await)
}

/// The tower step standing for one listed node.
macro_rules! inc_ok {
    ($node:ident) => {
        inc_ok
    };
}

/// Defines `$tower`, a `ServiceFn` followed by one `and_then` step per further
/// listed node, so it is as deep as the list is long.
macro_rules! tower_chain {
    ($tower:ident: $first:ident $(, $rest:ident)* $(,)?) => {
        fn $tower() -> impl Service<u64, Response = u64, Error = Infallible> + Clone {
            service_fn(inc_ok!($first)) $(.and_then(inc_ok!($rest)))*
        }
    };
}

tower_chain!(tower_10: inc, inc, inc, inc, inc, inc, inc, inc, inc, inc);

// No tower chain at N = 100: the flat 100-deep `and_then` type did not finish
// compiling (stopped after 5 minutes at 15.7 GB of rustc memory).

/// The whole `RunResult` is dropped inside the timed loop: freeing the records
/// is part of what a run costs.
async fn run_stroma<P>(runner: &StromaRunner, pipeline: &P, x: u64) -> u64
where
    P: Runnable<(), Input = u64, Output = u64>,
{
    let result = runner.run(pipeline, x).await;
    result.map_or(0, |result| result.final_state)
}

/// One step of the dynamic runner.
type Step = Box<dyn Fn(u64) -> BoxFuture<'static, u64>>;

fn boxed_chain(n: u64) -> Vec<Step> {
    (0..n)
        .map(|_| Box::new(|x| inc::call(x).boxed()) as Step)
        .collect()
}

async fn run_boxed(steps: &[Step], mut x: u64) -> u64 {
    for step in steps {
        x = step(x).await;
    }
    x
}

/// `inc` as a graph-flow task: reads `x` from the context and writes `x + 1`
/// back, then hands over to the next task in the same call, or ends.
struct IncTask {
    id: String,
    next: NextAction,
}

#[async_trait]
impl Task for IncTask {
    fn id(&self) -> &str {
        &self.id
    }

    async fn run(&self, context: graph_flow::Context) -> graph_flow::Result<TaskResult> {
        let x: u64 = context
            .get("x")
            .ok_or_else(|| graph_flow::GraphError::ContextError("no x".into()))?;
        context.set("x", inc::call(x).await)?;
        Ok(TaskResult::new(None, self.next.clone()))
    }
}

fn flow_graph(n: u64) -> graph_flow::Graph {
    let id = |i: u64| format!("inc{i}");
    let mut builder = GraphBuilder::new("chain");
    for i in 0..n {
        let next = if i + 1 == n {
            NextAction::End
        } else {
            NextAction::ContinueAndExecute
        };
        builder = builder.add_task(Arc::new(IncTask { id: id(i), next }));
        if i > 0 {
            builder = builder.add_edge(id(i - 1), id(i));
        }
    }
    builder
        .set_start_task(id(0))
        .build()
        .expect("a valid linear graph")
}

async fn run_flow(graph: &graph_flow::Graph, x: u64) -> u64 {
    let mut session = Session::new_from_task("run".to_string(), "inc0");
    session.context.set("x", x).expect("a u64 serializes");
    graph
        .execute_session(&mut session)
        .await
        .expect("trivial tasks never fail");
    session.context.get("x").expect("x is set")
}

/// Opens `peers/{n}` and times every case but tower in it, which the caller
/// adds where it has a chain of that depth.
fn group<'c, H, HFut, P>(
    c: &'c mut Criterion,
    rt: &Runtime,
    n: u64,
    hand: H,
    pipeline: P,
) -> BenchmarkGroup<'c, WallTime>
where
    H: Fn(u64) -> HFut,
    HFut: Future<Output = u64>,
    P: Runnable<(), Input = u64, Output = u64>,
{
    let lean = StromaRunner::new(RunConfig::default().records(false));
    let default = StromaRunner::new(RunConfig::default());
    let steps = boxed_chain(n);
    let graph = flow_graph(n);

    // Checked once, outside the timed loops: all compute the same thing.
    rt.block_on(async {
        assert_eq!(hand(0).await, n);
        assert_eq!(run_stroma(&lean, &pipeline, 0).await, n);
        assert_eq!(run_stroma(&default, &pipeline, 0).await, n);
        assert_eq!(run_boxed(&steps, 0).await, n);
        assert_eq!(run_flow(&graph, 0).await, n);
    });

    let mut group = c.benchmark_group(format!("peers/{n}"));
    group
        .throughput(Throughput::Elements(n))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    bench_async(&mut group, rt, "hand-written", || hand(black_box(0)));
    bench_async(&mut group, rt, "stroma lean", || {
        run_stroma(&lean, &pipeline, black_box(0))
    });
    bench_async(&mut group, rt, "stroma default", || {
        run_stroma(&default, &pipeline, black_box(0))
    });
    bench_async(&mut group, rt, "boxed", || run_boxed(&steps, black_box(0)));
    bench_async(&mut group, rt, "graph-flow", || {
        run_flow(&graph, black_box(0))
    });
    group
}

fn bench_tower<T>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, n: u64, tower: T)
where
    T: Service<u64, Response = u64, Error = Infallible> + Clone,
{
    // The chain is zero-sized when its steps are, so a clone per call is free.
    let run = |x| {
        let call = tower.clone().oneshot(x);
        async move { call.await.unwrap_or_else(|never| match never {}) }
    };
    assert_eq!(rt.block_on(run(0)), n);
    bench_async(group, rt, "tower", || run(black_box(0)));
}

fn peers(c: &mut Criterion) {
    // graph-flow puts a timeout around every task, so the runtime needs a timer.
    let rt = Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let mut peers_10 = group(c, &rt, 10, hand_10, pipeline_10());
    bench_tower(&mut peers_10, &rt, 10, tower_10());
    peers_10.finish();
    group(c, &rt, 100, hand_100, pipeline_100()).finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
