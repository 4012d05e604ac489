//! [`ExecutionContext`]: immutable metadata about who and what a run is for
//! (tenant, user, correlation id, anything else), cheap to clone.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::run::run_id::RunId;

/// A metadata value read with [`ExecutionContext::get_as`] did not have the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTypeError {
    key: String,
    expected: &'static str,
    message: String,
}

impl fmt::Display for MetadataTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "execution context key `{}` is not a `{}`: {}",
            self.key, self.expected, self.message
        )
    }
}

impl std::error::Error for MetadataTypeError {}

/// Keys are `Cow` so the built-in keys cost no allocation.
type Key = Cow<'static, str>;

/// A few keys and values, sorted by key: one small allocation where a
/// `BTreeMap` would make a node of a dozen entries for each run.
#[derive(Clone, Default, PartialEq)]
struct SortedMap(Vec<(Key, Value)>);

impl SortedMap {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    fn insert(&mut self, key: Key, value: Value) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// At most this many contexts share into one: past it, [`Metadata::over`]
/// copies them into one, so a look-up never walks more than this many.
const MOST_SHARED: u32 = 16;

/// One context's keys: those set on it, over those of the contexts it was
/// laid over, which are shared, never copied.
///
/// A run's context lies over the runner's this way, so starting a run, or
/// enriching its context, costs the same however large the runner's
/// context is: only the keys set on the run's own are ever copied.
struct Metadata {
    /// The keys set on this context itself; they win over `near`'s and `far`'s.
    values: SortedMap,
    /// Keys of `values` whose values `Debug` must not show.
    secrets: BTreeSet<Key>,
    /// The run whose id is the correlation id. Never beside a correlation
    /// id in `values`: setting one there drops it.
    run_correlation: Option<RunCorrelation>,
    /// A context this one lies over, shared; its keys win over `far`'s.
    near: Option<ExecutionContext>,
    /// A context under `near`, shared.
    far: Option<ExecutionContext>,
    /// How many contexts this one is made of, itself included.
    shared: u32,
    /// Every key and value, flattened, once something iterates or compares
    /// them; never made for a context that shares none.
    flat: OnceLock<SortedMap>,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            values: SortedMap::default(),
            secrets: BTreeSet::new(),
            run_correlation: None,
            near: None,
            far: None,
            shared: 1,
            flat: OnceLock::new(),
        }
    }
}

#[derive(Clone)]
struct RunCorrelation {
    run_id: RunId,
    /// The id as a value, made only when read: most runs never read it.
    text: OnceLock<Value>,
}

impl RunCorrelation {
    fn new(run_id: RunId) -> Self {
        RunCorrelation {
            run_id,
            text: OnceLock::new(),
        }
    }

    fn text(&self) -> &Value {
        self.text
            .get_or_init(|| Value::String(self.run_id.to_text()))
    }
}

impl Metadata {
    /// `values` (with their `secrets` and run) over `near` over `far`.
    /// Past [`MOST_SHARED`] contexts, copied into one.
    fn over(
        values: SortedMap,
        secrets: BTreeSet<Key>,
        run_correlation: Option<RunCorrelation>,
        near: Option<ExecutionContext>,
        far: Option<ExecutionContext>,
    ) -> Self {
        // An empty context adds nothing but a step to every look-up.
        let near = near.filter(|c| !c.is_empty());
        let far = far.filter(|c| !c.is_empty());
        let (near, far) = match (near, far) {
            (None, far) => (far, None),
            both => both,
        };
        let shared = 1 + [&near, &far]
            .into_iter()
            .flatten()
            .map(|c| c.inner.shared)
            .sum::<u32>();
        let metadata = Metadata {
            values,
            secrets,
            run_correlation,
            near,
            far,
            shared,
            flat: OnceLock::new(),
        };
        if shared <= MOST_SHARED {
            return metadata;
        }
        let secrets = metadata
            .values()
            .iter()
            .filter(|(key, _)| metadata.is_secret(key))
            .map(|(key, _)| key.clone())
            .collect();
        Metadata {
            values: metadata.values().clone(),
            secrets,
            ..Metadata::default()
        }
    }

