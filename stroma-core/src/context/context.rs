//! The shared [`Context`]: resources and values nodes read and write by type or by name.
//!
//! A context is a chain of layers: the runner's entries (read-only, shared
//! by every run) under the run's own layer, under a layer per branch or loop
//! iteration that needs one. Reads walk outward from the innermost layer;
//! writes go to it. A branch's layer is merged into its parent's when every
//! branch succeeded ([`Context::merge_children`]), a loop iteration's is
//! committed ([`Context::commit_child`]), and either is discarded by dropping it.

use std::any::{Any, TypeId, type_name};
use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::ops::{Add, Sub};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use super::tasks::RunTasks;

use crate::context::execution::ExecutionContext;
use crate::context::propagation::ExecutionCell;
use crate::context::type_map::{TypeIdHasher, TypeIdMap};
use crate::engine::failure::NodePanic;
use crate::error::{ConflictKey, ContextConflict, ContextError};
use crate::model::merge::{Append, Sum};

type Shared = Arc<dyn Any + Send + Sync>;

/// Combines the values branches left under one entry: given the value before
/// them (if any) and theirs, in declaration order. See [`Combine`].
type CombineFn = fn(Option<&Slot>, &[&Slot]) -> Result<Slot, String>;

/// One stored value and the name of its type, kept for error messages.
#[derive(Clone)]
struct Slot {
    value: Shared,
    type_name: &'static str,
    /// How the writes of several branches to this entry combine; `None`:
    /// they conflict.
    combine: Option<CombineFn>,
}

impl Slot {
    fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Slot {
            value: Arc::new(value),
            type_name: type_name::<T>(),
            combine: None,
        }
    }

    fn combined<C: Combine>(value: C) -> Self {
        Slot {
            combine: Some(combine_slots::<C>),
            ..Slot::new(value)
        }
    }

    fn downcast<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.value).downcast::<T>().ok()
    }
}

/// [`Combine::combine`] on slots holding `C`s.
fn combine_slots<C: Combine>(base: Option<&Slot>, branches: &[&Slot]) -> Result<Slot, String> {
    let values = branches
        .iter()
        .map(|slot| slot.value.downcast_ref::<C>().ok_or(slot.type_name))
        .collect::<Result<Vec<&C>, _>>()
        .map_err(|found| {
            format!(
                "one branch stored a `{}` and another a `{found}`; store one type under one name",
                type_name::<C>()
            )
        })?;
    // A value of another type before the branches is one they replaced:
    // there is nothing to combine it with.
    let base = base.and_then(|slot| slot.value.downcast_ref::<C>());
    C::combine(base, &values).map(Slot::combined)
}

/// A value that says how the writes of concurrent branches to one context
/// entry combine, instead of conflicting.
///
/// Store one with [`Context::insert_combined`]. When branches (of
/// `parallel!` or `for_each`) that each wrote such an entry have all
/// succeeded, the entry's value becomes [`combine`](Combine::combine) of the
/// value before the branches and each branch's, in declaration order.
/// Implemented for [`Sum`] (the differences add up) and [`Append`] (the
/// additions are appended); implement it for your own types.
///
/// ```
/// use stroma_core::Combine;
///
/// /// The highest score any branch reached.
/// struct Best(u32);
///
/// impl Combine for Best {
///     fn combine(base: Option<&Self>, branches: &[&Self]) -> Result<Self, String> {
///         let start = base.map_or(0, |b| b.0);
///         Ok(Best(branches.iter().map(|b| b.0).fold(start, u32::max)))
///     }
/// }
/// ```
pub trait Combine: Send + Sync + Sized + 'static {
    /// The entry's value after the branches. `base` is its value before
    /// them (`None` if it had none, or held another type); `branches` holds
    /// the value each branch that wrote it left, in declaration order (two
    /// or more: a single writer's value is taken as it is).
    ///
    /// An error is a message saying why the values cannot be combined; the
    /// merge then fails with a [`ContextConflict`] naming the entry and
    /// quoting it, and writes nothing.
    fn combine(base: Option<&Self>, branches: &[&Self]) -> Result<Self, String>;
}

/// The value before the branches plus each branch's difference from it.
impl<T> Combine for Sum<T>
where
    T: Copy + Add<Output = T> + Sub<Output = T> + Send + Sync + 'static,
{
    fn combine(base: Option<&Self>, branches: &[&Self]) -> Result<Self, String> {
        let total = match base {
            Some(Sum(base)) => branches
                .iter()
                .fold(*base, |total, Sum(value)| total + *value - *base),
            // Nothing before: each branch's value is its difference.
            None => {
                let (Sum(first), rest) = branches
                    .split_first()
                    .ok_or_else(|| "no branch wrote the entry".to_owned())?;
                rest.iter().fold(*first, |total, Sum(value)| total + *value)
            }
        };
        Ok(Sum(total))
    }
}

/// The list before the branches, then each branch's additions to its end,
/// in declaration order.
impl<T: Clone + Send + Sync + 'static> Combine for Append<T> {
    fn combine(base: Option<&Self>, branches: &[&Self]) -> Result<Self, String> {
        let kept = base.map_or(0, |Append(items)| items.len());
        let mut all = base.map_or_else(Vec::new, |Append(items)| items.clone());
        for Append(items) in branches {
            // Items are not compared (`T` need not be `PartialEq`): a branch
            // may only add, so what lies past the base's length is its addition.
            let added = items.get(kept..).ok_or_else(|| {
                format!(
                    "a branch left {} items in an `Append` that had {kept} before the \
                     branches; branches may only add to its end",
                    items.len()
                )
            })?;
            all.extend_from_slice(added);
        }
        Ok(Append(all))
    }
}

/// An entry's name and its hash. Every layer's map hashes names with the
/// same keys, so a look-up hashes the name once however many layers it
/// searches.
#[derive(Clone)]
struct Name {
    hash: u64,
    text: Cow<'static, str>,
}

impl Name {
    fn new(text: Cow<'static, str>) -> Self {
        Name {
            hash: hash_name(&text),
            text,
        }
    }
}

/// A name's hash: keyed once per process (not per map), so equal in every layer.
fn hash_name(name: &str) -> u64 {
    static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    KEYS.hash_one(name)
}

/// A borrowed name and its hash: what a look-up searches each layer with.
#[derive(Clone, Copy)]
struct NameQuery<'a> {
    hash: u64,
    text: &'a str,
}

impl<'a> NameQuery<'a> {
    fn new(text: &'a str) -> Self {
        NameQuery {
            hash: hash_name(text),
            text,
        }
    }

