//! [`NodeExt`]: methods every node has, starting with [`named`](NodeExt::named).

use std::future::Future;

use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::node::checks::FirstNode;
use crate::node::{Accepts, Node, Runnable};
use crate::tree::shape::ShapeBuilder;

/// Methods on every [`Node`]; in the prelude.
pub trait NodeExt: Node + Sized {
    /// This node under the id `name`: its id in the run tree, paths,
    /// records, spans and errors, and, for the pipeline a run runs, the
    /// run's [`RunContext::graph_id`](crate::RunContext::graph_id).
    ///
    /// On a `#[node]` it renames the node. On a `pipeline![..]` it makes
    /// the pipeline a scope of its own: its nodes' paths start with
    /// `name.` (an unnamed nested pipeline is transparent: its nodes belong
    /// to the enclosing scope). On a combinator it renames the combinator's
    /// scope.
    ///
    /// ```
    /// use stroma_core::{Node, NodeExt, for_each};
    /// # fn doc<N: Node>(fetch: N) {
    /// let pages = for_each(fetch).named("pages");
    /// assert_eq!(pages.name(), "pages");
    /// # }
    /// ```
    fn named(self, name: &'static str) -> Named<Self> {
        Named { node: self, name }
    }

    /// This node's [`Diagram`](crate::Diagram): its nodes, scopes and the
    /// edges between them, drawn as Mermaid (`.mermaid()`) or Graphviz DOT
    /// (`.dot()`). [`RunResult::diagram`](crate::RunResult::diagram) colours
    /// it by how a run went.
    fn diagram(&self) -> crate::Diagram {
        crate::Diagram::of(crate::tree::shape::shape_of(self))
    }

    /// This node cut off from what the run wrote: it sees the runner's
    /// resources and the execution metadata, but no context entries the
    /// run wrote, no variables, no kept results, and a default model
    /// (`M::default()`, so the model must be `Default`), whose changes are
    /// discarded, as are its context writes. On any node: a leaf, a
    /// pipeline, a flow, a loop; it keeps its id and path.
    fn isolated(self) -> crate::combinators::modifiers::Isolated<Self> {
        crate::combinators::modifiers::Isolated { node: self }
    }

    /// This node reading everything (model, context, variables, results)
    /// with every write it makes (model, context) discarded afterwards, so
    /// unchanged code runs read-only. A discarded write is not an error;
    /// a watching handler or stream sees [`Event::WritesDiscarded`](crate::Event::WritesDiscarded).
    fn snapshot(self) -> crate::combinators::modifiers::Snapshot<Self> {
        crate::combinators::modifiers::Snapshot { node: self }
    }

    /// This node, failed with [`TimedOut`](crate::TimedOut) if it takes
    /// longer than `limit`: its future is dropped at the deadline, and the
    /// model and context are as they were before it. The error names the
    /// node that was running and the limit. On any node: a leaf, a
    /// pipeline, a loop; it keeps its id and path. Needs a tokio runtime
    /// with its timers enabled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use stroma_core::{Node, NodeExt};
    /// # fn doc<N: Node>(fetch: N) {
    /// let fetch = fetch.timeout(Duration::from_secs(2));
    /// # }
    /// ```
    fn timeout(self, limit: std::time::Duration) -> crate::combinators::timeout::Timeout<Self> {
        crate::combinators::timeout::Timeout { node: self, limit }
    }

    /// This node run again when it fails, as `policy` says: each attempt
    /// starts from the model and context as they were before the first
    /// (the model must be `Clone`), so the node's input must be `Clone`.
    /// An error made with [`NodeError::permanent`](crate::NodeError::permanent),
    /// or a panic, is not retried. A retry shows as
    /// [`Event::NodeRetrying`](crate::Event::NodeRetrying); a node that
    /// fails every attempt fails with [`RetriesExhausted`](crate::RetriesExhausted),
    /// which says how many were made. On any node; it keeps its id and path.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use stroma_core::{Node, NodeExt, RetryPolicy};
    /// # fn doc<N: Node<Input = String>>(fetch: N) {
    /// let fetch = fetch.retry(RetryPolicy::exponential(Duration::from_millis(100)).max_attempts(4));
    /// # }
    /// ```
    fn retry(
        self,
        policy: crate::combinators::retry::RetryPolicy,
    ) -> crate::combinators::retry::Retry<Self>
    where
        Self::Input: crate::combinators::retry::RetryInput,
    {
        crate::combinators::retry::Retry { node: self, policy }
    }
}

impl<N: Node> NodeExt for N {}

/// A node under another name; see [`NodeExt::named`].
#[derive(Debug, Clone, Copy)]
pub struct Named<N> {
    node: N,
    name: &'static str,
}

// Not offered as a fix in errors about elements that are not nodes.
impl<N: crate::durable::Durable> crate::durable::Durable for Named<N> {}

#[diagnostic::do_not_recommend]
impl<N: Node> Node for Named<N> {
    type Input = N::Input;
    type Output = N::Output;

    fn name(&self) -> &'static str {
        self.name
    }

    fn leaf_count(&self) -> usize {
        self.node.leaf_count() + usize::from(N::TRANSPARENT)
    }

    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        N::input_json(input)
    }

    const MAY_CHANGE_MODEL: bool = N::MAY_CHANGE_MODEL;

    const USES_CONTEXT: bool = N::USES_CONTEXT;

    const ASKS_PATHS: bool = N::ASKS_PATHS;

    // A named pipeline is a scope of its own, one slot before its nodes.
    const SLOTS: u32 = N::SLOTS + N::TRANSPARENT as u32;

    fn describe(&self, shape: &mut ShapeBuilder) {
        if N::TRANSPARENT {
            shape.scope(self.name, crate::tree::ScopeKind::Scope, |inner| {
                self.node.describe(inner)
            });
        } else {
            shape.renamed(self.name, |inner| self.node.describe(inner));
        }
    }
}

// A link error names the node that takes the input, not `Named<..>`.
impl<N: FirstNode> FirstNode for Named<N> {
    type First = N::First;
}

#[diagnostic::do_not_recommend]
impl<T, N: Accepts<T>> Accepts<T> for Named<N> {
    #[inline(always)]
    fn accept(value: T) -> Self::Input {
        N::accept(value)
    }
}

impl<M: Send, N: Runnable<M>> Runnable<M> for Named<N> {
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    #[inline]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            if !N::TRANSPARENT {
                return self.node.run::<O>(input, cx, slot).await;
            }
            let scope = cx.state().enter_scope::<O>(slot);
            let outcome = self.node.run::<O>(input, cx, slot + 1).await;
            let outcome = outcome.map_err(|failure| failure.locate(cx.state_ref().current));
            cx.state().leave_scope::<O>(scope, outcome.as_ref().err());
            outcome
        }
    }
}
