//! Detection and resolution: one pure function from (base, server, client)
//! to the document the server stores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use sync_core::conflict::{ConflictInput, ConflictResolver};
use sync_core::{
    ConflictData, ConflictId, ConflictRecord, ConflictStatus, DeviceId, DocKey, FieldClocks, Hlc,
    JsonObject, OpId, OpStatus, Strategy, Timestamp, UserId,
};
use sync_diff::{FieldPath, merge_patch, text};

use crate::config::{CollectionConfig, ConflictConfig, FieldRule};

/// What is known of the version the client edited.
#[derive(Debug, Clone, Copy)]
pub enum Base<'a> {
    /// The document at the client's `baseVersion` (rebuilt from the log).
    Document(&'a JsonObject),
    /// No `baseVersion`, but the client's last sync point is known: these
    /// top-level fields were changed on the server after it.
    ChangedSince(&'a BTreeSet<String>),
    /// Nothing: every field the client sends with a value different from the
    /// server's is a conflict, decided by last-write-wins.
    Unknown,
}

/// The server's side: its current document.
#[derive(Debug, Clone, Copy)]
pub struct ServerState<'a> {
    /// The stored data (empty for a tombstone).
    pub data: &'a JsonObject,
    /// Whether the stored document is a tombstone.
    pub deleted: bool,
    /// When each top-level field was last written.
    pub field_clocks: &'a FieldClocks,
    /// When the document was last written (for fields without a clock, and
    /// the time of a delete).
    pub updated_at: Hlc,
}

/// What the client did.
#[derive(Debug, Clone, Copy)]
pub enum ClientEdit<'a> {
    /// An update: an RFC 7386 merge patch of the fields it changed.
    Update(&'a JsonObject),
    /// A delete.
    Delete,
}

/// Everything the engine decides from. The caller clamps `client_time` to
/// the allowed clock skew before.
#[derive(Debug, Clone, Copy)]
pub struct ResolveRequest<'a> {
    /// The document concerned.
    pub key: &'a DocKey,
    /// What is known of the client's base.
    pub base: Base<'a>,
    /// The server's current document.
    pub server: ServerState<'a>,
    /// The client's edit.
    pub edit: ClientEdit<'a>,
    /// When the client made the edit.
    pub client_time: Hlc,
    /// A per-request strategy, overriding the collection's.
    pub strategy: Option<Strategy>,
}

/// The engine's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The whole document to store (empty when deleted).
    pub data: JsonObject,
    /// Whether the result is a tombstone.
    pub deleted: bool,
    /// The field clocks to store: fields taken from the client carry the
    /// client's time, fields merged from both the later of the two.
    pub field_clocks: FieldClocks,
    /// Paths both sides changed to different values (dotted; top-level
    /// fields by their plain names, as bulk-sync results report them).
    pub conflict_fields: Vec<String>,
    /// The strategy that decided.
    pub strategy: Strategy,
    /// Whether conflicting fields were left for a manual decision.
    pub pending: bool,
    /// `success` (no conflict), `merged` (resolved) or `conflict` (pending).
    pub status: OpStatus,
    /// What the client sent (the patch; empty for a delete).
    pub client_data: JsonObject,
    /// The server's values of the fields the client sent (its whole
    /// document for a delete).
    pub server_data: JsonObject,
    /// The base document, when known.
    pub base_data: Option<JsonObject>,
}

/// Server-side facts a conflict record needs besides the outcome.
#[derive(Debug, Clone)]
pub struct RecordContext {
    /// The new record's id.
    pub id: ConflictId,
    /// The operation's id.
    pub op_id: OpId,
    /// The client's id for the document.
    pub local_id: Option<String>,
    /// The sending device.
    pub device_id: Option<DeviceId>,
    /// The sending user.
    pub user: Option<UserId>,
    /// Now.
    pub created_at: Timestamp,
}

impl Outcome {
    /// Whether both sides changed something differently.
    pub fn has_conflict(&self) -> bool {
        !self.conflict_fields.is_empty()
    }

