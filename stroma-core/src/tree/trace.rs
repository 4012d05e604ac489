//! What a run leaves of itself while it runs (entries and frames, by slot
//! number), and the run tree and records made of them when first asked for.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::kept::Kept;
use super::path::ScopePath;
use super::scope::{ResultError, Scope, ScopeKind};
use super::shape::{Shape, shape_of};
use crate::node::Node;
use crate::tree::record::{NodeRecord, NodeStatus};

/// The frame of the run's top level: no loop, branch or item around.
pub(crate) const ROOT_FRAME: u32 = 0;

/// Where a node runs: its slot in the shape, and the dynamic frame (loop
/// iteration, branch, item) it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub(crate) slot: u32,
    pub(crate) frame: u32,
}

/// A node or scope that ended: kept when the run records.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) loc: Loc,
    pub(crate) status: NodeStatus,
    pub(crate) duration: Duration,
    pub(crate) output: Option<Kept>,
}

/// One loop iteration, branch or item: a frame numbered `id`, of the
/// dynamic scope at `slot`, inside the frame `parent`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRow {
    pub(crate) id: u32,
    pub(crate) parent: u32,
    pub(crate) slot: u32,
    pub(crate) index: u32,
    pub(crate) status: NodeStatus,
    pub(crate) duration: Option<Duration>,
}

/// Anything whose shape can be described: a run keeps its pipeline this
/// way, to draw the tree only if asked.
pub(crate) trait Describe: Send + Sync {
    fn name(&self) -> &'static str;
    fn shape(&self) -> Arc<Shape>;
}

impl<N: Node> Describe for N {
    fn name(&self) -> &'static str {
        Node::name(self)
    }

    fn shape(&self) -> Arc<Shape> {
        shape_of(self)
    }
}

/// A finished run's trace: enough to draw its tree, list its records and
/// find its outputs, which are made on first use.
pub(crate) struct Trace {
    pipeline: Box<dyn Describe>,
    shape: OnceLock<Arc<Shape>>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) frames: Vec<FrameRow>,
    records_on: bool,
    results_on: bool,
    status: NodeStatus,
    duration: Option<Duration>,
    built: OnceLock<Built>,
}

struct Built {
    tree: Scope,
    records: Vec<NodeRecord>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("entries", &self.entries.len())
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

/// What a run's end gives its trace.
pub(crate) struct TraceParts {
    pub(crate) shape: Option<Arc<Shape>>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) frames: Vec<FrameRow>,
    pub(crate) records_on: bool,
    pub(crate) results_on: bool,
    pub(crate) status: NodeStatus,
    pub(crate) duration: Option<Duration>,
}

impl Trace {
    pub(crate) fn new<P: Node>(pipeline: &P, parts: TraceParts) -> Self {
        let shape = OnceLock::new();
        if let Some(known) = parts.shape {
            let _ = shape.set(known);
        }
        Trace {
            // A pipeline of `#[node]`s is zero-sized: boxing it allocates nothing.
            pipeline: Box::new(pipeline.clone()),
            shape,
            entries: parts.entries,
            frames: parts.frames,
            records_on: parts.records_on,
            results_on: parts.results_on,
            status: parts.status,
            duration: parts.duration,
            built: OnceLock::new(),
        }
    }

    pub(crate) fn shape(&self) -> &Shape {
        self.shape.get_or_init(|| self.pipeline.shape())
    }

