//! The node traits: [`Node`] (types, id and shape), [`Runnable`] (execution
//! against a model) and [`Accepts`] (what a node takes); `checks.rs`: the
//! compile-time checks the macros place on what users write.

pub(crate) mod checks;
pub(crate) mod named;

use std::future::Future;

use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::tree::shape::ShapeBuilder;

/// A step of a pipeline: its input type, its output type and its name.
///
/// `#[node]` implements it for the zero-sized value it makes of an `async fn`;
/// `pipeline![..]` implements it for the pipeline it builds, so pipelines nest.
/// What runs a node is [`Runnable`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stroma node",
    label = "not a node",
    note = "make an `async fn` a node with `#[node]`, or chain nodes with `pipeline![..]`"
)]
pub trait Node: Clone + Send + Sync + 'static {
    /// What the node takes.
    type Input: Send + 'static;
    /// What the node gives.
    type Output: Send + 'static;

    /// The node's id: shown in paths, errors, records and tracing spans.
    fn name(&self) -> &'static str;

    /// How many leaf nodes this node runs on its straight path; sizes the
    /// entry buffer of a run so records cost one allocation per run.
    #[doc(hidden)]
    fn leaf_count(&self) -> usize {
        1
    }

    /// Whether running this node may write the run's [`Context`](crate::Context)
    /// (or enrich its execution context): `#[node]` says so for a function
    /// taking `&Context`; combinators say what their nodes say. A branch,
    /// item or loop iteration gets a context layer of its own only when its
    /// node may write, so the others cost nothing. `true` unless overridden.
    #[doc(hidden)]
    const USES_CONTEXT: bool = true;

    /// Whether this node, or one inside it, asks where a node is while the
    /// run goes on (its path, others' results): a node given `&Context`, or
    /// a `keep_going` list, which names its items' failures by path. The
    /// run keeps its record of paths only for such a pipeline.
    #[doc(hidden)]
    const ASKS_PATHS: bool = Self::USES_CONTEXT;

    /// How many slots (nodes and scopes) this node's shape has: the slots
    /// of a pipeline are numbered in the order [`describe`](Node::describe)
    /// meets them, and each node runs knowing its first slot.
    #[doc(hidden)]
    const SLOTS: u32 = 1;

    /// Whether this node is not a scope of its own: an unnamed
    /// `pipeline![..]`, whose nodes belong to the enclosing scope.
    #[doc(hidden)]
    const TRANSPARENT: bool = false;

    /// Adds this node's shape (its slots, in order) to `shape`.
    #[doc(hidden)]
    fn describe(&self, shape: &mut ShapeBuilder) {
        shape.leaf_of(self.name(), std::any::type_name::<Self::Output>());
    }

    /// Whether running this node may change the run's model. When no branch
    /// of `parallel!` or `for_each` may, their copies of the model are not
    /// merged back. `#[node]` says `false` for a function that takes no
    /// `&mut M` and does not update the model from its output; combinators
    /// say what their nodes say. `true`, the safe answer, unless overridden.
    /// A change made through `&M` by interior mutability is not counted.
    #[doc(hidden)]
    const MAY_CHANGE_MODEL: bool = true;

    /// `input` as JSON, if it has a JSON form: what a model that keeps the
    /// run's input ([`PipelineContext::initial_input`](crate::PipelineContext::initial_input))
    /// is given before the first node runs, or `null` when this is `None`.
    ///
    /// `#[node]` answers for its input type (`Some` when it is `Serialize`);
    /// pipelines and the crate's combinators ask the node that takes the
    /// input first (`for_each` makes a list of its items'). A hand-written
    /// node that wraps another should forward to it; otherwise `None`.
    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        let _ = input;
        None
    }
}

/// A [`Node`] that can run in a run whose typed model is `M`: what the
/// runner's entry points ask of a pipeline, and the bound to write for code
/// generic over pipelines.
///
/// A node whose function takes no model implements `Runnable<M>` for every
/// `M`; a node taking `&mut M` or `&M` only for that `M`. A pipeline runs with
/// `M` when all of its nodes do. `#[node]`, `pipeline!` and the combinators
/// implement it; its method is the engine's, not for hand-written code.
///
/// ```
/// use stroma::prelude::*;
///
/// #[node]
/// async fn shout(text: String) -> String {
///     text.to_uppercase()
/// }
///
/// // A pipeline made in one place and run in another.
/// fn greeting() -> impl Runnable<(), Input = String, Output = String> {
///     pipeline![shout, shout]
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let done = StromaRunner::quick().run(&greeting(), "hi".into()).await.unwrap();
/// assert_eq!(done.final_state, "HI");
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run with the model `{M}`",
    label = "this runs with the model `{M}`",
    note = "`{Self}` takes the run's model (`&mut M` or `&M`), so it runs only with a model of that type",
    note = "`runner.run(&pipeline, input)` runs with the model `()`; give the model with \
            `runner.run_with_model(&pipeline, input, model)`"
)]
pub trait Runnable<M>: Node {
    /// Runs the node, whose first slot is `slot`, on `input` against the
    /// run state `cx`, watched by `O`.
    #[doc(hidden)]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a;
}

/// The name [`Runnable`] had before: every `Runnable<M>` is a `RunsWith<M>`,
/// so code that names it in a bound (`impl RunsWith<(), Input = u32>`)
/// compiles as it did. Compile errors name `Runnable`.
pub trait RunsWith<M>: Runnable<M> {}

impl<M, P: Runnable<M>> RunsWith<M> for P {}

/// "This node takes `T` as input".
///
/// `#[node]` implements it for the node's own input type only; combinators
/// and pipelines forward it to the node that takes their input. What asks
/// for it (a loop body takes its own output) fails to compile with a message
/// naming the node and both types. `pipeline!` checks its links on each node
/// it is given, naming the node as written.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot follow a node whose output is `{T}`",
    label = "this node does not take `{T}` as input",
    note = "each node's input type must be the output type of the node before it"
)]
pub trait Accepts<T>: Node {
    /// Passes the previous node's output on as this node's input (they are one type).
    fn accept(value: T) -> Self::Input;
}

/// A `#[node]` function's name, as a constant.
#[doc(hidden)]
pub trait LeafName {
    /// The name.
    const NAME: &'static str;
}
