//! [`SessionError`]: what a session operation failed at, on which session, and why.

use std::error::Error as StdError;
use std::fmt;

use crate::error::BoxError;

/// What kind of failure a [`SessionError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionErrorKind {
    /// The store itself failed: I/O, SQL, a lock, a task that did not finish.
    /// Retrying may help.
    Storage,
    /// A stored item cannot be decoded. `seq` is its position in the session
    /// (for [`SqliteSession`](crate::SqliteSession), the row's `seq` column).
    /// Retrying does not help: the stored data needs repair.
    CorruptItem {
        /// The item's position in the session.
        seq: i64,
    },
    /// The store was written by a newer or unknown schema version.
    SchemaVersion {
        /// The version found in the store.
        found: i64,
    },
}

/// A [`Session`](crate::Session) operation failed.
///
/// It says which operation failed ([`operation`](Self::operation)), on which
/// session ([`session_id`](Self::session_id)), and why: the cause is both in
/// the message and, where there is one, the error's
/// [`source`](std::error::Error::source).
///
/// Implementers of [`Session`](crate::Session) build one with
/// [`SessionError::new`]:
///
/// ```
/// use stroma_core::{SessionError, SessionErrorKind};
///
/// let err = SessionError::new("add_items", "chat-7", "the store is read-only");
/// assert_eq!(err.session_id(), "chat-7");
/// assert_eq!(err.kind(), SessionErrorKind::Storage);
/// assert_eq!(err.to_string(), "session \"chat-7\": add_items failed: the store is read-only");
/// ```
#[derive(Debug)]
pub struct SessionError {
    operation: &'static str,
    session_id: String,
    kind: SessionErrorKind,
    cause: BoxError,
}

impl SessionError {
    /// A failure of the store (kind [`SessionErrorKind::Storage`]) while
    /// running `operation` (a method name such as `"add_items"`) on
    /// `session_id`.
    pub fn new(
        operation: &'static str,
        session_id: impl Into<String>,
        cause: impl Into<BoxError>,
    ) -> Self {
        SessionError {
            operation,
            session_id: session_id.into(),
            kind: SessionErrorKind::Storage,
            cause: cause.into(),
        }
    }

    /// The item at `seq` cannot be decoded (kind
    /// [`SessionErrorKind::CorruptItem`]); `cause` says why.
    ///
    /// ```
    /// use stroma_core::{SessionError, SessionErrorKind};
    ///
    /// let bad = serde_json::from_str::<serde_json::Value>("{oops").unwrap_err();
    /// let err = SessionError::corrupt_item("get_items", "chat-7", 3, bad);
    /// assert_eq!(err.kind(), SessionErrorKind::CorruptItem { seq: 3 });
    /// assert!(err.to_string().starts_with("session \"chat-7\": get_items failed: item at seq 3 cannot be decoded: "));
    /// ```
    pub fn corrupt_item(
        operation: &'static str,
        session_id: impl Into<String>,
        seq: i64,
        cause: impl Into<BoxError>,
    ) -> Self {
        SessionError {
            kind: SessionErrorKind::CorruptItem { seq },
            ..SessionError::new(operation, session_id, cause)
        }
    }

    /// This error with kind `kind` instead.
    #[cfg(feature = "sqlite")]
    pub(crate) fn with_kind(mut self, kind: SessionErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The operation that failed: `"get_items"`, `"add_items"`, `"pop_item"`,
    /// `"clear"`, or `"open"`.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// The session the operation was on.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> SessionErrorKind {
        self.kind
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session {:?}: {} failed: ",
            self.session_id, self.operation
        )?;
        match self.kind {
            SessionErrorKind::Storage => {}
            SessionErrorKind::CorruptItem { seq } => {
                write!(f, "item at seq {seq} cannot be decoded: ")?
            }
            SessionErrorKind::SchemaVersion { found } => {
                write!(f, "unknown schema version {found}: ")?
            }
        }
        write!(f, "{}", self.cause)
    }
}

impl StdError for SessionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.cause)
    }
}
