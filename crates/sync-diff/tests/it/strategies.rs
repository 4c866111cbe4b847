//! Shared proptest strategies: random JSON documents and edits of them.

use proptest::prelude::*;
use serde_json::{Map, Value};
use sync_diff::{FieldDelta, FieldPath, JsonPointer, PatchOperation, delta, merge_patch};

/// Keys from a small alphabet, so two random documents share many keys,
/// including the pointer-escaping characters `/` and `~` and dots.
pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("title".to_owned()),
        Just("a/b".to_owned()),
        Just("~x".to_owned()),
        Just("x.y".to_owned()),
        "[a-d]{1,2}",
    ]
}

fn scalar(allow_null: bool) -> BoxedStrategy<Value> {
    let mut options = vec![
        any::<bool>().prop_map(Value::from).boxed(),
        (-1000i64..1000).prop_map(Value::from).boxed(),
        (-1.0e6f64..1.0e6).prop_map(Value::from).boxed(),
        "[a-z ]{0,6}".prop_map(Value::from).boxed(),
    ];
    if allow_null {
        options.push(Just(Value::Null).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

/// Any JSON value, nested up to a few levels.
pub(crate) fn value(allow_null_members: bool) -> BoxedStrategy<Value> {
    scalar(allow_null_members)
        .prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..5)
                    .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// A JSON object document.
pub(crate) fn document(allow_null_members: bool) -> BoxedStrategy<Value> {
    proptest::collection::btree_map(key(), value(allow_null_members), 0..6)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
        .boxed()
}

/// Whether any object inside `value` has a `null` member (merge patches
/// cannot express setting one).
pub(crate) fn has_null_member(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.values().any(|v| v.is_null() || has_null_member(v)),
        Value::Array(items) => items.iter().any(has_null_member),
        _ => false,
    }
}

/// Paths up to three keys deep from the strategies' small alphabet, so that
/// they often name fields of the generated documents, and sometimes lie
/// inside one another.
fn path() -> impl Strategy<Value = FieldPath> {
    proptest::collection::vec(key(), 0..4).prop_map(FieldPath::new)
}

/// Field deltas that may or may not fit a given document.
pub(crate) fn any_delta() -> impl Strategy<Value = FieldDelta> {
    (
        proptest::collection::btree_map(path(), value(true), 0..4),
        proptest::collection::btree_map(path(), value(true), 0..4),
        proptest::collection::btree_set(path(), 0..4),
    )
        .prop_map(|(added, modified, removed)| FieldDelta {
            added,
            modified,
            removed,
        })
}

/// A document and an edit of it, sharing most of their structure.
pub(crate) fn document_and_edit() -> impl Strategy<Value = (Value, Value)> {
    (document(true), document(true), any::<bool>()).prop_map(|(a, b, merged)| {
        if merged {
            let edited = merge_patch::apply(&a, &b);
            (a, edited)
        } else {
            (a, b)
        }
    })
}

/// Pointers up to three tokens deep, from the keys and a few array indexes
/// (and `-`), so that they often name values of the generated documents.
pub(crate) fn pointer() -> impl Strategy<Value = JsonPointer> {
    let token = prop_oneof![
        3 => key(),
        1 => Just("0".to_owned()),
        1 => Just("1".to_owned()),
        1 => Just("-".to_owned()),
    ];
    proptest::collection::vec(token, 0..4).prop_map(JsonPointer::from_segments)
}

/// Any JSON Patch operation; most fail on a given document, some apply.
pub(crate) fn operation() -> impl Strategy<Value = PatchOperation> {
    prop_oneof![
        (pointer(), value(true)).prop_map(|(path, value)| PatchOperation::Add { path, value }),
        pointer().prop_map(|path| PatchOperation::Remove { path }),
        (pointer(), value(true)).prop_map(|(path, value)| PatchOperation::Replace { path, value }),
        (pointer(), pointer()).prop_map(|(from, path)| PatchOperation::Move { from, path }),
        (pointer(), pointer()).prop_map(|(from, path)| PatchOperation::Copy { from, path }),
        (pointer(), value(true)).prop_map(|(path, value)| PatchOperation::Test { path, value }),
    ]
}

/// A document and a field delta that mostly fits it: the diff to an edit
/// of it, with random entries that may not fit added.
pub(crate) fn document_and_mostly_fitting_delta() -> impl Strategy<Value = (Value, FieldDelta)> {
    (document_and_edit(), any_delta()).prop_map(|((a, b), extra)| {
        let mut delta = delta::diff(&a, &b);
        delta.added.extend(extra.added);
        delta.modified.extend(extra.modified);
        delta.removed.extend(extra.removed);
        (a, delta)
    })
}
