//! Errors: what went wrong, and where in the template.

use std::fmt;

use crate::limits::Limit;

/// What went wrong. Each kind carries what its message needs; the position is
/// on the [`TemplateError`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// The source is not a valid template: an unclosed `$expr{`, a bad token,
    /// trailing input, a malformed path, ...
    Syntax {
        /// What is wrong, in words.
        message: String,
    },
    /// A variable that [`Resolve::var`](crate::Resolve::var) does not know.
    UnknownVariable {
        /// The name as written.
        name: String,
        /// What [`Resolve::var_names`](crate::Resolve::var_names) listed.
        in_scope: Vec<String>,
    },
    /// A `$hier{}` path of which no prefix names a node.
    UnknownNode {
        /// The path as written.
        path: String,
        /// What [`Resolve::nearest_nodes`](crate::Resolve::nearest_nodes) suggested.
        nearest: Vec<String>,
    },
    /// A call to a function the language does not have (found when parsing).
    UnknownFunction {
        /// The name as written.
        name: String,
    },
    /// A call with the wrong number of arguments (found when parsing).
    WrongArgumentCount {
        /// The function called.
        function: &'static str,
        /// How many arguments it takes.
        expected: usize,
        /// How many it was given.
        found: usize,
    },
    /// A field read from an object that does not have it.
    MissingField {
        /// The field as written.
        field: String,
        /// The node whose output lacks it, when the field is read inside a
        /// `$hier{}` path (which prefix was taken for the node is then
        /// worth saying).
        node: Option<String>,
        /// The object's fields (at most 20, in the object's order).
        available: Vec<String>,
    },
    /// An operation on a value of the wrong type, such as `"a" + 1` or
    /// `upper(3)`.
    TypeMismatch {
        /// What is wrong, in words.
        message: String,
    },
    /// An index past either end of a list or string.
    IndexOutOfRange {
        /// The index as evaluated (negative counts from the end).
        index: i64,
        /// The length of the list or string (in characters).
        len: usize,
    },
    /// `/` or `%` by zero.
    DivisionByZero,
    /// An integer result outside `i64`, or a float result that is not finite.
    Overflow,
    /// One of the [`Limits`](crate::Limits) was exceeded.
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: usize,
    },
}

impl TemplateErrorKind {
    /// The part of the message before the location.
    fn what(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message } | Self::TypeMismatch { message } => f.write_str(message),
            Self::UnknownVariable { name, .. } => write!(f, "unknown variable `{name}`"),
            Self::UnknownNode { path, .. } => write!(f, "unknown node `{path}`"),
            Self::UnknownFunction { name } => write!(f, "unknown function `{name}`"),
            Self::WrongArgumentCount {
                function,
                expected,
                found,
            } => {
                let s = if *expected == 1 { "" } else { "s" };
                write!(
                    f,
                    "`{function}` takes {expected} argument{s}, found {found}"
                )
            }
            Self::MissingField {
                field,
                node: Some(node),
                ..
            } => write!(f, "no field `{field}` in the output of node `{node}`"),
            Self::MissingField { field, .. } => write!(f, "no field `{field}`"),
            Self::IndexOutOfRange { index, len } => {
                write!(f, "index {index} is out of range for length {len}")
            }
            Self::DivisionByZero => f.write_str("division by zero"),
            Self::Overflow => f.write_str("arithmetic overflow"),
            Self::LimitExceeded { limit, max } => match limit {
                Limit::SourceLength => {
                    write!(f, "template is longer than the limit of {max} bytes")
                }
                Limit::Depth => write!(f, "expression nests deeper than the limit of {max}"),
                Limit::OutputLength => {
                    write!(f, "output is longer than the limit of {max} bytes")
                }
                Limit::ListLength => write!(f, "list is longer than the limit of {max} items"),
                Limit::BuildSize => {
                    write!(f, "values built exceed the limit of {max} bytes")
                }
            },
        }
    }

    /// The part of the message after the location, if any: what would help.
    fn hint(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVariable { in_scope, .. } if in_scope.is_empty() => {
                f.write_str("; no variables in scope")
            }
            Self::UnknownVariable { in_scope, .. } => list(f, "; in scope: ", in_scope),
            Self::UnknownNode { nearest, .. } if nearest.is_empty() => {
                f.write_str("; no node path is near it")
            }
            Self::UnknownNode { nearest, .. } => list(f, "; nearest nodes: ", nearest),
            Self::UnknownFunction { .. } => {
                list(f, "; known functions: ", crate::functions::NAMES.iter())
            }
            Self::MissingField { available, .. } if available.is_empty() => {
                f.write_str("; the object has no fields")
            }
            Self::MissingField { available, .. } => list(f, "; fields: ", available),
            _ => Ok(()),
        }
    }
}

