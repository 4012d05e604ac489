//! [`SessionView`]: a node's view of the conversation, resolved from the
//! run's session, the phase it is in and its modifiers.

use std::fmt;
use std::sync::Arc;

use super::{Item, MemorySession, Session, SessionError};
use crate::run::event::{Event, Sinks};
use crate::tree::ScopePath;

/// How a node's view of the session was resolved, in priority order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionMode {
    /// `.isolated()`: no history; writes go nowhere.
    Isolated,
    /// `.snapshot()`: reads the sharing phase's session, else the run's;
    /// writes are discarded.
    Snapshot,
    /// Inside `phase(label, true, ..)`: a session of the phase's own that
    /// started from the history and gathers its nodes' writes.
    PhaseShared,
    /// Inside `phase(label, false, ..)`: a read-only copy of the history
    /// taken when the phase started; writes are discarded.
    PhaseHistory,
    /// The run's session, read and write.
    Global,
    /// The run has no session: empty history, writes go nowhere.
    None,
}

/// What a view reads and where its writes go.
#[derive(Clone)]
pub(crate) enum Source {
    Nothing,
    ReadWrite(Arc<dyn Session>),
    ReadOnly(Arc<dyn Session>),
    History(Arc<[Item]>),
}

/// A node's view of the conversation: [`Context::session`](crate::Context::session)
/// or [`current_session`](crate::current_session). Cheap to clone.
#[derive(Clone)]
pub struct SessionView {
    mode: SessionMode,
    source: Source,
    /// Where a discarded write is reported, and the node's path.
    report: Option<Report>,
}

#[derive(Clone)]
pub(crate) struct Report {
    pub(crate) sinks: Sinks,
    pub(crate) path: ScopePath,
}

impl fmt::Debug for SessionView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionView")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl SessionView {
    pub(crate) fn new(mode: SessionMode, source: Source) -> Self {
        SessionView {
            mode,
            source,
            report: None,
        }
    }

    pub(crate) fn reporting(mut self, report: Report) -> Self {
        self.report = Some(report);
        self
    }

    /// How this view was resolved.
    pub fn mode(&self) -> SessionMode {
        self.mode
    }

    /// The whole history this view reads, oldest first.
    pub async fn items(&self) -> Result<Vec<Item>, SessionError> {
        self.recent(None).await
    }

    /// The most recent `limit` items this view reads (all if `None`), oldest first.
    pub async fn recent(&self, limit: Option<usize>) -> Result<Vec<Item>, SessionError> {
        match &self.source {
            Source::Nothing => Ok(Vec::new()),
            Source::ReadWrite(session) | Source::ReadOnly(session) => {
                session.get_items(limit).await
            }
            Source::History(items) => {
                let skip = items.len().saturating_sub(limit.unwrap_or(usize::MAX));
                Ok(items[skip..].to_vec())
            }
        }
    }

    /// Adds `items` where this view writes: the run's or the phase's
    /// session. In a view that does not write (isolated, snapshot, a
    /// history phase, no session) they are discarded, which is not an
    /// error: a watching handler or stream sees
    /// [`Event::WritesDiscarded`](crate::Event::WritesDiscarded).
    pub async fn add_items(&self, items: Vec<Item>) -> Result<(), SessionError> {
        match &self.source {
            Source::ReadWrite(session) => session.add_items(items).await,
            _ => {
                if !items.is_empty() && self.mode != SessionMode::None {
                    self.report_discarded();
                }
                Ok(())
            }
        }
    }

    fn report_discarded(&self) {
        let Some(report) = &self.report else { return };
        report.sinks.send(|| Event::WritesDiscarded {
            path: report.path.clone(),
            what: "session",
        });
    }
}

/// What a phase gives the nodes inside it.
#[derive(Clone)]
pub(crate) enum PhaseSession {
    /// Its own session, started from the history.
    Shared(Arc<dyn Session>),
    /// A read-only copy of the history.
    History(Arc<[Item]>),
}

impl PhaseSession {
    /// The session of a phase starting now, from the history `visible` reads.
    pub(crate) async fn start(share: bool, visible: &SessionView) -> Result<Self, SessionError> {
        let history = visible.items().await?;
        Ok(if share {
            PhaseSession::Shared(Arc::new(MemorySession::with_items(history)))
        } else {
            PhaseSession::History(history.into())
        })
    }
}

/// A node's view, in the priority order: isolated, snapshot, a sharing
/// phase, a history phase, the run's session.
pub(crate) fn resolve(
    modifier: crate::combinators::modifiers::Modifier,
    phase: Option<&PhaseSession>,
    run: Option<&Arc<dyn Session>>,
) -> SessionView {
    use crate::combinators::modifiers::Modifier;
    match (modifier, phase, run) {
        (Modifier::Isolated, _, _) => SessionView::new(SessionMode::Isolated, Source::Nothing),
        (Modifier::Snapshot, Some(PhaseSession::Shared(session)), _) => {
            SessionView::new(SessionMode::Snapshot, Source::ReadOnly(Arc::clone(session)))
        }
        (Modifier::Snapshot, _, Some(session)) => {
            SessionView::new(SessionMode::Snapshot, Source::ReadOnly(Arc::clone(session)))
        }
        (Modifier::Snapshot, _, None) => SessionView::new(SessionMode::Snapshot, Source::Nothing),
        (Modifier::None, Some(PhaseSession::Shared(session)), _) => SessionView::new(
            SessionMode::PhaseShared,
            Source::ReadWrite(Arc::clone(session)),
        ),
        (Modifier::None, Some(PhaseSession::History(items)), _) => SessionView::new(
            SessionMode::PhaseHistory,
            Source::History(Arc::clone(items)),
        ),
        (Modifier::None, None, Some(session)) => {
            SessionView::new(SessionMode::Global, Source::ReadWrite(Arc::clone(session)))
        }
        (Modifier::None, None, None) => SessionView::new(SessionMode::None, Source::Nothing),
    }
}
