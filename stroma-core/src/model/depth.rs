//! How deep a JSON value nests, measured with recursion bounded by, and against, the
//! depth serde_json reads from text.
//!
//! Stroma turns models and outputs into JSON to merge, save and read them
//! back, and those walks recurse once per level: serde's deserializers (the
//! buffering behind `#[serde(flatten)]`, which [`PipelineContext`] uses,
//! above all) take over a kilobyte of stack per level in a debug build, so
//! a value built in code some thousand levels deep overflows a 2 MiB thread.
//! JSON text never gets that deep: serde_json refuses it. Values built in
//! code are held to the same limit here, before anything walks them.
//!
//! [`PipelineContext`]: crate::PipelineContext

use std::fmt;

use serde_json::{Map, Value};

/// serde_json's recursion limit for text: arrays and objects nested 128
/// levels deep fail with "recursion limit exceeded", so 127 is the deepest
/// it reads. The same limit for values built in code keeps the walks above
/// far from the end of the stack, and means that whatever stroma accepts
/// from code can be written out and read back from text (a checkpoint,
/// initial data).
pub(crate) const SERDE_JSON_DEPTH_LIMIT: usize = 128;

/// How many segments of the path to the limit an error shows: enough to
/// tell the field and how it nests, short for a path 128 segments long.
const SHOWN_SEGMENTS: usize = 4;

/// How many characters of one key an error shows.
const SHOWN_KEY_CHARS: usize = 40;

/// A value whose arrays and objects nest [`SERDE_JSON_DEPTH_LIMIT`] levels
/// deep: where they reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TooDeep {
    /// The top-level key the path starts with; `None` when the value is an array.
    pub(crate) field: Option<String>,
    /// The path to the array or object at the limit, cut short: `doc[0][0][0]…`.
    pub(crate) path: String,
    /// The levels of the checkpoint around the value, counted in.
    pub(crate) checkpoint_levels: usize,
}

impl fmt::Display for TooDeep {
    /// "nests arrays and objects 128 levels deep at `doc[0][0][0]…`, the
    /// limit: serde_json reads no deeper"; the subject is the caller's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, &self.path, self.checkpoint_levels)
    }
}

/// What [`TooDeep`] says, for errors that hold its parts.
pub(crate) fn describe(
    f: &mut fmt::Formatter<'_>,
    path: &str,
    checkpoint_levels: usize,
) -> fmt::Result {
    write!(
        f,
        "nests arrays and objects {SERDE_JSON_DEPTH_LIMIT} levels deep at `{path}`"
    )?;
    if checkpoint_levels > 0 {
        write!(
            f,
            ", counting the {checkpoint_levels} levels of the checkpoint around it"
        )?;
    }
    f.write_str(", the limit: serde_json reads no deeper")
}

/// Checks that `value`, saved inside `checkpoint_levels` levels of arrays
/// and objects (0 when it is not saved), nests less deep than
/// [`SERDE_JSON_DEPTH_LIMIT`] in all.
///
/// It recurses, but never past the limit, so it is safe on any value
/// serde_json can build; it allocates nothing unless the value is too deep,
/// and stops at the first array or object at the limit.
pub(crate) fn check_depth(value: &Value, checkpoint_levels: usize) -> Result<(), TooDeep> {
    within_limit(value, checkpoint_levels).map_err(|reversed| too_deep(reversed, checkpoint_levels))
}

/// [`check_depth`] for an object given as its fields (as `updates_context`
/// and initial data hold it), not saved.
pub(crate) fn check_fields_depth(fields: &Map<String, Value>) -> Result<(), TooDeep> {
    // The object itself is the first level.
    fields_within_limit(fields, 1).map_err(|reversed| too_deep(reversed, 0))
}

/// How an array or object was reached from the one around it.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Index(usize),
    Key(&'a str),
}

/// Whether `value`, inside `depth` levels, stays under the limit; if not,
/// the path to the array or object at the limit, innermost segment first.
fn within_limit(value: &Value, depth: usize) -> Result<(), Vec<Segment<'_>>> {
    match value {
        Value::Array(items) => {
            let depth = at_most_limit(depth + 1)?;
            for (index, item) in items.iter().enumerate() {
                within_limit(item, depth).map_err(|mut path| {
                    path.push(Segment::Index(index));
                    path
                })?;
            }
            Ok(())
        }
        Value::Object(fields) => fields_within_limit(fields, at_most_limit(depth + 1)?),
        // Scalars add no level.
        _ => Ok(()),
    }
}

/// [`within_limit`] for the fields of an object `depth` levels deep.
fn fields_within_limit(fields: &Map<String, Value>, depth: usize) -> Result<(), Vec<Segment<'_>>> {
    for (key, value) in fields {
        within_limit(value, depth).map_err(|mut path| {
            path.push(Segment::Key(key));
            path
        })?;
    }
    Ok(())
}

