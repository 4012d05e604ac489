//! [`phase`]: a part of a pipeline with a session view of its own.

use std::future::Future;

use crate::context::propagation::{PhaseInfo, Situation, within};
use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::node::{Node, Runnable};
use crate::run::event::Event;
use crate::session::view::PhaseSession;
use crate::tree::ScopeKind;
use crate::tree::record::NodeStatus;

/// `inner` as the phase `label`: a scope of its own in the run tree, around
/// whose nodes the run's handler sees [`Event::PhaseStarted`] and
/// [`Event::PhaseEnded`], and inside which [`current_phase`](crate::current_phase)
/// tells code what phase it runs in. With `share_context`, the phase's
/// nodes share one session that starts from the run's history and
/// accumulates their writes; without, they read a copy of the history
/// taken when the phase starts. Phases nest: the innermost decides.
///
/// ```
/// use stroma_core::{Node, phase};
/// # fn doc<N: Node>(research: N) {
/// let researching = phase("research", true, research);
/// assert_eq!(researching.name(), "research");
/// # }
/// ```
pub fn phase<N: Node>(label: &'static str, share_context: bool, inner: N) -> Phase<N> {
    Phase {
        info: PhaseInfo::new(label, share_context),
        inner,
    }
}

/// A phase; see [`phase`].
#[derive(Clone, Debug)]
pub struct Phase<N> {
    info: PhaseInfo,
    inner: N,
}

super::scope_node!(Phase, ScopeKind::Phase, |phase: &Phase<N>| phase
    .info
    .label());

impl<M: Send, N: Runnable<M>> Runnable<M> for Phase<N> {
    // Written out: the trait promises a `Send` future, which this states.
    #[allow(clippy::manual_async_fn)]
    fn run<'a, O: Observer>(
        &'a self,
        input: Self::Input,
        cx: &'a mut Cx<M>,
        slot: u32,
    ) -> impl Future<Output = Result<Self::Output, NodeFailure>> + Send + 'a {
        async move {
            let scope = cx.state().enter_scope::<O>(slot);
            let label = self.info.label();
            if O::WATCHED && cx.state_ref().streams() {
                let path = cx.state_ref().path_now(slot);
                cx.state().emit(|| Event::PhaseStarted {
                    label,
                    share_context: self.info.share_context(),
                    path,
                });
            }
            // The phase's session starts from the history its enclosing
            // scope sees.
            let enclosing = cx.state_ref().session_view();
            let started = PhaseSession::start(self.info.share_context(), &enclosing).await;
            let outcome = match started {
                Err(error) => Err(NodeFailure::at(cx.state_ref().loc(slot), Box::new(error))),
                Ok(session) => {
                    let outer = cx.state().phase_session.replace(session);
                    let view = cx.state_ref().session_view();
                    // Boxed: a phase is rare, and its nodes' futures stay out
                    // of the enclosing pipeline's.
                    let run = self.inner.run::<O>(input, cx, slot + 1);
                    let situation = Situation {
                        phase: Some(self.info.clone()),
                        session: Some(view),
                        ..Situation::here()
                    };
                    let outcome = Box::pin(within(situation, run)).await;
                    cx.state().phase_session = outer;
                    outcome.map_err(|failure| failure.locate(cx.state_ref().current))
                }
            };
            if O::WATCHED && cx.state_ref().streams() {
                let path = cx.state_ref().path_now(slot);
                let status = if outcome.is_ok() {
                    NodeStatus::Completed
                } else {
                    NodeStatus::Failed
                };
                cx.state().emit(|| Event::PhaseEnded {
                    label,
                    path,
                    status,
                });
            }
            cx.state().leave_scope::<O>(scope, outcome.as_ref().err());
            outcome
        }
    }
}
