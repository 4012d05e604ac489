//! Concurrent branches: `parallel![..]` and [`for_each`]. Each branch runs on
//! its own copy of the model; when all succeed the copies are merged back in
//! declaration order (see the merge rule on [`Mergeable`](crate::Mergeable));
//! when any fails, the whole fails, reporting every branch, and the model is
//! left as it was.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, StreamExt};

use crate::failure::NodeFailure;
use crate::merge::{Mergeable, merge_models};
use crate::node::{Accepts, Cx, Node, RunsWith};

impl<M: Clone> Cx<M> {
    /// A branch of this run: same context, run and middleware, its own copy
    /// of the model and its own records.
    #[doc(hidden)]
    pub fn fork(&self) -> Cx<M> {
        Cx::new(self.state_ref().fork(), self.model().clone())
    }
}

/// Runs `node` as one branch, turning a panic into the branch's failure.
#[doc(hidden)]
pub async fn run_branch<N, M>(
    node: &N,
    input: N::Input,
    cx: &mut Cx<M>,
) -> Result<N::Output, NodeFailure>
where
    N: RunsWith<M>,
    M: Send + 'static,
{
    match AssertUnwindSafe(node.run(input, cx)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(payload) => Err(cx.state().panic_failure(payload, node.name())),
    }
}

/// One finished branch: its name, its copy of the run, and its failure if it failed.
#[doc(hidden)]
pub struct Settled<M> {
    pub name: &'static str,
    pub cx: Cx<M>,
    pub failure: Option<NodeFailure>,
}

