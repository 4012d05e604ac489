//! The typed run model: `PipelineContext` and its checks, the merge of
//! branches' copies, and merging a node's output into the model.

pub(crate) mod merge;
pub(crate) mod pipeline_context;
pub(crate) mod update;
