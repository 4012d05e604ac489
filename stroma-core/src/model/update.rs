//! Model changes made by nodes: snapshots for rollback, validation, and
//! `updates_context` merges of a node's output into the model by field name.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::BoxError;
use crate::model::depth::{self, TooDeep, check_fields_depth};
use crate::model::pipeline_context::ModelValidate;

/// A node's change to the model was refused; the model is as it was before the node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelUpdateError {
    /// The model's validation refused the change.
    Invalid {
        /// What validation said.
        reason: String,
    },
    /// The node's output names a field the model does not have.
    UnknownField {
        /// The field.
        field: String,
        /// The model's type.
        model: String,
    },
    /// The node's output gives a field a value of the wrong type.
    WrongType {
        /// The field.
        field: String,
        /// What deserializing said.
        message: String,
    },
    /// The node's output or the model is not a struct or map of fields.
    NotFields {
        /// Which one, and what it is instead.
        message: String,
    },
    /// The node's output or the model nests arrays and objects 128 levels
    /// deep, where serde_json stops reading JSON text; refused before the
    /// merge walks it (see [`PipelineContext`](crate::PipelineContext)).
    TooDeep {
        /// Which one: `the output` or `the model`.
        what: String,
        /// The top-level field it nests under.
        field: String,
        /// Where it reaches the limit, cut short: `doc[0][0][0]…`.
        path: String,
    },
}

impl fmt::Display for ModelUpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelUpdateError::Invalid { reason } => {
                write!(
                    f,
                    "the model is invalid after this node: {reason}; the change was undone"
                )
            }
            ModelUpdateError::UnknownField { field, model } => write!(
                f,
                "the output's field `{field}` is not a field of the model `{model}`; nothing was written"
            ),
            ModelUpdateError::WrongType { field, message } => write!(
                f,
                "the output's field `{field}` does not fit the model: {message}; nothing was written"
            ),
            ModelUpdateError::NotFields { message } => write!(f, "{message}; nothing was written"),
            ModelUpdateError::TooDeep { what, path, .. } => {
                write!(f, "{what} ")?;
                depth::describe(f, path, 0)?;
                f.write_str("; nothing was written")
            }
        }
    }
}

impl std::error::Error for ModelUpdateError {}

/// `T`'s name without module paths: `PipelineContext<Refinement>`.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            short.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            short.push(c);
        }
    }
    short.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    short
}

/// Merges `output`'s fields into `model` by name, all or nothing: every field
/// must exist in the model and take the output's value, and the model must
/// then validate (through `validate`). The output and the model must each
/// nest less deep than serde_json reads, checked before the merge reads the
/// model back through serde's recursive deserializers.
pub fn merge_fields<M, O>(
    model: &mut M,
    output: &O,
    validate: impl FnOnce(&M) -> Result<(), BoxError>,
) -> Result<(), BoxError>
where
    M: Serialize + DeserializeOwned,
    O: Serialize,
{
    let fields = match serde_json::to_value(output) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => {
            return Err(Box::new(ModelUpdateError::NotFields {
                message: format!(
                    "an `updates_context` node must output a struct or map of fields, not `{other}`"
                ),
            }));
        }
        Err(err) => return Err(err.into()),
    };
    check_fields_depth(&fields).map_err(|deep| too_deep("the output", deep))?;
    let current = match serde_json::to_value(&*model) {
        Ok(Value::Object(current)) => current,
        _ => {
            return Err(Box::new(ModelUpdateError::NotFields {
                message: format!(
                    "the model `{}` must serialize as a struct or map of fields",
                    short_type_name::<M>()
                ),
            }));
        }
    };
    // A model already this deep (a node's `&mut` change, a deep run input in
    // `initial_input`) would overflow the read back just the same.
    check_fields_depth(&current).map_err(|deep| too_deep("the model", deep))?;
    if let Some(field) = fields.keys().find(|k| !current.contains_key(*k)) {
        return Err(Box::new(ModelUpdateError::UnknownField {
            field: field.clone(),
            model: short_type_name::<M>(),
        }));
    }
    let updated = with_fields(&current, &fields);
    let next: M = match serde_json::from_value(Value::Object(updated)) {
        Ok(next) => next,
        Err(err) => return Err(Box::new(wrong_type::<M>(&current, fields, err))),
    };
    validate(&next)?;
    *model = next;
    Ok(())
}

/// `deep`, found in `what` (`the output`, `the model`), as the node's error.
fn too_deep(what: &str, deep: TooDeep) -> BoxError {
    Box::new(ModelUpdateError::TooDeep {
        what: what.to_owned(),
        field: deep.field.unwrap_or_else(|| String::from("?")),
        path: deep.path,
    })
}

fn with_fields(current: &Map<String, Value>, fields: &Map<String, Value>) -> Map<String, Value> {
    let mut updated = current.clone();
    for (key, value) in fields {
        updated.insert(key.clone(), value.clone());
    }
    updated
}

/// Names the first field whose value alone fails to deserialize.
fn wrong_type<M: DeserializeOwned>(
    current: &Map<String, Value>,
    fields: Map<String, Value>,
    err: serde_json::Error,
) -> ModelUpdateError {
    for (field, value) in fields {
        let mut one = Map::new();
        one.insert(field.clone(), value);
        if let Err(err) = serde_json::from_value::<M>(Value::Object(with_fields(current, &one))) {
            return ModelUpdateError::WrongType {
                field,
                message: err.to_string(),
            };
        }
    }
    ModelUpdateError::WrongType {
        field: String::from("?"),
        message: err.to_string(),
    }
}

/// Wraps a model so generated code can ask whether it validates, whatever its type.
pub struct ValidateProbe<'a, M>(pub &'a M);

/// Chosen when the model implements [`ModelValidate`].
pub trait ValidateWithModel {
    /// Runs the model's validation.
    fn stroma_validate(&self) -> Result<(), BoxError>;
}

impl<M: ModelValidate> ValidateWithModel for ValidateProbe<'_, M> {
    fn stroma_validate(&self) -> Result<(), BoxError> {
        self.0
            .validate()
            .map_err(|reason| Box::new(ModelUpdateError::Invalid { reason }) as BoxError)
    }
}

/// Chosen for every other model: always valid.
pub trait ValidateAlways {
    /// Nothing to check.
    fn stroma_validate(&self) -> Result<(), BoxError>;
}

impl<M> ValidateAlways for &ValidateProbe<'_, M> {
    fn stroma_validate(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Wraps a node's input so generated code can turn it into JSON when its type allows.
pub struct InputProbe<'a, I: ?Sized>(pub &'a I);

/// Chosen when the input is `Serialize`.
pub trait InputAsJson {
    /// The input as JSON (`None` if it does not serialize).
    fn stroma_input_json(&self) -> Option<Value>;
}

impl<I: Serialize + ?Sized> InputAsJson for InputProbe<'_, I> {
    fn stroma_input_json(&self) -> Option<Value> {
        serde_json::to_value(self.0).ok()
    }
}

/// Chosen for every other input: no JSON.
pub trait InputNotJson {
    /// `None`.
    fn stroma_input_json(&self) -> Option<Value>;
}

impl<I: ?Sized> InputNotJson for &InputProbe<'_, I> {
    fn stroma_input_json(&self) -> Option<Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_type_names_drop_module_paths() {
        struct Local;
        assert_eq!(
            super::short_type_name::<crate::PipelineContext<Vec<Local>>>(),
            "PipelineContext<Vec<Local>>"
        );
    }
}
