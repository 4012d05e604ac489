//! [`NodeFailure`]: a node's error or panic, tagged with the node's name.

use std::error::Error as StdError;
use std::fmt;

use crate::error::{BoxError, ContextError};

/// How a node failed, and which node: what [`RunsWith::run`](crate::RunsWith::run)
/// returns on failure. The runner turns it into a [`RunError`](crate::RunError).
#[derive(Debug)]
pub struct NodeFailure {
    pub(crate) node: &'static str,
    pub(crate) cause: BoxError,
    /// The whole run was stopped (by a run hook), not one node: `node` is the pipeline.
    pub(crate) whole_run: bool,
}

impl NodeFailure {
    /// The node `node` returned `cause`.
    pub fn error(node: &'static str, cause: BoxError) -> Self {
        NodeFailure {
            node,
            cause,
            whole_run: false,
        }
    }

    /// The run of the pipeline `pipeline` was stopped before or around its nodes.
    pub(crate) fn run_stopped(pipeline: &'static str, cause: BoxError) -> Self {
        NodeFailure {
            node: pipeline,
            cause,
            whole_run: true,
        }
    }

    /// The same failure with its cause wrapped by `wrap`.
    pub(crate) fn map_cause(self, wrap: impl FnOnce(BoxError) -> BoxError) -> Self {
        NodeFailure {
            cause: wrap(self.cause),
            ..self
        }
    }

    /// Whether the cause, or any error under it, is a panic.
    pub(crate) fn is_panic(&self) -> bool {
        let mut error: Option<&(dyn StdError + 'static)> = Some(&*self.cause);
        while let Some(current) = error {
            if current.is::<NodePanic>() {
                return true;
            }
            error = current.source();
        }
        false
    }

    /// The failing node's name.
    pub fn node(&self) -> &'static str {
        self.node
    }

    /// What went wrong.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.cause
    }
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_panic() {
            return write!(f, "node `{}` {}", self.node, self.cause);
        }
        if self.whole_run {
            return write!(f, "run of `{}` failed: {}", self.node, self.cause);
        }
        write!(f, "node `{}` failed: ", self.node)?;
        match self.cause.downcast_ref::<ContextError>() {
            // Said once is enough: the context error names the same node.
            Some(err) if err.node() == Some(self.node) => err.describe(f),
            _ => write!(f, "{}", self.cause),
        }
    }
}

impl StdError for NodeFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.cause)
    }
}

/// The cause of a run whose node panicked: the panic's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePanic {
    message: String,
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
        NodePanic { message }
    }

    /// What the node panicked with.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for NodePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}

impl StdError for NodePanic {}
