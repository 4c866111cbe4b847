//! Changes: the entries of the append-only log, the event store from which
//! every document is a projection.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::JsonObject;
use crate::clock::Hlc;
use crate::document::DocKey;
use crate::names::{CollectionName, DeviceId, DocId, Namespace, OpId, Seq, UserId, Version};

/// What a change did to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChangeOp {
    /// The document came into existence (or back, after a delete).
    Insert,
    /// Some fields changed.
    Update,
    /// The document became a tombstone.
    Delete,
}

impl ChangeOp {
    /// The op as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

impl fmt::Display for ChangeOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the change log.
///
/// `delta` is what replay applies: the whole document for an insert, an RFC
/// 7386 merge patch for an update (`null` removes a field), empty for a
/// delete. `data` is the whole document after the change (absent for a
/// delete), so a subscriber never has to fetch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// Position in the log: gap-free, strictly increasing.
    pub seq: Seq,
    /// The document's namespace.
    pub namespace: Namespace,
    /// The document's collection.
    pub collection: CollectionName,
    /// The document's id.
    pub id: DocId,
    /// What happened.
    pub op: ChangeOp,
    /// The changed fields only (see the type's docs).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub delta: JsonObject,
    /// The document's version after this change.
    pub version: Version,
    /// When the write was made (HLC).
    pub timestamp: Hlc,
    /// The operation that caused the change.
    pub op_id: OpId,
    /// The device the operation came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// The user who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// The whole document after the change; `None` for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<JsonObject>,
}

impl Change {
    /// The document this change is about.
    pub fn key(&self) -> DocKey {
        DocKey::new(
            self.namespace.clone(),
            self.collection.clone(),
            self.id.clone(),
        )
    }
}

/// A [`Change`] whose delta and document stay JSON text: what a reader that
/// passes changes on without looking into their documents (a subscriber's
/// catch-up) reads, without the cost of building them. Its JSON is the
/// [`Change`]'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawChange {
    /// As in [`Change`].
    pub seq: Seq,
    /// As in [`Change`].
    pub namespace: Namespace,
    /// As in [`Change`].
    pub collection: CollectionName,
    /// As in [`Change`].
    pub id: DocId,
    /// As in [`Change`].
    pub op: ChangeOp,
    /// The changed fields, as JSON text.
    pub delta: Box<RawValue>,
    /// As in [`Change`].
    pub version: Version,
    /// As in [`Change`].
    pub timestamp: Hlc,
    /// As in [`Change`].
    pub op_id: OpId,
    /// As in [`Change`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// As in [`Change`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// The whole document after the change, as JSON text; `None` for a
    /// delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl From<Change> for RawChange {
    fn from(change: Change) -> RawChange {
        RawChange {
            seq: change.seq,
            namespace: change.namespace,
            collection: change.collection,
            id: change.id,
            op: change.op,
            delta: raw(&change.delta),
            version: change.version,
            timestamp: change.timestamp,
            op_id: change.op_id,
            device_id: change.device_id,
            user: change.user,
            data: change.data.as_ref().map(raw),
        }
    }
}

fn raw(object: &JsonObject) -> Box<RawValue> {
    // A map with string keys always serialises.
    serde_json::value::to_raw_value(object).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wire_shape_is_camel_case_and_skips_empty_fields() {
        let change: Change = serde_json::from_value(json!({
            "seq": 7, "namespace": "default", "collection": "todos", "id": "doc-1",
            "op": "delete", "delta": {}, "version": 3,
            "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
            "opId": "op-1"
        }))
        .unwrap();
        assert_eq!(change.op, ChangeOp::Delete);
        assert_eq!(change.data, None);
        let back = serde_json::to_value(&change).unwrap();
        assert!(back.get("deviceId").is_none());
        assert_eq!(back["opId"], "op-1");
        assert_eq!(change.key().to_string(), "default/todos/doc-1");
    }
}
