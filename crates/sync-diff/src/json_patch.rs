//! JSON Patch (RFC 6902): a list of operations on JSON Pointer paths.
//!
//! [`apply`] works on a copy of the document, so a patch whose fifth
//! operation fails leaves the caller's document exactly as it was (RFC 6902
//! section 5: a patch is applied as a whole or not at all).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DiffError;
use crate::members::with_counterparts;
use crate::pointer::{JsonPointer, parse_index, resolve_mut};

/// One operation of a JSON Patch, in the RFC's wire shape
/// (`{"op": "add", "path": "/a", "value": 1}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOperation {
    /// Adds a member, inserts into an array (`-` appends) or replaces the root.
    Add {
        /// Where to add.
        path: JsonPointer,
        /// What to add.
        value: Value,
    },
    /// Removes the target, which must exist.
    Remove {
        /// What to remove.
        path: JsonPointer,
    },
    /// Replaces the target, which must exist.
    Replace {
        /// What to replace.
        path: JsonPointer,
        /// The new value.
        value: Value,
    },
    /// Removes the value at `from` and adds it at `path`.
    Move {
        /// Where the value is now.
        from: JsonPointer,
        /// Where it goes.
        path: JsonPointer,
    },
    /// Adds a copy of the value at `from` at `path`.
    Copy {
        /// Where the value is.
        from: JsonPointer,
        /// Where the copy goes.
        path: JsonPointer,
    },
    /// Fails the whole patch unless the target equals `value`.
    Test {
        /// What to compare.
        path: JsonPointer,
        /// The expected value.
        value: Value,
    },
}

/// A JSON Patch document: operations applied in order, all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Patch(pub Vec<PatchOperation>);

impl Patch {
    /// Whether the patch has no operations.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many operations it has.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// `doc` with `patch` applied, or the first operation's error (and `doc`
/// untouched).
pub fn apply(doc: &Value, patch: &Patch) -> Result<Value, DiffError> {
    let mut result = doc.clone();
    for operation in &patch.0 {
        apply_operation(&mut result, operation)?;
    }
    Ok(result)
}

/// [`apply`] for a patch the caller no longer needs: the same result or
/// error, with the values of `add` and `replace` operations moved into the
/// result instead of copied.
pub fn apply_owned(doc: &Value, patch: Patch) -> Result<Value, DiffError> {
    let mut result = doc.clone();
    for operation in patch.0 {
        match operation {
            PatchOperation::Add { path, value } => add(&mut result, &path, value)?,
            PatchOperation::Replace { path, value } => replace(&mut result, &path, value)?,
            operation => apply_operation(&mut result, &operation)?,
        }
    }
    Ok(result)
}

fn apply_operation(doc: &mut Value, operation: &PatchOperation) -> Result<(), DiffError> {
    match operation {
        PatchOperation::Add { path, value } => add(doc, path, value.clone()),
        PatchOperation::Remove { path } => remove(doc, path).map(drop),
        PatchOperation::Replace { path, value } => replace(doc, path, value.clone()),
        PatchOperation::Move { from, path } => {
            if path.is_proper_descendant_of(from) {
                return Err(DiffError::MoveIntoChild {
                    from: from.to_string(),
                    path: path.to_string(),
                });
            }
            if from == path {
                return from.get(doc).map(drop);
            }
            let value = remove(doc, from)?;
            add(doc, path, value)
        }
        PatchOperation::Copy { from, path } => {
            let value = from.get(doc)?.clone();
            add(doc, path, value)
        }
        PatchOperation::Test { path, value } => {
            if json_equal(path.get(doc)?, value) {
                Ok(())
            } else {
                Err(DiffError::TestFailed {
                    path: path.to_string(),
                })
            }
        }
    }
}

fn replace(doc: &mut Value, path: &JsonPointer, value: Value) -> Result<(), DiffError> {
    *path.get_mut(doc)? = value;
    Ok(())
}

fn add(doc: &mut Value, path: &JsonPointer, value: Value) -> Result<(), DiffError> {
    let Some((parent_tokens, token)) = path.split_last_token() else {
        *doc = value;
        return Ok(());
    };
    match resolve_mut(parent_tokens, doc)? {
        Value::Object(map) => {
            map.insert(token.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if token == "-" {
                items.len()
            } else {
                parse_index(token, path)?
            };
            if index > items.len() {
                return Err(DiffError::IndexOutOfRange {
                    path: path.to_string(),
                    index,
                    len: items.len(),
                });
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(DiffError::NotAContainer {
            path: path.to_string(),
        }),
    }
}

fn remove(doc: &mut Value, path: &JsonPointer) -> Result<Value, DiffError> {
    let (parent_tokens, token) = path.split_last_token().ok_or(DiffError::RemoveRoot)?;
    match resolve_mut(parent_tokens, doc)? {
        Value::Object(map) => map.remove(token).ok_or_else(|| DiffError::PathNotFound {
            path: path.to_string(),
        }),
        Value::Array(items) => {
            let index = parse_index(token, path)?;
            if index >= items.len() {
                return Err(DiffError::IndexOutOfRange {
                    path: path.to_string(),
                    index,
                    len: items.len(),
                });
            }
            Ok(items.remove(index))
        }
        _ => Err(DiffError::PathNotFound {
            path: path.to_string(),
        }),
    }
}

/// Equality as RFC 6902 section 4.6 defines it for `test`: numbers compare
/// by value (`1` equals `1.0`), objects regardless of member order.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || (x.as_f64().is_some() && x.as_f64() == y.as_f64() && (x.is_f64() || y.is_f64()))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| json_equal(value, other)))
        }
        _ => a == b,
    }
}

/// A patch that turns `old` into `new`: recursive for objects; for arrays,
/// the common head and tail are shared_keys and only the middle is patched.
pub fn diff(old: &Value, new: &Value) -> Patch {
    let mut changes = Vec::new();
    diff_at(&mut Vec::new(), old, new, &mut changes);
    Patch(changes.into_iter().map(Change::into_operation).collect())
}

/// One step of the path being diffed, shared_keys borrowed until a change needs it
/// as a pointer.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn pointer(path: &[Step<'_>]) -> JsonPointer {
    JsonPointer::from_segments(path.iter().map(|step| match *step {
        Step::Key(key) => key.to_owned(),
        Step::Index(index) => index.to_string(),
    }))
}

