//! JSON Merge Patch (RFC 7386): the protocol's delta format.
//!
//! A patch is a JSON value shaped like the document: object members replace
//! or recurse, `null` removes a member, anything that is not an object
//! replaces the target whole. Compact and readable, with one limit: a patch
//! cannot set a member *to* `null`, so [`diff`] of a document whose objects
//! hold `null` members does not round-trip (the member is removed instead).

use serde_json::{Map, Value};
use sync_core::JsonObject;

use crate::members::with_counterparts;

/// The patch that turns `old` into `new`: only changed members, `null` for
/// removed ones, nested objects as nested patches.
pub fn diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => Value::Object(diff_objects(old, new)),
        _ => new.clone(),
    }
}

/// [`diff`] for two objects.
pub fn diff_objects(old: &JsonObject, new: &JsonObject) -> JsonObject {
    let mut patch = Map::new();
    let mut shared_keys = 0;
    for (key, old_value, new_value) in with_counterparts(old, new) {
        shared_keys += usize::from(new_value.is_some());
        match (old_value, new_value) {
            (_, None) => {
                patch.insert(key.clone(), Value::Null);
            }
            (Value::Object(old_member), Some(Value::Object(new_member))) => {
                let member_patch = diff_objects(old_member, new_member);
                if !member_patch.is_empty() {
                    patch.insert(key.clone(), Value::Object(member_patch));
                }
            }
            (_, Some(new_value)) if new_value != old_value => {
                patch.insert(key.clone(), new_value.clone());
            }
            (_, Some(_)) => {}
        }
    }
    if shared_keys < new.len() {
        for (key, new_value) in new {
            if !old.contains_key(key) {
                patch.insert(key.clone(), new_value.clone());
            }
        }
    }
    patch
}

/// `doc` with `patch` applied (RFC 7386 section 2). Never fails: every
/// value is a valid merge patch. Builds the result without first copying
/// the parts of `doc` the patch replaces.
pub fn apply(doc: &Value, patch: &Value) -> Value {
    apply_patch(doc, patch)
}

/// [`apply`] for a patch the caller no longer needs: the same result, with
/// the patch's values moved into it instead of copied.
pub fn apply_owned(doc: &Value, patch: Value) -> Value {
    apply_patch(doc, patch)
}

/// Applies `patch` to `doc` in place.
pub fn apply_in_place(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(target) = doc {
        apply_members(target, patch);
    }
}

fn apply_members(target: &mut JsonObject, patch: &JsonObject) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            apply_in_place(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Applies an object patch to an object document: the shape of every
/// document update.
pub fn apply_to_object(doc: &JsonObject, patch: &JsonObject) -> JsonObject {
    apply_members_to(doc, patch)
}

/// [`apply_to_object`] for a patch the caller no longer needs: the same
/// result, with the patch's values moved into it instead of copied.
pub fn apply_to_object_owned(doc: &JsonObject, patch: JsonObject) -> JsonObject {
    apply_members_to(doc, patch)
}

/// A merge patch, borrowed (its values copied into the result) or owned
/// (moved there): [`apply`] and [`apply_owned`] share one walk.
trait PatchSource: Sized {
    /// The members of an object patch.
    type Members: MemberSource<Patch = Self>;

    /// The members if the patch is an object, else the value that replaces
    /// the target.
    fn members_or_replacement(self) -> Result<Self::Members, Value>;

    fn is_null(&self) -> bool;
}

/// The members of an object patch, taken one key at a time.
trait MemberSource {
    type Patch: PatchSource<Members = Self>;

    /// The patch for the target's member `key`. Called at most once per key.
    fn take(&mut self, key: &str) -> Option<Self::Patch>;

    /// The non-null patches for keys that `target` lacks, with their keys.
    /// Only called after [`take`](Self::take) was called for each of
    /// `target`'s keys.
    fn into_new_members(self, target: &JsonObject) -> impl Iterator<Item = (String, Self::Patch)>;
}

impl<'a> PatchSource for &'a Value {
    type Members = &'a JsonObject;

    fn members_or_replacement(self) -> Result<&'a JsonObject, Value> {
        match self {
            Value::Object(members) => Ok(members),
            _ => Err(self.clone()),
        }
    }

    fn is_null(&self) -> bool {
        Value::is_null(self)
    }
}

