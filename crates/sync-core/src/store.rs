//! The [`SyncStore`] trait: the server's source of truth.
//!
//! The store holds the documents (with their field clocks), the append-only
//! change log, the version history, the result of every applied `opId`,
//! conflict records, the device registry, the registry of document branches
//! and the counters behind the stats endpoint. The embedded implementation runs on sled; a PostgreSQL one lets
//! several server nodes share one database. Both are driven the same way:
//!
//! 1. The server reads a document ([`SyncStore::get`]) and decides, in pure
//!    code, what the operation does to it.
//! 2. It hands the store [`Write`]s that each expect the version they were
//!    computed against (compare-and-swap), and [`SyncStore::apply`] commits
//!    each atomically (document, change, history, opId result, conflict
//!    record, counters) and returns once every one of them is durable.
//! 3. A write whose expectation no longer holds comes back as
//!    [`CommitOutcome::VersionMismatch`] and the server decides again; a
//!    known `opId` comes back as [`CommitOutcome::Duplicate`] with the first
//!    result.
//!
//! Readers of the change log never see a change before it is durable.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::change::{Change, ChangeOp, RawChange};
use crate::clock::Hlc;
use crate::conflict::{ConflictRecord, ConflictStatus, Strategy};
use crate::cursor::LogId;
use crate::document::{DocKey, Document, FieldClocks};
use crate::error::ErrorCode;
use crate::names::{
    BranchName, CollectionName, ConflictId, DeviceId, DocId, Namespace, OpId, Seq, UserId, Version,
};
use crate::query::Filter;
use crate::result::{OpResult, OpStatus};
use crate::timestamp::Timestamp;

/// A document as the store keeps it: the document and when each of its
/// top-level fields was last written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredDocument {
    /// The document with its metadata (tombstones included).
    pub document: Document,
    /// Per-field write times, for per-field last-write-wins.
    pub field_clocks: FieldClocks,
}

/// What a [`Write`] does to its document.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteEffect {
    /// A change to the document: a new version and a change-log entry.
    Change {
        /// Insert, update or delete.
        op: ChangeOp,
        /// What replay applies: the whole document for an insert, a merge
        /// patch for an update, empty for a delete.
        delta: JsonObject,
        /// The whole document after the change (empty for a delete).
        data: JsonObject,
        /// The field clocks after the change.
        field_clocks: FieldClocks,
        /// When the write was made.
        timestamp: Hlc,
    },
    /// No change to the document (a conflict left pending): only the
    /// operation's result and the conflict record are stored.
    ResultOnly,
}

/// One accepted operation's effect on one document, computed by the server
/// against `expected_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The operation's idempotency key.
    pub op_id: OpId,
    /// The document.
    pub key: DocKey,
    /// The version the effect was computed against; 0 when the document did
    /// not exist. The write fails with a version mismatch otherwise.
    pub expected_version: Version,
    /// What happens to the document.
    pub effect: WriteEffect,
    /// The device the operation came from.
    pub device_id: Option<DeviceId>,
    /// The user who sent it.
    pub user: Option<UserId>,
    /// The result to record for replays; the store fills in `version` and
    /// `seq` of a change.
    pub result: OpResult,
    /// A conflict to record with the write.
    pub conflict: Option<ConflictRecord>,
    /// A pending conflict this write resolves; the write fails with
    /// [`CommitOutcome::ConflictNotPending`] if it is no longer pending.
    pub resolves: Option<ConflictId>,
}

/// How one [`Write`] ended. Expected outcomes, not errors.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// Committed and durable, with the recorded result.
    Committed(OpResult),
    /// The `opId` was applied before; its first result.
    Duplicate(OpResult),
    /// The document is no longer at the expected version.
    VersionMismatch {
        /// The document as it is now.
        current: Option<Box<StoredDocument>>,
    },
    /// The conflict the write meant to resolve is resolved already or unknown.
    ConflictNotPending,
}

/// Which changes a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only these namespaces; `None` for all.
    pub namespaces: Option<BTreeSet<Namespace>>,
    /// Only these collections (branch addresses included); `None` for all.
    pub collections: Option<BTreeSet<CollectionName>>,
    /// With `collections` `None`, leave out the changes of branches: a
    /// client's feed of every collection carries documents, and a branch's
    /// changes reach only readers that name its address.
    pub skip_branches: bool,
}

impl ChangeFilter {
    /// Whether `change` passes the filter.
    pub fn matches(&self, change: &Change) -> bool {
        self.admits(&change.namespace, &change.collection)
    }

