//! [`Scope`]: one node or scope of a finished run, with its children: the run tree.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::kept::Kept;
use super::path::ScopePath;
use crate::tree::record::NodeStatus;

/// What a [`Scope`] of the run tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeKind {
    /// The run itself: the tree's root.
    Run,
    /// A named pipeline (`pipeline![..].named("stage")`): a scope of its own.
    Scope,
    /// A node that runs a function (`#[node]`).
    Node,
    /// A `loop_until`; its children are its iterations.
    Loop,
    /// One iteration of a loop, `[n]` from 1.
    Iteration,
    /// A `parallel!`; its children are its branches.
    Parallel,
    /// One branch of a `parallel!`, `[n]` from 0.
    Branch,
    /// A `for_each`; its children are its items.
    ForEach,
    /// A `flow`: a named scope with variables of its own.
    Flow,
    /// A `phase`: a scope with a session view of its own.
    Phase,
    /// One item of a `for_each`, `[n]`: the item's index in the list.
    Item,
    /// A `route!`: its classifying node, then the node of each arm; the
    /// arms not taken are `Skipped`.
    Route,
}

impl ScopeKind {
    /// Whether the scope's children are made as the run goes (iterations,
    /// branches, items) rather than fixed by the pipeline.
    pub(crate) fn is_dynamic(self) -> bool {
        matches!(
            self,
            ScopeKind::Loop | ScopeKind::Parallel | ScopeKind::ForEach
        )
    }

    /// The lower-case word for the kind, as messages use it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Run => "run",
            ScopeKind::Scope => "scope",
            ScopeKind::Node => "node",
            ScopeKind::Loop => "loop",
            ScopeKind::Iteration => "iteration",
            ScopeKind::Parallel => "parallel",
            ScopeKind::Branch => "branch",
            ScopeKind::ForEach => "for_each",
            ScopeKind::Item => "item",
            ScopeKind::Flow => "flow",
            ScopeKind::Phase => "phase",
            ScopeKind::Route => "route",
        }
    }
}

impl fmt::Display for ScopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node or scope of a run, with what happened to it and what is inside.
///
/// The tree holds the pipeline's whole static shape: nodes a failed run
/// never reached are [`Skipped`](NodeStatus::Skipped). With records off
/// ([`RunConfig::records`](crate::RunConfig::records)) only the failing
/// node's path carries statuses; the rest is [`Pending`](NodeStatus::Pending).
#[derive(Clone)]
#[non_exhaustive]
pub struct Scope {
    /// The id: the node's name, what `.named(..)` gave it, or `[n]` for an
    /// iteration, branch or item.
    pub id: String,
    /// Where it is, from the run's root.
    pub path: ScopePath,
    /// What it is.
    pub kind: ScopeKind,
    /// How it ended.
    pub status: NodeStatus,
    /// How long it ran, when it ran and records were on.
    pub duration: Option<Duration>,
    /// What is inside, in order.
    pub children: Vec<Scope>,
    pub(crate) output: Option<Kept>,
    pub(crate) attempts: u32,
}

impl Scope {
    /// How many times it ran in this run, when records were on: more than
    /// once for a node under [`retry`](crate::NodeExt::retry) that failed
    /// first (its status is its last attempt's); 0 if it never ran.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The scope at `path` in this subtree (paths are from the run's root).
    pub fn find(&self, path: &str) -> Option<&Scope> {
        if self.path.as_str() == path {
            return Some(self);
        }
        self.children.iter().find_map(|child| {
            let inside = path
                .strip_prefix(child.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']));
            if inside { child.find(path) } else { None }
        })
    }

    /// This scope and everything inside it, depth first, in order.
    pub fn walk(&self) -> impl Iterator<Item = &Scope> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            stack.extend(next.children.iter().rev());
            Some(next)
        })
    }

    /// The kept output as JSON, serialized now: `None` when no output was
    /// kept here or its type is not `Serialize`.
    pub fn output_json(&self) -> Option<serde_json::Value> {
        self.effective_output()?.to_json()?.ok()
    }

    /// The kept output, if it is a `T`.
    pub fn output<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        match self.effective_output()? {
            Kept::Value(value) => value.get::<T>(),
            Kept::NotKeepable { .. } => None,
        }
    }

    /// The output this scope stands for: its own, or for a scope that runs
    /// its children in turn, that of the last child that completed.
    pub(crate) fn effective_output(&self) -> Option<&Kept> {
        if let Some(kept) = &self.output {
            return Some(kept);
        }
        match self.kind {
            ScopeKind::Node | ScopeKind::Parallel | ScopeKind::ForEach => None,
            _ => self
                .children
                .iter()
                .rev()
                .find(|child| child.status == NodeStatus::Completed)
                .and_then(Scope::effective_output),
        }
    }

    /// The typed output at this scope, or an error naming the path.
    pub(crate) fn typed_output<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, ResultError> {
        let path = || self.path.to_string();
        let Some(kept) = self.effective_output() else {
            if matches!(self.kind, ScopeKind::Parallel | ScopeKind::ForEach) {
                return Err(ResultError::NoOutput {
                    path: path(),
                    kind: self.kind,
                });
            }
            return Err(ResultError::NotCompleted {
                path: path(),
                status: self.status,
            });
        };
        match kept {
            Kept::NotKeepable { type_name } => Err(ResultError::NotKeepable {
                path: path(),
                type_name,
            }),
            Kept::Value(value) => value.get::<T>().ok_or_else(|| ResultError::WrongType {
                path: path(),
                expected: std::any::type_name::<T>(),
                found: value.type_name(),
            }),
        }
    }

    /// Up to three paths in this tree nearest to `wanted`, for an error.
    pub(crate) fn nearest_paths(&self, wanted: &str) -> Vec<String> {
        let mut scored: Vec<(usize, &str)> = self
            .walk()
            .filter(|scope| !scope.path.is_root())
            .map(|scope| {
                (
                    edit_distance(wanted, scope.path.as_str()),
                    scope.path.as_str(),
                )
            })
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored
            .into_iter()
            .take(3)
            .map(|(_, p)| p.to_owned())
            .collect()
    }
}