    /// The conflict record to store, when there was a conflict: pending
    /// with no resolved data, or resolved with the whole resulting document.
    pub fn conflict_record(&self, key: &DocKey, context: RecordContext) -> Option<ConflictRecord> {
        self.has_conflict().then(|| ConflictRecord {
            id: context.id,
            local_id: context.local_id,
            server_id: key.id.clone(),
            conflict_data: ConflictData {
                client_data: self.client_data.clone(),
                server_data: self.server_data.clone(),
                conflict_fields: self.conflict_fields.clone(),
            },
            strategy: self.strategy,
            status: if self.pending {
                ConflictStatus::Pending
            } else {
                ConflictStatus::Resolved
            },
            resolved_data: (!self.pending).then(|| self.data.clone()),
            namespace: key.namespace.clone(),
            collection: key.collection.clone(),
            base_data: self.base_data.clone(),
            op_id: context.op_id,
            device_id: context.device_id,
            user: context.user,
            created_at: context.created_at,
            resolved_at: (!self.pending).then_some(context.created_at),
        })
    }
}

/// The conflict engine: configuration per collection and the application's
/// resolvers. Cheap to share (`Arc` inside for resolvers).
#[derive(Clone, Default)]
pub struct ConflictEngine {
    config: ConflictConfig,
    resolvers: BTreeMap<String, Arc<dyn ConflictResolver>>,
}

