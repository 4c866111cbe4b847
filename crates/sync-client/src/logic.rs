//! The sync decisions as pure functions: what the local view of a document
//! is, what an incoming change or an acknowledgement does to the server
//! state the client knows, what a save becomes on the wire, and how a live
//! query filters and orders. No I/O here; the engine feeds these functions
//! and writes their answers.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sync_core::Version;
use sync_core::realtime::TransportError;
use sync_core::{Action, Change, ChangeOp, Filter, JsonObject, OpResult, OpStatus, Operation};

/// The server's last known state of one document, as this client knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerDoc {
    /// The document's data (empty for a tombstone).
    pub data: JsonObject,
    /// Its version on the server.
    pub version: u64,
    /// Whether it is deleted on the server.
    pub deleted: bool,
}

impl ServerDoc {
    fn live(&self) -> Option<&JsonObject> {
        (!self.deleted).then_some(&self.data)
    }
}

/// The local view of a document: the server's state with the pending
/// operations replayed on top, in queue order. A pending create (or
/// upsert of an absent document) shows it, a pending delete hides it,
/// pending updates are rebased with `sync_conflict::rebase`.
pub fn local_view(server: Option<&ServerDoc>, pending: &[&Operation]) -> Option<JsonObject> {
    let mut doc: Option<JsonObject> = server.and_then(ServerDoc::live).cloned();
    for op in pending {
        let data = op.data.clone().unwrap_or_default();
        doc = match (op.action, doc) {
            (Action::Create, _) | (Action::Upsert, None) => Some(data),
            (Action::Upsert | Action::Update, Some(current)) => {
                Some(sync_conflict::rebase(&current, std::slice::from_ref(&data)))
            }
            // An update of a document that does not exist changes nothing
            // (the server will refuse it).
            (Action::Update, None) => None,
            (Action::Delete, _) => None,
        };
    }
    doc
}

/// The server state after an incoming change, or `None` when the change is
/// not newer than what is known (a replay after a resume, or an echo).
pub fn apply_change(known: Option<&ServerDoc>, change: &Change) -> Option<ServerDoc> {
    let known_version = known.map_or(0, |doc| doc.version);
    if change.version.get() <= known_version {
        return None;
    }
    let (data, deleted) = match change.op {
        ChangeOp::Delete => (JsonObject::new(), true),
        ChangeOp::Insert => (
            change.data.clone().unwrap_or_else(|| change.delta.clone()),
            false,
        ),
        ChangeOp::Update => match (&change.data, known) {
            (Some(data), _) => (data.clone(), false),
            // Without the whole document the delta only applies to the
            // version right before it.
            (None, Some(doc)) if doc.version + 1 == change.version.get() => (
                sync_diff::merge_patch::apply_to_object(&doc.data, &change.delta),
                false,
            ),
            (None, _) => return None,
        },
    };
    Some(ServerDoc {
        data,
        version: change.version.get(),
        deleted,
    })
}

/// What an acknowledgement of one of this client's operations does to the
/// known server state.
#[derive(Debug, Clone, PartialEq)]
pub enum AckEffect {
    /// The server's document is now this.
    Apply(ServerDoc),
    /// The outcome cannot be derived locally: read the document.
    Fetch,
    /// Nothing to change (an old duplicate, or already known).
    Keep,
}

