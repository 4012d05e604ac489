//! [`NodeFailure`]: a node's error or panic, tagged with the node's name.

use std::error::Error as StdError;
use std::fmt;

use crate::error::{BoxError, ContextError};
use crate::tree::ScopePath;
use crate::tree::shape::Shape;
use crate::tree::trace::{Loc, Paths};

/// How a node failed, and which node: its id, its path in the run, and the
/// cause. The runner turns it into a [`RunError`](crate::RunError); a
/// failed `parallel!` branch or `for_each` item is one inside
/// [`BranchesFailed`](crate::BranchesFailed).
#[derive(Debug)]
pub struct NodeFailure {
    // Boxed: a node's outcome is then as small as its output, which every
    // node of a chain moves on success.
    parts: Box<FailureParts>,
}

#[derive(Debug)]
struct FailureParts {
    /// Where it failed, until the run's end tells the id and path.
    pub(crate) loc: Option<Loc>,
    pub(crate) node: &'static str,
    pub(crate) path: Option<ScopePath>,
    pub(crate) cause: BoxError,
    /// The whole run was stopped (by a run hook), not one node: `node` is the pipeline.
    pub(crate) whole_run: bool,
    /// What else failed while this failure was on its way out: see [`NodeFailure::also`].
    pub(crate) also: Vec<NodeFailure>,
}

impl NodeFailure {
    /// The node `node` returned `cause`.
    pub fn error(node: &'static str, cause: BoxError) -> Self {
        Self::from_parts(FailureParts {
            loc: None,
            node,
            path: None,
            cause,
            whole_run: false,
            also: Vec::new(),
        })
    }

    fn from_parts(parts: FailureParts) -> Self {
        NodeFailure {
            parts: Box::new(parts),
        }
    }

    /// The node at `loc` failed with `cause`; its id and path are told at the run's end.
    #[cold]
    pub(crate) fn at(loc: Loc, cause: BoxError) -> Self {
        Self::from_parts(FailureParts {
            loc: Some(loc),
            node: "",
            path: None,
            cause,
            whole_run: false,
            also: Vec::new(),
        })
    }

    /// A node failed with `cause`; where is told by [`locate`](Self::locate),
    /// called by whoever catches it first.
    #[cold]
    pub(crate) fn unlocated(cause: BoxError) -> Self {
        Self::from_parts(FailureParts {
            loc: None,
            node: "",
            path: None,
            cause,
            whole_run: false,
            also: Vec::new(),
        })
    }

    /// Tells a failure that does not know where it happened that it was at
    /// `current`: the node that started last on the state that caught it,
    /// which is the failed one, since nothing ran between its end and the catch.
    pub(crate) fn locate(mut self, current: Loc) -> Self {
        if self.parts.loc.is_none() && !self.parts.whole_run && self.parts.node.is_empty() {
            self.parts.loc = Some(current);
        }
        self
    }

    /// The run of the pipeline `pipeline` was stopped before or around its nodes.
    pub(crate) fn run_stopped(pipeline: &'static str, cause: BoxError) -> Self {
        Self::from_parts(FailureParts {
            loc: None,
            node: pipeline,
            path: Some(ScopePath::root()),
            cause,
            whole_run: true,
            also: Vec::new(),
        })
    }

    /// Failures that happened after this one while the run was already
    /// failing, kept rather than lost: a node's output that panicked when
    /// it was dropped, a middleware hook or the event handler that panicked
    /// on the failure's way out. Each names where it happened.
    pub fn also(&self) -> &[NodeFailure] {
        &self.parts.also
    }

    /// This failure, with `later` (which happened while it was on its way
    /// out) kept beside it.
    pub(crate) fn followed_by(mut self, later: NodeFailure) -> Self {
        self.parts.also.push(later);
        self
    }

    /// [`followed_by`](Self::followed_by), if there is a later failure.
    pub(crate) fn followed_by_any(self, later: Option<NodeFailure>) -> Self {
        match later {
            Some(later) => self.followed_by(later),
            None => self,
        }
    }

    /// Names a failure that cannot be told its path after `node`.
    pub(crate) fn name_if_unknown(&mut self, node: &'static str) {
        if self.parts.node.is_empty() {
            self.parts.node = node;
        }
    }

    /// The failing node's path in the run (the root's, empty, when the whole run was stopped).
    pub fn path(&self) -> Option<&ScopePath> {
        self.parts.path.as_ref()
    }

    /// Tells this failure, and those inside it, their ids and paths.
    pub(crate) fn resolve(&mut self, shape: &Shape, paths: &Paths<'_>) {
        if let Some(loc) = self.parts.loc {
            self.parts.node = shape.id(loc.slot);
            self.parts.path = Some(paths.path(loc));
        }
        let owner = self.parts.node;
        resolve_inside(&mut *self.parts.cause, shape, paths, owner);
        for later in &mut self.parts.also {
            later.resolve(shape, paths);
        }
    }

