//! Durable runs: each node's completion saved in a [`RunStore`](crate::RunStore),
//! so a run that failed, crashed or stopped to ask a person resumes where it
//! stopped, in this process or another.
//!
//! # How a run resumes
//!
//! A durable run saves a *journal*: a start record (the input, the model, the
//! execution metadata and the pipeline's shape), then one record per node that
//! completes (its path, its output, and the model after it if the node may
//! change the model), one per journaled [`step`](crate::Context::step), and
//! an end record (completed, failed, or interrupted with its questions). A
//! resume runs the pipeline again from its start: every node whose path is in
//! the journal is not run but gives its saved output (and model) back, so
//! loops count their iterations again, `parallel!` branches and `for_each`
//! items that finished are skipped, and the first node not in the journal is
//! the first to run. Loop conditions and reducers must therefore decide from
//! the outputs and the model only (they run again on resume).
//!
//! # What a checkpoint holds
//!
//! - the run id, the pipeline's fingerprint (a hash of each node's path, kind
//!   and output type name; the listing itself is in the start record);
//! - the input, the starting model and the execution metadata;
//! - each completed node's path and output (the outputs later nodes read with
//!   `ctx.result` and `$hier{}` come back with them), and the model after
//!   each node that may change it (a node taking `&mut M`, or
//!   `updates_context`); loop counters, finished `for_each` items and
//!   finished `parallel!` branches follow from these paths;
//! - the context entries each node wrote with `insert_saved`;
//! - journaled steps, questions and answers.
//!
//! Per-run variables (`RunOptions::var`) are saved as JSON: on resume,
//! templates (`$var{..}`) read them as before; a typed read
//! (`ctx.var::<T>`) needs the value given again with [`ResumeOptions::var`](crate::ResumeOptions::var)
//! (a saved variable comes back as a `serde_json::Value`). Runner and flow
//! variables are declared by the code, so they are there again.
//!
//! Context entries: those a node writes with
//! [`Context::insert_saved`](crate::Context::insert_saved) are saved with
//! its checkpoint and read back with
//! [`Context::get_saved`](crate::Context::get_saved) after a resume. Those
//! written with the other `insert` methods are not saved (they need not be
//! `Serialize`, and a node that is not run again is not there to say their
//! type).
//!
//! Not saved: the model of a node run `.isolated()` with a model of its own
//! (it is thrown away after that node anyway).
//!
pub(crate) mod bounds;
pub(crate) mod context;
pub(crate) mod interrupt;
pub(crate) mod journal;
pub(crate) mod run;

use std::hash::Hasher;

pub use bounds::{Durable, Saveable};
pub use interrupt::{DurableError, Interrupt, Interrupted};
pub use journal::CHECKPOINT_FORMAT_VERSION;
pub use run::Durability;

use crate::store::RunSummary;

/// A durable run as its store holds it: status, what completed, what it asks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredRun {
    /// The run's id, status, times and parent.
    pub summary: RunSummary,
    /// The pipeline's id.
    pub pipeline: String,
    /// The paths of the nodes that completed, in order.
    pub completed: Vec<String>,
    /// For each retried node (`.retry(..)`) that began an attempt, its path
    /// and the number of the last attempt it began, in the order they
    /// first began: an attempt cut off by a crash is counted.
    pub attempts: Vec<(String, u32)>,
    /// The questions it waits on, if it is interrupted.
    pub interrupts: Vec<Interrupt>,
    /// Its error, if it failed.
    pub error: Option<String>,
}

impl StoredRun {
    /// The completed nodes as an indented tree, one line per scope and
    /// node: what a listing shows of each run.
    pub fn tree(&self) -> String {
        let mut out = String::new();
        let mut open: Vec<String> = Vec::new();
        for path in &self.completed {
            // Keys never hold a `.`, so the segments are what lies between them.
            let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
            let common = open
                .iter()
                .zip(&segments)
                .take_while(|(a, b)| a == b)
                .count();
            open.truncate(common);
            for segment in &segments[common..] {
                out.push_str(&"  ".repeat(open.len()));
                out.push_str(segment);
                out.push('\n');
                open.push(segment.clone());
            }
        }
        out
    }
}

/// The fingerprint of a pipeline whose shape listing is `listing`: a
/// stable hash (FNV-1a, 64 bits) of its lines, in hex.
pub(crate) fn fingerprint(listing: &[String]) -> String {
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    for line in listing {
        hash.write(line.as_bytes());
        hash.write(b"\n");
    }
    format!("{:016x}", hash.finish())
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// The first line where two shape listings differ: (saved, given).
pub(crate) fn first_difference(
    saved: &[String],
    given: &[String],
) -> Option<(Option<String>, Option<String>)> {
    let len = saved.len().max(given.len());
    (0..len).find_map(|i| {
        let (a, b) = (saved.get(i), given.get(i));
        (a != b).then(|| (a.cloned(), b.cloned()))
    })
}
