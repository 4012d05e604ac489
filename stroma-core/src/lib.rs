//! The Stroma runtime: runs typed async pipelines on tokio.
//!
//! Most users depend on the `stroma` crate, which re-exports everything here
//! together with the `#[node]` and `pipeline!` macros.

#![warn(missing_docs)]

mod combinators;
mod context;
mod durable;
mod engine;
mod error;
mod model;
mod node;
mod run;
mod session;
#[cfg(feature = "sqlite")]
mod sqlite_file;
mod store;
mod tree;

#[doc(hidden)]
pub mod __private;

pub use combinators::branches::{BranchesFailed, ForEach, KeepGoing, for_each};
pub use combinators::flow::{Flow, flow};
pub use combinators::looping::{
    LoopBody, LoopCapReached, LoopIterationFailed, LoopUntil, loop_until,
};
pub use combinators::modifiers::{Isolated, IsolatedModel, Snapshot};
pub use combinators::phase::{Phase, phase};
pub use combinators::retry::{RetriesExhausted, Retry, RetryInput, RetryPolicy};
#[doc(hidden)]
pub use combinators::route::{OutputFits, PayloadFits};
pub use combinators::timeout::{TimedOut, Timeout};
pub use context::context::{Combine, Context};
pub use context::execution::{ExecutionContext, MetadataTypeError};
pub use context::propagation::{
    NoExecutionContext, PhaseInfo, current_correlation_id, current_execution_context,
    current_handler, current_phase, current_session, current_tenant_id, current_user_id, in_phase,
    require_execution_context, spawn, spawn_detached,
};
pub use context::templates::AsTemplate;
pub use durable::{
    CHECKPOINT_FORMAT_VERSION, Durability, Durable, DurableError, Interrupt, Interrupted, Saveable,
    StoredRun,
};
pub use engine::failure::{NodeFailure, NodePanic};
pub use engine::state::Cx;
pub use error::{BoxError, ContextConflict, ContextError, NodeError};
pub use model::merge::{Append, MergeConflict, Mergeable, Reduce, Reducer, Sum};
pub use model::pipeline_context::{
    ExecutedCommandLog, HumanInteraction, ModelDataError, ModelValidate, PipelineContext,
};
pub use model::update::ModelUpdateError;
pub use node::named::{Named, NodeExt};
// The checks the macros place on what users write: at the root, not in
// `__private`, because rustc's errors name them by the path found here.
#[doc(hidden)]
pub use node::checks::{
    BranchFits, FirstNode, Follows, IsANode, IsNode, ModelSnapshot, ModelUpdate, NameByFirst,
    NameByType, NameProbe, NodeErrorType, NodeProbe, NodeVerdict, NotANode, ProbeNode,
    ProbeNotNode, SameType, UpdatableModel, branch_beside, is_node, link, merge_output,
    node_result, same_type, type_of,
};
pub use node::{Accepts, Node, Runnable, RunsWith};
pub use run::cancel::{AtCapacity, Cancelled};
pub use run::durable::DurableRuns;
pub use run::event::Event;
pub use run::future::{RunEvent, RunFuture, RunStream};
pub use run::handler::{Handler, HandlerPanicked};
pub use run::middleware::{
    BoxFuture, Middleware, MiddlewareError, Next, NodeCall, NodeTimings, TimingMiddleware,
};
pub use run::outcome::{RunError, RunResult};
pub use run::resume::ResumeOptions;
pub use run::run_context::RunContext;
pub use run::run_id::RunId;
pub use run::runner::{RunConfig, RunOptions, StromaRunner};
#[cfg(feature = "tower")]
pub use run::service::{RunRequest, StromaService};
pub use session::{
    Item, MemorySession, Session, SessionError, SessionErrorKind, SessionMode, SessionView,
};
#[cfg(feature = "sqlite")]
pub use session::{SCHEMA_VERSION, SqliteSession};
pub use store::{
    Checkpoint, Lease, MemoryStore, RunStatus, RunStore, RunSummary, StoreError, StoreErrorKind,
};
#[cfg(feature = "sqlite")]
pub use store::{RUN_STORE_SCHEMA_VERSION, SqliteStore};
pub use stroma_template::{Template, TemplateError, TemplateErrorKind};
pub use tokio_util::sync::CancellationToken;
pub use tree::record::{NodeRecord, NodeStatus};
pub use tree::{Diagram, PathError, ResultError, Scope, ScopeKind, ScopePath, Segment};
