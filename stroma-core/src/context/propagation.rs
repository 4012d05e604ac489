//! Task-local propagation of the [`ExecutionContext`]: `ExecutionContext::scope`,
//! the `current_*` functions, and [`spawn`], which carries the context into a new task.

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::run::handler::Handler;
use crate::session::SessionView;

use crate::context::execution::ExecutionContext;
use crate::context::{Context, Layer};

/// The execution context of a scope, run, branch or loop iteration: the
/// innermost layer of its [`Context`], so that enrichment by a node reaches
/// every later node of the same scope, and the context and task-local cost
/// one allocation.
pub(crate) type ExecutionCell = Arc<Layer>;

tokio::task_local! {
    static CURRENT: ExecutionCell;
    /// Where the code now running stands beyond the execution context: its
    /// phase and the run's handler. Set only inside runs that have either.
    static SITUATION: Situation;
}

/// What [`current_phase`] and [`current_handler`] read.
#[derive(Clone, Default)]
pub(crate) struct Situation {
    pub(crate) phase: Option<PhaseInfo>,
    pub(crate) handler: Option<Arc<dyn Handler>>,
    pub(crate) session: Option<SessionView>,
}

/// The phase code runs in: its label and whether its nodes share a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseInfo {
    label: &'static str,
    share_context: bool,
}

impl PhaseInfo {
    pub(crate) fn new(label: &'static str, share_context: bool) -> Self {
        PhaseInfo {
            label,
            share_context,
        }
    }

    /// The phase's label.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Whether the phase's nodes share one accumulating session.
    pub fn share_context(&self) -> bool {
        self.share_context
    }
}

/// The phase the calling code runs in, if it runs inside a
/// [`phase`](crate::phase) (also in `parallel!` branches, `for_each` items
/// and tasks started with [`spawn`]); `None` elsewhere.
pub fn current_phase() -> Option<PhaseInfo> {
    SITUATION.try_with(|s| s.phase.clone()).ok().flatten()
}

/// Whether the calling code runs inside a [`phase`](crate::phase).
pub fn in_phase() -> bool {
    current_phase().is_some()
}

/// The handler of the run the calling code runs in, if it has one.
pub fn current_handler() -> Option<Arc<dyn Handler>> {
    SITUATION.try_with(|s| s.handler.clone()).ok().flatten()
}

/// The session view of the calling code, if it runs in a run that has a
/// session (or in a phase, or a modified node): what its nodes see as
/// [`Context::session`](crate::Context::session), task-locally.
pub fn current_session() -> Option<SessionView> {
    SITUATION.try_with(|s| s.session.clone()).ok().flatten()
}

impl Situation {
    /// Where the calling code stands now (nowhere outside a run that set one).
    pub(crate) fn here() -> Situation {
        SITUATION.try_with(Situation::clone).unwrap_or_default()
    }
}

/// Runs `future` standing in `situation`: a run with a handler or session,
/// a phase, a modified node.
pub(crate) fn within<F: Future>(
    situation: Situation,
    future: F,
) -> impl Future<Output = F::Output> {
    SITUATION.scope(situation, future)
}

fn read_cell(cell: &ExecutionCell) -> ExecutionContext {
    cell.execution()
}

/// Runs `future` with `cell` as the current execution context.
///
/// A plain function, not an `async fn`: an `async fn` would hold `future`
/// twice in its state (once as its argument, once inside the scope).
pub(crate) fn with_cell<F: Future>(
    cell: ExecutionCell,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT.scope(cell, future)
}

/// Runs `future` with `context`'s innermost layer as the current execution
/// context: inside a branch or loop iteration, [`current_execution_context`]
/// and friends see that layer's enrichments, not a sibling's.
pub(crate) fn with_context<F: Future>(
    context: &Context,
    future: F,
) -> impl Future<Output = F::Output> {
    with_cell(context.cell(), future)
}