    /// Whether the changes of a collection of a namespace pass the filter.
    pub fn admits(&self, namespace: &Namespace, collection: &CollectionName) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
            && match &self.collections {
                Some(set) => set.contains(collection),
                None => !(self.skip_branches && collection.is_branch()),
            }
    }
}

/// A branch of a document: a copy forked at one of its versions that is
/// edited on its own, under the branch address `collection@name` with the
/// document's id, and merged back with the conflict engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BranchRecord {
    /// The namespace of the document.
    pub namespace: Namespace,
    /// The document's collection (a plain collection).
    pub collection: CollectionName,
    /// The document's id.
    pub id: DocId,
    /// The branch's name.
    pub name: BranchName,
    /// The document's version the branch last took in: where it was forked,
    /// moved to the merged version by a merge. A merge's base.
    pub fork_version: Version,
    /// When it was forked.
    pub created_at: Timestamp,
    /// Who forked it.
    pub created_by: UserId,
}

impl BranchRecord {
    /// The document the branch belongs to.
    pub fn key(&self) -> DocKey {
        DocKey::new(
            self.namespace.clone(),
            self.collection.clone(),
            self.id.clone(),
        )
    }

    /// Where the branch's own document lives: the branch address.
    pub fn branch_key(&self) -> DocKey {
        DocKey::new(
            self.namespace.clone(),
            self.collection.with_branch(&self.name),
            self.id.clone(),
        )
    }
}

/// A page of the change log, its changes as [`Change`]s or [`RawChange`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage<C = Change> {
    /// The matching changes, in log order.
    pub changes: Vec<C>,
    /// The last seq examined, matching or not: the reader's next `after`, so
    /// filtered readers move past entries that are not theirs.
    pub last_seq: Seq,
    /// Whether durable changes remain after `last_seq`.
    pub has_more: bool,
}

/// What a device can do: the collections it syncs (selective sync), real
/// time, bandwidth (`docs/protocol.md`, "Devices").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCapabilities {
    /// The collections it syncs; empty for all.
    #[serde(default)]
    pub collections: Vec<CollectionName>,
    /// Whether it holds a WebSocket connection.
    #[serde(default)]
    pub supports_real_time: bool,
    /// Bytes per second it should be sent at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<u64>,
}

/// A registered device. It belongs to the user who registered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceRecord {
    /// The device's id.
    pub device_id: DeviceId,
    /// Its owner.
    pub user: UserId,
    /// A name for people ("Alice's iPhone").
    #[serde(default)]
    pub name: String,
    /// Its platform ("iOS", "web", ...).
    #[serde(default)]
    pub platform: String,
    /// The app version it runs.
    #[serde(default)]
    pub app_version: String,
    /// What it can do.
    #[serde(default)]
    pub capabilities: DeviceCapabilities,
    /// When it was registered.
    pub registered_at: Timestamp,
    /// When it was last heard from.
    pub last_seen: Timestamp,
}

/// Counters for one device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceStats {
    /// When it last synced an operation.
    pub last_sync: Option<Timestamp>,
    /// Operations it sent, by status.
    pub operations: BTreeMap<OpStatus, u64>,
    /// Conflicts its operations ran into.
    pub conflicts: u64,
}

/// The counters behind the stats endpoint, kept by `apply` in the same
/// atomic step as the writes they count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// Operations by status.
    pub operations: BTreeMap<OpStatus, u64>,
    /// Conflicts by the strategy that handled them.
    pub conflicts: BTreeMap<Strategy, u64>,
    /// Per device.
    pub devices: BTreeMap<DeviceId, DeviceStats>,
    /// The durable head of the log.
    pub head: Seq,
    /// Live documents (tombstones excluded).
    pub documents: u64,
}

/// Which conflicts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictQuery {
    /// Only this status.
    pub status: Option<ConflictStatus>,
    /// Only these namespaces; `None` for all.
    pub namespaces: Option<BTreeSet<Namespace>>,
    /// Only this collection.
    pub collection: Option<CollectionName>,
    /// At most this many.
    pub limit: usize,
}

/// A page of a collection's documents, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPage {
    /// The documents.
    pub documents: Vec<Document>,
    /// The id to pass as `after` for the next page; `None` at the end.
    pub next: Option<DocId>,
}

/// What compaction may remove: changes of a document older than its last
/// `keep_versions` versions, at or below `low_water` (the oldest cursor of
/// the clients still connected), in the given collections.
///
/// A change is only ever removed when a later change of the same document
/// stays, and every change carries the whole document after it, so a
/// client resuming from any cursor still ends with every document's latest
/// state; clients at or above `low_water` still receive every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Versions kept per document (at least 1).
    pub keep_versions: u64,
    /// No change above this seq is removed.
    pub low_water: Seq,
    /// Only these collections; `None` for all.
    pub collections: Option<BTreeSet<CollectionName>>,
}

