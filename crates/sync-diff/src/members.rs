//! Pairing the members of two objects by key, for the diffs.

use serde_json::{Map, Value};

/// Each member of `left` with the member of `right` under the same key, if
/// any, in `left`'s order. Two versions of one object usually list the same
/// keys in the same order, so each member is first matched against the one
/// at the same position in `right`, and looked up only when that differs.
pub(crate) fn with_counterparts<'a>(
    left: &'a Map<String, Value>,
    right: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a String, &'a Value, Option<&'a Value>)> {
    let mut right_in_order = right.iter();
    left.iter().map(move |(key, value)| {
        let counterpart = match right_in_order.next() {
            Some((right_key, right_value)) if right_key == key => Some(right_value),
            _ => right.get(key),
        };
        (key, value, counterpart)
    })
}
