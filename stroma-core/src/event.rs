//! [`Event`]s a run reports as it goes, for [`StromaRunner::stream`](crate::StromaRunner::stream).

use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;

use crate::run_id::RunId;

/// Something that happened in a run, in the order it happened.
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
        /// The node's name.
        name: &'static str,
    },
    /// A node finished with an output.
    NodeCompleted {
        /// The node's name.
        name: &'static str,
        /// How long it took.
        duration: Duration,
    },
    /// A node failed.
    NodeFailed {
        /// The node's name.
        name: &'static str,
        /// How long it ran.
        duration: Duration,
        /// Its error, as text.
        error: String,
    },
    /// A loop started an iteration.
    LoopIteration {
        /// The loop's name.
        name: &'static str,
        /// The iteration, from 1.
        iteration: u32,
    },
}

/// Where a streamed run's events go.
pub(crate) type EventSink = UnboundedSender<Event>;