/// Joins finished branches back into `cx`, in declaration order: their
/// records, then (if all succeeded) their models, merged. If any failed,
/// fails naming every branch's outcome and leaves the model as it was.
#[doc(hidden)]
pub fn settle<M, B>(cx: &mut Cx<M>, name: &'static str, branches: B) -> Result<(), NodeFailure>
where
    M: Mergeable,
    B: AsRef<[Settled<M>]> + IntoIterator<Item = Settled<M>>,
{
    // Looked at first, so a run whose branches all succeeded builds no list
    // of outcomes, and one that failed keeps no models.
    let any_failed = branches.as_ref().iter().any(|b| b.failure.is_some());
    let count = branches.as_ref().len();
    let mut models = Vec::with_capacity(if any_failed { 0 } else { count });
    let mut outcomes = Vec::with_capacity(if any_failed { count } else { 0 });
    for branch in branches {
        let (state, model) = branch.cx.into_parts();
        cx.state().join(state);
        if any_failed {
            outcomes.push((branch.name, branch.failure));
        } else {
            models.push(model);
        }
    }
    if any_failed {
        return Err(NodeFailure::error(
            name,
            Box::new(BranchesFailed { name, outcomes }),
        ));
    }
    let merged =
        merge_models(cx.model(), models).map_err(|cause| NodeFailure::error(name, cause))?;
    cx.state().clock_moved();
    *cx.model_mut() = merged;
    Ok(())
}

/// At least one branch failed: every branch's outcome, in declaration order.
#[derive(Debug)]
pub struct BranchesFailed {
    name: &'static str,
    outcomes: Vec<(&'static str, Option<NodeFailure>)>,
}

impl BranchesFailed {
    /// Each branch's name and, if it failed, its failure.
    pub fn outcomes(&self) -> impl Iterator<Item = (&'static str, Option<&NodeFailure>)> {
        self.outcomes
            .iter()
            .map(|(name, failure)| (*name, failure.as_ref()))
    }
}

impl fmt::Display for BranchesFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.outcomes.iter().filter(|(_, f)| f.is_some()).count();
        write!(
            f,
            "{failed} of {} branches of `{}` failed; the model is unchanged:",
            self.outcomes.len(),
            self.name
        )?;
        for (i, (name, failure)) in self.outcomes.iter().enumerate() {
            match failure {
                Some(failure) => write!(f, " [{}] `{name}`: {failure};", i + 1)?,
                None => write!(f, " [{}] `{name}`: completed;", i + 1)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for BranchesFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.outcomes
            .iter()
            .find_map(|(_, failure)| failure.as_ref())
            .map(|failure| failure as &(dyn std::error::Error + 'static))
    }
}

/// Runs `node` on every item of a `Vec`, at most [`concurrency`](ForEach::concurrency)
/// at a time (1 unless set), and gives the outputs in the items' order.
///
/// Each item runs as a branch on its own copy of the model; the copies are
/// merged in item order, as `parallel!` merges its branches.
pub fn for_each<N: Node>(node: N) -> ForEach<N> {
    ForEach {
        node,
        concurrency: 1,
        name: "for_each",
    }
}

/// A node over a list; see [`for_each`].
#[derive(Debug, Clone, Copy)]
pub struct ForEach<N> {
    node: N,
    concurrency: usize,
    name: &'static str,
}

impl<N> ForEach<N> {
    /// At most `n` items in flight at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The name shown in errors and spans.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
}

#[diagnostic::do_not_recommend]
impl<N: Node> Node for ForEach<N> {
    type Input = Vec<N::Input>;
    type Output = Vec<N::Output>;

    fn name(&self) -> &'static str {
        self.name
    }
}

#[diagnostic::do_not_recommend]
impl<N: Node> Accepts<Vec<N::Input>> for ForEach<N> {
    type Checked = Self;

    fn accept(value: Vec<N::Input>) -> Vec<N::Input> {
        value
    }
}

impl<N, M> RunsWith<M> for ForEach<N>
where
    N: RunsWith<M>,
    M: Mergeable,
{
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    fn run<'a>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            let item_name = self.node.name();
            // Forks are made from an owned template, so the stream holds no
            // shared borrow of the model across awaits (which would need `M: Sync`).
            let template = cx.fork();
            // Reserved at the item count: collecting would grow it by doubling.
            let mut finished: Vec<Finished<N::Output, M>> = Vec::with_capacity(input.len());
            futures::stream::iter(input)
                .map(move |item| {
                    let mut branch = template.fork();
                    async move {
                        let outcome = run_branch(&self.node, item, &mut branch).await;
                        (outcome, branch)
                    }
                })
                .buffered(self.concurrency)
                .for_each(|done| {
                    finished.push(done);
                    std::future::ready(())
                })
                .await;
            let mut outputs = Vec::with_capacity(finished.len());
            let mut settled = Vec::with_capacity(finished.len());
            for (outcome, branch) in finished {
                let failure = match outcome {
                    Ok(output) => {
                        outputs.push(output);
                        None
                    }
                    Err(failure) => Some(failure),
                };
                settled.push(Settled {
                    name: item_name,
                    cx: branch,
                    failure,
                });
            }
            settle(cx, self.name, settled)?;
            Ok(outputs)
        }
    }
}

/// A branch's outcome, with its copy of the run.
type Finished<O, M> = (Result<O, NodeFailure>, Cx<M>);

/// Unwraps a branch's output once [`settle`] has said every branch succeeded.
#[doc(hidden)]
pub fn settled_output<O>(outcome: Option<O>) -> O {
    outcome.expect("settle fails the whole when a branch fails, so every branch has an output")
}

/// Splits a branch's outcome into its output and its failure.
#[doc(hidden)]
pub fn split_outcome<O>(outcome: Result<O, NodeFailure>) -> (Option<O>, Option<NodeFailure>) {
    match outcome {
        Ok(output) => (Some(output), None),
        Err(failure) => (None, Some(failure)),
    }
}

/// "This branch takes `T`": every branch of `parallel!` takes the first one's input.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a branch beside nodes that take `{T}`",
    label = "this branch does not take `{T}` as input",
    note = "every branch of `parallel![..]` gets a copy of the same input, so all take one input type"
)]
pub trait BranchOf<T>: Node {
    /// The branch itself (see [`Accepts::Checked`]).
    type Checked;
}

impl<T, B: Accepts<T>> BranchOf<T> for B {
    type Checked = B;
}

/// Compiles only when `branch` takes the first branch's input; returns it.
#[doc(hidden)]
#[inline(always)]
pub fn branch<A: Node, B: BranchOf<A::Input, Checked = B>>(
    _first: &A,
    branch: B,
) -> <B as BranchOf<A::Input>>::Checked {
    branch
}
