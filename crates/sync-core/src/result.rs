//! The outcome of one operation, as bulk sync and the WebSocket `ack` report it.

use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::conflict::{ConflictData, Strategy};
use crate::error::{ErrorBody, ErrorCode};
use crate::names::{ConflictId, DocId, OpId, Seq, Version};
use crate::operation::Action;

/// How an operation ended (`docs/protocol.md`, "Results").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OpStatus {
    /// Applied as sent.
    Success,
    /// Applied with an automatic conflict resolution.
    Merged,
    /// Left pending for a manual decision.
    Conflict,
    /// Applied before; this replay changed nothing.
    Duplicate,
    /// Rejected; nothing changed.
    Error,
}

impl OpStatus {
    /// Every status.
    pub const ALL: [OpStatus; 5] = [
        OpStatus::Success,
        OpStatus::Merged,
        OpStatus::Conflict,
        OpStatus::Duplicate,
        OpStatus::Error,
    ];

    /// The status as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Success => "success",
            OpStatus::Merged => "merged",
            OpStatus::Conflict => "conflict",
            OpStatus::Duplicate => "duplicate",
            OpStatus::Error => "error",
        }
    }

    /// Whether the server has durably accepted the operation (the statuses
    /// the guarantees of `docs/protocol.md` count as acknowledged).
    pub fn is_acknowledged(self) -> bool {
        matches!(
            self,
            OpStatus::Success | OpStatus::Merged | OpStatus::Duplicate
        )
    }
}

/// One entry of a bulk-sync `results` list (`docs/protocol.md`, "Results"):
/// `{"opId", "localId", "serverId", "action", "status", "version", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpResult {
    /// The operation's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<OpId>,
    /// The client's id for the document, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// The document's id on the server (generated for a create without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<DocId>,
    /// The operation's action.
    pub action: Action,
    /// How it ended.
    pub status: OpStatus,
    /// The document's version after the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The log position of the change it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// The conflict recorded for it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_id: Option<ConflictId>,
    /// The strategy that resolved its conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Both sides of a pending conflict (status `conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_data: Option<ConflictData>,
    /// The whole document after an automatic resolution (status `merged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<JsonObject>,
    /// Why it was rejected (status `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl OpResult {
    /// A result with only the action and status set.
    pub fn new(action: Action, status: OpStatus) -> OpResult {
        OpResult {
            op_id: None,
            local_id: None,
            server_id: None,
            action,
            status,
            version: None,
            seq: None,
            conflict_id: None,
            strategy: None,
            conflict_data: None,
            data: None,
            error: None,
        }
    }

    /// The same result as reported to a replay of its operation.
    pub fn as_duplicate(&self) -> OpResult {
        OpResult {
            status: OpStatus::Duplicate,
            ..self.clone()
        }
    }
}

/// One entry of a bulk-sync `errors` list: `{"opId"?, "localId"?, "code", "message"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpError {
    /// The failed operation's key, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<OpId>,
    /// The client's id for the document, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// Its position in the request's `operations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn serialises_as_seed_004_results() {
        let mut result = OpResult::new(Action::Create, OpStatus::Success);
        result.local_id = Some("local_123456".into());
        result.server_id = Some(DocId::new("uuid-server-789").unwrap());
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({"localId": "local_123456", "serverId": "uuid-server-789",
                   "action": "create", "status": "success"})
        );
        let replay = result.as_duplicate();
        assert_eq!(replay.status, OpStatus::Duplicate);
        assert!(replay.status.is_acknowledged());
        assert!(!OpStatus::Conflict.is_acknowledged());
    }
}
