//! The Stroma runtime: runs typed async pipelines on tokio.
//!
//! Most users depend on the `stroma` crate, which re-exports everything here
//! together with the `#[node]` and `pipeline!` macros.

#![warn(missing_docs)]

mod context;
mod error;
mod failure;
mod node;
mod outcome;
mod record;
mod run_id;
mod runner;
mod type_map;

#[doc(hidden)]
pub mod __private;

pub use context::Context;
pub use error::{BoxError, ContextError, NodeError};
pub use failure::{NodeFailure, NodePanic};
pub use node::{Accepts, Cx, Node, RunsWith};
pub use outcome::{RunError, RunResult};
pub use record::{NodeRecord, NodeStatus};
pub use run_id::RunId;
pub use runner::{RunConfig, StromaRunner};
