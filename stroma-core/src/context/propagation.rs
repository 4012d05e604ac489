//! Task-local propagation of the [`ExecutionContext`]: `ExecutionContext::scope`,
//! the `current_*` functions, and [`spawn`], which carries the context into a new task.

use std::future::Future;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::context::execution::ExecutionContext;
use crate::context::{Context, Layer};

/// The execution context of a scope, run, branch or loop iteration: the
/// innermost layer of its [`Context`], so that enrichment by a node reaches
/// every later node of the same scope, and the context and task-local cost
/// one allocation.
pub(crate) type ExecutionCell = Arc<Layer>;

tokio::task_local! {
    static CURRENT: ExecutionCell;
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
        with_cell(Context::for_scope(context).cell(), future)
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
    match current_execution_context() {
        Some(context) => tokio::spawn(ExecutionContext::scope(context, future)),
        None => tokio::spawn(future),
    }
}
