//! [`ScopePath`]: how a node is named from the run's root.
//!
//! The format, read left to right:
//!
//! - segments are joined by `.`: `stage.parse` is the node `parse` inside
//!   the named scope `stage`;
//! - a segment is an id, with `#k` when it is the k-th sibling of that id in
//!   its scope (`inc`, `inc#2`, `inc#3`);
//! - `[n]` after a segment names a dynamic child of a loop, `parallel!` or
//!   `for_each` by number: `refine[2].assess` is `assess` in the second
//!   iteration of the loop `refine` (iterations count from 1, as loop errors
//!   and events do), `both[0].fetch` is `fetch` in the first branch of
//!   `both`, and `pages[3].fetch` is `fetch` for the item at index 3 of the
//!   list (branches and items count from 0, as tuple fields and list indices
//!   do).
//!
//! The run's root has the empty path. An id never contains `.`, `#`, `[` or
//! `]`: any in a name given with `.named(..)` are shown as `_` in paths.

use std::fmt;
use std::sync::Arc;

/// A node's place in its run, from the run's root: `stage.parse`,
/// `refine[2].assess`, `inc#2`. Cheap to clone.
///
/// ```
/// use stroma_core::ScopePath;
///
/// let path = ScopePath::parse("refine[2].assess").unwrap();
/// assert_eq!(path.as_str(), "refine[2].assess");
/// assert_eq!(path.segments().count(), 3);
/// assert!(ScopePath::parse("refine[x]").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopePath(Arc<str>);

/// One step of a [`ScopePath`]: a child by id (and sibling number), or a
/// dynamic child by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A child by id; `occurrence` is 1 for the first sibling of that id, 2 for `id#2`, ...
    Id {
        /// The id.
        id: &'a str,
        /// Which sibling of that id, from 1.
        occurrence: u32,
    },
    /// A loop iteration, `parallel!` branch or `for_each` item: `[n]`.
    Index(u32),
}

/// A path string that is not in the [`ScopePath`] format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    path: String,
    position: usize,
    problem: &'static str,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a node path: {} at byte {}; paths look like `stage.parse`, `inc#2` or `refine[2].assess`",
            self.path, self.problem, self.position
        )
    }
}

impl std::error::Error for PathError {}

impl ScopePath {
    /// The root's path: empty.
    pub fn root() -> Self {
        ScopePath(Arc::from(""))
    }

    /// Checks `text` against the path format.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        segments(text).try_for_each(|segment| segment.map(drop))?;
        Ok(ScopePath(Arc::from(text)))
    }

    /// A path known to be well formed.
    pub(crate) fn from_trusted(text: String) -> Self {
        ScopePath(Arc::from(text))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root's (empty) path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path's steps, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        // Checked when made: every segment parses.
        segments(&self.0).map_while(Result::ok)
    }

    /// The path of `child` (an id with its sibling suffix) under this one.
    pub(crate) fn child(&self, key: &str) -> ScopePath {
        if self.is_root() {
            return ScopePath(Arc::from(key));
        }
        let mut text = String::with_capacity(self.0.len() + 1 + key.len());
        text.push_str(&self.0);
        text.push('.');
        text.push_str(key);
        ScopePath(Arc::from(text))
    }

    /// The path of the dynamic child `[index]` under this one.
    pub(crate) fn indexed(&self, index: u32) -> ScopePath {
        ScopePath(Arc::from(format!("{}[{index}]", self.0)))
    }
}

impl fmt::Display for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl AsRef<str> for ScopePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ScopePath {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ScopePath {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl std::str::FromStr for ScopePath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, PathError> {
        ScopePath::parse(text)
    }
}

/// Whether `c` may appear in an id.
pub(crate) fn is_id_char(c: char) -> bool {
    !matches!(c, '.' | '#' | '[' | ']')
}

/// `id` as it appears in a path: separator characters become `_`.
pub(crate) fn sanitize(id: &str) -> std::borrow::Cow<'_, str> {
    if id.chars().all(is_id_char) && !id.is_empty() {
        std::borrow::Cow::Borrowed(id)
    } else if id.is_empty() {
        std::borrow::Cow::Borrowed("_")
    } else {
        std::borrow::Cow::Owned(
            id.chars()
                .map(|c| if is_id_char(c) { c } else { '_' })
                .collect(),
        )
    }
}

