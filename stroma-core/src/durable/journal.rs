//! What a durable run's checkpoints hold, and how a resume reads them back.
//!
//! Each checkpoint's `state` is `{"v": 1, "records": [..]}`: the records
//! written since the checkpoint before. A run's journal is all of them in
//! `seq` order. Nothing is overwritten, so a checkpoint costs what one
//! node's record costs, whatever the length of the run.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::interrupt::Interrupt;
use crate::store::{Checkpoint, StoreError};

/// The format of a checkpoint's `state`; a resume refuses other versions.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

/// One thing a durable run saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Record {
    /// The run began: all it needs to begin again.
    Start {
        /// The pipeline's id.
        pipeline: String,
        /// The run's input.
        input: Value,
        /// The model the run started with.
        model: Value,
        /// The run's execution metadata.
        execution: Value,
        /// The pipeline's shape: one line per node (path, kind, output type).
        shape: Vec<String>,
        /// The per-run variables, as JSON.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        vars: Vec<(String, Value)>,
    },
    /// A node completed: its output, and the model after it if it may change it.
    Node {
        path: String,
        output: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<Value>,
        /// Context entries the node wrote with `Context::insert_saved`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        context: Vec<(String, Value)>,
    },
    /// A node's sub-step (`Context::step`) completed.
    Step {
        path: String,
        name: String,
        index: u32,
        value: Value,
    },
    /// A retried node (`.retry(..)`) at `path` began its attempt `attempt`
    /// (or, `done`, a retried pipeline finished it): a resume counts an
    /// attempt cut off by a crash as made.
    Attempt {
        path: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        done: bool,
    },
    /// A person answered the interrupt `id`.
    Answer { id: String, value: Value },
    /// The answer to `id` was not of the type the node asked for: withdrawn.
    Rejected { id: String },
    /// The run ended (or stopped to ask).
    End {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        interrupts: Vec<Interrupt>,
    },
}

#[derive(Serialize, Deserialize)]
struct State {
    v: u32,
    records: Vec<Record>,
}

/// A checkpoint's `state` holding `records`.
pub(crate) fn state_of(records: Vec<Record>) -> Value {
    serde_json::to_value(State {
        v: CHECKPOINT_FORMAT_VERSION,
        records,
    })
    .unwrap_or(Value::Null)
}

/// A node's saved completion, for replay.
#[derive(Debug, Clone)]
pub(crate) struct NodeDone {
    pub(crate) output: Value,
    pub(crate) model: Option<Value>,
    pub(crate) context: Vec<(String, Value)>,
}

