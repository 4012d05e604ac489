//! The static shape of a pipeline: every node and scope it can run, numbered
//! in the order `Node::describe` meets them (its *slots*), with each one's id
//! and kind. Runs refer to nodes by slot; paths are made from the shape only
//! when someone reads them.

use std::collections::HashMap;
use std::fmt;

use super::path::sanitize;
use super::scope::ScopeKind;

/// One node or scope of a pipeline's shape.
#[derive(Debug, Clone)]
pub(crate) struct SlotShape {
    /// The id as given: the node's name or what `.named(..)` says.
    pub(crate) id: &'static str,
    /// The id as it appears in paths: sanitized, with `#k` for the k-th
    /// sibling of that id in its scope.
    pub(crate) key: String,
    pub(crate) kind: ScopeKind,
    /// A leaf's output type, as `std::any::type_name` gives it; empty for scopes.
    pub(crate) output: &'static str,
    /// The slots directly inside, in order. For a `parallel!`, see `branches`.
    pub(crate) children: Vec<u32>,
    /// For a `parallel!`: the slots of each branch.
    pub(crate) branches: Vec<Vec<u32>>,
    /// For a `route!`: each arm's pattern and the slots of its node (which
    /// are among `children`, after the classifying node's).
    pub(crate) arms: Vec<(&'static str, Vec<u32>)>,
    /// What wraps it, for diagrams: `retry ×3`, `timeout 5s`, `isolated`,
    /// a loop's cap. Not part of the fingerprint.
    pub(crate) notes: Vec<String>,
}

/// A pipeline's whole static shape.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    pub(crate) slots: Vec<SlotShape>,
    /// The slots at the run's top level.
    pub(crate) roots: Vec<u32>,
    /// Each slot's static parent.
    pub(crate) parents: Vec<Option<u32>>,
}

impl Shape {
    pub(crate) fn slot(&self, slot: u32) -> Option<&SlotShape> {
        self.slots.get(slot as usize)
    }

    /// The id of `slot`, or `"?"` for a slot the shape does not have.
    pub(crate) fn id(&self, slot: u32) -> &'static str {
        self.slot(slot).map_or("?", |s| s.id)
    }

    /// The path of `slot` from the nearest enclosing loop, `parallel!` or
    /// `for_each` (or the root): `stage.parse`.
    pub(crate) fn relative_path(&self, slot: u32) -> String {
        let mut keys = Vec::new();
        let mut current = Some(slot);
        while let Some(at) = current {
            let Some(shape) = self.slot(at) else { break };
            keys.push(shape.key.as_str());
            current = self.parents.get(at as usize).copied().flatten();
            if let Some(parent) = current
                && self.slot(parent).is_some_and(|s| s.kind.is_dynamic())
            {
                break;
            }
        }
        keys.reverse();
        keys.join(".")
    }

    /// The path of `slot` from the run's root through every scope, with no
    /// iteration or item numbers: `refine.assess`.
    pub(crate) fn static_path(&self, slot: u32) -> String {
        let mut keys = Vec::new();
        let mut current = Some(slot);
        while let Some(at) = current {
            let Some(shape) = self.slot(at) else { break };
            keys.push(shape.key.as_str());
            current = self.parents.get(at as usize).copied().flatten();
        }
        keys.reverse();
        keys.join(".")
    }

    /// One line per slot, in slot order: its static path, kind and output
    /// type. What a durable run's fingerprint is made of.
    pub(crate) fn listing(&self) -> Vec<String> {
        (0..self.slots.len() as u32)
            .map(|slot| {
                let shape = &self.slots[slot as usize];
                format!(
                    "{} {:?} {}",
                    self.static_path(slot),
                    shape.kind,
                    short_type_name(shape.output)
                )
                .trim_end()
                .to_owned()
            })
            .collect()
    }

    fn compute_parents(&self) -> Vec<Option<u32>> {
        let mut parents = vec![None; self.slots.len()];
        for (index, slot) in self.slots.iter().enumerate() {
            for child in slot.children.iter().chain(slot.branches.iter().flatten()) {
                if let Some(parent) = parents.get_mut(*child as usize) {
                    *parent = Some(index as u32);
                }
            }
        }
        parents
    }
}