/// An operation of the patch being built, borrowing its value from the new
/// document: smaller than a [`PatchOperation`], so that gathering them
/// moves less, and the patch itself is allocated once, at its final size.
enum Change<'a> {
    Add(JsonPointer, &'a Value),
    Remove(JsonPointer),
    Replace(JsonPointer, &'a Value),
}

impl Change<'_> {
    fn into_operation(self) -> PatchOperation {
        match self {
            Change::Add(path, value) => PatchOperation::Add {
                path,
                value: value.clone(),
            },
            Change::Remove(path) => PatchOperation::Remove { path },
            Change::Replace(path, value) => PatchOperation::Replace {
                path,
                value: value.clone(),
            },
        }
    }
}

/// Appends the changes that turn `old` into `new`, both found at `path`.
fn diff_at<'a>(
    path: &mut Vec<Step<'a>>,
    old: &'a Value,
    new: &'a Value,
    changes: &mut Vec<Change<'a>>,
) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            let mut shared_keys = 0;
            for (key, old_value, new_value) in with_counterparts(old_map, new_map) {
                path.push(Step::Key(key));
                match new_value {
                    Some(new_value) => {
                        shared_keys += 1;
                        diff_at(path, old_value, new_value, changes);
                    }
                    None => changes.push(Change::Remove(pointer(path))),
                }
                path.pop();
            }
            if shared_keys < new_map.len() {
                for (key, new_value) in new_map {
                    if !old_map.contains_key(key) {
                        path.push(Step::Key(key));
                        changes.push(Change::Add(pointer(path), new_value));
                        path.pop();
                    }
                }
            }
        }
        (Value::Array(old_items), Value::Array(new_items)) => {
            diff_arrays(path, old_items, new_items, changes);
        }
        _ if old != new => changes.push(Change::Replace(pointer(path), new)),
        _ => {}
    }
}

