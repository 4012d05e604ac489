//! The template language of Stroma: text with `$var{}`, `$hier{}` and
//! `$expr{}` references, evaluated over `serde_json::Value`s.
//!
//! A pure library: it parses, checks and evaluates, and reads nothing but
//! what the caller's [`Resolve`] gives it (no I/O, clock, environment or
//! code execution).
//!
//! ```
//! use std::borrow::Cow;
//! use std::collections::HashMap;
//!
//! use serde_json::{Value, json};
//! use stroma_template::{Resolve, Template};
//!
//! /// Variables and node outputs in two maps.
//! struct Scope {
//!     vars: HashMap<String, Value>,
//!     nodes: HashMap<String, Value>,
//! }
//!
//! impl Resolve for Scope {
//!     fn var(&self, name: &str) -> Option<Cow<'_, Value>> {
//!         self.vars.get(name).map(Cow::Borrowed)
//!     }
//!     fn node(&self, path: &str) -> Option<Cow<'_, Value>> {
//!         self.nodes.get(path).map(Cow::Borrowed)
//!     }
//!     fn var_names(&self) -> Vec<String> {
//!         let mut names: Vec<String> = self.vars.keys().cloned().collect();
//!         names.sort();
//!         names
//!     }
//!     fn nearest_nodes(&self, path: &str) -> Vec<String> {
//!         // A real engine ranks by distance in the run tree; a shared first
//!         // segment will do here.
//!         let first = path.split('.').next().unwrap_or(path);
//!         let mut near: Vec<String> =
//!             self.nodes.keys().filter(|p| p.starts_with(first)).cloned().collect();
//!         near.sort();
//!         near
//!     }
//! }
//!
//! let scope = Scope {
//!     vars: HashMap::from([
//!         ("task_spec".to_owned(), json!({"id": "T-7", "description": "add a cache"})),
//!         ("index".to_owned(), json!(1)),
//!     ]),
//!     nodes: HashMap::from([(
//!         "implementation.code_generator".to_owned(),
//!         json!({"files": ["cache.rs", "lib.rs"]}),
//!     )]),
//! };
//!
//! let template = Template::parse(
//!     "Task $expr{task_spec.id}: $expr{upper(task_spec.description)}\n\
//!      Second file: $expr{$hier{implementation.code_generator.files}[$var{index}]}",
//! )?;
//! assert_eq!(
//!     template.render(&scope)?,
//!     "Task T-7: ADD A CACHE\nSecond file: lib.rs"
//! );
//!
//! // A template that is one reference evaluates to the value itself.
//! let files = Template::parse("$hier{implementation.code_generator.files}")?;
//! assert_eq!(files.evaluate(&scope)?, json!(["cache.rs", "lib.rs"]));
//!
//! // Errors say what and where, and what is there instead.
//! let err = Template::parse("Task: $expr{task_spek.id}")?.render(&scope).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "unknown variable `task_spek` at line 1, column 13; in scope: index, task_spec\n\
//!      Task: $expr{task_spek.id}\n            ^"
//! );
//! # Ok::<(), stroma_template::TemplateError>(())
//! ```
//!
//! # The language
//!
//! Text is copied as it is, except for three kinds of reference:
//!
//! - `$var{name}`: the variable `name`, as [`Resolve::var`] gives it.
//! - `$hier{path}`: a kept node output. The path is dotted (`flow1.node3`),
//!   and a segment may carry a `#k` suffix and `[n]` indices
//!   (`refine[2].assess`, `review#2`). The **longest prefix** of the path for
//!   which [`Resolve::node`] answers names the node; the rest is read as
//!   fields and indices of its output. `$hier{implementation.code_generator.files}`
//!   is the field `files` of node `implementation.code_generator` if that
//!   node exists. A `#k` names a node, never a field.
//! - `$expr{expression}`: an expression (grammar below).
//!
//! To write a literal `$var{` (or `$hier{`, `$expr{`), double the dollar:
//! `$$var{` renders as `$var{`. A `$` anywhere else is literal, `$$` included.
//! (A `$` right before a reference is written `$expr{"$"}`.)
//!
//! ## Rendering rule
//!
//! [`Template::render`] writes each reference's value into the text: strings
//! without quotes; everything else as compact JSON, as `serde_json::to_string`
//! writes it: `42`, `1.5`, `true`, `[1,"a"]`, `{"k":"v"}`, and null as
//! `null`. Null is written rather than dropped so that a missing value shows
//! in the output instead of vanishing silently; write `default(x, "")` for an
//! empty string instead.
//!
//! [`Template::evaluate`] gives a value: when the template is exactly one
//! reference with no text around it (not even whitespace), that reference's
//! value itself; otherwise the rendered text as a string.
//!
//! ## Grammar
//!
//! ```text
//! template    = { text | "$$" opener | var | hier | expr } ;
//! opener      = "var{" | "hier{" | "expr{" ;       (* after "$$": literal text *)
//! var         = "$var{" name "}" ;
//! hier        = "$hier{" path "}" ;
//! expr        = "$expr{" conditional "}" ;
//! name        = idchar { idchar } ;                (* idchar: not .#[]{} or whitespace *)
//! path        = segment { "." segment } ;
//! segment     = name [ "#" digits ] { "[" [ "-" ] digits "]" } ;
//!
//! conditional = or [ "if" or "else" conditional ] ;
//! or          = and { "or" and } ;
//! and         = not { "and" not } ;
//! not         = "not" not | comparison ;
//! comparison  = sum [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum ] ;
//! sum         = product { ( "+" | "-" ) product } ;
//! product     = unary { ( "*" | "/" | "%" ) unary } ;
//! unary       = "-" unary | postfix ;
//! postfix     = primary { "." ident | "[" conditional "]" } ;
//! primary     = literal | ident | call | var | hier
//!             | "(" conditional ")" | "[" [ items ] "]" ;
//! call        = ident "(" [ items ] ")" ;
//! items       = conditional { "," conditional } [ "," ] ;
//! literal     = integer | float | string | "true" | "false" | "null" ;
//! ```
//!
//! Whitespace (newlines included) may separate tokens. An `ident` is a
//! letter or `_` followed by letters, digits and `_`; a bare ident in an
//! expression is a variable (`task_spec.id`), and `$var{}` reads variables
//! whose names are not idents. Keywords: `and or not if else true false
//! null` (still usable as field names after `.`). Strings are in `"..."` or
//! `'...'`, with escapes `\\ \" \' \n \r \t \0 \u{hex}`.
//!
//! Semantics, briefly:
//!
//! - `a.b` reads a field of an object; `a[i]` an item of a list or a
//!   character of a string (negative `i` counts from the end), or a field of
//!   an object by string key (`m["key"]`). A missing field, an index out of
//!   range or reading into the wrong type is an error.
//! - `+ - * / %` on numbers: integers stay exact (an overflow is an error),
//!   `/` gives an integer when the division is exact and a float otherwise,
//!   `%` takes the sign of the divisor. `+` also joins two strings or two
//!   lists.
//! - `==` / `!=` compare any values structurally, numbers by value
//!   (`1 == 1.0`); `< <= > >=` order two numbers or two strings. Comparisons
//!   do not chain.
//! - Truthiness as in Python: null, `false`, zero, and empty strings, lists
//!   and objects are false. `and` / `or` short-circuit and give the deciding
//!   operand (`name or "anonymous"`); `not` gives a boolean.
//! - Functions (no others exist; an unknown one fails at parse time):
//!   `len(x)` (characters, items or fields), `upper(s)`, `lower(s)`,
//!   `trim(s)`, `join(list, sep)` (items rendered as in text), `keys(obj)`,
//!   `json(x)` (compact JSON text), and `default(x, fallback)`: `fallback`
//!   when `x` is null or absent. Anywhere inside `x`, an unknown variable or
//!   node, a missing field, an index out of range, or a field or index of
//!   null makes `x` absent instead of being an error
//!   (`default(len(task.files), 0)`); other errors, such as a wrong type,
//!   are still errors.
//!
//! # Limits
//!
//! Parsing and evaluation never panic, and their stack and memory are
//! bounded by [`Limits`]: the source length (1 MiB), the nesting depth of an
//! expression (64, and never more than 128 whatever is set), the rendered
//! output and every string built (16 MiB), the length of a list built
//! (100,000 items), and the total size of values one evaluation builds
//! (64 MiB). Past any of them, the error is
//! [`TemplateErrorKind::LimitExceeded`]. Parsing and evaluating recurse
//! once per nesting level, so the depth limit bounds the stack (figures at
//! [`Limits::max_depth`]); long flat chains such as `a + b + c + ...` or
//! `a.b.c...` do not nest.
//!
//! Values handed in by [`Resolve`] are read, compared and written without
//! recursion, however deep. Copying one (when an expression puts it in a
//! new list, or [`Template::evaluate`] returns it) is serde_json's own
//! `Clone`, which recurses as deep as the value, as dropping it does.

