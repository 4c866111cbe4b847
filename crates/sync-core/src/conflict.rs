//! Conflicts: the strategies that resolve them, the records that remember
//! them, and the [`ConflictResolver`] trait an application implements for
//! its own rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::clock::Hlc;
use crate::document::DocKey;
use crate::names::{CollectionName, ConflictId, DeviceId, DocId, Namespace, OpId, UserId};
use crate::timestamp::Timestamp;

/// How a conflict is resolved (`docs/protocol.md`, "Strategies").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Strategy {
    /// One-sided changes merge; fields both sides changed merge by type
    /// (arrays, objects, text) and fall back to last-write-wins.
    #[default]
    Merge,
    /// Per field, the later HLC wins.
    Lww,
    /// The server's value wins every conflicting field.
    ServerWins,
    /// The client's value wins every conflicting field.
    ClientWins,
    /// Conflicting fields are left as they are and the conflict is stored
    /// as pending until someone resolves it.
    Manual,
    /// The application's resolver, or named per-field rules.
    Custom,
}

impl Strategy {
    /// Every strategy, for tables and exhaustive tests.
    pub const ALL: [Strategy; 6] = [
        Strategy::Merge,
        Strategy::Lww,
        Strategy::ServerWins,
        Strategy::ClientWins,
        Strategy::Manual,
        Strategy::Custom,
    ];

    /// The strategy as written on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Lww => "lww",
            Strategy::ServerWins => "server_wins",
            Strategy::ClientWins => "client_wins",
            Strategy::Manual => "manual",
            Strategy::Custom => "custom",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a recorded conflict still waits for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConflictStatus {
    /// Left for a person or the application to resolve.
    Pending,
    /// Resolved by a strategy or by an explicit resolve call.
    Resolved,
}

/// Both sides of a conflict and the fields they disagree on, as bulk sync
/// reports them: `{"clientData", "serverData", "conflictFields"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictData {
    /// What the client sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub client_data: JsonObject,
    /// The server's document when the operation arrived.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub server_data: JsonObject,
    /// Fields both sides changed to different values (dotted paths for
    /// nested fields, `title` or `address.city`).
    pub conflict_fields: Vec<String>,
}

/// A conflict as it is stored in the history and listed by the API.
///
/// The first fields are the conflict entry of a bulk-sync response (`id`,
/// `localId`, `serverId`, `conflictData`, `strategy`, `status`,
/// `resolvedData`); the rest say where, who and when (`docs/protocol.md`,
/// "Conflict records").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictRecord {
    /// The conflict's id.
    pub id: ConflictId,
    /// The client's id for the document, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// The document's id.
    pub server_id: DocId,
    /// Both sides and the conflicting fields.
    pub conflict_data: ConflictData,
    /// The strategy that resolved it, or `manual` while pending.
    pub strategy: Strategy,
    /// Pending or resolved.
    pub status: ConflictStatus,
    /// The whole document after resolution; `null` while pending.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub resolved_data: Option<JsonObject>,
    /// The document's namespace.
    pub namespace: Namespace,
    /// The document's collection.
    pub collection: CollectionName,
    /// The common ancestor both sides edited, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub base_data: Option<JsonObject>,
    /// The operation that ran into the conflict.
    pub op_id: OpId,
    /// The device that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// The user who sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// When the conflict was detected.
    pub created_at: Timestamp,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
}

impl ConflictRecord {
    /// The document the conflict is about.
    pub fn key(&self) -> DocKey {
        DocKey::new(
            self.namespace.clone(),
            self.collection.clone(),
            self.server_id.clone(),
        )
    }
}

/// Everything a resolver may look at: the common ancestor, both sides with
/// their write times, and the fields both changed.
#[derive(Debug, Clone, Copy)]
pub struct ConflictInput<'a> {
    /// The document concerned.
    pub key: &'a DocKey,
    /// The version the client edited, when known.
    pub base: Option<&'a JsonObject>,
    /// The server's current document.
    pub server: &'a JsonObject,
    /// The client's document: the base with the client's edit applied.
    pub client: &'a JsonObject,
    /// When the server's document was last written.
    pub server_time: Hlc,
    /// When the client made its edit (clamped to the allowed skew).
    pub client_time: Hlc,
    /// The fields both sides changed to different values.
    pub conflict_fields: &'a [String],
}

/// A resolver's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The whole document to store.
    pub document: JsonObject,
    /// The fields that were in conflict.
    pub conflict_fields: Vec<String>,
    /// The strategy that decided.
    pub strategy: Strategy,
    /// Whether some fields were left for a later decision (`manual`).
    pub pending: bool,
}

/// An application's own conflict rule (the `custom` strategy).
///
/// Resolution is a pure function of its input: the server calls it once per
/// conflict, stores the result and every client adopts it, so it must give
/// the same answer for the same input.
pub trait ConflictResolver: Send + Sync {
    /// Decides the document that results from a conflict.
    fn resolve(&self, input: &ConflictInput<'_>) -> Resolution;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strategies_use_snake_case_names() {
        for strategy in Strategy::ALL {
            assert_eq!(
                serde_json::to_value(strategy).unwrap(),
                json!(strategy.as_str())
            );
        }
        assert_eq!(Strategy::default(), Strategy::Merge);
    }

    #[test]
    fn record_serialises_with_seed_004_fields() {
        let record = ConflictRecord {
            id: ConflictId::new("c-1").unwrap(),
            local_id: Some("local_002".into()),
            server_id: DocId::new("uuid-existing-456").unwrap(),
            conflict_data: ConflictData {
                client_data: json!({"title": "Senior Developer"})
                    .as_object()
                    .unwrap()
                    .clone(),
                server_data: json!({"title": "Lead Developer"})
                    .as_object()
                    .unwrap()
                    .clone(),
                conflict_fields: vec!["title".into()],
            },
            strategy: Strategy::Manual,
            status: ConflictStatus::Pending,
            resolved_data: None,
            namespace: Namespace::default(),
            collection: CollectionName::new("visitors").unwrap(),
            base_data: None,
            op_id: OpId::new("op-1").unwrap(),
            device_id: None,
            user: None,
            created_at: Timestamp::parse("2023-12-01T11:20:00.000Z").unwrap(),
            resolved_at: None,
        };
        let wire = serde_json::to_value(&record).unwrap();
        assert_eq!(wire["localId"], "local_002");
        assert_eq!(wire["serverId"], "uuid-existing-456");
        assert_eq!(wire["conflictData"]["conflictFields"], json!(["title"]));
        assert_eq!(wire["status"], "pending");
        assert_eq!(wire["resolvedData"], serde_json::Value::Null);
        assert_eq!(
            serde_json::from_value::<ConflictRecord>(wire).unwrap(),
            record
        );
    }
}
