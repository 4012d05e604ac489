//! The typed run model: [`PipelineContext`] with its built-in fields, the
//! [`ModelValidate`] hook, and construction from partial initial data.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, RwLock};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::model::depth::{TooDeep, check_fields_depth};

/// A check a model runs after every change a node makes to it.
///
/// Implement it to keep a model consistent: when `validate` errs after a
/// node changed the model, the node fails with the message and the model is
/// put back as it was before that node. Models that do not implement it are
/// always valid.
///
/// ```
/// use stroma_core::ModelValidate;
///
/// #[derive(Clone)]
/// struct Budget { spent: u32, limit: u32 }
///
/// impl ModelValidate for Budget {
///     fn validate(&self) -> Result<(), String> {
///         if self.spent > self.limit {
///             return Err(format!("spent {} over the limit of {}", self.spent, self.limit));
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait ModelValidate {
    /// `Ok` when the model is consistent; otherwise what is wrong.
    fn validate(&self) -> Result<(), String>;
}

/// A question put to a person during a run, and the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanInteraction {
    /// When the question was asked.
    pub asked_at: SystemTime,
    /// When the answer came, if it has.
    pub answered_at: Option<SystemTime>,
    /// What was asked.
    pub prompt: String,
    /// What the person answered, if they have.
    pub response: Option<String>,
}

/// A command a run issued, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutedCommandLog {
    /// When the command started.
    pub started_at: SystemTime,
    /// When it finished.
    pub finished_at: SystemTime,
    /// The command, as issued.
    pub command: String,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// What it printed or returned, or why it failed.
    pub outcome: String,
}

/// A typed run model: the user's fields `T` beside built-in fields the
/// runner and nodes share.
///
/// The user's fields are reached through `Deref`: `model.is_clear` reads
/// `T::is_clear`. Serialized, `T`'s fields stand beside the built-ins as
/// top-level keys, so a node updating the model by field name
/// (`#[node(updates_context)]`) names them directly.
///
/// `initial_input` is set by the runner to the run's input, as JSON, before
/// the first node runs: what the pipeline's first node gives as
/// [`Node::input_json`](crate::Node::input_json) (a `#[node]` whose input
/// type is `Serialize` gives its input), or `null` when it gives none.
///
/// How deep values may nest: serde_json refuses JSON text whose arrays and
/// objects nest 128 levels deep ("recursion limit exceeded"), and values
/// built in code are held to the same limit before stroma walks them: in
/// [`from_initial`](Self::from_initial), `updates_context` and branch
/// merges, and a durable run's checkpoints (outputs, models, step results,
/// saved context entries, questions and answers, with the levels the
/// checkpoint puts around each). A
/// deeper value is refused with an error naming the field (and, in a run,
/// the node) rather than walked at the risk of the stack. serde_json's own
/// clone, drop and serialization of a value recurse too, unchecked: a value
/// too deep for those is out of stroma's reach.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
/// use stroma_core::PipelineContext;
///
/// #[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// struct Discovery { frontier: Vec<u32>, seen: Vec<u32> }
///
/// let ctx = PipelineContext::<Discovery>::from_initial(json!({"frontier": [123]})).unwrap();
/// assert_eq!(ctx.frontier, [123]);        // by Deref
/// assert!(ctx.seen.is_empty());            // missing: the default
///
/// let err = PipelineContext::<Discovery>::from_initial(json!({"frontier": [1], "sen": []}));
/// assert!(err.unwrap_err().to_string().contains("`sen`"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PipelineContext<T> {
    /// The run's input, as JSON (set by the runner; `null` if it has no JSON form).
    pub initial_input: Value,
    /// Free-form notes nodes share.
    pub scratchpad: Map<String, Value>,
    /// Every question put to a person, in order.
    pub hitl_history: Vec<HumanInteraction>,
    /// Every command the run issued, in order.
    pub command_log: Vec<ExecutedCommandLog>,
    /// The user's fields.
    #[serde(flatten)]
    pub data: T,
}

/// The built-in keys, which [`PipelineContext::from_initial`] accepts beside `T`'s.
const BUILT_IN: [&str; 4] = ["initial_input", "scratchpad", "hitl_history", "command_log"];

/// Partial initial data did not make a model: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDataError {
    key: Option<String>,
    message: String,
}

