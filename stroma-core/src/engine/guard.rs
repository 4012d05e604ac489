//! [`ModelGuard`]: puts the model back as it was before a node, unless the
//! node succeeded, on every way out: an error, a panic while unwinding, or
//! the node's future being dropped midway (a cancelled run).

/// Holds the model and a copy taken before the node; dropping the guard
/// without [`settle`](Self::settle) saying the node succeeded restores the copy.
#[doc(hidden)]
pub struct ModelGuard<'m, M> {
    model: &'m mut M,
    saved: Option<M>,
}

impl<'m, M> ModelGuard<'m, M> {
    /// Guards `model`, whose copy before the node is `saved`.
    #[inline]
    pub fn new(model: &'m mut M, saved: M) -> Self {
        ModelGuard {
            model,
            saved: Some(saved),
        }
    }

    /// The model, for the node to change.
    #[inline]
    pub fn model_mut(&mut self) -> &mut M {
        self.model
    }

    /// The node ended with `outcome`: its changes stay if it succeeded, and
    /// are undone (now) if it failed.
    #[inline]
    pub fn settle<T, E>(mut self, outcome: &Result<T, E>) {
        if outcome.is_ok() {
            self.saved = None;
        }
    }
}

impl<M> Drop for ModelGuard<'_, M> {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            *self.model = saved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn a_node_future_dropped_midway_leaves_the_model_as_before() {
        let mut model = vec![1];
        {
            let node = async {
                let saved = model.clone();
                let mut guard = ModelGuard::new(&mut model, saved);
                guard.model_mut().push(2);
                // Never ready: the future is dropped here, mid-node.
                std::future::pending::<()>().await;
                guard.settle(&Ok::<(), ()>(()));
            };
            let mut node = pin!(node);
            let mut task = Context::from_waker(Waker::noop());
            assert!(node.as_mut().poll(&mut task).is_pending());
        }
        assert_eq!(model, [1]);
    }

    #[test]
    fn success_keeps_the_change_and_failure_undoes_it() {
        let mut model = 1;
        let mut guard = ModelGuard::new(&mut model, 1);
        *guard.model_mut() = 2;
        guard.settle(&Ok::<(), ()>(()));
        assert_eq!(model, 2);
        let mut guard = ModelGuard::new(&mut model, 2);
        *guard.model_mut() = 3;
        guard.settle(&Err::<(), ()>(()));
        assert_eq!(model, 2);
        let _ = Poll::<()>::Pending;
    }
}
