//! Stroma: typed async pipelines.
//!
//! Annotate `async fn`s with [`#[node]`](macro@node), chain them with
//! [`pipeline!`], and run them with a [`StromaRunner`]. The compiler checks
//! that every node's output type is the next node's input type.
//!
//! ```
//! use stroma::prelude::*;
//!
//! struct Greeting(&'static str);
//!
//! #[node]
//! async fn greet(name: String, ctx: &Context) -> Result<String, NodeError> {
//!     let greeting = ctx.require::<Greeting>()?;
//!     Ok(format!("{}, {name}!", greeting.0))
//! }
//!
//! #[node]
//! async fn measure(text: String) -> usize {
//!     text.len()
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let runner = StromaRunner::quick().with_context(Context::new().with(Greeting("Hello")));
//! let result = runner.run(&pipeline![greet, measure], "Ada".to_string()).await?;
//! assert_eq!(result.final_state, "Hello, Ada!".len());
//! # Ok::<(), RunError>(())
//! # }).unwrap();
//! ```
//!
//! See the README for a tour, and `examples/` for one program per capability.

#![warn(missing_docs)]

pub use stroma_core::*;

/// Turns an `async fn` into a pipeline node.
///
/// ```ignore
/// #[node(input = Url, output = Page)]              // or #[node]: both inferred
/// async fn fetch(state: Url, ctx: &Context) -> Result<Page, NodeError> { .. }
/// ```
///
/// The function becomes a zero-sized value of the same name that implements
/// [`Node`] and goes into [`pipeline!`]. What it is given depends on its
/// parameters:
///
/// | signature | the node gets |
/// | --- | --- |
/// | `async fn f(input: I) -> O` | its input only |
/// | `async fn f(input: I, ctx: &Context) -> O` | the run's shared [`Context`] |
/// | `async fn f(input: I, model: &mut M) -> O` (or `&M`) | the run's typed model |
/// | `async fn f(input: I, ctx: &Context, model: &mut M) -> O` | both |
///
/// `O` may be `Result<O, E>` for any `E` that converts into a boxed
/// `std::error::Error + Send + Sync` (such as [`NodeError`]). A node without a
/// model parameter runs with any model; one with a model runs only with that
/// model (see [`StromaRunner::run_with_model`]).
///
/// Arguments, all optional: `input = Type` and `output = Type` (checked
/// against the signature), `name = "..."` (shown in errors, records and spans;
/// default: the function's name), `updates_context` (see below), `crate =
/// path` (where the `stroma` crate is, for code that depends on it under
/// another name).
///
/// # Nodes that change the model
///
/// A node taking `&mut M` changes the run's model in place. If it fails
/// (error or panic), or the model's [`ModelValidate`] check refuses the
/// result, the model is put back as it was before the node; for that the
/// model must be `Clone`.
///
/// `#[node(updates_context)]` also merges the node's output into the model
/// by field name (the output serializes as a struct or map whose fields the
/// model has; the model is `Serialize` and `Deserialize`), all or nothing: a
/// field the model lacks, or a value of the wrong type, fails the node with
/// an error naming the field, and nothing is written. Such a node takes the
/// model (`&M` or `&mut M`), which names the model's type.
///
/// ```
/// use stroma::prelude::*;
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Review { is_clear: bool, rounds: u32 }
///
/// #[derive(Serialize)]
/// struct Verdict { is_clear: bool }
///
/// #[node(updates_context)]
/// async fn assess(text: String, review: &mut PipelineContext<Review>) -> Verdict {
///     review.rounds += 1;
///     Verdict { is_clear: text.contains("clear") }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let model = PipelineContext::new(Review::default());
/// let result = StromaRunner::quick()
///     .run_with_model(&assess, "clear enough".to_string(), model)
///     .await
///     .unwrap();
/// assert!(result.model.is_clear);
/// assert_eq!(result.model.rounds, 1);
/// assert_eq!(result.model.initial_input, "clear enough");
/// # });
/// ```
///
/// # Calling a node without a runner
///
/// The original function stays callable as `name::call`, so a unit test can
/// await it directly:
///
/// ```
/// use stroma::prelude::*;
///
/// #[node]
/// async fn double(n: u32) -> u32 {
///     n * 2
/// }
///
/// #[node]
/// async fn scaled(n: u32, ctx: &Context) -> Result<u32, NodeError> {
///     Ok(n * *ctx.get_named::<u32>("factor")?)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(double::call(21).await, 42);
/// let ctx = Context::new().with_named("factor", 3_u32);
/// assert_eq!(scaled::call(5, &ctx).await.unwrap(), 15);
/// # });
/// ```
pub use stroma_macros::node;