/// Writes `lead` and up to 20 items, comma-separated: a long scope should not
/// bury the message.
fn list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    lead: &str,
    items: impl IntoIterator<Item = T>,
) -> fmt::Result {
    const SHOWN: usize = 20;
    f.write_str(lead)?;
    let mut more = 0;
    for (i, item) in items.into_iter().enumerate() {
        match i {
            0 => write!(f, "{item}")?,
            i if i < SHOWN => write!(f, ", {item}")?,
            _ => more += 1,
        }
    }
    if more > 0 {
        write!(f, ", and {more} more")?;
    }
    Ok(())
}

/// An error from parsing, rendering or evaluating a template: the
/// [kind](TemplateErrorKind), the byte position in the source, its line and
/// column, and (in `Display`) the template line with a caret under the
/// position.
///
/// ```
/// use stroma_template::{Template, TemplateErrorKind};
///
/// let err = Template::parse("Task: $expr{task.id").unwrap_err();
/// assert!(matches!(err.kind(), TemplateErrorKind::Syntax { .. }));
/// assert_eq!((err.position(), err.line(), err.column()), (6, 1, 7));
/// assert_eq!(
///     err.to_string(),
///     "unclosed `$expr{` at line 1, column 7\n\
///      Task: $expr{task.id\n      ^"
/// );
/// ```
#[derive(Clone, PartialEq)]
pub struct TemplateError(Box<Located>);

/// Boxed, so that `Result<_, TemplateError>` stays small.
#[derive(Clone, Debug, PartialEq)]
struct Located {
    kind: TemplateErrorKind,
    position: usize,
    line: usize,
    column: usize,
    /// The source line at the position (a window of it, when long).
    excerpt: String,
    /// Characters of `excerpt` before the caret.
    caret: usize,
}

impl TemplateError {
    /// What went wrong.
    pub fn kind(&self) -> &TemplateErrorKind {
        &self.0.kind
    }

    /// Byte offset in the template source.
    pub fn position(&self) -> usize {
        self.0.position
    }

    /// Line of [`position`](Self::position), from 1.
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// Column of [`position`](Self::position), from 1, in characters.
    pub fn column(&self) -> usize {
        self.0.column
    }

    /// Locates `fault` in `source`.
    pub(crate) fn new(fault: Fault, source: &str) -> Self {
        let FaultInner { kind, pos } = match fault {
            Fault::Error(inner) => *inner,
            // `default` catches every `Absent`; should one escape, it is
            // reported, not a panic.
            Fault::Absent => FaultInner {
                kind: TemplateErrorKind::Syntax {
                    message: "internal error: an absent value escaped `default`".to_owned(),
                },
                pos: 0,
            },
        };
        let mut pos = pos.min(source.len());
        while !source.is_char_boundary(pos) {
            pos -= 1;
        }
        let line_start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[pos..].find('\n').map_or(source.len(), |i| pos + i);
        let line = source[..line_start].matches('\n').count() + 1;
        let before = source[line_start..pos].chars().count();
        let text = source[line_start..line_end].trim_end_matches('\r');
        let (excerpt, caret) = window(text, before);
        Self(Box::new(Located {
            kind,
            position: pos,
            line,
            column: before + 1,
            excerpt,
            caret,
        }))
    }
}

