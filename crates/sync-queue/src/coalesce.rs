//! The coalescing rules: when a new operation can be folded into the newest
//! queued operation on the same document, and what the result is.
//!
//! A pure function of two operations. The queue calls it only when the
//! earlier entry was never handed out by `ready` (so the server has never
//! seen its `opId`), is not failed, and is the newest entry of the document;
//! see the crate docs for why.

use sync_core::{Action, Operation};
use sync_diff::merge_patch;

/// What to do with a new operation given the newest unsent one on its
/// document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Coalesced {
    /// Replace the earlier entry's operation with this one.
    Merged(Box<Operation>),
    /// The two cancel out: remove the earlier entry, store nothing.
    Cancelled,
    /// Store the new operation as an entry of its own.
    Separate,
}

/// Folds `later` into `earlier` where one operation has exactly the effect
/// of both. `earlier_is_alone` says the earlier entry is the only one of its
/// document in the queue (needed before a create and a delete may cancel).
pub(crate) fn coalesce(
    earlier: &Operation,
    later: &Operation,
    earlier_is_alone: bool,
) -> Coalesced {
    // The later edit was made on top of the earlier one, so the earlier
    // base is the base of both. A later edit that names another base was
    // rebased by the client on a newer server version: keep the two apart
    // rather than guess which base the server should compare against.
    if later.base_version.is_some() && later.base_version != earlier.base_version {
        return Coalesced::Separate;
    }
    match (earlier.action, later.action) {
        (Action::Update | Action::Upsert, Action::Update) => {
            let (Some(first), Some(second)) = (&earlier.data, &later.data) else {
                return Coalesced::Separate;
            };
            // An upsert's data is the whole document when the server has
            // none, so a removal merged into it would be stored as a null
            // member instead of removing anything.
            if earlier.action == Action::Upsert && removes_something(second) {
                return Coalesced::Separate;
            }
            match merge_patch::compose(first, second) {
                Some(data) => Coalesced::Merged(Box::new(merged(earlier, later, data))),
                None => Coalesced::Separate,
            }
        }
        (Action::Create, Action::Update) => {
            let (Some(document), Some(patch)) = (&earlier.data, &later.data) else {
                return Coalesced::Separate;
            };
            let data = merge_patch::apply_to_object(document, patch);
            Coalesced::Merged(Box::new(merged(earlier, later, data)))
        }
        (Action::Create, Action::Delete) if earlier_is_alone && earlier.id.is_some() => {
            Coalesced::Cancelled
        }
        _ => Coalesced::Separate,
    }
}

/// The earlier operation with the combined data. It keeps the earlier
/// `opId` (never sent, so never seen by the server) and ids, and takes the
/// later timestamp: the combined state is what the client held then.
/// Whether a merge patch removes a member anywhere (a `null` value).
fn removes_something(patch: &sync_core::JsonObject) -> bool {
    patch.values().any(|value| match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(inner) => removes_something(inner),
        _ => false,
    })
}

