//! Properties of every format: `apply(a, diff(a, b)) == b`, idempotent
//! merge patches, and no panic on any input (the text merge's laws are in
//! `text_merge`).

use proptest::prelude::*;
use serde_json::Value;
use sync_core::DiffCalculator;
use sync_diff::{
    FieldDeltaDiff, JsonPatchDiff, JsonPointer, MergePatchDiff, Patch, json_patch, merge_patch,
    text,
};

use crate::strategies::{document, has_null_member, value};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn field_delta_roundtrips(a in document(true), b in document(true)) {
        let delta = FieldDeltaDiff.diff(&a, &b);
        prop_assert_eq!(FieldDeltaDiff.apply(&a, &delta).unwrap(), b);
    }

    #[test]
    fn field_delta_roundtrips_any_values(a in value(true), b in value(true)) {
        let delta = FieldDeltaDiff.diff(&a, &b);
        prop_assert_eq!(FieldDeltaDiff.apply(&a, &delta).unwrap(), b);
    }

    #[test]
    fn json_patch_roundtrips(a in value(true), b in value(true)) {
        let patch = JsonPatchDiff.diff(&a, &b);
        prop_assert_eq!(JsonPatchDiff.apply(&a, &patch).unwrap(), b.clone());
        // The wire form survives a trip through JSON text.
        let wire: Patch = serde_json::from_str(&serde_json::to_string(&patch).unwrap()).unwrap();
        prop_assert_eq!(json_patch::apply(&a, &wire).unwrap(), b);
    }

    #[test]
    fn merge_patch_roundtrips_without_null_members(
        a in document(true),
        b in document(false).prop_filter("no null members", |b| !has_null_member(b)),
    ) {
        let patch = MergePatchDiff.diff(&a, &b);
        prop_assert_eq!(MergePatchDiff.apply(&a, &patch).unwrap(), b);
    }

    #[test]
    fn merge_patch_application_is_idempotent(a in value(true), patch in value(true)) {
        let once = merge_patch::apply(&a, &patch);
        prop_assert_eq!(merge_patch::apply(&once, &patch), once);
    }

    #[test]
    fn composed_merge_patches_equal_applying_in_turn(
        a in document(true), p in document(true), q in document(true),
    ) {
        let (a, p, q) = (a.as_object().unwrap(), p.as_object().unwrap(), q.as_object().unwrap());
        let in_turn = merge_patch::apply_to_object(&merge_patch::apply_to_object(a, p), q);
        if let Some(composed) = merge_patch::compose(p, q) {
            prop_assert_eq!(merge_patch::apply_to_object(a, &composed), in_turn);
        }
    }

    #[test]
    fn text_diff_roundtrips(a in "\\PC{0,40}", b in "\\PC{0,40}") {
        prop_assert_eq!(text::apply(&a, &text::diff(&a, &b)).unwrap(), b);
    }

    #[test]
    fn json_patch_apply_never_panics(doc in value(true), ops in proptest::collection::vec(value(true), 0..4)) {
        if let Ok(patch) = serde_json::from_value::<Patch>(Value::Array(ops)) {
            let before = doc.clone();
            let _ = json_patch::apply(&doc, &patch);
            prop_assert_eq!(doc, before);
        }
    }

    #[test]
    fn pointer_parse_never_panics(text in "\\PC{0,20}") {
        if let Ok(pointer) = JsonPointer::parse(&text) {
            prop_assert_eq!(JsonPointer::parse(&pointer.to_string()).unwrap(), pointer);
        }
    }
}

/// Hand-made JSON Patch documents in the RFC's shape, generated so that many
/// are valid: every one either applies or fails with a typed error.
#[test]
fn every_error_is_a_value() {
    let doc = serde_json::json!({"a": {"b": [1, 2, {"c": 3}]}, "d": "x"});
    let paths = [
        "", "/a", "/a/b", "/a/b/0", "/a/b/-", "/a/b/9", "/a/b/01", "/d/e", "/zz", "/a/b/2/c",
    ];
    let mut applied = 0;
    let mut refused = 0;
    for op in ["add", "remove", "replace", "move", "copy", "test"] {
        for path in paths {
            for from in paths {
                let raw = serde_json::json!([{"op": op, "path": path, "from": from, "value": 7}]);
                let patch: Patch = serde_json::from_value(raw).unwrap();
                match json_patch::apply(&doc, &patch) {
                    Ok(_) => applied += 1,
                    Err(error) => {
                        assert!(!error.to_string().is_empty());
                        refused += 1;
                    }
                }
            }
        }
    }
    assert!(
        applied > 50 && refused > 50,
        "{applied} applied, {refused} refused"
    );
}
