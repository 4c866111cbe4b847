//! Key layout of the sled trees.
//!
//! Names never contain control characters, so `0x00` separates the parts
//! of a document key and `0x01` ends it before a version: no key is a
//! prefix of another document's keys.

use sync_core::{DocKey, Seq, Version};

/// `namespace 0x00 collection 0x00 id`.
pub(crate) fn document(key: &DocKey) -> Vec<u8> {
    let mut out = collection_prefix(key.namespace.as_str(), key.collection.as_str());
    out.extend_from_slice(key.id.as_str().as_bytes());
    out
}

/// `namespace 0x00 collection 0x00`: the prefix of a collection's documents.
pub(crate) fn collection_prefix(namespace: &str, collection: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(namespace.len() + collection.len() + 40);
    out.extend_from_slice(namespace.as_bytes());
    out.push(0);
    out.extend_from_slice(collection.as_bytes());
    out.push(0);
    out
}

/// `document key 0x01`: the prefix of a document's history entries.
pub(crate) fn history_prefix(key: &DocKey) -> Vec<u8> {
    let mut out = document(key);
    out.push(1);
    out
}

/// `document key 0x01 version(be)` → seq of the change that made it.
pub(crate) fn history(key: &DocKey, version: Version) -> Vec<u8> {
    let mut out = history_prefix(key);
    out.extend_from_slice(&version.get().to_be_bytes());
    out
}

/// A log key: the seq, big-endian, so sled's order is log order.
pub(crate) fn seq(seq: Seq) -> [u8; 8] {
    seq.get().to_be_bytes()
}

/// The seq a log key or history value holds.
pub(crate) fn decode_seq(bytes: &[u8]) -> Option<Seq> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(array)))
}
