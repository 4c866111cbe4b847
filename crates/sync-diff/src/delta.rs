//! Field-level deltas: which fields were added, modified and removed, by
//! nested path. The readable format, for inspection, analytics and the
//! conflict engine's "which fields changed" questions.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DiffError;
use crate::members::with_counterparts;
use crate::path::FieldPath;

/// The difference of two documents by field. Nested objects recurse, so a
/// change deep inside `address` is reported at `address.city`; arrays and
/// scalars are leaves. A value whose type changes is a modification.
///
/// Serialised as `{"added": {...}, "modified": {...}, "removed": [...]}` with
/// paths as JSON Pointers (`/address/city`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldDelta {
    /// Fields that did not exist before, with their values.
    #[serde(default)]
    pub added: BTreeMap<FieldPath, Value>,
    /// Fields whose value changed, with the new value.
    #[serde(default)]
    pub modified: BTreeMap<FieldPath, Value>,
    /// Fields that no longer exist.
    #[serde(default)]
    pub removed: BTreeSet<FieldPath>,
}

impl FieldDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// How many fields changed.
    pub fn len(&self) -> usize {
        self.added.len() + self.modified.len() + self.removed.len()
    }

    /// Every changed path, in order.
    pub fn changed_paths(&self) -> BTreeSet<&FieldPath> {
        self.added
            .keys()
            .chain(self.modified.keys())
            .chain(&self.removed)
            .collect()
    }

    /// The top-level fields that changed (`address` for `address.city`);
    /// the root itself is reported as the empty string.
    pub fn changed_top_level_fields(&self) -> BTreeSet<String> {
        self.changed_paths()
            .into_iter()
            .map(|path| path.top_level().unwrap_or_default().to_owned())
            .collect()
    }

    /// The value a changed path has after the change; `None` when removed
    /// or unchanged.
    pub fn new_value(&self, path: &FieldPath) -> Option<&Value> {
        self.added.get(path).or_else(|| self.modified.get(path))
    }
}

/// The field delta from `old` to `new`.
pub fn diff(old: &Value, new: &Value) -> FieldDelta {
    let mut delta = FieldDelta::default();
    diff_at(&mut Vec::new(), old, new, &mut delta);
    delta
}

/// Records the differences of `old` and `new`, found at `path` (the keys
/// from the root), into `delta`.
fn diff_at<'a>(path: &mut Vec<&'a str>, old: &'a Value, new: &'a Value, delta: &mut FieldDelta) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            let mut shared_keys = 0;
            for (key, old_value, new_value) in with_counterparts(old_map, new_map) {
                path.push(key);
                match new_value {
                    Some(new_value) => {
                        shared_keys += 1;
                        diff_at(path, old_value, new_value, delta);
                    }
                    None => {
                        delta.removed.insert(FieldPath::new(path.iter().copied()));
                    }
                }
                path.pop();
            }
            if shared_keys < new_map.len() {
                for (key, new_value) in new_map {
                    if !old_map.contains_key(key) {
                        path.push(key);
                        delta
                            .added
                            .insert(FieldPath::new(path.iter().copied()), new_value.clone());
                        path.pop();
                    }
                }
            }
        }
        _ if old != new => {
            delta
                .modified
                .insert(FieldPath::new(path.iter().copied()), new.clone());
        }
        _ => {}
    }
}

/// `doc` with `delta` applied. Each path must fit: an added field must not
/// exist yet and its parent must be an object; modified and removed fields
/// must exist. On error `doc` is untouched (the delta is applied to a copy).
pub fn apply(doc: &Value, delta: &FieldDelta) -> Result<Value, DiffError> {
    let result = clone_leaving_out(doc, 0, &overwritten_paths(delta));
    apply_changes(result, &delta.removed, &delta.modified, &delta.added)
}

/// [`apply`] for a delta the caller no longer needs: the same result or
/// error, with the delta's values moved into the result instead of copied.
pub fn apply_owned(doc: &Value, delta: FieldDelta) -> Result<Value, DiffError> {
    let result = clone_leaving_out(doc, 0, &overwritten_paths(&delta));
    apply_changes(result, &delta.removed, delta.modified, delta.added)
}

/// A value of a delta: borrowed, and copied into the result, or owned,
/// and moved there.
trait DeltaValue {
    fn into_value(self) -> Value;
}

impl DeltaValue for &Value {
    fn into_value(self) -> Value {
        self.clone()
    }
}

impl DeltaValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

/// Applies a delta's removals, then its modifications, then its additions
/// to `result`, the document copied without what the delta overwrites.
fn apply_changes<P: Borrow<FieldPath>, V: DeltaValue>(
    mut result: Value,
    removed: &BTreeSet<FieldPath>,
    modified: impl IntoIterator<Item = (P, V)>,
    added: impl IntoIterator<Item = (P, V)>,
) -> Result<Value, DiffError> {
    for path in removed {
        let (parent, key) = parent_object(&mut result, path)?;
        parent
            .remove(key)
            .ok_or_else(|| mismatch(path, "removed field does not exist"))?;
    }
    for (path, value) in modified {
        let path = path.borrow();
        if path.is_root() {
            result = value.into_value();
            continue;
        }
        let (parent, key) = parent_object(&mut result, path)?;
        let slot = parent
            .get_mut(key)
            .ok_or_else(|| mismatch(path, "modified field does not exist"))?;
        *slot = value.into_value();
    }
    for (path, value) in added {
        let path = path.borrow();
        let (parent, key) = parent_object(&mut result, path)?;
        if parent.contains_key(key) {
            return Err(mismatch(path, "added field already exists"));
        }
        parent.insert(key.to_owned(), value.into_value());
    }
    Ok(result)
}

