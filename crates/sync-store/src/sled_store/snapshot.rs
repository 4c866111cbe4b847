//! A whole store read for a backup, and loaded into an empty store for a
//! restore, both under the commit gate.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

use sync_core::store::StoreSnapshot;
use sync_core::{LogId, Seq};

use super::pages::{Page, Paginator};
use super::records::Record;
use super::{Shared, layout};
use crate::error::Error;

/// Records written per batch while loading.
const BATCH: usize = 10_000;

/// Reads everything under the commit gate: no group commit runs meanwhile,
/// so every record is as the durable head left it.
pub(super) fn read(shared: &Shared) -> Result<StoreSnapshot, Error> {
    let _gate = shared.commit_gate();
    let head = shared.head();
    let mut snapshot = StoreSnapshot::new(LogId(shared.log_id.load(Ordering::Acquire)), head);
    shared.visit_log(Seq::ZERO, head, |entry| {
        snapshot.changes.push(entry.decode()?);
        Ok(ControlFlow::Continue(()))
    })?;
    for entry in shared.tree.scan_prefix(layout::DOCUMENTS) {
        let (key, value) = entry?;
        snapshot.documents.push(shared.open("docs", &key, &value)?);
    }
    for entry in shared.tree.scan_prefix(layout::OPS) {
        let (key, value) = entry?;
        let op_id = layout::op_id_of_key(&key).ok_or_else(|| Error::Corrupt {
            tree: "ops",
            message: "op id".into(),
        })?;
        snapshot
            .op_results
            .push((op_id, shared.open("ops", &key, &value)?));
    }
    for entry in shared.tree.scan_prefix(layout::CONFLICTS) {
        let (key, value) = entry?;
        snapshot
            .conflicts
            .push(shared.open("conflicts", &key, &value)?);
    }
    for entry in shared.devices.iter() {
        let (key, value) = entry?;
        snapshot.devices.push(shared.open("devices", &key, &value)?);
    }
    for entry in shared.tree.scan_prefix(layout::BRANCHES) {
        let (key, value) = entry?;
        snapshot
            .branches
            .push(shared.open("branches", &key, &value)?);
    }
    snapshot.stats = shared.stats().clone();
    snapshot.stats.head = head;
    Ok(snapshot)
}

/// Writes `snapshot` into an empty store under the commit gate, flushes,
/// then takes its log id, head and counters.
pub(super) fn write(shared: &Shared, snapshot: &StoreSnapshot) -> Result<(), Error> {
    let _gate = shared.commit_gate();
    let holds_records = layout::RECORDS
        .into_iter()
        .any(|prefix| shared.tree.scan_prefix(prefix).next().is_some());
    if holds_records || !shared.devices.is_empty() || shared.head() != Seq::ZERO {
        return Err(Error::NotEmpty);
    }
    let mut writer = BatchWriter::new(&shared.tree);
    let mut links = layout::Links::default();
    let mut paginator = Paginator::default();
    let mut previous = Seq::ZERO;
    for change in &snapshot.changes {
        if change.seq <= previous || change.seq > snapshot.head {
            return Err(Error::Corrupt {
                tree: "snapshot",
                message: format!("change {} out of order or past the head", change.seq),
            });
        }
        previous = change.seq;
        let link = links.previous(change);
        if let Some(page) = paginator.push(change.seq, link, change) {
            writer.insert_page(shared, &page)?;
        }
    }
    if let Some(page) = paginator.finish() {
        writer.insert_page(shared, &page)?;
    }
    for stored in &snapshot.documents {
        let key = layout::document(&stored.document.key());
        shared.known_keys.insert(&key);
        writer.insert_sealed(shared, key, stored)?;
    }
    for (op_id, result) in &snapshot.op_results {
        let key = layout::op(op_id);
        shared.known_keys.insert(&key);
        writer.insert_sealed(shared, key, result)?;
    }
    for record in &snapshot.conflicts {
        writer.insert_sealed(shared, layout::conflict(&record.id), record)?;
    }
    for branch in &snapshot.branches {
        writer.insert_sealed(shared, layout::branch(&branch.key(), &branch.name), branch)?;
    }
    let mut stats = snapshot.stats.clone();
    stats.head = snapshot.head;
    for (key, value) in layout::stats_records(&stats, &stats.devices) {
        writer.insert(key, value)?;
    }
    writer.insert(
        layout::LOG_ID_KEY.to_vec(),
        layout::encode_u64(snapshot.log_id.0).to_vec(),
    )?;
    writer.finish()?;
    for device in &snapshot.devices {
        let key = device.device_id.as_str().as_bytes();
        shared.devices.insert(key, shared.seal(key, device))?;
    }
    shared.db.flush()?;
    *shared.stats() = stats;
    shared.log_id.store(snapshot.log_id.0, Ordering::Release);
    shared.durable_head.send_replace(snapshot.head);
    Ok(())
}

/// Inserts into a tree in batches of [`BATCH`] records.
pub(super) struct BatchWriter<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pending: usize,
}

impl<'a> BatchWriter<'a> {
    pub(super) fn new(tree: &'a sled::Tree) -> BatchWriter<'a> {
        BatchWriter {
            tree,
            batch: sled::Batch::default(),
            pending: 0,
        }
    }

    pub(super) fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), Error> {
        self.batch.insert(key, value);
        self.pending += 1;
        if self.pending == BATCH {
            self.finish()?;
        }
        Ok(())
    }

    /// `value` sealed as a record at `key`.
    pub(super) fn insert_sealed<T: Record>(
        &mut self,
        shared: &Shared,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), Error> {
        let sealed = shared.seal(&key, value);
        self.insert(key, sealed)
    }

    /// A sealed log page.
    pub(super) fn insert_page(&mut self, shared: &Shared, page: &Page) -> Result<(), Error> {
        self.insert(layout::log(page.last).to_vec(), shared.seal_page(page))
    }

    /// Applies what is pending.
    pub(super) fn finish(&mut self) -> Result<(), Error> {
        if self.pending > 0 {
            self.tree.apply_batch(std::mem::take(&mut self.batch))?;
            self.pending = 0;
        }
        Ok(())
    }
}