fn merged(earlier: &Operation, later: &Operation, data: sync_core::JsonObject) -> Operation {
    let mut op = earlier.clone();
    op.data = Some(data);
    op.op_id = earlier.op_id.clone().or_else(|| later.op_id.clone());
    op.local_id = earlier.local_id.clone().or_else(|| later.local_id.clone());
    op.timestamp = later.timestamp.or(earlier.timestamp);
    // One entry now carries both edits: it is as urgent as the more urgent.
    op.priority = earlier.priority.min(later.priority);
    op
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn op(value: Value) -> Operation {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_merged_entry_is_as_urgent_as_the_more_urgent_edit() {
        check(
            json!({"action": "update", "id": "a", "data": {"x": 1}, "priority": "low"}),
            json!({"action": "update", "id": "a", "data": {"y": 2}, "priority": "high"}),
            json!({"action": "update", "id": "a", "data": {"x": 1, "y": 2}, "priority": "high"}),
        );
        check(
            json!({"action": "update", "id": "a", "data": {"x": 1}}),
            json!({"action": "update", "id": "a", "data": {"y": 2}, "priority": "low"}),
            json!({"action": "update", "id": "a", "data": {"x": 1, "y": 2}}),
        );
    }

    /// `earlier` + `later` (earlier alone on its document) gives `expected`:
    /// an operation, `"cancelled"` or `"separate"`.
    fn check(earlier: Value, later: Value, expected: Value) {
        let result = coalesce(&op(earlier), &op(later), true);
        let expected = match expected.as_str() {
            Some("cancelled") => Coalesced::Cancelled,
            Some("separate") => Coalesced::Separate,
            _ => Coalesced::Merged(Box::new(op(expected))),
        };
        assert_eq!(result, expected);
    }

    #[test]
    fn rules() {
        // update + update: the composed patch, first opId, later timestamp.
        check(
            json!({"action": "update", "id": "a", "opId": "o1", "timestamp": "2024-01-01T00:00:00.000Z",
                   "data": {"x": 1, "n": {"a": 1}}}),
            json!({"action": "update", "id": "a", "opId": "o2", "timestamp": "2024-01-01T00:00:05.000Z",
                   "data": {"y": 2, "n": {"b": 2}, "x": null}}),
            json!({"action": "update", "id": "a", "opId": "o1", "timestamp": "2024-01-01T00:00:05.000Z",
                   "data": {"x": null, "y": 2, "n": {"a": 1, "b": 2}}}),
        );
        // Not representable as one merge patch: kept apart.
        check(
            json!({"action": "update", "id": "a", "data": {"n": null}}),
            json!({"action": "update", "id": "a", "data": {"n": {"b": 2}}}),
            json!("separate"),
        );
        // create + update: the created document with the patch applied.
        check(
            json!({"action": "create", "id": "a", "opId": "o1", "data": {"x": 1, "y": 1}}),
            json!({"action": "update", "id": "a", "opId": "o2", "data": {"y": null, "z": 3}}),
            json!({"action": "create", "id": "a", "opId": "o1", "data": {"x": 1, "z": 3}}),
        );
        // upsert + update: composed like two updates.
        check(
            json!({"action": "upsert", "id": "a", "data": {"x": 1}}),
            json!({"action": "update", "id": "a", "opId": "o2", "data": {"y": 2}}),
            json!({"action": "upsert", "id": "a", "opId": "o2", "data": {"x": 1, "y": 2}}),
        );
        // create + delete of a document the server never saw: nothing.
        check(
            json!({"action": "create", "id": "a", "data": {"x": 1}}),
            json!({"action": "delete", "id": "a"}),
            json!("cancelled"),
        );
        // Everything else stays apart.
        for (earlier, later) in [
            (
                json!({"action": "update", "id": "a", "data": {"x": 1}}),
                json!({"action": "delete", "id": "a"}),
            ),
            (
                json!({"action": "delete", "id": "a"}),
                json!({"action": "create", "id": "a", "data": {}}),
            ),
            (
                json!({"action": "update", "id": "a", "data": {"x": 1}}),
                json!({"action": "upsert", "id": "a", "data": {"x": 2}}),
            ),
            (
                json!({"action": "upsert", "id": "a", "data": {"x": 1}}),
                json!({"action": "update", "id": "a", "data": {"x": null}}),
            ),
            (
                json!({"action": "upsert", "id": "a", "data": {"o": {"x": 1}}}),
                json!({"action": "update", "id": "a", "data": {"o": {"x": null}}}),
            ),
            (
                json!({"action": "create", "id": "a", "data": {}}),
                json!({"action": "create", "id": "a", "data": {}}),
            ),
            (
                json!({"action": "update", "id": "a", "baseVersion": 3, "data": {"x": 1}}),
                json!({"action": "update", "id": "a", "baseVersion": 4, "data": {"y": 1}}),
            ),
            (
                json!({"action": "update", "id": "a", "data": {"x": 1}}),
                json!({"action": "update", "id": "a", "baseVersion": 4, "data": {"y": 1}}),
            ),
        ] {
            check(earlier, later, json!("separate"));
        }
    }

    #[test]
    fn the_earlier_base_version_is_kept() {
        check(
            json!({"action": "update", "id": "a", "baseVersion": 3, "data": {"x": 1}}),
            json!({"action": "update", "id": "a", "data": {"y": 1}}),
            json!({"action": "update", "id": "a", "baseVersion": 3, "data": {"x": 1, "y": 1}}),
        );
    }

    #[test]
    fn a_create_cancels_only_when_alone_on_its_document() {
        let create = op(json!({"action": "create", "id": "a", "data": {}}));
        let delete = op(json!({"action": "delete", "id": "a"}));
        assert_eq!(coalesce(&create, &delete, false), Coalesced::Separate);
    }
}
