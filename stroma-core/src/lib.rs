//! The Stroma runtime: runs typed async pipelines on tokio.
//!
//! Most users depend on the `stroma` crate, which re-exports everything here
//! together with the `#[node]` and `pipeline!` macros.

#![warn(missing_docs)]

mod branches;
mod context;
mod error;
mod event;
mod execution;
mod failure;
mod looping;
mod merge;
mod middleware;
mod model;
mod named;
mod node;
mod outcome;
mod propagation;
mod record;
mod run_context;
mod run_id;
mod runner;
mod type_map;
mod update;

#[doc(hidden)]
pub mod __private;

pub use branches::{BranchOf, BranchesFailed, ForEach, for_each};
pub use context::{Combine, Context};
pub use error::{BoxError, ContextConflict, ContextError, NodeError};
pub use event::Event;
pub use execution::{ExecutionContext, MetadataTypeError};
pub use failure::{NodeFailure, NodePanic};
pub use looping::{LoopBody, LoopCapReached, LoopIterationFailed, LoopUntil, loop_until};
pub use merge::{Append, MergeConflict, Mergeable, Reduce, Reducer, Sum};
pub use middleware::{
    BoxFuture, Middleware, MiddlewareError, Next, NodeCall, NodeTimings, TimingMiddleware,
};
pub use model::{
    ExecutedCommandLog, HumanInteraction, ModelDataError, ModelValidate, PipelineContext,
};
pub use named::{Named, NodeExt};
pub use node::{Accepts, Cx, Node, RunsWith};
pub use outcome::{RunError, RunResult};
pub use propagation::{
    NoExecutionContext, current_correlation_id, current_execution_context, current_tenant_id,
    current_user_id, require_execution_context, spawn,
};
pub use record::{NodeRecord, NodeStatus};
pub use run_context::RunContext;
pub use run_id::RunId;
pub use runner::{RunConfig, RunEvent, RunOptions, StromaRunner};
pub use update::ModelUpdateError;