/// Chains nodes into one node: `pipeline![a, b, c]`.
///
/// The pipeline takes `a`'s input and gives `c`'s output, and is itself a
/// [`Node`], so pipelines nest: `pipeline![pipeline![a, b], c]`. Elements are
/// any expressions whose types implement [`Node`]. A link whose types differ
/// is a compile error pointing at the node that cannot take the previous
/// node's output; `pipeline![]` is a compile error too.
///
/// An unnamed pipeline is transparent in the run tree: its nodes belong to
/// the enclosing scope. Named (`pipeline![a, b].named("stage")`), it is a
/// scope of its own: its nodes' paths are `stage.a`, `stage.b`.
///
/// The pipeline is one generated struct holding its nodes and one async
/// body awaiting them in turn, compiled for what watches the run (nothing,
/// records, or spans, middleware and events), which the runner decides when
/// a run starts. It boxes and allocates nothing per node. Prefix the nodes
/// with `crate = path;` when the `stroma` crate is reachable under another path.
pub use stroma_macros::pipeline;

/// A [`Template`] checked when the crate compiles: `template!("Task: $var{task}")`.
///
/// The same parser as [`Template::parse`] runs at compile time, so a
/// template that does not parse is a compile error on the literal, with the
/// parser's message. The value is parsed once per process when first used.
///
/// ```
/// use stroma::prelude::*;
///
/// let greeting: Template = template!("Hello $var{name}");
/// assert_eq!(greeting.source(), "Hello $var{name}");
/// ```
pub use stroma_macros::template;

/// Runs nodes concurrently on one input: `parallel![a, b, c]`.
///
/// Every branch gets a clone of the input; all run concurrently in the same
/// task (no `'static` bound, no spawn); the output is the tuple of the
/// branches' outputs, in declaration order. Every branch takes the same
/// input type, which the compiler checks, pointing at a branch that does not.
///
/// Each branch works on its own copy of the run's model. When all succeed,
/// the copies are merged into the model field by field, in declaration order
/// whatever order the branches finished in: a field one branch changed takes
/// its value; a field two or more branches changed is an error naming the
/// field, even when they wrote the same value, unless the field is an
/// [`Append`], a [`Sum`] or a [`Reduce`] (see [`Mergeable`]). When any
/// branch fails (or panics), the whole fails, the error reports every
/// branch's outcome, and the model is left as it was. Merging
/// needs a model that is `Clone`, `Serialize` and `Deserialize`, nothing more.
/// Only copies that can have changed are merged: a branch whose nodes take
/// the model as `&M` or not at all (and do not `updates_context`) costs no
/// merge. So a change made through `&M` by interior mutability (a `Mutex`
/// or atomic field) in a branch's copy is not merged back: change the model
/// through `&mut M`.
///
/// ```
/// use stroma::prelude::*;
///
/// #[node]
/// async fn double(n: u32) -> u32 { n * 2 }
/// #[node]
/// async fn describe(n: u32) -> String { format!("#{n}") }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let both = parallel![double, describe];
/// let result = StromaRunner::quick().run(&both, 21).await.unwrap();
/// assert_eq!(result.final_state, (42, "#21".to_string()));
/// # });
/// ```
pub use stroma_macros::parallel;