/// Everything a store holds, read at one position of its log: the
/// consistent backup behind the admin snapshot endpoint, and what
/// [`SyncStore::load_snapshot`] restores. The documents, op results,
/// conflicts, devices and counters are those of the moment the log's
/// durable head was `head`; `changes` are the retained changes up to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSnapshot {
    /// The identity of the log, kept by a restore so cursors stay valid.
    pub log_id: LogId,
    /// The durable head the snapshot was read at.
    pub head: Seq,
    /// The retained changes, in log order.
    pub changes: Vec<Change>,
    /// Every stored document, tombstones included.
    pub documents: Vec<StoredDocument>,
    /// The recorded result of every applied `opId`.
    pub op_results: Vec<(OpId, OpResult)>,
    /// Every conflict record.
    pub conflicts: Vec<ConflictRecord>,
    /// Every registered device.
    pub devices: Vec<DeviceRecord>,
    /// Every branch of a document.
    pub branches: Vec<BranchRecord>,
    /// The counters (its `head` is the snapshot's).
    pub stats: StoreStats,
}

/// One line of a snapshot as the admin endpoint streams it and a backup
/// keeps it (NDJSON, `kind` first): a header, the records, and an end line
/// that counts them, so a truncated backup is recognised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SnapshotLine {
    /// The first line: the log and its head.
    Header {
        /// The format's version (1).
        format: u32,
        /// The log's identity.
        log_id: LogId,
        /// The head the snapshot was read at.
        head: Seq,
        /// The counters.
        stats: StoreStats,
    },
    /// A change of the log.
    Change(Box<Change>),
    /// A stored document.
    Document(Box<StoredDocument>),
    /// The result of an applied operation.
    OpResult {
        /// Its opId.
        op_id: OpId,
        /// Its result.
        result: Box<OpResult>,
    },
    /// A conflict record.
    Conflict(Box<ConflictRecord>),
    /// A registered device.
    Device(Box<DeviceRecord>),
    /// A branch of a document.
    Branch(Box<BranchRecord>),
    /// The last line: how many records came between.
    End {
        /// The number of record lines.
        records: u64,
    },
}

impl StoreSnapshot {
    /// An empty snapshot of log `log_id` at `head`.
    pub fn new(log_id: LogId, head: Seq) -> StoreSnapshot {
        StoreSnapshot {
            log_id,
            head,
            changes: Vec::new(),
            documents: Vec::new(),
            op_results: Vec::new(),
            conflicts: Vec::new(),
            devices: Vec::new(),
            branches: Vec::new(),
            stats: StoreStats::default(),
        }
    }

    /// The snapshot's lines, header first and end last.
    pub fn to_lines(&self) -> Vec<SnapshotLine> {
        let mut lines = vec![SnapshotLine::Header {
            format: 1,
            log_id: self.log_id,
            head: self.head,
            stats: self.stats.clone(),
        }];
        lines.extend(
            self.changes
                .iter()
                .cloned()
                .map(|c| SnapshotLine::Change(Box::new(c))),
        );
        lines.extend(
            self.documents
                .iter()
                .cloned()
                .map(|d| SnapshotLine::Document(Box::new(d))),
        );
        lines.extend(self.op_results.iter().cloned().map(|(op_id, result)| {
            SnapshotLine::OpResult {
                op_id,
                result: Box::new(result),
            }
        }));
        lines.extend(
            self.conflicts
                .iter()
                .cloned()
                .map(|c| SnapshotLine::Conflict(Box::new(c))),
        );
        lines.extend(
            self.devices
                .iter()
                .cloned()
                .map(|d| SnapshotLine::Device(Box::new(d))),
        );
        lines.extend(
            self.branches
                .iter()
                .cloned()
                .map(|b| SnapshotLine::Branch(Box::new(b))),
        );
        lines.push(SnapshotLine::End {
            records: (lines.len() - 1) as u64,
        });
        lines
    }