impl<'a> MemberSource for &'a JsonObject {
    type Patch = &'a Value;

    fn take(&mut self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    fn into_new_members(self, target: &JsonObject) -> impl Iterator<Item = (String, &'a Value)> {
        self.iter()
            .filter(|(key, patch)| !patch.is_null() && !target.contains_key(*key))
            .map(|(key, patch)| (key.clone(), patch))
    }
}

impl PatchSource for Value {
    type Members = JsonObject;

    fn members_or_replacement(self) -> Result<JsonObject, Value> {
        match self {
            Value::Object(members) => Ok(members),
            _ => Err(self),
        }
    }

    fn is_null(&self) -> bool {
        Value::is_null(self)
    }
}

impl MemberSource for JsonObject {
    type Patch = Value;

    /// Leaves `null` in the member's place, so that the members not taken
    /// are the non-null ones left.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.get_mut(key).map(std::mem::take)
    }

    fn into_new_members(self, _target: &JsonObject) -> impl Iterator<Item = (String, Value)> {
        self.into_iter().filter(|(_, patch)| !patch.is_null())
    }
}

fn apply_patch<P: PatchSource>(doc: &Value, patch: P) -> Value {
    match (doc, patch.members_or_replacement()) {
        (_, Err(replacement)) => replacement,
        (Value::Object(target), Ok(members)) => Value::Object(apply_members_to(target, members)),
        (_, Ok(members)) => Value::Object(apply_members_to(&Map::new(), members)),
    }
}

fn apply_members_to<M: MemberSource>(target: &JsonObject, mut patch: M) -> JsonObject {
    let mut result = Map::new();
    for (key, value) in target {
        match patch.take(key) {
            None => {
                result.insert(key.clone(), value.clone());
            }
            Some(member_patch) if member_patch.is_null() => {}
            Some(member_patch) => {
                result.insert(key.clone(), apply_patch(value, member_patch));
            }
        }
    }
    for (key, member_patch) in patch.into_new_members(target) {
        result.insert(key, apply_patch(&Value::Null, member_patch));
    }
    result
}

/// One patch with the effect of applying `first` then `second` to any
/// object (to coalesce queued updates of one document), or `None` where no
/// single merge patch has that effect: `first` sets a member to a
/// non-object (or removes it) and `second` patches it as an object, which
/// merges into whatever the target holds instead of replacing it.
pub fn compose(first: &JsonObject, second: &JsonObject) -> Option<JsonObject> {
    let mut result = first.clone();
    for (key, value) in second {
        match (result.get_mut(key), value) {
            (Some(Value::Object(earlier)), Value::Object(later)) => {
                *earlier = compose(earlier, later)?;
            }
            (Some(_), Value::Object(_)) => return None,
            _ => {
                result.insert(key.clone(), value.clone());
            }
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 7386 Appendix A, every example.
    #[test]
    fn rfc_7386_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (doc, patch, expected) in cases {
            assert_eq!(apply(&doc, &patch), expected, "{doc} + {patch}");
        }
    }

    #[test]
    fn diff_lists_changed_members_only() {
        let old = json!({"title": "a", "done": false, "tags": ["x"], "meta": {"n": 1, "m": 2}});
        let new = json!({"title": "a", "done": true, "meta": {"n": 1, "m": 3}});
        let patch = diff(&old, &new);
        assert_eq!(patch, json!({"done": true, "tags": null, "meta": {"m": 3}}));
        assert_eq!(apply(&old, &patch), new);
    }

    #[test]
    fn compose_equals_applying_in_turn() {
        let doc = json!({"a": 1, "o": {"x": 1, "y": 2}})
            .as_object()
            .cloned()
            .unwrap();
        let first = json!({"a": 2, "o": {"x": null}, "n": 1})
            .as_object()
            .cloned()
            .unwrap();
        let second = json!({"a": null, "o": {"z": 3}, "n": 2})
            .as_object()
            .cloned()
            .unwrap();
        let composed = compose(&first, &second).unwrap();
        assert_eq!(
            apply_to_object(&doc, &composed),
            apply_to_object(&apply_to_object(&doc, &first), &second)
        );
        let replaces_then_patches = json!({"n": {"k": 1}}).as_object().cloned().unwrap();
        assert_eq!(compose(&first, &replaces_then_patches), None);
    }
}
