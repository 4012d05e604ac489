//! [`Handler`]: what receives a run's events as they happen, in order, on
//! a task of its own, so a slow or panicking handler never holds up or
//! takes down the run.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};

use crate::run::event::Event;
use crate::run::middleware::BoxFuture;

/// Receives every event of a run, in order: set with
/// [`StromaRunner::with_handler`](crate::StromaRunner::with_handler) or
/// [`RunOptions::handler`](crate::RunOptions::handler).
///
/// Any `Fn(&Event) + Send + Sync + 'static` closure is a handler; implement
/// the trait for one that awaits. Events reach the handler on a task of the
/// run's own, one after another; the run returns once the handler has had
/// them all. A handler that panics loses the event it panicked on (the
/// panic is logged with `tracing`); the run and the later events go on.
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
/// send them to, and the task, which ends after the `None` that ends the run.
pub(crate) fn start(handler: Arc<dyn Handler>) -> (HandlerSink, tokio::task::JoinHandle<()>) {
    let (sink, events) = unbounded();
    let task = tokio::spawn(deliver(handler, events));
    (sink, task)
}

async fn deliver(handler: Arc<dyn Handler>, mut events: UnboundedReceiver<Option<Event>>) {
    {
        while let Some(Some(event)) = events.next().await {
            // The call is inside the guard too: a closure panics when called.
            let handled = AssertUnwindSafe(async { handler.handle(&event).await })
                .catch_unwind()
                .await;
            if handled.is_err() {
                tracing::warn!(
                    ?event,
                    "the run's event handler panicked; the event is lost"
                );
            }
        }
    }
}