    fn built(&self) -> &Built {
        self.built.get_or_init(|| {
            let paths = Paths::new(self.shape(), &self.frames);
            let records = if self.records_on {
                self.entries
                    .iter()
                    .filter(|entry| {
                        self.shape()
                            .slot(entry.loc.slot)
                            .is_some_and(|s| s.kind == ScopeKind::Node)
                    })
                    .map(|entry| NodeRecord {
                        name: self.shape().id(entry.loc.slot),
                        path: paths.path(entry.loc),
                        status: entry.status,
                        duration: entry.duration,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let tree = TreeBuilder::new(self, &paths).root();
            Built { tree, records }
        })
    }

    pub(crate) fn tree(&self) -> &Scope {
        &self.built().tree
    }

    /// The pipeline's diagram, each node coloured by how it ended in this
    /// run: by its last attempt in each iteration and item (a retry that
    /// succeeded in the end completed), then over those, failed if any
    /// failed, then cancelled, then completed. A node that left no entry is
    /// skipped, as in the tree, or pending when entries were not kept.
    pub(crate) fn diagram(&self) -> super::diagram::Diagram {
        let shape = Arc::clone(self.shape.get_or_init(|| self.pipeline.shape()));
        let mut statuses = vec![self.unrecorded(); shape.slots.len()];
        let rank = |status: NodeStatus| match status {
            NodeStatus::Failed => 3,
            NodeStatus::Cancelled => 2,
            NodeStatus::Completed => 1,
            _ => 0,
        };
        // Later entries of one node in one frame are its later attempts.
        let last: HashMap<Loc, NodeStatus> =
            self.entries.iter().map(|e| (e.loc, e.status)).collect();
        for (loc, status) in last {
            if let Some(slot) = statuses.get_mut(loc.slot as usize)
                && rank(status) > rank(*slot)
            {
                *slot = status;
            }
        }
        super::diagram::Diagram::of_run(shape, statuses)
    }

    /// The status of a node that left no entry: skipped once the run is
    /// over and kept its entries, else pending (not known).
    fn unrecorded(&self) -> NodeStatus {
        if (self.records_on || self.results_on) && self.status != NodeStatus::Running {
            NodeStatus::Skipped
        } else {
            NodeStatus::Pending
        }
    }

    pub(crate) fn records(&self) -> &[NodeRecord] {
        &self.built().records
    }

    pub(crate) fn scope(&self, path: &str) -> Option<&Scope> {
        self.tree().find(path)
    }

    /// The typed output of the node at `path`, or an error naming it.
    pub(crate) fn result<T: Send + Sync + 'static>(
        &self,
        path: &str,
    ) -> Result<Arc<T>, ResultError> {
        if let Err(err) = ScopePath::parse(path) {
            return Err(ResultError::BadPath {
                message: err.to_string(),
            });
        }
        let Some(scope) = self.scope(path) else {
            return Err(ResultError::UnknownPath {
                path: path.to_owned(),
                nearest: self.tree().nearest_paths(path),
            });
        };
        if !self.results_on && scope.status == NodeStatus::Completed {
            return Err(ResultError::NotKept);
        }
        scope.typed_output()
    }
}

/// Turns slots and frames into paths.
pub(crate) struct Paths<'a> {
    shape: &'a Shape,
    frames: HashMap<u32, &'a FrameRow>,
}

impl<'a> Paths<'a> {
    pub(crate) fn new(shape: &'a Shape, frames: &'a [FrameRow]) -> Self {
        Paths {
            shape,
            frames: frames.iter().map(|row| (row.id, row)).collect(),
        }
    }

    /// The path of the node at `loc`.
    pub(crate) fn path(&self, loc: Loc) -> ScopePath {
        ScopePath::from_trusted(self.text(loc))
    }

    fn text(&self, loc: Loc) -> String {
        let mut text = self.frame_text(loc.frame);
        let relative = self.shape.relative_path(loc.slot);
        if !text.is_empty() && !relative.is_empty() {
            text.push('.');
        }
        text.push_str(&relative);
        text
    }

    /// The path of the frame `frame`: its scope's path and `[index]`.
    fn frame_text(&self, frame: u32) -> String {
        match self.frames.get(&frame) {
            Some(row) if frame != ROOT_FRAME => {
                let mut text = self.text(Loc {
                    slot: row.slot,
                    frame: row.parent,
                });
                text.push_str(&format!("[{}]", row.index));
                text
            }
            _ => String::new(),
        }
    }
}

/// Draws a run's tree from its shape, entries and frames.
struct TreeBuilder<'a> {
    shape: &'a Shape,
    /// Each node's last entry: its last attempt.
    entries: HashMap<Loc, &'a Entry>,
    /// How many entries each node left: its attempts.
    attempts: HashMap<Loc, u32>,
    /// The frames of each dynamic scope instance, by (parent frame, slot), in index order.
    frames: HashMap<(u32, u32), Vec<&'a FrameRow>>,
    trace: &'a Trace,
}

