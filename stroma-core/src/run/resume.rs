//! How to resume a durable run: [`ResumeOptions`], the answers to its
//! questions and its per-run variables.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::Serialize;
use serde_json::Value;

use crate::combinators::flow::Var;

/// How to resume a run: the answers to its questions, and the per-run
/// variables it was started with. `M` is the run's model type.
///
/// ```
/// use stroma_core::ResumeOptions;
///
/// let options = ResumeOptions::new().answer_to("review[0].approve:0", true);
/// # let _ = options;
/// ```
pub struct ResumeOptions<M = ()> {
    /// Each as encoded, or why it cannot be saved: the resume fails then.
    pub(crate) answer: Option<Result<Value, String>>,
    pub(crate) answers: Vec<(String, Result<Value, String>)>,
    pub(crate) vars: Vec<Var>,
    pub(crate) model: PhantomData<fn() -> M>,
}

impl ResumeOptions {
    /// Resume as saved, with the model `()`.
    pub fn new() -> Self {
        ResumeOptions {
            answer: None,
            answers: Vec::new(),
            vars: Vec::new(),
            model: PhantomData,
        }
    }
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> ResumeOptions<M> {
    /// Resume a run whose model is an `N`.
    pub fn model<N>(self) -> ResumeOptions<N> {
        ResumeOptions {
            answer: self.answer,
            answers: self.answers,
            vars: self.vars,
            model: PhantomData,
        }
    }

    /// Answers the one pending question with `answer`.
    pub fn answer(mut self, answer: impl Serialize) -> Self {
        self.answer = Some(crate::durable::bounds::encode(&answer));
        self
    }

    /// Answers the pending question `id` (see [`Interrupt::id`](crate::Interrupt::id)) with `answer`.
    pub fn answer_to(mut self, id: impl Into<String>, answer: impl Serialize) -> Self {
        self.answers
            .push((id.into(), crate::durable::bounds::encode(&answer)));
        self
    }

    /// Declares the per-run variable `name` again, as
    /// [`RunOptions::var`](crate::RunOptions::var) did when the run started.
    pub fn var<T: Serialize + Send + Sync + 'static>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        self.vars.push(Var::new(name, value));
        self
    }
}
