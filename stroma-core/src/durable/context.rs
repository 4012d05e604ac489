//! What a node of a durable run does through its [`Context`]: name its
//! side effects ([`idempotency_key`](Context::idempotency_key)), journal
//! them ([`step`](Context::step)), and stop to ask a person
//! ([`interrupt`](Context::interrupt)).

use std::future::Future;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bounds::{ENTRY_LEVELS, QUESTION_LEVELS, encode, encode_within};
use super::interrupt::{DurableError, Interrupt, Interrupted};
use super::journal::Record;
use crate::context::Context;
use crate::error::{ContextError, NodeError};
use crate::model::pipeline_context::HumanInteraction;
use crate::store::RunStatus;
use std::sync::Arc;

/// A context entry saved with a durable run and not yet read back as its
/// type: what `Context::get_saved` decodes.
pub(crate) struct SavedEntry(pub(crate) serde_json::Value);

impl Context {
    /// Stores `value` under `name`, as [`insert_named`](Context::insert_named)
    /// does, and in a durable run saves it with the node's checkpoint: when
    /// the run resumes and this node is not run again, the entry is there
    /// again for [`get_saved`](Context::get_saved). Entries written with
    /// the other `insert` methods are not saved (they need not be
    /// `Serialize`).
    ///
    /// A value that cannot be saved (its `Serialize` fails, or it nests
    /// deeper than a checkpoint can be read back from) fails the node when
    /// it completes, naming the entry, as an output that cannot be saved
    /// does.
    pub fn insert_saved<T>(&self, name: impl Into<std::borrow::Cow<'static, str>>, value: T)
    where
        T: Serialize + Send + Sync + 'static,
    {
        let name = name.into();
        if let Some(node) = &self.place.durable {
            let json = encode_within(&value, ENTRY_LEVELS);
            node.saved_entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((name.to_string(), json));
        }
        self.insert_named(name, value);
    }

    /// The value stored under `name` with [`insert_saved`](Context::insert_saved):
    /// as [`get_named`](Context::get_named) reads it, or, after a resume,
    /// read back from the run's checkpoint.
    pub fn get_saved<T>(&self, name: &str) -> Result<Arc<T>, ContextError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let typed = self.get_named::<T>(name);
        let Ok(saved) = self.get_named::<SavedEntry>(name) else {
            return typed;
        };
        let value: T =
            serde_json::from_value(saved.0.clone()).map_err(|_| ContextError::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<T>(),
                found: "a saved value of another shape",
                node: self.node(),
            })?;
        Ok(Arc::new(value))
    }

    /// A key naming this node's work in this run, the same every time the
    /// node runs again (after a crash, a failure or an interrupt): the run
    /// id and the node's path, `<run id>/<path>`. Give it to an outside
    /// service that deduplicates requests (a payment API's idempotency
    /// key), so a node that runs twice acts once.
    ///
    /// Outside a run, or for a context made by hand, the path alone.
    pub fn idempotency_key(&self) -> String {
        let path = match &self.place.durable {
            Some(node) => node.path.clone(),
            None => self.scope_path().to_string(),
        };
        match (&self.place.durable, self.place.run_id) {
            (Some(node), _) => format!("{}/{path}", node.run.run_id),
            (None, Some(run_id)) => format!("{run_id}/{path}"),
            (None, None) => path,
        }
    }

    /// Runs `work` once per run: in a durable run, its result is saved
    /// with the run, and when this node runs again (after a crash or an
    /// interrupt) the same step returns the saved result instead of
    /// running `work` again. Steps are told apart by `name` and by how
    /// many steps of that name the node ran before.
    ///
    /// With [`Durability::Sync`](crate::Durability::Sync) the result is
    /// committed before `step` returns. Outside a durable run, `work` runs
    /// and its result is returned.
    ///
    /// ```ignore
    /// let receipt: Receipt = ctx.step("charge", async { bank.charge(&order).await }).await?;
    /// ```
    pub async fn step<T, F>(&self, name: &str, work: F) -> Result<T, NodeError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: Future<Output = T> + Send,
    {
        let Some(node) = &self.place.durable else {
            return Ok(work.await);
        };
        let index = node.next_step(name);
        if let Some(saved) = node.run.step_value(&node.path, name, index) {
            return serde_json::from_value(saved).map_err(|e| {
                NodeError::from(DurableError::Decode {
                    what: format!("step `{name}` of `{}`", node.path),
                    reason: e.to_string(),
                })
            });
        }
        let value = work.await;
        if node.run.writes() {
            let json = encode(&value).map_err(|reason| {
                NodeError::from(DurableError::Encode {
                    what: format!("step `{name}` of `{}`", node.path),
                    reason,
                })
            })?;
            node.run
                .append(
                    vec![Record::Step {
                        path: node.path.clone(),
                        name: name.to_owned(),
                        index,
                        value: json,
                    }],
                    RunStatus::Running,
                )
                .await?;
        }
        Ok(value)
    }

    /// Asks a person `question` and returns their answer.
    ///
    /// The first time, it returns [`Interrupted`]: pass it on with `?`; the
    /// node and the run stop, and the run is saved as interrupted with the
    /// question ([`RunError::interrupts`](crate::RunError::interrupts)).
    /// [`StromaRunner::resume_with`](crate::StromaRunner::resume_with)
    /// gives the answer and runs this node again, where the same call now
    /// returns it. Several calls in one node are answered in order. An
    /// answer that is not an `A` leaves the run interrupted, with an error
    /// naming `A`.
    ///
    /// Not `async`: nothing waits in the process while the person thinks.
    pub fn interrupt<A: DeserializeOwned>(
        &self,
        question: impl Serialize,
    ) -> Result<A, Interrupted> {
        let question = encode_within(&question, QUESTION_LEVELS).unwrap_or_else(|reason| {
            serde_json::Value::String(format!("(the question cannot be shown: {reason})"))
        });
        let (path, index) = match &self.place.durable {
            Some(node) => (node.path.clone(), node.next_interrupt()),
            None => (self.scope_path().to_string(), 0),
        };
        let interrupt = Box::new(Interrupt {
            id: format!("{path}:{index}"),
            path,
            question,
        });
        let Some(node) = &self.place.durable else {
            return Err(Interrupted {
                interrupt,
                rejected: None,
                resumable: false,
            });
        };
        let Some(answer) = node.run.answer(&interrupt.id) else {
            return Err(Interrupted {
                interrupt,
                rejected: None,
                resumable: true,
            });
        };
        match serde_json::from_value::<A>(answer.clone()) {
            Ok(value) => {
                node.answered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(HumanInteraction {
                        asked_at: SystemTime::now(),
                        answered_at: Some(SystemTime::now()),
                        prompt: text_of(&interrupt.question),
                        response: Some(text_of(&answer)),
                    });
                Ok(value)
            }
            Err(err) => {
                node.run.reject(&interrupt.id);
                Err(Interrupted {
                    interrupt,
                    rejected: Some((std::any::type_name::<A>(), err.to_string())),
                    resumable: true,
                })
            }
        }
    }
}

/// A JSON value as a person reads it: a string without its quotes.
fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