/// Chooses what runs next from what a node found: runs `classify`, matches
/// its output (an enum) against the arms' patterns, and runs the arm's node
/// on what its pattern binds (`()` for nothing, the value for one binding,
/// a tuple for several). All arms give one output type, which is the
/// route's; its input is `classify`'s.
///
/// The patterns are Rust's own `match`: a variant no arm covers is rustc's
/// non-exhaustive error, and guards (`Kind::A(n) if n > 3 => ..`) work. An
/// arm whose node does not take its payload, or gives another type than the
/// first arm, is one compile error on that arm naming both types.
///
/// In the run tree a route is a scope (`route`, or its `.named(..)` id):
/// the classifying node, then the arm taken; the other arms are `Skipped`.
///
/// ```
/// use stroma::prelude::*;
///
/// #[derive(Debug)]
/// enum Ticket {
///     Bug(String),
///     Feature { title: String, votes: u32 },
///     Spam,
/// }
///
/// #[node]
/// async fn classify(text: String) -> Ticket {
///     if text.contains("crash") {
///         Ticket::Bug(text)
///     } else if text.contains("please add") {
///         Ticket::Feature { title: text, votes: 1 }
///     } else {
///         Ticket::Spam
///     }
/// }
/// #[node]
/// async fn reproduce(report: String) -> String {
///     format!("reproduced: {report}")
/// }
/// #[node]
/// async fn plan(request: (String, u32)) -> String {
///     format!("planned {} ({} votes)", request.0, request.1)
/// }
/// #[node]
/// async fn reject(_nothing: ()) -> String {
///     "rejected".into()
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let triage = route![classify => {
///     Ticket::Bug(report) => reproduce,
///     Ticket::Feature { title, votes } => plan,
///     Ticket::Spam => reject,
/// }];
/// let runner = StromaRunner::quick();
/// let done = runner.run(&triage, "app crash on save".into()).await.unwrap();
/// assert_eq!(done.final_state, "reproduced: app crash on save");
/// assert_eq!(done.scope("route.plan").unwrap().status, NodeStatus::Skipped);
/// # });
/// ```
pub use stroma_macros::route;

/// Everything a pipeline author needs: `use stroma::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Append, Context, Diagram, Event, ExecutionContext, Handler, Node, NodeError, NodeExt,
        NodeStatus, PhaseInfo, PipelineContext, RunConfig, RunError, RunEvent, RunFuture,
        RunOptions, RunResult, RunStream, Scope, ScopeKind, ScopePath, StromaRunner, Sum, Template,
        TemplateError, current_handler, current_phase, flow, for_each, in_phase, loop_until, node,
        parallel, phase, pipeline, route, template,
    };
    pub use crate::{
        AtCapacity, CancellationToken, Cancelled, Checkpoint, Durability, Durable, DurableError,
        DurableRuns, Interrupt, Interrupted, Lease, MemoryStore, ResumeOptions, RetriesExhausted,
        RetryPolicy, RunStatus, RunStore, RunSummary, Saveable, StoreError, StoreErrorKind,
        StoredRun, TimedOut, Timeout,
    };
    // The types and traits a user's own code names: in signatures (a
    // middleware, a session, a model), in errors it looks into.
    pub use crate::{
        BoxError, BoxFuture, BranchesFailed, ContextError, HandlerPanicked, Item, LoopCapReached,
        LoopIterationFailed, MemorySession, MergeConflict, Mergeable, Middleware, MiddlewareError,
        ModelDataError, ModelUpdateError, ModelValidate, Next, NodeCall, NodeFailure, NodePanic,
        NodeRecord, NodeTimings, Reduce, Reducer, RunContext, RunId, Runnable, RunsWith, Session,
        SessionError, SessionMode, SessionView, TimingMiddleware, current_correlation_id,
        current_execution_context, current_session, current_tenant_id, current_user_id,
        require_execution_context,
    };
    #[cfg(feature = "tower")]
    pub use crate::{RunRequest, StromaService};
    #[cfg(feature = "sqlite")]
    pub use crate::{SqliteSession, SqliteStore};
    pub use serde::{Deserialize, Serialize};
}
