//! [`NodeExt`]: methods every node has, starting with [`named`](NodeExt::named).

use std::future::Future;

use crate::failure::NodeFailure;
use crate::node::{Accepts, Cx, Node, RecordMode, RunsWith};

/// Methods on every [`Node`]; in the prelude.
pub trait NodeExt: Node + Sized {
    /// This node under the name `name`: what a pipeline is called in its run's
    /// [`RunContext::graph_id`](crate::RunContext::graph_id), spans and errors.
    ///
    /// A pipeline's default name lists its nodes. A `#[node]` function's own
    /// name is set with `#[node(name = "...")]`; this does not rename the
    /// records of the nodes inside.
    fn named(self, name: &'static str) -> Named<Self> {
        Named { node: self, name }
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
#[diagnostic::do_not_recommend]
impl<N: Node> Node for Named<N> {
    type Input = N::Input;
    type Output = N::Output;

    fn name(&self) -> &'static str {
        self.name
    }

    fn leaf_count(&self) -> usize {
        self.node.leaf_count()
    }

    fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
        N::input_json(input)
    }

    const MAY_CHANGE_MODEL: bool = N::MAY_CHANGE_MODEL;
}

#[diagnostic::do_not_recommend]
impl<T, N: Accepts<T>> Accepts<T> for Named<N> {
    type Checked = Self;

    #[inline(always)]
    fn accept(value: T) -> Self::Input {
        N::accept(value)
    }
}

impl<M, N: RunsWith<M>> RunsWith<M> for Named<N> {
    #[inline]
    fn run<'a>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        self.node.run(input, cx)
    }

    #[inline]
    fn run_direct<'a, R: RecordMode>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        self.node.run_direct::<R>(input, cx)
    }
}
