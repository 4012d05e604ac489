//! [`NodeFailure`]: a node's error or panic, tagged with the node's name.

use std::error::Error as StdError;
use std::fmt;

use crate::error::BoxError;

/// How a node failed, and which node: what [`RunsWith::run`](crate::RunsWith::run)
/// returns on failure. The runner turns it into a [`RunError`](crate::RunError).
#[derive(Debug)]
pub struct NodeFailure {
    pub(crate) node: &'static str,
    pub(crate) cause: BoxError,
}

impl NodeFailure {
    /// The node `node` returned `cause`.
    pub fn error(node: &'static str, cause: BoxError) -> Self {
        NodeFailure { node, cause }
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
        if self.cause.is::<NodePanic>() {
            write!(f, "node `{}` {}", self.node, self.cause)
        } else {
            write!(f, "node `{}` failed: {}", self.node, self.cause)
        }
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