impl ModelDataError {
    /// The offending key, when one key is at fault.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

impl fmt::Display for ModelDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "model field `{key}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ModelDataError {}

impl<T> PipelineContext<T> {
    /// A model holding `data` and empty built-ins.
    pub fn new(data: T) -> Self
    where
        T: 'static,
    {
        register_input_filler::<T>();
        PipelineContext {
            initial_input: Value::Null,
            scratchpad: Map::new(),
            hitl_history: Vec::new(),
            command_log: Vec::new(),
            data,
        }
    }
}

impl<T: Default + Serialize + DeserializeOwned + 'static> PipelineContext<T> {
    /// A model from partial data: a JSON object with some of `T`'s fields
    /// and of the built-ins. Missing fields take `T::default()`'s values; an
    /// unknown key, or a value of the wrong type, is an error naming it.
    pub fn from_initial(data: Value) -> Result<Self, ModelDataError> {
        let Value::Object(given) = data else {
            return Err(ModelDataError {
                key: None,
                message: format!(
                    "initial model data must be a JSON object, not {}",
                    quote_value(&data)
                ),
            });
        };
        check_fields_depth(&given).map_err(|deep| too_deep("the value", deep))?;
        // A field of `T` named like a built-in would be read as the built-in.
        if let Ok(Value::Object(own)) = serde_json::to_value(T::default())
            && let Some(clash) = own.keys().find(|k| BUILT_IN.contains(&k.as_str()))
        {
            return Err(ModelDataError {
                key: Some(clash.clone()),
                message: format!(
                    "`{}` has a field named like the built-in `{clash}` of `PipelineContext`; \
                     rename it (`#[serde(rename = \"..\")]` will do)",
                    std::any::type_name::<T>()
                ),
            });
        }
        let mut merged = match serde_json::to_value(Self::new(T::default())) {
            Ok(Value::Object(defaults)) => defaults,
            _ => {
                return Err(ModelDataError {
                    key: None,
                    message: "the model's fields must serialize as a JSON object".into(),
                });
            }
        };
        // Read back below with each given key in turn, so checked apart from them.
        check_fields_depth(&merged).map_err(|deep| too_deep("the default value", deep))?;
        for (key, _) in &given {
            if !merged.contains_key(key) {
                let mut known: Vec<&str> = merged
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !BUILT_IN.contains(k))
                    .collect();
                known.sort_unstable();
                return Err(ModelDataError {
                    key: Some(key.clone()),
                    message: format!("no such field; the model's fields are {known:?}"),
                });
            }
        }
        let defaults = merged.clone();
        merged.extend(given.clone());
        match serde_json::from_value::<Self>(Value::Object(merged)) {
            Ok(model) => Ok(model),
            // Find the key at fault: apply the given keys one at a time.
            Err(err) => Err(given
                .into_iter()
                .find_map(|(key, value)| {
                    let mut one = defaults.clone();
                    one.insert(key.clone(), value);
                    serde_json::from_value::<Self>(Value::Object(one))
                        .err()
                        .map(|err| ModelDataError {
                            key: Some(key),
                            message: shorten(err.to_string()),
                        })
                })
                .unwrap_or(ModelDataError {
                    key: None,
                    message: shorten(err.to_string()),
                })),
        }
    }
}

impl<T: Default + 'static> Default for PipelineContext<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Deref for PipelineContext<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T> DerefMut for PipelineContext<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ModelValidate> ModelValidate for PipelineContext<T> {
    fn validate(&self) -> Result<(), String> {
        self.data.validate()
    }
}

impl<'de, T: Deserialize<'de> + 'static> Deserialize<'de> for PipelineContext<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The same shape, derived; the public type adds the registration.
        #[derive(Deserialize)]
        struct Shape<T> {
            #[serde(default)]
            initial_input: Value,
            #[serde(default)]
            scratchpad: Map<String, Value>,
            #[serde(default)]
            hitl_history: Vec<HumanInteraction>,
            #[serde(default)]
            command_log: Vec<ExecutedCommandLog>,
            #[serde(flatten)]
            data: T,
        }
        let shape = Shape::<T>::deserialize(deserializer)?;
        let mut model = PipelineContext::new(shape.data);
        model.initial_input = shape.initial_input;
        model.scratchpad = shape.scratchpad;
        model.hitl_history = shape.hitl_history;
        model.command_log = shape.command_log;
        Ok(model)
    }
}

