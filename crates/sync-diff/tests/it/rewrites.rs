//! The optimised diffs and field delta application against their
//! straightforward forms in `reference`: the same output for every input,
//! errors included.

use proptest::prelude::*;
use serde_json::Value;
use sync_diff::{delta, json_patch, merge_patch};

use crate::reference;
use crate::strategies::{
    any_delta, document, document_and_edit, document_and_mostly_fitting_delta, value,
};

/// Two arrays with a common head and tail around differing middles, as
/// JSON Patch diffs them.
fn array_and_edit() -> impl Strategy<Value = (Value, Value)> {
    (
        proptest::collection::vec(value(true), 0..4),
        proptest::collection::vec(value(true), 0..4),
        proptest::collection::vec(value(true), 0..4),
        proptest::collection::vec(value(true), 0..4),
    )
        .prop_map(|(head, old_middle, new_middle, tail)| {
            let join =
                |middle: Vec<Value>| Value::Array([head.clone(), middle, tail.clone()].concat());
            (join(old_middle), join(new_middle))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn field_delta_apply_matches_the_reference(doc in document(true), delta in any_delta()) {
        prop_assert_eq!(delta::apply(&doc, &delta), reference::field_delta_apply(&doc, &delta));
    }

    #[test]
    fn field_delta_apply_of_a_fitting_delta_matches_the_reference(
        (a, delta) in document_and_mostly_fitting_delta(),
    ) {
        prop_assert_eq!(delta::apply(&a, &delta), reference::field_delta_apply(&a, &delta));
    }

    #[test]
    fn diffs_match_the_reference((a, b) in document_and_edit()) {
        prop_assert_eq!(delta::diff(&a, &b), reference::field_delta_diff(&a, &b));
        prop_assert_eq!(merge_patch::diff(&a, &b), reference::merge_patch_diff(&a, &b));
        prop_assert_eq!(json_patch::diff(&a, &b), reference::json_patch_diff(&a, &b));
    }

    #[test]
    fn array_diffs_match_the_reference((a, b) in array_and_edit()) {
        prop_assert_eq!(json_patch::diff(&a, &b), reference::json_patch_diff(&a, &b));
        prop_assert_eq!(json_patch::apply(&a, &json_patch::diff(&a, &b)).unwrap(), b);
    }

    #[test]
    fn diffs_of_any_values_match_the_reference(a in value(true), b in value(true)) {
        prop_assert_eq!(delta::diff(&a, &b), reference::field_delta_diff(&a, &b));
        prop_assert_eq!(merge_patch::diff(&a, &b), reference::merge_patch_diff(&a, &b));
        prop_assert_eq!(json_patch::diff(&a, &b), reference::json_patch_diff(&a, &b));
    }
}
