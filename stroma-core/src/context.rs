//! The shared [`Context`]: resources and values nodes read and write by type or by name.

use std::any::{Any, TypeId, type_name};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ContextError;
use crate::execution::ExecutionContext;
use crate::propagation::ExecutionCell;
use crate::type_map::TypeIdMap;

type Shared = Arc<dyn Any + Send + Sync>;

/// One stored value and the name of its type, kept for error messages.
#[derive(Clone)]
struct Slot {
    value: Shared,
    type_name: &'static str,
}

impl Slot {
    fn new<T: Send + Sync + 'static>(value: T) -> Self {
        Slot {
            value: Arc::new(value),
            type_name: type_name::<T>(),
        }
    }

    fn downcast<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        Arc::clone(&self.value).downcast::<T>().ok()
    }
}

/// Entries frozen for sharing: what a runner gives each of its runs to read.
pub(crate) type SharedEntries = Arc<Entries>;

/// A layer of entries: values keyed by their type and values keyed by a name.
#[derive(Clone, Default)]
pub(crate) struct Entries {
    by_type: TypeIdMap<Slot>,
    by_name: HashMap<Cow<'static, str>, Slot>,
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
}

/// A context's storage, shared by its handles. The run's task-local shares it
/// too (as its [`ExecutionCell`]), so one allocation serves both.
pub(crate) struct Layers {
    /// Entries given to the runner: shared by every run, never written during one.
    base: Arc<Entries>,
    /// The run's execution context, which nodes may enrich for later nodes.
    execution: RwLock<ExecutionContext>,
    /// Entries written by this context's owner: one run, or the caller building a context.
    own: RwLock<Entries>,
}

impl Layers {
    /// The execution context now.
    pub(crate) fn execution(&self) -> ExecutionContext {
        self.read_execution(ExecutionContext::clone)
    }

    /// Reads the execution context in place, without cloning it.
    pub(crate) fn read_execution<R>(&self, read: impl FnOnce(&ExecutionContext) -> R) -> R {
        read(&self.execution.read().unwrap_or_else(|e| e.into_inner()))
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
#[derive(Clone)]
pub struct Context {
    layers: Arc<Layers>,
    /// The node this handle was given to, named in errors.
    node: Option<&'static str>,
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
            layers: Arc::new(Layers {
                base,
                execution: RwLock::new(execution),
                own: RwLock::new(Entries::default()),
            }),
            node: None,
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

    /// The value of type `T`, if there is one.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let key = TypeId::of::<T>();
        let found = {
            let own = self.own();
            own.by_type.get(&key).and_then(Slot::downcast)
        };
        found.or_else(|| self.layers.base.by_type.get(&key).and_then(Slot::downcast))
    }

    /// The value of type `T`, or an error naming the type and the node that asked.
    ///
    /// Inside a node, `ctx.require::<T>()?` turns a missing resource into the
    /// node's error, and so into a [`RunError`](crate::RunError) naming the node.
    pub fn require<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, ContextError> {
        self.get::<T>().ok_or_else(|| ContextError::MissingType {
            type_name: type_name::<T>(),
            node: self.node,
        })
    }

    /// Stores `value` keyed by its type. During a run the write belongs to that run.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) {
        self.own_mut()
            .by_type
            .insert(TypeId::of::<T>(), Slot::new(value));
    }