/// `type_name` without module paths: `Vec<Item>` for
/// `alloc::vec::Vec<shop::Item>`. What a saved run's fingerprint holds, so
/// moving a type to another module, or a compiler that spells paths
/// otherwise, does not turn away the runs saved before.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut ident = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            // `ident::`: a module on the way, dropped.
            chars.next();
            ident.clear();
        } else {
            out.push_str(&ident);
            ident.clear();
            out.push(c);
        }
    }
    out.push_str(&ident);
    out
}

/// Builds a [`Shape`]: what `Node::describe` is given.
#[doc(hidden)]
pub struct ShapeBuilder {
    /// Only hashing ids, kinds and notes, to tell two values of one type apart.
    hashing: Option<std::collections::hash_map::DefaultHasher>,
    shape: Shape,
    /// The open scopes: where the next slot goes, and the ids seen there.
    open: Vec<OpenScope>,
    /// The id the next slot takes instead of its own (`.named` on a leaf).
    rename: Option<&'static str>,
    /// Notes the next slot takes (what wraps it).
    notes: Vec<String>,
}

struct OpenScope {
    /// The slot whose children are being added; `None` for the run's top level.
    owner: Option<u32>,
    /// For a `parallel!`: the branch being added to.
    branch: Option<usize>,
    /// For a `route!`: the arm being added to (its slots are children too).
    arm: Option<usize>,
    seen: HashMap<String, u32>,
}

impl Default for ShapeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ShapeBuilder {
    pub(crate) fn new() -> Self {
        ShapeBuilder {
            hashing: None,
            shape: Shape::default(),
            open: vec![OpenScope {
                owner: None,
                branch: None,
                arm: None,
                seen: HashMap::new(),
            }],
            rename: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn finish(mut self) -> Shape {
        self.shape.parents = self.shape.compute_parents();
        self.shape
    }

    /// A node that runs nothing inside: a leaf.
    pub fn leaf(&mut self, id: &'static str) {
        self.push(id, ScopeKind::Node, "");
    }

    /// A leaf whose output type is `output` (its `type_name`): the type is
    /// part of the pipeline's fingerprint.
    pub fn leaf_of(&mut self, id: &'static str, output: &'static str) {
        self.push(id, ScopeKind::Node, output);
    }

    /// A scope of kind `kind` whose insides `inner` describes.
    pub fn scope(&mut self, id: &'static str, kind: ScopeKind, inner: impl FnOnce(&mut Self)) {
        let slot = self.push(id, kind, "");
        if self.hashing.is_some() {
            return inner(self);
        }
        self.open.push(OpenScope {
            owner: Some(slot),
            branch: None,
            arm: None,
            seen: HashMap::new(),
        });
        inner(self);
        self.open.pop();
    }

    /// A `parallel!` whose branches `branches` describes, one call to
    /// [`branch`](Self::branch) each.
    pub fn parallel(&mut self, id: &'static str, branches: impl FnOnce(&mut Self)) {
        let slot = self.push(id, ScopeKind::Parallel, "");
        if self.hashing.is_some() {
            return branches(self);
        }
        self.open.push(OpenScope {
            owner: Some(slot),
            branch: None,
            arm: None,
            seen: HashMap::new(),
        });
        branches(self);
        self.open.pop();
    }

    /// One branch of the innermost `parallel!`: a scope of its own for ids.
    pub fn branch(&mut self, inner: impl FnOnce(&mut Self)) {
        if self.hashing.is_some() {
            return inner(self);
        }
        let owner = self.open.last().and_then(|scope| scope.owner);
        let branch = owner.map(|slot| {
            let branches = &mut self.shape.slots[slot as usize].branches;
            branches.push(Vec::new());
            branches.len() - 1
        });
        self.open.push(OpenScope {
            owner,
            branch,
            arm: None,
            seen: HashMap::new(),
        });
        inner(self);
        self.open.pop();
    }

    /// A `route!` whose classifying node and arms `inner` describes: the
    /// classifying node first, then one call to [`arm`](Self::arm) each.
    pub fn route(&mut self, id: &'static str, inner: impl FnOnce(&mut Self)) {
        self.scope(id, ScopeKind::Route, inner);
    }

    /// One arm of the innermost `route!`, for the pattern `label`: its
    /// node's slots are the route's children, listed as the arm's too.
    pub fn arm(&mut self, label: &'static str, inner: impl FnOnce(&mut Self)) {
        if self.hashing.is_some() {
            return inner(self);
        }
        let scope = self.open.last_mut().expect("the top level is always open");
        let arm = scope.owner.map(|slot| {
            let arms = &mut self.shape.slots[slot as usize].arms;
            arms.push((label, Vec::new()));
            arms.len() - 1
        });
        let outer = std::mem::replace(&mut scope.arm, arm);
        inner(self);
        if let Some(scope) = self.open.last_mut() {
            scope.arm = outer;
        }
    }

    /// The next slot `inner` adds is noted with what `note` writes (what
    /// wraps it: a retry, a time limit, a modifier), for diagrams.
    ///
    /// A note tells two values of one type apart (`retry ×3`, `retry ×5`),
    /// so it is hashed too: written straight into the hasher, with no text
    /// made of it.
    pub fn noted(
        &mut self,
        note: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result,
        inner: impl FnOnce(&mut Self),
    ) {
        match &mut self.hashing {
            Some(hasher) => {
                let _ = note(&mut HashWriter(hasher));
            }
            None => {
                let mut text = String::new();
                let _ = note(&mut text);
                self.notes.push(text);
            }
        }
        inner(self);
        // Taken by the slot, unless `inner` added none.
        self.notes.clear();
    }

    /// The next slot `inner` adds takes the id `id` (`.named` on a node
    /// that is not a scope of its own).
    pub fn renamed(&mut self, id: &'static str, inner: impl FnOnce(&mut Self)) {
        self.rename = Some(id);
        inner(self);
        self.rename = None;
    }

    fn push(&mut self, id: &'static str, kind: ScopeKind, output: &'static str) -> u32 {
        let id = self.rename.take().unwrap_or(id);
        if let Some(hasher) = &mut self.hashing {
            use std::hash::Hash;
            id.hash(hasher);
            kind.hash(hasher);
            return 0;
        }
        let slot = self.shape.slots.len() as u32;
        let scope = self.open.last_mut().expect("the top level is always open");
        let base = sanitize(id).into_owned();
        let seen = scope.seen.entry(base.clone()).or_insert(0);
        *seen += 1;
        let key = if *seen == 1 {
            base
        } else {
            format!("{base}#{seen}")
        };
        match (scope.owner, scope.branch) {
            (None, _) => self.shape.roots.push(slot),
            (Some(owner), Some(branch)) => {
                self.shape.slots[owner as usize].branches[branch].push(slot)
            }
            (Some(owner), None) => {
                let owner = &mut self.shape.slots[owner as usize];
                owner.children.push(slot);
                if let Some(arm) = scope.arm {
                    owner.arms[arm].1.push(slot);
                }
            }
        }
        let notes = std::mem::take(&mut self.notes);
        self.shape.slots.push(SlotShape {
            id,
            key,
            kind,
            output,
            children: Vec::new(),
            branches: Vec::new(),
            arms: Vec::new(),
            notes,
        });
        slot
    }
}

/// Text written into a hasher.
struct HashWriter<'a>(&'a mut std::collections::hash_map::DefaultHasher);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        std::hash::Hasher::write(self.0, text.as_bytes());
        Ok(())
    }
}

