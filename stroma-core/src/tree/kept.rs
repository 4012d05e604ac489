//! Kept outputs: what a node produced, held for look-ups after it (and after
//! the run), typed on the way out and serialized only when asked.
//!
//! A copy of the output is kept. One that fits in three words (a number, a
//! small struct, a `String` or `Vec` handle) is kept in place, in the run's
//! entry, so keeping it allocates nothing beyond what its `Clone` does; a
//! larger one is kept behind an `Arc`. A look-up gives an `Arc<T>`.

use std::any::{Any, TypeId};
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// Reads a kept value of a known type as JSON.
#[doc(hidden)]
pub type ToJson = fn(&(dyn Any + Send + Sync)) -> Option<Result<Value, serde_json::Error>>;

/// Room for a value kept in place: three words.
type Inline = MaybeUninit<[usize; 3]>;

/// One node's output as a run keeps it.
#[doc(hidden)]
pub enum Kept {
    /// A copy of the output.
    Value(KeptValue),
    /// The output's type cannot be kept (it is not `Clone + Send + Sync`).
    NotKeepable {
        /// The output's type.
        type_name: &'static str,
    },
}

impl Clone for Kept {
    fn clone(&self) -> Self {
        match self {
            Kept::Value(value) => Kept::Value(value.clone()),
            Kept::NotKeepable { type_name } => Kept::NotKeepable { type_name },
        }
    }
}

/// A kept copy of a value, in place or shared; see the module docs.
#[doc(hidden)]
pub struct KeptValue {
    repr: Repr,
    vtable: &'static Vtable,
    to_json: Option<ToJson>,
}

enum Repr {
    /// A `T` written in place, read and dropped through the vtable.
    Inline(Inline),
    Shared(Arc<dyn Any + Send + Sync>),
}

/// What a kept value's type knows how to do, for a value kept in place.
struct Vtable {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    /// Reads the value in place as `&dyn Any`.
    as_any: unsafe fn(&Inline) -> &(dyn Any + Send + Sync),
    /// Writes a clone of the value in place into a new slot.
    clone: unsafe fn(&Inline) -> Inline,
    /// Drops the value in place.
    drop: unsafe fn(&mut Inline),
}

trait HasVtable {
    const VTABLE: Vtable;
}

impl<T: Clone + Send + Sync + 'static> HasVtable for T {
    const VTABLE: Vtable = Vtable {
        type_id: TypeId::of::<T>,
        type_name: std::any::type_name::<T>,
        as_any: as_any::<T>,
        clone: clone_inline::<T>,
        drop: drop_inline::<T>,
    };
}

/// Whether a `T` fits in place.
const fn fits<T>() -> bool {
    size_of::<T>() <= size_of::<Inline>() && align_of::<T>() <= align_of::<Inline>()
}

// Safety (for the three below): called only through the vtable of the `T`
// that `KeptValue::new` wrote in place, while that value is alive.
unsafe fn as_any<T: Send + Sync + 'static>(slot: &Inline) -> &(dyn Any + Send + Sync) {
    unsafe { &*slot.as_ptr().cast::<T>() }
}

unsafe fn clone_inline<T: Clone>(slot: &Inline) -> Inline {
    let value: &T = unsafe { &*slot.as_ptr().cast::<T>() };
    let mut copy = Inline::uninit();
    unsafe { copy.as_mut_ptr().cast::<T>().write(value.clone()) };
    copy
}

unsafe fn drop_inline<T>(slot: &mut Inline) {
    unsafe { slot.as_mut_ptr().cast::<T>().drop_in_place() }
}

impl KeptValue {
    /// Keeps `value`: in place if it fits, behind an `Arc` otherwise.
    #[inline]
    fn new<T: Clone + Send + Sync + 'static>(value: T, to_json: Option<ToJson>) -> Self {
        let repr = if fits::<T>() {
            let mut slot = Inline::uninit();
            // Safety: `T` fits the slot in size and alignment (checked above).
            unsafe { slot.as_mut_ptr().cast::<T>().write(value) };
            Repr::Inline(slot)
        } else {
            Repr::Shared(Arc::new(value))
        };
        KeptValue {
            repr,
            vtable: &<T as HasVtable>::VTABLE,
            to_json,
        }
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        match &self.repr {
            // Safety: the slot holds the vtable's type, alive until `drop`.
            Repr::Inline(slot) => unsafe { (self.vtable.as_any)(slot) },
            Repr::Shared(shared) => &**shared,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }

    /// The value as a `T`, shared: a value kept in place is copied out.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        if (self.vtable.type_id)() != TypeId::of::<T>() {
            return None;
        }
        match &self.repr {
            Repr::Shared(shared) => Arc::clone(shared).downcast::<T>().ok(),
            Repr::Inline(slot) => {
                // Safety: the slot holds a `T` (its type id says so); its
                // clone is moved out whole, the original stays in place.
                let copy = unsafe { (self.vtable.clone)(slot) };
                let copy = ManuallyDrop::new(copy);
                let value: T = unsafe { copy.as_ptr().cast::<T>().read() };
                Some(Arc::new(value))
            }
        }
    }

    /// The value as JSON, if its type can be read so.
    pub(crate) fn json(&self) -> Option<Result<Value, serde_json::Error>> {
        (self.to_json?)(self.as_any())
    }
}

impl Clone for KeptValue {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            // Safety: the slot holds the vtable's type, alive.
            Repr::Inline(slot) => Repr::Inline(unsafe { (self.vtable.clone)(slot) }),
            Repr::Shared(shared) => Repr::Shared(Arc::clone(shared)),
        };
        KeptValue {
            repr,
            vtable: self.vtable,
            to_json: self.to_json,
        }
    }
}

impl Drop for KeptValue {
    fn drop(&mut self) {
        if let Repr::Inline(slot) = &mut self.repr {
            // Safety: the slot holds the vtable's type, dropped only here.
            unsafe { (self.vtable.drop)(slot) }
        }
    }
}

// Safety: only `T: Send + Sync` values are kept (see `KeptValue::new`).
unsafe impl Send for KeptValue {}
unsafe impl Sync for KeptValue {}

impl Kept {
    /// The output as JSON: `None` when it was not kept or its type is not `Serialize`.
    pub(crate) fn to_json(&self) -> Option<Result<Value, serde_json::Error>> {
        match self {
            Kept::Value(value) => value.json(),
            Kept::NotKeepable { .. } => None,
        }
    }
}

impl fmt::Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Value(value) => write!(f, "Kept<{}>", value.type_name()),
            Kept::NotKeepable { type_name } => write!(f, "NotKeepable<{type_name}>"),
        }
    }
}

/// Keeps an output by autoref: `(&KeepProbe(&output)).stroma_keep(..)` picks
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
        Kept::Value(KeptValue::new(self.0.clone(), to_json))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its live copies.
    #[derive(Debug)]
    struct Counted(&'static AtomicUsize, u8);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.0.fetch_add(1, Ordering::SeqCst);
            Counted(self.0, self.1)
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn values_kept_in_place_and_shared_read_back_and_drop_once() {
        static LIVE: AtomicUsize = AtomicUsize::new(0);
        LIVE.store(1, Ordering::SeqCst);
        let original = Counted(&LIVE, 7);
        let kept = KeptValue::new(original.clone(), None);
        assert!(matches!(kept.repr, Repr::Inline(_)));
        assert_eq!(LIVE.load(Ordering::SeqCst), 2);
        let copy = kept.clone();
        assert_eq!(kept.get::<Counted>().unwrap().1, 7);
        assert!(kept.get::<u8>().is_none());
        assert_eq!(kept.type_name(), std::any::type_name::<Counted>());
        drop((kept, copy, original));
        assert_eq!(LIVE.load(Ordering::SeqCst), 0);

        let big = [1_u64; 8];
        let kept = KeptValue::new(big, None);
        assert!(matches!(kept.repr, Repr::Shared(_)));
        assert_eq!(*kept.get::<[u64; 8]>().unwrap(), big);
        let text = KeptValue::new(String::from("kept in place"), None);
        assert!(matches!(text.repr, Repr::Inline(_)));
        assert_eq!(*text.get::<String>().unwrap(), "kept in place");
    }
}