    /// The innermost failure: for branches, the first that failed.
    pub(crate) fn innermost(&self) -> &NodeFailure {
        let mut error: Option<&(dyn StdError + 'static)> = Some(&*self.parts.cause);
        while let Some(current) = error {
            if let Some(branches) =
                current.downcast_ref::<crate::combinators::branches::BranchesFailed>()
                && let Some(first) = branches.first_failure()
            {
                return first.innermost();
            }
            if let Some(inner) = current.downcast_ref::<NodeFailure>() {
                return inner.innermost();
            }
            error = current.source();
        }
        self
    }

    /// Every error of type `E` this failure carries: its cause's, and those
    /// of every failed branch and item inside it, in declaration order.
    pub(crate) fn find_all<'s, E: StdError + 'static>(&'s self, out: &mut Vec<&'s E>) {
        let mut error: Option<&(dyn StdError + 'static)> = Some(&*self.parts.cause);
        while let Some(current) = error {
            if let Some(found) = current.downcast_ref::<E>() {
                out.push(found);
                return;
            }
            if let Some(branches) =
                current.downcast_ref::<crate::combinators::branches::BranchesFailed>()
            {
                for failure in branches.outcomes().filter_map(|(_, failure)| failure) {
                    failure.find_all(out);
                }
                return;
            }
            error = current.source();
        }
    }

    /// Where it failed, if it is known.
    pub(crate) fn loc(&self) -> Option<Loc> {
        self.parts.loc
    }

    /// The id to show: the path when there is one.
    fn shown(&self) -> &str {
        match &self.parts.path {
            Some(path) if !path.is_root() => path.as_str(),
            _ => self.parts.node,
        }
    }

    /// The same failure with its cause wrapped by `wrap`.
    pub(crate) fn map_cause(mut self, wrap: impl FnOnce(BoxError) -> BoxError) -> Self {
        let cause = std::mem::replace(&mut self.parts.cause, Box::new(NodePanic::placeholder()));
        self.parts.cause = wrap(cause);
        self
    }

    /// Whether a middleware's run hook stopped the whole run.
    pub(crate) fn is_run_stopped(&self) -> bool {
        self.parts.whole_run
    }

    /// Whether the cause, or any error under it, is a panic.
    pub(crate) fn is_panic(&self) -> bool {
        let mut error: Option<&(dyn StdError + 'static)> = Some(&*self.parts.cause);
        while let Some(current) = error {
            if current.is::<NodePanic>() {
                return true;
            }
            error = current.source();
        }
        false
    }

    /// The failing node's id.
    pub fn node(&self) -> &'static str {
        self.parts.node
    }

    /// What went wrong.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.parts.cause
    }
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        for later in &self.parts.also {
            write!(f, "; then {later}")?;
        }
        Ok(())
    }
}

impl NodeFailure {
    /// This failure alone, without what came after it.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.whole_run {
            return write!(
                f,
                "run of `{}` failed: {}",
                self.parts.node, self.parts.cause
            );
        }
        if reads_as_panic(&*self.parts.cause) {
            return write!(f, "node `{}` {}", self.shown(), self.parts.cause);
        }
        write!(f, "node `{}` failed: ", self.shown())?;
        match self.parts.cause.downcast_ref::<ContextError>() {
            // Said once is enough: the context error names the same node.
            Some(err) if err.node().is_some() => err.describe(f),
            _ => write!(f, "{}", self.parts.cause),
        }
    }
}

impl StdError for NodeFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.parts.cause)
    }
}

/// Whether `cause` reads "panicked: …" of the node it is the cause of:
/// the node's own panic, or a loop iteration's (its text leads with the
/// panic). A middleware's or the handler's panic says whose it was instead.
fn reads_as_panic(cause: &(dyn StdError + 'static)) -> bool {
    if cause.is::<NodePanic>() {
        return true;
    }
    cause
        .downcast_ref::<crate::combinators::looping::LoopIterationFailed>()
        .and_then(StdError::source)
        .is_some_and(reads_as_panic)
}

/// Resolves the failures inside `error`: those of branches and items, and
/// the cause of a failed loop iteration.
fn resolve_inside(
    error: &mut (dyn StdError + Send + Sync + 'static),
    shape: &Shape,
    paths: &Paths<'_>,
    owner: &'static str,
) {
    if let Some(branches) = error.downcast_mut::<crate::combinators::branches::BranchesFailed>() {
        branches.resolve(shape, paths, owner);
    } else if let Some(iteration) =
        error.downcast_mut::<crate::combinators::looping::LoopIterationFailed>()
    {
        resolve_inside(iteration.cause_mut(), shape, paths, owner);
    } else if let Some(exhausted) =
        error.downcast_mut::<crate::combinators::retry::RetriesExhausted>()
    {
        resolve_inside(exhausted.cause_mut(), shape, paths, owner);
    } else if let Some(inner) = error.downcast_mut::<NodeFailure>() {
        inner.resolve(shape, paths);
    }
}

/// The cause of a run whose node panicked: the panic's message, and what
/// the code was doing when it was not the node's own body (dropping the
/// node's output, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePanic {
    message: String,
    during: Option<&'static str>,
}

impl NodePanic {
    pub(crate) fn from_payload(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a value that is not a string".to_owned()
        };
        NodePanic {
            message,
            during: None,
        }
    }

    /// A panic that happened `during` something other than the node's body
    /// ("while its output was dropped").
    pub(crate) fn during(mut self, during: &'static str) -> Self {
        self.during = Some(during);
        self
    }

    /// A stand-in while a cause is being wrapped.
    fn placeholder() -> Self {
        NodePanic {
            message: String::new(),
            during: None,
        }
    }

    /// What the node panicked with.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for NodePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.during {
            Some(during) => write!(f, "panicked {during}: {}", self.message),
            None => write!(f, "panicked: {}", self.message),
        }
    }
}

/// Drops `value` (a node's output nobody will read), catching a panic in
/// its `Drop`: the panic, if there was one, as the failure of the node at
/// `loc`, to keep beside the failure that made the output unneeded.
pub(crate) fn drop_caught<T>(value: T, loc: Loc) -> Option<NodeFailure> {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value))).err()?;
    let panic = NodePanic::from_payload(&*payload).during("while its output was dropped");
    Some(NodeFailure::at(loc, Box::new(panic)))
}

impl StdError for NodePanic {}
