//! What the store keeps in its one sled tree: the keys, each starting with
//! a byte naming the kind of record, and how records are encoded.
//!
//! | key | value |
//! |---|---|
//! | `D` namespace 0x00 collection 0x00 id | the document with its field clocks (see `records`) |
//! | `L` seq (8 bytes, big-endian) | a page of changes, the last at that seq (see `pages`) |
//! | `O` opId | the operation's result (see `records`) |
//! | `C` conflict id | the conflict record (JSON) |
//! | `B` namespace 0x00 collection 0x00 id 0x00 branch | the branch record (JSON) |
//! | `S` device id | the device's counters behind the stats (JSON) |
//! | `M` name | the store's own records: format, log id, the other counters |
//!
//! A group commit rewrites the counters it changed: the totals, and the
//! counters of the devices whose operations it holds, so its cost does not
//! grow with the number of devices.
//!
//! Every value but the `M` and `S` records is sealed (compressed, encrypted) by the
//! store's codec, with its key as the encryption's additional data; so are
//! the device records of the `devices` tree, keyed by device id.
//!
//! One tree lets a group commit be one atomic `apply_batch`. A document's
//! history is the chain of its changes, newest first, each log entry
//! pointing to the one before it: no index record per change. Names never
//! contain control characters, so `0x00` separates the parts of a document
//! key and no document's key is a prefix of another collection's.

use std::collections::HashMap;

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_core::store::{DeviceStats, StoreStats};
use sync_core::{
    BranchName, Change, CollectionName, ConflictId, DeviceId, DocId, DocKey, Namespace, OpId,
    OpStatus, Seq, Strategy,
};

use crate::error::Error;

/// The tree holding every record but the devices.
pub(crate) const TREE: &str = "store";
/// The tree holding device records, written outside group commits.
pub(crate) const DEVICES_TREE: &str = "devices";

const DOCUMENT: u8 = b'D';
const LOG: u8 = b'L';
const OP: u8 = b'O';
const CONFLICT: u8 = b'C';
const BRANCH: u8 = b'B';
const DEVICE_STATS: u8 = b'S';

/// The format this build writes; see `migrate` for the ones before.
pub(crate) const FORMAT: u64 = 6;

/// `M format`: the layout's version; written last by a migration.
pub(crate) const FORMAT_KEY: &[u8] = b"Mformat";
/// `M log_id`: the log's id.
pub(crate) const LOG_ID_KEY: &[u8] = b"Mlog_id";
/// `M sealed`: the id of the key every record was last found to be under
/// (absent: unknown, or not encrypted).
pub(crate) const SEALED_KEY: &[u8] = b"Msealed";
/// `M stats`: the counters behind the stats but the devices'.
pub(crate) const STATS_KEY: &[u8] = b"Mstats";

/// The key of a document.
pub(crate) fn document(key: &DocKey) -> Vec<u8> {
    let mut out = collection_prefix(key.namespace.as_str(), key.collection.as_str());
    out.extend_from_slice(key.id.as_str().as_bytes());
    out
}

/// The prefix of a collection's documents.
pub(crate) fn collection_prefix(namespace: &str, collection: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(namespace.len() + collection.len() + 40);
    out.push(DOCUMENT);
    out.extend_from_slice(namespace.as_bytes());
    out.push(0);
    out.extend_from_slice(collection.as_bytes());
    out.push(0);
    out
}

/// The first byte of the store's own records.
const META: u8 = b'M';

/// Whether the record at `key` of the tree is sealed by the codec: all but
/// the store's own records and the counters.
pub(crate) fn is_sealed(key: &[u8]) -> bool {
    !matches!(key.first(), Some(&META | &DEVICE_STATS))
}

/// The prefix of every document key.
pub(crate) const DOCUMENTS: &[u8] = &[DOCUMENT];
/// The prefix of every log key.
pub(crate) const LOG_ENTRIES: &[u8] = &[LOG];
/// The prefix of every op result key.
pub(crate) const OPS: &[u8] = &[OP];
/// The prefix of every conflict key.
pub(crate) const CONFLICTS: &[u8] = &[CONFLICT];
/// The prefix of every branch key.
pub(crate) const BRANCHES: &[u8] = &[BRANCH];

/// The prefix of every device's counters.
pub(crate) const DEVICES_STATS: &[u8] = &[DEVICE_STATS];

/// The prefixes of every kind of record but the store's own: a store
/// holding none of them (and no device) is empty.
pub(crate) const RECORDS: [&[u8]; 5] = [DOCUMENTS, LOG_ENTRIES, OPS, CONFLICTS, BRANCHES];

