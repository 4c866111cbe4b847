//! What a committed write makes, the same in every store: its change-log
//! entry and the document after it.

use sync_core::store::{StoredDocument, Write, WriteEffect};
use sync_core::{Change, ChangeOp, Document, Seq, Version};

/// A write's change at `seq`, making the document's `version`.
pub(crate) struct Committed {
    /// The change-log entry.
    pub(crate) change: Change,
    /// The document after it.
    pub(crate) stored: StoredDocument,
}

/// The change and document `write` makes when committed at `seq` with
/// `version`; `None` for a write that changes no document.
pub(crate) fn committed(write: &Write, seq: Seq, version: Version) -> Option<Committed> {
    let WriteEffect::Change {
        op,
        delta,
        data,
        field_clocks,
        timestamp,
    } = &write.effect
    else {
        return None;
    };
    let deleted = *op == ChangeOp::Delete;
    let key = &write.key;
    Some(Committed {
        change: Change {
            seq,
            namespace: key.namespace.clone(),
            collection: key.collection.clone(),
            id: key.id.clone(),
            op: *op,
            delta: delta.clone(),
            version,
            timestamp: *timestamp,
            op_id: write.op_id.clone(),
            device_id: write.device_id.clone(),
            user: write.user.clone(),
            data: (!deleted).then(|| data.clone()),
        },
        stored: StoredDocument {
            document: Document {
                id: key.id.clone(),
                namespace: key.namespace.clone(),
                collection: key.collection.clone(),
                data: if deleted {
                    Default::default()
                } else {
                    data.clone()
                },
                version,
                seq,
                updated_at: *timestamp,
                deleted,
            },
            field_clocks: field_clocks.clone(),
        },
    })
}
