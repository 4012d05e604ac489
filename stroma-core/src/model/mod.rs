//! The typed run model: `PipelineContext` and its checks, the merge of
//! branches' copies, merging a node's output into the model, and the depth
//! limit every value is checked against before those walk it.

pub(crate) mod depth;
pub(crate) mod merge;
pub(crate) mod pipeline_context;
pub(crate) mod update;