    /// The snapshot from its lines; fails on a missing header or end line,
    /// a wrong record count or a line out of place.
    pub fn from_lines(
        lines: impl IntoIterator<Item = SnapshotLine>,
    ) -> Result<StoreSnapshot, String> {
        let mut lines = lines.into_iter();
        let mut snapshot = match lines.next() {
            Some(SnapshotLine::Header {
                format: 1,
                log_id,
                head,
                stats,
            }) => StoreSnapshot {
                stats,
                ..StoreSnapshot::new(log_id, head)
            },
            Some(SnapshotLine::Header { format, .. }) => {
                return Err(format!("snapshot format {format} is not known (1 is)"));
            }
            _ => return Err("the snapshot does not start with its header".into()),
        };
        for (records, line) in (0u64..).zip(lines) {
            match line {
                SnapshotLine::Header { .. } => return Err("a second header".into()),
                SnapshotLine::Change(change) => snapshot.changes.push(*change),
                SnapshotLine::Document(document) => snapshot.documents.push(*document),
                SnapshotLine::OpResult { op_id, result } => {
                    snapshot.op_results.push((op_id, *result));
                }
                SnapshotLine::Conflict(record) => snapshot.conflicts.push(*record),
                SnapshotLine::Device(device) => snapshot.devices.push(*device),
                SnapshotLine::Branch(branch) => snapshot.branches.push(*branch),
                SnapshotLine::End { records: expected } if expected == records => {
                    return Ok(snapshot);
                }
                SnapshotLine::End { records: expected } => {
                    return Err(format!(
                        "the snapshot counts {expected} records but holds {records}"
                    ));
                }
            }
        }
        Err("the snapshot ends without its end line (truncated?)".into())
    }
}

/// Why the store could not do what was asked. Expected outcomes (a stale
/// version, a duplicate `opId`) are [`CommitOutcome`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage failed (disk, database connection).
    #[error("storage failed: {0}")]
    Backend(String),
    /// Stored data does not decode: a bug or corruption.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store is shutting down or closed.
    #[error("the store is closed")]
    Closed,
    /// A snapshot was to be loaded into a store that holds data already.
    #[error("the store is not empty: a snapshot loads only into an empty store")]
    NotEmpty,
    /// The disk is full: nothing was written, and writes work again once
    /// space is free.
    #[error("the disk is full: {0}")]
    StorageFull(String),
    /// The storage cannot be reached now (a database connection); whether
    /// a write in flight committed is unknown.
    #[error("the storage is unreachable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The protocol's code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::StorageFull(_) => ErrorCode::InsufficientStorage,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::NotEmpty => ErrorCode::Conflict,
            StoreError::Backend(_) | StoreError::Corrupt(_) | StoreError::Closed => {
                ErrorCode::Internal
            }
        }
    }

    /// What a client is told: the cause of a passing condition, and no
    /// internals otherwise (they stay in the server's logs).
    pub fn public_message(&self) -> String {
        match self {
            StoreError::StorageFull(_) => "the disk is full; retry later".to_owned(),
            StoreError::Unavailable(_) => "the store is unreachable; retry later".to_owned(),
            _ => "the store failed; the request may be retried".to_owned(),
        }
    }
}

/// Told of every group commit a store makes, for metrics: how many writes
/// the group took and how long it took, from the start of its transaction
/// to durability. Called on the committer's path, so it must be cheap.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// A group of `writes` committed in `took`.
    fn committed(&self, writes: usize, took: std::time::Duration);
}

