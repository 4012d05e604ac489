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

    /// An error that a [`retry`](crate::NodeExt::retry) never retries (a
    /// bad request, a missing record): the node fails at once.
    ///
    /// ```
    /// use stroma_core::NodeError;
    ///
    /// let err = NodeError::permanent("no such order");
    /// assert_eq!(err.to_string(), "no such order");
    /// ```
    pub fn permanent(cause: impl Into<BoxError>) -> Self {
        NodeError {
            inner: Box::new(crate::combinators::retry::Permanent(cause.into())),
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
    /// No variable of that name in any scope the node is in.
    MissingVariable {
        /// The variable asked for.
        name: String,
        /// The scopes searched, nearest first.
        searched: Vec<String>,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
    /// The variable exists but holds another type.
    VariableType {
        /// The variable's name.
        name: String,
        /// The scope that holds it.
        scope: String,
        /// The type asked for.
        expected: &'static str,
        /// The type it holds.
        found: &'static str,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
    /// A look-up of a node's kept output found none.
    Result {
        /// What went wrong, naming the reference.
        error: crate::tree::ResultError,
        /// The node that asked, if a node did.
        node: Option<&'static str>,
    },
    /// Variables, results and templates are read inside a run, by a node.
    NotInRun {
        /// What was asked for.
        what: &'static str,
    },
}

impl ContextError {
    /// The node that asked, if a node did.
    pub fn node(&self) -> Option<&'static str> {
        match self {
            ContextError::MissingType { node, .. }
            | ContextError::MissingName { node, .. }
            | ContextError::WrongType { node, .. }
            | ContextError::MissingVariable { node, .. }
            | ContextError::VariableType { node, .. }
            | ContextError::Result { node, .. } => *node,
            ContextError::NotInRun { .. } => None,
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
            ContextError::MissingVariable { name, searched, .. } => write!(
                f,
                "no variable `{name}` in scope (searched {}); declare it with \
                 `flow(..).var(\"{name}\", value)` or `RunOptions::new().var(..)`",
                searched.join(", ")
            ),
            ContextError::VariableType {
                name,
                scope,
                expected,
                found,
                ..
            } => write!(
                f,
                "variable `{name}` of {scope} holds a `{found}`, not a `{expected}`"
            ),
            ContextError::Result { error, .. } => write!(f, "{error}"),
            ContextError::NotInRun { what } => {
                write!(f, "{what}: there are none to read from this context")
            }
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

/// Branches of one scope wrote the same [`Context`](crate::Context) entry,
/// and the entry does not say how to combine their writes.
///
/// Returned when branches' writes are merged back into the context they
/// were made from. Nothing from the branches is written then: the context
/// is as it was before they ran. The message names the entry and says how
/// to avoid the conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConflict {
    key: ConflictKey,
    /// The first two branches that wrote the entry, by position (from 0) in declaration order.
    branches: (usize, usize),
    /// Why the writes could not be combined, when the entry says how to combine them.
    combine_error: Option<String>,
}

/// The entry two branches wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConflictKey {
    /// An entry stored under a name.
    Name(String),
    /// A value stored by its type.
    Type(&'static str),
}

impl ContextConflict {
    /// Two branches, at positions `branches`, both wrote `key`.
    pub(crate) fn written_twice(key: ConflictKey, branches: (usize, usize)) -> Self {
        ContextConflict {
            key,
            branches,
            combine_error: None,
        }
    }

    /// The branches' writes to `key` say how to combine, but combining failed.
    pub(crate) fn not_combined(
        key: ConflictKey,
        branches: (usize, usize),
        error: impl Into<String>,
    ) -> Self {
        ContextConflict {
            key,
            branches,
            combine_error: Some(error.into()),
        }
    }

    /// The entry: its name, or for a value stored by its type, the type's name.
    pub fn key(&self) -> &str {
        match &self.key {
            ConflictKey::Name(name) => name,
            ConflictKey::Type(type_name) => type_name,
        }
    }

    /// Whether the entry is a value stored by its type rather than under a name.
    pub fn is_by_type(&self) -> bool {
        matches!(self.key, ConflictKey::Type(_))
    }

    /// The first two branches that wrote the entry, by position (from 0) in
    /// declaration order.
    pub fn branches(&self) -> (usize, usize) {
        self.branches
    }
}

impl fmt::Display for ContextConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counted from 1, as `BranchesFailed` lists branches.
        let (first, second) = (self.branches.0 + 1, self.branches.1 + 1);
        match (&self.key, &self.combine_error) {
            (ConflictKey::Name(name), None) => write!(
                f,
                "branches {first} and {second} both wrote the context entry \"{name}\", so \
                 nothing they wrote was kept; write it in one branch only, give each branch an \
                 entry of its own, or store it with `Context::insert_combined` (a `Sum`, an \
                 `Append` or another `Combine`) so that the writes combine"
            ),
            (ConflictKey::Type(type_name), None) => write!(
                f,
                "branches {first} and {second} both wrote a context value of type \
                 `{type_name}`, so nothing they wrote was kept; write it in one branch only, or \
                 have each branch store its value under a name of its own with \
                 `Context::insert_named`"
            ),
            (ConflictKey::Name(name), Some(error)) => write!(
                f,
                "the branches' writes to the context entry \"{name}\" (first by branches \
                 {first} and {second}) could not be combined, so nothing they wrote was kept: {error}"
            ),
            (ConflictKey::Type(type_name), Some(error)) => write!(
                f,
                "the branches' writes to the context value of type `{type_name}` (first by \
                 branches {first} and {second}) could not be combined, so nothing they wrote was kept: {error}"
            ),
        }
    }
}

impl StdError for ContextConflict {}