/// The removed and modified paths whose old value nothing in `delta` reads:
/// no other path of the delta lies inside them. Applying the delta only
/// drops or overwrites what the document holds there, so [`apply`] need not
/// copy it. Sorted, and none lies inside another.
fn overwritten_paths(delta: &FieldDelta) -> Vec<&[String]> {
    let mut paths: Vec<(&[String], bool)> = delta
        .removed
        .iter()
        .chain(delta.modified.keys())
        .map(|path| (path.segments(), true))
        .chain(delta.added.keys().map(|path| (path.segments(), false)))
        .collect();
    // A path both added and overwritten sorts `true` last, so that entry decides.
    paths.sort_unstable();
    paths
        .iter()
        .enumerate()
        .filter(|&(index, &(path, overwritten))| {
            overwritten
                && paths
                    .get(index + 1)
                    .is_none_or(|&(next, _)| !next.starts_with(path))
        })
        .map(|(_, &(path, _))| path)
        .collect()
}

/// A copy of `value`, which lies `depth` keys below the root, with `null`
/// in place of whatever lies at `left_out`: paths sorted, none inside
/// another, each starting with the keys that lead to `value`.
fn clone_leaving_out(value: &Value, depth: usize, left_out: &[&[String]]) -> Value {
    match (value, left_out) {
        (_, []) => value.clone(),
        (_, [first, ..]) if first.len() == depth => Value::Null,
        (Value::Object(map), _) => {
            let mut remaining = left_out;
            let copy = map
                .iter()
                .map(|(key, member)| {
                    remaining = &remaining[remaining.partition_point(|path| path[depth] < *key)..];
                    let (inside, after) =
                        remaining.split_at(remaining.partition_point(|path| path[depth] == *key));
                    remaining = after;
                    (key.clone(), clone_leaving_out(member, depth + 1, inside))
                })
                .collect();
            Value::Object(copy)
        }
        _ => value.clone(),
    }
}

fn mismatch(path: &FieldPath, reason: &'static str) -> DiffError {
    DiffError::DeltaMismatch {
        path: path.to_string(),
        reason,
    }
}

/// The object holding the last segment of `path`, and that segment.
fn parent_object<'a, 'p>(
    doc: &'a mut Value,
    path: &'p FieldPath,
) -> Result<(&'a mut Map<String, Value>, &'p str), DiffError> {
    let (last, parents) = path
        .segments()
        .split_last()
        .ok_or_else(|| mismatch(path, "the root can only be modified"))?;
    let mut current = doc;
    for segment in parents {
        current = current
            .as_object_mut()
            .and_then(|map| map.get_mut(segment))
            .ok_or_else(|| mismatch(path, "parent field does not exist"))?;
    }
    let parent = current
        .as_object_mut()
        .ok_or_else(|| mismatch(path, "parent is not an object"))?;
    Ok((parent, last.as_str()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_nested_paths() {
        let old = json!({"name": "John", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a"], "age": 30});
        let new = json!({"name": "John", "address": {"city": "Bergen", "street": "Main"}, "tags": ["a", "b"], "age": "30"});
        let delta = diff(&old, &new);
        assert_eq!(
            serde_json::to_value(&delta).unwrap(),
            json!({
                "added": {"/address/street": "Main"},
                "modified": {"/address/city": "Bergen", "/age": "30", "/tags": ["a", "b"]},
                "removed": ["/address/zip"]
            })
        );
        assert_eq!(
            delta
                .changed_top_level_fields()
                .into_iter()
                .collect::<Vec<_>>(),
            ["address", "age", "tags"]
        );
        assert_eq!(apply(&old, &delta).unwrap(), new);
        let back: FieldDelta =
            serde_json::from_value(serde_json::to_value(&delta).unwrap()).unwrap();
        assert_eq!(back, delta);
    }

    #[test]
    fn a_delta_that_does_not_fit_is_an_error_and_changes_nothing() {
        let doc = json!({"a": 1, "o": {"x": 1}});
        let cases = [
            json!({"added": {"/a": 2}}),
            json!({"modified": {"/missing": 2}}),
            json!({"removed": ["/missing"]}),
            json!({"added": {"/a/x": 2}}),
            json!({"added": {"/nope/x": 2}}),
            json!({"modified": {"/o/x": 2}, "removed": ["/gone"]}),
        ];
        for case in cases {
            let delta: FieldDelta = serde_json::from_value(case.clone()).unwrap();
            assert!(
                matches!(apply(&doc, &delta), Err(DiffError::DeltaMismatch { .. })),
                "{case}"
            );
        }
    }

    #[test]
    fn non_object_roots_are_modified_whole() {
        let delta = diff(&json!([1]), &json!({"a": 1}));
        assert_eq!(
            delta.modified.get(&FieldPath::root()),
            Some(&json!({"a": 1}))
        );
        assert_eq!(apply(&json!([1]), &delta).unwrap(), json!({"a": 1}));
        assert!(diff(&json!(3), &json!(3)).is_empty());
    }
}