/// `deep`, found in `what` (`the value`, `the default value`), as the
/// error naming its top-level key.
fn too_deep(what: &str, deep: TooDeep) -> ModelDataError {
    ModelDataError {
        message: format!("{what} {deep}"),
        key: deep.field,
    }
}

/// The longest message a [`ModelDataError`] quotes of the data it was given:
/// a bad value of megabytes makes an error of a line.
const QUOTE_LIMIT: usize = 160;

/// `message`, cut to [`QUOTE_LIMIT`] characters (serde's messages quote the
/// offending value whole).
fn shorten(message: String) -> String {
    match message.char_indices().nth(QUOTE_LIMIT) {
        None => message,
        Some((at, _)) => format!("{}… ({} bytes in all)", &message[..at], message.len()),
    }
}

/// `value` as a short quote: its kind and the start of its JSON text.
fn quote_value(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind}: {}", shorten(value.to_string()))
}

/// Sets a model's `initial_input`, for model types that have one.
pub(crate) type InputFiller = fn(&mut dyn Any, Value);

/// Which model types take the run's input, by `TypeId`: filled as
/// `PipelineContext<T>`s are made, read once per run.
static INPUT_FILLERS: LazyLock<RwLock<HashMap<TypeId, InputFiller>>> =
    LazyLock::new(Default::default);

/// Appends questions and answers to a model's `hitl_history`, for model
/// types that have one.
type InteractionRecorder = fn(&mut dyn Any, Vec<HumanInteraction>) -> bool;

/// Which model types keep a `hitl_history`, by `TypeId`: filled with the
/// input fillers.
static INTERACTION_RECORDERS: LazyLock<RwLock<HashMap<TypeId, InteractionRecorder>>> =
    LazyLock::new(Default::default);

/// Appends `items` to `model`'s `hitl_history` if it is a `PipelineContext`;
/// whether it did.
pub(crate) fn record_interactions<M: 'static>(model: &mut M, items: Vec<HumanInteraction>) -> bool {
    let recorder = INTERACTION_RECORDERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&TypeId::of::<M>())
        .copied();
    recorder.is_some_and(|record| record(model, items))
}

fn register_input_filler<T: 'static>() {
    fn record<T: 'static>(model: &mut dyn Any, items: Vec<HumanInteraction>) -> bool {
        match model.downcast_mut::<PipelineContext<T>>() {
            Some(model) => {
                model.hitl_history.extend(items);
                true
            }
            None => false,
        }
    }
    fn fill<T: 'static>(model: &mut dyn Any, input: Value) {
        if let Some(model) = model.downcast_mut::<PipelineContext<T>>() {
            model.initial_input = input;
        }
    }
    let key = TypeId::of::<PipelineContext<T>>();
    let known = INPUT_FILLERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(&key);
    if !known {
        INPUT_FILLERS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, fill::<T>);
        INTERACTION_RECORDERS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, record::<T>);
    }
}

/// How to give a model of type `M` the run's input, if it takes it.
pub(crate) fn input_filler<M: 'static>() -> Option<InputFiller> {
    if TypeId::of::<M>() == TypeId::of::<()>() {
        return None;
    }
    INPUT_FILLERS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&TypeId::of::<M>())
        .copied()
}

#[cfg(test)]
mod never_panics {
    use super::*;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Fields {
        depth: u32,
        label: String,
        tags: Vec<String>,
    }

    impl Default for Fields {
        fn default() -> Self {
            Fields {
                depth: 3,
                label: "x".into(),
                tags: Vec::new(),
            }
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>().prop_map(|n| serde_json::json!(n)),
            ".{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("depth".to_owned()),
                            Just("label".to_owned()),
                            Just("tags".to_owned()),
                            Just("scratchpad".to_owned()),
                            Just("hitl_history".to_owned()),
                            Just("initial_input".to_owned()),
                            "[a-z]{1,6}"
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_initial_data_gives_a_model_or_an_error_never_a_panic(data in json()) {
            match PipelineContext::<Fields>::from_initial(data) {
                // A model it makes reads back as itself.
                Ok(model) => {
                    let text = serde_json::to_value(&model).unwrap();
                    prop_assert_eq!(serde_json::from_value::<PipelineContext<Fields>>(text).unwrap(), model);
                }
                Err(err) => prop_assert!(err.to_string().len() < 600, "{}", err),
            }
        }
    }
}