/// The steps of `text`, or where it breaks the format. Never panics.
fn segments(text: &str) -> impl Iterator<Item = Result<Segment<'_>, PathError>> + '_ {
    let error = move |position: usize, problem: &'static str| PathError {
        path: text.to_owned(),
        position,
        problem,
    };
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut expect_id = true;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= bytes.len() {
            if !failed && expect_id && at > 0 {
                failed = true;
                return Some(Err(error(at, "a path ends with `.`")));
            }
            return None;
        }
        let step = if bytes[at] == b'[' {
            let start = at + 1;
            let Some(len) = bytes[start..].iter().position(|b| *b == b']') else {
                failed = true;
                return Some(Err(error(at, "an unclosed `[`")));
            };
            let digits = &text[start..start + len];
            let parsed = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                digits.parse::<u32>().ok()
            };
            let Some(index) = parsed else {
                failed = true;
                return Some(Err(error(start, "an index that is not a number")));
            };
            if at == 0 {
                failed = true;
                return Some(Err(error(at, "an index with no scope before it")));
            }
            at = start + len + 1;
            expect_id = false;
            Segment::Index(index)
        } else {
            if !expect_id {
                if bytes[at] != b'.' {
                    failed = true;
                    return Some(Err(error(at, "expected `.` or `[`")));
                }
                at += 1;
                if at >= bytes.len() {
                    failed = true;
                    return Some(Err(error(at, "a path ends with `.`")));
                }
            }
            let start = at;
            let len = text[start..]
                .find(|c: char| !is_id_char(c))
                .unwrap_or(text.len() - start);
            if len == 0 {
                failed = true;
                return Some(Err(error(start, "an empty id")));
            }
            let id = &text[start..start + len];
            at = start + len;
            let mut occurrence = 1;
            if bytes.get(at) == Some(&b'#') {
                let digits_start = at + 1;
                let digits_len = bytes[digits_start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(bytes.len() - digits_start);
                let parsed = text[digits_start..digits_start + digits_len]
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 2);
                let Some(n) = parsed else {
                    failed = true;
                    return Some(Err(error(
                        digits_start,
                        "a `#` not followed by a number from 2",
                    )));
                };
                occurrence = n;
                at = digits_start + digits_len;
            }
            expect_id = false;
            Segment::Id { id, occurrence }
        };
        Some(Ok(step))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_any_text_is_a_path_or_an_error_never_a_panic(text in "\\PC{0,40}") {
            let _ = ScopePath::parse(&text);
        }

        #[test]
        fn text_made_of_path_characters_never_panics_and_paths_read_back(
            text in "[a-z0-9_#\\[\\]\\.]{0,30}",
        ) {
            if let Ok(path) = ScopePath::parse(&text) {
                // What parses prints as it was written, and parses again the same.
                prop_assert_eq!(path.as_str(), text.as_str());
                prop_assert_eq!(ScopePath::parse(path.as_str()).ok(), Some(path.clone()));
            }
        }
    }

    #[test]
    fn well_formed_paths_parse_into_their_steps() {
        let path = ScopePath::parse("stage.inc#2.refine[3].assess").unwrap();
        let steps: Vec<_> = path.segments().collect();
        assert_eq!(
            steps,
            [
                Segment::Id {
                    id: "stage",
                    occurrence: 1
                },
                Segment::Id {
                    id: "inc",
                    occurrence: 2
                },
                Segment::Id {
                    id: "refine",
                    occurrence: 1
                },
                Segment::Index(3),
                Segment::Id {
                    id: "assess",
                    occurrence: 1
                },
            ]
        );
        assert!(ScopePath::parse("").unwrap().is_root());
        assert_eq!(ScopePath::parse("a[0][1]").unwrap().segments().count(), 3);
    }

    #[test]
    fn malformed_paths_are_errors_that_say_where() {
        for bad in [
            "a.", ".a", "a..b", "a[", "a[x]", "[1]", "a#", "a#1", "a#x", "a]b", "a[1]b",
        ] {
            let err = ScopePath::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn ids_with_separators_are_shown_with_underscores() {
        assert_eq!(sanitize("a.b[1]#2"), "a_b_1__2");
        assert_eq!(sanitize("fetch > parse"), "fetch > parse");
        assert_eq!(sanitize(""), "_");
    }
}
