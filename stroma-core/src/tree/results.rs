//! The results store: the kept outputs of the nodes that completed so far
//! in a run, for [`Context::result`](crate::Context::result) and `$hier{}`
//! look-ups by nodes that run after them.
//!
//! A run keeps one only when a node may look it up (one of its nodes takes
//! `&Context`) and outputs are kept.

use std::sync::{Arc, Mutex};

use super::kept::Kept;
use super::path::{ScopePath, Segment};
use super::scope::{ResultError, ScopeKind};
use super::shape::Shape;
use super::trace::{FrameRow, Loc, Paths, ROOT_FRAME};

/// What nodes of a run left for later nodes to read.
pub(crate) struct ResultsStore {
    shape: Arc<Shape>,
    /// Whether outputs are kept (frames are, for paths, either way).
    keeps: bool,
    inner: Mutex<Stored>,
}

#[derive(Default)]
struct Stored {
    /// Each completed node's kept output, in the order they completed.
    outputs: Vec<(Loc, Kept)>,
    /// Every frame entered, to tell `[n]` in a reference.
    frames: Vec<FrameRow>,
}

impl ResultsStore {
    pub(crate) fn new(shape: Arc<Shape>, keeps: bool) -> Self {
        ResultsStore {
            shape,
            keeps,
            inner: Mutex::new(Stored::default()),
        }
    }

    pub(crate) fn keeps(&self) -> bool {
        self.keeps
    }

