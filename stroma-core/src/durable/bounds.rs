//! What a pipeline must be to run durably: every node's output (and the
//! model, and the run's input) can be saved and read back. Checked when the
//! crate compiles; the codecs that save them are picked by autoref where
//! `#[node]` names the concrete type, so plain runs ask nothing of it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::depth::check_depth;

/// How many levels of arrays and objects a checkpoint's `state` puts around
/// a saved output or model: `{"records": [{"output": ..}]}` (see
/// `durable/journal.rs`). A store that keeps text reads the state whole, so
/// they count toward serde_json's depth limit.
const CHECKPOINT_LEVELS: usize = 3;

/// How many levels a checkpoint puts around a context entry saved with
/// `Context::insert_saved`: the record's `context` list and the
/// `[name, value]` pair, inside the record.
pub(crate) const ENTRY_LEVELS: usize = CHECKPOINT_LEVELS + 2;

/// How many levels a checkpoint puts around an interrupt's question: the
/// end record's `interrupts` list and the interrupt's object.
pub(crate) const QUESTION_LEVELS: usize = CHECKPOINT_LEVELS + 2;

/// `value` as JSON, if a checkpoint holding it as an output, a model, a
/// step's result or an answer can be read back from text.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Value, String> {
    encode_within(value, CHECKPOINT_LEVELS)
}

/// `value` as JSON, if a checkpoint holding it `around` levels down can be
/// read back from text.
pub(crate) fn encode_within<T: Serialize + ?Sized>(
    value: &T,
    around: usize,
) -> Result<Value, String> {
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    check_depth(&json, around).map_err(|deep| format!("it {deep}"))?;
    Ok(json)
}

/// `json` as a `T`, if it nests no deeper than [`encode`] lets through:
/// the recursive read of anything deeper (a state a store built in code)
/// could overflow the stack.
fn decode<T: DeserializeOwned>(json: Value) -> Result<T, String> {
    check_depth(&json, CHECKPOINT_LEVELS).map_err(|deep| format!("it {deep}"))?;
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// A type a checkpoint can hold: `Serialize + DeserializeOwned`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved in a checkpoint",
    label = "not `Serialize + DeserializeOwned`",
    note = "a durable run saves every node's output, its model and its input: \
            derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, \
            or run the pipeline with `runner.run(..)`, which saves nothing"
)]
pub trait Saveable: Serialize + DeserializeOwned + Send + 'static {}

// Not looked through in errors: "`T` cannot be saved" once, rather than one
// error for each of serde's traits.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Saveable for T {}

/// A node that can run durably: its outputs, and those of every node
/// inside it, are [`Saveable`]. `#[node]`, `pipeline!` and the combinators
/// implement it; [`StromaRunner::run_durable`](crate::StromaRunner::run_durable)
/// asks for it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run durably",
    label = "a node's output here cannot be saved",
    note = "every node of a durable run has an output that is `Serialize + DeserializeOwned`"
)]
pub trait Durable {}

/// How a durable run saves and reads back one node's output.
#[doc(hidden)]
pub struct LeafCodec<T> {
    pub(crate) encode: fn(&T) -> Result<Value, String>,
    pub(crate) decode: fn(Value) -> Result<T, String>,
    /// Whether the node may change the model: its checkpoint then holds the model.
    pub(crate) changes_model: bool,
}

impl<T> Clone for LeafCodec<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for LeafCodec<T> {}

impl<T> LeafCodec<T> {
    /// This codec, saying whether the node may change the model.
    #[inline(always)]
    pub fn changing_model(mut self, changes: bool) -> Self {
        self.changes_model = changes;
        self
    }
}

/// Picks a [`LeafCodec`] by autoref: `(&CodecProbe::<T>::new()).stroma_codec()`.
#[doc(hidden)]
pub struct CodecProbe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> CodecProbe<T> {
    /// The probe.
    #[inline(always)]
    pub fn new() -> Self {
        CodecProbe(std::marker::PhantomData)
    }
}

impl<T> Default for CodecProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Chosen for saveable types.
#[doc(hidden)]
pub trait SaveCodec<T> {
    /// The codec.
    fn stroma_codec(&self) -> LeafCodec<T>;
}

impl<T: Serialize + DeserializeOwned> SaveCodec<T> for CodecProbe<T> {
    #[inline(always)]
    fn stroma_codec(&self) -> LeafCodec<T> {
        LeafCodec {
            encode: encode::<T>,
            decode: decode::<T>,
            changes_model: false,
        }
    }
}

/// Chosen for other types; a durable run never meets one ([`Durable`] is
/// checked first), so these only say what went wrong.
#[doc(hidden)]
pub trait NoCodec<T> {
    /// The codec.
    fn stroma_codec(&self) -> LeafCodec<T>;
}

impl<T> NoCodec<T> for &CodecProbe<T> {
    #[inline(always)]
    fn stroma_codec(&self) -> LeafCodec<T> {
        LeafCodec {
            encode: |_| Err(format!("`{}` cannot be saved", std::any::type_name::<T>())),
            decode: |_| {
                Err(format!(
                    "`{}` cannot be read back",
                    std::any::type_name::<T>()
                ))
            },
            changes_model: false,
        }
    }
}

/// How a durable run saves and reads back its model, kept type-erased in the
/// run's state and found again by the model's type.
pub(crate) struct ModelCodec<M> {
    pub(crate) encode: fn(&M) -> Result<Value, String>,
    pub(crate) decode: fn(Value) -> Result<M, String>,
}

impl<M: Saveable> ModelCodec<M> {
    pub(crate) fn new() -> Self {
        ModelCodec {
            encode: encode::<M>,
            decode: decode::<M>,
        }
    }
}