/// The prefix of the branch keys of the document at `key`.
pub(crate) fn branches_of(key: &DocKey) -> Vec<u8> {
    let mut out = document(key);
    out[0] = BRANCH;
    out.push(0);
    out
}

/// The key of the branch `name` of the document at `key`.
pub(crate) fn branch(key: &DocKey, name: &BranchName) -> Vec<u8> {
    let mut out = branches_of(key);
    out.extend_from_slice(name.as_str().as_bytes());
    out
}

/// Whether `key` is the key of the document `id` of `collection` in
/// `namespace` (what [`document`] makes of them, without making it).
pub(crate) fn is_document_key(
    key: &[u8],
    namespace: &Namespace,
    collection: &CollectionName,
    id: &DocId,
) -> bool {
    let parts: [&[u8]; 6] = [
        DOCUMENTS,
        namespace.as_str().as_bytes(),
        &[0],
        collection.as_str().as_bytes(),
        &[0],
        id.as_str().as_bytes(),
    ];
    let mut rest = key;
    for part in parts {
        match rest.strip_prefix(part) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The document a document key names, if it is a well-formed one.
pub(crate) fn document_key_of(document_key: &[u8]) -> Option<DocKey> {
    let rest = document_key.strip_prefix(DOCUMENTS)?;
    let mut parts = rest.splitn(3, |&b| b == 0);
    let mut next = || std::str::from_utf8(parts.next()?).ok();
    Some(DocKey::new(
        next()?.parse().ok()?,
        next()?.parse().ok()?,
        next()?.parse().ok()?,
    ))
}

/// The collection a document key names, if it is a well-formed one.
pub(crate) fn collection_of(document_key: &[u8]) -> Option<&str> {
    let rest = document_key.strip_prefix(DOCUMENTS)?;
    let name = rest.split(|&b| b == 0).nth(1)?;
    std::str::from_utf8(name).ok()
}

/// The key of the log page whose last entry is at `seq`: sled's order is
/// log order.
pub(crate) fn log(seq: Seq) -> [u8; 9] {
    let mut out = [LOG; 9];
    out[1..].copy_from_slice(&seq.get().to_be_bytes());
    out
}

/// The seq of the last entry of the page at a log key (as it was written:
/// compaction may have dropped that entry since).
pub(crate) fn seq_of_log_key(key: &[u8]) -> Option<Seq> {
    decode_seq(key.strip_prefix(LOG_ENTRIES)?)
}

/// The key of an operation's result.
pub(crate) fn op(op_id: &OpId) -> Vec<u8> {
    prefixed(OP, op_id.as_str())
}

/// The bytes of the op id an op result key holds.
pub(crate) fn op_id_bytes_of_key(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(OPS)
}

/// The op id an op result key holds.
pub(crate) fn op_id_of_key(key: &[u8]) -> Option<OpId> {
    let id = std::str::from_utf8(key.strip_prefix(OPS)?).ok()?;
    OpId::new(id).ok()
}

/// The key of a conflict record.
pub(crate) fn conflict(id: &ConflictId) -> Vec<u8> {
    prefixed(CONFLICT, id.as_str())
}

fn prefixed(kind: u8, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + name.len());
    out.push(kind);
    out.extend_from_slice(name.as_bytes());
    out
}

/// The key of a device's counters.
pub(crate) fn device_stats(device: &DeviceId) -> Vec<u8> {
    prefixed(DEVICE_STATS, device.as_str())
}

/// The counters behind the stats, as records: the totals under
/// [`STATS_KEY`], and each device's of `devices` under its own key.
pub(crate) fn stats_records<'a>(
    stats: &StoreStats,
    devices: impl IntoIterator<Item = (&'a DeviceId, &'a DeviceStats)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    /// `StoreStats` with its devices left out, borrowed.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Totals<'a> {
        operations: &'a BTreeMap<OpStatus, u64>,
        conflicts: &'a BTreeMap<Strategy, u64>,
        devices: BTreeMap<DeviceId, DeviceStats>,
        head: Seq,
        documents: u64,
    }
    let totals = Totals {
        operations: &stats.operations,
        conflicts: &stats.conflicts,
        devices: BTreeMap::new(),
        head: stats.head,
        documents: stats.documents,
    };
    let mut records = vec![(STATS_KEY.to_vec(), encode(&totals))];
    records.extend(
        devices
            .into_iter()
            .map(|(device, counters)| (device_stats(device), encode(counters))),
    );
    records
}

