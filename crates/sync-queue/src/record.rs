//! The on-disk format: keys and records of the queue's sled tree.
//!
//! One tree, `queue`, holds two kinds of keys:
//!
//! - `op/` + the entry's [`QueueId`] as 8 big-endian bytes: the entry's
//!   [`Record`] as JSON. Big-endian keys make sled's order the enqueue
//!   order.
//! - `meta/next_id`: the next [`QueueId`] to hand out, 8 big-endian bytes.
//!   Written in the same batch as the entry that took the previous id, so
//!   ids never repeat, even after every entry was acknowledged (a late
//!   acknowledgement of an old id can never remove a new entry).
//!
//! Records are a compatibility boundary: a unit test pins their JSON.

use serde::{Deserialize, Serialize};
use sync_core::queue::{QueueId, QueuedOp};

use crate::error::Error;

/// The tree every key lives in.
pub(crate) const TREE: &str = "queue";
/// The key prefix of entries.
pub(crate) const ENTRY_PREFIX: &[u8] = b"op/";
/// The key of the id counter.
pub(crate) const NEXT_ID_KEY: &[u8] = b"meta/next_id";
/// The format written into each record.
const FORMAT: u32 = 1;

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    /// The record format, for later migrations.
    pub(crate) format: u32,
    /// The operation and its delivery history.
    pub(crate) queued: QueuedOp,
    /// Set aside after `max_attempts` failures.
    #[serde(default)]
    pub(crate) failed: bool,
    /// Handed out by `ready` at least once: the server may have seen it, so
    /// it is never modified again (see the crate docs).
    #[serde(default)]
    pub(crate) sent: bool,
}

impl Record {
    /// A record of the current format.
    pub(crate) fn new(queued: QueuedOp, failed: bool, sent: bool) -> Record {
        Record {
            format: FORMAT,
            queued,
            failed,
            sent,
        }
    }

    /// The record as stored.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self)
            .map_err(|error| Error::Storage(format!("encoding a record: {error}").into()))
    }

    /// Reads a stored record, checking that it sits under its own id.
    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Record, Error> {
        let corrupt = |message: String| Error::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            message,
        };
        let id = decode_entry_key(key).ok_or_else(|| corrupt("malformed key".to_owned()))?;
        let record: Record =
            serde_json::from_slice(bytes).map_err(|error| corrupt(error.to_string()))?;
        if record.format != FORMAT {
            return Err(corrupt(format!("unknown format {}", record.format)));
        }
        if record.queued.id != id {
            return Err(corrupt(format!(
                "record of {:?} stored under {id:?}",
                record.queued.id
            )));
        }
        Ok(record)
    }
}

/// The key of entry `id`.
pub(crate) fn entry_key(id: QueueId) -> Vec<u8> {
    let mut key = Vec::with_capacity(ENTRY_PREFIX.len() + 8);
    key.extend_from_slice(ENTRY_PREFIX);
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// The id in an entry key.
pub(crate) fn decode_entry_key(key: &[u8]) -> Option<QueueId> {
    let bytes = key.strip_prefix(ENTRY_PREFIX)?;
    Some(QueueId(u64::from_be_bytes(bytes.try_into().ok()?)))
}

/// The counter as stored.
pub(crate) fn decode_counter(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::{Action, Operation};

    use super::*;

    #[test]
    fn records_are_pinned_json() {
        let mut op = Operation::new(Action::Update);
        op.id = Some("doc-1".parse().unwrap());
        op.data = Some(json!({"title": "x"}).as_object().unwrap().clone());
        let record = Record::new(
            QueuedOp {
                id: QueueId(42),
                op,
                attempts: 2,
                next_attempt_ms: 1_700_000_000_000,
                last_error: Some("timeout".into()),
            },
            false,
            true,
        );
        let golden = json!({
            "format": 1,
            "queued": {
                "id": 42,
                "op": {"action": "update", "id": "doc-1", "data": {"title": "x"}},
                "attempts": 2,
                "nextAttemptMs": 1_700_000_000_000u64,
                "lastError": "timeout"
            },
            "failed": false,
            "sent": true
        });
        assert_eq!(serde_json::to_value(&record).unwrap(), golden);
        let bytes = serde_json::to_vec(&golden).unwrap();
        assert_eq!(
            Record::decode(&entry_key(QueueId(42)), &bytes).unwrap(),
            record
        );
        assert!(Record::decode(&entry_key(QueueId(41)), &bytes).is_err());
    }

    #[test]
    fn keys_sort_in_enqueue_order() {
        assert!(entry_key(QueueId(255)) < entry_key(QueueId(256)));
        assert_eq!(decode_entry_key(&entry_key(QueueId(9))), Some(QueueId(9)));
        assert_eq!(decode_entry_key(b"op/short"), None);
    }
}
