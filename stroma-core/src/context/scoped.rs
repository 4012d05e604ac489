//! What a node's [`Context`] knows of where the node runs: the variables
//! of its scopes, the results of the nodes before it, its path.

use std::any::type_name;
use std::sync::Arc;

use super::context::Context;
use crate::combinators::flow::VarScope;
use crate::combinators::modifiers::Modifier;
use crate::error::ContextError;
use crate::run::event::{Event, Sinks};
use crate::session::Session;
use crate::session::view::{PhaseSession, Report, SessionView, resolve};
use crate::tree::ScopePath;
use crate::tree::kept::Kept;
use crate::tree::results::ResultsStore;
use crate::tree::scope::ResultError;
use crate::tree::trace::Loc;

/// Where a node runs, as its context handle carries it.
#[derive(Clone, Default)]
pub(crate) struct Place {
    pub(crate) at: Option<Loc>,
    pub(crate) vars: Option<Arc<VarScope>>,
    pub(crate) results: Option<Arc<ResultsStore>>,
    /// Where the run's events go, for [`Context::emit`].
    pub(crate) sinks: Sinks,
    /// Whether the node runs `.isolated()` (no results) or `.snapshot()`.
    pub(crate) modifier: Modifier,
    /// What its session view is resolved from.
    pub(crate) phase_session: Option<PhaseSession>,
    pub(crate) run_session: Option<Arc<dyn Session>>,
    /// In a durable run, the node's journal: steps, questions.
    pub(crate) durable: Option<Arc<crate::durable::run::NodeJournal>>,
    /// The run, for idempotency keys.
    pub(crate) run_id: Option<crate::RunId>,
    /// Cancelled when the run is stopped from outside.
    pub(crate) cancel: Option<tokio_util::sync::CancellationToken>,
}

impl Context {
    /// The variable `name` of the node's scope or, if it has none of that
    /// name, of each enclosing scope outward, nearest first: an inner
    /// variable shadows an outer one. Variables are declared with
    /// [`flow(..).var(..)`](crate::Flow::var), [`RunOptions::var`](crate::RunOptions::var)
    /// and [`StromaRunner::with_var`](crate::StromaRunner::with_var).
    ///
    /// Missing, the error names the variable and the scopes searched; of
    /// another type, the variable, the scope that holds it and both types.
    pub fn var<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, ContextError> {
        let Some(vars) = &self.place.vars else {
            return Err(self.no_variable(name, Vec::new()));
        };
        let Some((var, scope)) = vars.find(name) else {
            return Err(self.no_variable(name, vars.labels()));
        };
        Arc::clone(&var.value)
            .downcast::<T>()
            .map_err(|_| ContextError::VariableType {
                name: name.to_owned(),
                scope: scope.label.to_string(),
                expected: type_name::<T>(),
                found: var.type_name,
                node: self.node(),
            })
    }

    fn no_variable(&self, name: &str, searched: Vec<String>) -> ContextError {
        let searched = if searched.is_empty() {
            vec!["the run".to_owned()]
        } else {
            searched
        };
        ContextError::MissingVariable {
            name: name.to_owned(),
            searched,
            node: self.node(),
        }
    }

    /// Completes when the run is stopped from outside (its
    /// [`cancel_token`](crate::RunOptions::cancel_token) cancelled, or its
    /// [`timeout`](crate::RunOptions::timeout) passed); never, for a run
    /// that cannot be. A long node can `select` on it to stop cleanly.
    pub async fn cancelled(&self) {
        match &self.place.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// Whether the run has been stopped from outside.
    pub fn is_cancelled(&self) -> bool {
        self.place
            .cancel
            .as_ref()
            .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
    }

    /// The path of the node this context was given to: `implementation.code_generator`.
    /// Outside a node (a context made by hand), the root's, empty.
    pub fn scope_path(&self) -> ScopePath {
        match (&self.place.results, self.place.at) {
            (Some(results), Some(at)) => results.path(at),
            _ => ScopePath::root(),
        }
    }

    /// The kept output of a node that completed earlier in this run.
    ///
    /// A plain id (`"dynamic_repo_analysis"`) is looked up among the nodes
    /// of this node's scope, including those inside its loops (the latest
    /// iteration's output), branches and items, then in each enclosing
    /// scope outward. A node inside a nested flow or named pipeline is
    /// reached with a dotted reference (`"flow1.node3"`), resolved against
    /// the nearest enclosing scope that has its first segment. Errors name
    /// the reference and suggest the nearest existing paths.
    pub fn result<T: Send + Sync + 'static>(
        &self,
        reference: &str,
    ) -> Result<Arc<T>, ContextError> {
        let kept = self.kept(reference)?;
        let error = |error| ContextError::Result {
            error,
            node: self.node(),
        };
        match kept {
            Kept::Value(value) => value.get::<T>().ok_or_else(|| {
                error(ResultError::WrongType {
                    path: reference.to_owned(),
                    expected: type_name::<T>(),
                    found: value.type_name(),
                })
            }),
            Kept::NotKeepable { type_name } => Err(error(ResultError::NotKeepable {
                path: reference.to_owned(),
                type_name,
            })),
        }
    }

    /// Whether [`result`](Self::result) would find an output for `reference` (of any type).
    pub fn has_result(&self, reference: &str) -> bool {
        matches!(self.kept(reference), Ok(Kept::Value(_)))
    }

    /// This node's view of the conversation, resolved in this order:
    /// `.isolated()` (nothing), `.snapshot()` (reads the sharing phase's
    /// session, else the run's; writes discarded), a sharing phase (its own
    /// session), a history phase (a read-only copy), else the run's session
    /// ([`StromaRunner::with_session`](crate::StromaRunner::with_session),
    /// [`RunOptions::session`](crate::RunOptions::session)), or none.
    pub fn session(&self) -> SessionView {
        let view = resolve(
            self.place.modifier,
            self.place.phase_session.as_ref(),
            self.place.run_session.as_ref(),
        );
        if !self.place.sinks.any() {
            return view;
        }
        view.reporting(Report {
            sinks: self.place.sinks.clone(),
            path: self.scope_path(),
        })
    }

    /// Sends a custom event, `name` with `data` (any `Serialize` value, as
    /// JSON), to the run's handler and stream, where it is
    /// [`Event::Custom`](crate::Event::Custom), in order with the run's own
    /// events. Not async: it never waits. Without a handler or stream it
    /// does nothing.
    pub fn emit(&self, name: impl Into<String>, data: impl serde::Serialize) {
        self.place.sinks.send(|| Event::Custom {
            name: name.into(),
            data: serde_json::to_value(&data)
                .unwrap_or_else(|err| serde_json::Value::String(format!("<not JSON: {err}>"))),
            path: self.scope_path(),
        });
    }

    /// The kept output `reference` names, from this node.
    pub(crate) fn kept(&self, reference: &str) -> Result<Kept, ContextError> {
        let (Some(results), Some(at)) = (&self.place.results, self.place.at) else {
            return Err(ContextError::NotInRun {
                what: "node results",
            });
        };
        if self.place.modifier == Modifier::Isolated {
            return Err(ContextError::NotInRun {
                what: "node results (an `.isolated()` node reads none)",
            });
        }
        if !results.keeps() {
            return Err(ContextError::Result {
                error: ResultError::NotKept,
                node: self.node(),
            });
        }
        results
            .lookup(at, reference)
            .map_err(|error| ContextError::Result {
                error,
                node: self.node(),
            })
    }
}