fn diff_arrays<'a>(
    path: &mut Vec<Step<'a>>,
    old: &'a [Value],
    new: &'a [Value],
    changes: &mut Vec<Change<'a>>,
) {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_middle = &old[head..old.len() - tail];
    let new_middle = &new[head..new.len() - tail];
    let paired = old_middle.len().min(new_middle.len());
    for (offset, (old_item, new_item)) in old_middle.iter().zip(new_middle).enumerate() {
        if old_item != new_item {
            path.push(Step::Index(head + offset));
            diff_at(path, old_item, new_item, changes);
            path.pop();
        }
    }
    // Each removal shifts the next item into the same index.
    for _ in paired..old_middle.len() {
        path.push(Step::Index(head + paired));
        changes.push(Change::Remove(pointer(path)));
        path.pop();
    }
    for (offset, value) in new_middle.iter().enumerate().skip(paired) {
        path.push(Step::Index(head + offset));
        changes.push(Change::Add(pointer(path), value));
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(value: Value) -> Patch {
        serde_json::from_value(value).unwrap()
    }

    fn check(doc: Value, ops: Value, expected: Result<Value, fn(&DiffError) -> bool>) {
        let result = apply(&doc, &patch(ops.clone()));
        match (result, expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{ops}"),
            (Err(error), Err(matches)) => assert!(matches(&error), "{ops}: {error:?}"),
            (actual, _) => panic!("{ops}: unexpected {actual:?}"),
        }
    }

    /// RFC 6902 Appendix A, the examples that succeed.
    #[test]
    fn rfc_6902_appendix_a_successes() {
        let cases = [
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux"}]),
                json!({"baz":"qux","foo":"bar"}),
            ),
            (
                json!({"foo":["bar","baz"]}),
                json!([{"op":"add","path":"/foo/1","value":"qux"}]),
                json!({"foo":["bar","qux","baz"]}),
            ),
            (
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"remove","path":"/baz"}]),
                json!({"foo":"bar"}),
            ),
            (
                json!({"foo":["bar","qux","baz"]}),
                json!([{"op":"remove","path":"/foo/1"}]),
                json!({"foo":["bar","baz"]}),
            ),
            (
                json!({"baz":"qux","foo":"bar"}),
                json!([{"op":"replace","path":"/baz","value":"boo"}]),
                json!({"baz":"boo","foo":"bar"}),
            ),
            (
                json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
                json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]),
                json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}),
            ),
            (
                json!({"foo":["all","grass","cows","eat"]}),
                json!([{"op":"move","from":"/foo/1","path":"/foo/3"}]),
                json!({"foo":["all","cows","eat","grass"]}),
            ),
            (
                json!({"baz":"qux","foo":["a",2,"c"]}),
                json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]),
                json!({"baz":"qux","foo":["a",2,"c"]}),
            ),
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/child","value":{"grandchild":{}}}]),
                json!({"foo":"bar","child":{"grandchild":{}}}),
            ),
            (
                json!({"foo":"bar"}),
                json!([{"op":"add","path":"/baz","value":"qux","xyz":123}]),
                json!({"foo":"bar","baz":"qux"}),
            ),
            (
                json!({"foo":["bar"]}),
                json!([{"op":"add","path":"/foo/-","value":["abc","def"]}]),
                json!({"foo":["bar",["abc","def"]]}),
            ),
            (
                json!({"/":9,"~1":10}),
                json!([{"op":"test","path":"/~01","value":10}]),
                json!({"/":9,"~1":10}),
            ),
            (
                json!({"a": 1}),
                json!([{"op":"copy","from":"/a","path":"/b"}]),
                json!({"a":1,"b":1}),
            ),
            (
                json!({"a": 1}),
                json!([{"op":"add","path":"","value":[1]}]),
                json!([1]),
            ),
            (
                json!({"a": 1}),
                json!([{"op":"test","path":"/a","value":1.0}]),
                json!({"a":1}),
            ),
        ];
        for (doc, ops, expected) in cases {
            check(doc, ops, Ok(expected));
        }
    }

    /// RFC 6902 Appendix A error examples and every other error case.
    #[test]
    fn errors_leave_the_document_unchanged() {
        check(
            json!({"baz":"qux"}),
            json!([{"op":"test","path":"/baz","value":"bar"}]),
            Err(|e| matches!(e, DiffError::TestFailed { .. })),
        );
        check(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
            Err(|e| matches!(e, DiffError::PathNotFound { .. })),
        );
        check(
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":"10"}]),
            Err(|e| matches!(e, DiffError::TestFailed { .. })),
        );
        check(
            json!({"foo":["bar","baz"]}),
            json!([{"op":"add","path":"/foo/3","value":"x"}]),
            Err(|e| {
                matches!(
                    e,
                    DiffError::IndexOutOfRange {
                        index: 3,
                        len: 2,
                        ..
                    }
                )
            }),
        );
        check(
            json!({"foo":["bar"]}),
            json!([{"op":"add","path":"/foo/01","value":"x"}]),
            Err(|e| matches!(e, DiffError::InvalidIndex { .. })),
        );
        check(
            json!({"foo":["bar"]}),
            json!([{"op":"remove","path":"/foo/-"}]),
            Err(|e| matches!(e, DiffError::InvalidIndex { .. })),
        );
        check(
            json!({"foo":["bar"]}),
            json!([{"op":"remove","path":"/foo/1"}]),
            Err(|e| matches!(e, DiffError::IndexOutOfRange { .. })),
        );
        check(
            json!({"foo":"bar"}),
            json!([{"op":"remove","path":"/nope"}]),
            Err(|e| matches!(e, DiffError::PathNotFound { .. })),
        );
        check(
            json!({"foo":"bar"}),
            json!([{"op":"replace","path":"/nope","value":1}]),
            Err(|e| matches!(e, DiffError::PathNotFound { .. })),
        );
        check(
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/foo/x","value":1}]),
            Err(|e| matches!(e, DiffError::NotAContainer { .. })),
        );
        check(
            json!({"a":{"b":{}}}),
            json!([{"op":"move","from":"/a","path":"/a/b/c"}]),
            Err(|e| matches!(e, DiffError::MoveIntoChild { .. })),
        );
        check(
            json!({"a":1}),
            json!([{"op":"copy","from":"/x","path":"/b"}]),
            Err(|e| matches!(e, DiffError::PathNotFound { .. })),
        );
        check(
            json!({"a":1}),
            json!([{"op":"remove","path":""}]),
            Err(|e| matches!(e, DiffError::RemoveRoot)),
        );

        let doc = json!({"a": 1, "b": [1, 2]});
        let failing = patch(json!([
            {"op":"replace","path":"/a","value":2},
            {"op":"add","path":"/b/-","value":3},
            {"op":"test","path":"/a","value":1}
        ]));
        assert!(apply(&doc, &failing).is_err());
        assert_eq!(doc, json!({"a": 1, "b": [1, 2]}));
    }

    #[test]
    fn unknown_operations_and_missing_members_are_rejected_when_parsed() {
        for ops in [
            json!([{"op":"frobnicate","path":"/a"}]),
            json!([{"op":"add","path":"/a"}]),
            json!([{"op":"move","path":"/a"}]),
            json!([{"op":"add","path":"a","value":1}]),
        ] {
            assert!(
                serde_json::from_value::<Patch>(ops.clone()).is_err(),
                "{ops}"
            );
        }
    }

    #[test]
    fn diff_keeps_array_heads_and_tails() {
        let old = json!({"list": ["a", "b", "c", "d"], "gone": 1});
        let new = json!({"list": ["a", "x", "y", "c", "d"], "added": true});
        let generated = diff(&old, &new);
        assert_eq!(apply(&old, &generated).unwrap(), new);
        assert_eq!(
            serde_json::to_value(&generated).unwrap(),
            json!([
                {"op":"remove","path":"/gone"},
                {"op":"replace","path":"/list/1","value":"x"},
                {"op":"add","path":"/list/2","value":"y"},
                {"op":"add","path":"/added","value":true}
            ])
        );
    }
}