/// The server's durable state. Used as `Arc<dyn SyncStore>`.
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// The identity of this store's change log, for cursors.
    fn log_id(&self) -> LogId;

    /// A document with its field clocks, tombstones included.
    async fn get(&self, key: &DocKey) -> Result<Option<StoredDocument>, StoreError>;

    /// A page of live documents of a collection matching `filter`, in id
    /// order, after `after`.
    async fn list(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        filter: &Filter,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<DocumentPage, StoreError>;

    /// The recorded result of an applied operation.
    async fn lookup_op(&self, op_id: &OpId) -> Result<Option<OpResult>, StoreError>;

    /// Commits `writes` in order, each atomically, and returns once all are
    /// durable. A later write sees the earlier ones.
    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<CommitOutcome>, StoreError>;

    /// Durable changes after `after` that pass `filter`, at most `limit`.
    async fn changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage, StoreError>;

    /// [`changes_after`](Self::changes_after) with each change's delta and
    /// document left as JSON text, for readers that pass them on unread.
    async fn raw_changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage<RawChange>, StoreError> {
        let page = self.changes_after(after, filter, limit).await?;
        Ok(ChangePage {
            changes: page.changes.into_iter().map(RawChange::from).collect(),
            last_seq: page.last_seq,
            has_more: page.has_more,
        })
    }

    /// The durable head of the log.
    async fn head(&self) -> Result<Seq, StoreError>;

    /// Waits until the durable head is past `after` and returns it (at once
    /// when it already is). This is how readers of the log (subscribers,
    /// long-polls) learn of new changes, including changes committed by
    /// other server nodes on a shared database; callers bound the wait
    /// with a timeout.
    async fn wait_for_head(&self, after: Seq) -> Result<Seq, StoreError>;

    /// The oldest seq still in the log (the head + 1 when it is empty).
    /// Compaction leaves later changes of every document it touches (see
    /// [`RetentionPolicy`]), so a cursor below it still converges.
    async fn oldest_retained(&self) -> Result<Seq, StoreError>;

    /// A document's retained changes, oldest first.
    async fn history(&self, key: &DocKey) -> Result<Vec<Change>, StoreError>;

    /// The document as it was at `version`, rebuilt by replaying its changes.
    async fn document_at(
        &self,
        key: &DocKey,
        version: Version,
    ) -> Result<Option<Document>, StoreError>;

    /// Recomputes every document from the change log and compares it with
    /// the stored documents: the keys that differ, empty when the documents
    /// are exactly the log's projection (the store's own consistency check).
    async fn verify_projection(&self) -> Result<Vec<DocKey>, StoreError>;

    /// Whether a write could commit now, without writing: `Ok` when it
    /// could; otherwise why not ([`StoreError::StorageFull`] when the disk
    /// is at its limit, [`StoreError::Unavailable`] when the storage cannot
    /// be reached, [`StoreError::Closed`] when the committer is gone). The
    /// readiness probe.
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// A conflict record.
    async fn get_conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, StoreError>;

    /// Conflict records, newest first.
    async fn list_conflicts(
        &self,
        query: &ConflictQuery,
    ) -> Result<Vec<ConflictRecord>, StoreError>;

    /// Registers or updates a device.
    async fn put_device(&self, device: DeviceRecord) -> Result<(), StoreError>;

    /// A registered device.
    async fn get_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// A user's devices.
    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Removes a device; whether it existed.
    async fn remove_device(&self, id: &DeviceId) -> Result<bool, StoreError>;

    /// Records a branch, replacing the record of the same document and
    /// name.
    async fn put_branch(&self, branch: BranchRecord) -> Result<(), StoreError>;

    /// The branch `name` of the document at `key`.
    async fn get_branch(
        &self,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<Option<BranchRecord>, StoreError>;

    /// The branches of the document at `key`, by name.
    async fn list_branches(&self, key: &DocKey) -> Result<Vec<BranchRecord>, StoreError>;

    /// Removes a branch's record; whether it existed. The branch's document
    /// and history stay under its address.
    async fn remove_branch(&self, key: &DocKey, name: &BranchName) -> Result<bool, StoreError>;

    /// The counters behind the stats endpoint.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Removes old changes as `policy` allows; returns how many.
    async fn compact(&self, policy: &RetentionPolicy) -> Result<u64, StoreError>;

    /// Flushes everything written so far to durable storage.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Everything the store holds, read at one position of its log (see
    /// [`StoreSnapshot`]): a consistent online backup while writes go on.
    async fn snapshot(&self) -> Result<StoreSnapshot, StoreError>;

    /// Loads `snapshot` into this store, which must be empty (no change,
    /// document, op result, conflict or device); afterwards the store has
    /// the snapshot's log id and head, so cursors handed out before the
    /// backup stay valid. Fails with [`StoreError::NotEmpty`] otherwise.
    async fn load_snapshot(&self, snapshot: StoreSnapshot) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(namespace: &str, collection: &str) -> Change {
        serde_json::from_value(json!({
            "seq": 1, "namespace": namespace, "collection": collection, "id": "d",
            "op": "insert", "delta": {}, "version": 1,
            "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
            "opId": "op-1"
        }))
        .unwrap()
    }

    #[test]
    fn change_filters() {
        let all = ChangeFilter::default();
        assert!(all.matches(&change("a", "todos")));
        let only = ChangeFilter {
            namespaces: Some([Namespace::new("a").unwrap()].into()),
            collections: Some([CollectionName::new("todos").unwrap()].into()),
            skip_branches: false,
        };
        assert!(only.matches(&change("a", "todos")));
        assert!(!only.matches(&change("b", "todos")));
        assert!(!only.matches(&change("a", "notes")));
    }

    #[test]
    fn branch_changes_reach_only_readers_that_name_the_branch() {
        let branch = change("a", "todos@draft");
        assert!(ChangeFilter::default().matches(&branch));
        let plain = ChangeFilter {
            skip_branches: true,
            ..ChangeFilter::default()
        };
        assert!(!plain.matches(&branch));
        assert!(plain.matches(&change("a", "todos")));
        let named = ChangeFilter {
            collections: Some([CollectionName::new("todos@draft").unwrap()].into()),
            skip_branches: true,
            ..ChangeFilter::default()
        };
        assert!(named.matches(&branch));
        assert!(!named.matches(&change("a", "todos")));
    }
}