    /// Changes the value of type `T` in place and returns what `change` returns.
    ///
    /// A value that came from the runner is copied into the run first, so other
    /// runs keep seeing the original. Handles returned earlier by [`get`](Context::get)
    /// keep the value they saw.
    pub fn update<T, R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, ContextError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let key = TypeId::of::<T>();
        let mut own = self.own_mut();
        let slot = match own.by_type.get_mut(&key) {
            Some(slot) => slot,
            None => {
                let inherited =
                    self.layers
                        .base
                        .by_type
                        .get(&key)
                        .ok_or(ContextError::MissingType {
                            type_name: type_name::<T>(),
                            node: self.node,
                        })?;
                own.by_type.entry(key).or_insert(inherited.clone())
            }
        };
        Ok(change_slot(slot, change))
    }

    /// Stores `value` under `name`. During a run the write belongs to that run.
    pub fn insert_named<T: Send + Sync + 'static>(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) {
        self.own_mut().by_name.insert(name.into(), Slot::new(value));
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
        if let Some(slot) = self.own().by_name.get(name) {
            return typed(slot);
        }
        match self.layers.base.by_name.get(name) {
            Some(slot) => typed(slot),
            None => Err(self.missing_name(name)),
        }
    }

    /// Whether `name` holds a value of any type.
    pub fn contains_named(&self, name: &str) -> bool {
        self.own().by_name.contains_key(name) || self.layers.base.by_name.contains_key(name)
    }

    /// Changes the value under `name` in place and returns what `change` returns.
    ///
    /// Errors, changing nothing, when the name is absent or holds another type.
    /// A value that came from the runner is copied into the run first.
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
        let mut own = self.own_mut();
        if !own.by_name.contains_key(name) {
            let inherited = self
                .layers
                .base
                .by_name
                .get(name)
                .ok_or_else(|| self.missing_name(name))?;
            if !inherited.value.is::<T>() {
                return Err(self.wrong_type::<T>(name, inherited.type_name));
            }
            own.by_name
                .insert(Cow::Owned(name.to_owned()), inherited.clone());
        }
        let slot = own.by_name.get_mut(name).expect("present: checked above");
        if !slot.value.is::<T>() {
            return Err(self.wrong_type::<T>(name, slot.type_name));
        }
        Ok(change_slot(slot, change))
    }

    /// The run's execution context (tenant, user, correlation id, ...), as
    /// enriched so far. Outside a run: an empty one.
    pub fn execution(&self) -> ExecutionContext {
        self.layers.execution()
    }

    /// Adds `pairs` to the execution context every later node of the run
    /// sees (as do [`current_execution_context`](crate::current_execution_context)
    /// and friends from now on), and returns the enriched context.
    ///
    /// Keys are only added or replaced, never lost; contexts read earlier,
    /// by this node or earlier ones, stay as they were.
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
            .layers
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

    /// A fresh context for one run: `self`'s entries, read-only, under an empty
    /// writable layer.
    pub(crate) fn for_run(base: &SharedEntries, execution: ExecutionContext) -> Self {
        Self::layered_with(Arc::clone(base), execution)
    }

    /// A context holding only `execution`: what a scope outside any run shares.
    pub(crate) fn for_scope(execution: ExecutionContext) -> Self {
        // Shared: a scope (or `stroma::spawn`) costs one allocation, not two.
        static NO_ENTRIES: LazyLock<Arc<Entries>> = LazyLock::new(Arc::default);
        Self::layered_with(Arc::clone(&NO_ENTRIES), execution)
    }

    /// The cell a run's task-local shares with this context, so that
    /// [`enrich`](Self::enrich) reaches code reading the current context.
    pub(crate) fn cell(&self) -> ExecutionCell {
        Arc::clone(&self.layers)
    }

    /// This context, as seen by `node`: same values, errors name the node.
    pub(crate) fn for_node(&self, node: &'static str) -> Self {
        Context {
            layers: Arc::clone(&self.layers),
            node: Some(node),
        }
    }

    /// All entries of both layers, flattened: what a runner shares with its runs.
    pub(crate) fn freeze(&self) -> SharedEntries {
        let own = self.own();
        if own.is_empty() {
            return Arc::clone(&self.layers.base);
        }
        let mut all = (*self.layers.base).clone();
        all.overlay(&own);
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

    fn own(&self) -> RwLockReadGuard<'_, Entries> {
        // A panic while the lock is held cannot leave an entry half-written:
        // every write is a single map operation. So poisoning is ignored.
        self.layers.own.read().unwrap_or_else(|e| e.into_inner())
    }

    fn own_mut(&self) -> RwLockWriteGuard<'_, Entries> {
        self.layers.own.write().unwrap_or_else(|e| e.into_inner())
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
/// (or another layer) still holds it.
fn change_slot<T, R>(slot: &mut Slot, change: impl FnOnce(&mut T) -> R) -> R
where
    T: Clone + Send + Sync + 'static,
{
    if Arc::get_mut(&mut slot.value).is_none() {
        let copy: T = slot
            .value
            .downcast_ref::<T>()
            .expect("callers check the slot's type first")
            .clone();
        slot.value = Arc::new(copy);
    }
    let value = Arc::get_mut(&mut slot.value)
        .and_then(|value| value.downcast_mut::<T>())
        .expect("the slot is unique and holds a `T`");
    change(value)
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own = self.own();
        let base = &self.layers.base;
        let mut names: Vec<&str> = base
            .by_name
            .keys()
            .chain(own.by_name.keys())
            .map(|k| k.as_ref())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut types: Vec<&str> = base
            .by_type
            .values()
            .chain(own.by_type.values())
            .map(|s| s.type_name)
            .collect();
        types.sort_unstable();
        types.dedup();
        f.debug_struct("Context")
            .field("types", &types)
            .field("names", &names)
            .field("node", &self.node)
            .finish()
    }
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

    #[test]
    fn update_in_place_does_not_copy_an_unshared_value() {
        let ctx = Context::new().with(vec![1]);
        let first = Arc::as_ptr(&ctx.get::<Vec<i32>>().unwrap());
        ctx.update(|v: &mut Vec<i32>| v.push(2)).unwrap();
        assert_eq!(first, Arc::as_ptr(&ctx.get::<Vec<i32>>().unwrap()));
    }
}
