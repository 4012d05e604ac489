//! [`Event`]s a run reports as it goes, for [`StromaRunner::stream`](crate::StromaRunner::stream).

use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use serde::Serialize;

use crate::run::run_id::RunId;
use crate::tree::record::NodeStatus;
use crate::tree::{ScopeKind, ScopePath};

/// Something that happened in a run, in the order it happened. Nodes and
/// scopes are named by their [`ScopePath`] in the run.
///
/// An event serializes (with serde) as one flat JSON object, for clients
/// outside the process such as a server-sent event stream: `type` is the
/// variant in snake case (`run_started`, `node_completed`, ...), the other
/// keys are its fields. Ids and paths are strings, kinds and statuses
/// lower-case words (`for_each`, `completed`), and durations are
/// milliseconds as numbers under `duration_ms` and `delay_ms`.
///
/// ```
/// use futures::StreamExt;
/// use serde_json::json;
/// use stroma::prelude::*;
///
/// #[node]
/// async fn double(n: u32) -> u32 {
///     n * 2
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let runner = StromaRunner::quick();
/// let events: Vec<_> = runner.stream(&double, 21).collect().await;
/// let RunEvent::Event(started) = &events[1] else { unreachable!() };
/// assert_eq!(
///     serde_json::to_value(started).unwrap(),
///     json!({"type": "node_started", "name": "double", "path": "double"})
/// );
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run started.
    RunStarted {
        /// The run's id.
        #[serde(serialize_with = "as_json::text")]
        run_id: RunId,
        /// The pipeline's name.
        graph_id: &'static str,
    },
    /// A node started.
    NodeStarted {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
    },
    /// A node finished with an output.
    NodeCompleted {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// How long it took.
        #[serde(rename = "duration_ms", serialize_with = "as_json::millis")]
        duration: Duration,
    },
    /// A node failed.
    NodeFailed {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// How long it ran.
        #[serde(rename = "duration_ms", serialize_with = "as_json::millis")]
        duration: Duration,
        /// Its error, as text.
        error: String,
    },
    /// A composite scope (a named pipeline, loop, `parallel!` or `for_each`) started.
    ScopeStarted {
        /// The scope's id.
        id: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// What it is.
        #[serde(serialize_with = "as_json::text")]
        kind: ScopeKind,
    },
    /// A composite scope ended.
    ScopeEnded {
        /// The scope's id.
        id: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// What it is.
        #[serde(serialize_with = "as_json::text")]
        kind: ScopeKind,
        /// How it ended: [`Completed`](NodeStatus::Completed) or [`Failed`](NodeStatus::Failed).
        #[serde(serialize_with = "as_json::status")]
        status: NodeStatus,
        /// How long it ran.
        #[serde(rename = "duration_ms", serialize_with = "as_json::millis")]
        duration: Duration,
    },
    /// A loop started an iteration.
    LoopIteration {
        /// The loop's id.
        name: &'static str,
        /// The loop's path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// The iteration, from 1.
        iteration: u32,
    },
    /// A phase started: its nodes now see its session.
    PhaseStarted {
        /// The phase's label.
        label: &'static str,
        /// Whether its nodes share one accumulating session.
        share_context: bool,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
    },
    /// A phase ended.
    PhaseEnded {
        /// The phase's label.
        label: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// How it ended.
        #[serde(serialize_with = "as_json::status")]
        status: NodeStatus,
    },
    /// What an `.isolated()` or `.snapshot()` node wrote was discarded, as
    /// the modifier says: not an error.
    WritesDiscarded {
        /// The node's path.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// What it wrote: `context`, `session`, or `model` (for a node
        /// that may change the model, whatever it changed).
        what: &'static str,
    },
    /// A node sent a custom event with [`Context::emit`](crate::Context::emit).
    Custom {
        /// The event's name.
        name: String,
        /// Its data, as JSON.
        data: serde_json::Value,
        /// The path of the node that sent it.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
    },
    /// A retried node failed and runs again after `delay`: `attempt` is the
    /// attempt about to start (2 for the first retry).
    NodeRetrying {
        /// The failed node's id.
        name: &'static str,
        /// Its path in the run.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// The attempt about to start.
        attempt: u32,
        /// The failed attempt's error.
        error: String,
        /// How long it waits first.
        #[serde(rename = "delay_ms", serialize_with = "as_json::millis")]
        delay: std::time::Duration,
    },
    /// A `for_each` started an item: `index` of `total`, so a caller can
    /// show "k of n".
    ItemStarted {
        /// The item's path in the run: the `for_each`'s, with `[index]`.
        #[serde(serialize_with = "as_json::text")]
        path: ScopePath,
        /// The item's index in the list, from 0.
        index: usize,
        /// How many items the list has.
        total: usize,
    },
}