/// The counters behind the stats `tree` holds.
pub(crate) fn read_stats(tree: &sled::Tree) -> Result<StoreStats, Error> {
    let mut stats: StoreStats = match tree.get(STATS_KEY)? {
        Some(bytes) => decode("meta", &bytes)?,
        None => StoreStats::default(),
    };
    for entry in tree.scan_prefix(DEVICES_STATS) {
        let (key, value) = entry?;
        let device = std::str::from_utf8(&key[1..])
            .ok()
            .and_then(|id| DeviceId::new(id).ok())
            .ok_or_else(|| Error::Corrupt {
                tree: "stats",
                message: "device id".into(),
            })?;
        stats.devices.insert(device, decode("stats", &value)?);
    }
    Ok(stats)
}

/// Eight big-endian bytes.
pub(crate) fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// The seq eight big-endian bytes hold.
pub(crate) fn decode_seq(bytes: &[u8]) -> Option<Seq> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(array)))
}

/// A JSON record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain data with string keys: encoding cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A JSON record of the kind `what`.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| Error::Corrupt {
        tree: what,
        message: error.to_string(),
    })
}

/// The link of each change to its document's change before it, for
/// changes written in log order outside a group commit (a snapshot load, a
/// migration).
#[derive(Debug, Default)]
pub(crate) struct Links {
    latest: HashMap<DocKey, Seq>,
}

impl Links {
    /// The seq of `change`'s document's previous change (`Seq::ZERO` for
    /// its first), remembering `change` as the latest.
    pub(crate) fn previous(&mut self, change: &Change) -> Seq {
        self.latest
            .insert(change.key(), change.seq)
            .unwrap_or(Seq::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_kinds_do_not_overlap_and_log_keys_sort_by_seq() {
        let key = DocKey::new(
            "ns".parse().expect("namespace"),
            "todos".parse().expect("collection"),
            "a".parse().expect("id"),
        );
        assert!(document(&key).starts_with(&collection_prefix("ns", "todos")));
        assert!(!collection_prefix("ns", "todos").starts_with(&collection_prefix("ns", "todo")));
        assert_eq!(collection_of(&document(&key)), Some("todos"));
        assert!(log(Seq(255)) < log(Seq(256)));
        assert_eq!(seq_of_log_key(&log(Seq(42))), Some(Seq(42)));
        let op_id = OpId::new("op-1").expect("op id");
        assert_eq!(op_id_of_key(&op(&op_id)), Some(op_id));
        for kind in [
            DOCUMENTS,
            LOG_ENTRIES,
            OPS,
            CONFLICTS,
            BRANCHES,
            DEVICES_STATS,
        ] {
            assert!(!FORMAT_KEY.starts_with(kind));
        }
    }

    #[test]
    fn a_document_key_is_told_from_its_parts_and_read_back_into_them() {
        let key = |ns: &str, collection: &str, id: &str| {
            DocKey::new(
                ns.parse().expect("namespace"),
                collection.parse().expect("collection"),
                id.parse().expect("id"),
            )
        };
        let doc = key("ns", "todos", "doc-1");
        let is_key_of = |bytes: &[u8], of: &DocKey| {
            is_document_key(bytes, &of.namespace, &of.collection, &of.id)
        };
        assert!(is_key_of(&document(&doc), &doc));
        assert_eq!(document_key_of(&document(&doc)), Some(doc.clone()));
        for other in [
            key("ns", "todos", "doc-10"),
            key("ns", "todos", "doc-"),
            key("ns", "todo", "sdoc-1"),
            key("n", "stodos", "doc-1"),
        ] {
            assert!(!is_key_of(&document(&other), &doc), "{other}");
            assert!(!is_key_of(&document(&doc), &other), "{other}");
        }
        let branch = key("ns", "todos@draft", "doc-1");
        assert!(is_key_of(&document(&branch), &branch));
        assert!(!is_key_of(&document(&branch), &doc));
        assert_eq!(document_key_of(&document(&branch)), Some(branch));
        let mut two_parts = DOCUMENTS.to_vec();
        two_parts.extend_from_slice(b"ns\0todos");
        assert_eq!(document_key_of(&two_parts), None);
        let mut extra_separator = document(&doc);
        extra_separator.extend_from_slice(b"\0x");
        assert_eq!(document_key_of(&extra_separator), None);
        assert!(!is_key_of(&extra_separator, &doc));
        assert!(!is_key_of(&op(&OpId::new("op-1").expect("op id")), &doc));
        assert_eq!(
            document_key_of(&op(&OpId::new("op-1").expect("op id"))),
            None
        );
    }
}
