//! What committing a group of writes does, the same in every store: each
//! write decided in order against the state the earlier ones left (its
//! `opId`, the document's version, the conflict it resolves), and what the
//! group then stores: changes, documents, op results, conflicts and the
//! counters. A store only loads what a [`Group`] asks for and persists what
//! it holds.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};

use sync_core::store::{
    CommitOutcome, DeviceStats, StoreStats, StoredDocument, Write, WriteEffect,
};
use sync_core::{
    Change, ChangeOp, ConflictId, ConflictRecord, ConflictStatus, DeviceId, DocKey, Document, OpId,
    OpResult, OpStatus, Seq, Strategy, Timestamp, UserId, Version,
};

use crate::error::Error;

/// Where a [`Group`] reads the stored state it has not seen yet.
pub(crate) trait Source {
    /// The recorded result of an operation.
    fn op_result(&self, op_id: &OpId) -> Result<Option<OpResult>, Error>;
    /// A document with its field clocks.
    fn document(&self, key: &DocKey) -> Result<Option<StoredDocument>, Error>;
    /// A conflict record.
    fn conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, Error>;
}

/// When the group commit in flight, if any, started: a committer that
/// takes too long on one group is stalled (a lock held elsewhere, a hung
/// database), and the store is not ready.
#[cfg(feature = "postgres")]
#[derive(Debug, Default)]
pub(crate) struct CommitWatch {
    since: std::sync::Mutex<Option<std::time::Instant>>,
}

#[cfg(feature = "postgres")]
impl CommitWatch {
    /// A group commit starts.
    pub(crate) fn started(&self) {
        *self.lock() = Some(std::time::Instant::now());
    }

    /// The group commit ended, however it ended.
    pub(crate) fn finished(&self) {
        *self.lock() = None;
    }