impl std::fmt::Debug for ConflictEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConflictEngine")
            .field("config", &self.config)
            .field("resolvers", &self.resolvers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConflictEngine {
    /// An engine with `config`.
    pub fn new(config: ConflictConfig) -> ConflictEngine {
        ConflictEngine {
            config,
            resolvers: BTreeMap::new(),
        }
    }

    /// Registers the application's resolver for `collection`, used by the
    /// `custom` strategy.
    pub fn register_resolver(
        &mut self,
        collection: impl Into<String>,
        resolver: Arc<dyn ConflictResolver>,
    ) {
        self.resolvers.insert(collection.into(), resolver);
    }

    /// The same resolvers with other settings (a configuration reload).
    pub fn with_config(&self, config: ConflictConfig) -> ConflictEngine {
        ConflictEngine {
            config,
            resolvers: self.resolvers.clone(),
        }
    }

    /// The settings for `collection`.
    pub fn config(&self, collection: &str) -> &CollectionConfig {
        self.config.for_collection(collection)
    }

    /// Decides what the client's edit does to the server's document.
    pub fn resolve(&self, request: &ResolveRequest<'_>) -> Outcome {
        // A branch is resolved as its document's collection is.
        let collection = request.key.collection.base_str();
        let config = self.config(collection);
        let strategy = request.strategy.unwrap_or(config.strategy);
        match request.edit {
            ClientEdit::Delete => resolve_delete(request, strategy),
            ClientEdit::Update(patch) if request.server.deleted => {
                resolve_update_of_deleted(request, strategy, patch)
            }
            ClientEdit::Update(patch) => {
                let resolver = self.resolvers.get(collection);
                resolve_update(request, config, strategy, patch, resolver.map(Arc::as_ref))
            }
        }
    }
}

fn base_data(request: &ResolveRequest<'_>) -> Option<JsonObject> {
    match request.base {
        Base::Document(base) => Some(base.clone()),
        _ => None,
    }
}

fn server_time(server: &ServerState<'_>, field: &str) -> Hlc {
    server
        .field_clocks
        .get(field)
        .copied()
        .unwrap_or(server.updated_at)
}

/// A delete. Whether the server changed the document since the client's
/// base decides whether it is a conflict at all.
fn resolve_delete(request: &ResolveRequest<'_>, strategy: Strategy) -> Outcome {
    let server = &request.server;
    let deleted_outcome = |conflict_fields: Vec<String>, status| Outcome {
        data: JsonObject::new(),
        deleted: true,
        field_clocks: FieldClocks::new(),
        conflict_fields,
        strategy,
        pending: false,
        status,
        client_data: JsonObject::new(),
        server_data: server.data.clone(),
        base_data: base_data(request),
    };
    if server.deleted {
        return deleted_outcome(Vec::new(), OpStatus::Success);
    }
    let changed: Vec<String> = match request.base {
        Base::Document(base) => server
            .data
            .keys()
            .chain(base.keys())
            .filter(|key| base.get(*key) != server.data.get(*key))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        Base::ChangedSince(fields) => fields.iter().cloned().collect(),
        Base::Unknown => Vec::new(),
    };
    if changed.is_empty() {
        return deleted_outcome(Vec::new(), OpStatus::Success);
    }
    let delete_wins = match strategy {
        // A delete wins over concurrent edits; they stay in the history and
        // can be restored from there.
        Strategy::Merge | Strategy::Custom | Strategy::ClientWins => true,
        Strategy::ServerWins | Strategy::Manual => false,
        Strategy::Lww => request.client_time > server.updated_at,
    };
    if delete_wins {
        return deleted_outcome(changed, OpStatus::Merged);
    }
    Outcome {
        data: server.data.clone(),
        deleted: false,
        field_clocks: server.field_clocks.clone(),
        pending: strategy == Strategy::Manual,
        status: if strategy == Strategy::Manual {
            OpStatus::Conflict
        } else {
            OpStatus::Merged
        },
        ..deleted_outcome(changed, OpStatus::Merged)
    }
}

/// An update of a document the server has deleted: deleted documents do
/// not come back by accident. Under `merge`, `server_wins` and `custom`
/// the delete stands (the client may create the document again); under
/// `client_wins`, and under `lww` when the edit is later than the delete,
/// the document comes back as the client's base with its edit.
fn resolve_update_of_deleted(
    request: &ResolveRequest<'_>,
    strategy: Strategy,
    patch: &JsonObject,
) -> Outcome {
    let revive = match strategy {
        Strategy::ClientWins => true,
        Strategy::Lww => request.client_time > request.server.updated_at,
        Strategy::Merge | Strategy::ServerWins | Strategy::Manual | Strategy::Custom => false,
    };
    let pending = strategy == Strategy::Manual;
    let (data, field_clocks) = if revive {
        let base = match request.base {
            Base::Document(base) => base.clone(),
            _ => JsonObject::new(),
        };
        let data = merge_patch::apply_to_object(&base, patch);
        let clocks = data
            .keys()
            .map(|key| (key.clone(), request.client_time))
            .collect();
        (data, clocks)
    } else {
        (JsonObject::new(), request.server.field_clocks.clone())
    };
    Outcome {
        deleted: !revive,
        data,
        field_clocks,
        conflict_fields: patch.keys().cloned().collect(),
        strategy,
        pending,
        status: if pending {
            OpStatus::Conflict
        } else {
            OpStatus::Merged
        },
        client_data: patch.clone(),
        server_data: JsonObject::new(),
        base_data: base_data(request),
    }
}

/// What is known of one field's base value.
#[derive(Debug, Clone, Copy)]
enum FieldBase<'a> {
    Known(Option<&'a Value>),
    Unknown,
}

/// How a leaf both sides changed is decided, for one top-level field.
struct Leaf {
    strategy: Strategy,
    client_is_later: bool,
    merges_text: bool,
}

fn resolve_update(
    request: &ResolveRequest<'_>,
    config: &CollectionConfig,
    strategy: Strategy,
    patch: &JsonObject,
    resolver: Option<&dyn ConflictResolver>,
) -> Outcome {
    let server = &request.server;
    let client = match request.base {
        Base::Document(base) => merge_patch::apply_to_object(base, patch),
        _ => merge_patch::apply_to_object(server.data, patch),
    };
    // Without a base, `merge` has nothing to merge against: last write wins.
    let strategy = match (request.base, strategy) {
        (Base::Unknown, Strategy::Merge) => Strategy::Lww,
        (_, strategy) => strategy,
    };

    let keys: BTreeSet<&String> = server.data.keys().chain(client.keys()).collect();
    let mut data = JsonObject::new();
    let mut field_clocks = server.field_clocks.clone();
    let mut conflicts: Vec<FieldPath> = Vec::new();
    for key in keys {
        let field_base = match request.base {
            Base::Document(base) => FieldBase::Known(base.get(key)),
            Base::ChangedSince(changed) if changed.contains(key) => FieldBase::Unknown,
            Base::ChangedSince(_) => FieldBase::Known(server.data.get(key)),
            // A field the server never wrote has nothing to conflict with.
            Base::Unknown
                if patch.contains_key(key)
                    && (server.data.contains_key(key) || server.field_clocks.contains_key(key)) =>
            {
                FieldBase::Unknown
            }
            Base::Unknown => FieldBase::Known(server.data.get(key)),
        };
        let server_value = server.data.get(key);
        let client_value = client.get(key);
        let server_clock = server_time(server, key);
        let client_is_later = request.client_time > server_clock;
        let conflicts_before = conflicts.len();
        let resolved = match config.fields.get(key.as_str()) {
            Some(rule) if both_changed(field_base, server_value, client_value) => {
                conflicts.push(FieldPath::new([key.clone()]));
                apply_rule(
                    *rule,
                    field_base,
                    server_value,
                    client_value,
                    client_is_later,
                    config,
                )
            }
            _ => {
                let leaf = Leaf {
                    strategy,
                    client_is_later,
                    merges_text: config.merges_text(key),
                };
                let path = FieldPath::new([key.clone()]);
                resolve_value(
                    field_base,
                    server_value,
                    client_value,
                    &path,
                    &leaf,
                    &mut conflicts,
                )
            }
        };
        let had_conflict = conflicts.len() > conflicts_before;
        if resolved.as_ref() != server_value {
            let time = if had_conflict && resolved.as_ref() != client_value {
                request.client_time.max(server_clock)
            } else {
                request.client_time
            };
            field_clocks.insert(key.clone(), time);
        }
        if let Some(value) = resolved {
            data.insert(key.clone(), value);
        }
    }

    let conflict_fields: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
    let server_data: JsonObject = patch
        .keys()
        .filter_map(|key| {
            server
                .data
                .get(key)
                .map(|value| (key.clone(), value.clone()))
        })
        .collect();
    let mut outcome = Outcome {
        data,
        deleted: false,
        field_clocks,
        pending: strategy == Strategy::Manual && !conflicts.is_empty(),
        status: OpStatus::Success,
        conflict_fields,
        strategy,
        client_data: patch.clone(),
        server_data,
        base_data: base_data(request),
    };
    if let (Strategy::Custom, Some(resolver), true) = (strategy, resolver, outcome.has_conflict()) {
        let base = base_data(request);
        let resolution = resolver.resolve(&ConflictInput {
            key: request.key,
            base: base.as_ref(),
            server: server.data,
            client: &client,
            server_time: server.updated_at,
            client_time: request.client_time,
            conflict_fields: &outcome.conflict_fields,
        });
        for (key, value) in &resolution.document {
            if outcome.data.get(key) != Some(value) {
                outcome
                    .field_clocks
                    .insert(key.clone(), request.client_time.max(server.updated_at));
            }
        }
        outcome.data = resolution.document;
        outcome.pending = resolution.pending;
    }
    outcome.status = match (outcome.has_conflict(), outcome.pending) {
        (false, _) => OpStatus::Success,
        (true, true) => OpStatus::Conflict,
        (true, false) => OpStatus::Merged,
    };
    outcome
}

fn both_changed(base: FieldBase<'_>, server: Option<&Value>, client: Option<&Value>) -> bool {
    if server == client {
        return false;
    }
    match base {
        FieldBase::Known(base) => base != server && base != client,
        FieldBase::Unknown => true,
    }
}

/// The resolved value of one field (`None`: absent), recording the paths
/// both sides changed differently.
fn resolve_value(
    base: FieldBase<'_>,
    server: Option<&Value>,
    client: Option<&Value>,
    path: &FieldPath,
    leaf: &Leaf,
    conflicts: &mut Vec<FieldPath>,
) -> Option<Value> {
    if server == client {
        return server.cloned();
    }
    if let FieldBase::Known(base) = base {
        if base == server {
            return client.cloned();
        }
        if base == client {
            return server.cloned();
        }
    }
    if let (Some(Value::Object(server_map)), Some(Value::Object(client_map))) = (server, client) {
        let keys: BTreeSet<&String> = server_map.keys().chain(client_map.keys()).collect();
        let mut merged = JsonObject::new();
        for key in keys {
            let child_base = match base {
                FieldBase::Known(Some(Value::Object(base_map))) => {
                    FieldBase::Known(base_map.get(key))
                }
                FieldBase::Known(_) => FieldBase::Known(None),
                FieldBase::Unknown => FieldBase::Unknown,
            };
            let child = resolve_value(
                child_base,
                server_map.get(key),
                client_map.get(key),
                &path.child(key.clone()),
                leaf,
                conflicts,
            );
            if let Some(value) = child {
                merged.insert(key.clone(), value);
            }
        }
        return Some(Value::Object(merged));
    }
    conflicts.push(path.clone());
    let later = || {
        if leaf.client_is_later {
            client.cloned()
        } else {
            server.cloned()
        }
    };
    match leaf.strategy {
        Strategy::ServerWins | Strategy::Manual => server.cloned(),
        Strategy::ClientWins => client.cloned(),
        Strategy::Lww => later(),
        Strategy::Merge | Strategy::Custom => {
            let base_value = match base {
                FieldBase::Known(base) => base,
                FieldBase::Unknown => None,
            };
            merge_leaf(base_value, server, client, leaf).unwrap_or_else(later)
        }
    }
}

/// The type-aware merge of a leaf both sides changed; `None` where the
/// types do not merge (the caller falls back to last-write-wins).
fn merge_leaf(
    base: Option<&Value>,
    server: Option<&Value>,
    client: Option<&Value>,
    leaf: &Leaf,
) -> Option<Option<Value>> {
    match (base, server?, client?) {
        (base, Value::Array(server), Value::Array(client))
            if is_scalar_array(server) && is_scalar_array(client) =>
        {
            let base = match base {
                Some(Value::Array(base)) => base.as_slice(),
                _ => &[],
            };
            Some(Some(Value::Array(merge_arrays(base, server, client))))
        }
        // Text merges against a known base string only: two texts without
        // one would merge as two insertions, both kept.
        (Some(Value::String(base)), Value::String(server), Value::String(client))
            if leaf.merges_text =>
        {
            // The merge orders the sides by their clocks, so its result
            // does not depend on which of two writes arrived first.
            let (earlier, later) = if leaf.client_is_later {
                (server, client)
            } else {
                (client, server)
            };
            Some(Some(Value::String(text::merge(base, earlier, later).text)))
        }
        _ => None,
    }
}

fn is_scalar_array(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| !item.is_array() && !item.is_object())
}