/// A run's journal read back: what a resume replays.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) start: Option<StartRecord>,
    /// Every record, in order, for `resume_from` and listings.
    pub(crate) records: Vec<Record>,
    pub(crate) nodes: HashMap<String, NodeDone>,
    pub(crate) steps: HashMap<(String, String, u32), Value>,
    pub(crate) answers: HashMap<String, Value>,
    /// The attempts retried nodes began, by path: the last one's number,
    /// and whether it finished.
    pub(crate) attempts: HashMap<String, (u32, bool)>,
    /// The last end record's contents, if the run ended.
    pub(crate) end: Option<EndRecord>,
    pub(crate) latest_seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct StartRecord {
    pub(crate) pipeline: String,
    pub(crate) input: Value,
    pub(crate) model: Value,
    pub(crate) execution: Value,
    pub(crate) shape: Vec<String>,
    pub(crate) vars: Vec<(String, Value)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EndRecord {
    pub(crate) error: Option<String>,
    pub(crate) interrupts: Vec<Interrupt>,
}

impl Journal {
    /// The journal made of `checkpoints`, in `seq` order; a state that is
    /// not a known format is an error naming the run, the checkpoint and
    /// the field.
    pub(crate) fn read(run_id: &str, checkpoints: &[Checkpoint]) -> Result<Journal, StoreError> {
        let mut journal = Journal::default();
        for checkpoint in checkpoints {
            let version = checkpoint.state.get("v").and_then(Value::as_u64);
            if version != Some(u64::from(CHECKPOINT_FORMAT_VERSION)) {
                return Err(StoreError::corrupt(
                    "resume",
                    run_id,
                    "state.v",
                    format!(
                        "checkpoint {} has format version {}, this build reads {CHECKPOINT_FORMAT_VERSION}",
                        checkpoint.seq,
                        checkpoint
                            .state
                            .get("v")
                            .map_or("(none)".to_owned(), Value::to_string)
                    ),
                ));
            }
            // A store holding states as values (not text) could hand back one
            // too deep to read without overflowing the stack.
            if let Err(deep) = crate::model::depth::check_depth(&checkpoint.state, 0) {
                return Err(StoreError::corrupt(
                    "resume",
                    run_id,
                    "state",
                    format!("checkpoint {}: it {deep}", checkpoint.seq),
                ));
            }
            let state: State = serde_json::from_value(checkpoint.state.clone()).map_err(|e| {
                StoreError::corrupt(
                    "resume",
                    run_id,
                    "state.records",
                    format!("checkpoint {}: {e}", checkpoint.seq),
                )
            })?;
            journal.latest_seq = checkpoint.seq;
            for record in state.records {
                journal.apply(record);
            }
        }
        Ok(journal)
    }

    /// Adds one record to what a replay sees.
    pub(crate) fn apply(&mut self, record: Record) {
        match &record {
            Record::Start {
                pipeline,
                input,
                model,
                execution,
                shape,
                vars,
            } => {
                self.start = Some(StartRecord {
                    pipeline: pipeline.clone(),
                    input: input.clone(),
                    model: model.clone(),
                    execution: execution.clone(),
                    shape: shape.clone(),
                    vars: vars.clone(),
                });
            }
            Record::Node {
                path,
                output,
                model,
                context,
            } => {
                self.nodes.insert(
                    path.clone(),
                    NodeDone {
                        output: output.clone(),
                        model: model.clone(),
                        context: context.clone(),
                    },
                );
            }
            Record::Step {
                path,
                name,
                index,
                value,
            } => {
                self.steps
                    .insert((path.clone(), name.clone(), *index), value.clone());
            }
            Record::Attempt {
                path,
                attempt,
                done,
            } => {
                self.attempts.insert(path.clone(), (*attempt, *done));
            }
            Record::Answer { id, value } => {
                self.answers.insert(id.clone(), value.clone());
            }
            Record::Rejected { id } => {
                self.answers.remove(id);
            }
            Record::End { error, interrupts } => {
                self.end = Some(EndRecord {
                    error: error.clone(),
                    interrupts: interrupts.clone(),
                });
            }
        }
        self.records.push(record);
    }

    /// The records up to and including the completion of the node at
    /// `path` (with the start); `None` if no node completed there.
    pub(crate) fn until(&self, path: &str) -> Option<Vec<Record>> {
        let at = self
            .records
            .iter()
            .position(|r| matches!(r, Record::Node { path: p, .. } if p == path))?;
        Some(
            self.records[..=at]
                .iter()
                .filter(|r| !matches!(r, Record::End { .. }))
                .cloned()
                .collect(),
        )
    }

    /// Each retried node's path and the last attempt it began, in the
    /// order they first began one.
    pub(crate) fn attempts_begun(&self) -> Vec<(String, u32)> {
        let mut begun: Vec<(String, u32)> = Vec::new();
        for record in &self.records {
            if let Record::Attempt { path, attempt, .. } = record {
                match begun.iter_mut().find(|(p, _)| p == path) {
                    Some((_, last)) => *last = *attempt,
                    None => begun.push((path.clone(), *attempt)),
                }
            }
        }
        begun
    }

    /// The paths of the nodes that completed, in order.
    pub(crate) fn completed_paths(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Node { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunStatus;
    use serde_json::json;

    fn checkpoint(seq: u64, state: Value) -> Checkpoint {
        Checkpoint::new("r", seq, RunStatus::Running, "fp", state)
    }

    #[test]
    fn records_round_trip_and_fold_in_order() {
        let state = state_of(vec![
            Record::Node {
                path: "a".into(),
                output: json!(1),
                model: None,
                context: Vec::new(),
            },
            Record::Answer {
                id: "b:0".into(),
                value: json!("yes"),
            },
            Record::Rejected { id: "b:0".into() },
        ]);
        let journal = Journal::read("r", &[checkpoint(1, state)]).unwrap();
        assert_eq!(journal.nodes["a"].output, json!(1));
        assert!(journal.answers.is_empty(), "a rejected answer is withdrawn");
        assert_eq!(journal.completed_paths(), ["a"]);
        assert_eq!(journal.latest_seq, 1);
    }

    #[test]
    fn unknown_versions_and_bad_records_name_the_run_and_field() {
        let err = Journal::read("r", &[checkpoint(3, json!({"v": 9, "records": []}))]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"r\"") && text.contains("state.v"), "{text}");
        assert!(text.contains("checkpoint 3 has format version 9"), "{text}");

        let err = Journal::read(
            "r",
            &[checkpoint(
                2,
                json!({"v": 1, "records": [{"kind": "node"}]}),
            )],
        )
        .unwrap_err();
        assert!(err.to_string().contains("state.records"), "{err}");
        assert!(err.to_string().contains("checkpoint 2"), "{err}");
    }

    #[test]
    fn a_state_nested_too_deep_is_refused_not_walked() {
        let deep = (0..1_000).fold(json!(1), |inner, _| Value::Array(vec![inner]));
        let state = json!({"v": 1, "records": [{"kind": "node", "path": "a", "output": deep}]});
        let err = Journal::read("r", &[checkpoint(4, state)]).unwrap_err();
        assert!(err.to_string().contains("checkpoint 4: it nests"), "{err}");
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        /// Any JSON: what a damaged or foreign row could hold.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_map(|n| json!(n)),
                ".{0,12}".prop_map(Value::String),
                prop_oneof![
                    Just("node"),
                    Just("start"),
                    Just("step"),
                    Just("answer"),
                    Just("end"),
                    Just("rejected")
                ]
                .prop_map(|k| Value::String(k.to_owned())),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                Just("v".to_owned()),
                                Just("records".to_owned()),
                                Just("kind".to_owned()),
                                Just("path".to_owned()),
                                Just("output".to_owned()),
                                "[a-z]{1,6}"
                            ],
                            inner
                        ),
                        0..6
                    )
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn reading_any_state_is_an_answer_never_a_panic(
                states in prop::collection::vec(json(), 1..4),
                version in prop_oneof![Just(1u64), any::<u64>()],
            ) {
                let checkpoints: Vec<Checkpoint> = states
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut state)| {
                        // Half of them in the current format's envelope.
                        if i % 2 == 0 && let Value::Object(map) = &mut state {
                            map.insert("v".into(), json!(version));
                        }
                        checkpoint(i as u64 + 1, state)
                    })
                    .collect();
                let _ = Journal::read("r", &checkpoints);
            }

            #[test]
            fn well_formed_records_always_read_back(
                paths in prop::collection::vec("[a-z]{1,5}(\\[[0-9]\\])?(\\.[a-z]{1,5}){0,2}", 1..8),
                outputs in prop::collection::vec(any::<i64>(), 8),
            ) {
                let records: Vec<Record> = paths
                    .iter()
                    .zip(&outputs)
                    .map(|(path, out)| Record::Node { path: path.clone(), output: json!(out), model: None, context: Vec::new() })
                    .collect();
                let journal = Journal::read("r", &[checkpoint(1, state_of(records))]).unwrap();
                for (at, path) in paths.iter().enumerate() {
                    // A path met again (a node run twice) keeps its last output.
                    let last = paths.iter().rposition(|p| p == path).unwrap_or(at);
                    prop_assert_eq!(&journal.nodes[path].output, &json!(outputs[last]));
                }
                prop_assert_eq!(journal.completed_paths(), paths);
            }
        }
    }
}