    /// Whether this context itself (not one it shares) sets `key`.
    fn sets(&self, key: &str) -> bool {
        (self.run_correlation.is_some() && key == ExecutionContext::CORRELATION_ID)
            || self.values.contains_key(key)
    }

    /// The nearest context, this one or one it shares, that sets `key`.
    fn setter(&self, key: &str) -> Option<&Metadata> {
        if self.sets(key) {
            return Some(self);
        }
        [&self.near, &self.far]
            .into_iter()
            .flatten()
            .find_map(|shared| shared.inner.setter(key))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        if let Some(run) = &self.run_correlation
            && key == ExecutionContext::CORRELATION_ID
        {
            return Some(run.text());
        }
        if let Some(value) = self.values.get(key) {
            return Some(value);
        }
        [&self.near, &self.far]
            .into_iter()
            .flatten()
            .find_map(|shared| shared.inner.get(key))
    }

    fn is_secret(&self, key: &str) -> bool {
        // The context that sets the value decides: a plain value set over a
        // secret one is no longer secret. The run's id never is.
        self.setter(key)
            .is_some_and(|setter| setter.values.contains_key(key) && setter.secrets.contains(key))
    }

    fn shares(&self) -> bool {
        self.near.is_some() || self.run_correlation.is_some()
    }

    fn is_empty(&self) -> bool {
        // `over` keeps no empty context, so one sharing any is not empty.
        self.values.is_empty() && !self.shares()
    }

    /// Every key and value, sorted, the nearest setting of each.
    fn values(&self) -> &SortedMap {
        if !self.shares() {
            return &self.values;
        }
        self.flat.get_or_init(|| {
            let mut all = Vec::new();
            self.collect(&mut all);
            // Stable: of equal keys, the nearest, collected first, stays first.
            all.sort_by(|(a, _), (b, _)| a.cmp(b));
            all.dedup_by(|(later, _), (earlier, _)| later == earlier);
            SortedMap(all)
        })
    }

