//! Event sourcing: a document rebuilt from its changes.

use sync_core::{Change, ChangeOp, Document, JsonObject};
use sync_diff::merge_patch;

/// Replays `changes` of one document, oldest first. The first change may be
/// any change (older ones may have been compacted away): its whole document
/// is the starting snapshot; every later one is applied as its delta.
/// `None` when there is nothing to replay.
pub fn replay<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Option<Document> {
    let mut document: Option<Document> = None;
    for change in changes {
        let data = match (&document, change.op) {
            (_, ChangeOp::Delete) => JsonObject::new(),
            (Some(current), ChangeOp::Update) if !current.deleted => {
                merge_patch::apply_to_object(&current.data, &change.delta)
            }
            (None, ChangeOp::Update) => change.data.clone().unwrap_or_default(),
            _ => change.delta.clone(),
        };
        document = Some(Document {
            id: change.id.clone(),
            namespace: change.namespace.clone(),
            collection: change.collection.clone(),
            data,
            version: change.version,
            seq: change.seq,
            updated_at: change.timestamp,
            deleted: change.op == ChangeOp::Delete,
        });
    }
    document
}
