//! What nodes read and write beside the model: [`Context`](context::Context)
//! (entries by type and name, in layers), the immutable
//! [`ExecutionContext`](execution::ExecutionContext), and its task-local
//! propagation.

#[allow(clippy::module_inception)]
pub(crate) mod context;
pub(crate) mod execution;
pub(crate) mod propagation;
pub(crate) mod scoped;
pub(crate) mod tasks;
pub(crate) mod templates;
pub(crate) mod type_map;

pub(crate) use context::{Context, Layer, SharedEntries};