    /// As the key type of a name-keyed map, so `get` takes it without allocating.
    fn key(&self) -> &(dyn NameKey + 'a) {
        self
    }
}

/// A name and its hash, stored ([`Name`]) or borrowed ([`NameQuery`]): a
/// map keyed by `Name` is searched by `dyn NameKey`.
trait NameKey {
    fn hash(&self) -> u64;
    fn text(&self) -> &str;
}

impl NameKey for Name {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn text(&self) -> &str {
        &self.text
    }
}

impl NameKey for NameQuery<'_> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn text(&self) -> &str {
        self.text
    }
}

// `Name` and `dyn NameKey` hash and compare alike, as `Borrow` requires.
impl Hash for dyn NameKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(NameKey::hash(self));
    }
}

impl PartialEq for dyn NameKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for dyn NameKey + '_ {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl<'a> Borrow<dyn NameKey + 'a> for Name {
    fn borrow(&self) -> &(dyn NameKey + 'a) {
        self
    }
}

/// Values keyed by name. The hash is the name's, already computed: the
/// map's hasher only passes it through, as it does a `TypeId`'s.
type NameMap = HashMap<Name, Slot, BuildHasherDefault<TypeIdHasher>>;

/// Entries frozen for sharing: what a runner gives each of its runs to read.
pub(crate) type SharedEntries = Arc<Entries>;

/// A layer of entries: values keyed by their type and values keyed by a name.
#[derive(Clone, Default)]
pub(crate) struct Entries {
    by_type: TypeIdMap<Slot>,
    by_name: NameMap,
}

impl Entries {
    fn is_empty(&self) -> bool {
        self.by_type.is_empty() && self.by_name.is_empty()
    }

    /// Copies `other` over `self`; entries of `other` win.
    fn overlay(&mut self, other: &Entries) {
        self.by_type
            .extend(other.by_type.iter().map(|(k, v)| (*k, v.clone())));
        self.by_name
            .extend(other.by_name.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Moves `other`'s entries over `self`'s; entries of `other` win.
    fn absorb(&mut self, other: Entries) {
        self.by_type.extend(other.by_type);
        self.by_name.extend(other.by_name);
    }
}

/// An entry's key, as merging compares them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum EntryKey {
    Name(Name),
    Type(TypeId),
}

/// One writable layer of a context, shared by its handles. The task-local
/// of the code running in it shares it too (as its [`ExecutionCell`]), so
/// one allocation serves both.
pub(crate) struct Layer {
    /// Entries given to the runner: the outermost layer, shared by every run
    /// and every layer of one, never written during a run.
    base: Arc<Entries>,
    /// The layer this one was made from by [`Context::child`]; `None` for a
    /// run's own layer.
    parent: Option<Arc<Layer>>,
    /// The execution context of the code running in this layer, which nodes
    /// may enrich for the later nodes of the same scope.
    execution: RwLock<ExecutionContext>,
    /// Entries written in this layer: by one run, one branch or one loop
    /// iteration, or by the caller building a context.
    own: RwLock<Entries>,
    /// Whether `own` was ever written. Reads skip the lock of a layer never
    /// written: most branch layers, and the run's layer of a run that only
    /// reads, cost a load each.
    written: AtomicBool,
    /// The tasks started with `stroma::spawn` in this run (in a run's own
    /// layer; empty in the others).
    tasks: RunTasks,
    /// For a layer cut off from its run (an `.isolated()` node's, a spawned
    /// task's): the run's own layer, where tasks started in it belong.
    /// Weak: a task that outlives its run does not keep the run's entries.
    run_home: Option<Weak<Layer>>,
}

impl Layer {
    /// The execution context now.
    pub(crate) fn execution(&self) -> ExecutionContext {
        self.read_execution(ExecutionContext::clone)
    }

    /// Reads the execution context in place, without cloning it.
    pub(crate) fn read_execution<R>(&self, read: impl FnOnce(&ExecutionContext) -> R) -> R {
        read(&self.execution.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn own(&self) -> RwLockReadGuard<'_, Entries> {
        // A panic while the lock is held cannot leave an entry half-written:
        // every write is a single map operation. So poisoning is ignored.
        self.own.read().unwrap_or_else(|e| e.into_inner())
    }

    fn own_mut(&self) -> RwLockWriteGuard<'_, Entries> {
        // Set before the write: a reader that must see the write (one it
        // happens before) sees the flag, then waits for the lock.
        self.written.store(true, AtomicOrdering::Release);
        self.own.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `look`'s first answer, asking this layer, then each one outside it,
    /// then the runner's entries. One lock is held at a time.
    fn find<R>(&self, mut look: impl FnMut(&Entries) -> Option<R>) -> Option<R> {
        let mut layer = self;
        loop {
            if layer.written.load(AtomicOrdering::Acquire)
                && let Some(found) = look(&layer.own())
            {
                return Some(found);
            }
            match &layer.parent {
                Some(parent) => layer = parent,
                None => return look(&layer.base),
            }
        }
    }

    /// As [`find`](Self::find), from the layer outside this one: what this
    /// layer inherits.
    fn find_outside<R>(&self, look: impl FnMut(&Entries) -> Option<R>) -> Option<R> {
        match &self.parent {
            Some(parent) => parent.find(look),
            None => {
                let mut look = look;
                look(&self.base)
            }
        }
    }

    /// This layer, then each one outside it.
    fn chain(&self) -> impl Iterator<Item = &Layer> {
        std::iter::successors(Some(self), |layer| layer.parent.as_deref())
    }

    /// The tasks registered in this layer.
    pub(crate) fn tasks(&self) -> &RunTasks {
        &self.tasks
    }

    /// The layer where a task started from code running in `layer` belongs:
    /// its run's own layer (the outermost of its chain, or the run that
    /// layer was cut off from); `None` once that run is gone.
    pub(crate) fn task_home(layer: &Arc<Layer>) -> Option<Arc<Layer>> {
        let mut top = layer;
        while let Some(parent) = &top.parent {
            top = parent;
        }
        match &top.run_home {
            Some(home) => home.upgrade(),
            None => Some(Arc::clone(top)),
        }
    }
}

/// Resources and values shared by the nodes of a run.
///
/// A `Context` holds values by type ([`with`](Context::with), [`get`](Context::get),
/// [`require`](Context::require)) and by name ([`insert_named`](Context::insert_named),
/// [`get_named`](Context::get_named), [`update_named`](Context::update_named)).
/// Values come back as shared handles (`Arc<T>`): reading never copies a value.
///
/// The context given to a runner is shared read-only by all of its runs. Each
/// run gets its own writable layer on top: a value a node writes is seen by
/// every later node of that run, never by another run, and is readable by the
/// caller afterwards in [`RunResult::context`](crate::RunResult::context).
///
/// A node receives the run's context by taking `&Context` as its second parameter.
///
/// ```
/// use stroma_core::Context;
///
/// struct HttpClient { base: &'static str }
///
/// let ctx = Context::new()
///     .with(HttpClient { base: "http://localhost" })
///     .with_named("max_tokens", 500_u32);
///
/// assert_eq!(ctx.require::<HttpClient>().unwrap().base, "http://localhost");
/// assert_eq!(*ctx.get_named::<u32>("max_tokens").unwrap(), 500);
///
/// // A name read with the wrong type is an error, not a panic.
/// let err = ctx.get_named::<String>("max_tokens").unwrap_err();
/// assert!(err.to_string().contains("u32"));
/// ```
///
/// # Branches and loops
///
/// Concurrent branches (of `parallel!` or `for_each`) and loop iterations
/// each get a layer of their own over the context they started from. A
/// read walks outward from there: a branch sees everything its run had,
/// and what it wrote itself. Its writes stay in its layer (no sibling sees
/// them) until the scope ends:
///
/// - when every branch succeeded, their writes are merged into the
///   enclosing layer, in declaration order. An entry (by name, or by type)
///   written by two branches is a conflict, even when they wrote the same
///   value: the merge fails with a [`ContextConflict`] naming the entry,
///   and nothing the branches wrote is kept;
/// - when a loop iteration succeeded, its writes are kept, replacing what
///   the entries held;
/// - when a branch or an iteration failed, its writes are dropped.
///
/// An entry stored with [`insert_combined`](Context::insert_combined) says
/// how writes by several branches combine instead: a [`Sum`] adds up the
/// branches' differences, an [`Append`] appends what each branch added, in
/// declaration order; any [`Combine`] type may be used. Branches change such
/// an entry with [`update_named`](Context::update_named) or replace it with
/// `insert_combined`.
///
/// Enrichment ([`enrich`](Context::enrich)) follows the same layers, but is
/// never merged: a branch's enrichment reaches the later nodes of that
/// branch only, and ends with it.
#[derive(Clone)]
pub struct Context {
    /// The innermost layer: where writes go and reads start.
    layer: Arc<Layer>,
    /// The node this handle was given to, named in errors.
    node: Option<&'static str>,
    /// Where that node runs: its scopes' variables, the run's results.
    pub(crate) place: super::scoped::Place,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::layered(Arc::new(Entries::default()))
    }

