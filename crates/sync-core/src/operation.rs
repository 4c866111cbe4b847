//! Client operations: what a device asks the server to do to one document.
//!
//! The wire shape (`docs/protocol.md`, "Operations"), as bulk sync and
//! `POST /v1/sync` carry it:
//!
//! ```json
//! { "opId": "0192...", "action": "update", "collection": "visitors",
//!   "namespace": "default", "id": "doc-1", "localId": "local_001",
//!   "serverId": "doc-1", "baseVersion": 3,
//!   "timestamp": "2023-12-01T10:30:00.000Z", "data": { "title": "Senior Developer" } }
//! ```
//!
//! Every field but `action` is optional on the wire (some clients send no
//! `opId`), so deserialising checks only types and names;
//! [`Operation::validate`] checks that the fields fit the action.
//!
//! An operation may carry a [`Priority`] (`high`, `normal`, `low`; normal
//! when left out). It says how urgent the write is, never what it does:
//! clients send high operations first and the server admits them first
//! under load, but the operations of one document keep their order, and
//! the priority takes no part in the `opId` the server derives.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::error::CoreError;
use crate::names::{BranchName, CollectionName, DocId, Namespace, OpId, Version};
use crate::timestamp::Timestamp;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Action {
    /// Create a document; `data` is the whole document.
    Create,
    /// Change fields; `data` is an RFC 7386 merge patch (`null` removes).
    Update,
    /// Delete the document (it stays as a tombstone).
    Delete,
    /// Create the document if it does not exist, otherwise update it.
    Upsert,
}

impl Action {
    /// The action as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Upsert => "upsert",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an operation is: the order clients drain their queues in
/// and servers admit waiting writes in. It never reorders the operations
/// of one document, and it changes nothing of what an operation does.
///
/// The derived order puts the most urgent first: `High < Normal < Low`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    /// Goes before everything else waiting (a payment, a message being sent).
    High,
    /// The default.
    #[default]
    Normal,
    /// Can wait (analytics, logs, thumbnails); a client on a metered link
    /// may hold these back.
    Low,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The priority as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Whether this is the default, which the wire leaves out.
    pub fn is_normal(&self) -> bool {
        *self == Priority::Normal
    }

    /// Its position in [`Priority::ALL`]: 0 for high, 2 for low.
    pub fn index(self) -> usize {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Priority {
    type Err = CoreError;

    fn from_str(text: &str) -> Result<Priority, CoreError> {
        match text {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            other => Err(CoreError::InvalidOperation(format!(
                "unknown priority {other:?}: expected high, normal or low"
            ))),
        }
    }
}

/// One operation on one document, as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Operation {
    /// The idempotency key; the server makes one up when it is missing (and
    /// such an operation is then not protected against replays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<OpId>,
    /// What to do.
    pub action: Action,
    /// The collection; may be omitted where the endpoint names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionName>,
    /// The branch of the document to write instead of the document itself
    /// (`docs/protocol.md`, "Branches"): the same as the collection's
    /// branch address `collection@branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchName>,
    /// The namespace; `default` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// The document id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<DocId>,
    /// The client's own id for the document, echoed in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_id: Option<String>,
    /// The server's id for the document; same as `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<DocId>,
    /// The document version the client's edit was made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<Version>,
    /// When the client made the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The whole document (create) or the changed fields (update, upsert).
    #[serde(default, alias = "changes", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<JsonObject>,
    /// How urgent it is; `normal` when left out.
    #[serde(default, skip_serializing_if = "Priority::is_normal")]
    pub priority: Priority,
}

impl Operation {
    /// The longest `localId` accepted, in characters.
    pub const LOCAL_ID_MAX_CHARS: usize = 128;

    /// An operation with only the action set; fill in the rest by field.
    pub fn new(action: Action) -> Operation {
        Operation {
            op_id: None,
            action,
            collection: None,
            branch: None,
            namespace: None,
            id: None,
            local_id: None,
            server_id: None,
            base_version: None,
            timestamp: None,
            data: None,
            priority: Priority::Normal,
        }
    }

    /// The document this operation targets: `id`, or else `serverId`.
    /// Both present and different is an error.
    pub fn document_id(&self) -> Result<Option<&DocId>, CoreError> {
        match (&self.id, &self.server_id) {
            (Some(id), Some(server_id)) if id != server_id => Err(CoreError::InvalidOperation(
                format!("id {id:?} and serverId {server_id:?} name different documents"),
            )),
            (Some(id), _) => Ok(Some(id)),
            (None, server_id) => Ok(server_id.as_ref()),
        }
    }