/// The shape of `node`, made once per pipeline and shared: a zero-sized
/// pipeline type is its shape; others are told apart by their ids.
pub(crate) fn shape_of<N: crate::node::Node>(node: &N) -> std::sync::Arc<Shape> {
    use std::any::TypeId;
    use std::hash::Hasher;
    use std::sync::{Arc, LazyLock, RwLock};
    type Cache = RwLock<HashMap<(TypeId, u64), Arc<Shape>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);

    let names = if std::mem::size_of::<N>() == 0 {
        0
    } else {
        let mut builder = ShapeBuilder::new();
        builder.hashing = Some(Default::default());
        node.describe(&mut builder);
        builder.hashing.map_or(0, |h| h.finish())
    };
    let key = (TypeId::of::<N>(), names);
    if let Some(shape) = CACHE.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Arc::clone(shape);
    }
    let mut builder = ShapeBuilder::new();
    node.describe(&mut builder);
    let shape = Arc::new(builder.finish());
    CACHE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(shape)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(short_type_name("u32"), "u32");
        assert_eq!(
            short_type_name("alloc::vec::Vec<shop::items::Item>"),
            "Vec<Item>"
        );
        assert_eq!(
            short_type_name("(core::option::Option<alloc::string::String>, [u8; 4])"),
            "(Option<String>, [u8; 4])"
        );
        assert_eq!(short_type_name("&'static str"), "&'static str");
    }
}
