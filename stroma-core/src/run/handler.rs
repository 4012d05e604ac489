//! [`Handler`]: what receives a run's events as they happen, in order, on
//! a task of its own, so a slow or panicking handler never holds up or
//! takes down the run.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

use crate::engine::failure::NodePanic;
use crate::run::event::Event;
use crate::run::middleware::BoxFuture;

/// Receives every event of a run, in order: set with
/// [`StromaRunner::with_handler`](crate::StromaRunner::with_handler) or
/// [`RunOptions::handler`](crate::RunOptions::handler).
///
/// Any `Fn(&Event) + Send + Sync + 'static` closure is a handler; implement
/// the trait for one that awaits. Events reach the handler on a task of the
/// run's own, one after another; the run returns once the handler has had
/// them all. A handler that panics fails the run (with a
/// [`HandlerPanicked`] error naming the event, kept beside the run's own
/// failure if it had one) once the run's nodes are done; the later events
/// still reach it, and the process goes on.
///
/// ```
/// use stroma_core::{BoxFuture, Event, Handler};
///
/// struct Audit;
/// impl Handler for Audit {
///     fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
///         Box::pin(async move { println!("{event:?}") })
///     }
/// }
/// let printing = |event: &Event| println!("{event:?}"); // a closure is one too
/// # let _ = (Audit, printing);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one event.
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()>;
}

impl std::fmt::Debug for dyn Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

impl<F: Fn(&Event) + Send + Sync + 'static> Handler for F {
    fn handle<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        self(event);
        Box::pin(std::future::ready(()))
    }
}

/// Where a run sends events for its handler; `None` ends the delivery.
pub(crate) type HandlerSink = UnboundedSender<Option<Event>>;

/// Starts delivering events to `handler` on a task of its own: the sink to
/// send them to, and the task, which ends after the `None` that ends the
/// run, with the handler's first panic if it panicked.
pub(crate) fn start(
    handler: Arc<dyn Handler>,
) -> (
    HandlerSink,
    tokio::task::JoinHandle<Option<HandlerPanicked>>,
) {
    let (sink, events) = unbounded();
    let task = tokio::spawn(deliver(handler, events));
    (sink, task)
}

async fn deliver(
    handler: Arc<dyn Handler>,
    mut events: UnboundedReceiver<Option<Event>>,
) -> Option<HandlerPanicked> {
    let mut first_panic = None;
    while let Some(Some(event)) = events.next().await {
        // The call is inside the guard too: a closure panics when called.
        let handled = AssertUnwindSafe(async { handler.handle(&event).await })
            .catch_unwind()
            .await;
        if let Err(payload) = handled {
            tracing::warn!(?event, "the run's event handler panicked");
            first_panic.get_or_insert_with(|| HandlerPanicked {
                event: event_label(&event),
                panic: NodePanic::from_payload(&*payload),
            });
        }
    }
    first_panic
}

/// An event's kind and, where it has one, the path it is about.
fn event_label(event: &Event) -> String {
    match event.path() {
        Some(path) => format!("`{}` of `{path}`", event.kind()),
        None => format!("`{}`", event.kind()),
    }
}

/// The run's event [`Handler`] panicked: on which event, and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerPanicked {
    event: String,
    panic: NodePanic,
}

impl HandlerPanicked {
    /// What the handler panicked with.
    pub fn message(&self) -> &str {
        self.panic.message()
    }
}

impl std::fmt::Display for HandlerPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the run's event handler panicked on {}: {}",
            self.event,
            self.panic.message()
        )
    }
}

impl std::error::Error for HandlerPanicked {
    /// The panic, so that [`RunError::is_panic`](crate::RunError::is_panic) tells it.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.panic)
    }
}
