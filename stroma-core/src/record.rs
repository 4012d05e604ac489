//! What a run remembers of each node: [`NodeRecord`] and [`NodeStatus`].

use std::time::Duration;

/// Where a node stands in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeStatus {
    /// Not started yet.
    Pending,
    /// Started and not finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error or a panic.
    Failed,
    /// Not run, on purpose.
    Skipped,
}

/// One node's execution in a run, in the order nodes finished.
///
/// Kept when records are on (the default; see [`RunConfig::records`](crate::RunConfig::records)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's name.
    pub name: &'static str,
    /// How it ended.
    pub status: NodeStatus,
    /// Wall-clock time from its start to its end.
    pub duration: Duration,
}
