//! Merging copies of the model that concurrent branches changed, field by
//! field, and the wrapper types that let a field say how to combine.
//!
//! The rule, per field (fields of nested structs and maps, and map entries,
//! count as fields): compared with the model before the branches, a field no
//! branch changed keeps its value, and a field exactly one branch changed
//! takes that value. A field more than one branch changed is a conflict, an
//! error naming the field, even when the branches wrote the same value,
//! unless the field is an [`Append`], a [`Sum`] or a [`Reduce`], which
//! combine the changes in declaration order. Equal values are no excuse:
//! every branch starts from the same copy, so `count += 1` in each of them
//! writes the same number, and taking it would drop all increments but one.
//!
//! Branches are merged in the order they are declared (a `for_each`'s items
//! in item order), never in the order they finish, and the merge is
//! associative: merging branches one group at a time gives the same model as
//! merging them all at once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{AddAssign, Deref, DerefMut, SubAssign};

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::model::depth::{TooDeep, check_depth};

/// A model that concurrent branches can each change and have merged: any
/// type that is `Clone`, `Serialize` and `Deserialize`. No derive or impl needed.
///
/// The merge rule, per field (fields of nested structs and maps, and map
/// entries, count as fields): compared with the model before the branches, a
/// field no branch changed keeps its value; a field exactly one branch
/// changed takes that value; a field more than one branch changed is a
/// [`MergeConflict`] naming the field, even when they wrote the same value,
/// unless the field says how to combine the changes: an [`Append`]
/// (additions concatenated in declaration order), a [`Sum`] (differences
/// added up) or a [`Reduce`] (a custom [`Reducer`]). So `count += 1` in every
/// `for_each` item needs `count: Sum<u32>`: on a plain `u32` each item's copy
/// writes the same `base + 1`. Branches merge in declaration order (items in
/// item order), never in the order they finish, and merging is associative:
/// merging branches one group at a time gives the same model as merging them
/// all at once.
#[diagnostic::on_unimplemented(
    message = "the model `{Self}` cannot be shared by concurrent branches",
    label = "branches work on copies of this model that are merged field by field",
    note = "derive `Clone`, `Serialize` and `Deserialize` for `{Self}`"
)]
pub trait Mergeable: Clone + Serialize + DeserializeOwned + Send + 'static {}

impl<M: Clone + Serialize + DeserializeOwned + Send + 'static> Mergeable for M {}

/// More than one branch (or `for_each` item) changed one field, and the
/// field does not say how to combine the changes.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeConflict {
    /// The path; `None` for the whole model.
    field: Option<String>,
    /// How many branches changed it.
    changed: usize,
    /// The first [`SHOWN_VALUES`] of their values, in declaration order.
    values: Vec<Value>,
}

/// How many of the conflicting values the message shows, and how long each
/// may be: enough to tell a count from a list, short for 1,000 items.
const SHOWN_VALUES: usize = 3;
const SHOWN_CHARS: usize = 60;

impl MergeConflict {
    /// The field, as a path: `stats.count`; `(the whole model)` when the
    /// model is a plain value, not a struct or map.
    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or("(the whole model)")
    }
}

impl fmt::Display for MergeConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} branches changed ", self.changed)?;
        match &self.field {
            Some(field) => write!(f, "the model field `{field}`")?,
            None => f.write_str("the whole model")?,
        }
        f.write_str(" (values: ")?;
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let text = value.to_string();
            match text.char_indices().nth(SHOWN_CHARS) {
                Some((cut, _)) => write!(f, "{}…", &text[..cut])?,
                None => f.write_str(&text)?,
            }
        }
        if self.changed > self.values.len() {
            write!(f, "; and {} more", self.changed - self.values.len())?;
        }
        f.write_str(
            "): a field changed by more than one branch or item must say how to combine \
             the changes: make it a `Sum` (numbers add up) or an `Append` (lists \
             concatenate), or a `Reduce`, or let one branch write it",
        )
    }
}

impl std::error::Error for MergeConflict {}

