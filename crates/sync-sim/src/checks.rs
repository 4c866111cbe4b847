//! The checks after the heal: the guarantees of `docs/protocol.md`
//! ("Guarantees"), read off the store, the full change log and every
//! client's model state.

use std::collections::BTreeMap;

use sync_core::store::ChangeFilter;
use sync_core::{Change, ChangeOp, DocKey, HlcClock, JsonObject, OpId, Seq, SyncStore};

use crate::sim::Sim;

/// A document as the log says it is after its last change.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    data: Option<JsonObject>,
    version: u64,
}

impl Sim {
    /// Every check; the broken ones become violations.
    pub(crate) async fn check(&mut self) -> Result<(), String> {
        let store_err = |e: sync_core::StoreError| format!("store failed during the checks: {e}");
        // The full log.
        let mut log: Vec<Change> = Vec::new();
        let mut after = Seq::ZERO;
        loop {
            let page = self
                .server
                .store()
                .changes_after(after, &ChangeFilter::default(), 1_000)
                .await
                .map_err(store_err)?;
            after = page.last_seq;
            let more = page.has_more && !page.changes.is_empty();
            log.extend(page.changes);
            if !more {
                break;
            }
        }
        self.stats.changes = log.len();
        for (index, change) in log.iter().enumerate() {
            if change.seq.get() != index as u64 + 1 {
                self.violation(format!(
                    "the log is not gap-free: entry {index} has seq {}",
                    change.seq
                ));
                break;
            }
        }

        // Exactly once: at most one change per opId.
        let mut by_op: BTreeMap<&OpId, Vec<&Change>> = BTreeMap::new();
        for change in &log {
            by_op.entry(&change.op_id).or_default().push(change);
        }
        let mut twice = Vec::new();
        for (op_id, changes) in &by_op {
            if changes.len() > 1 {
                let seqs: Vec<u64> = changes.iter().map(|c| c.seq.get()).collect();
                twice.push(format!(
                    "opId {op_id} applied {} times (seqs {seqs:?})",
                    seqs.len()
                ));
            }
        }
        for message in twice {
            self.violation(message);
        }

        // Durability: every acknowledged operation has its result stored
        // and, when it changed the document, its change in the log.
        let acknowledged: Vec<_> = self
            .server
            .acknowledged
            .iter()
            .map(|(id, result)| (id.clone(), result.clone()))
            .collect();
        for (op_id, result) in acknowledged {
            let stored = self
                .server
                .store()
                .lookup_op(&op_id)
                .await
                .map_err(store_err)?;
            if stored.is_none() {
                self.violation(format!(
                    "acknowledged operation {op_id} has no stored result"
                ));
            }
            if let Some(seq) = result.seq {
                let at = seq.get().checked_sub(1).and_then(|i| log.get(i as usize));
                if at.is_none_or(|change| change.op_id != op_id) {
                    self.violation(format!(
                        "acknowledged operation {op_id} (seq {seq}) is not in the log at its seq"
                    ));
                }
            }
        }

        // No offline write lost: every enqueued operation was applied or
        // refused with a reason.
        let enqueued: Vec<_> = self.enqueued.keys().cloned().collect();
        for op_id in enqueued {
            if self.refused.contains_key(&op_id) {
                continue;
            }
            let stored = self
                .server
                .store()
                .lookup_op(&op_id)
                .await
                .map_err(store_err)?;
            if stored.is_none() {
                self.violation(format!(
                    "operation {op_id} was enqueued but never reached the server"
                ));
            }
        }

        // The documents are a projection of the log.
        let differing = self
            .server
            .store()
            .verify_projection()
            .map_err(|e| format!("verify_projection failed: {e}"))?;
        for key in differing {
            self.violation(format!(
                "document {key} differs from its rebuild from the log"
            ));
        }

        // What each document is after its last change.
        let mut expected: BTreeMap<DocKey, Expected> = BTreeMap::new();
        for change in &log {
            let data = match change.op {
                ChangeOp::Delete => None,
                _ => Some(change.data.clone().unwrap_or_default()),
            };
            expected.insert(
                change.key(),
                Expected {
                    data,
                    version: change.version.get(),
                },
            );
        }

        // The server's documents are the log's.
        let mut fields_ahead = Vec::new();
        let bound = self
            .server
            .wall_ms()
            .saturating_add(HlcClock::DEFAULT_MAX_SKEW.as_millis() as u64);
        for (key, want) in &expected {
            let stored = self.server.store().get(key).await.map_err(store_err)?;
            let Some(stored) = stored else {
                self.violation(format!("document {key} is in the log but not in the store"));
                continue;
            };
            let have = Expected {
                data: (!stored.document.deleted).then(|| stored.document.data.clone()),
                version: stored.document.version.get(),
            };
            if have != *want {
                self.violation(format!(
                    "document {key}: the store has {have:?}, the log says {want:?}"
                ));
            }
            // No timestamp beyond the skew bound is stored, so none wins.
            for (field, clock) in &stored.field_clocks {
                if clock.physical_ms() > bound {
                    fields_ahead.push(format!(
                        "document {key} field {field:?} has clock {clock}, beyond the server's \
                         wall time + max skew ({bound} ms)"
                    ));
                }
            }
        }
        for message in fields_ahead {
            self.violation(message);
        }

        // Every client: caught up, queue empty, known state = the log's,
        // view = the server's documents.
        let mut broken = Vec::new();
        let head = log.last().map_or(Seq::ZERO, |change| change.seq);
        for client in &self.clients {
            let i = client.index;
            if client.durable.cursor != head {
                broken.push(format!(
                    "client {i} stopped at cursor {} of head {head}",
                    client.durable.cursor
                ));
            }
            if !client.durable.queue.is_empty() {
                broken.push(format!(
                    "client {i} still has {} pending operations",
                    client.durable.queue.len()
                ));
            }
            for key in client.durable.known.keys() {
                if !expected.contains_key(key) {
                    broken.push(format!("client {i} knows {key}, which the log never had"));
                }
            }
            for (key, want) in &expected {
                let known = client.durable.known.get(key);
                let have = known.map(|doc| Expected {
                    data: (!doc.deleted).then(|| doc.data.clone()),
                    version: doc.version,
                });
                if have.as_ref() != Some(want) {
                    broken.push(format!(
                        "client {i} holds {key} as {have:?}; the server has {want:?}"
                    ));
                }
                let view = client.view(key);
                if view != want.data {
                    broken.push(format!(
                        "client {i} shows {key} as {view:?}; the server has {:?}",
                        want.data
                    ));
                }
            }
        }
        for message in broken {
            self.violation(message);
        }
        Ok(())
    }
}