    /// How long the group commit in flight has run.
    pub(crate) fn busy_for(&self) -> Option<std::time::Duration> {
        self.lock().map(|since| since.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A source with nothing beyond what was put in the group beforehand: for
/// a store that loads everything a group names up front.
pub(crate) struct Preloaded;

impl Source for Preloaded {
    fn op_result(&self, _: &OpId) -> Result<Option<OpResult>, Error> {
        Ok(None)
    }

    fn document(&self, _: &DocKey) -> Result<Option<StoredDocument>, Error> {
        Ok(None)
    }

    fn conflict(&self, _: &ConflictId) -> Result<Option<ConflictRecord>, Error> {
        Ok(None)
    }
}

/// What a group adds to the counters behind the stats.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Live documents gained (negative: lost).
    pub(crate) live_documents: i64,
    /// Operations by status.
    pub(crate) operations: BTreeMap<OpStatus, i64>,
    /// Conflicts by the strategy that handled them.
    pub(crate) conflicts: BTreeMap<Strategy, i64>,
    /// Per device.
    pub(crate) devices: BTreeMap<DeviceId, DeviceTally>,
}

/// What a group adds to one device's counters.
#[derive(Debug, Default)]
pub(crate) struct DeviceTally {
    /// The latest operation it synced.
    pub(crate) last_sync: Option<Timestamp>,
    /// Conflicts its operations ran into.
    pub(crate) conflicts: i64,
    /// Its operations by status.
    pub(crate) operations: BTreeMap<OpStatus, i64>,
}

impl Tally {
    /// Adds the tally to `stats` but for its devices (see
    /// [`DeviceTally::add_to`]), with `head` as the new head.
    pub(crate) fn add_to_totals(&self, stats: &mut StoreStats, head: Seq) {
        stats.head = head;
        stats.documents = stats.documents.saturating_add_signed(self.live_documents);
        for (status, count) in &self.operations {
            add(stats.operations.entry(*status).or_default(), *count);
        }
        for (strategy, count) in &self.conflicts {
            add(stats.conflicts.entry(*strategy).or_default(), *count);
        }
    }
}

impl DeviceTally {
    /// Adds the tally to one device's counters.
    pub(crate) fn add_to(&self, stats: &mut DeviceStats) {
        stats.last_sync = stats.last_sync.max(self.last_sync);
        add(&mut stats.conflicts, self.conflicts);
        for (status, count) in &self.operations {
            add(stats.operations.entry(*status).or_default(), *count);
        }
    }
}

fn add(counter: &mut u64, delta: i64) {
    *counter = counter.saturating_add_signed(delta);
}

/// A group of writes decided in order, and what committing them stores.
#[derive(Debug)]
pub(crate) struct Group {
    /// The head after the group's changes.
    pub(crate) head: Seq,
    documents: HashMap<DocKey, Option<StoredDocument>>,
    ops: HashMap<OpId, Option<OpResult>>,
    conflicts: HashMap<ConflictId, Option<ConflictRecord>>,
    /// The new log entries, in seq order.
    pub(crate) changes: Vec<Change>,
    /// For each of `changes`, the seq of its document's change before it.
    previous_seqs: Vec<Seq>,
    /// The documents the changes wrote, once for each change.
    dirty_documents: Vec<DocKey>,
    /// The results of the operations the group recorded, in order.
    pub(crate) results: Vec<(OpId, OpResult)>,
    /// The conflicts created or resolved.
    dirty_conflicts: BTreeSet<ConflictId>,
    /// What the group adds to the counters.
    pub(crate) tally: Tally,
}

impl Group {
    /// An empty group whose first change takes the seq after `head`, with
    /// room for `writes` writes.
    pub(crate) fn new(head: Seq, writes: usize) -> Group {
        Group {
            head,
            documents: HashMap::with_capacity(writes),
            ops: HashMap::with_capacity(writes),
            conflicts: HashMap::new(),
            changes: Vec::with_capacity(writes),
            previous_seqs: Vec::with_capacity(writes),
            dirty_documents: Vec::with_capacity(writes),
            results: Vec::with_capacity(writes),
            dirty_conflicts: BTreeSet::new(),
            tally: Tally::default(),
        }
    }

    /// Records what the store holds for `key` (`None`: no such document).
    pub(crate) fn known_document(&mut self, key: DocKey, stored: Option<StoredDocument>) {
        self.documents.insert(key, stored);
    }

    /// Records an operation's stored result.
    pub(crate) fn known_op(&mut self, op_id: OpId, result: OpResult) {
        self.ops.insert(op_id, Some(result));
    }

    /// Records a stored conflict.
    pub(crate) fn known_conflict(&mut self, record: ConflictRecord) {
        self.conflicts.insert(record.id.clone(), Some(record));
    }

    /// Whether the group stores anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// The documents the group writes, each once in its final state, in
    /// key order: the same order on every node.
    pub(crate) fn documents(&self) -> Vec<&StoredDocument> {
        let mut keys: Vec<&DocKey> = self.dirty_documents.iter().collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .filter_map(|key| self.documents.get(key)?.as_ref())
            .collect()
    }

    /// The new log entries, each with the seq of its document's change
    /// before it (`Seq::ZERO` for a new document): the link a store that
    /// chains a document's changes writes.
    #[cfg_attr(not(feature = "sled"), allow(dead_code))]
    pub(crate) fn chained_changes(&self) -> impl Iterator<Item = (Seq, &Change)> {
        self.previous_seqs.iter().copied().zip(&self.changes)
    }

    /// The conflicts the group creates or resolves, each in its final state.
    pub(crate) fn conflicts(&self) -> impl Iterator<Item = &ConflictRecord> {
        self.dirty_conflicts
            .iter()
            .filter_map(|id| self.conflicts.get(id)?.as_ref())
    }

    /// Decides `write` against the state the store and the group's earlier
    /// writes leave, and records its effects: a duplicate answers the first
    /// result, a version that moved or a conflict no longer pending changes
    /// nothing, anything else commits at the next seq. The write's data
    /// moves into the group.
    pub(crate) fn apply(
        &mut self,
        write: Write,
        source: &impl Source,
    ) -> Result<CommitOutcome, Error> {
        if let Some(first) = self.op_result(&write.op_id, source)? {
            return Ok(CommitOutcome::Duplicate(first.as_duplicate()));
        }
        let current = self.document(&write.key, source)?;
        let stored_version = current.map(|c| c.document.version);
        let current_version = stored_version.unwrap_or(Version::ZERO);
        if current_version != write.expected_version {
            return Ok(CommitOutcome::VersionMismatch {
                current: current.cloned().map(Box::new),
            });
        }
        let was_live = current.is_some_and(|c| !c.document.deleted);
        let previous_seq = current.map_or(Seq::ZERO, |c| c.document.seq);
        let resolving = match &write.resolves {
            Some(conflict_id) => match self.conflict(conflict_id, source)? {
                Some(record) if record.status == ConflictStatus::Pending => Some(record),
                _ => return Ok(CommitOutcome::ConflictNotPending),
            },
            None => None,
        };

        let Write {
            op_id,
            key,
            effect,
            device_id,
            user,
            mut result,
            conflict,
            ..
        } = write;
        let synced_at = match &effect {
            WriteEffect::Change { timestamp, .. } => Some(timestamp.timestamp()),
            WriteEffect::ResultOnly => conflict.as_ref().map(|c| c.created_at),
        };
        let had_conflict = conflict.is_some();
        if let Some(conflict) = conflict {
            *self.tally.conflicts.entry(conflict.strategy).or_default() += 1;
            self.record_conflict(conflict);
        }
        if let Some(mut record) = resolving {
            record.status = ConflictStatus::Resolved;
            // Resolved when the resolving write was made.
            record.resolved_at = Some(match &effect {
                WriteEffect::Change {
                    data, timestamp, ..
                } => {
                    record.resolved_data = Some(data.clone());
                    timestamp.timestamp()
                }
                WriteEffect::ResultOnly => record.resolved_at.unwrap_or(record.created_at),
            });
            self.record_conflict(record);
        }
        let seq = self.head.next();
        let written = committed(
            &key,
            effect,
            &op_id,
            &device_id,
            user,
            seq,
            current_version.next(),
        );
        if let Some((change, stored)) = written {
            match (was_live, stored.document.deleted) {
                (false, false) => self.tally.live_documents += 1,
                (true, true) => self.tally.live_documents -= 1,
                _ => {}
            }
            self.head = change.seq;
            result.version = Some(change.version);
            result.seq = Some(change.seq);
            self.changes.push(change);
            self.previous_seqs.push(previous_seq);
            // Known since the document was read above.
            if let Some(slot) = self.documents.get_mut(&key) {
                *slot = Some(stored);
            }
            self.dirty_documents.push(key);
        } else if stored_version.is_some() {
            result.version = stored_version;
        }

        *self.tally.operations.entry(result.status).or_default() += 1;
        if let Some(device) = device_id {
            let tally = self.tally.devices.entry(device).or_default();
            tally.last_sync = tally.last_sync.max(synced_at);
            *tally.operations.entry(result.status).or_default() += 1;
            if had_conflict {
                tally.conflicts += 1;
            }
        }
        self.ops.insert(op_id.clone(), Some(result.clone()));
        self.results.push((op_id, result.clone()));
        Ok(CommitOutcome::Committed(result))
    }

    fn record_conflict(&mut self, record: ConflictRecord) {
        self.dirty_conflicts.insert(record.id.clone());
        self.conflicts.insert(record.id.clone(), Some(record));
    }

    /// The first result of `op_id`, if it was applied before.
    fn op_result(&mut self, op_id: &OpId, source: &impl Source) -> Result<Option<OpResult>, Error> {
        if let Some(known) = self.ops.get(op_id) {
            return Ok(known.clone());
        }
        // An absent result is not remembered: the write records its own,
        // or leaves nothing a later write of the group could find.
        let loaded = source.op_result(op_id)?;
        if let Some(result) = &loaded {
            self.ops.insert(op_id.clone(), Some(result.clone()));
        }
        Ok(loaded)
    }

    /// The document at `key` as the store and the group's earlier writes
    /// leave it.
    fn document(
        &mut self,
        key: &DocKey,
        source: &impl Source,
    ) -> Result<Option<&StoredDocument>, Error> {
        if !self.documents.contains_key(key) {
            let loaded = source.document(key)?;
            self.documents.insert(key.clone(), loaded);
        }
        Ok(self.documents.get(key).and_then(Option::as_ref))
    }

    fn conflict(
        &mut self,
        id: &ConflictId,
        source: &impl Source,
    ) -> Result<Option<ConflictRecord>, Error> {
        if let Some(known) = self.conflicts.get(id) {
            return Ok(known.clone());
        }
        let loaded = source.conflict(id)?;
        self.conflicts.insert(id.clone(), loaded.clone());
        Ok(loaded)
    }
}

/// The change and document a write's `effect` on `key` makes when
/// committed at `seq` with `version`; `None` for an effect that changes no
/// document.
fn committed(
    key: &DocKey,
    effect: WriteEffect,
    op_id: &OpId,
    device_id: &Option<DeviceId>,
    user: Option<UserId>,
    seq: Seq,
    version: Version,
) -> Option<(Change, StoredDocument)> {
    let WriteEffect::Change {
        op,
        delta,
        data,
        field_clocks,
        timestamp,
    } = effect
    else {
        return None;
    };
    let deleted = op == ChangeOp::Delete;
    let change = Change {
        seq,
        namespace: key.namespace.clone(),
        collection: key.collection.clone(),
        id: key.id.clone(),
        op,
        delta,
        version,
        timestamp,
        op_id: op_id.clone(),
        device_id: device_id.clone(),
        user,
        data: (!deleted).then(|| data.clone()),
    };
    let stored = StoredDocument {
        document: Document {
            id: key.id.clone(),
            namespace: key.namespace.clone(),
            collection: key.collection.clone(),
            data: if deleted { Default::default() } else { data },
            version,
            seq,
            updated_at: timestamp,
            deleted,
        },
        field_clocks,
    };
    Some((change, stored))
}