#![warn(missing_docs)]

mod ast;
mod error;
mod eval;
mod functions;
mod lexer;
mod limits;
mod ops;
mod parser;
mod path;
mod render;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde_json::Value;

pub use error::{TemplateError, TemplateErrorKind};
pub use limits::{Limit, Limits};

use ast::Segment;
use error::Fault;
use parser::RefSpan;

/// What a template reads: the engine implements it over its scoped
/// variables and kept node outputs. See the [crate docs](crate) for an
/// implementation over `HashMap`s.
pub trait Resolve {
    /// A variable's value, by bare name (nearest scope first); `None` if absent.
    fn var(&self, name: &str) -> Option<Cow<'_, Value>>;

    /// The kept output of the node at `path` (a dotted node reference like
    /// `flow1.node3`, resolved as the engine decides), as JSON; `None` if no
    /// node has that path. For a `$hier{}` path, the template asks for its
    /// prefixes, longest first, until one answers.
    fn node(&self, path: &str) -> Option<Cow<'_, Value>>;

    /// Names of the variables in scope, for "unknown variable" errors.
    fn var_names(&self) -> Vec<String>;

    /// Existing node paths nearest to `path`, for "unknown node" errors.
    fn nearest_nodes(&self, path: &str) -> Vec<String>;
}

