//! Documents: a JSON object plus the server's metadata about it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::clock::Hlc;
use crate::names::{CollectionName, DocId, Namespace, Seq, Version};

/// Where a document lives: namespace, collection and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DocKey {
    /// The namespace the document belongs to.
    pub namespace: Namespace,
    /// The collection inside the namespace.
    pub collection: CollectionName,
    /// The document's id within the collection.
    pub id: DocId,
}

impl DocKey {
    /// The key of `id` in `collection` of `namespace`.
    pub fn new(namespace: Namespace, collection: CollectionName, id: DocId) -> DocKey {
        DocKey {
            namespace,
            collection,
            id,
        }
    }
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.collection, self.id)
    }
}

/// When each top-level field of a document was last written (the write's
/// HLC). Kept beside the document by the store, never sent in its data, so
/// per-field last-write-wins does not depend on the order writes arrive in.
pub type FieldClocks = BTreeMap<String, Hlc>;

/// A stored document as the API returns it: `{"id", "namespace",
/// "collection", "data", "version", "seq", "updatedAt", "deleted"}`.
///
/// The metadata travels beside the data, never inside it. A deleted document
/// stays as a tombstone (`deleted: true`, empty data) so that every replica
/// learns of the delete and a stale update cannot bring it back unnoticed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    /// The document's id.
    pub id: DocId,
    /// Its namespace.
    pub namespace: Namespace,
    /// Its collection.
    pub collection: CollectionName,
    /// The application's data.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: JsonObject,
    /// +1 on each accepted change; 1 after creation.
    pub version: Version,
    /// The log position of its last change.
    pub seq: Seq,
    /// The HLC time of its last change.
    pub updated_at: Hlc,
    /// Whether the document is a tombstone.
    pub deleted: bool,
}

impl Document {
    /// Where this document lives.
    pub fn key(&self) -> DocKey {
        DocKey::new(
            self.namespace.clone(),
            self.collection.clone(),
            self.id.clone(),
        )
    }

    /// Whether this document belongs at `key`.
    pub fn is_at(&self, key: &DocKey) -> bool {
        self.id == key.id && self.collection == key.collection && self.namespace == key.namespace
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn serialises_to_the_api_shape() {
        let doc = Document {
            id: DocId::new("doc-1").unwrap(),
            namespace: Namespace::default(),
            collection: CollectionName::new("todos").unwrap(),
            data: json!({"title": "Buy milk", "done": false})
                .as_object()
                .unwrap()
                .clone(),
            version: Version(4),
            seq: Seq(1234),
            updated_at: Hlc::parse("2023-12-01T10:30:00.000Z-00000000-0000000000000001").unwrap(),
            deleted: false,
        };
        let expected = json!({
            "id": "doc-1", "namespace": "default", "collection": "todos",
            "data": {"title": "Buy milk", "done": false},
            "version": 4, "seq": 1234,
            "updatedAt": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
            "deleted": false
        });
        assert_eq!(serde_json::to_value(&doc).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Document>(expected).unwrap(), doc);
        assert_eq!(doc.key().to_string(), "default/todos/doc-1");
        assert!(doc.is_at(&doc.key()));
    }
}