/// Merges the models `branches` left, each started from a copy of `base`,
/// in the order given. See the module's rule.
pub(crate) fn merge_models<'b, M: Mergeable>(
    base: &M,
    branches: impl IntoIterator<Item = &'b M>,
) -> Result<M, BoxedMergeError> {
    if std::mem::size_of::<M>() == 0 {
        // Nothing to merge: a zero-sized model has no fields.
        return Ok(base.clone());
    }
    let _mode = MergeMode::enter();
    let branch_values = branches
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    if branch_values.is_empty() {
        return Ok(base.clone());
    }
    let base_value = serde_json::to_value(base)?;
    // The merge below and the read back recurse once per level: refuse
    // first what serde_json could not read from text either.
    check_depth(&base_value, 0).map_err(|deep| too_deep("the model", &deep))?;
    for branch in &branch_values {
        check_depth(branch, 0).map_err(|deep| too_deep("a branch's copy of the model", &deep))?;
    }
    let changed: Vec<&Value> = branch_values.iter().collect();
    let merged = merge_value(FieldPath::Whole, &base_value, &changed)?;
    drop(_mode);
    Ok(serde_json::from_value(merged)?)
}

pub(crate) type BoxedMergeError = Box<dyn std::error::Error + Send + Sync>;

/// `deep`, found in `what`, as the merge's error.
fn too_deep(what: &str, deep: &TooDeep) -> BoxedMergeError {
    format!("{what} {deep}; nothing was merged").into()
}

/// Where a value sits in the model: built as the merge descends, written
/// out only for an error, so a merge that succeeds makes no text.
#[derive(Clone, Copy)]
enum FieldPath<'a> {
    Whole,
    Field(&'a FieldPath<'a>, &'a str),
}

