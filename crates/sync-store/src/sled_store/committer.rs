//! The committer thread: every write of the store goes through it, a group
//! at a time, as one atomic sled batch and one flush.

use std::sync::Arc;

use sync_core::store::{CommitOutcome, StoreStats, StoredDocument, Write};
use sync_core::{ConflictId, ConflictRecord, DocKey, OpId, OpResult};
use tokio::sync::mpsc;

use super::{Durability, Shared, StoreConfig, layout};
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
                let committed = self.commit_group(&requests);
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

    /// Decides every request's writes in order, stores what the group holds
    /// in one atomic batch, flushes once and advances the durable head.
    fn commit_group(&self, requests: &[Request]) -> Result<Vec<Vec<CommitOutcome>>, Error> {
        // The committer is the only writer of the records a group reads but
        // for a snapshot load, which holds the gate too.
        let _gate = self.shared.commit_gate();
        let start = *self.shared.durable_head.borrow();
        let source = TreeSource {
            shared: &self.shared,
        };
        let mut group = Group::new(start);
        let mut all = Vec::with_capacity(requests.len());
        for (writes, _) in requests {
            let mut outcomes = Vec::with_capacity(writes.len());
            for write in writes {
                outcomes.push(group.apply(write, &source)?);
            }
            all.push(outcomes);
        }
        if group.is_empty() {
            return Ok(all);
        }
        let mut stats = self.shared.stats().clone();
        group.tally.add_to(&mut stats, group.head);
        self.shared
            .tree
            .apply_batch(batch_of(&self.shared, &group, &stats))?;
        if self.config.durability == Durability::Fsync {
            self.shared.db.flush()?;
        }
        *self.shared.stats() = stats;
        self.shared.durable_head.send_replace(group.head);
        Ok(all)
    }
}

/// Everything `group` stores, and the counters after it.
fn batch_of(shared: &Shared, group: &Group, stats: &StoreStats) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (previous, change) in group.chained_changes() {
        batch.insert(&layout::log(change.seq), shared.seal_log(previous, change));
    }
    for stored in group.documents() {
        let key = layout::document(&stored.document.key());
        let value = shared.seal(&key, stored);
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
        batch.insert(key, value);
    }
    batch.insert(layout::STATS_KEY, layout::encode(stats));
    batch
}

/// The committer's reads: straight from the tree, which only the committer
/// writes these records of.
struct TreeSource<'a> {
    shared: &'a Shared,
}

impl Source for TreeSource<'_> {
    fn op_result(&self, op_id: &OpId) -> Result<Option<OpResult>, Error> {
        let shared = self.shared;
        shared.read(&shared.tree, &layout::op(op_id), "ops")
    }

    fn document(&self, key: &DocKey) -> Result<Option<StoredDocument>, Error> {
        let shared = self.shared;
        shared.read(&shared.tree, &layout::document(key), "docs")
    }

    fn conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, Error> {
        let shared = self.shared;
        shared.read(&shared.tree, &layout::conflict(id), "conflicts")
    }
}
