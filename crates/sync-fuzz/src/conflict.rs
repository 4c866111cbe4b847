//! `conflict_resolve`: the conflict engine (`sync_conflict`) on arbitrary
//! documents, patches, field clocks, strategies and field rules.

use std::collections::BTreeSet;

use serde_json::Value;
use sync_conflict::{
    Base, ClientEdit, CollectionConfig, ConflictConfig, ConflictEngine, FieldRule, Outcome,
    ResolveRequest, ServerState, merge_arrays,
};
use sync_core::{DocKey, FieldClocks, Hlc, JsonObject, NodeId, OpStatus, Strategy};
use sync_diff::merge_patch;

/// The field rules a fuzzed configuration picks from.
const RULES: [FieldRule; 8] = [
    FieldRule::ServerWins,
    FieldRule::ClientWins,
    FieldRule::Lww,
    FieldRule::Merge,
    FieldRule::Union,
    FieldRule::Concat,
    FieldRule::Max,
    FieldRule::Min,
];

/// Every time here is at least this (milliseconds), so that a base written
/// at [`T0`] is older than every edit.
const T0: u64 = 1_700_000_000_000;

/// The first 8 bytes of `data` choose the strategy, the kind of base, a
/// deleted server document, a delete edit, field rules and the times; the
/// rest, cut at NUL bytes, is the base document, the server document, the
/// client's merge patch and the server's field clocks (an object of
/// millisecond offsets). Checks for every request: the engine is
/// deterministic; a tombstone holds no data; only `manual` leaves a
/// conflict pending; the status says whether there was a conflict. And
/// the laws of `docs/protocol.md` ("Operations and conflicts"): a field
/// only one side changed takes that side's value, a scalar both changed the
/// side the strategy names; an edit of a document nobody else changed
/// applies as it is; an edit that changes nothing leaves the server's
/// document; under `lww` two concurrent edits give the same document in
/// either arrival order; the three-way array merge keeps no duplicate and
/// brings back no removed item.
pub fn conflict_resolve(data: &[u8]) {
    let mut control = [0u8; 8];
    let head = data.len().min(8);
    control[..head].copy_from_slice(&data[..head]);
    let parts = crate::split::split(&data[head..], 4);
    let object = |index: usize| -> JsonObject {
        match parts.get(index).and_then(|part| crate::split::json(part)) {
            Some(Value::Object(map)) => map,
            _ => JsonObject::new(),
        }
    };
    let (base, server, patch, clocks_doc) = (object(0), object(1), object(2), object(3));

    let strategy = Strategy::ALL.get(usize::from(control[0] % 8)).copied();
    let millis = |hi: u8, lo: u8| T0 + u64::from(u16::from_be_bytes([hi, lo]));
    let client_time = hlc(millis(control[2], control[3]), u64::from(control[6]) + 1);
    let other_time = hlc(millis(control[4], control[5]), u64::from(control[6]) + 1000);
    let server_updated = hlc(millis(control[4], control[5]), 0);
    let field_clocks: FieldClocks = clocks_doc
        .iter()
        .filter_map(|(key, value)| {
            let offset = value.as_u64()? % 65_536;
            Some((key.clone(), hlc(T0 + offset, 0)))
        })
        .collect();
    let engine = engine(control[1] & 16 != 0, control[7], &server, &patch);
    let key = doc_key();
    let changed: BTreeSet<String> = base.keys().cloned().collect();
    let base_of = |kind: u8| match kind % 3 {
        0 => Base::Document(&base),
        1 => Base::ChangedSince(&changed),
        _ => Base::Unknown,
    };
    let deleted = control[1] & 4 != 0;
    let tombstone = JsonObject::new();
    let request = ResolveRequest {
        key: &key,
        base: base_of(control[1]),
        server: ServerState {
            data: if deleted { &tombstone } else { &server },
            deleted,
            field_clocks: &field_clocks,
            updated_at: server_updated,
        },
        edit: if control[1] & 8 != 0 {
            ClientEdit::Delete
        } else {
            ClientEdit::Update(&patch)
        },
        client_time,
        strategy,
    };
    let outcome = check_outcome(&engine, &request);
    if let (Base::Document(base), ClientEdit::Update(patch), false) =
        (request.base, request.edit, deleted)
    {
        let rules = control[1] & 16 != 0;
        check_field_laws(&request, base, patch, &outcome, rules);
    }

    // Nobody else changed the document since the client's base.
    let unchanged = ResolveRequest {
        base: Base::Document(&server),
        server: ServerState {
            data: &server,
            deleted: false,
            ..request.server
        },
        ..request
    };
    let outcome = check_outcome(&engine, &unchanged);
    match request.edit {
        ClientEdit::Update(patch) => {
            assert_eq!(
                outcome.data,
                merge_patch::apply_to_object(&server, patch),
                "a one-sided edit did not apply as sent"
            );
            assert!(!outcome.has_conflict(), "a one-sided edit conflicted");
        }
        ClientEdit::Delete => {
            assert!(outcome.deleted && outcome.status == OpStatus::Success);
        }
    }

    // An edit that changes nothing, whatever is known of its base.
    let empty = JsonObject::new();
    for kind in 0..3 {
        let no_op = ResolveRequest {
            base: base_of(kind),
            edit: ClientEdit::Update(&empty),
            ..unchanged
        };
        let outcome = check_outcome(&engine, &no_op);
        assert_eq!(outcome.data, server, "an empty patch changed the document");
        assert!(!outcome.has_conflict(), "an empty patch conflicted");
    }

    lww_is_order_independent(&key, &base, &patch, &server, client_time, other_time);
    check_merge_arrays(&base, &server, &patch);
}

