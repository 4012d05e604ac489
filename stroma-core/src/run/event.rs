//! [`Event`]s a run reports as it goes, for [`StromaRunner::stream`](crate::StromaRunner::stream).

use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;

use crate::run::run_id::RunId;
use crate::tree::record::NodeStatus;
use crate::tree::{ScopeKind, ScopePath};

/// Something that happened in a run, in the order it happened. Nodes and
/// scopes are named by their [`ScopePath`] in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The run started.
    RunStarted {
        /// The run's id.
        run_id: RunId,
        /// The pipeline's name.
        graph_id: &'static str,
    },
    /// A node started.
    NodeStarted {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        path: ScopePath,
    },
    /// A node finished with an output.
    NodeCompleted {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// How long it took.
        duration: Duration,
    },
    /// A node failed.
    NodeFailed {
        /// The node's id.
        name: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// How long it ran.
        duration: Duration,
        /// Its error, as text.
        error: String,
    },
    /// A composite scope (a named pipeline, loop, `parallel!` or `for_each`) started.
    ScopeStarted {
        /// The scope's id.
        id: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// What it is.
        kind: ScopeKind,
    },
    /// A composite scope ended.
    ScopeEnded {
        /// The scope's id.
        id: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// What it is.
        kind: ScopeKind,
        /// How it ended: [`Completed`](NodeStatus::Completed) or [`Failed`](NodeStatus::Failed).
        status: NodeStatus,
        /// How long it ran.
        duration: Duration,
    },
    /// A loop started an iteration.
    LoopIteration {
        /// The loop's id.
        name: &'static str,
        /// The loop's path in the run.
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
        path: ScopePath,
    },
    /// A phase ended.
    PhaseEnded {
        /// The phase's label.
        label: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// How it ended.
        status: NodeStatus,
    },
    /// What an `.isolated()` or `.snapshot()` node wrote was discarded, as
    /// the modifier says: not an error.
    WritesDiscarded {
        /// The node's path.
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
        path: ScopePath,
    },
    /// A retried node failed and runs again after `delay`: `attempt` is the
    /// attempt about to start (2 for the first retry).
    NodeRetrying {
        /// The failed node's id.
        name: &'static str,
        /// Its path in the run.
        path: ScopePath,
        /// The attempt about to start.
        attempt: u32,
        /// The failed attempt's error.
        error: String,
        /// How long it waits first.
        delay: std::time::Duration,
    },
    /// A `for_each` started an item: `index` of `total`, so a caller can
    /// show "k of n".
    ItemStarted {
        /// The item's path in the run: the `for_each`'s, with `[index]`.
        path: ScopePath,
        /// The item's index in the list, from 0.
        index: usize,
        /// How many items the list has.
        total: usize,
    },
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
