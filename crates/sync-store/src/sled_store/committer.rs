//! The committer thread: every write of the store goes through it, a group
//! at a time, as one atomic sled batch and one flush.

use std::collections::BTreeMap;
use std::sync::Arc;

use sync_core::store::{CommitOutcome, DeviceStats, StoreStats, StoredDocument, Write};
use sync_core::{ConflictId, ConflictRecord, DeviceId, DocKey, OpId, OpResult};
use tokio::sync::mpsc;

use super::{Durability, Shared, StoreConfig, layout, pages};
use crate::committed::{Group, Source};
use crate::error::Error;

/// A caller's writes and where their outcomes go.
pub(super) type Request = (
    Vec<Write>,
    tokio::sync::oneshot::Sender<Result<Vec<CommitOutcome>, Error>>,
);

/// Owns the store's writes; runs on its own thread.
pub(super) struct Committer {
    pub(super) shared: Arc<Shared>,
    pub(super) config: StoreConfig,
}

impl Committer {
    /// Takes every request queued while the previous group ran, commits them
    /// as one group and answers each, until the store closes.
    pub(super) fn run(self, mut receiver: mpsc::Receiver<Request>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut requests = vec![first];
            let mut queued = requests[0].0.len();
            while queued < self.config.batch_writes_max {
                match receiver.try_recv() {
                    Ok(request) => {
                        queued += request.0.len();
                        requests.push(request);
                    }
                    Err(_) => break,
                }
            }
            // Refused before sled could run out of space: a full disk
            // mid-write would leave sled failing until reopened.
            let result = self.shared.disk.check().and_then(|()| {
                let started = std::time::Instant::now();
                let committed = self.commit_group(&mut requests, queued);
                *self.shared.last_failure() = committed.as_ref().err().cloned();
                if let (Ok(_), Some(observer)) = (&committed, &self.config.commit_observer) {
                    observer.committed(queued, started.elapsed());
                }
                committed
            });
            match result {
                Ok(outcomes) => {
                    for ((_, reply), outcome) in requests.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(error) => {
                    for (_, reply) in requests {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
        let _ = self.shared.db.flush();
    }

    /// Takes every request's writes and decides them in order (`queued` of
    /// them in all), stores what the group holds in one atomic batch,
    /// flushes once and advances the durable head.
    fn commit_group(
        &self,
        requests: &mut [Request],
        queued: usize,
    ) -> Result<Vec<Vec<CommitOutcome>>, Error> {
        // The committer is the only writer of the records a group reads but
        // for a snapshot load, which holds the gate too.
        let _gate = self.shared.commit_gate();
        let start = *self.shared.durable_head.borrow();
        let source = TreeSource {
            shared: &self.shared,
        };
        let mut group = Group::new(start, queued);
        let mut all = Vec::with_capacity(requests.len());
        for (writes, _) in requests {
            let mut outcomes = Vec::with_capacity(writes.len());
            for write in std::mem::take(writes) {
                outcomes.push(group.apply(write, &source)?);
            }
            all.push(outcomes);
        }
        if group.is_empty() {
            return Ok(all);
        }
        let counters = Counters::after(&self.shared.stats(), &group);
        self.shared
            .tree
            .apply_batch(batch_of(&self.shared, &group, &counters))?;
        if self.config.durability == Durability::Fsync {
            self.shared.db.flush()?;
        }
        counters.store_into(&mut self.shared.stats());
        self.shared.durable_head.send_replace(group.head);
        Ok(all)
    }
}

/// The counters a group changes, as they are after it: the totals, and
/// the devices whose operations it holds (not every device's).
struct Counters {
    totals: StoreStats,
    devices: BTreeMap<DeviceId, DeviceStats>,
}

impl Counters {
    fn after(current: &StoreStats, group: &Group) -> Counters {
        let mut totals = StoreStats {
            operations: current.operations.clone(),
            conflicts: current.conflicts.clone(),
            devices: BTreeMap::new(),
            head: current.head,
            documents: current.documents,
        };
        group.tally.add_to_totals(&mut totals, group.head);
        let devices = group
            .tally
            .devices
            .iter()
            .map(|(device, tally)| {
                let mut counters = current.devices.get(device).cloned().unwrap_or_default();
                tally.add_to(&mut counters);
                (device.clone(), counters)
            })
            .collect();
        Counters { totals, devices }
    }

    /// Makes them the store's, once they are committed.
    fn store_into(self, stats: &mut StoreStats) {
        let devices = std::mem::take(&mut stats.devices);
        *stats = self.totals;
        stats.devices = devices;
        stats.devices.extend(self.devices);
    }
}

/// Everything `group` stores, and the counters after it.
fn batch_of(shared: &Shared, group: &Group, counters: &Counters) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for page in pages::paginate(group.chained_changes()) {
        batch.insert(&layout::log(page.last), shared.seal_page(&page));
    }
    // Document and op keys go into the filter before the tree, so no
    // reader finds a key there that the filter calls absent.
    for stored in group.documents() {
        let key = layout::document(&stored.document.key());
        let value = shared.seal(&key, stored);
        shared.known_keys.insert(&key);
        batch.insert(key, value);
    }
    for record in group.conflicts() {
        let key = layout::conflict(&record.id);
        let value = shared.seal(&key, record);
        batch.insert(key, value);
    }
    for (op_id, result) in &group.results {
        let key = layout::op(op_id);
        let value = shared.seal(&key, result);
        shared.known_keys.insert(&key);
        batch.insert(key, value);
    }
    for (key, value) in layout::stats_records(&counters.totals, &counters.devices) {
        batch.insert(key, value);
    }
    batch
}

/// The committer's reads: straight from the tree, which only the committer
/// writes these records of.
struct TreeSource<'a> {
    shared: &'a Shared,
}

impl Source for TreeSource<'_> {
    fn op_result(&self, op_id: &OpId) -> Result<Option<OpResult>, Error> {
        self.shared.read_known(&layout::op(op_id), "ops")
    }

    fn document(&self, key: &DocKey) -> Result<Option<StoredDocument>, Error> {
        self.shared.read_known(&layout::document(key), "docs")
    }

    fn conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, Error> {
        let shared = self.shared;
        shared.read(&shared.tree, &layout::conflict(id), "conflicts")
    }
}
