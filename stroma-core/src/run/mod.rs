//! Starting and finishing runs: the runner and its configuration, what a
//! run returns, the events it reports, middleware around it, its identity,
//! and a pipeline as a tower service.

pub(crate) mod cancel;
pub(crate) mod durable;
pub(crate) mod event;
pub(crate) mod future;
pub(crate) mod handler;
pub(crate) mod middleware;
pub(crate) mod model_slot;
pub(crate) mod outcome;
pub(crate) mod resume;
pub(crate) mod run_context;
pub(crate) mod run_id;
pub(crate) mod runner;
#[cfg(feature = "tower")]
pub(crate) mod service;