fn hlc(millis: u64, node: u64) -> Hlc {
    Hlc::new(millis, 0, NodeId(node)).unwrap_or_default()
}

fn doc_key() -> DocKey {
    let (Ok(namespace), Ok(collection), Ok(id)) =
        ("default".parse(), "todos".parse(), "doc-1".parse())
    else {
        unreachable!("valid names");
    };
    DocKey::new(namespace, collection, id)
}

/// An engine whose collection has rules for some of the fields (chosen by
/// `seed`) when `rules` is set, and text merge for only the first field
/// when `seed` is odd.
fn engine(rules: bool, seed: u8, server: &JsonObject, patch: &JsonObject) -> ConflictEngine {
    let mut config = CollectionConfig::default();
    let fields: BTreeSet<&String> = server.keys().chain(patch.keys()).collect();
    if rules {
        for (index, field) in fields.iter().take(8).enumerate() {
            let pick = (usize::from(seed) + index * 3) % (RULES.len() + 1);
            if let Some(rule) = RULES.get(pick) {
                config = config.with_rule(field.as_str(), *rule);
            }
        }
    }
    if seed % 2 == 1 {
        config.text_fields = fields
            .iter()
            .take(1)
            .map(|field| (*field).clone())
            .collect();
    }
    ConflictEngine::new(ConflictConfig {
        default: CollectionConfig::default(),
        collections: [("todos".to_owned(), config)].into_iter().collect(),
    })
}

/// Resolves `request` and checks what holds for every outcome.
fn check_outcome(engine: &ConflictEngine, request: &ResolveRequest<'_>) -> Outcome {
    let outcome = engine.resolve(request);
    assert_eq!(
        engine.resolve(request),
        outcome,
        "resolve is not deterministic"
    );
    assert_eq!(
        engine.clone().resolve(request),
        outcome,
        "a copy of the engine decides otherwise"
    );
    if outcome.deleted {
        assert!(outcome.data.is_empty(), "a tombstone with data");
    }
    if outcome.pending {
        assert_eq!(outcome.strategy, Strategy::Manual, "pending without manual");
        assert_eq!(outcome.status, OpStatus::Conflict);
    }
    if let ClientEdit::Update(_) = request.edit
        && !request.server.deleted
    {
        assert_eq!(
            outcome.status == OpStatus::Success,
            !outcome.has_conflict(),
            "status {:?} with conflicts {:?}",
            outcome.status,
            outcome.conflict_fields
        );
        assert_eq!(outcome.status == OpStatus::Conflict, outcome.pending);
        let key = request.key;
        let context = sync_conflict::RecordContext {
            id: "c-1".parse().unwrap_or_else(|_| unreachable!("valid id")),
            op_id: "op-1".parse().unwrap_or_else(|_| unreachable!("valid id")),
            local_id: None,
            device_id: None,
            user: None,
            created_at: sync_core::Timestamp::default(),
        };
        let record = outcome.conflict_record(key, context);
        assert_eq!(record.is_some(), outcome.has_conflict());
        if let Some(record) = record {
            assert_eq!(record.resolved_data.is_none(), outcome.pending);
        }
    }
    outcome
}

