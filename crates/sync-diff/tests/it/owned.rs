//! Applying a patch by value against applying it by reference: the same
//! document or the same error for every format, through the functions and
//! through `DiffCalculator`.

use proptest::prelude::*;
use serde_json::Value;
use sync_core::DiffCalculator;
use sync_diff::{
    FieldDeltaDiff, JsonPatchDiff, MergePatchDiff, Patch, PatchOperation, delta, json_patch,
    merge_patch,
};

use crate::strategies::{
    any_delta, document, document_and_edit, document_and_mostly_fitting_delta, operation, value,
};

/// The diff of `a` and `b` with `extra` operations, which may not fit,
/// inserted at `at`.
fn with_operations(
    a: &Value,
    b: &Value,
    extra: Vec<PatchOperation>,
    at: prop::sample::Index,
) -> Patch {
    let mut operations = json_patch::diff(a, b).0;
    let at = at.index(operations.len() + 1);
    operations.splice(at..at, extra);
    Patch(operations)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn field_delta_owned_apply_matches_borrowed(doc in document(true), delta in any_delta()) {
        let borrowed = delta::apply(&doc, &delta);
        prop_assert_eq!(FieldDeltaDiff.apply_owned(&doc, delta.clone()), borrowed.clone());
        prop_assert_eq!(delta::apply_owned(&doc, delta), borrowed);
    }

    #[test]
    fn field_delta_owned_apply_of_a_fitting_delta_matches_borrowed(
        (a, delta) in document_and_mostly_fitting_delta(),
    ) {
        let borrowed = delta::apply(&a, &delta);
        prop_assert_eq!(FieldDeltaDiff.apply_owned(&a, delta.clone()), borrowed.clone());
        prop_assert_eq!(delta::apply_owned(&a, delta), borrowed);
    }

    #[test]
    fn merge_patch_owned_apply_matches_borrowed(doc in value(true), patch in value(true)) {
        let borrowed = merge_patch::apply(&doc, &patch);
        prop_assert_eq!(MergePatchDiff.apply_owned(&doc, patch.clone()), Ok(borrowed.clone()));
        prop_assert_eq!(merge_patch::apply_owned(&doc, patch), borrowed);
    }

    #[test]
    fn merge_patch_owned_apply_to_objects_matches_borrowed(
        (a, b) in document_and_edit(),
        patch in document(true),
    ) {
        let (a, b, patch) = (a.as_object().unwrap(), b.as_object().unwrap(), patch.as_object().unwrap());
        let diff = merge_patch::diff_objects(a, b);
        prop_assert_eq!(
            merge_patch::apply_to_object_owned(a, diff.clone()),
            merge_patch::apply_to_object(a, &diff)
        );
        prop_assert_eq!(
            merge_patch::apply_to_object_owned(a, patch.clone()),
            merge_patch::apply_to_object(a, patch)
        );
    }

    #[test]
    fn json_patch_owned_apply_matches_borrowed(
        (a, b) in document_and_edit(),
        extra in proptest::collection::vec(operation(), 0..3),
        at in any::<prop::sample::Index>(),
    ) {
        let patch = with_operations(&a, &b, extra, at);
        let borrowed = json_patch::apply(&a, &patch);
        prop_assert_eq!(JsonPatchDiff.apply_owned(&a, patch.clone()), borrowed.clone());
        prop_assert_eq!(json_patch::apply_owned(&a, patch), borrowed);
    }

    #[test]
    fn json_patch_owned_apply_of_any_operations_matches_borrowed(
        doc in value(true),
        operations in proptest::collection::vec(operation(), 0..5),
    ) {
        let patch = Patch(operations);
        let borrowed = json_patch::apply(&doc, &patch);
        prop_assert_eq!(json_patch::apply_owned(&doc, patch), borrowed);
    }
}