/// How `result` (the answer to `op`) changes `known`: a `merged` answer
/// (or the replay of one) carries the document; a `success` or `duplicate`
/// of an operation made on the known version, that made the change right
/// after it, is `op` applied to it; anything else needs a read.
pub fn ack_effect(known: Option<&ServerDoc>, op: &Operation, result: &OpResult) -> AckEffect {
    let known_version = known.map_or(0, |doc| doc.version);
    let Some(version) = result.version.map(Version::get) else {
        return AckEffect::Fetch;
    };
    if version <= known_version {
        return AckEffect::Keep;
    }
    // A replay repeats the first answer: one that was merged or left a
    // conflict says what the document became, not that `op` applied.
    let first_was_resolved = result.status == OpStatus::Duplicate
        && (result.data.is_some() || result.conflict_id.is_some());
    if result.status == OpStatus::Merged || first_was_resolved {
        // An empty document may be a delete that won over the edit: the
        // ack does not say, the server does.
        return match &result.data {
            Some(data) if !data.is_empty() => AckEffect::Apply(ServerDoc {
                data: data.clone(),
                version,
                deleted: false,
            }),
            _ => AckEffect::Fetch,
        };
    }
    // Without a seq the operation changed nothing, and the version is the
    // document's own, made by someone else.
    let plain =
        matches!(result.status, OpStatus::Success | OpStatus::Duplicate) && result.seq.is_some();
    // An operation made on an older version than the known one was merged
    // by the server from that older version; its patch, taken against the
    // local view, does not say what came out.
    let on_known = op.action == Action::Delete
        || op
            .base_version
            .is_none_or(|base| base.get() == known_version);
    if !plain || !on_known || version != known_version + 1 {
        return AckEffect::Fetch;
    }
    let data = op.data.clone().unwrap_or_default();
    let live = known.and_then(ServerDoc::live);
    let (data, deleted) = match (op.action, live) {
        (Action::Delete, _) => (JsonObject::new(), true),
        (Action::Create, _) | (Action::Upsert, None) => (data, false),
        (Action::Upsert | Action::Update, Some(current)) => (
            sync_diff::merge_patch::apply_to_object(current, &data),
            false,
        ),
        (Action::Update, None) => return AckEffect::Fetch,
    };
    AckEffect::Apply(ServerDoc {
        data,
        version,
        deleted,
    })
}

/// What the server's answer means for the queue entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Delivered: remove the entry. `conflict` when the server left a
    /// conflict pending (manual), which still counts as delivered.
    Delivered {
        /// Whether a conflict was left pending.
        conflict: bool,
    },
    /// Refused: count a failed attempt with this reason.
    Refused(String),
    /// Not delivered (connection lost): send again later.
    Retry,
}

/// Classifies a WebSocket answer.
pub fn classify(answer: &Result<OpResult, TransportError>) -> Delivery {
    match answer {
        Ok(result) => classify_result(result),
        Err(TransportError::Closed { .. }) => Delivery::Retry,
        Err(TransportError::Rejected(body)) if body.code.is_transient() => Delivery::Retry,
        Err(TransportError::Rejected(body)) => {
            Delivery::Refused(format!("{}: {}", body.code, body.message))
        }
        Err(TransportError::Protocol(message)) => Delivery::Refused(message.clone()),
    }
}

/// Classifies one bulk-sync result.
pub fn classify_result(result: &OpResult) -> Delivery {
    match result.status {
        OpStatus::Success | OpStatus::Merged | OpStatus::Duplicate => {
            Delivery::Delivered { conflict: false }
        }
        OpStatus::Conflict => Delivery::Delivered { conflict: true },
        OpStatus::Error => match &result.error {
            Some(body) if body.code.is_transient() => Delivery::Retry,
            Some(body) => Delivery::Refused(format!("{}: {}", body.code, body.message)),
            None => Delivery::Refused("rejected".to_owned()),
        },
    }
}

/// What a `save` becomes: `None` when nothing changes.
///
/// A document the local view does not have is created (`create` for an id
/// this client generated, `upsert` for one the caller chose, which another
/// device may already have created). A document it has is updated with the
/// merge patch from the current view to the new data: delta only.
pub fn plan_save(
    current: Option<&JsonObject>,
    new: JsonObject,
    generated_id: bool,
) -> Option<(Action, JsonObject)> {
    match current {
        None if generated_id => Some((Action::Create, new)),
        None => Some((Action::Upsert, new)),
        Some(current) => {
            let patch = sync_diff::merge_patch::diff_objects(current, &new);
            (!patch.is_empty()).then_some((Action::Update, patch))
        }
    }
}

/// The direction of an `order_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Smallest first.
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

/// Orders JSON values: missing/null, then booleans, numbers, strings,
/// arrays and objects; within a kind by value.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(value: Option<&Value>) -> u8 {
        match value {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Object(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => match rank(a).cmp(&rank(b)) {
            Ordering::Equal => a.map(Value::to_string).cmp(&b.map(Value::to_string)),
            other => other,
        },
    }
}

