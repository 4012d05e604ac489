//! [`StromaRunner`] and its [`RunConfig`]: what starts runs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tracing::Instrument;

use crate::context::{Context, SharedEntries};
use crate::failure::{NodeFailure, NodePanic};
use crate::node::{Cx, RunsWith};
use crate::outcome::{RunError, RunResult};
use crate::run_id::RunId;

/// How a runner runs: the context it shares with every run, and whether runs keep records.
///
/// ```
/// use stroma_core::{Context, RunConfig, StromaRunner};
///
/// let config = RunConfig::default()
///     .with_context(Context::new().with_named("max_tokens", 500_u32))
///     .records(false);
/// let runner = StromaRunner::new(config);
/// # let _ = runner;
/// ```
#[derive(Clone, Debug)]
pub struct RunConfig {
    context: Context,
    records: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            context: Context::new(),
            records: true,
        }
    }
}

impl RunConfig {
    /// Adds `context`'s entries to what every run sees (later entries win).
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = merge(&self.context, &context);
        self
    }

    /// Whether runs keep a [`NodeRecord`](crate::NodeRecord) per node (default: on).
    ///
    /// Off, a plain chain allocates nothing per node; on, one allocation per run
    /// holds all records.
    pub fn records(mut self, on: bool) -> Self {
        self.records = on;
        self
    }

    /// The context every run starts from.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether runs keep records.
    pub fn keeps_records(&self) -> bool {
        self.records
    }
}

fn merge(base: &Context, extra: &Context) -> Context {
    Context::from_shared(base.freeze_with(extra))
}

/// Runs pipelines. Cheap to clone; one runner runs any number of pipelines at
/// once, from any number of tasks.
///
/// ```
/// use stroma_core::{Context, StromaRunner};
///
/// struct ApiKey(&'static str);
/// let runner = StromaRunner::quick().with_context(Context::new().with(ApiKey("k")));
/// let for_another_task = runner.clone();
/// # let _ = for_another_task;
/// ```
#[derive(Clone)]
pub struct StromaRunner {
    inner: Arc<Shared>,
}

struct Shared {
    config: RunConfig,
    entries: SharedEntries,
}

impl std::fmt::Debug for StromaRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StromaRunner")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for StromaRunner {
    fn default() -> Self {
        Self::quick()
    }
}

impl StromaRunner {
    /// A runner with the default configuration: empty context, records on.
    pub fn quick() -> Self {
        Self::new(RunConfig::default())
    }

    /// A runner with `config`.
    pub fn new(config: RunConfig) -> Self {
        let entries = config.context.freeze();
        StromaRunner {
            inner: Arc::new(Shared { config, entries }),
        }
    }

    /// This runner with `context`'s entries added to what every run sees.
    pub fn with_context(self, context: Context) -> Self {
        Self::new(self.inner.config.clone().with_context(context))
    }

    /// The runner's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.inner.config
    }

    /// Runs `pipeline` on `input` with the unit model `()`.
    ///
    /// Errors with a [`RunError`] naming the node that failed or panicked; the
    /// runner stays usable either way.
    pub async fn run<P>(
        &self,
        pipeline: &P,
        input: P::Input,
    ) -> Result<RunResult<P::Output>, RunError>
    where
        P: RunsWith<()>,
    {
        self.run_with_model(pipeline, input, ()).await
    }

    /// Runs `pipeline` on `input` with `model` as the run's typed model; the
    /// model as the run leaves it is in [`RunResult::model`] (or, on failure,
    /// [`RunError::into_model`]).
    pub async fn run_with_model<P, M>(
        &self,
        pipeline: &P,
        input: P::Input,
        model: M,
    ) -> Result<RunResult<P::Output, M>, RunError>
    where
        P: RunsWith<M>,
        M: Send + 'static,
    {
        let run_id = RunId::new();
        let context = Context::for_run(&self.inner.entries);
        let mut cx = Cx::new(
            context,
            run_id,
            model,
            self.inner.config.records,
            pipeline.leaf_count(),
        );
        let span = tracing::info_span!("stroma.run", run_id = %run_id, pipeline = pipeline.name());
        // The pipeline future borrows `cx`; a panic inside drops it, so `cx`
        // still tells which node was running.
        let outcome = AssertUnwindSafe(pipeline.run(input, &mut cx))
            .catch_unwind()
            .instrument(span)
            .await;
        let failure = match outcome {
            Ok(Ok(final_state)) => {
                let (context, model, records) = cx.into_parts();
                return Ok(RunResult {
                    final_state,
                    run_id,
                    model,
                    records,
                    context,
                });
            }
            Ok(Err(failure)) => failure,
            Err(payload) => {
                cx.record_panic();
                let node = cx.current_node().unwrap_or(pipeline.name());
                NodeFailure::error(node, Box::new(NodePanic::from_payload(&*payload)))
            }
        };
        tracing::debug!(run_id = %run_id, node = failure.node(), "run failed");
        let (context, model, records) = cx.into_parts();
        Err(RunError::new(failure, run_id, records, context, model))
    }
}