    fn layered(base: Arc<Entries>) -> Self {
        Self::layered_with(base, ExecutionContext::new())
    }

    fn layered_with(base: Arc<Entries>, execution: ExecutionContext) -> Self {
        Context {
            layer: Arc::new(Layer {
                base,
                parent: None,
                execution: RwLock::new(execution),
                own: RwLock::new(Entries::default()),
                written: AtomicBool::new(false),
                tasks: RunTasks::default(),
                run_home: None,
            }),
            node: None,
            place: super::scoped::Place::default(),
        }
    }

    /// Adds `value`, keyed by its type, replacing any value of the same type.
    pub fn with<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// Adds `value` under `name`, replacing whatever the name held.
    pub fn with_named<T: Send + Sync + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        self.insert_named(name, value);
        self
    }

    /// Adds `value` under `name` as an entry whose writes by concurrent
    /// branches combine; see [`insert_combined`](Context::insert_combined).
    pub fn with_combined<C: Combine>(self, name: impl Into<Cow<'static, str>>, value: C) -> Self {
        self.insert_combined(name, value);
        self
    }

    /// The value of type `T`, if there is one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let key = TypeId::of::<T>();
        // The walk of `Layer::find`, written out: measurably faster here,
        // on the hottest read (the optimizer handles the nested `Option`s
        // `find` would return less well).
        let mut layer = &*self.layer;
        loop {
            if layer.written.load(AtomicOrdering::Acquire)
                && let Some(slot) = layer.own().by_type.get(&key)
            {
                return slot.downcast();
            }
            match &layer.parent {
                Some(parent) => layer = parent,
                None => return layer.base.by_type.get(&key).and_then(Slot::downcast),
            }
        }
    }

    /// The value of type `T`, or an error naming the type and the node that asked.
    ///
    /// Inside a node, `ctx.require::<T>()?` turns a missing resource into the
    /// node's error, and so into a [`RunError`](crate::RunError) naming the node.
    pub fn require<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, ContextError> {
        self.get::<T>().ok_or_else(|| self.missing_type::<T>())
    }

    /// Stores `value` keyed by its type. During a run the write belongs to
    /// that run (or to the branch or loop iteration writing it).
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) {
        self.layer
            .own_mut()
            .by_type
            .insert(TypeId::of::<T>(), Slot::new(value));
    }

    /// Changes the value of type `T` in place and returns what `change` returns.
    ///
    /// A value that came from the runner (or from outside the branch or loop
    /// iteration writing it) is copied in first, so other runs and branches
    /// keep seeing the original. Handles returned earlier by [`get`](Context::get)
    /// keep the value they saw.
    pub fn update<T, R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, ContextError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let key = TypeId::of::<T>();
        let mut own = self.layer.own_mut();
        let slot = match own.by_type.entry(key) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(vacant) => {
                let inherited = self
                    .layer
                    .find_outside(|entries| entries.by_type.get(&key).cloned())
                    .ok_or_else(|| self.missing_type::<T>())?;
                vacant.insert(inherited)
            }
        };
        // Keyed by `T`'s id, the slot holds a `T`: the error cannot happen.
        change_slot(slot, change).ok_or_else(|| self.missing_type::<T>())
    }

    /// Stores `value` under `name`. During a run the write belongs to that
    /// run (or to the branch or loop iteration writing it).
    pub fn insert_named<T: Send + Sync + 'static>(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) {
        self.layer
            .own_mut()
            .by_name
            .insert(Name::new(name.into()), Slot::new(value));
    }

    /// Stores `value` under `name` as an entry that concurrent branches may
    /// each write: when they all succeed, their values combine as `C` says
    /// (see [`Combine`]) instead of conflicting.
    ///
    /// Read and change it like any named entry, as a `C`.
    ///
    /// ```
    /// use stroma_core::{Append, Context, Sum};
    ///
    /// let ctx = Context::new()
    ///     .with_combined("hits", Sum(0_u64))
    ///     .with_combined("log", Append(Vec::<String>::new()));
    /// // In a branch:
    /// ctx.update_named("hits", |hits: &mut Sum<u64>| hits.0 += 1).unwrap();
    /// ctx.update_named("log", |log: &mut Append<String>| log.0.push("fetched".into()))
    ///     .unwrap();
    /// assert_eq!(ctx.get_named::<Sum<u64>>("hits").unwrap().0, 1);
    /// ```
    pub fn insert_combined<C: Combine>(&self, name: impl Into<Cow<'static, str>>, value: C) {
        self.layer
            .own_mut()
            .by_name
            .insert(Name::new(name.into()), Slot::combined(value));
    }

    /// The value stored under `name`.
    ///
    /// Errors when the name is absent, or holds a value of another type (the
    /// error names both types).
    pub fn get_named<T: Send + Sync + 'static>(&self, name: &str) -> Result<Arc<T>, ContextError> {
        // Typed while borrowed: one reference-count increment, on the value returned.
        let typed = |slot: &Slot| {
            slot.downcast::<T>()
                .ok_or_else(|| self.wrong_type::<T>(name, slot.type_name))
        };
        // Hashed once, whatever the number of layers searched.
        let query = NameQuery::new(name);
        // The walk of `Layer::find`, written out, as in `get`.
        let mut layer = &*self.layer;
        loop {
            if layer.written.load(AtomicOrdering::Acquire)
                && let Some(slot) = layer.own().by_name.get(query.key())
            {
                return typed(slot);
            }
            match &layer.parent {
                Some(parent) => layer = parent,
                None => {
                    return match layer.base.by_name.get(query.key()) {
                        Some(slot) => typed(slot),
                        None => Err(self.missing_name(name)),
                    };
                }
            }
        }
    }

    /// Whether `name` holds a value of any type.
    pub fn contains_named(&self, name: &str) -> bool {
        let query = NameQuery::new(name);
        self.layer
            .find(|entries| entries.by_name.contains_key(query.key()).then_some(()))
            .is_some()
    }

    /// Changes the value under `name` in place and returns what `change` returns.
    ///
    /// Errors, changing nothing, when the name is absent or holds another type.
    /// A value that came from the runner (or from outside the branch or loop
    /// iteration writing it) is copied in first.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use stroma_core::Context;
    ///
    /// let ctx = Context::new().with_named("timings", BTreeMap::<String, u64>::new());
    /// ctx.update_named("timings", |t: &mut BTreeMap<String, u64>| {
    ///     t.insert("slow_step".into(), 42)
    /// })
    /// .unwrap();
    /// assert_eq!(ctx.get_named::<BTreeMap<String, u64>>("timings").unwrap()["slow_step"], 42);
    /// ```
    pub fn update_named<T, R>(
        &self,
        name: &str,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, ContextError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let query = NameQuery::new(name);
        let mut own = self.layer.own_mut();
        if !own.by_name.contains_key(query.key()) {
            let (key, inherited) = self
                .layer
                .find_outside(|entries| {
                    entries
                        .by_name
                        .get_key_value(query.key())
                        .map(|(key, slot)| (key.clone(), slot.clone()))
                })
                .ok_or_else(|| self.missing_name(name))?;
            if !inherited.value.is::<T>() {
                return Err(self.wrong_type::<T>(name, inherited.type_name));
            }
            own.by_name.insert(key, inherited);
        }
        let Some(slot) = own.by_name.get_mut(query.key()) else {
            return Err(self.missing_name(name));
        };
        let found = slot.type_name;
        change_slot(slot, change).ok_or_else(|| self.wrong_type::<T>(name, found))
    }

    /// The execution context (tenant, user, correlation id, ...) of the run,
    /// branch or loop iteration this context belongs to, as enriched so far.
    /// Outside a run: an empty one.
    pub fn execution(&self) -> ExecutionContext {
        self.layer.execution()
    }

    /// Adds `pairs` to the execution context every later node of the run
    /// sees (as do [`current_execution_context`](crate::current_execution_context)
    /// and friends from now on), and returns the enriched context.
    ///
    /// Keys are only added or replaced, never lost; contexts read earlier,
    /// by this node or earlier ones, stay as they were. Inside a branch or
    /// a loop iteration, only the later nodes of that branch or iteration
    /// see the keys.
    ///
    /// ```
    /// use stroma_core::Context;
    ///
    /// let ctx = Context::new();
    /// let before = ctx.execution();
    /// ctx.enrich([("session_id", "s-1")]);
    /// assert_eq!(ctx.execution().get_as::<String>("session_id").unwrap().as_deref(), Some("s-1"));
    /// assert!(before.is_empty());
    /// ```
    pub fn enrich<K, V>(&self, pairs: impl IntoIterator<Item = (K, V)>) -> ExecutionContext
    where
        K: Into<std::borrow::Cow<'static, str>>,
        V: Into<serde_json::Value>,
    {
        let mut current = self
            .layer
            .execution
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *current = current.plus_all(pairs);
        current.clone()
    }

    /// The name of the node this handle was given to, if any.
    pub fn node(&self) -> Option<&'static str> {
        self.node
    }

    /// A new writable layer over this context's innermost one, for a branch
    /// or a loop iteration: it reads everything `self` does, its writes stay
    /// its own, and its execution context starts as `self`'s is now.
    ///
    /// Keep its writes with [`merge_children`](Self::merge_children) or
    /// [`commit_child`](Self::commit_child); drop it to discard them. Costs
    /// one allocation.
    pub(crate) fn child(&self) -> Context {
        Context {
            layer: Arc::new(Layer {
                base: Arc::clone(&self.layer.base),
                parent: Some(Arc::clone(&self.layer)),
                execution: RwLock::new(self.layer.execution()),
                own: RwLock::new(Entries::default()),
                written: AtomicBool::new(false),
                tasks: RunTasks::default(),
                run_home: None,
            }),
            node: self.node,
            place: self.place.clone(),
        }
    }

    /// A layer cut off from the run: the runner's entries and the current
    /// execution context, but none of the run's writes; what an
    /// `.isolated()` node sees. Its writes are dropped with it.
    pub(crate) fn isolated(&self) -> Context {
        Context {
            layer: Arc::new(Layer {
                base: Arc::clone(&self.layer.base),
                parent: None,
                execution: RwLock::new(self.layer.execution()),
                own: RwLock::new(Entries::default()),
                written: AtomicBool::new(false),
                tasks: RunTasks::default(),
                // Cut off from the run's entries, not from its tasks.
                run_home: Layer::task_home(&self.layer).map(|home| Arc::downgrade(&home)),
            }),
            node: self.node,
            place: self.place.clone(),
        }
    }

    /// Whether this layer itself holds writes (not its parents).
    pub(crate) fn has_own_writes(&self) -> bool {
        !self.layer.own().is_empty()
    }

    /// Merges the writes of `children` (branches that all succeeded) into
    /// this context's innermost layer, in the order given: declaration order.
    ///
    /// An entry (by name, or by type) written by more than one child is a
    /// conflict, even when the values agree, unless every write of it is
    /// [combined](Context::insert_combined): then the value before the
    /// children and theirs combine. On a conflict nothing is written and the
    /// error names the entry. Children's enrichments are not merged: they
    /// end with their scope. The children are left as they were; a child
    /// given twice, or `self` given as a child, counts once or not at all.
    pub(crate) fn merge_children(&self, children: &[&Context]) -> Result<(), ContextConflict> {
        let mut writes: Vec<(EntryKey, usize, Slot)> = Vec::new();
        for (position, child) in children.iter().enumerate() {
            let skipped = !child.layer.written.load(AtomicOrdering::Acquire)
                || self.same_layer(child)
                || children[..position]
                    .iter()
                    .any(|earlier| earlier.same_layer(child));
            if skipped {
                continue;
            }
            // One lock at a time: the child's, read, then released.
            let own = child.layer.own();
            writes.extend(
                own.by_name
                    .iter()
                    .map(|(name, slot)| (EntryKey::Name(name.clone()), position, slot.clone())),
            );
            writes.extend(
                own.by_type
                    .iter()
                    .map(|(key, slot)| (EntryKey::Type(*key), position, slot.clone())),
            );
        }
        if writes.is_empty() {
            return Ok(());
        }
        // Grouped by entry; a stable sort keeps each group in declaration order.
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        // Everything is decided before anything is written: all or nothing.
        let mut merged = Vec::with_capacity(writes.len());
        for group in writes.chunk_by(|a, b| a.0 == b.0) {
            let slot = match group {
                [(_, _, slot)] => slot.clone(),
                _ => self.combine_writes(group)?,
            };
            merged.push((group[0].0.clone(), slot));
        }
        let mut own = self.layer.own_mut();
        for (key, slot) in merged {
            match key {
                EntryKey::Name(name) => own.by_name.insert(name, slot),
                EntryKey::Type(key) => own.by_type.insert(key, slot),
            };
        }
        Ok(())
    }

    /// Moves the writes of `child` (a loop iteration that succeeded) into
    /// this context's innermost layer, replacing what the entries held; the
    /// child is left empty. Its enrichments are kept too.
    pub(crate) fn commit_child(&self, child: &Context) {
        if self.same_layer(child) {
            return;
        }
        // One lock at a time: the child's, then this layer's.
        let writes = std::mem::take(&mut *child.layer.own_mut());
        if !writes.is_empty() {
            self.layer.own_mut().absorb(writes);
        }
        // Its enrichments are kept too, as the model's changes are.
        let enriched = child.layer.execution();
        *self
            .layer
            .execution
            .write()
            .unwrap_or_else(|e| e.into_inner()) = enriched;
    }

    /// The value of one entry that two or more children wrote (`group`, in
    /// declaration order): combined if every write says how, else a conflict.
    fn combine_writes(&self, group: &[(EntryKey, usize, Slot)]) -> Result<Slot, ContextConflict> {
        let (key, first, first_slot) = &group[0];
        let second = group.get(1).map_or(*first, |(_, position, _)| *position);
        let conflict_key = match key {
            EntryKey::Name(name) => ConflictKey::Name(name.text.to_string()),
            EntryKey::Type(_) => ConflictKey::Type(first_slot.type_name),
        };
        let combine = first_slot
            .combine
            .filter(|_| group.iter().all(|(_, _, slot)| slot.combine.is_some()));
        let Some(combine) = combine else {
            return Err(ContextConflict::written_twice(
                conflict_key,
                (*first, second),
            ));
        };
        let base = self.layer.find(|entries| match key {
            EntryKey::Name(name) => entries.by_name.get(name).cloned(),
            EntryKey::Type(key) => entries.by_type.get(key).cloned(),
        });
        let slots: Vec<&Slot> = group.iter().map(|(_, _, slot)| slot).collect();
        // A `Combine` may panic (a `Sum` of integers that overflows does, in
        // debug builds): that is a failed merge, not a crash.
        match catch_unwind(AssertUnwindSafe(|| combine(base.as_ref(), &slots))) {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(message)) => Err(ContextConflict::not_combined(
                conflict_key,
                (*first, second),
                message,
            )),
            Err(payload) => Err(ContextConflict::not_combined(
                conflict_key,
                (*first, second),
                format!(
                    "combining them panicked: {}",
                    NodePanic::from_payload(&*payload).message()
                ),
            )),
        }
    }

    /// Whether `other` is a handle to this context's innermost layer.
    fn same_layer(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.layer, &other.layer)
    }

    /// A fresh context for one run: `self`'s entries, read-only, under an empty
    /// writable layer.
    pub(crate) fn for_run(base: &SharedEntries, execution: ExecutionContext) -> Self {
        Self::layered_with(Arc::clone(base), execution)
    }

    /// The context of a task started with `stroma::spawn`, or of an
    /// [`ExecutionContext::scope`]: `execution` only, and the run whose own
    /// layer is `home` (if any), where tasks started in it belong too.
    pub(crate) fn for_task(execution: ExecutionContext, home: Option<&Arc<Layer>>) -> Self {
        Context {
            layer: Arc::new(Layer {
                base: no_entries(),
                parent: None,
                execution: RwLock::new(execution),
                own: RwLock::new(Entries::default()),
                written: AtomicBool::new(false),
                tasks: RunTasks::default(),
                run_home: home.map(Arc::downgrade),
            }),
            node: None,
            place: super::scoped::Place::default(),
        }
    }

    /// The cell the task-local of code running in this context's innermost
    /// layer shares, so that [`enrich`](Self::enrich) reaches code reading
    /// the current execution context.
    pub(crate) fn cell(&self) -> ExecutionCell {
        Arc::clone(&self.layer)
    }

    /// This context, as seen by `node`: same values, errors name the node.
    pub(crate) fn for_node(&self, node: &'static str, place: super::scoped::Place) -> Self {
        Context {
            layer: Arc::clone(&self.layer),
            node: Some(node),
            place,
        }
    }

    /// All entries of every layer, flattened: what a runner shares with its runs.
    pub(crate) fn freeze(&self) -> SharedEntries {
        if self.layer.chain().all(|layer| layer.own().is_empty()) {
            return Arc::clone(&self.layer.base);
        }
        let layers: Vec<&Layer> = self.layer.chain().collect();
        let mut all = (*self.layer.base).clone();
        // Outermost first, so that inner layers' entries win.
        for layer in layers.into_iter().rev() {
            all.overlay(&layer.own());
        }
        Arc::new(all)
    }

    /// All entries of `self` and then `extra` (which win), flattened.
    pub(crate) fn freeze_with(&self, extra: &Context) -> SharedEntries {
        let mut all = (*self.freeze()).clone();
        all.overlay(&extra.freeze());
        Arc::new(all)
    }

    /// A context reading `entries`, with an empty writable layer on top.
    pub(crate) fn from_shared(entries: SharedEntries) -> Self {
        Self::layered(entries)
    }

    fn missing_type<T>(&self) -> ContextError {
        ContextError::MissingType {
            type_name: type_name::<T>(),
            node: self.node,
        }
    }

    fn missing_name(&self, name: &str) -> ContextError {
        ContextError::MissingName {
            name: name.to_owned(),
            node: self.node,
        }
    }

    fn wrong_type<T>(&self, name: &str, found: &'static str) -> ContextError {
        ContextError::WrongType {
            name: name.to_owned(),
            expected: type_name::<T>(),
            found,
            node: self.node,
        }
    }
}

