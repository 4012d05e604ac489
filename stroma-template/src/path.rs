//! The insides of `$var{name}` and `$hier{path}`, shared by the template
//! scanner and the expression lexer.

use std::ops::Range;

use crate::ast::{HierPath, PathPart, PathStep};
use crate::error::{Fault, Result};
use crate::limits::Limit;

/// Characters of a name or path segment: anything but `.#[]{}` and
/// whitespace, so engine ids like `code-gen` or `résumé` need no quoting.
pub(crate) fn is_id_char(c: char) -> bool {
    !matches!(c, '.' | '#' | '[' | ']' | '{' | '}') && !c.is_whitespace()
}

/// A character as an error message shows it: control characters and
/// whitespace escaped, so the message stays on one line.
pub(crate) fn show_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else if c.is_whitespace() || c.is_control() {
        format!("{c:?}")
    } else {
        format!("`{c}`")
    }
}

fn peek(src: &str, i: usize) -> Option<char> {
    src.get(i..).and_then(|s| s.chars().next())
}

fn skip_ws(src: &str, mut i: usize) -> usize {
    while let Some(c) = peek(src, i).filter(|c| c.is_whitespace()) {
        i += c.len_utf8();
    }
    i
}

fn take_while(src: &str, mut i: usize, f: impl Fn(char) -> bool) -> usize {
    while let Some(c) = peek(src, i).filter(|&c| f(c)) {
        i += c.len_utf8();
    }
    i
}

/// The error for a `$var{` or `$hier{` (opened at `open`, in words `what`)
/// whose insides stop at `i` on something other than `}`.
fn bad_close(src: &str, open: usize, i: usize, what: &str, hint: &str) -> Fault {
    match peek(src, i) {
        Some(c) if src[i..].contains('}') => Fault::syntax(
            format!("unexpected {} in `${what}{{}}`{hint}", show_char(c)),
            i,
        ),
        _ => Fault::syntax(format!("unclosed `${what}{{`"), open),
    }
}

/// Parses `name }` from `content` (just past the `{` of the `$var{` at
/// `open`). Returns the name's range and the offset past the `}`.
pub(crate) fn parse_var(src: &str, open: usize, content: usize) -> Result<(Range<usize>, usize)> {
    let start = skip_ws(src, content);
    let end = take_while(src, start, is_id_char);
    let i = skip_ws(src, end);
    match peek(src, i) {
        Some('}') if end > start => Ok((start..end, i + 1)),
        Some('}') => Err(Fault::syntax("empty `$var{}`: write a variable name", open)),
        Some('.' | '[' | '#') => Err(bad_close(
            src,
            open,
            i,
            "var",
            ": it takes one variable name; to read fields, write `$expr{name.field}`",
        )),
        _ => Err(bad_close(src, open, i, "var", "")),
    }
}

/// Parses `path }` from `content` (just past the `{` of the `$hier{` at
/// `open`). Returns the path and the offset past the `}`.
pub(crate) fn parse_hier(
    src: &str,
    open: usize,
    content: usize,
    max_parts: usize,
) -> Result<(HierPath, usize)> {
    let text_start = skip_ws(src, content);
    if peek(src, text_start) == Some('}') {
        return Err(Fault::syntax("empty `$hier{}`: write a node path", open));
    }
    let mut parts = Vec::new();
    let mut min_node_parts = 1;
    let mut i = text_start;
    loop {
        let seg_start = i;
        i = take_while(src, i, is_id_char);
        if i == seg_start {
            return Err(match peek(src, i) {
                Some(c) if src[i..].contains('}') => Fault::syntax(
                    format!(
                        "expected a name in `$hier{{}}` path, found {}",
                        show_char(c)
                    ),
                    i,
                ),
                _ => Fault::syntax("unclosed `$hier{`", open),
            });
        }
        let name = seg_start..i;
        if peek(src, i) == Some('#') {
            let digits = i + 1;
            i = take_while(src, digits, |c| c.is_ascii_digit());
            if i == digits {
                return Err(Fault::syntax("expected digits after `#`", digits));
            }
            min_node_parts = parts.len() + 1;
        }
        parts.push(PathPart {
            start: seg_start,
            end: i,
            step: PathStep::Field(name),
        });
        while peek(src, i) == Some('[') {
            let start = i;
            let digits = if peek(src, i + 1) == Some('-') {
                i + 2
            } else {
                i + 1
            };
            i = take_while(src, digits, |c| c.is_ascii_digit());
            let index = match src[start + 1..i].parse::<i64>() {
                Ok(n) if i > digits => n,
                _ if i == digits => {
                    return Err(Fault::syntax("expected an integer index after `[`", digits));
                }
                _ => return Err(Fault::syntax("index out of range", start + 1)),
            };
            if peek(src, i) != Some(']') {
                return Err(Fault::syntax("expected `]` after the index", i));
            }
            i += 1;
            parts.push(PathPart {
                start,
                end: i,
                step: PathStep::Index(index),
            });
        }
        if parts.len() > max_parts {
            // Every prefix may be looked up: a bound on parts bounds the lookups.
            return Err(Fault::limit(Limit::Depth, max_parts, seg_start));
        }
        if peek(src, i) != Some('.') {
            break;
        }
        i += 1;
    }
    let text = text_start..i;
    let i = skip_ws(src, i);
    if peek(src, i) != Some('}') {
        return Err(bad_close(src, open, i, "hier", " path"));
    }
    Ok((
        HierPath {
            text,
            parts,
            min_node_parts,
        },
        i + 1,
    ))
}
