//! Event sourcing: a document rebuilt from its changes.

use std::collections::BTreeMap;

use sync_core::{Change, ChangeOp, DocKey, Document, JsonObject, Version};
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

/// The document as it was at `version`, from its history (oldest first);
/// `None` when the history holds no such version.
#[cfg_attr(not(any(feature = "sled", feature = "postgres")), allow(dead_code))]
pub(crate) fn document_at(history: &[Change], version: Version) -> Option<Document> {
    let upto = history.iter().take_while(|c| c.version <= version);
    let document = replay(upto)?;
    (document.version == version).then_some(document)
}

/// The documents whose stored projection differs from what their changes
/// replay to, and the stored documents no change accounts for.
#[cfg_attr(not(any(feature = "sled", feature = "postgres")), allow(dead_code))]
pub(crate) fn projection_differences(
    changes_by_document: &BTreeMap<DocKey, Vec<Change>>,
    mut stored: BTreeMap<DocKey, Document>,
) -> Vec<DocKey> {
    let mut differing = Vec::new();
    for (key, changes) in changes_by_document {
        if stored.remove(key) != replay(changes) {
            differing.push(key.clone());
        }
    }
    differing.extend(stored.into_keys());
    differing
}
