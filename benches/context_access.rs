//! Reading the context, beside the plain-Rust equivalent of each read.
//!
//! `context/get`: `ctx.get::<T>()` beside a `HashMap<TypeId, Arc<dyn Any>>`
//! lookup, downcast and `Arc` clone.
//!
//! `context/get_named`: `ctx.get_named::<T>(name)` beside a
//! `HashMap<String, Arc<dyn Any>>` lookup, downcast and `Arc` clone.
//!
//! Both on a run's context (what a node is given): with the value written in
//! the run's own layer, with it only in the runner's layer and nothing
//! written in the run, and with it in the runner's layer while the run has
//! written other values (the run's layer is searched first and misses).
//!
//! `context/execution`: `ctx.execution()` on a run's context beside an `Arc`
//! clone.
//!
//! `context/current_tenant_id`: `current_tenant_id()` inside
//! `ExecutionContext::scope` beside a `thread_local!` read and `String`
//! clone. The scope is entered once per sample, outside the timed loop.
//!
//! Every figure is time per call.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use stroma::prelude::*;
use stroma::{Runnable, current_tenant_id};
use tokio::runtime::{Builder, Runtime};

/// The value read by type.
#[derive(Debug, PartialEq)]
struct ApiKey(&'static str);

/// The value read by name.
const NAME: &str = "max_tokens";
const TENANT: &str = "acme";

/// Other entries, so that no map holds a single key.
struct Filler<const N: usize>;

/// What the run writes when the read value is not its own.
struct Scratch;

type AnyMap<K> = HashMap<K, Arc<dyn Any + Send + Sync>>;

thread_local! {
    static THREAD_TENANT: RefCell<Option<String>> = const { RefCell::new(None) };
}

#[node]
async fn pass(x: u64) -> u64 {
    x
}

fn trivial() -> impl Runnable<(), Input = u64, Output = u64> {
    pipeline![pass]
}

fn fillers() -> Context {
    Context::new()
        .with(Filler::<0>)
        .with(Filler::<1>)
        .with(Filler::<2>)
        .with_named("filler_0", 0_u8)
        .with_named("filler_1", 1_u8)
        .with_named("filler_2", 2_u8)
}

/// The context a run of `runner` ends with: the runner's entries under the
/// run's own layer, as a node sees it.
fn run_context(rt: &Runtime, runner: &StromaRunner) -> Context {
    rt.block_on(runner.run(&trivial(), 0))
        .expect("a trivial node never fails")
        .context
}

/// The run's context with the values read: (in the run's layer, in the
/// runner's layer, in the runner's layer with the run's layer not empty).
fn contexts(rt: &Runtime) -> [(&'static str, Context); 3] {
    let lean = RunConfig::default().records(false);
    let plain = StromaRunner::new(lean.clone().with_context(fillers()));
    let holding =
        StromaRunner::new(lean.with_context(fillers().with(ApiKey("k")).with_named(NAME, 500_u32)));

    let in_run = run_context(rt, &plain);
    in_run.insert(ApiKey("k"));
    in_run.insert_named(NAME, 500_u32);
    let in_runner = run_context(rt, &holding);
    let in_runner_written = run_context(rt, &holding);
    in_runner_written.insert(Scratch);
    in_runner_written.insert_named("scratch", Scratch);
    [
        ("stroma run layer", in_run),
        ("stroma runner layer", in_runner),
        ("stroma runner layer, run written", in_runner_written),
    ]
}

/// The baseline maps: the same entries as the contexts, in plain `HashMap`s.
fn baseline_maps() -> (AnyMap<TypeId>, AnyMap<String>) {
    let mut by_type: AnyMap<TypeId> = HashMap::new();
    by_type.insert(TypeId::of::<Filler<0>>(), Arc::new(Filler::<0>));
    by_type.insert(TypeId::of::<Filler<1>>(), Arc::new(Filler::<1>));
    by_type.insert(TypeId::of::<Filler<2>>(), Arc::new(Filler::<2>));
    by_type.insert(TypeId::of::<ApiKey>(), Arc::new(ApiKey("k")));
    let mut by_name: AnyMap<String> = HashMap::new();
    for (i, name) in ["filler_0", "filler_1", "filler_2"].into_iter().enumerate() {
        by_name.insert(name.to_owned(), Arc::new(i as u8));
    }
    by_name.insert(NAME.to_owned(), Arc::new(500_u32));
    (by_type, by_name)
}

fn map_get<T: Send + Sync + 'static>(map: &AnyMap<TypeId>) -> Option<Arc<T>> {
    map.get(&TypeId::of::<T>())
        .and_then(|value| Arc::clone(value).downcast::<T>().ok())
}

fn map_get_named<T: Send + Sync + 'static>(map: &AnyMap<String>, name: &str) -> Option<Arc<T>> {
    map.get(name)
        .and_then(|value| Arc::clone(value).downcast::<T>().ok())
}