/// `depth`, or the start of a path if it reaches the limit.
fn at_most_limit<'a>(depth: usize) -> Result<usize, Vec<Segment<'a>>> {
    if depth >= SERDE_JSON_DEPTH_LIMIT {
        Err(Vec::new())
    } else {
        Ok(depth)
    }
}

/// The error for the path `reversed` (innermost segment first).
fn too_deep(reversed: Vec<Segment<'_>>, checkpoint_levels: usize) -> TooDeep {
    let field = match reversed.last() {
        Some(Segment::Key(key)) => Some((*key).to_owned()),
        _ => None,
    };
    let mut path = String::new();
    for (shown, segment) in reversed.iter().rev().enumerate() {
        if shown == SHOWN_SEGMENTS {
            path.push('…');
            break;
        }
        match segment {
            Segment::Index(index) => path.push_str(&format!("[{index}]")),
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                push_cut(&mut path, key);
            }
        }
    }
    if path.is_empty() {
        path.push_str("(the whole value)");
    }
    TooDeep {
        field,
        path,
        checkpoint_levels,
    }
}

/// Appends `key`, cut to [`SHOWN_KEY_CHARS`] characters.
fn push_cut(path: &mut String, key: &str) {
    match key.char_indices().nth(SHOWN_KEY_CHARS) {
        Some((cut, _)) => {
            path.push_str(&key[..cut]);
            path.push('…');
        }
        None => path.push_str(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn the_limit_is_where_serde_json_stops_reading_text() {
        for levels in [SERDE_JSON_DEPTH_LIMIT - 1, SERDE_JSON_DEPTH_LIMIT] {
            let text = nested(levels).to_string();
            let read = serde_json::from_str::<Value>(&text);
            let checked = check_depth(&nested(levels), 0);
            assert_eq!(read.is_ok(), checked.is_ok(), "{levels} levels");
        }
    }

    #[test]
    fn scalars_add_no_level_and_every_branch_is_walked() {
        assert_eq!(
            check_depth(&json!("text"), SERDE_JSON_DEPTH_LIMIT - 1),
            Ok(())
        );
        // The deep branch is the last one, past shallow ones of both kinds.
        let value = json!({
            "a": [1, {"b": 2}],
            "z": {"list": [[], nested(SERDE_JSON_DEPTH_LIMIT)]},
        });
        let err = check_depth(&value, 0).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("z"));
        assert_eq!(err.path, "z.list[1][0]…");
        assert_eq!(
            err.to_string(),
            "nests arrays and objects 128 levels deep at `z.list[1][0]…`, the limit: \
             serde_json reads no deeper"
        );
    }

    #[test]
    fn levels_around_the_value_count_and_are_said() {
        let value = json!({"doc": nested(SERDE_JSON_DEPTH_LIMIT - 5)});
        assert_eq!(check_depth(&value, 3), Ok(()));
        let err = check_depth(&value, 4).unwrap_err();
        assert_eq!(err.path, "doc[0][0][0]…");
        assert!(
            err.to_string()
                .contains("at `doc[0][0][0]…`, counting the 4 levels of the checkpoint around it"),
            "{err}"
        );
    }

    #[test]
    fn an_object_given_as_its_fields_measures_as_the_object() {
        // The object is a level: `doc` may add 126.
        for (levels, fits) in [(126, true), (127, false)] {
            let value = json!({"doc": nested(levels)});
            let Value::Object(fields) = &value else {
                unreachable!("made as an object")
            };
            assert_eq!(check_fields_depth(fields), check_depth(&value, 0));
            assert_eq!(check_fields_depth(fields).is_ok(), fits, "{levels}");
        }
    }

    #[test]
    fn long_keys_and_top_level_arrays_are_shown_short() {
        let long = "k".repeat(100);
        let err = check_depth(&json!({ long.clone(): nested(200) }), 0).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(long.as_str()));
        assert_eq!(
            err.path,
            format!("{}…[0][0][0]…", "k".repeat(SHOWN_KEY_CHARS))
        );
        let err = check_depth(&nested(200), 0).unwrap_err();
        assert_eq!((err.field, err.path.as_str()), (None, "[0][0][0][0]…"));
    }

    #[test]
    fn a_value_too_deep_to_recurse_over_is_measured_on_a_small_stack() {
        // 256 KiB of stack: far too little for a walk of all 100,000
        // levels, enough for one that stops at the limit.
        let checked = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let deep = nested(100_000);
                let checked = check_depth(&deep, 0);
                // Dropped by hand, one level at a time: serde_json's drop recurses.
                let mut rest = deep;
                while let Value::Array(mut items) = rest {
                    rest = items.pop().unwrap_or(Value::Null);
                }
                checked
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(checked.unwrap_err().path, "[0][0][0][0]…");
    }
}