    /// Every setting of every key, nearest first.
    fn collect(&self, out: &mut Vec<(Key, Value)>) {
        if let Some(run) = &self.run_correlation {
            out.push((
                Cow::Borrowed(ExecutionContext::CORRELATION_ID),
                run.text().clone(),
            ));
        }
        out.extend(self.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        for shared in [&self.near, &self.far].into_iter().flatten() {
            shared.inner.collect(out);
        }
    }

    /// How many keys, without copying any value.
    fn len(&self) -> usize {
        if !self.shares() {
            return self.values.len();
        }
        if let Some(flat) = self.flat.get() {
            return flat.len();
        }
        let mut keys = Vec::new();
        self.collect_keys(&mut keys);
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    fn collect_keys<'a>(&'a self, out: &mut Vec<&'a str>) {
        if self.run_correlation.is_some() {
            out.push(ExecutionContext::CORRELATION_ID);
        }
        out.extend(self.values.iter().map(|(k, _)| k.as_ref()));
        for shared in [&self.near, &self.far].into_iter().flatten() {
            shared.inner.collect_keys(out);
        }
    }

    /// This context's own keys with `change` applied, over the same shared ones.
    fn changed(&self, change: impl FnOnce(&mut SortedMap, &mut BTreeSet<Key>)) -> Self {
        let mut values = self.values.clone();
        let mut secrets = self.secrets.clone();
        change(&mut values, &mut secrets);
        // A correlation id set here wins over the run's.
        let run_correlation = self
            .run_correlation
            .clone()
            .filter(|_| !values.contains_key(ExecutionContext::CORRELATION_ID));
        Metadata::over(
            values,
            secrets,
            run_correlation,
            self.near.clone(),
            self.far.clone(),
        )
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
            && self
                .values()
                .iter()
                .all(|(key, _)| self.is_secret(key) == other.is_secret(key))
    }
}

/// Immutable metadata about a run: tenant, user, correlation id, and any other
/// key with a JSON value.
///
/// Every change returns a new context and leaves the original as it was, so
/// a context can be handed to any number of tasks. Cloning costs one
/// reference-count increment.
///
/// ```
/// use stroma_core::ExecutionContext;
///
/// let base = ExecutionContext::of([("tenant_id", "acme"), ("user_id", "u-42")]);
/// let enriched = base.plus("session_id", "s-1").plus("attempt", 2);
///
/// assert_eq!(enriched.tenant_id(), Some("acme"));
/// assert_eq!(enriched.get_as::<u32>("attempt").unwrap(), Some(2));
/// assert!(!base.contains("session_id"), "the original is untouched");
/// ```
#[derive(Clone, PartialEq)]
pub struct ExecutionContext {
    inner: Arc<Metadata>,
}

impl Default for ExecutionContext {
    /// The empty context; shared, so making one allocates nothing.
    fn default() -> Self {
        static EMPTY: LazyLock<ExecutionContext> = LazyLock::new(|| ExecutionContext {
            inner: Arc::new(Metadata::default()),
        });
        EMPTY.clone()
    }
}

impl ExecutionContext {
    /// The key of [`tenant_id`](Self::tenant_id).
    pub const TENANT_ID: &'static str = "tenant_id";
    /// The key of [`user_id`](Self::user_id).
    pub const USER_ID: &'static str = "user_id";
    /// The key of [`correlation_id`](Self::correlation_id).
    pub const CORRELATION_ID: &'static str = "correlation_id";

    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context holding `pairs`; values are anything that converts into a
    /// JSON value (`&str`, `String`, numbers, bools, `serde_json::Value`).
    pub fn of<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        Self::new().plus_all(pairs)
    }

    /// The tenant, if the `tenant_id` key holds a string.
    pub fn tenant_id(&self) -> Option<&str> {
        self.get_str(Self::TENANT_ID)
    }

    /// The user, if the `user_id` key holds a string.
    pub fn user_id(&self) -> Option<&str> {
        self.get_str(Self::USER_ID)
    }

