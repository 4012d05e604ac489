//! Errors: what a node returns ([`NodeError`]), what context look-ups return
//! ([`ContextError`]) and what a failed run returns ([`RunError`](crate::RunError)).

use std::error::Error as StdError;
use std::fmt;

/// Any error a node can fail with: `Box<dyn Error + Send + Sync>`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error type for node functions: wraps any `std::error::Error`.
///
/// `?` converts every `std::error::Error + Send + Sync + 'static` into a
/// `NodeError`, so a node returning `Result<T, NodeError>` can use `?` on I/O,
/// parsing, HTTP and context look-ups alike. Make one from a message with
/// [`NodeError::msg`].
///
/// Like `anyhow::Error`, `NodeError` does not itself implement `std::error::Error`
/// (that would conflict with the blanket conversion); the run reports the
/// wrapped error as the [`source`](std::error::Error::source) of its `RunError`.
///
/// ```
/// use stroma_core::NodeError;
///
/// fn parse(text: &str) -> Result<u32, NodeError> {
///     let n: u32 = text.trim().parse()?;
///     if n == 0 {
///         return Err(NodeError::msg("zero is not a page count"));
///     }
///     Ok(n)
/// }
/// assert_eq!(parse(" 7 ").unwrap(), 7);
/// assert!(parse("x").unwrap_err().to_string().contains("invalid digit"));
/// ```
pub struct NodeError {
    inner: BoxError,
}

impl NodeError {
    /// An error that is only a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        NodeError {
            inner: message.to_string().into(),
        }
    }

    /// Wraps an already boxed error.
    pub fn from_boxed(inner: BoxError) -> Self {
        NodeError { inner }
    }

    /// The wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }

    /// The wrapped error as `E`, if it is one.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for NodeError {
    fn from(error: E) -> Self {
        NodeError {
            inner: Box::new(error),
        }
    }
}

impl From<NodeError> for BoxError {
    fn from(error: NodeError) -> Self {
        error.inner
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A failed look-up or update in a [`Context`](crate::Context).
///
/// Messages name the type or entry, and the node that asked when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// No value of the requested type.
    MissingType {
        /// The type asked for.
        type_name: &'static str,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
    /// No entry under the requested name.
    MissingName {
        /// The name asked for.
        name: String,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
    /// The entry exists but holds another type.
    WrongType {
        /// The entry's name.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The type stored.
        found: &'static str,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
}

impl ContextError {
    /// The node that asked, if a node did.
    pub fn node(&self) -> Option<&'static str> {
        match self {
            ContextError::MissingType { node, .. }
            | ContextError::MissingName { node, .. }
            | ContextError::WrongType { node, .. } => *node,
        }
    }

    /// The message without the node, for reports that name the node already.
    pub(crate) fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::MissingType { type_name, .. } => write!(
                f,
                "no `{type_name}` in the context; add one to the runner with `Context::new().with(value)`"
            ),
            ContextError::MissingName { name, .. } => write!(
                f,
                "no entry named `{name}` in the context; add one with `insert_named` or `with_named`"
            ),
            ContextError::WrongType {
                name,
                expected,
                found,
                ..
            } => write!(
                f,
                "context entry `{name}` holds a `{found}`, not a `{expected}`"
            ),
        }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(node) = self.node() {
            write!(f, "node `{node}`: ")?;
        }
        self.describe(f)
    }
}

impl StdError for ContextError {}