impl fmt::Debug for Scope {
    /// One line per scope, indented: `path  kind  status  duration`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(scope: &Scope, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let name = if scope.path.is_root() {
                scope.id.as_str()
            } else {
                scope.path.as_str()
            };
            write!(
                f,
                "{:indent$}{name} ({}) {:?}",
                "",
                scope.kind,
                scope.status,
                indent = depth * 2
            )?;
            if let Some(duration) = scope.duration {
                write!(f, " {duration:?}")?;
            }
            writeln!(f)?;
            scope
                .children
                .iter()
                .try_for_each(|child| line(child, depth + 1, f))
        }
        line(self, 0, f)
    }
}

/// A look-up of a kept output that found none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultError {
    /// No node has this path.
    UnknownPath {
        /// The path asked for.
        path: String,
        /// The existing paths nearest to it.
        nearest: Vec<String>,
    },
    /// The path is not a well-formed node path.
    BadPath {
        /// Why.
        message: String,
    },
    /// The node did not complete, so it has no output.
    NotCompleted {
        /// The node's path.
        path: String,
        /// How it ended.
        status: NodeStatus,
    },
    /// The scope's output is not one value kept on its own (a `parallel!` or
    /// `for_each`: read its branches or items).
    NoOutput {
        /// The scope's path.
        path: String,
        /// What it is.
        kind: ScopeKind,
    },
    /// The node's output type cannot be kept (it is not `Clone + Send + Sync`).
    NotKeepable {
        /// The node's path.
        path: String,
        /// Its output type.
        type_name: &'static str,
    },
    /// The output is of another type.
    WrongType {
        /// The node's path.
        path: String,
        /// The type asked for.
        expected: &'static str,
        /// The output's type.
        found: &'static str,
    },
    /// The run kept no outputs ([`RunConfig::results`](crate::RunConfig::results) off).
    NotKept,
}

impl fmt::Display for ResultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultError::UnknownPath { path, nearest } => {
                write!(f, "no node at `{path}` in this run")?;
                match nearest.as_slice() {
                    [] => Ok(()),
                    [one] => write!(f, "; the nearest is `{one}`"),
                    many => {
                        let list: Vec<String> = many.iter().map(|p| format!("`{p}`")).collect();
                        write!(f, "; the nearest are {}", list.join(", "))
                    }
                }
            }
            ResultError::BadPath { message } => f.write_str(message),
            ResultError::NotCompleted { path, status } => write!(
                f,
                "node `{path}` has no output: it did not complete (status {status:?})"
            ),
            ResultError::NoOutput { path, kind } => write!(
                f,
                "`{path}` is a {kind}, whose outputs are its children's: ask for `{path}[0]` or a node inside"
            ),
            ResultError::NotKeepable { path, type_name } => write!(
                f,
                "the output of node `{path}` is not kept: its type `{type_name}` is not `Clone + Send + Sync`"
            ),
            ResultError::WrongType {
                path,
                expected,
                found,
            } => write!(
                f,
                "the output of node `{path}` is a `{found}`, not a `{expected}`"
            ),
            ResultError::NotKept => f.write_str(
                "this run kept no outputs: turn them on with `RunConfig::default().results(true)`",
            ),
        }
    }
}

impl std::error::Error for ResultError {}

/// Up to three of `candidates` nearest to `wanted`, nearest first.
pub(crate) fn nearest_of<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = candidates
        .map(|candidate| (edit_distance(wanted, candidate), candidate))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, p)| p.to_owned())
        .collect()
}

/// Levenshtein distance, over chars; for suggestions only.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