    /// Checks that the fields fit the action: every action but `create`
    /// names its document, `create`, `update` and `upsert` carry data.
    pub fn validate(&self) -> Result<(), CoreError> {
        let id = self.document_id()?;
        if let Some(local_id) = &self.local_id {
            let chars = local_id.chars().count();
            if chars == 0
                || chars > Self::LOCAL_ID_MAX_CHARS
                || local_id.chars().any(char::is_control)
            {
                return Err(CoreError::InvalidOperation(format!(
                    "localId must be 1-{} characters without control characters",
                    Self::LOCAL_ID_MAX_CHARS
                )));
            }
        }
        let needs_id = !matches!(self.action, Action::Create);
        if needs_id && id.is_none() {
            return Err(CoreError::InvalidOperation(format!(
                "{} needs the document's id or serverId",
                self.action
            )));
        }
        let needs_data = !matches!(self.action, Action::Delete);
        if needs_data && self.data.is_none() {
            return Err(CoreError::InvalidOperation(format!(
                "{} needs data",
                self.action
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(value: serde_json::Value) -> Result<Operation, String> {
        let op: Operation = serde_json::from_value(value).map_err(|e| e.to_string())?;
        op.validate().map_err(|e| e.to_string())?;
        Ok(op)
    }

    #[test]
    fn reads_the_seed_004_operations_verbatim() {
        let create = op(json!({
            "action": "create", "localId": "local_001",
            "timestamp": "2023-12-01T10:30:00.000Z",
            "data": {"name": "Alice Johnson", "interests": ["AI", "machine learning"]}
        }))
        .unwrap();
        assert_eq!(create.action, Action::Create);
        assert_eq!(create.local_id.as_deref(), Some("local_001"));
        assert_eq!(create.document_id().unwrap(), None);

        let update = op(json!({
            "action": "update", "localId": "local_002", "serverId": "uuid-existing-456",
            "timestamp": "2023-12-01T11:00:00.000Z",
            "data": {"title": "Senior Developer"}
        }))
        .unwrap();
        assert_eq!(update.document_id().unwrap().unwrap(), "uuid-existing-456");

        let delete = op(json!({
            "action": "delete", "localId": "local_003", "serverId": "uuid-to-delete-789",
            "timestamp": "2023-12-01T11:15:00.000Z"
        }))
        .unwrap();
        assert_eq!(delete.action, Action::Delete);
    }

    #[test]
    fn reads_the_spec_operation_and_writes_it_back() {
        let wire = json!({
            "opId": "0192f5e4-8a1b-7c3d-9e2f-123456789abc", "action": "update",
            "collection": "visitors", "namespace": "default",
            "id": "doc-1", "localId": "local_001", "serverId": "doc-1",
            "baseVersion": 3, "timestamp": "2023-12-01T10:30:00.000Z",
            "data": {"title": "Senior Developer"}
        });
        let parsed = op(wire.clone()).unwrap();
        assert_eq!(parsed.base_version, Some(Version(3)));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }

    #[test]
    fn rejects_operations_that_do_not_fit_their_action() {
        for (wire, needle) in [
            (
                json!({"action": "update", "data": {}}),
                "needs the document's id",
            ),
            (json!({"action": "delete"}), "needs the document's id"),
            (json!({"action": "update", "id": "a"}), "needs data"),
            (json!({"action": "create"}), "needs data"),
            (json!({"action": "upsert", "id": "a"}), "needs data"),
            (
                json!({"action": "delete", "id": "a", "serverId": "b"}),
                "different documents",
            ),
            (
                json!({"action": "create", "data": {}, "localId": ""}),
                "localId",
            ),
            (json!({"action": "drop", "id": "a"}), "unknown variant"),
            (json!({"action": "create", "data": []}), "invalid type"),
            (
                json!({"action": "create", "data": {}, "collection": "a b"}),
                "invalid collection",
            ),
            (
                json!({"action": "create", "data": {}, "timestamp": "noon"}),
                "invalid timestamp",
            ),
            (
                json!({"action": "create", "data": {}, "baseVersion": -1}),
                "invalid value",
            ),
        ] {
            let error = op(wire.clone()).unwrap_err();
            assert!(error.contains(needle), "{wire}: {error}");
        }
    }

    #[test]
    fn priority_is_normal_unless_said_and_left_out_when_normal() {
        let plain = op(json!({"action": "delete", "id": "a"})).unwrap();
        assert_eq!(plain.priority, Priority::Normal);
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"action": "delete", "id": "a"})
        );
        let high = op(json!({"action": "delete", "id": "a", "priority": "high"})).unwrap();
        assert_eq!(high.priority, Priority::High);
        assert_eq!(serde_json::to_value(&high).unwrap()["priority"], "high");
        let error = op(json!({"action": "delete", "id": "a", "priority": "urgent"})).unwrap_err();
        assert!(error.contains("unknown variant"), "{error}");
        assert!(Priority::High < Priority::Normal && Priority::Normal < Priority::Low);
        assert_eq!("low".parse::<Priority>().unwrap(), Priority::Low);
        assert!("LOW".parse::<Priority>().is_err());
    }

    #[test]
    fn changes_is_an_alias_for_data() {
        let parsed = op(json!({"action": "update", "id": "a", "changes": {"x": 1}})).unwrap();
        assert_eq!(parsed.data.unwrap()["x"], 1);
    }
}
