//! Which document an operation is about: the unit of the queue's FIFO order
//! and of coalescing.

use sync_core::queue::QueueId;
use sync_core::{CollectionName, DocId, Namespace, Operation};

/// The document an operation targets. Two operations with the same key go
/// out in the order they were enqueued, one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DocumentKey {
    namespace: String,
    collection: Option<String>,
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    /// `id` or `serverId`.
    Id(String),
    /// A create without id: its `localId` names the document until the
    /// server gives it an id.
    Local(String),
    /// A create with neither: its `opId`.
    Op(String),
    /// Nothing names it: the entry is its own document.
    Entry(u64),
}

impl DocumentKey {
    /// The key of document `id` of `collection` in `namespace`.
    pub(crate) fn document(
        namespace: &Namespace,
        collection: &CollectionName,
        id: &DocId,
    ) -> DocumentKey {
        DocumentKey {
            namespace: namespace.as_str().to_owned(),
            collection: Some(collection.as_str().to_owned()),
            target: Target::Id(id.as_str().to_owned()),
        }
    }

    /// The key of `op`, stored at `id`. A missing namespace is `default`,
    /// as on the server.
    pub(crate) fn of(op: &Operation, id: QueueId) -> DocumentKey {
        let namespace = op
            .namespace
            .as_ref()
            .map_or(Namespace::DEFAULT, Namespace::as_str)
            .to_owned();
        let collection = op.collection.as_ref().map(|c| c.as_str().to_owned());
        let target = match op.document_id() {
            Ok(Some(doc)) => Target::Id(doc.as_str().to_owned()),
            // Both ids present and different: the operation was refused at
            // enqueue, so this only happens for records written by another
            // version; keeping it apart is the safe choice.
            Err(_) => Target::Entry(id.0),
            Ok(None) => match (&op.local_id, &op.op_id) {
                (Some(local), _) => Target::Local(local.clone()),
                (None, Some(op_id)) => Target::Op(op_id.as_str().to_owned()),
                (None, None) => Target::Entry(id.0),
            },
        };
        DocumentKey {
            namespace,
            collection,
            target,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(value: serde_json::Value, id: u64) -> DocumentKey {
        let op: Operation = serde_json::from_value(value).unwrap();
        DocumentKey::of(&op, QueueId(id))
    }

    #[test]
    fn documents_are_named_by_id_then_local_id_then_op_id() {
        let update = key(
            json!({"action": "update", "collection": "t", "id": "a", "data": {}}),
            1,
        );
        let by_server_id = key(
            json!({"action": "delete", "collection": "t", "namespace": "default", "serverId": "a"}),
            2,
        );
        assert_eq!(update, by_server_id);
        let other_namespace = key(
            json!({"action": "delete", "collection": "t", "namespace": "team", "id": "a"}),
            3,
        );
        assert_ne!(update, other_namespace);
        let local = key(
            json!({"action": "create", "collection": "t", "localId": "a", "data": {}}),
            4,
        );
        assert_ne!(update, local);
        let anonymous_1 = key(json!({"action": "create", "data": {}}), 5);
        let anonymous_2 = key(json!({"action": "create", "data": {}}), 6);
        assert_ne!(anonymous_1, anonymous_2);
        let by_op = key(json!({"action": "create", "opId": "o", "data": {}}), 7);
        assert_eq!(
            by_op,
            key(json!({"action": "create", "opId": "o", "data": {}}), 8)
        );
    }
}