impl<'a> TreeBuilder<'a> {
    fn new(trace: &'a Trace, _paths: &Paths<'a>) -> Self {
        let mut frames: HashMap<(u32, u32), Vec<&FrameRow>> = HashMap::new();
        for row in &trace.frames {
            frames.entry((row.parent, row.slot)).or_default().push(row);
        }
        for rows in frames.values_mut() {
            rows.sort_by_key(|row| row.index);
            rows.dedup_by_key(|row| row.index);
        }
        TreeBuilder {
            shape: trace.shape(),
            entries: trace.entries.iter().map(|e| (e.loc, e)).collect(),
            attempts: trace.entries.iter().fold(HashMap::new(), |mut counts, e| {
                *counts.entry(e.loc).or_insert(0) += 1;
                counts
            }),
            frames,
            trace,
        }
    }

    fn root(&self) -> Scope {
        let path = ScopePath::root();
        let children = self
            .shape
            .roots
            .iter()
            .map(|slot| self.slot(*slot, Some(ROOT_FRAME), &path))
            .collect();
        Scope {
            id: self.trace.pipeline.name().to_owned(),
            path,
            kind: ScopeKind::Run,
            status: self.trace.status,
            duration: self.trace.duration,
            children,
            output: None,
            attempts: 1,
        }
    }

    /// The scope of `slot` in `frame` (`None`: a scope that never ran, drawn
    /// from the shape alone), under `parent`.
    fn slot(&self, slot: u32, frame: Option<u32>, parent: &ScopePath) -> Scope {
        let shape = &self.shape.slots[slot as usize];
        let path = parent.child(&shape.key);
        let entry = frame.and_then(|frame| self.entries.get(&Loc { slot, frame }));
        let (status, duration, output) = match entry {
            Some(entry) => (entry.status, Some(entry.duration), entry.output.clone()),
            None => (self.trace.unrecorded(), None, None),
        };
        let children = match shape.kind {
            ScopeKind::Loop | ScopeKind::ForEach => {
                let kind = if shape.kind == ScopeKind::Loop {
                    ScopeKind::Iteration
                } else {
                    ScopeKind::Item
                };
                let rows = frame.and_then(|frame| self.frames.get(&(frame, slot)));
                match rows {
                    Some(rows) => rows
                        .iter()
                        .map(|row| self.frame(row, kind, &shape.children, &path))
                        .collect(),
                    // Never ran: its body as the shape has it.
                    None => shape
                        .children
                        .iter()
                        .map(|child| self.slot(*child, None, &path))
                        .collect(),
                }
            }
            ScopeKind::Parallel => {
                let rows = frame.and_then(|frame| self.frames.get(&(frame, slot)));
                shape
                    .branches
                    .iter()
                    .enumerate()
                    .map(|(index, branch)| {
                        let row =
                            rows.and_then(|rows| rows.iter().find(|r| r.index == index as u32));
                        match row {
                            Some(row) => self.frame(row, ScopeKind::Branch, branch, &path),
                            None => {
                                let branch_path = path.indexed(index as u32);
                                Scope {
                                    id: format!("[{index}]"),
                                    children: branch
                                        .iter()
                                        .map(|child| self.slot(*child, None, &branch_path))
                                        .collect(),
                                    path: branch_path,
                                    kind: ScopeKind::Branch,
                                    status: self.trace.unrecorded(),
                                    duration: None,
                                    output: None,
                                    attempts: 0,
                                }
                            }
                        }
                    })
                    .collect()
            }
            _ => shape
                .children
                .iter()
                .map(|child| self.slot(*child, frame, &path))
                .collect(),
        };
        let attempts = frame
            .and_then(|frame| self.attempts.get(&Loc { slot, frame }))
            .copied()
            .unwrap_or(0);
        Scope {
            id: shape.id.to_owned(),
            path,
            kind: shape.kind,
            status,
            duration,
            children,
            output,
            attempts,
        }
    }

    fn frame(&self, row: &FrameRow, kind: ScopeKind, inside: &[u32], parent: &ScopePath) -> Scope {
        let path = parent.indexed(row.index);
        let children = inside
            .iter()
            .map(|child| self.slot(*child, Some(row.id), &path))
            .collect();
        Scope {
            id: format!("[{}]", row.index),
            path,
            kind,
            status: row.status,
            duration: row.duration,
            children,
            output: None,
            attempts: 1,
        }
    }
}