/// Something a template mentions, from [`Template::references`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reference<'a> {
    /// A variable: a bare name in an expression, or `$var{name}`.
    Var(&'a str),
    /// A whole `$hier{}` path as written (node and fields; which prefix is
    /// the node is decided when it is read).
    Hier(&'a str),
}

/// A parsed template, ready to render or evaluate any number of times.
///
/// Cheap to share: it is `Send + Sync`, and rendering takes `&self`.
///
/// ```
/// use std::borrow::Cow;
/// use serde_json::{Value, json};
/// use stroma_template::{Reference, Resolve, Template};
///
/// struct One(Value);
/// impl Resolve for One {
///     fn var(&self, name: &str) -> Option<Cow<'_, Value>> {
///         (name == "n").then_some(Cow::Borrowed(&self.0))
///     }
///     fn node(&self, _: &str) -> Option<Cow<'_, Value>> { None }
///     fn var_names(&self) -> Vec<String> { vec!["n".into()] }
///     fn nearest_nodes(&self, _: &str) -> Vec<String> { Vec::new() }
/// }
///
/// let t = Template::parse("$expr{n * 2} is $expr{'even' if n % 2 == 0 else 'odd'}")?;
/// assert_eq!(t.render(&One(json!(21)))?, "42 is odd");
/// assert_eq!(t.references().collect::<Vec<_>>(), [Reference::Var("n"), Reference::Var("n")]);
/// # Ok::<(), stroma_template::TemplateError>(())
/// ```
#[derive(Clone)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    refs: Vec<RefSpan>,
    limits: Limits,
    /// Initial capacity of the rendered text: the literal text plus room for values.
    capacity: usize,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Room reserved per reference when rendering, before any value is seen.
const VALUE_ROOM: usize = 32;

impl Template {
    /// Parses `source` with the default [`Limits`].
    ///
    /// Fails on a syntax error, an unknown function or a wrong number of
    /// arguments, or a limit exceeded; names and nodes are only looked up
    /// when rendering.
    ///
    /// ```
    /// use stroma_template::Template;
    /// let err = Template::parse("$expr{shout(name)}").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "unknown function `shout` at line 1, column 7; \
    ///      known functions: default, join, json, keys, len, lower, trim, upper\n\
    ///      $expr{shout(name)}\n      ^"
    /// );
    /// ```
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Self::parse_with(source, Limits::default())
    }

    /// Parses `source` with the given limits, which rendering and
    /// evaluating this template then keep to as well.
    pub fn parse_with(source: &str, limits: Limits) -> Result<Template, TemplateError> {
        let parsed = parser::parse(source, &limits).map_err(|f| TemplateError::new(f, source))?;
        let capacity = parsed
            .segments
            .iter()
            .map(|s| match s {
                Segment::Text(r) => r.len(),
                Segment::Value(_) => VALUE_ROOM,
            })
            .sum::<usize>()
            .min(limits.max_output_len);
        Ok(Template {
            source: source.to_owned(),
            segments: parsed.segments,
            refs: parsed.refs,
            limits,
            capacity,
        })
    }

    /// The source this template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The limits this template was parsed with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Text: the literal text, and each `$var{}` / `$hier{}` / `$expr{}`
    /// rendered (strings unquoted, other values as compact JSON; see the
    /// [rendering rule](crate#rendering-rule)).
    pub fn render(&self, scope: &dyn Resolve) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.capacity);
        self.render_into(scope, &mut out)
            .map_err(|f| TemplateError::new(f, &self.source))?;
        Ok(out)
    }

    fn render_into(&self, scope: &dyn Resolve, out: &mut String) -> Result<(), Fault> {
        let max = self.limits.max_output_len;
        let mut eval = eval::Eval::new(&self.source, scope, &self.limits);
        for segment in &self.segments {
            match segment {
                Segment::Text(range) => {
                    let text = self.text(range);
                    render::push_str(out, text, max)
                        .map_err(|_| eval.output_exceeded(range.start))?;
                }
                Segment::Value(expr) => {
                    let value = eval.eval(expr)?;
                    render::push_text(out, &value, max)
                        .map_err(|_| eval.output_exceeded(expr.pos))?;
                }
            }
        }
        Ok(())
    }

    /// A structured value: a template that is exactly one `$expr{..}`,
    /// `$var{}` or `$hier{}`, with no text around it, evaluates to that
    /// value; otherwise to the rendered text as a JSON string.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use serde_json::{Value, json};
    /// use stroma_template::{Resolve, Template};
    ///
    /// struct Nothing;
    /// impl Resolve for Nothing {
    ///     fn var(&self, _: &str) -> Option<Cow<'_, Value>> { None }
    ///     fn node(&self, _: &str) -> Option<Cow<'_, Value>> { None }
    ///     fn var_names(&self) -> Vec<String> { Vec::new() }
    ///     fn nearest_nodes(&self, _: &str) -> Vec<String> { Vec::new() }
    /// }
    ///
    /// let list = Template::parse("$expr{[1, 2] + [3]}")?;
    /// assert_eq!(list.evaluate(&Nothing)?, json!([1, 2, 3]));
    /// let text = Template::parse("n = $expr{[1, 2] + [3]}")?;
    /// assert_eq!(text.evaluate(&Nothing)?, json!("n = [1,2,3]"));
    /// # Ok::<(), stroma_template::TemplateError>(())
    /// ```
    pub fn evaluate(&self, scope: &dyn Resolve) -> Result<Value, TemplateError> {
        if let [Segment::Value(expr)] = self.segments.as_slice() {
            let mut eval = eval::Eval::new(&self.source, scope, &self.limits);
            return eval
                .eval(expr)
                .map(Cow::into_owned)
                .map_err(|f| TemplateError::new(f, &self.source));
        }
        self.render(scope).map(Value::String)
    }

    /// Every variable name and node path the template mentions, in source
    /// order, once per mention. Function names are not included.
    pub fn references(&self) -> impl Iterator<Item = Reference<'_>> {
        self.refs.iter().map(|r| {
            let text = self.text(&r.range);
            if r.hier {
                Reference::Hier(text)
            } else {
                Reference::Var(text)
            }
        })
    }

    fn text(&self, range: &Range<usize>) -> &str {
        self.source.get(range.clone()).unwrap_or("")
    }
}
