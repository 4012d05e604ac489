//! Many concurrent runs: 100,000 runs of a 10-node chain of trivial nodes,
//! each spawned with `tokio::spawn` on the multi-thread runtime, all spawned
//! first and then awaited, beside the same hand-written chain spawned the
//! same way.
//!
//! Stroma runs on a runner with records off and nothing else configured.
//! Each mode runs in its own child process (this binary, re-executed with a
//! mode argument), so that its peak RSS (`VmHWM`) is its own. A baseline
//! child builds the same runtime and spawns nothing; its peak is subtracted
//! before dividing by the number of runs, so the runtime's own memory is not
//! counted. Each child repeats the 100,000 runs a few times and reports the
//! median throughput; the peak covers all repetitions. The size of one
//! task's future is reported beside them: a task's memory lives until it is
//! awaited, so it is most of the peak per run.
//!
//! Run with `cargo bench --bench scale`. Without `--bench` (as under
//! `cargo test --all-targets`) it does a small run in-process and checks the
//! results only.

use std::env;
use std::fs;
use std::process::Command;
use std::time::Instant;

use stroma::Runnable;
use stroma::prelude::*;
use tokio::runtime::{Builder, Runtime};

const RUNS: u64 = 100_000;
const ROUNDS: usize = 5;
const SMOKE_RUNS: u64 = 1_000;
const NODES: u64 = 10;
/// Marks a child process; followed by the mode.
const CHILD: &str = "--scale-child";

#[path = "support/chains.rs"]
mod chains;
use chains::{hand_10, pipeline_10};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Baseline,
    Hand,
    Stroma,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Baseline, Mode::Hand, Mode::Stroma];

    fn arg(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Hand => "hand-written",
            Mode::Stroma => "stroma",
        }
    }

    fn parse(arg: &str) -> Mode {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.arg() == arg)
            .unwrap_or_else(|| panic!("unknown mode `{arg}`"))
    }
}

/// What a child reports.
struct Figures {
    runs_per_s: f64,
    peak_rss: u64,
    future_size: usize,
}

impl Figures {
    fn to_line(&self) -> String {
        format!("{} {} {}", self.runs_per_s, self.peak_rss, self.future_size)
    }

    fn from_line(line: &str) -> Figures {
        let mut fields = line.split_whitespace();
        let mut next = || fields.next().expect("three fields");
        Figures {
            runs_per_s: next().parse().expect("a number"),
            peak_rss: next().parse().expect("a number"),
            future_size: next().parse().expect("a number"),
        }
    }
}

fn runtime() -> Runtime {
    Builder::new_multi_thread()
        .build()
        .expect("a tokio runtime")
}

/// The process's peak resident set size in bytes, from `/proc/self/status`.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("a VmHWM line in kB");
    kib * 1024
}

/// One run of the stroma pipeline, to spawn.
async fn stroma_10<P>(runner: &StromaRunner, pipeline: &P, x: u64) -> u64
where
    P: Runnable<(), Input = u64, Output = u64>,
{
    runner
        .run(pipeline, x)
        .await
        .expect("trivial nodes never fail")
        .final_state
}

/// Spawns `runs` tasks of `run` and then awaits them all, `rounds` times.
/// Returns the median rate in runs per second and the size of one task's
/// future. Panics if any result is wrong.
fn measure<F>(rt: &Runtime, rounds: usize, runs: u64, run: impl Fn(u64) -> F) -> (f64, usize)
where
    F: Future<Output = u64> + Send + 'static,
{
    let future_size = size_of_val(&run(0));
    let mut rates: Vec<f64> = (0..rounds)
        .map(|_| {
            rt.block_on(async {
                let start = Instant::now();
                let handles: Vec<_> = (0..runs).map(|x| tokio::spawn(run(x))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.expect("the task completes");
                }
                let elapsed = start.elapsed();
                assert_eq!(sum, runs * (runs - 1) / 2 + runs * NODES);
                runs as f64 / elapsed.as_secs_f64()
            })
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[rounds / 2], future_size)
}

/// Measures `mode`: `rounds` rounds of `runs` runs on `rt`.
fn measure_mode(rt: &Runtime, mode: Mode, rounds: usize, runs: u64) -> (f64, usize) {
    match mode {
        Mode::Baseline => {
            // Starts the workers, as the other modes do by spawning.
            rt.block_on(rt.spawn(async {})).expect("the task completes");
            (0.0, 0)
        }
        Mode::Hand => measure(rt, rounds, runs, hand_10),
        Mode::Stroma => {
            // Shared by every task without reference counting, as the
            // hand-written chain shares nothing: the tasks differ only in
            // what a run is.
            let runner: &'static StromaRunner = Box::leak(Box::new(StromaRunner::new(
                RunConfig::default().records(false),
            )));
            let pipeline = &*Box::leak(Box::new(pipeline_10()));
            measure(rt, rounds, runs, |x| stroma_10(runner, pipeline, x))
        }
    }
}

fn child(mode: Mode) -> Figures {
    let rt = runtime();
    let (runs_per_s, future_size) = measure_mode(&rt, mode, ROUNDS, RUNS);
    Figures {
        runs_per_s,
        peak_rss: peak_rss(),
        future_size,
    }
}

fn run_child(mode: Mode) -> Figures {
    let exe = env::current_exe().expect("the bench binary's path");
    let output = Command::new(exe)
        .args([CHILD, mode.arg()])
        .output()
        .expect("the child process starts");
    assert!(
        output.status.success(),
        "the {} child failed: {}",
        mode.arg(),
        String::from_utf8_lossy(&output.stderr)
    );
    Figures::from_line(String::from_utf8_lossy(&output.stdout).trim())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn report() {
    let [baseline, hand, stroma] = Mode::ALL.map(run_child);
    let per_run = |f: &Figures| f.peak_rss.saturating_sub(baseline.peak_rss) as f64 / RUNS as f64;
    println!(
        "scale: {RUNS} concurrent runs of a {NODES}-node chain, tokio multi-thread runtime, \
         median of {ROUNDS} rounds"
    );
    println!(
        "{:<14} {:>12} {:>11} {:>22} {:>13}",
        "mode", "runs/s", "peak RSS", "peak RSS/run over base", "task future"
    );
    println!(
        "{:<14} {:>12} {:>11} {:>22} {:>13}",
        "baseline",
        "-",
        mib(baseline.peak_rss),
        "-",
        "-"
    );
    for (mode, figures) in [(Mode::Hand, &hand), (Mode::Stroma, &stroma)] {
        println!(
            "{:<14} {:>12.0} {:>11} {:>20.0} B {:>11} B",
            mode.arg(),
            figures.runs_per_s,
            mib(figures.peak_rss),
            per_run(figures),
            figures.future_size
        );
    }
    println!(
        "stroma / hand-written: throughput {:.2}x, peak RSS per run {:.2}x ({:+.0} B per run)",
        stroma.runs_per_s / hand.runs_per_s,
        per_run(&stroma) / per_run(&hand),
        per_run(&stroma) - per_run(&hand)
    );
}

/// Under `cargo test`: a small run of each mode, results checked, no timing.
fn smoke() {
    let rt = runtime();
    for mode in Mode::ALL {
        measure_mode(&rt, mode, 1, SMOKE_RUNS);
    }
    assert!(peak_rss() > 0);
}

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|arg| arg == CHILD) {
        let mode = Mode::parse(args.get(at + 1).expect("a mode after the child flag"));
        println!("{}", child(mode).to_line());
    } else if args.iter().any(|arg| arg == "--bench") {
        report();
    } else {
        smoke();
    }
}
