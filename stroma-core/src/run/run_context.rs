//! [`RunContext`]: what a run is, as middleware sees it.

use crate::context::execution::ExecutionContext;
use crate::run::run_id::RunId;

/// One run: the pipeline's name, the run's id and its execution context as
/// the run started.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunContext {
    /// The pipeline's name: set with [`NodeExt::named`](crate::NodeExt::named),
    /// otherwise derived from its nodes.
    pub graph_id: &'static str,
    /// The run's id.
    pub run_id: RunId,
    /// The execution context the run started with.
    pub context: ExecutionContext,
}
