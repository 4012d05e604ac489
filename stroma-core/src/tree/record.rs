//! What a run remembers of each node: [`NodeRecord`] and [`NodeStatus`].

use std::time::Duration;

use crate::tree::ScopePath;

/// Where a node stands in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeStatus {
    /// Not started yet (or, with records off, not known).
    Pending,
    /// Started and not finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error or a panic.
    Failed,
    /// Not run: the run ended before reaching it, or it was not chosen.
    Skipped,
    /// Stopped while it ran: the run was cancelled, or ran past its time limit.
    Cancelled,
}

/// One node's execution in a run, in the order nodes finished: the flat
/// view of the run tree's nodes.
///
/// Kept when records are on (the default; see [`RunConfig::records`](crate::RunConfig::records)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeRecord {
    /// The node's id.
    pub name: &'static str,
    /// Its path in the run.
    pub path: ScopePath,
    /// How it ended.
    pub status: NodeStatus,
    /// Wall-clock time from its start to its end.
    pub duration: Duration,
}