impl fmt::Display for FieldPath<'_> {
    /// `stats.count`; nothing for the whole model.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Whole => Ok(()),
            FieldPath::Field(FieldPath::Whole, key) => f.write_str(key),
            FieldPath::Field(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

fn merge_value(
    path: FieldPath<'_>,
    base: &Value,
    branches: &[&Value],
) -> Result<Value, BoxedMergeError> {
    if let Some((kind, base_inner)) = reducer_of(base) {
        let inners: Vec<&Value> = branches
            .iter()
            .map(|b| reducer_of(b).map_or(*b, |(_, inner)| inner))
            .collect();
        return reduce(path, kind, base_inner, &inners);
    }
    if let Value::Object(base_fields) = base
        && branches.iter().all(|b| b.is_object())
    {
        let objects = || {
            branches
                .iter()
                .map(|b| b.as_object().expect("checked above"))
        };
        let mut merged = Map::new();
        // One list for every field of this object, refilled field by field.
        let mut branch_fields: Vec<&Value> = Vec::with_capacity(branches.len());
        let mut merge_field = |key: &String| -> Result<(), BoxedMergeError> {
            let base_field = base_fields.get(key).unwrap_or(&Value::Null);
            branch_fields.clear();
            branch_fields.extend(objects().map(|b| b.get(key).unwrap_or(&Value::Null)));
            let value = merge_value(FieldPath::Field(&path, key), base_field, &branch_fields)?;
            if base_fields.contains_key(key) || !value.is_null() {
                merged.insert(key.clone(), value);
            }
            Ok(())
        };
        // The base's fields, then those branches added, each once, in branch order.
        for key in base_fields.keys() {
            merge_field(key)?;
        }
        for (i, branch) in objects().enumerate() {
            for key in branch.keys() {
                let seen = base_fields.contains_key(key)
                    || objects().take(i).any(|earlier| earlier.contains_key(key));
                if !seen {
                    merge_field(key)?;
                }
            }
        }
        return Ok(Value::Object(merged));
    }
    // A plain value: it may have one writer. Two that agree are still two:
    // each started from the base, so equal writes can hide lost updates.
    let mut changes = branches.iter().filter(|b| **b != base);
    let Some(first) = changes.next() else {
        return Ok(strip(base));
    };
    if changes.next().is_none() {
        return Ok(strip(first));
    }
    let changed = branches.iter().filter(|b| **b != base);
    Err(Box::new(MergeConflict {
        field: match path {
            FieldPath::Whole => None,
            FieldPath::Field(..) => Some(path.to_string()),
        },
        changed: changed.clone().count(),
        values: changed
            .take(SHOWN_VALUES)
            .map(|value| strip(value))
            .collect(),
    }))
}

/// Combines a reducer field's changes in declaration order.
fn reduce(
    path: FieldPath<'_>,
    kind: &Value,
    base: &Value,
    branches: &[&Value],
) -> Result<Value, BoxedMergeError> {
    let reducer_error =
        |message: String| -> BoxedMergeError { format!("model field `{path}`: {message}").into() };
    match kind {
        Value::String(kind) if kind == "append" => {
            let base_items = base
                .as_array()
                .ok_or_else(|| reducer_error("an `Append` must serialize as a list".into()))?;
            let mut merged = base_items.clone();
            for branch in branches {
                let items = branch
                    .as_array()
                    .ok_or_else(|| reducer_error("an `Append` must serialize as a list".into()))?;
                if !items.starts_with(base_items) {
                    return Err(reducer_error(
                        "a branch changed items already in an `Append` list; branches may only add to its end".into(),
                    ));
                }
                merged.extend(items[base_items.len()..].iter().cloned());
            }
            Ok(Value::Array(merged))
        }
        Value::String(kind) if kind == "sum" => {
            let as_number = |v: &Value| {
                v.as_number()
                    .cloned()
                    .ok_or_else(|| reducer_error("a `Sum` must serialize as a number".into()))
            };
            let base_number = as_number(base)?;
            let numbers = branches
                .iter()
                .map(|b| as_number(b))
                .collect::<Result<Vec<_>, _>>()?;
            if let (Some(b), Some(all)) = (
                base_number.as_i64(),
                numbers
                    .iter()
                    .map(Number::as_i64)
                    .collect::<Option<Vec<_>>>(),
            ) {
                let total = all
                    .iter()
                    .try_fold(b, |acc, n| acc.checked_add(n.checked_sub(b)?));
                if let Some(total) = total {
                    return Ok(Value::from(total));
                }
            }
            let b = base_number.as_f64().unwrap_or(0.0);
            let total = numbers
                .iter()
                .fold(b, |acc, n| acc + (n.as_f64().unwrap_or(0.0) - b));
            Ok(Value::from(total))
        }
        Value::Number(id) => {
            let id = id.as_u64().unwrap_or(u64::MAX) as usize;
            let combine = CUSTOM
                .with(|table| table.borrow().get(id).copied())
                .ok_or_else(|| reducer_error("unknown reducer".into()))?;
            let changed: Vec<Value> = branches
                .iter()
                .filter(|b| **b != base)
                .map(|b| (*b).clone())
                .collect();
            combine(base, &changed).map_err(reducer_error)
        }
        other => Err(reducer_error(format!("unknown reducer `{other}`"))),
    }
}

/// A value without reducer marks.
fn strip(value: &Value) -> Value {
    if let Some((_, inner)) = reducer_of(value) {
        return strip(inner);
    }
    match value {
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), strip(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

const MARK: &str = "$stroma_reducer";

fn reducer_of(value: &Value) -> Option<(&Value, &Value)> {
    let fields = value.as_object()?;
    if fields.len() == 2 {
        Some((fields.get(MARK)?, fields.get("value")?))
    } else {
        None
    }
}

type CustomReducer = fn(&Value, &[Value]) -> Result<Value, String>;

thread_local! {
    /// Whether serialization is for a merge: reducer fields then mark themselves.
    static MERGING: Cell<bool> = const { Cell::new(false) };
    /// The custom reducers met during this merge's serialization.
    static CUSTOM: RefCell<Vec<CustomReducer>> = const { RefCell::new(Vec::new()) };
}

/// Serialization for a merge, for as long as it lives (on this thread).
struct MergeMode;

impl MergeMode {
    fn enter() -> Self {
        MERGING.with(|m| m.set(true));
        CUSTOM.with(|c| c.borrow_mut().clear());
        MergeMode
    }
}

impl Drop for MergeMode {
    fn drop(&mut self) {
        MERGING.with(|m| m.set(false));
    }
}

fn serialize_marked<S: Serializer, T: Serialize>(
    serializer: S,
    kind: impl Serialize,
    value: &T,
) -> Result<S::Ok, S::Error> {
    if !MERGING.with(Cell::get) {
        return value.serialize(serializer);
    }
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry(MARK, &kind)?;
    map.serialize_entry("value", value)?;
    map.end()
}

/// A list that concurrent branches (or `for_each` items) each add to:
/// their additions are appended in declaration order (items in item order),
/// instead of conflicting. Branches may only add to its end; changing an
/// item already in it fails the merge.
///
/// It derefs to its `Vec<T>`, has [`push`](Append::push), iterates by
/// reference or by value, collects and extends. Serializes as a plain list.
///
/// ```
/// use stroma_core::Append;
///
/// let mut failed: Append<u32> = vec![3].into();
/// failed.push(7);
/// failed.extend([11, 15]);
/// assert_eq!(failed.len(), 4); // `Vec`'s methods, through `Deref`
/// let mut total = 0;
/// for page in &failed {
///     total += page;
/// }
/// assert_eq!(total, 36);
/// let late: Append<u32> = failed.into_iter().filter(|page| *page > 10).collect();
/// assert_eq!(late.0, [11, 15]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Append<T>(pub Vec<T>);

/// A number that concurrent branches (or `for_each` items) each change: the
/// changes add up (the base plus each branch's difference), instead of
/// conflicting. Count in one with `+=` and `-=`, by a `T` or another `Sum`;
/// read it through `Deref` (`*sum`) or `Display`.
///
/// Serializes as a plain number.
///
/// ```
/// use stroma_core::Sum;
///
/// let mut ok: Sum<u32> = 20.into();
/// ok += 2;
/// ok -= 1;
/// ok += Sum(3);
/// ok -= Sum(2);
/// assert_eq!(*ok, 22);
/// assert_eq!(ok.pow(2), 484); // `u32`'s methods, through `Deref`
/// assert_eq!(format!("{ok} pages"), "22 pages");
/// ```
///
/// Counting across `for_each` items (or `parallel!` branches): each item
/// works on its own copy of the model, so with a plain `ok: u32` every item
/// would write `ok = 1` and the merge would fail naming `ok`. A `Sum` adds
/// up what each item added:
///
/// ```
/// use stroma::prelude::*;
/// use stroma::Sum;
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Crawl { ok: Sum<u32> }
///
/// #[node]
/// async fn check(page: u32, crawl: &mut Crawl) -> u32 {
///     if page % 4 != 3 {
///         crawl.ok += 1;
///     }
///     page
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pages: Vec<u32> = (0..27).collect();
/// let result = StromaRunner::quick()
///     .run_with_model(&for_each(check).concurrency(8), pages, Crawl::default())
///     .await
///     .unwrap();
/// assert_eq!(*result.model.ok, 21);
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Sum<T>(pub T);

impl<T> Append<T> {
    /// Adds `item` at the end, the one place a branch may add to.
    pub fn push(&mut self, item: T) {
        self.0.push(item);
    }
}

impl<T> From<Vec<T>> for Append<T> {
    fn from(items: Vec<T>) -> Self {
        Append(items)
    }
}

impl<T> FromIterator<T> for Append<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        Append(Vec::from_iter(items))
    }
}

impl<T> Extend<T> for Append<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        self.0.extend(items);
    }
}