fn thread_tenant() -> Option<String> {
    THREAD_TENANT.with_borrow(Clone::clone)
}

/// Times `iters` calls of `read`; what it returns is dropped inside the
/// loop, as a caller would.
fn bench_sync<R>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, read: impl Fn() -> R) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(read());
            }
            start.elapsed()
        })
    });
}

/// Times `iters` calls of `read` polled inside `ExecutionContext::scope`:
/// the scope is entered before the clock starts.
fn bench_scoped<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    scope: &ExecutionContext,
    read: impl Fn() -> R,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            rt.block_on(ExecutionContext::scope(scope.clone(), async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(read());
                }
                start.elapsed()
            }))
        })
    });
}

fn configured<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group
}

fn context_access(c: &mut Criterion) {
    let rt = Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let contexts = contexts(&rt);
    let (by_type, by_name) = baseline_maps();
    let scope = ExecutionContext::of([(ExecutionContext::TENANT_ID, TENANT), ("user_id", "u-42")]);
    THREAD_TENANT.set(Some(TENANT.to_owned()));

    // Checked once, outside the timed loops: every read finds its value.
    for (_, ctx) in &contexts {
        assert_eq!(*ctx.get::<ApiKey>().expect("present"), ApiKey("k"));
        assert_eq!(*ctx.get_named::<u32>(NAME).expect("present"), 500);
        assert!(ctx.execution().correlation_id().is_some());
    }
    assert_eq!(*map_get::<ApiKey>(&by_type).expect("present"), ApiKey("k"));
    assert_eq!(*map_get_named::<u32>(&by_name, NAME).expect("present"), 500);
    let tenant = rt.block_on(ExecutionContext::scope(scope.clone(), async {
        current_tenant_id()
    }));
    assert_eq!(tenant.as_deref(), Some(TENANT));
    assert_eq!(thread_tenant().as_deref(), Some(TENANT));

    let mut group = configured(c, "context/get");
    bench_sync(&mut group, "HashMap<TypeId, Arc<dyn Any>>", || {
        map_get::<ApiKey>(black_box(&by_type))
    });
    for (id, ctx) in &contexts {
        bench_sync(&mut group, id, || black_box(ctx).get::<ApiKey>());
    }
    group.finish();

    let mut group = configured(c, "context/get_named");
    bench_sync(&mut group, "HashMap<String, Arc<dyn Any>>", || {
        map_get_named::<u32>(black_box(&by_name), black_box(NAME))
    });
    for (id, ctx) in &contexts {
        bench_sync(&mut group, id, || {
            black_box(ctx).get_named::<u32>(black_box(NAME))
        });
    }
    group.finish();

    let mut group = configured(c, "context/execution");
    let shared = Arc::new(scope.clone());
    bench_sync(&mut group, "Arc clone", || Arc::clone(black_box(&shared)));
    let (_, run_ctx) = &contexts[0];
    bench_sync(&mut group, "stroma", || black_box(run_ctx).execution());
    group.finish();

    let mut group = configured(c, "context/current_tenant_id");
    bench_sync(&mut group, "thread_local String clone", thread_tenant);
    bench_scoped(
        &mut group,
        &rt,
        "stroma in scope",
        &scope,
        current_tenant_id,
    );
    group.finish();
}

criterion_group!(benches, context_access);
criterion_main!(benches);