/// Three-way merge of arrays of scalars (`docs/protocol.md`, "Strategies"):
/// the base items neither side removed, in base order, then the client's
/// additions, then the server's, each once; an item either side removed
/// stays removed.
pub fn merge_arrays(base: &[Value], server: &[Value], client: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::new();
    let push = |item: &Value, merged: &mut Vec<Value>| {
        if !merged.contains(item) {
            merged.push(item.clone());
        }
    };
    for item in base {
        if server.contains(item) && client.contains(item) {
            push(item, &mut merged);
        }
    }
    for item in client.iter().chain(server) {
        if !base.contains(item) {
            push(item, &mut merged);
        }
    }
    merged
}

fn apply_rule(
    rule: FieldRule,
    base: FieldBase<'_>,
    server: Option<&Value>,
    client: Option<&Value>,
    client_is_later: bool,
    config: &CollectionConfig,
) -> Option<Value> {
    let later = || {
        if client_is_later {
            client.cloned()
        } else {
            server.cloned()
        }
    };
    match rule {
        FieldRule::ServerWins => server.cloned(),
        FieldRule::ClientWins => client.cloned(),
        FieldRule::Lww => later(),
        FieldRule::Merge => {
            let leaf = Leaf {
                strategy: Strategy::Merge,
                client_is_later,
                merges_text: true,
            };
            resolve_value(
                base,
                server,
                client,
                &FieldPath::root(),
                &leaf,
                &mut Vec::new(),
            )
        }
        FieldRule::Union => match (server, client) {
            (Some(Value::Array(server)), Some(Value::Array(client))) => {
                Some(Value::Array(merge_arrays(&[], server, client)))
            }
            _ => later(),
        },
        FieldRule::Concat => match (server, client) {
            (Some(Value::String(server)), Some(Value::String(client))) => Some(Value::String(
                format!("{client}{}{server}", config.concat_separator),
            )),
            _ => later(),
        },
        FieldRule::Max | FieldRule::Min => match (
            server.and_then(Value::as_f64),
            client.and_then(Value::as_f64),
        ) {
            (Some(s), Some(c)) => {
                let client_chosen = if rule == FieldRule::Max { c > s } else { c < s };
                if client_chosen {
                    client.cloned()
                } else {
                    server.cloned()
                }
            }
            _ => later(),
        },
    }
}

/// The local view of a client: the server's document with the client's
/// still-pending patches replayed on top, in order. Every replica that
/// adopts the server's result and rebases the same pending edits sees the
/// same document.
pub fn rebase(server: &JsonObject, pending: &[JsonObject]) -> JsonObject {
    pending.iter().fold(server.clone(), |doc, patch| {
        merge_patch::apply_to_object(&doc, patch)
    })
}