/// A live query's result from the documents of a collection (each with its
/// `"id"`): the ones matching `filter`, ordered by `order` then by id,
/// at most `limit`.
pub fn run_query(
    mut docs: Vec<JsonObject>,
    filter: &Filter,
    order: &[(String, Order)],
    limit: Option<usize>,
) -> Vec<JsonObject> {
    docs.retain(|doc| filter.matches(doc));
    docs.sort_by(|a, b| {
        for (field, direction) in order {
            let ordering = compare_values(a.get(field), b.get(field));
            let ordering = match direction {
                Order::Ascending => ordering,
                Order::Descending => ordering.reverse(),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        compare_values(a.get("id"), b.get("id"))
    });
    if let Some(limit) = limit {
        docs.truncate(limit);
    }
    docs
}

/// The document as the application sees it: its data with `"id"` set.
pub fn with_id(id: &str, mut data: JsonObject) -> JsonObject {
    data.insert("id".to_owned(), Value::String(id.to_owned()));
    data
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::{ErrorBody, ErrorCode, OpId, Seq};

    use super::*;

    fn obj(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    fn doc(value: Value, version: u64) -> ServerDoc {
        ServerDoc {
            data: obj(value),
            version,
            deleted: false,
        }
    }

    fn op(action: Action, data: Option<Value>) -> Operation {
        let mut op = Operation::new(action);
        op.id = Some("d".parse().unwrap());
        op.data = data.map(obj);
        op
    }

    fn change(op: ChangeOp, version: u64, data: Option<Value>, delta: Value) -> Change {
        serde_json::from_value(json!({
            "seq": 9, "namespace": "default", "collection": "todos", "id": "d",
            "op": op, "delta": delta, "version": version,
            "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
            "opId": "op-1", "data": data,
        }))
        .unwrap()
    }

    fn result(status: OpStatus, version: Option<u64>, data: Option<Value>) -> OpResult {
        let mut result = OpResult::new(Action::Update, status);
        result.version = version.map(Version);
        result.data = data.map(obj);
        result.seq = Some(Seq(1));
        result
    }

    #[test]
    fn the_view_is_the_server_state_with_the_pending_edits_on_top() {
        let server = doc(json!({"text": "a", "done": false}), 3);
        let update = op(Action::Update, Some(json!({"done": true, "tag": "x"})));
        let remove = op(Action::Update, Some(json!({"tag": null})));
        let delete = op(Action::Delete, None);
        let create = op(Action::Create, Some(json!({"text": "new"})));
        let upsert = op(Action::Upsert, Some(json!({"text": "up"})));
        let cases: Vec<(Option<&ServerDoc>, Vec<&Operation>, Option<Value>)> = vec![
            (
                Some(&server),
                vec![],
                Some(json!({"text": "a", "done": false})),
            ),
            (
                Some(&server),
                vec![&update],
                Some(json!({"text": "a", "done": true, "tag": "x"})),
            ),
            (
                Some(&server),
                vec![&update, &remove],
                Some(json!({"text": "a", "done": true})),
            ),
            (Some(&server), vec![&update, &delete], None),
            (
                None,
                vec![&create, &update],
                Some(json!({"text": "new", "done": true, "tag": "x"})),
            ),
            (None, vec![&update], None),
            (None, vec![&upsert], Some(json!({"text": "up"}))),
            (
                Some(&server),
                vec![&upsert],
                Some(json!({"text": "up", "done": false})),
            ),
            (
                Some(&server),
                vec![&delete, &create],
                Some(json!({"text": "new"})),
            ),
        ];
        for (server, pending, expected) in cases {
            assert_eq!(
                local_view(server, &pending),
                expected.map(obj),
                "{pending:?}"
            );
        }
        let tombstone = ServerDoc {
            data: JsonObject::new(),
            version: 4,
            deleted: true,
        };
        assert_eq!(local_view(Some(&tombstone), &[]), None);
    }

    #[test]
    fn only_newer_changes_apply() {
        let known = doc(json!({"n": 1}), 2);
        let newer = change(ChangeOp::Update, 3, Some(json!({"n": 2})), json!({"n": 2}));
        assert_eq!(
            apply_change(Some(&known), &newer),
            Some(doc(json!({"n": 2}), 3))
        );
        let replay = change(ChangeOp::Update, 2, Some(json!({"n": 0})), json!({"n": 0}));
        assert_eq!(apply_change(Some(&known), &replay), None);
        let gone = change(ChangeOp::Delete, 5, None, json!({}));
        let tombstone = apply_change(Some(&known), &gone).unwrap();
        assert!(tombstone.deleted);
        assert_eq!(tombstone.version, 5);
        let first = change(ChangeOp::Insert, 1, Some(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(apply_change(None, &first), Some(doc(json!({"a": 1}), 1)));
        // A delta without the document applies only on the version before it.
        let bare = change(ChangeOp::Update, 3, None, json!({"m": true}));
        assert_eq!(
            apply_change(Some(&known), &bare),
            Some(doc(json!({"n": 1, "m": true}), 3))
        );
        let gap = change(ChangeOp::Update, 4, None, json!({"m": true}));
        assert_eq!(apply_change(Some(&known), &gap), None);
    }

    #[test]
    fn replays_of_resolved_answers_and_answers_without_a_change_are_not_applied_as_sent() {
        // Seeds 103 and 463 of the simulation.
        let known = doc(json!({"text": "a"}), 1);
        let upsert = op(Action::Upsert, Some(json!({"text": "mine"})));
        let mut replay_of_merged =
            result(OpStatus::Duplicate, Some(2), Some(json!({"text": "kept"})));
        replay_of_merged.conflict_id = Some("c-1".parse().unwrap());
        assert_eq!(
            ack_effect(Some(&known), &upsert, &replay_of_merged),
            AckEffect::Apply(doc(json!({"text": "kept"}), 2))
        );
        let mut replay_of_pending = result(OpStatus::Duplicate, Some(2), None);
        replay_of_pending.conflict_id = Some("c-2".parse().unwrap());
        assert_eq!(
            ack_effect(Some(&known), &upsert, &replay_of_pending),
            AckEffect::Fetch
        );
        let mut unchanged = result(OpStatus::Success, Some(2), None);
        unchanged.seq = None;
        assert_eq!(
            ack_effect(Some(&known), &upsert, &unchanged),
            AckEffect::Fetch
        );
    }

    #[test]
    fn acks_apply_the_operation_only_right_after_the_known_version() {
        let known = doc(json!({"text": "a"}), 1);
        let update = op(Action::Update, Some(json!({"done": true})));
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Success, Some(2), None)
            ),
            AckEffect::Apply(doc(json!({"text": "a", "done": true}), 2))
        );
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Success, Some(3), None)
            ),
            AckEffect::Fetch
        );
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Merged, Some(5), Some(json!({"text": "m"})))
            ),
            AckEffect::Apply(doc(json!({"text": "m"}), 5))
        );
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Merged, Some(5), Some(json!({})))
            ),
            AckEffect::Fetch
        );
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Duplicate, Some(1), None)
            ),
            AckEffect::Keep
        );
        assert_eq!(
            ack_effect(
                Some(&known),
                &update,
                &result(OpStatus::Conflict, Some(2), None)
            ),
            AckEffect::Fetch
        );
        let create = op(Action::Create, Some(json!({"x": 1})));
        assert_eq!(
            ack_effect(None, &create, &result(OpStatus::Success, Some(1), None)),
            AckEffect::Apply(doc(json!({"x": 1}), 1))
        );
        let delete = op(Action::Delete, None);
        let AckEffect::Apply(tombstone) = ack_effect(
            Some(&known),
            &delete,
            &result(OpStatus::Success, Some(2), None),
        ) else {
            panic!("a delete right after the known version applies");
        };
        assert!(tombstone.deleted);
        assert_eq!(
            ack_effect(None, &create, &result(OpStatus::Success, None, None)),
            AckEffect::Fetch
        );
    }

    #[test]
    fn an_ack_of_an_operation_made_on_an_older_version_is_read_back() {
        // Seed 9509 of the simulation: the update removed a field the
        // client's own pending upsert had added; the server merged it from
        // version 1, where the field did not exist, and kept it.
        let known = doc(json!({"meta": {"x": 4}, "n": 3}), 3);
        let mut update = op(Action::Update, Some(json!({"meta": null, "n": 2})));
        update.base_version = Some(Version(1));
        let success = result(OpStatus::Success, Some(4), None);
        assert_eq!(
            ack_effect(Some(&known), &update, &success),
            AckEffect::Fetch
        );
        update.base_version = Some(Version(3));
        assert_eq!(
            ack_effect(Some(&known), &update, &success),
            AckEffect::Apply(doc(json!({"n": 2}), 4))
        );
        let mut delete = op(Action::Delete, None);
        delete.base_version = Some(Version(1));
        let AckEffect::Apply(tombstone) = ack_effect(Some(&known), &delete, &success) else {
            panic!("a delete that succeeded deleted, whatever its base");
        };
        assert!(tombstone.deleted);
    }

    #[test]
    fn answers_are_classified() {
        let ok = Ok(result(OpStatus::Success, Some(1), None));
        assert_eq!(classify(&ok), Delivery::Delivered { conflict: false });
        let conflict = Ok(result(OpStatus::Conflict, None, None));
        assert_eq!(classify(&conflict), Delivery::Delivered { conflict: true });
        let closed = Err(TransportError::Closed { unsent: None });
        assert_eq!(classify(&closed), Delivery::Retry);
        let refused = Err(TransportError::Rejected(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "bad",
        )));
        assert!(matches!(classify(&refused), Delivery::Refused(reason) if reason.contains("bad")));
        let limited = Err(TransportError::Rejected(ErrorBody::new(
            ErrorCode::RateLimited,
            "slow down",
        )));
        assert_eq!(classify(&limited), Delivery::Retry);
        for code in [ErrorCode::Unavailable, ErrorCode::InsufficientStorage] {
            let later = Err(TransportError::Rejected(ErrorBody::new(code, "later")));
            assert_eq!(classify(&later), Delivery::Retry, "{code}");
        }
        let mut failed = result(OpStatus::Error, None, None);
        failed.op_id = Some(OpId::generate());
        failed.error = Some(ErrorBody::new(ErrorCode::NotFound, "gone"));
        assert!(matches!(classify_result(&failed), Delivery::Refused(_)));
    }

    #[test]
    fn saves_send_deltas_for_known_documents() {
        let current = obj(json!({"text": "a", "done": false, "old": 1}));
        let new = obj(json!({"text": "a", "done": true}));
        assert_eq!(
            plan_save(Some(&current), new.clone(), false),
            Some((Action::Update, obj(json!({"done": true, "old": null}))))
        );
        assert_eq!(plan_save(Some(&current), current.clone(), false), None);
        assert_eq!(
            plan_save(None, new.clone(), true),
            Some((Action::Create, new.clone()))
        );
        assert_eq!(
            plan_save(None, new.clone(), false),
            Some((Action::Upsert, new))
        );
    }

    #[test]
    fn queries_filter_and_order() {
        let docs = vec![
            obj(json!({"id": "a", "room": "42", "t": 3})),
            obj(json!({"id": "b", "room": "42", "t": 9})),
            obj(json!({"id": "c", "room": "7", "t": 5})),
            obj(json!({"id": "d", "room": "42"})),
        ];
        let filter = Filter::all().and_equals("room", "42");
        let ids = |docs: Vec<JsonObject>| -> Vec<String> {
            docs.iter()
                .map(|d| d["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let order = vec![("t".to_owned(), Order::Descending)];
        assert_eq!(
            ids(run_query(docs.clone(), &filter, &order, None)),
            ["b", "a", "d"]
        );
        let up = vec![("t".to_owned(), Order::Ascending)];
        assert_eq!(
            ids(run_query(docs.clone(), &Filter::all(), &up, Some(2))),
            ["d", "a"]
        );
        assert_eq!(
            ids(run_query(docs, &Filter::all(), &[], None)),
            ["a", "b", "c", "d"]
        );
    }
}
