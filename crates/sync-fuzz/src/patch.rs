//! `patch_apply`: JSON documents through `sync_diff`: RFC 7386 merge
//! patches (the protocol's delta format), RFC 6902 JSON Patch with RFC 6901
//! pointers, and field deltas.

use serde_json::{Map, Value};
use sync_diff::{FieldDelta, Patch, delta, json_patch, merge_patch};

/// Splits `data` at NUL bytes into up to three JSON documents `a`, `b`,
/// `c` and checks, where they parse:
///
/// - `diff(a, b)` applied to `a` gives `b`, for JSON Patch and field deltas
///   (also after the patch's own JSON round trip), and for merge patches
///   when `b` holds no `null` member (which a merge patch cannot set);
/// - applying a merge patch in place gives what `apply` gives;
/// - composing the merge patches `b` then `c` has the effect of applying
///   them in turn, whenever `compose` says it can;
/// - `c` (or `b`) read as a JSON Patch applies all or nothing, and a
///   failed apply leaves the document as it was;
/// - `json_equal` is reflexive and symmetric.
pub fn patch_apply(data: &[u8]) {
    let parts = crate::split::split(data, 3);
    let docs: Vec<Option<Value>> = parts.iter().map(|part| crate::split::json(part)).collect();
    let (Some(Some(a)), Some(Some(b))) = (docs.first(), docs.get(1)) else {
        if let Some(Some(a)) = docs.first() {
            assert!(json_patch::json_equal(a, a));
        }
        return;
    };
    let c = docs.get(2).cloned().flatten();

    // JSON Patch.
    let patch = json_patch::diff(a, b);
    assert_eq!(
        json_patch::apply(a, &patch).as_ref(),
        Ok(b),
        "JSON Patch {patch:?} of {a} to {b}"
    );
    let wire = serde_json::to_value(&patch).unwrap_or_default();
    let back: Patch = serde_json::from_value(wire.clone())
        .unwrap_or_else(|error| panic!("JSON Patch {wire} does not read back: {error}"));
    assert_eq!(back, patch, "JSON Patch {wire} changed in a round trip");

    // Field deltas.
    let field_delta = delta::diff(a, b);
    assert_eq!(
        delta::apply(a, &field_delta).as_ref(),
        Ok(b),
        "field delta {field_delta:?} of {a} to {b}"
    );
    let wire = serde_json::to_value(&field_delta).unwrap_or_default();
    let back: FieldDelta = serde_json::from_value(wire.clone())
        .unwrap_or_else(|error| panic!("field delta {wire} does not read back: {error}"));
    assert_eq!(
        back, field_delta,
        "field delta {wire} changed in a round trip"
    );

    // Merge patches.
    let target = without_null_members(b);
    let merge = merge_patch::diff(a, &target);
    assert_eq!(
        merge_patch::apply(a, &merge),
        target,
        "merge patch {merge} of {a} to {target}"
    );
    let mut in_place = a.clone();
    merge_patch::apply_in_place(&mut in_place, b);
    assert_eq!(
        in_place,
        merge_patch::apply(a, b),
        "{b} applied in place to {a}"
    );
    if let (Value::Object(doc), Value::Object(first), Some(Value::Object(second))) = (a, b, &c)
        && let Some(composed) = merge_patch::compose(first, second)
    {
        let in_turn =
            merge_patch::apply_to_object(&merge_patch::apply_to_object(doc, first), second);
        assert_eq!(
            merge_patch::apply_to_object(doc, &composed),
            in_turn,
            "compose({first:?}, {second:?}) = {composed:?} on {doc:?}"
        );
    }

    // A document read as a JSON Patch, applied all or nothing.
    for ops in [c.as_ref(), Some(b)].into_iter().flatten() {
        let Ok(patch) = serde_json::from_value::<Patch>(ops.clone()) else {
            continue;
        };
        let before = a.clone();
        let first = json_patch::apply(a, &patch);
        assert_eq!(a, &before, "a failed JSON Patch changed the document");
        assert_eq!(
            first,
            json_patch::apply(a, &patch),
            "apply is not deterministic"
        );
        if let Ok(result) = first {
            // Undoing by diff lands back on the original.
            let undo = json_patch::diff(&result, a);
            assert_eq!(json_patch::apply(&result, &undo).as_ref(), Ok(a));
        }
    }

    for (x, y) in [(a, b), (b, a)] {
        assert!(json_patch::json_equal(x, x), "{x} is not equal to itself");
        assert_eq!(json_patch::json_equal(x, y), json_patch::json_equal(y, x));
    }
}

/// `value` without the `null` members of its objects (reached through
/// objects only: an array is a value of its own in a merge patch).
fn without_null_members(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, member)| !member.is_null())
                .map(|(key, member)| (key.clone(), without_null_members(member)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}