impl ExecutionContext {
    /// Runs `future` with `context` as the current execution context: code
    /// inside reads it with [`current_execution_context`] and friends, and
    /// runs started inside inherit it.
    ///
    /// ```
    /// use stroma_core::{ExecutionContext, current_tenant_id};
    ///
    /// async fn load_orders() -> String {
    ///     // No parameter: the tenant comes from the enclosing scope.
    ///     format!("orders of {}", current_tenant_id().unwrap_or_default())
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let ctx = ExecutionContext::of([("tenant_id", "acme")]);
    /// assert_eq!(ExecutionContext::scope(ctx, load_orders()).await, "orders of acme");
    /// assert_eq!(current_tenant_id(), None, "outside the scope there is none");
    /// # });
    /// ```
    pub fn scope<F: Future>(
        context: ExecutionContext,
        future: F,
    ) -> impl Future<Output = F::Output> {
        // Inside a run, tasks started in the scope still belong to the run,
        // and are aborted with it.
        let home = CURRENT.try_with(Layer::task_home).ok().flatten();
        with_cell(Context::for_task(context, home.as_ref()).cell(), future)
    }
}

/// The current execution context, or `None` outside any run or scope.
pub fn current_execution_context() -> Option<ExecutionContext> {
    CURRENT.try_with(read_cell).ok()
}

/// The current execution context, or an error outside any run or scope.
pub fn require_execution_context() -> Result<ExecutionContext, NoExecutionContext> {
    current_execution_context().ok_or(NoExecutionContext)
}

/// The current tenant id, if there is a current context with one.
pub fn current_tenant_id() -> Option<String> {
    current_str(ExecutionContext::tenant_id)
}

/// The current user id, if there is a current context with one.
pub fn current_user_id() -> Option<String> {
    current_str(ExecutionContext::user_id)
}

/// The current correlation id: inside a run always set (the run id unless
/// the caller gave one).
pub fn current_correlation_id() -> Option<String> {
    current_str(ExecutionContext::correlation_id)
}

fn current_str(read: impl Fn(&ExecutionContext) -> Option<&str>) -> Option<String> {
    CURRENT
        .try_with(|cell| cell.read_execution(|context| read(context).map(str::to_owned)))
        .ok()
        .flatten()
}

/// [`require_execution_context`] was called outside any run or scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoExecutionContext;

impl std::fmt::Display for NoExecutionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "no execution context here: call this inside a run, inside \
             `ExecutionContext::scope`, or in a task started with `stroma::spawn`",
        )
    }
}

impl std::error::Error for NoExecutionContext {}

/// Spawns `future` on the tokio runtime, carrying the current execution
/// context (a snapshot of it) into the new task.
///
/// Plain `tokio::spawn` does not: tokio's task-locals stay with the task that
/// set them, so code in a task it starts sees no execution context.
///
/// Inside a run the task belongs to the run: if the run is cancelled, times
/// out or has its future dropped, the task is aborted with it (its handle
/// then gives a cancelled `JoinError`), as are the tasks it started in turn.
/// A run that ends by itself (completed or failed) leaves its tasks
/// running. Use [`spawn_detached`] for work that must outlive a cancelled run.
///
/// ```
/// use stroma_core::{ExecutionContext, current_tenant_id};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = ExecutionContext::of([("tenant_id", "acme")]);
/// let (carried, lost) = ExecutionContext::scope(ctx, async {
///     let carried = stroma_core::spawn(async { current_tenant_id() });
///     let lost = tokio::spawn(async { current_tenant_id() });
///     (carried.await.unwrap(), lost.await.unwrap())
/// })
/// .await;
/// assert_eq!(carried.as_deref(), Some("acme"));
/// assert_eq!(lost, None);
/// # });
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let home = CURRENT.try_with(Layer::task_home).ok().flatten();
    let task = spawn_carrying(future, home.as_ref());
    if let Some(home) = &home {
        home.tasks().register(task.abort_handle());
    }
    task
}

/// [`spawn`], but the task does not belong to the run it was started in: it
/// carries the execution context the same way, and runs on when the run is
/// cancelled. For work that must finish whatever happens to the run (an
/// audit record, a notification already promised).
pub fn spawn_detached<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_carrying(future, None)
}

/// Spawns `future` standing where the caller stands (execution context,
/// phase, handler, session), with `home` the run its own tasks belong to.
fn spawn_carrying<F>(future: F, home: Option<&Arc<Layer>>) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The phase and handler are carried too, where there are any.
    let situation = SITUATION.try_with(Situation::clone).ok();
    let future = async move {
        match situation {
            Some(situation) => SITUATION.scope(situation, future).await,
            None => future.await,
        }
    };
    match current_execution_context() {
        Some(context) => tokio::spawn(with_cell(Context::for_task(context, home).cell(), future)),
        None => tokio::spawn(future),
    }
}
