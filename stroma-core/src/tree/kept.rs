//! Kept outputs: what a node produced, held for look-ups after it (and after
//! the run), typed on the way out and serialized only when asked.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

#[doc(hidden)]
pub type ToJson = fn(&(dyn Any + Send + Sync)) -> Option<Result<Value, serde_json::Error>>;

/// One node's output as a run keeps it.
#[doc(hidden)]
#[derive(Clone)]
pub enum Kept {
    /// The output, shared, and how to read it as JSON if its type can be.
    Value {
        value: Arc<dyn Any + Send + Sync>,
        type_name: &'static str,
        to_json: Option<ToJson>,
    },
    /// The output's type cannot be kept (it is not `Clone + Send + Sync`).
    NotKeepable { type_name: &'static str },
}

impl Kept {
    /// The output as JSON: `None` when it was not kept or its type is not `Serialize`.
    pub(crate) fn to_json(&self) -> Option<Result<Value, serde_json::Error>> {
        match self {
            Kept::Value {
                value,
                to_json: Some(to_json),
                ..
            } => to_json(&**value),
            _ => None,
        }
    }
}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Value { type_name, .. } => write!(f, "Kept<{type_name}>"),
            Kept::NotKeepable { type_name } => write!(f, "NotKeepable<{type_name}>"),
        }
    }
}

/// Keeps an output by autoref: `(&KeepProbe(&output)).stroma_keep()` picks
/// [`KeepCloned`] when the output's type is `Clone + Send + Sync + 'static`
/// and [`KeepNothing`] otherwise, with no bound the user writes.
#[doc(hidden)]
pub struct KeepProbe<'a, T>(pub &'a T);

/// Chosen for outputs that can be kept.
#[doc(hidden)]
pub trait KeepCloned {
    /// A kept copy of the output, read as JSON with `to_json` if given.
    fn stroma_keep(&self, to_json: Option<ToJson>) -> Kept;
}

impl<T: Clone + Send + Sync + 'static> KeepCloned for KeepProbe<'_, T> {
    #[inline]
    fn stroma_keep(&self, to_json: Option<ToJson>) -> Kept {
        Kept::Value {
            value: Arc::new(self.0.clone()),
            type_name: std::any::type_name::<T>(),
            to_json,
        }
    }
}

/// Chosen for outputs that cannot be kept: a marker naming the type.
#[doc(hidden)]
pub trait KeepNothing {
    /// The marker.
    fn stroma_keep(&self, to_json: Option<ToJson>) -> Kept;
}

impl<T> KeepNothing for &KeepProbe<'_, T> {
    #[inline]
    fn stroma_keep(&self, _: Option<ToJson>) -> Kept {
        Kept::NotKeepable {
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// How to read a kept output as JSON, chosen by autoref where `#[node]`
/// names the concrete type: `(&JsonProbe::<T>::new()).stroma_to_json()`.
#[doc(hidden)]
pub struct JsonProbe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> JsonProbe<T> {
    /// The probe.
    #[inline(always)]
    pub fn new() -> Self {
        JsonProbe(std::marker::PhantomData)
    }
}

impl<T> Default for JsonProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Chosen for `Serialize` types.
#[doc(hidden)]
pub trait AsJson {
    /// The reader.
    fn stroma_to_json(&self) -> Option<ToJson>;
}

impl<T: Serialize + Send + Sync + 'static> AsJson for JsonProbe<T> {
    #[inline(always)]
    fn stroma_to_json(&self) -> Option<ToJson> {
        fn to_json<T: Serialize + 'static>(
            value: &(dyn Any + Send + Sync),
        ) -> Option<Result<Value, serde_json::Error>> {
            value.downcast_ref::<T>().map(serde_json::to_value)
        }
        Some(to_json::<T>)
    }
}

/// Chosen for other types: no JSON.
#[doc(hidden)]
pub trait NoJson {
    /// No reader.
    fn stroma_to_json(&self) -> Option<ToJson>;
}

impl<T> NoJson for &JsonProbe<T> {
    #[inline(always)]
    fn stroma_to_json(&self) -> Option<ToJson> {
        None
    }
}