    fn stored(&self) -> std::sync::MutexGuard<'_, Stored> {
        // Each write is one push: a panic cannot leave it half done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn keep(&self, loc: Loc, kept: Kept) {
        self.stored().outputs.push((loc, kept));
    }

    pub(crate) fn enter_frame(&self, row: FrameRow) {
        self.stored().frames.push(row);
    }

    /// `read` given the shape and the paths of this run so far.
    pub(crate) fn with_paths<R>(&self, read: impl FnOnce(&Shape, &Paths<'_>) -> R) -> R {
        let stored = self.stored();
        read(&self.shape, &Paths::new(&self.shape, &stored.frames))
    }

    /// The path of the node at `loc`, as this run names it.
    pub(crate) fn path(&self, loc: Loc) -> ScopePath {
        let stored = self.stored();
        super::trace::Paths::new(&self.shape, &stored.frames).path(loc)
    }

    /// The kept output `reference` names, seen from the node at `from`: a
    /// plain id among the nodes of `from`'s scope (loops, branches and items
    /// included: the latest output), then each enclosing scope outward; a
    /// dotted one from the nearest enclosing scope that has its first segment.
    pub(crate) fn lookup(&self, from: Loc, reference: &str) -> Result<Kept, ResultError> {
        let path = ScopePath::parse(reference).map_err(|err| ResultError::BadPath {
            message: err.to_string(),
        })?;
        let steps: Vec<Segment<'_>> = path.segments().collect();
        let unknown = || ResultError::UnknownPath {
            path: reference.to_owned(),
            nearest: self.nearest(reference),
        };
        let mut scope = self.scope_of(from.slot);
        loop {
            if let Some(found) = self.resolve_in(scope, &steps) {
                return self.latest(found, from, reference);
            }
            match scope {
                Some(slot) => scope = self.scope_of(slot),
                None => return Err(unknown()),
            }
        }
    }

    /// The nearest enclosing scope (flow, named pipeline) of `slot`, `None` for the run.
    fn scope_of(&self, slot: u32) -> Option<u32> {
        let mut current = self.shape.parents.get(slot as usize).copied().flatten();
        while let Some(at) = current {
            if self.shape.slot(at).is_some_and(|s| is_scope(s.kind)) {
                return Some(at);
            }
            current = self.shape.parents.get(at as usize).copied().flatten();
        }
        None
    }

    /// The slot `steps` names inside `scope`, and the frame indices it
    /// fixes on the way (`[n]`), if it names one.
    fn resolve_in(&self, scope: Option<u32>, steps: &[Segment<'_>]) -> Option<Found> {
        let mut within = scope;
        // After `[i]` on a `parallel!`: only that branch's slots.
        let mut branch: Option<(u32, usize)> = None;
        let mut found: Option<Found> = None;
        for step in steps {
            match step {
                Segment::Id { id, occurrence } => {
                    let key = if *occurrence == 1 {
                        (*id).to_owned()
                    } else {
                        format!("{id}#{occurrence}")
                    };
                    let candidates = match branch.take() {
                        Some((parallel, index)) => self.visible_in_branch(parallel, index),
                        None => self.visible(within),
                    };
                    let slot = candidates
                        .into_iter()
                        .find(|s| self.shape.slot(*s).is_some_and(|shape| shape.key == key))?;
                    let indices = found.map(|f| f.indices).unwrap_or_default();
                    found = Some(Found { slot, indices });
                    within = Some(slot);
                }
                Segment::Index(index) => {
                    let found = found.as_mut()?;
                    let kind = self.shape.slot(found.slot)?.kind;
                    if !kind.is_dynamic() {
                        return None;
                    }
                    if kind == ScopeKind::Parallel {
                        branch = Some((found.slot, *index as usize));
                    }
                    found.indices.push((found.slot, *index));
                }
            }
        }
        found
    }

    /// The slots a name inside branch `index` of the `parallel!` at `slot` can reach.
    fn visible_in_branch(&self, slot: u32, index: usize) -> Vec<u32> {
        let Some(roots) = self.shape.slot(slot).and_then(|s| s.branches.get(index)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack: Vec<u32> = roots.iter().rev().copied().collect();
        while let Some(at) = stack.pop() {
            out.push(at);
            if self.shape.slot(at).is_some_and(|s| !is_scope(s.kind)) {
                stack.extend(self.children(at).into_iter().rev());
            }
        }
        out
    }

    /// The slots a name in `scope` can reach: its insides, through loops,
    /// branches and items, but not into nested flows and named pipelines.
    fn visible(&self, scope: Option<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack: Vec<u32> = match scope {
            None => self.shape.roots.iter().rev().copied().collect(),
            Some(slot) => self.children(slot).into_iter().rev().collect(),
        };
        while let Some(slot) = stack.pop() {
            out.push(slot);
            let Some(shape) = self.shape.slot(slot) else {
                continue;
            };
            if !is_scope(shape.kind) {
                stack.extend(self.children(slot).into_iter().rev());
            }
        }
        out
    }

    fn children(&self, slot: u32) -> Vec<u32> {
        self.shape.slot(slot).map_or_else(Vec::new, |s| {
            s.children
                .iter()
                .chain(s.branches.iter().flatten())
                .copied()
                .collect()
        })
    }

    /// The latest kept output of `found` (its scope's output: its last
    /// node's, for a scope).
    fn latest(&self, found: Found, from: Loc, reference: &str) -> Result<Kept, ResultError> {
        let stored = self.stored();
        let targets = self.output_slots(found.slot);
        let frames = &stored.frames;
        // The iterations, branches and items the asking node is in, which
        // also hold the target and which the reference does not pick: the
        // target is read in the same one (an item reads its own item's node).
        let mut own: Vec<u32> = Vec::new();
        let mut frame = from.frame;
        while frame != ROOT_FRAME {
            let Some(row) = frames.iter().rev().find(|r| r.id == frame) else {
                break;
            };
            let picked = found.indices.iter().any(|(scope, _)| *scope == row.slot);
            if !picked && self.encloses(row.slot, found.slot) {
                own.push(row.id);
            }
            frame = row.parent;
        }
        let in_own = |loc: &Loc| {
            own.iter().all(|wanted| {
                let mut frame = loc.frame;
                while frame != ROOT_FRAME {
                    if frame == *wanted {
                        return true;
                    }
                    match frames.iter().rev().find(|r| r.id == frame) {
                        Some(row) => frame = row.parent,
                        None => return false,
                    }
                }
                false
            })
        };
        let in_frames = |loc: &Loc| {
            found.indices.iter().all(|(scope, index)| {
                let mut frame = loc.frame;
                while frame != ROOT_FRAME {
                    let Some(row) = frames.iter().rev().find(|r| r.id == frame) else {
                        return false;
                    };
                    if row.slot == *scope {
                        return row.index == *index;
                    }
                    frame = row.parent;
                }
                false
            })
        };
        stored
            .outputs
            .iter()
            .rev()
            .find(|(loc, _)| targets.contains(&loc.slot) && in_frames(loc) && in_own(loc))
            .map(|(_, kept)| kept.clone())
            .ok_or_else(|| ResultError::NotCompleted {
                path: reference.to_owned(),
                status: crate::tree::record::NodeStatus::Pending,
            })
    }

    /// Whether `scope` holds `slot` (statically).
    fn encloses(&self, scope: u32, slot: u32) -> bool {
        let mut current = Some(slot);
        while let Some(at) = current {
            if at == scope {
                return true;
            }
            current = self.shape.parents.get(at as usize).copied().flatten();
        }
        false
    }

    /// The slots whose output stands for `slot`'s: itself for a node; for
    /// a scope, flow or loop, its last node (recursively).
    fn output_slots(&self, slot: u32) -> Vec<u32> {
        let Some(shape) = self.shape.slot(slot) else {
            return Vec::new();
        };
        match shape.kind {
            ScopeKind::Node => vec![slot],
            ScopeKind::Parallel | ScopeKind::ForEach => Vec::new(),
            _ => shape
                .children
                .last()
                .map_or_else(Vec::new, |last| self.output_slots(*last)),
        }
    }

    /// Up to three node paths nearest to `reference`, for an error.
    pub(crate) fn nearest(&self, reference: &str) -> Vec<String> {
        let stored = self.stored();
        let paths = super::trace::Paths::new(&self.shape, &stored.frames);
        let mut seen: Vec<String> = Vec::new();
        for (loc, _) in &stored.outputs {
            let path = paths.path(*loc).to_string();
            if !seen.contains(&path) {
                seen.push(path);
            }
        }
        super::scope::nearest_of(reference, seen.iter().map(String::as_str))
    }
}

/// What a reference names: a slot, and the frame indices it fixed.
#[derive(Clone, Debug, Default)]
struct Found {
    slot: u32,
    indices: Vec<(u32, u32)>,
}

/// Whether a slot of `kind` is a scope that names its insides (a flow or a
/// named pipeline): a plain id does not reach into it.
fn is_scope(kind: ScopeKind) -> bool {
    matches!(kind, ScopeKind::Scope | ScopeKind::Flow | ScopeKind::Phase)
}