/// Per top-level field, with the client's base known: a field only one
/// side changed takes that side's value; a scalar both changed takes the
/// value the strategy names (unless a field rule decides it).
fn check_field_laws(
    request: &ResolveRequest<'_>,
    base: &JsonObject,
    patch: &JsonObject,
    outcome: &Outcome,
    rules: bool,
) {
    let server = request.server.data;
    let client = merge_patch::apply_to_object(base, patch);
    let keys: BTreeSet<&String> = base
        .keys()
        .chain(server.keys())
        .chain(client.keys())
        .collect();
    for key in keys {
        let (b, s, c) = (base.get(key), server.get(key), client.get(key));
        let result = outcome.data.get(key);
        if b == s {
            assert_eq!(result, c, "{key}: only the client changed it");
            continue;
        }
        if b == c {
            assert_eq!(result, s, "{key}: only the server changed it");
            continue;
        }
        if s == c {
            assert_eq!(result, s, "{key}: both made the same change");
            continue;
        }
        let objects = matches!((s, c), (Some(Value::Object(_)), Some(Value::Object(_))));
        if objects || rules {
            continue;
        }
        let client_is_later = request.client_time
            > request
                .server
                .field_clocks
                .get(key)
                .copied()
                .unwrap_or(request.server.updated_at);
        let expected = match outcome.strategy {
            Strategy::ServerWins | Strategy::Manual => Some(s),
            Strategy::ClientWins => Some(c),
            Strategy::Lww => Some(if client_is_later { c } else { s }),
            Strategy::Merge | Strategy::Custom => None,
        };
        if let Some(expected) = expected {
            assert_eq!(
                result, expected,
                "{key}: both changed it, {:?} decides",
                outcome.strategy
            );
        }
        assert!(
            outcome.has_conflict(),
            "{key}: both changed it, yet no conflict"
        );
    }
}

/// Two clients edit the same base; under `lww` the server ends with the
/// same document whichever edit arrives first.
fn lww_is_order_independent(
    key: &DocKey,
    base: &JsonObject,
    first: &JsonObject,
    second: &JsonObject,
    first_time: Hlc,
    second_time: Hlc,
) {
    let engine = ConflictEngine::new(ConflictConfig::default());
    let base_clocks: FieldClocks = base.keys().map(|k| (k.clone(), hlc(T0, 0))).collect();
    let apply_in_turn = |edits: [(&JsonObject, Hlc); 2]| -> JsonObject {
        let mut data = base.clone();
        let mut clocks = base_clocks.clone();
        let mut updated_at = hlc(T0, 0);
        for (patch, time) in edits {
            let outcome = engine.resolve(&ResolveRequest {
                key,
                base: Base::Document(base),
                server: ServerState {
                    data: &data,
                    deleted: false,
                    field_clocks: &clocks,
                    updated_at,
                },
                edit: ClientEdit::Update(patch),
                client_time: time,
                strategy: Some(Strategy::Lww),
            });
            data = outcome.data;
            clocks = outcome.field_clocks;
            updated_at = hlc(updated_at.physical_ms().max(time.physical_ms()) + 1, 0);
        }
        data
    };
    let one = apply_in_turn([(first, first_time), (second, second_time)]);
    let other = apply_in_turn([(second, second_time), (first, first_time)]);
    assert_eq!(
        one, other,
        "lww depends on arrival order: base {base:?}, edits {first:?} at {first_time}, {second:?} at {second_time}"
    );
}

/// The three-way array merge of `merge` (`docs/protocol.md`, "Strategies")
/// on the values of the three objects.
fn check_merge_arrays(base: &JsonObject, server: &JsonObject, client: &JsonObject) {
    let scalars = |map: &JsonObject| -> Vec<Value> {
        map.values()
            .filter(|value| !value.is_array() && !value.is_object())
            .cloned()
            .collect()
    };
    let (base, server, client) = (scalars(base), scalars(server), scalars(client));
    let merged = merge_arrays(&base, &server, &client);
    for (index, item) in merged.iter().enumerate() {
        assert!(
            !merged[..index].contains(item),
            "{item} twice in {merged:?}"
        );
        let removed = base.contains(item) && !(server.contains(item) && client.contains(item));
        assert!(!removed, "{item} was removed but is back in {merged:?}");
        assert!(
            base.contains(item) || server.contains(item) || client.contains(item),
            "{item} came from nowhere"
        );
    }
    for item in client.iter().chain(&server) {
        if !base.contains(item) {
            assert!(merged.contains(item), "the addition {item} was lost");
        }
    }
    assert_eq!(merge_arrays(&base, &base, &base), dedup(&base));
}

fn dedup(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}
