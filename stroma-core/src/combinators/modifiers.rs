//! `.isolated()` and `.snapshot()`: a node cut off from what the run
//! wrote, or one that reads everything and whose writes are discarded.

use std::future::Future;

use futures::FutureExt as _;

use crate::context::propagation::{Situation, with_context, within};
use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::node::Runnable;
use crate::run::event::Event;

/// What a modifier does to the nodes inside it; the innermost decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Modifier {
    #[default]
    None,
    /// Sees the runner's resources and the execution metadata only; writes go nowhere.
    Isolated,
    /// Reads everything; writes are discarded.
    Snapshot,
}

/// A node run `.isolated()`; see [`NodeExt::isolated`](crate::NodeExt::isolated).
#[derive(Clone, Copy, Debug)]
pub struct Isolated<N> {
    pub(crate) node: N,
}

/// A node run `.snapshot()`; see [`NodeExt::snapshot`](crate::NodeExt::snapshot).
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<N> {
    pub(crate) node: N,
}

// Their changes are discarded: nothing of them is merged back.
super::wrapper_node!(Isolated, false, |_: &Isolated<N>, out: super::Note<'_>| out
    .write_str("isolated"));
super::wrapper_node!(Snapshot, false, |_: &Snapshot<N>, out: super::Note<'_>| out
    .write_str("snapshot"));

/// A model an `.isolated()` node can run on: it starts from `M::default()`.
#[diagnostic::on_unimplemented(
    message = "`.isolated()` runs its node on a default model, and the model `{Self}` has none",
    label = "this node runs isolated, so it needs `{Self}: Default`",
    note = "derive or implement `Default` for `{Self}`, or use `.snapshot()`, which reads the run's model"
)]
pub trait IsolatedModel: Default {}

#[diagnostic::do_not_recommend]
impl<M: Default> IsolatedModel for M {}

impl<M, N> Runnable<M> for Isolated<N>
where
    M: IsolatedModel + Send + 'static,
    N: Runnable<M>,
{
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            // A default model, the runner's entries alone, no variables, no
            // results: all put back afterwards, whatever the node did.
            let layer = cx.state_ref().context.isolated();
            let vars = cx.state().vars.take();
            let outcome = run_modified::<O, N, M>(
                &self.node,
                input,
                cx,
                slot,
                Modifier::Isolated,
                M::default(),
                layer,
            )
            .await;
            cx.state().vars = vars;
            outcome
        }
    }
}

impl<M, N> Runnable<M> for Snapshot<N>
where
    M: Clone + Send + 'static,
    N: Runnable<M>,
{
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            // Reads the model and context as they are; writes go to a copy
            // and a layer that are dropped afterwards.
            let copy = cx.model().clone();
            let layer = cx.state_ref().context.child();
            run_modified::<O, N, M>(&self.node, input, cx, slot, Modifier::Snapshot, copy, layer)
                .await
        }
    }
}

/// Runs `node` as `modifier` says: on `model` and the context `layer`,
/// whose writes are dropped afterwards, as the model is: the enclosing
/// model, context and modifier are put back whatever the node did (a panic
/// included), and the discarded writes reported.
async fn run_modified<O, N, M>(
    node: &N,
    input: N::Input,
    cx: &mut Cx<M>,
    slot: u32,
    modifier: Modifier,
    model: M,
    layer: crate::context::Context,
) -> Result<N::Output, NodeFailure>
where
    O: Observer,
    N: Runnable<M>,
    M: Send + 'static,
{
    let model = std::mem::replace(cx.model_mut(), model);
    let context = std::mem::replace(&mut cx.state().context, layer.clone());
    let modifier = std::mem::replace(&mut cx.state().modifier, modifier);
    let view = cx.state_ref().session_view();
    let run = std::panic::AssertUnwindSafe(node.run::<O>(input, cx, slot));
    let situation = Situation {
        session: Some(view),
        ..Situation::here()
    };
    let caught = Box::pin(with_context(&layer, within(situation, run.catch_unwind()))).await;
    let state = cx.state();
    state.modifier = modifier;
    state.context = context;
    *cx.model_mut() = model;
    report_discarded::<O, M>(cx, slot, layer.has_own_writes(), N::MAY_CHANGE_MODEL);
    cx.state().settle_caught(caught, slot)
}

/// Tells a watching handler or stream that a modified node's writes were
/// discarded (not an error: the modifier's purpose): its context writes,
/// and its model's changes when it is a node that may change the model.
fn report_discarded<O: Observer, M>(
    cx: &mut Cx<M>,
    slot: u32,
    wrote_context: bool,
    may_change_model: bool,
) {
    if !O::WATCHED || !cx.state_ref().streams() {
        return;
    }
    for (discarded, what) in [(wrote_context, "context"), (may_change_model, "model")] {
        if discarded {
            let path = cx.state_ref().path_now(slot);
            cx.state().emit(|| Event::WritesDiscarded { path, what });
        }
    }
}