/// Applies `change` to the value in `slot`, copying it first only if a reader
/// (or another layer) still holds it. `None`, changing nothing, if the slot
/// does not hold a `T`.
fn change_slot<T, R>(slot: &mut Slot, change: impl FnOnce(&mut T) -> R) -> Option<R>
where
    T: Clone + Send + Sync + 'static,
{
    if Arc::get_mut(&mut slot.value).is_none() {
        let copy: T = slot.value.downcast_ref::<T>()?.clone();
        slot.value = Arc::new(copy);
    }
    Arc::get_mut(&mut slot.value)?
        .downcast_mut::<T>()
        .map(change)
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = Vec::new();
        let mut types: Vec<&'static str> = Vec::new();
        let mut list = |entries: &Entries| {
            names.extend(entries.by_name.keys().map(|k| k.text.to_string()));
            types.extend(entries.by_type.values().map(|s| s.type_name));
        };
        list(&self.layer.base);
        for layer in self.layer.chain() {
            list(&layer.own());
        }
        names.sort_unstable();
        names.dedup();
        types.sort_unstable();
        types.dedup();
        f.debug_struct("Context")
            .field("types", &types)
            .field("names", &names)
            .field("node", &self.node)
            .finish()
    }
}

/// The entries of a layer outside any run: one shared empty set, so a scope
/// (or a spawned task) costs one allocation, not two.
fn no_entries() -> Arc<Entries> {
    static NO_ENTRIES: LazyLock<Arc<Entries>> = LazyLock::new(Arc::default);
    Arc::clone(&NO_ENTRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_writes_shadow_base_and_leave_it_alone() {
        let runner_level = Context::new().with(1_u8).with_named("n", 10_i32).freeze();
        let run_a = Context::for_run(&runner_level, ExecutionContext::new());
        let run_b = Context::for_run(&runner_level, ExecutionContext::new());
        run_a.insert(2_u8);
        run_a.update_named("n", |n: &mut i32| *n += 1).unwrap();
        assert_eq!(*run_a.get::<u8>().unwrap(), 2);
        assert_eq!(*run_a.get_named::<i32>("n").unwrap(), 11);
        assert_eq!(*run_b.get::<u8>().unwrap(), 1);
        assert_eq!(*run_b.get_named::<i32>("n").unwrap(), 10);
    }

    #[test]
    fn update_with_wrong_type_changes_nothing() {
        let ctx = Context::new().with_named("flag", true);
        let err = ctx.update_named("flag", |s: &mut String| s.push('x'));
        assert!(matches!(err, Err(ContextError::WrongType { .. })));
        assert!(*ctx.get_named::<bool>("flag").unwrap());
    }

    #[test]
    fn handles_keep_the_value_they_saw() {
        let ctx = Context::new().with(vec![1]);
        let before = ctx.get::<Vec<i32>>().unwrap();
        ctx.update(|v: &mut Vec<i32>| v.push(2)).unwrap();
        assert_eq!(*before, vec![1]);
        assert_eq!(*ctx.get::<Vec<i32>>().unwrap(), vec![1, 2]);
    }

    /// A runner's entries, a run over them, and a branch of the run.
    fn run_and_branch() -> (Context, Context) {
        let runner_level = Context::new()
            .with(1_u8)
            .with_named("model", "small")
            .freeze();
        let run = Context::for_run(&runner_level, ExecutionContext::new());
        run.insert(2_u16);
        run.insert_named("page", 1_u32);
        let branch = run.child();
        (run, branch)
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Hits(u32);

    #[test]
    fn reads_walk_outward_from_the_innermost_layer() {
        let (run, branch) = run_and_branch();
        branch.insert(3_u32);
        let nested = branch.child();
        nested.insert_named("deep", true);
        // Each layer sees its own entries and every outer layer's.
        assert_eq!(*nested.get::<u8>().unwrap(), 1);
        assert_eq!(*nested.get::<u16>().unwrap(), 2);
        assert_eq!(*nested.require::<u32>().unwrap(), 3);
        assert_eq!(*nested.get_named::<&str>("model").unwrap(), "small");
        assert_eq!(*nested.get_named::<u32>("page").unwrap(), 1);
        assert!(nested.contains_named("deep") && nested.contains_named("model"));
        // No layer sees an inner one's.
        assert!(branch.get_named::<bool>("deep").is_err());
        assert!(!run.contains_named("deep"));
        assert!(run.get::<u32>().is_none());
        // An inner entry shadows an outer one; a wrong type is an error naming both.
        nested.insert_named("page", 7_u32);
        assert_eq!(*nested.get_named::<u32>("page").unwrap(), 7);
        assert_eq!(*branch.get_named::<u32>("page").unwrap(), 1);
        let err = nested.get_named::<String>("page").unwrap_err();
        assert!(matches!(err, ContextError::WrongType { found: "u32", .. }));
    }

    #[test]
    fn writes_land_in_the_innermost_layer() {
        let (run, branch) = run_and_branch();
        branch.insert(20_u16);
        branch.insert_named("new", 5_i64);
        // Values from outer layers are copied in before they change.
        branch.update(|n: &mut u8| *n += 10).unwrap();
        branch.update_named("page", |p: &mut u32| *p += 1).unwrap();
        assert_eq!(*branch.get::<u8>().unwrap(), 11);
        assert_eq!(*branch.get::<u16>().unwrap(), 20);
        assert_eq!(*branch.get_named::<u32>("page").unwrap(), 2);
        assert_eq!(*run.get::<u8>().unwrap(), 1);
        assert_eq!(*run.get::<u16>().unwrap(), 2);
        assert_eq!(*run.get_named::<u32>("page").unwrap(), 1);
        assert!(!run.contains_named("new"));
        // A failed update copies nothing in.
        let err = branch.update_named("model", |n: &mut u64| *n += 1);
        assert!(matches!(err, Err(ContextError::WrongType { .. })));
        let model = NameQuery::new("model");
        assert!(!branch.layer.own().by_name.contains_key(model.key()));
        assert!(matches!(
            branch.update::<Hits, ()>(|_| ()),
            Err(ContextError::MissingType { .. })
        ));
        // Dropping a branch discards its writes.
        drop(branch);
        assert_eq!(*run.get::<u8>().unwrap(), 1);
        assert!(!run.contains_named("new"));
    }

    #[test]
    fn children_that_wrote_different_entries_merge_in_declaration_order() {
        let (run, first) = run_and_branch();
        let second = run.child();
        let idle = run.child();
        first.insert_named("a", 1_u32);
        first.update_named("page", |p: &mut u32| *p = 10).unwrap();
        second.insert_named("b", 2_u32);
        second.insert(Hits(3));
        second.update(|n: &mut u8| *n = 9).unwrap();
        run.merge_children(&[&first, &second, &idle]).unwrap();
        assert_eq!(*run.get_named::<u32>("a").unwrap(), 1);
        assert_eq!(*run.get_named::<u32>("b").unwrap(), 2);
        assert_eq!(*run.get_named::<u32>("page").unwrap(), 10);
        assert_eq!(*run.require::<Hits>().unwrap(), Hits(3));
        // The runner's value is shadowed in the run, not changed.
        assert_eq!(*run.get::<u8>().unwrap(), 9);
        // The same child twice, or the parent itself, adds no conflict.
        let again = run.child();
        again.insert_named("c", 3_u32);
        run.merge_children(&[&again, &again, &run]).unwrap();
        assert_eq!(*run.get_named::<u32>("c").unwrap(), 3);
    }

    #[test]
    fn an_entry_two_children_wrote_is_a_conflict_naming_it_and_nothing_is_written() {
        let (run, first) = run_and_branch();
        let second = run.child();
        let third = run.child();
        first.insert_named("only_first", 1_u8);
        // The same value still conflicts: neither branch said how to combine.
        second.insert_named("hits", 1_u32);
        third.insert_named("hits", 1_u32);
        let err = run.merge_children(&[&first, &second, &third]).unwrap_err();
        assert_eq!(err.key(), "hits");
        assert!(!err.is_by_type());
        assert_eq!(err.branches(), (1, 2));
        let message = err.to_string();
        assert!(message.contains("entry \"hits\""), "{message}");
        assert!(message.contains("branches 2 and 3"), "{message}");
        assert!(message.contains("insert_combined"), "{message}");
        assert!(!run.contains_named("hits") && !run.contains_named("only_first"));

        // By type: the error names the type.
        let (run, first) = run_and_branch();
        let second = run.child();
        first.insert(Hits(1));
        second.update(|n: &mut u16| *n += 1).unwrap();
        second.insert(Hits(2));
        let err = run.merge_children(&[&first, &second]).unwrap_err();
        assert_eq!(err.key(), type_name::<Hits>());
        assert!(err.is_by_type());
        let message = err.to_string();
        let expected = format!("value of type `{}`", type_name::<Hits>());
        assert!(message.contains(&expected), "{message}");
        assert!(run.get::<Hits>().is_none());
        assert_eq!(
            *run.get::<u16>().unwrap(),
            2,
            "the other write was not kept either"
        );
    }

    #[test]
    fn sums_add_up_the_childrens_differences() {
        let run = Context::new().with_combined("hits", Sum(10_u64));
        let children: Vec<Context> = (0..4).map(|_| run.child()).collect();
        for (i, child) in children.iter().enumerate().take(3) {
            child
                .update_named("hits", |h: &mut Sum<u64>| h.0 += i as u64 + 1)
                .unwrap();
        }
        let all: Vec<&Context> = children.iter().collect();
        run.merge_children(&all).unwrap();
        assert_eq!(run.get_named::<Sum<u64>>("hits").unwrap().0, 16);

        // Without a value before the branches, theirs add up; nested merges
        // combine at each level, and the merged value still combines.
        let run = Context::new();
        let (left, right) = (run.child(), run.child());
        let (inner_a, inner_b) = (left.child(), left.child());
        inner_a.insert_combined("n", Sum(1_i32));
        inner_b.insert_combined("n", Sum(2_i32));
        left.merge_children(&[&inner_a, &inner_b]).unwrap();
        right.insert_combined("n", Sum(-5_i32));
        run.merge_children(&[&left, &right]).unwrap();
        assert_eq!(run.get_named::<Sum<i32>>("n").unwrap().0, -2);
    }

    #[test]
    fn appends_keep_the_base_then_each_childs_additions_in_order() {
        let run = Context::new().with_combined("log", Append(vec!["start"]));
        let (first, second) = (run.child(), run.child());
        first
            .update_named("log", |l: &mut Append<&str>| l.0.push("first"))
            .unwrap();
        second
            .update_named("log", |l: &mut Append<&str>| l.0.extend(["second", "2b"]))
            .unwrap();
        // The order given is the order kept, whatever order they wrote in.
        run.merge_children(&[&second, &first]).unwrap();
        assert_eq!(
            run.get_named::<Append<&str>>("log").unwrap().0,
            ["start", "second", "2b", "first"]
        );

        // A child that removed items cannot be combined: nothing is written.
        let (first, second) = (run.child(), run.child());
        first
            .update_named("log", |l: &mut Append<&str>| l.0.clear())
            .unwrap();
        second
            .update_named("log", |l: &mut Append<&str>| l.0.push("x"))
            .unwrap();
        let err = run.merge_children(&[&first, &second]).unwrap_err();
        assert_eq!(err.key(), "log");
        assert!(err.to_string().contains("may only add"), "{err}");
        assert_eq!(run.get_named::<Append<&str>>("log").unwrap().0.len(), 4);
    }

    #[test]
    fn combined_entries_conflict_with_plain_writes_other_types_and_failed_sums() {
        let run = Context::new().with_combined("n", Sum(0_u32));
        let (combined, plain) = (run.child(), run.child());
        combined
            .update_named("n", |n: &mut Sum<u32>| n.0 += 1)
            .unwrap();
        plain.insert_named("n", Sum(5_u32));
        let err = run.merge_children(&[&combined, &plain]).unwrap_err();
        assert!(err.to_string().contains("both wrote"), "{err}");

        let (a, b) = (run.child(), run.child());
        a.insert_combined("n", Sum(1_u32));
        b.insert_combined("n", Sum(1_u64));
        let err = run.merge_children(&[&a, &b]).unwrap_err();
        assert!(err.to_string().contains("u64"), "{err}");

        // A sum whose total overflows panics in debug builds: a conflict, not a crash.
        let (a, b) = (run.child(), run.child());
        a.insert_combined("n", Sum(u32::MAX));
        b.insert_combined("n", Sum(u32::MAX));
        let merged = run.merge_children(&[&a, &b]);
        if cfg!(debug_assertions) {
            let err = merged.unwrap_err();
            assert!(err.to_string().contains("overflow"), "{err}");
            assert_eq!(run.get_named::<Sum<u32>>("n").unwrap().0, 0);
        }
    }

    #[test]
    fn a_committed_child_replaces_the_parents_entries() {
        let (run, iteration) = run_and_branch();
        iteration
            .update_named("page", |p: &mut u32| *p += 1)
            .unwrap();
        iteration.insert(Hits(1));
        iteration.enrich([("attempt", 1)]);
        run.commit_child(&iteration);
        assert_eq!(*run.get_named::<u32>("page").unwrap(), 2);
        assert_eq!(*run.require::<Hits>().unwrap(), Hits(1));
        // A succeeded iteration's enrichment is kept, as its writes are.
        assert!(run.execution().contains("attempt"));
        assert!(iteration.layer.own().is_empty(), "the writes moved");
        // A later iteration overwrites; no conflict is possible.
        let next = run.child();
        next.insert(Hits(2));
        run.commit_child(&next);
        assert_eq!(*run.require::<Hits>().unwrap(), Hits(2));
        run.commit_child(&run);
        assert_eq!(*run.require::<Hits>().unwrap(), Hits(2));
    }

    #[test]
    fn enrichment_in_a_child_stays_in_it() {
        let run = Context::for_run(
            &Context::new().freeze(),
            ExecutionContext::of([("tenant_id", "acme")]),
        );
        run.enrich([("stage", "fetch")]);
        let (first, second) = (run.child(), run.child());
        // A child starts from its parent's execution context.
        assert_eq!(first.execution().tenant_id(), Some("acme"));
        assert!(first.execution().contains("stage"));
        first.enrich([("branch", "first")]);
        let nested = first.child();
        assert!(nested.execution().contains("branch"));
        assert!(!run.execution().contains("branch"));
        assert!(!second.execution().contains("branch"));
        run.merge_children(&[&first, &second]).unwrap();
        assert!(!run.execution().contains("branch"), "not merged either");
    }

    #[tokio::test]
    async fn with_context_makes_the_childs_enrichment_current() {
        use crate::context::propagation::{
            current_execution_context, current_tenant_id, with_context,
        };

        let run = Context::for_task(ExecutionContext::of([("tenant_id", "acme")]), None);
        let child = run.child();
        let sibling = run.child();
        let seen = with_context(&run, async {
            let in_child = with_context(&child, async {
                child.enrich([("branch", "a")]);
                let current = current_execution_context().unwrap();
                (
                    current.get_as::<String>("branch").unwrap(),
                    current_tenant_id(),
                )
            })
            .await;
            let in_sibling = with_context(&sibling, async {
                current_execution_context().unwrap().contains("branch")
            })
            .await;
            let in_run = current_execution_context().unwrap().contains("branch");
            (in_child, in_sibling, in_run)
        })
        .await;
        assert_eq!(seen.0, (Some("a".to_owned()), Some("acme".to_owned())));
        assert!(!seen.1, "a sibling does not see it");
        assert!(!seen.2, "the parent does not see it");
    }

    /// Times reads through the layers; prints figures, asserts nothing about
    /// them (times are noisy). `cargo bench --bench context_access` times the
    /// run's and the runner's layers; this adds reads through branch layers,
    /// which only the crate can make.
    #[test]
    #[ignore = "timing: cargo test --release -p stroma-pipelines-core --lib -- --ignored --nocapture"]
    fn time_reads_through_branch_layers() {
        use std::hint::black_box;
        use std::time::Instant;

        struct ApiKey(#[allow(dead_code)] &'static str);
        const READS: u32 = 2_000_000;
        let fillers = || {
            Context::new()
                .with(0_u8)
                .with(0_u16)
                .with(0_u32)
                .with_named("filler_0", 0_u8)
                .with_named("filler_1", 1_u8)
                .with_named("filler_2", 2_u8)
        };
        let in_runner = fillers()
            .with(ApiKey("k"))
            .with_named("max_tokens", 500_u32)
            .freeze();
        let run_of_runner = Context::for_run(&in_runner, ExecutionContext::new());
        let run_holding = Context::for_run(&fillers().freeze(), ExecutionContext::new());
        run_holding.insert(ApiKey("k"));
        run_holding.insert_named("max_tokens", 500_u32);
        let cases = [
            ("run layer", run_holding.clone()),
            ("runner layer", run_of_runner.clone()),
            ("branch over run layer", run_holding.child()),
            ("branch over runner layer", run_of_runner.child()),
            (
                "branch of branch over runner",
                run_of_runner.child().child(),
            ),
            ("written branch over runner", {
                let branch = run_of_runner.child();
                branch.insert(1_i8);
                branch.insert_named("scratch", 1_i8);
                branch
            }),
        ];
        let time = |read: &dyn Fn()| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..READS {
                    read();
                }
                best = best.min(start.elapsed().as_nanos() as f64 / f64::from(READS));
            }
            best
        };
        for (what, ctx) in &cases {
            let get = time(&|| {
                black_box(black_box(ctx).get::<ApiKey>());
            });
            let get_named = time(&|| {
                black_box(
                    black_box(ctx)
                        .get_named::<u32>(black_box("max_tokens"))
                        .ok(),
                );
            });
            println!("{what:>30}: get {get:5.1} ns, get_named {get_named:5.1} ns");
        }
    }

    #[test]
    fn update_in_place_does_not_copy_an_unshared_value() {
        let ctx = Context::new().with(vec![1]);
        let first = Arc::as_ptr(&ctx.get::<Vec<i32>>().unwrap());
        ctx.update(|v: &mut Vec<i32>| v.push(2)).unwrap();
        assert_eq!(first, Arc::as_ptr(&ctx.get::<Vec<i32>>().unwrap()));
    }
}