impl<T> IntoIterator for Append<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Append<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> From<T> for Sum<T> {
    fn from(value: T) -> Self {
        Sum(value)
    }
}

impl<T: fmt::Display> fmt::Display for Sum<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: AddAssign> AddAssign<T> for Sum<T> {
    fn add_assign(&mut self, rhs: T) {
        self.0 += rhs;
    }
}

impl<T: AddAssign> AddAssign for Sum<T> {
    fn add_assign(&mut self, rhs: Sum<T>) {
        self.0 += rhs.0;
    }
}

impl<T: SubAssign> SubAssign<T> for Sum<T> {
    fn sub_assign(&mut self, rhs: T) {
        self.0 -= rhs;
    }
}

impl<T: SubAssign> SubAssign for Sum<T> {
    fn sub_assign(&mut self, rhs: Sum<T>) {
        self.0 -= rhs.0;
    }
}

/// How to combine a [`Reduce`] field that several branches changed.
pub trait Reducer<T>: 'static {
    /// `base` is the value before the branches; `changed` holds the values
    /// of the branches that changed it, in declaration order.
    fn reduce(base: &T, changed: Vec<T>) -> T;
}

/// A field combined by a custom [`Reducer`] `R` when several branches change it.
///
/// Serializes as the plain `T`.
///
/// ```
/// use stroma_core::{Reduce, Reducer};
///
/// /// Keeps the highest score any branch reached.
/// struct Highest;
/// impl Reducer<u32> for Highest {
///     fn reduce(base: &u32, changed: Vec<u32>) -> u32 {
///         changed.into_iter().fold(*base, u32::max)
///     }
/// }
///
/// let best: Reduce<u32, Highest> = Reduce::new(0);
/// assert_eq!(*best, 0);
/// ```
pub struct Reduce<T, R> {
    value: T,
    reducer: PhantomData<fn() -> R>,
}