impl fmt::Debug for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateError")
            .field("kind", &self.0.kind)
            .field("position", &self.0.position)
            .field("line", &self.0.line)
            .field("column", &self.0.column)
            .finish_non_exhaustive()
    }
}

/// At most this many characters of a line are shown, around the caret.
const WINDOW: usize = 120;

/// The part of `line` shown under the message, and the caret's character
/// offset in it: a minified one-line template must not print a megabyte.
fn window(line: &str, caret: usize) -> (String, usize) {
    let total = line.chars().count();
    if total <= WINDOW {
        return (line.to_owned(), caret);
    }
    let start = caret.saturating_sub(WINDOW / 2).min(total - WINDOW);
    let mut excerpt = String::new();
    let mut caret_at = caret - start;
    if start > 0 {
        excerpt.push('…');
        caret_at += 1;
    }
    excerpt.extend(line.chars().skip(start).take(WINDOW));
    if start + WINDOW < total {
        excerpt.push('…');
    }
    (excerpt, caret_at)
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        e.kind.what(f)?;
        write!(f, " at line {}, column {}", e.line, e.column)?;
        e.kind.hint(f)?;
        writeln!(f)?;
        writeln!(f, "{}", e.excerpt)?;
        // Tabs stay tabs so the caret lines up however the terminal sets tab stops.
        for c in e.excerpt.chars().take(e.caret) {
            f.write_str(if c == '\t' { "\t" } else { " " })?;
        }
        f.write_str("^")
    }
}

impl std::error::Error for TemplateError {}

/// An error before it is located: kind and byte position, boxed so that
/// the `Result`s on the evaluator's hot path stay small. Or `Absent`: a
/// missing value inside `default(..)`'s first argument, which is no error
/// once `default` has caught it (never shown to a caller).
#[derive(Debug)]
pub(crate) enum Fault {
    Absent,
    Error(Box<FaultInner>),
}

#[derive(Debug)]
pub(crate) struct FaultInner {
    kind: TemplateErrorKind,
    pos: usize,
}

impl Fault {
    pub(crate) fn new(kind: TemplateErrorKind, pos: usize) -> Self {
        Self::Error(Box::new(FaultInner { kind, pos }))
    }

    pub(crate) fn syntax(message: impl Into<String>, pos: usize) -> Self {
        Self::new(
            TemplateErrorKind::Syntax {
                message: message.into(),
            },
            pos,
        )
    }

    pub(crate) fn type_mismatch(message: impl Into<String>, pos: usize) -> Self {
        Self::new(
            TemplateErrorKind::TypeMismatch {
                message: message.into(),
            },
            pos,
        )
    }

    pub(crate) fn limit(limit: Limit, max: usize, pos: usize) -> Self {
        Self::new(TemplateErrorKind::LimitExceeded { limit, max }, pos)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Fault>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_shown_whole() {
        assert_eq!(window("abc", 1), ("abc".to_owned(), 1));
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = "é".repeat(300);
        let (start, caret) = window(&line, 0);
        assert_eq!((start.chars().count(), caret), (WINDOW + 1, 0));
        assert!(start.ends_with('…'));
        let (end, caret) = window(&line, 300);
        assert_eq!((end.chars().count(), caret), (WINDOW + 1, WINDOW + 1));
        assert!(end.starts_with('…'));
    }

    #[test]
    fn positions_off_a_char_boundary_move_back() {
        let err = TemplateError::new(Fault::syntax("x", 2), "aé");
        assert_eq!((err.position(), err.column()), (1, 2));
        let err = TemplateError::new(Fault::syntax("x", 99), "ab\ncd");
        assert_eq!((err.position(), err.line(), err.column()), (5, 2, 3));
    }
}
