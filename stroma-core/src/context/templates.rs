//! Templates in a node: [`Context::render`] and [`Context::evaluate`] read
//! the node's variables and the run's kept results through the template
//! language of `stroma-template`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use serde_json::Value;
use stroma_template::{Resolve, Template, TemplateError};

use super::context::Context;
use crate::tree::kept::Kept;

/// A template given to [`Context::render`] or [`Context::evaluate`]: a
/// `&str` (parsed on first use, the parse kept for later calls) or a
/// pre-parsed [`Template`] (from [`Template::parse`] or `template!`).
pub trait AsTemplate {
    /// The parsed template, or the parse error.
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError>;
}

impl AsTemplate for Template {
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError> {
        Ok(use_it(self))
    }
}

impl AsTemplate for &Template {
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError> {
        Ok(use_it(self))
    }
}

impl AsTemplate for &str {
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError> {
        Ok(use_it(&*parsed(self)?))
    }
}

impl AsTemplate for String {
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError> {
        Ok(use_it(&*parsed(self)?))
    }
}

impl AsTemplate for &String {
    fn with_template<R>(&self, use_it: impl FnOnce(&Template) -> R) -> Result<R, TemplateError> {
        Ok(use_it(&*parsed(self)?))
    }
}

/// How many parsed templates are kept; past it the cache starts over, so
/// templates made from data cannot grow it without bound.
const CACHED_TEMPLATES: usize = 512;

/// `source`, parsed once per process (while it stays cached).
fn parsed(source: &str) -> Result<Arc<Template>, TemplateError> {
    type Cache = RwLock<HashMap<String, Arc<Template>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);
    if let Some(template) = CACHE.read().unwrap_or_else(|e| e.into_inner()).get(source) {
        return Ok(Arc::clone(template));
    }
    let template = Arc::new(Template::parse(source)?);
    let mut cache = CACHE.write().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHED_TEMPLATES {
        cache.clear();
    }
    cache.insert(source.to_owned(), Arc::clone(&template));
    Ok(template)
}

impl Context {
    /// Renders `template` as text, with this node's variables and the
    /// run's kept results: `$var{name}`, `$hier{node.field}`,
    /// `$expr{..}`. Strings render unquoted, other values as compact JSON.
    /// See `stroma_template` for the language.
    ///
    /// ```
    /// use stroma_core::Context;
    ///
    /// // Outside a run there are no variables: an error that says so.
    /// let err = Context::new().render("Task: $var{task}").unwrap_err();
    /// assert!(err.to_string().contains("unknown variable `task`"));
    /// assert_eq!(Context::new().render("plain text").unwrap(), "plain text");
    /// ```
    pub fn render(&self, template: impl AsTemplate) -> Result<String, TemplateError> {
        template.with_template(|template| template.render(&NodeScope { context: self }))?
    }

    /// Evaluates `template` to a value: a template that is exactly one
    /// `$expr{..}` (or `$var{}`, `$hier{}`) gives that value, not its text;
    /// any other gives its rendered text as a string.
    pub fn evaluate(&self, template: impl AsTemplate) -> Result<Value, TemplateError> {
        template.with_template(|template| template.evaluate(&NodeScope { context: self }))?
    }
}

/// What a template in a node reads: the node's variables and the run's results.
struct NodeScope<'a> {
    context: &'a Context,
}

impl Resolve for NodeScope<'_> {
    fn var(&self, name: &str) -> Option<Cow<'_, Value>> {
        let vars = self.context.place.vars.as_ref()?;
        let (var, _) = vars.find(name)?;
        match &var.json {
            Ok(value) => Some(Cow::Borrowed(value)),
            // A value with no JSON form reads as its error's text.
            Err(error) => Some(Cow::Owned(Value::String(format!("<{error}>")))),
        }
    }

    fn node(&self, path: &str) -> Option<Cow<'_, Value>> {
        match self.context.kept(path).ok()? {
            Kept::Value(value) => value.json().and_then(Result::ok).map(Cow::Owned),
            Kept::NotKeepable { .. } => None,
        }
    }

    fn var_names(&self) -> Vec<String> {
        self.context
            .place
            .vars
            .as_ref()
            .map(|vars| vars.names())
            .unwrap_or_default()
    }

    fn nearest_nodes(&self, path: &str) -> Vec<String> {
        match (&self.context.place.results, self.context.place.at) {
            (Some(results), Some(_)) => results.nearest(path),
            _ => Vec::new(),
        }
    }
}
