//! [`flow`]: a named scope with variables of its own.

use std::any::{Any, type_name};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::engine::failure::NodeFailure;
use crate::engine::observe::Observer;
use crate::engine::state::Cx;
use crate::node::{Node, Runnable};
use crate::tree::ScopeKind;

/// A variable of a scope: its value, typed for [`Context::var`](crate::Context::var),
/// and as JSON, for templates.
#[derive(Clone)]
pub(crate) struct Var {
    pub(crate) name: Cow<'static, str>,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
    pub(crate) type_name: &'static str,
    /// The value as JSON, made when declared; the error's text if it has none.
    pub(crate) json: Result<serde_json::Value, Arc<str>>,
}

impl Var {
    pub(crate) fn new<T: Serialize + Send + Sync + 'static>(
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        let json = serde_json::to_value(&value).map_err(|err| Arc::from(err.to_string()));
        Var {
            name: name.into(),
            value: Arc::new(value),
            type_name: type_name::<T>(),
            json,
        }
    }
}

/// `vars` with `var` declared last, replacing any of the same name.
pub(crate) fn declare<'a>(vars: impl Iterator<Item = &'a Var>, var: Var) -> Arc<[Var]> {
    let mut declared: Vec<Var> = vars.filter(|v| v.name != var.name).cloned().collect();
    declared.push(var);
    declared.into()
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.type_name)
    }
}

/// How a scope of variables is named in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScopeLabel {
    Run,
    Flow(&'static str),
}

impl std::fmt::Display for ScopeLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeLabel::Run => f.write_str("the run"),
            ScopeLabel::Flow(name) => write!(f, "flow `{name}`"),
        }
    }
}

/// The variables of one scope, and the scope around it: what a node's
/// look-ups walk, nearest first.
#[derive(Debug)]
pub(crate) struct VarScope {
    /// How the scope is named in errors: `flow `implementation``, `the run`.
    pub(crate) label: ScopeLabel,
    pub(crate) vars: Arc<[Var]>,
    pub(crate) parent: Option<Arc<VarScope>>,
}

impl VarScope {
    /// The variable `name`, nearest scope first, with the scope that holds it.
    pub(crate) fn find(self: &Arc<Self>, name: &str) -> Option<(&Var, &VarScope)> {
        let mut scope: Option<&Arc<VarScope>> = Some(self);
        while let Some(current) = scope {
            if let Some(var) = current.vars.iter().rev().find(|v| v.name == name) {
                return Some((var, current));
            }
            scope = current.parent.as_ref();
        }
        None
    }

    /// The scopes a look-up searches, nearest first, as errors name them.
    pub(crate) fn labels(self: &Arc<Self>) -> Vec<String> {
        let mut labels = Vec::new();
        let mut scope: Option<&Arc<VarScope>> = Some(self);
        while let Some(current) = scope {
            labels.push(current.label.to_string());
            scope = current.parent.as_ref();
        }
        labels
    }

    /// Every variable name in scope, nearest first, each once.
    pub(crate) fn names(self: &Arc<Self>) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut scope: Option<&Arc<VarScope>> = Some(self);
        while let Some(current) = scope {
            for var in current.vars.iter() {
                if !names.iter().any(|n| *n == var.name) {
                    names.push(var.name.to_string());
                }
            }
            scope = current.parent.as_ref();
        }
        names
    }
}

/// `inner` as a named scope of its own, `name`, with variables declared by
/// [`var`](Flow::var): a node inside reads them with
/// [`Context::var`](crate::Context::var), nearest scope first, and
/// templates with `$var{name}` or a bare name in `$expr{..}`. Flows nest: an
/// inner variable shadows an outer one of the same name.
///
/// ```
/// use stroma_core::{Node, flow};
/// # fn doc<N: Node>(generate: N) {
/// let implementation = flow("implementation", generate)
///     .var("task_spec", serde_json::json!({"task_id": "T-1"}))
///     .var("max_files", 3_u32);
/// assert_eq!(implementation.name(), "implementation");
/// # }
/// ```
pub fn flow<N: Node>(name: &'static str, inner: N) -> Flow<N> {
    Flow {
        name,
        inner,
        vars: Arc::new([]),
    }
}

/// A flow; see [`flow`].
#[derive(Clone)]
pub struct Flow<N> {
    name: &'static str,
    inner: N,
    vars: Arc<[Var]>,
}

impl<N> std::fmt::Debug for Flow<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("vars", &self.vars)
            .finish_non_exhaustive()
    }
}

impl<N> Flow<N> {
    /// Declares the variable `name` of this flow, holding `value` (any
    /// `Serialize + Send + Sync` value); call as often as needed. A later
    /// declaration of one name replaces an earlier one.
    pub fn var<T: Serialize + Send + Sync + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        let vars = declare(self.vars.iter(), Var::new(name, value));
        Flow { vars, ..self }
    }
}

super::scope_node!(Flow, ScopeKind::Flow, |flow: &Flow<N>| flow.name);

impl<M: Send, N: Runnable<M>> Runnable<M> for Flow<N> {
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
            let outer = cx.state_ref().vars.clone();
            cx.state().vars = Some(Arc::new(VarScope {
                label: ScopeLabel::Flow(self.name),
                vars: Arc::clone(&self.vars),
                parent: outer.clone(),
            }));
            let outcome = self.inner.run::<O>(input, cx, slot + 1).await;
            let outcome = outcome.map_err(|failure| failure.locate(cx.state_ref().current));
            cx.state().vars = outer;
            cx.state().leave_scope::<O>(scope, outcome.as_ref().err());
            outcome
        }
    }
}
