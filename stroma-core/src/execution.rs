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

    fn remove(&mut self, key: &str) {
        if let Ok(i) = self.find(key) {
            self.0.remove(i);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[derive(Clone, Default)]
struct Metadata {
    values: SortedMap,
    /// Keys whose values `Debug` must not show.
    secrets: BTreeSet<Key>,
    /// The run whose id is the correlation id, when `values` has none. Made
    /// into a value only when read: most runs never read it.
    run_correlation: Option<RunCorrelation>,
}

#[derive(Clone)]
struct RunCorrelation {
    run_id: RunId,
    /// `values` with the correlation id added, once something reads them.
    values: OnceLock<SortedMap>,
}

impl Metadata {
    /// Every key and value, the run's correlation id included.
    fn values(&self) -> &SortedMap {
        match &self.run_correlation {
            None => &self.values,
            Some(run) => run.values.get_or_init(|| {
                let mut values = self.values.clone();
                values.insert(
                    Cow::Borrowed(ExecutionContext::CORRELATION_ID),
                    Value::String(run.run_id.to_text()),
                );
                values
            }),
        }
    }

    /// A copy to change, with the correlation id (if any) as a plain value.
    fn to_owned_values(&self) -> Metadata {
        Metadata {
            values: self.values().clone(),
            secrets: self.secrets.clone(),
            run_correlation: None,
        }
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values() && self.secrets == other.secrets
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
        self.inner.values().get(key)
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
        let run_correlation = self.inner.run_correlation.is_some();
        (run_correlation && key == Self::CORRELATION_ID) || self.inner.values.contains_key(key)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.inner.values.len() + usize::from(self.inner.run_correlation.is_some())
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let mut metadata = self.inner.to_owned_values();
        for (key, value) in pairs {
            let key = key.into();
            // A plain value replaces a secret one: it is no longer secret.
            metadata.secrets.remove(&key);
            metadata.values.insert(key, value.into());
        }
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
        let mut metadata = self.inner.to_owned_values();
        metadata.values.insert(key.clone(), value.into());
        metadata.secrets.insert(key);
        ExecutionContext {
            inner: Arc::new(metadata),
        }
    }

    /// Whether `key` holds a secret value.
    pub fn is_secret(&self, key: &str) -> bool {
        self.inner.secrets.contains(key)
    }

    /// `self`'s keys, then `nearer`'s on top (they win on conflicts);
    /// returns whichever side alone when the other is empty, without copying.
    pub(crate) fn overlaid_with(&self, nearer: &ExecutionContext) -> Self {
        if nearer.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return nearer.clone();
        }
        let mut metadata = self.inner.to_owned_values();
        for (key, value) in nearer.inner.values().iter() {
            metadata.secrets.remove(key);
            metadata.values.insert(key.clone(), value.clone());
        }
        metadata
            .secrets
            .extend(nearer.inner.secrets.iter().cloned());
        ExecutionContext {
            inner: Arc::new(metadata),
        }
    }

    /// This context for the run `run_id`: if it has no correlation id (a
    /// string), the run id is one. Costs one allocation; the id becomes text
    /// only if read.
    pub(crate) fn for_run(&self, run_id: RunId) -> Self {
        let given = self.inner.values.get(Self::CORRELATION_ID);
        if self.inner.run_correlation.is_some() || given.is_some_and(Value::is_string) {
            return self.clone();
        }
        // The usual run inherits nothing: nothing to copy.
        let mut inherited = if self.is_empty() {
            Metadata::default()
        } else {
            self.inner.to_owned_values()
        };
        if given.is_some() {
            // Not a string, so not a correlation id: the run id replaces it.
            inherited.values.remove(Self::CORRELATION_ID);
            inherited.secrets.remove(Self::CORRELATION_ID);
        }
        ExecutionContext {
            inner: Arc::new(Metadata {
                run_correlation: Some(RunCorrelation {
                    run_id,
                    values: OnceLock::new(),
                }),
                ..inherited
            }),
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
            if self.inner.secrets.contains(key) {
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
                secrets: BTreeSet::new(),
                run_correlation: None,
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

    #[test]
    fn serde_round_trips_values() {
        let ctx = ExecutionContext::of([("tenant_id", json!("t")), ("n", json!(3))]);
        let text = serde_json::to_string(&ctx).unwrap();
        assert_eq!(text, r#"{"n":3,"tenant_id":"t"}"#);
        let back: ExecutionContext = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ctx);
    }
}
