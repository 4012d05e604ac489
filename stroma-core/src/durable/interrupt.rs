//! Stopping a run to ask a person: [`Interrupt`] (a pending question) and
//! [`Interrupted`] (the error that stops the node and the run).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A question a node put to a person, waiting for an answer.
///
/// Its `id` is the asking node's path and the question's number within
/// that node (`approve:0`, `review[1].check:0`), the same every time the
/// node runs; answer it with
/// [`StromaRunner::resume_with`](crate::StromaRunner::resume_with) (the one
/// pending question) or [`ResumeOptions::answer_to`](crate::ResumeOptions::answer_to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interrupt {
    /// The question's id: `<node path>:<n>`.
    pub id: String,
    /// The asking node's path.
    pub path: String,
    /// The question, as JSON.
    pub question: Value,
}

/// The error [`Context::interrupt`](crate::Context::interrupt) returns to
/// stop the node, and with it the run, until a person answers.
///
/// It converts into [`NodeError`](crate::NodeError), so `?` passes it on.
/// [`RunError::is_interrupted`](crate::RunError::is_interrupted) tells a run
/// stopped by one; [`RunError::interrupts`](crate::RunError::interrupts)
/// lists the questions.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    // Boxed: `interrupt` returns it, and a small `Err` keeps that cheap.
    pub(crate) interrupt: Box<Interrupt>,
    /// Set when an answer was given but was not of the asked type: the
    /// type asked for and why the answer did not fit.
    pub(crate) rejected: Option<(&'static str, String)>,
    /// Whether the run is durable, so the question can be answered later.
    pub(crate) resumable: bool,
}

impl Interrupted {
    /// The pending question.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The question, as JSON.
    pub fn question(&self) -> &Value {
        &self.interrupt.question
    }

    /// The question's id.
    pub fn id(&self) -> &str {
        &self.interrupt.id
    }

    /// If an answer was given and refused: the type the node asked for.
    pub fn expected_type(&self) -> Option<&'static str> {
        self.rejected.as_ref().map(|(expected, _)| *expected)
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rejected {
            None if !self.resumable => write!(
                f,
                "interrupted to ask {} (question `{}`); this run is not durable and cannot be \
                 resumed: run it with `run_durable` to answer later",
                self.interrupt.question, self.interrupt.id
            ),
            None => write!(
                f,
                "interrupted to ask {} (question `{}`); resume the run with an answer",
                self.interrupt.question, self.interrupt.id
            ),
            Some((expected, why)) => write!(
                f,
                "the answer to question `{}` is not a `{expected}` ({why}); the run stays \
                 interrupted: resume it with a `{expected}`",
                self.interrupt.id
            ),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Why a durable run could not start or resume, or could not save.
#[derive(Debug)]
#[non_exhaustive]
pub enum DurableError {
    /// The runner has no store: give it one with
    /// [`StromaRunner::with_store`](crate::StromaRunner::with_store).
    NoStore,
    /// The store failed (or holds something it cannot decode).
    Store(crate::store::StoreError),
    /// The run was saved from a pipeline of another shape; nothing was run.
    FingerprintMismatch {
        /// The first node (its path, kind and output type) that differs,
        /// as saved; `None` if the saved pipeline has fewer nodes.
        saved: Option<String>,
        /// The same node of the pipeline given; `None` if it has fewer.
        given: Option<String>,
    },
    /// The run has no checkpoint to resume from (it saved nothing before
    /// it stopped, as with `Durability::Exit`).
    NoCheckpoint {
        /// The run.
        run_id: String,
    },
    /// `resume_from` names a path where no node completed in that run.
    NoSuchNode {
        /// The path asked for.
        path: String,
        /// The paths that completed, in order.
        completed: Vec<String>,
    },
    /// An answer was given while no question (or another one) is pending.
    NotPending {
        /// The id answered.
        id: String,
        /// The questions pending.
        pending: Vec<String>,
    },
    /// One bare answer was given while several questions are pending:
    /// answer each by id.
    SeveralPending {
        /// The questions pending.
        pending: Vec<String>,
    },
    /// A value cannot be saved (its `Serialize` failed: a map with
    /// non-string keys, say).
    Encode {
        /// What it is: `the input`, `the model`, `the output of fetch`.
        what: String,
        /// Why.
        reason: String,
    },
    /// An answer was given to a run that asks nothing.
    NotInterrupted {
        /// The run's status.
        status: crate::store::RunStatus,
    },
    /// Replaying a completed run met a node its journal does not hold: the
    /// pipeline's logic changed since (a loop's condition, say), though
    /// not its shape. The node was not run.
    NotInJournal {
        /// The node's path.
        path: String,
    },
    /// A value the run saved cannot be read back as its type.
    Decode {
        /// What it is: `the input`, `the model`, `the output of fetch`.
        what: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::NoStore => f.write_str(
                "the runner has no run store: give it one with `StromaRunner::with_store`",
            ),
            DurableError::Store(err) => write!(f, "{err}"),
            DurableError::FingerprintMismatch { saved, given } => {
                let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "nothing".to_owned());
                write!(
                    f,
                    "the pipeline differs from the one the run was saved with: first difference \
                     at `{}` (saved: {}; given: {}); nothing was run",
                    given
                        .as_deref()
                        .or(saved.as_deref())
                        .and_then(|s| s.split(' ').next())
                        .unwrap_or("?"),
                    show(saved),
                    show(given)
                )
            }
            DurableError::NoCheckpoint { run_id } => write!(
                f,
                "run {run_id} has no checkpoint to resume from (it saved nothing before it stopped)"
            ),
            DurableError::NoSuchNode { path, completed } => write!(
                f,
                "no node completed at `{path}` in that run; completed: {}",
                completed.join(", ")
            ),
            DurableError::NotPending { id, pending } => write!(
                f,
                "no question `{id}` is pending; pending: {}",
                if pending.is_empty() {
                    "none".to_owned()
                } else {
                    pending.join(", ")
                }
            ),
            DurableError::SeveralPending { pending } => write!(
                f,
                "{} questions are pending ({}): answer each by id with \
                 `ResumeOptions::answer_to`",
                pending.len(),
                pending.join(", ")
            ),
            DurableError::Encode { what, reason } => {
                write!(f, "{what} cannot be saved: {reason}")
            }
            DurableError::NotInterrupted { status } => write!(
                f,
                "the run asks nothing (it is {status}): resume it without an answer"
            ),
            DurableError::NotInJournal { path } => write!(
                f,
                "the run completed, but `{path}` is not in its journal: the pipeline's logic \
                 changed since it ran (a loop's condition, say); the node was not run"
            ),
            DurableError::Decode { what, reason } => {
                write!(f, "{what} was saved but cannot be read back: {reason}")
            }
        }
    }
}

impl std::error::Error for DurableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DurableError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<crate::store::StoreError> for DurableError {
    fn from(err: crate::store::StoreError) -> Self {
        DurableError::Store(err)
    }
}
