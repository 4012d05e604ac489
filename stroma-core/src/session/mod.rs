//! Conversation sessions: the ordered list of messages a conversation has so
//! far, behind one object-safe trait, [`Session`].
//!
//! Two implementations ship: [`MemorySession`] (in the process, for tests and
//! short-lived runs) and, with the `sqlite` feature (on by default),
//! [`SqliteSession`] (an embedded SQLite file that survives restarts).

mod error;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;
pub(crate) mod view;

use std::sync::Arc;

pub use error::{SessionError, SessionErrorKind};
pub use memory::MemorySession;
#[cfg(feature = "sqlite")]
pub use sqlite::{SCHEMA_VERSION, SqliteSession};
pub use view::{SessionMode, SessionView};

use crate::run::middleware::BoxFuture;

impl std::fmt::Debug for dyn Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session")
    }
}

/// One message of a conversation, such as
/// `{"role": "user", "content": "Hello"}`. Sessions store items as they are
/// given and do not look inside them.
pub type Item = serde_json::Value;

/// The history of one conversation: items in the order they were added.
///
/// Every method is async and returns a [`BoxFuture`], so the trait is
/// object-safe: `Arc<dyn Session>` works, and a run can hold any store. The
/// work starts when the future is first polled.
///
/// # Implementing
///
/// Write each method as `Box::pin(async move { .. })`. Items must come back
/// oldest first, and [`add_items`](Session::add_items) must store all of its
/// items or none. Report failures with [`SessionError::new`] (or
/// [`SessionError::corrupt_item`] for data that cannot be decoded).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use stroma_core::{BoxFuture, Item, Session, SessionError};
///
/// /// Keeps only the last `cap` items.
/// struct Capped {
///     cap: usize,
///     items: Mutex<Vec<Item>>,
/// }
///
/// impl Session for Capped {
///     fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>> {
///         Box::pin(async move {
///             let items = self.items.lock().map_err(|e| SessionError::new("get_items", "capped", e.to_string()))?;
///             let skip = items.len().saturating_sub(limit.unwrap_or(usize::MAX));
///             Ok(items[skip..].to_vec())
///         })
///     }
///
///     fn add_items(&self, new: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>> {
///         Box::pin(async move {
///             let mut items = self.items.lock().map_err(|e| SessionError::new("add_items", "capped", e.to_string()))?;
///             items.extend(new);
///             let excess = items.len().saturating_sub(self.cap);
///             items.drain(..excess);
///             Ok(())
///         })
///     }
///
///     fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>> {
///         Box::pin(async move {
///             let mut items = self.items.lock().map_err(|e| SessionError::new("pop_item", "capped", e.to_string()))?;
///             Ok(items.pop())
///         })
///     }
///
///     fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>> {
///         Box::pin(async move {
///             let mut items = self.items.lock().map_err(|e| SessionError::new("clear", "capped", e.to_string()))?;
///             items.clear();
///             Ok(())
///         })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let session: Arc<dyn Session> = Arc::new(Capped { cap: 2, items: Mutex::new(Vec::new()) });
/// session.add_items(vec!["a".into(), "b".into(), "c".into()]).await?;
/// assert_eq!(session.get_items(None).await?, vec![Item::from("b"), Item::from("c")]);
/// # Ok::<(), SessionError>(())
/// # }).unwrap();
/// ```
pub trait Session: Send + Sync {
    /// The most recent `limit` items (all of them if `None`), oldest first.
    fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>>;

    /// Appends `items` in order, atomically: after an error, none of them
    /// were added.
    fn add_items(&self, items: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>>;

    /// Removes and returns the most recent item; `None` if the session is
    /// empty.
    fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>>;

    /// Removes every item.
    fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>>;
}

/// A shared session is a session: `Arc<MemorySession>`, `Arc<dyn Session>`.
impl<S: Session + ?Sized> Session for Arc<S> {
    fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>> {
        (**self).get_items(limit)
    }

    fn add_items(&self, items: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>> {
        (**self).add_items(items)
    }

    fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>> {
        (**self).pop_item()
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>> {
        (**self).clear()
    }
}

/// A boxed session is a session: `Box<dyn Session>`.
impl<S: Session + ?Sized> Session for Box<S> {
    fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>> {
        (**self).get_items(limit)
    }

    fn add_items(&self, items: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>> {
        (**self).add_items(items)
    }

    fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>> {
        (**self).pop_item()
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>> {
        (**self).clear()
    }
}
