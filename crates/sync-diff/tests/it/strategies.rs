//! Shared proptest strategies: random JSON documents and edits of them.

use proptest::prelude::*;
use serde_json::{Map, Value};

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
