//! Where a failed run keeps its model: [`ModelSlot`], in a module of its
//! own so that nothing but its two methods reaches the model.

use std::any::Any;

/// A failed run's model, of a type only the caller knows.
///
/// A `RunError` is `Sync` (so it converts into `anyhow::Error` and tower's
/// boxed errors), while a model need only be `Send`: the slot lends its
/// model out only as a type that is `Sync`, and gives it up only by value.
pub(crate) struct ModelSlot(Box<dyn Any + Send>);

// SAFETY: through `&ModelSlot`, the model is reached only by `lend`, as an
// `M: Sync`, which may be shared between threads. Its `downcast_ref` asks
// the value its type id, a constant that reads nothing of the value. All
// else (`take`, drop) holds the slot by value, which a shared reference
// cannot give.
unsafe impl Sync for ModelSlot {}

impl ModelSlot {
    pub(crate) fn new<M: Send + 'static>(model: M) -> Self {
        ModelSlot(Box::new(model))
    }

    pub(crate) fn lend<M: Sync + 'static>(&self) -> Option<&M> {
        self.0.downcast_ref()
    }

    pub(crate) fn take<M: 'static>(self) -> Option<M> {
        self.0.downcast().ok().map(|m| *m)
    }
}