    /// The correlation id, if the `correlation_id` key holds a string. Inside
    /// a run it is always set: a run given none uses its run id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.get_str(Self::CORRELATION_ID)
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.inner.get(key)
    }

    /// The value under `key` as a `T`: `Ok(None)` when absent, an error (not a
    /// panic) when the value does not deserialize into `T`.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, MetadataTypeError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        T::deserialize(value)
            .map(Some)
            .map_err(|err| MetadataTypeError {
                key: key.to_owned(),
                expected: std::any::type_name::<T>(),
                message: err.to_string(),
            })
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        // Answered without making the run's correlation id into text.
        self.inner.setter(key).is_some()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// A copy of all keys and values, secrets included.
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }

    /// Iterates over keys and values in key order, secrets included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.inner.values().iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// A new context with `key` set to `value`; `self` is unchanged.
    #[must_use = "`plus` returns a new context and leaves this one unchanged"]
    pub fn plus(&self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.plus_all([(key, value)])
    }

    /// A new context with every pair of `pairs` set; `self` is unchanged.
    #[must_use = "`plus_all` returns a new context and leaves this one unchanged"]
    pub fn plus_all<K, V>(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        let metadata = self.inner.changed(|values, secrets| {
            for (key, value) in pairs {
                let key = key.into();
                // A plain value replaces a secret one: it is no longer secret.
                secrets.remove(&key);
                values.insert(key, value.into());
            }
        });
        ExecutionContext {
            inner: Arc::new(metadata),
        }
    }

    /// A new context with `key` set to a secret `value`: readable like any
    /// other, but `Debug` shows it as `"<redacted>"`.
    ///
    /// ```
    /// use stroma_core::ExecutionContext;
    ///
    /// let ctx = ExecutionContext::of([("tenant_id", "acme")]).plus_secret("api_key", "sk-123");
    /// assert_eq!(ctx.get_as::<String>("api_key").unwrap().as_deref(), Some("sk-123"));
    /// assert!(!format!("{ctx:?}").contains("sk-123"));
    /// ```
    #[must_use = "`plus_secret` returns a new context and leaves this one unchanged"]
    pub fn plus_secret(&self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        let key = key.into();
        let metadata = self.inner.changed(|values, secrets| {
            values.insert(key.clone(), value.into());
            secrets.insert(key);
        });
        ExecutionContext {
            inner: Arc::new(metadata),
        }
    }

    /// Whether `key` holds a secret value.
    pub fn is_secret(&self, key: &str) -> bool {
        self.inner.is_secret(key)
    }

    /// `self`'s keys, then `nearer`'s on top (they win on conflicts);
    /// returns whichever side alone when the other is empty. Copies neither:
    /// the result shares both.
    pub(crate) fn overlaid_with(&self, nearer: &ExecutionContext) -> Self {
        if nearer.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return nearer.clone();
        }
        ExecutionContext {
            inner: Arc::new(Metadata::over(
                SortedMap::default(),
                BTreeSet::new(),
                None,
                Some(nearer.clone()),
                Some(self.clone()),
            )),
        }
    }

    /// This context for the run `run_id`: if it has no correlation id (a
    /// string), the run id is one. Costs one allocation whatever `self`
    /// holds, which the run shares; the id becomes text only if read.
    pub(crate) fn for_run(&self, run_id: RunId) -> Self {
        let has_one = self
            .inner
            .setter(Self::CORRELATION_ID)
            .is_some_and(|setter| {
                setter.run_correlation.is_some()
                    || setter
                        .values
                        .get(Self::CORRELATION_ID)
                        .is_some_and(Value::is_string)
            });
        if has_one {
            return self.clone();
        }
        // Laid over `self`, the run's id hides a correlation id that is not a string.
        ExecutionContext {
            inner: Arc::new(Metadata::over(
                SortedMap::default(),
                BTreeSet::new(),
                Some(RunCorrelation::new(run_id)),
                Some(self.clone()),
                None,
            )),
        }
    }

    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl fmt::Debug for ExecutionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"<redacted>\"")
            }
        }
        /// A value as compact JSON: `"acme"`, `3`, `{"a":1}`.
        struct Json<'a>(&'a Value);
        impl fmt::Debug for Json<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.0, f)
            }
        }
        let mut map = f.debug_map();
        for (key, value) in self.inner.values().iter() {
            if self.inner.is_secret(key) {
                map.entry(key, &Redacted);
            } else {
                map.entry(key, &Json(value));
            }
        }
        map.finish()
    }
}

/// Serializes as a map of keys to values. Secret values are written too
/// (serialization is how a context crosses a process boundary); a context
/// read back has no secret marks.
impl Serialize for ExecutionContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.inner.values().iter())
    }
}