impl<T, R> Reduce<T, R> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Reduce {
            value,
            reducer: PhantomData,
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: Clone, R> Clone for Reduce<T, R> {
    fn clone(&self) -> Self {
        Reduce::new(self.value.clone())
    }
}

impl<T: fmt::Debug, R> fmt::Debug for Reduce<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reduce").field(&self.value).finish()
    }
}

impl<T: Default, R> Default for Reduce<T, R> {
    fn default() -> Self {
        Reduce::new(T::default())
    }
}

impl<T: PartialEq, R> PartialEq for Reduce<T, R> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

macro_rules! deref_to_inner {
    ($wrapper:ident<$t:ident $(, $r:ident)?>, $inner:ty, $($field:tt)+) => {
        impl<$t $(, $r)?> Deref for $wrapper<$t $(, $r)?> {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.$($field)+
            }
        }
        impl<$t $(, $r)?> DerefMut for $wrapper<$t $(, $r)?> {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.$($field)+
            }
        }
    };
}

deref_to_inner!(Append<T>, Vec<T>, 0);
deref_to_inner!(Sum<T>, T, 0);
deref_to_inner!(Reduce<T, R>, T, value);

impl<T: Serialize> Serialize for Append<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_marked(serializer, "append", &self.0)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Append<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Append)
    }
}

impl<T: Serialize> Serialize for Sum<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_marked(serializer, "sum", &self.0)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sum<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Sum)
    }
}

impl<T: Serialize + DeserializeOwned, R: Reducer<T>> Serialize for Reduce<T, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !MERGING.with(Cell::get) {
            return self.value.serialize(serializer);
        }
        fn combine<T: Serialize + DeserializeOwned, R: Reducer<T>>(
            base: &Value,
            changed: &[Value],
        ) -> Result<Value, String> {
            let base: T = T::deserialize(base).map_err(|e| e.to_string())?;
            let changed = changed
                .iter()
                .map(|v| T::deserialize(v).map_err(|e| e.to_string()))
                .collect::<Result<Vec<T>, String>>()?;
            serde_json::to_value(R::reduce(&base, changed)).map_err(|e| e.to_string())
        }
        let id = CUSTOM.with(|table| {
            let mut table = table.borrow_mut();
            let f: CustomReducer = combine::<T, R>;
            match table.iter().position(|g| std::ptr::fn_addr_eq(*g, f)) {
                Some(id) => id,
                None => {
                    table.push(f);
                    table.len() - 1
                }
            }
        });
        serialize_marked(serializer, id, &self.value)
    }
}

