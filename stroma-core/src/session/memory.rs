//! [`MemorySession`]: a session held in the process.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Item, Session, SessionError};
use crate::run::middleware::BoxFuture;

/// A session kept in memory: for tests and for conversations that need not
/// outlive the process.
///
/// A cheap handle: clones share the same items. Operations never fail.
///
/// ```
/// use serde_json::json;
/// use stroma_core::{MemorySession, Session};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let session = MemorySession::new();
/// let shared = session.clone();
/// session.add_items(vec![
///     json!({"role": "user", "content": "Hi"}),
///     json!({"role": "assistant", "content": "Hello!"}),
/// ]).await?;
///
/// // The clone sees the same items, oldest first.
/// assert_eq!(shared.get_items(None).await?.len(), 2);
/// assert_eq!(shared.get_items(Some(1)).await?, vec![json!({"role": "assistant", "content": "Hello!"})]);
///
/// assert_eq!(session.pop_item().await?, Some(json!({"role": "assistant", "content": "Hello!"})));
/// session.clear().await?;
/// assert_eq!(session.pop_item().await?, None);
/// # Ok::<(), stroma_core::SessionError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySession {
    items: Arc<Mutex<Vec<Item>>>,
}

impl MemorySession {
    /// An empty session.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session that starts with `items` (oldest first).
    ///
    /// ```
    /// use serde_json::json;
    /// use stroma_core::{MemorySession, Session};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let session = MemorySession::with_items(vec![json!("first"), json!("second")]);
    /// assert_eq!(session.get_items(None).await?, vec![json!("first"), json!("second")]);
    /// # Ok::<(), stroma_core::SessionError>(())
    /// # }).unwrap();
    /// ```
    pub fn with_items(items: Vec<Item>) -> Self {
        MemorySession {
            items: Arc::new(Mutex::new(items)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Item>> {
        // No operation can panic halfway through a change (each is one Vec
        // call), so the items behind a poisoned lock are still whole.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Session for MemorySession {
    fn get_items(&self, limit: Option<usize>) -> BoxFuture<'_, Result<Vec<Item>, SessionError>> {
        Box::pin(async move {
            let items = self.lock();
            let skip = match limit {
                Some(limit) => items.len().saturating_sub(limit),
                None => 0,
            };
            Ok(items[skip..].to_vec())
        })
    }

    fn add_items(&self, new: Vec<Item>) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.lock().extend(new);
            Ok(())
        })
    }

    fn pop_item(&self) -> BoxFuture<'_, Result<Option<Item>, SessionError>> {
        Box::pin(async move { Ok(self.lock().pop()) })
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.lock().clear();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn limit_takes_the_most_recent_oldest_first() {
        block_on(async {
            let s = MemorySession::with_items(vec![json!(1), json!(2), json!(3)]);
            assert_eq!(
                s.get_items(Some(2)).await.unwrap(),
                vec![json!(2), json!(3)]
            );
            assert_eq!(s.get_items(Some(0)).await.unwrap(), Vec::<Item>::new());
            assert_eq!(s.get_items(Some(10)).await.unwrap().len(), 3);
        });
    }

    #[test]
    fn a_future_that_is_never_polled_changes_nothing() {
        block_on(async {
            let s = MemorySession::new();
            drop(s.add_items(vec![json!(1)]));
            assert!(s.get_items(None).await.unwrap().is_empty());
        });
    }
}