impl Event {
    /// What happened, in the words of its JSON `type`: `node_completed`,
    /// `scope_started`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::NodeStarted { .. } => "node_started",
            Event::NodeCompleted { .. } => "node_completed",
            Event::NodeFailed { .. } => "node_failed",
            Event::ScopeStarted { .. } => "scope_started",
            Event::ScopeEnded { .. } => "scope_ended",
            Event::LoopIteration { .. } => "loop_iteration",
            Event::PhaseStarted { .. } => "phase_started",
            Event::PhaseEnded { .. } => "phase_ended",
            Event::WritesDiscarded { .. } => "writes_discarded",
            Event::Custom { .. } => "custom",
            Event::NodeRetrying { .. } => "node_retrying",
            Event::ItemStarted { .. } => "item_started",
        }
    }

    /// The path of the node or scope it is about; `None` for the run's start.
    pub fn path(&self) -> Option<&ScopePath> {
        match self {
            Event::RunStarted { .. } => None,
            Event::NodeStarted { path, .. }
            | Event::NodeCompleted { path, .. }
            | Event::NodeFailed { path, .. }
            | Event::ScopeStarted { path, .. }
            | Event::ScopeEnded { path, .. }
            | Event::LoopIteration { path, .. }
            | Event::PhaseStarted { path, .. }
            | Event::PhaseEnded { path, .. }
            | Event::WritesDiscarded { path, .. }
            | Event::Custom { path, .. }
            | Event::NodeRetrying { path, .. }
            | Event::ItemStarted { path, .. } => Some(path),
        }
    }
}

/// How the fields of an [`Event`] that have no serde form of their own are
/// written: as the text they display as, or as numbers a client reads
/// without knowing Rust's types.
mod as_json {
    use std::fmt::Display;
    use std::time::Duration;

    use serde::Serializer;

    use crate::tree::record::NodeStatus;

    /// As its `Display` text: ids, paths, scope kinds.
    pub(super) fn text<T: Display, S: Serializer>(value: &T, out: S) -> Result<S::Ok, S::Error> {
        out.collect_str(value)
    }

    /// As milliseconds, fractions kept.
    pub(super) fn millis<S: Serializer>(duration: &Duration, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_f64(duration.as_secs_f64() * 1000.0)
    }

    /// As a lower-case word.
    pub(super) fn status<S: Serializer>(status: &NodeStatus, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(match status {
            NodeStatus::Pending => "pending",
            NodeStatus::Running => "running",
            NodeStatus::Completed => "completed",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Cancelled => "cancelled",
        })
    }
}

/// Where a streamed run's events go.
pub(crate) type EventSink = UnboundedSender<Event>;

/// Where a run's events go: its stream and its handler, either, both or
/// neither. The one place an event is fanned out.
#[derive(Clone, Default)]
pub(crate) struct Sinks {
    pub(crate) stream: Option<EventSink>,
    pub(crate) handler: Option<crate::run::handler::HandlerSink>,
}

impl Sinks {
    /// Whether anyone listens.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.stream.is_some() || self.handler.is_some()
    }

    /// Sends the event `make` makes, if anyone listens. A listener that
    /// stopped listening does not stop the run.
    #[inline]
    pub(crate) fn send(&self, make: impl FnOnce() -> Event) {
        if !self.any() {
            return;
        }
        let event = make();
        if let Some(handler) = &self.handler {
            let _ = handler.unbounded_send(Some(event.clone()));
        }
        if let Some(stream) = &self.stream {
            let _ = stream.unbounded_send(event);
        }
    }
}