impl<'de, T: Deserialize<'de>, R> Deserialize<'de> for Reduce<T, R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Reduce::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Model {
        plain: u32,
        name: String,
        log: Append<String>,
        total: Sum<i64>,
        nested: Nested,
    }

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Nested {
        a: u32,
        b: u32,
    }

    #[test]
    fn each_branch_keeps_its_own_fields_and_reducers_combine_in_order() {
        let base = Model {
            log: Append(vec!["start".into()]),
            total: Sum(10),
            ..Model::default()
        };
        let mut one = base.clone();
        one.plain = 1;
        one.log.push("one".into());
        *one.total += 5;
        one.nested.a = 7;
        let mut two = base.clone();
        two.name = "two".into();
        two.log.push("two".into());
        two.total -= 2;
        two.nested.b = 8;
        let merged = merge_models(&base, [&one, &two]).unwrap();
        assert_eq!(merged.plain, 1);
        assert_eq!(merged.name, "two");
        assert_eq!(merged.log.0, ["start", "one", "two"]);
        assert_eq!(merged.total.0, 13);
        assert_eq!(merged.nested, Nested { a: 7, b: 8 });
        // Associative: merging in groups gives the same model.
        let first = merge_models(&base, [&one]).unwrap();
        let mut two_on_first = first.clone();
        two_on_first.name = two.name.clone();
        two_on_first.log.push("two".into());
        *two_on_first.total -= 2;
        two_on_first.nested.b = 8;
        let stepwise = merge_models(&first, [&two_on_first]).unwrap();
        assert_eq!(stepwise, merged);
        // Associative by groups too: a merged group counts as one branch.
        let mut three = base.clone();
        three.log.push("three".into());
        three.total += Sum(100);
        let all = merge_models(&base, [&one, &two, &three]).unwrap();
        let grouped = merge_models(&base, [&merged, &three]).unwrap();
        assert_eq!(grouped, all);
        assert_eq!(all.log.0, ["start", "one", "two", "three"]);
        assert_eq!(all.total.0, 113);
        // Outside a merge, wrappers serialize as their plain values.
        assert_eq!(
            serde_json::to_value(&merged.log).unwrap(),
            serde_json::json!(["start", "one", "two"])
        );
    }

    #[test]
    fn keys_branches_add_to_a_map_are_merged_and_conflicts_name_their_path() {
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        struct Outer {
            inner: Inner,
        }
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        struct Inner {
            tags: std::collections::BTreeMap<String, u32>,
        }
        let mut base = Outer::default();
        base.inner.tags.insert("kept".into(), 1);
        let with = |pairs: &[(&str, u32)]| {
            let mut copy = base.clone();
            for (key, value) in pairs {
                copy.inner.tags.insert((*key).into(), *value);
            }
            copy
        };
        let (one, two) = (with(&[("y", 2)]), with(&[("z", 3)]));
        let merged = merge_models(&base, [&one, &two]).unwrap();
        let tags: Vec<(&str, u32)> = merged
            .inner
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(tags, [("kept", 1), ("y", 2), ("z", 3)]);

        // Two branches adding one key is a conflict, even with one value.
        for other in [4, 2] {
            let err = merge_models(&base, [&one, &with(&[("y", other)])]).unwrap_err();
            let conflict = err.downcast_ref::<MergeConflict>().unwrap();
            assert_eq!(conflict.field(), "inner.tags.y");
        }
    }

    /// The conflict a merge of `branches` over `base` fails with.
    fn conflict<M: Mergeable + fmt::Debug>(base: &M, branches: &[M]) -> MergeConflict {
        let err = merge_models(base, branches).unwrap_err();
        err.downcast_ref::<MergeConflict>()
            .unwrap_or_else(|| panic!("not a merge conflict: {err}"))
            .clone()
    }

    #[test]
    fn a_field_two_branches_changed_conflicts_even_when_they_agree() {
        let base = Model::default();
        let mut one = base.clone();
        one.nested.a = 1;
        let mut two = base.clone();
        two.nested.a = 2;
        assert_eq!(conflict(&base, &[one.clone(), two]).field(), "nested.a");
        // The same value written twice is two writers, not one.
        let err = conflict(&base, &[one.clone(), one.clone()]);
        assert_eq!(err.field(), "nested.a");
        assert_eq!(
            err.to_string(),
            "2 branches changed the model field `nested.a` (values: 1; 1): a field changed by \
             more than one branch or item must say how to combine the changes: make it a `Sum` \
             (numbers add up) or an `Append` (lists concatenate), or a `Reduce`, or let one \
             branch write it"
        );
        // One writer among copies that left the field alone is no conflict.
        let merged = merge_models(&base, [&base, &one, &base]).unwrap();
        assert_eq!(merged.nested.a, 1);
    }

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Pages {
        ok: u32,
        ok_sum: Sum<u32>,
        seen: Append<u32>,
    }

    /// What 27 `for_each` items over pages leave: each counts an ok page
    /// (all but every fourth, so 21 of 27) and notes its page.
    fn page_copies(base: &Pages) -> Vec<Pages> {
        (0..27)
            .map(|page| {
                let mut copy = base.clone();
                if page % 4 != 3 {
                    copy.ok += 1;
                    copy.ok_sum += 1;
                }
                copy.seen.push(page);
                copy
            })
            .collect()
    }

    #[test]
    fn counting_in_every_item_conflicts_on_a_plain_field_and_adds_up_in_a_sum() {
        let base = Pages::default();
        let copies = page_copies(&base);
        // The bug this rule is for: every copy wrote `ok = 1`, which used to
        // merge as 1 instead of 21.
        let err = conflict(&base, &copies);
        assert_eq!(err.field(), "ok");
        assert!(
            err.to_string().starts_with(
                "21 branches changed the model field `ok` (values: 1; 1; 1; and 18 more): "
            ),
            "{err}"
        );
        // Without the plain counter, the `Sum` counts and the `Append` gathers in item order.
        let copies: Vec<Pages> = copies
            .into_iter()
            .map(|copy| Pages { ok: 0, ..copy })
            .collect();
        let merged = merge_models(&base, &copies).unwrap();
        assert_eq!(merged.ok_sum.0, 21);
        assert_eq!(merged.seen.0, (0..27).collect::<Vec<u32>>());
        // From a base that already counted, the items' changes add to it.
        let base = Pages {
            ok_sum: Sum(100),
            seen: Append(vec![99]),
            ..Pages::default()
        };
        let copies: Vec<Pages> = page_copies(&base)
            .into_iter()
            .map(|copy| Pages { ok: 0, ..copy })
            .collect();
        let merged = merge_models(&base, &copies).unwrap();
        assert_eq!(merged.ok_sum.0, 121);
        assert_eq!(merged.seen.len(), 28);
        assert_eq!(merged.seen[..3], [99, 0, 1]);
    }

    #[test]
    fn a_reduce_gets_every_change_even_equal_ones() {
        /// Counts how many branches changed the field.
        struct Writers;
        impl Reducer<u32> for Writers {
            fn reduce(base: &u32, changed: Vec<u32>) -> u32 {
                base + changed.len() as u32
            }
        }
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        struct Tally {
            writers: Reduce<u32, Writers>,
        }
        let mut copy = Tally::default();
        *copy.writers = 7;
        let merged = merge_models(&Tally::default(), [&copy, &Tally::default(), &copy]).unwrap();
        assert_eq!(*merged.writers, 2);
    }

    #[test]
    fn a_conflict_on_a_plain_model_names_the_whole_model_and_shortens_long_values() {
        let long = "x".repeat(100);
        let err = conflict(&String::new(), &[long.clone(), long, "y".into()]);
        assert_eq!(err.field(), "(the whole model)");
        let shown = format!("\"{}…", "x".repeat(SHOWN_CHARS - 1));
        assert!(
            err.to_string().starts_with(&format!(
                "3 branches changed the whole model (values: {shown}; {shown}; \"y\"): "
            )),
            "{err}"
        );
    }
}