impl<'de> Deserialize<'de> for ExecutionContext {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(deserializer)?;
        Ok(ExecutionContext {
            inner: Arc::new(Metadata {
                // A BTreeMap's order is already sorted.
                values: SortedMap(
                    values
                        .into_iter()
                        .map(|(k, v)| (Cow::Owned(k), v))
                        .collect(),
                ),
                ..Metadata::default()
            }),
        })
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<Value>> FromIterator<(K, V)> for ExecutionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self::of(pairs)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_json_is_execution_metadata_or_an_error_never_a_panic(
            pairs in prop::collection::vec(("[a-z_]{1,8}", prop_oneof![
                Just(serde_json::Value::Null),
                any::<i64>().prop_map(|n| serde_json::json!(n)),
                ".{0,8}".prop_map(serde_json::Value::String),
                prop::collection::vec(any::<bool>(), 0..3).prop_map(|v| serde_json::json!(v)),
            ]), 0..6),
            not_a_map in any::<bool>(),
        ) {
            let value = if not_a_map {
                serde_json::Value::Array(pairs.iter().map(|(_, v)| v.clone()).collect())
            } else {
                serde_json::Value::Object(pairs.iter().cloned().collect())
            };
            if let Ok(context) = serde_json::from_value::<ExecutionContext>(value.clone()) {
                // Every key reads back, typed or as an error, never a panic.
                for (key, _) in &pairs {
                    let _ = context.get_as::<u32>(key);
                    let _ = context.get_as::<String>(key);
                    prop_assert!(context.get(key).is_some());
                }
                let _ = context.tenant_id();
                let again = serde_json::to_value(&context).unwrap();
                prop_assert_eq!(serde_json::from_value::<ExecutionContext>(again).unwrap(), context);
            }
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn nearer_keys_win_and_secrets_follow_their_values() {
        let far = ExecutionContext::of([("tenant_id", "a"), ("region", "eu")]).plus_secret("k", 1);
        let near = ExecutionContext::of([("tenant_id", "b")]).plus_secret("token", "t");
        let both = far.overlaid_with(&near);
        assert_eq!(both.tenant_id(), Some("b"));
        assert_eq!(both.get("region"), Some(&json!("eu")));
        assert!(both.is_secret("k") && both.is_secret("token"));
        let replaced = both.plus("k", 2);
        assert!(!replaced.is_secret("k"));
    }

    #[test]
    fn a_runs_correlation_id_reads_as_a_plain_value_everywhere() {
        let run_id = RunId::new();
        let base = ExecutionContext::of([("tenant_id", "t")]);
        let lazy = base.for_run(run_id);
        let eager = base.plus(ExecutionContext::CORRELATION_ID, run_id.to_text());
        assert_eq!((lazy.len(), lazy.is_empty()), (2, false));
        assert!(lazy.contains(ExecutionContext::CORRELATION_ID));
        assert_eq!(lazy, eager);
        assert_eq!(lazy.correlation_id(), Some(run_id.to_text().as_str()));
        assert_eq!(lazy.to_map(), eager.to_map());
        assert_eq!(format!("{lazy:?}"), format!("{eager:?}"));
        assert_eq!(
            serde_json::to_string(&lazy).unwrap(),
            serde_json::to_string(&eager).unwrap()
        );
        // Changing it keeps the id; a context that has one keeps its own.
        assert_eq!(lazy.plus("n", 1).correlation_id(), eager.correlation_id());
        let given = base.plus(ExecutionContext::CORRELATION_ID, "c-1");
        assert_eq!(given.for_run(run_id).correlation_id(), Some("c-1"));
        assert_eq!(ExecutionContext::new().for_run(run_id).len(), 1);
        // A correlation id that is not a string is not one: the run id replaces it.
        let number = base
            .plus(ExecutionContext::CORRELATION_ID, 42)
            .for_run(run_id);
        assert_eq!(number, eager);
        // A run inside a run keeps the outer run's id.
        assert_eq!(lazy.for_run(RunId::new()), eager);
    }

    /// The address of the value under `key`: the same address, the same value, not a copy.
    fn address(ctx: &ExecutionContext, key: &str) -> *const Value {
        ctx.get(key).expect("present")
    }

    #[test]
    fn a_run_shares_the_runners_values_instead_of_copying_them() {
        let blob = "x".repeat(4 << 20);
        let runner = ExecutionContext::of([("blob", blob.as_str()), ("tenant_id", "t")]);
        let per_run = ExecutionContext::of([("user_id", "u")]);
        let outer = ExecutionContext::of([("region", "eu")]);
        let run_id = RunId::new();
        let runs = [
            runner.for_run(run_id),
            runner.overlaid_with(&per_run).for_run(run_id),
            outer
                .overlaid_with(&runner)
                .overlaid_with(&per_run)
                .for_run(run_id),
            runner.for_run(run_id).plus("session_id", "s-1"),
            runner
                .for_run(run_id)
                .plus_secret("token", "t")
                .plus("n", 1),
        ];
        for run in &runs {
            assert_eq!(address(run, "blob"), address(&runner, "blob"));
            assert_eq!(run.tenant_id(), Some("t"));
            assert_eq!(run.correlation_id(), Some(run_id.to_text().as_str()));
        }
        assert_eq!(
            runs[2].get_as::<String>("region").unwrap().as_deref(),
            Some("eu")
        );
        assert_eq!(runs[2].user_id(), Some("u"));
        // Iterating copies the values once, for that context only.
        assert_eq!(runs[1].len(), 4);
        assert_eq!(runs[1].iter().count(), 4);
        assert_eq!(address(&runs[1], "blob"), address(&runner, "blob"));
    }

    #[test]
    fn the_nearest_setting_of_a_key_decides_its_value_and_secrecy() {
        let far = ExecutionContext::of([("a", 1)]).plus_secret("b", 2);
        let near = ExecutionContext::of([("b", 3)]).plus_secret("a", 4);
        let both = far.overlaid_with(&near);
        assert_eq!(both.get("a"), Some(&json!(4)));
        assert_eq!(both.get("b"), Some(&json!(3)));
        assert!(both.is_secret("a") && !both.is_secret("b"));
        let flat = ExecutionContext::of([("b", 3)]).plus_secret("a", 4);
        assert_eq!(both, flat);
        assert_ne!(both, ExecutionContext::of([("a", 4), ("b", 3)]));
        assert_eq!(format!("{both:?}"), format!("{flat:?}"));
        // A key set over a shared context wins, and a plain value is not secret.
        let changed = both.plus("a", 5).plus_secret("c", 6);
        assert_eq!(changed.get("a"), Some(&json!(5)));
        assert!(!changed.is_secret("a") && changed.is_secret("c"));
        assert_eq!(both.get("a"), Some(&json!(4)), "the original is untouched");
        // A secret correlation id that is not a string gives way to the run's, not secret.
        let run_id = RunId::new();
        let run = ExecutionContext::new()
            .plus_secret(ExecutionContext::CORRELATION_ID, 7)
            .for_run(run_id);
        assert_eq!(run.correlation_id(), Some(run_id.to_text().as_str()));
        assert!(!run.is_secret(ExecutionContext::CORRELATION_ID));
        // A correlation id set in a run replaces the run's.
        let set = ExecutionContext::new()
            .for_run(run_id)
            .plus(ExecutionContext::CORRELATION_ID, "c-9");
        assert_eq!(set.correlation_id(), Some("c-9"));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn contexts_laid_over_many_times_stay_correct_and_bounded() {
        let mut ctx = ExecutionContext::new();
        for i in 0..100_u32 {
            let key = format!("k{}", i % 10);
            ctx = ctx.overlaid_with(&ExecutionContext::of([(key, i)]));
            assert!(ctx.inner.shared <= MOST_SHARED);
        }
        assert_eq!(ctx.len(), 10);
        for i in 90..100_u32 {
            assert_eq!(ctx.get_as::<u32>(&format!("k{}", i % 10)).unwrap(), Some(i));
        }
    }

    #[test]
    fn serde_round_trips_values() {
        let ctx = ExecutionContext::of([("tenant_id", json!("t")), ("n", json!(3))]);
        let text = serde_json::to_string(&ctx).unwrap();
        assert_eq!(text, r#"{"n":3,"tenant_id":"t"}"#);
        let back: ExecutionContext = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ctx);
    }
}
