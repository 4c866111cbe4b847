//! The model client: the real client's decisions (`sync_client::logic`)
//! over an in-memory model of its durable state (known server documents,
//! cursor, offline queue) and its volatile state (what is in flight).
//!
//! The offline queue keeps the semantics of `sync-queue` that matter for
//! the guarantees: entries in global order, `ready` hands out only the
//! oldest entry of each document and never one while an older entry of its
//! document is queued, an entry handed out is marked *sent* and never
//! modified again, the in-flight mark is volatile (after a restart every
//! unacknowledged entry goes out again with its original `opId`).
//! Coalescing is an optional optimisation of the real queue and is left
//! out: without it every edit reaches the server as its own operation,
//! which exercises idempotency harder.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sync_client::logic::{self, AckEffect, ServerDoc};
use sync_core::{
    Action, Change, Clock, DeviceId, DocKey, Document, JsonObject, ManualClock, OpId, OpResult,
    Operation, Seq, Timestamp, Version,
};

/// One entry of the model offline queue.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The queue's own id, increasing.
    pub(crate) qid: u64,
    /// The operation as enqueued.
    pub(crate) op: Operation,
    /// Handed out by `ready` at least once: frozen from then on.
    pub(crate) sent: bool,
}

/// What survives a client crash: the known server state, the cursor and
/// the offline queue (persisted before a write returns: guarantee 5 of
/// `docs/protocol.md`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Durable {
    /// The server's last known state of each document.
    pub(crate) known: BTreeMap<DocKey, ServerDoc>,
    /// The last log position applied (changes are read unfiltered, so the
    /// next one must be `cursor + 1`).
    pub(crate) cursor: Seq,
    /// The offline queue, oldest first.
    pub(crate) queue: Vec<Entry>,
    /// The next queue id.
    pub(crate) next_qid: u64,
    /// The next operation number (opIds are `c<client>-<n>`).
    pub(crate) next_op: u64,
    /// The next fresh document number (`f<client>-<n>`).
    pub(crate) next_fresh: u64,
    /// The timestamp of the last local write.
    pub(crate) last_write_ms: u64,
}

/// What a crash loses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Volatile {
    /// Queue ids handed out by `ready` and not answered yet.
    pub(crate) in_flight: BTreeSet<u64>,
}

/// What an incoming change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Applied (or a no-op for the known state) and the cursor moved.
    Accepted,
    /// At or below the cursor: a replay, ignored.
    Replay,
    /// Beyond `cursor + 1`: a gap in the stream.
    Gap,
}

/// A model client device.
#[derive(Debug)]
pub(crate) struct Client {
    /// Its index in the simulation.
    pub(crate) index: usize,
    /// Its device id.
    pub(crate) device: DeviceId,
    /// Its wall clock: the server's plus `skew_ms`.
    pub(crate) clock: Arc<ManualClock>,
    /// How far its clock is off the server's, in milliseconds.
    pub(crate) skew_ms: i64,
    /// What survives a crash.
    pub(crate) durable: Durable,
    /// What does not.
    pub(crate) volatile: Volatile,
}

/// The document an operation is about (the simulation always names it).
pub(crate) fn op_key(op: &Operation) -> DocKey {
    DocKey::new(
        op.namespace.clone().unwrap_or_default(),
        op.collection
            .clone()
            .expect("simulated operations name their collection"),
        op.id
            .clone()
            .expect("simulated operations name their document"),
    )
}

impl Client {
    /// A fresh device with an empty state.
    pub(crate) fn new(index: usize, wall_ms: u64) -> Client {
        Client {
            index,
            device: DeviceId::new(format!("device-{index}")).expect("a valid device id"),
            clock: Arc::new(ManualClock::new(wall_ms)),
            skew_ms: 0,
            durable: Durable::default(),
            volatile: Volatile::default(),
        }
    }

    /// Sets the client's clock from the server's wall time and its skew.
    pub(crate) fn tick(&self, server_wall_ms: u64) {
        let local = server_wall_ms.saturating_add_signed(self.skew_ms);
        self.clock.set(local);
    }

    /// The pending operations of one document, in queue order.
    pub(crate) fn pending(&self, key: &DocKey) -> Vec<&Operation> {
        self.durable
            .queue
            .iter()
            .filter(|entry| op_key(&entry.op) == *key)
            .map(|entry| &entry.op)
            .collect()
    }

    /// The local view of a document: `logic::local_view`.
    pub(crate) fn view(&self, key: &DocKey) -> Option<JsonObject> {
        logic::local_view(self.durable.known.get(key), &self.pending(key))
    }

    /// Queues a local write of `action` with `data` on `key`, as the real
    /// client's `enqueue` does: an explicit opId, a timestamp later than
    /// the previous write's, and the known live version as `baseVersion`
    /// (none for a create).
    pub(crate) fn enqueue(
        &mut self,
        key: &DocKey,
        action: Action,
        data: Option<JsonObject>,
    ) -> Operation {
        let durable = &mut self.durable;
        let mut op = Operation::new(action);
        op.op_id =
            Some(OpId::new(format!("c{}-{}", self.index, durable.next_op)).expect("a valid opId"));
        durable.next_op += 1;
        op.namespace = Some(key.namespace.clone());
        op.collection = Some(key.collection.clone());
        op.id = Some(key.id.clone());
        let stamp = self.clock.now_millis().max(durable.last_write_ms + 1);
        durable.last_write_ms = stamp;
        op.timestamp = Timestamp::from_millis(stamp);
        op.base_version = match action {
            Action::Create => None,
            _ => durable
                .known
                .get(key)
                .filter(|doc| !doc.deleted)
                .map(|doc| Version(doc.version)),
        };
        op.data = data;
        durable.queue.push(Entry {
            qid: durable.next_qid,
            op: op.clone(),
            sent: false,
        });
        durable.next_qid += 1;
        op
    }

    /// Up to `max` entries that may go out now (the oldest entry of each
    /// document, not in flight), marked sent and in flight, as they go out
    /// (`outgoing`: an update or delete without `baseVersion` gets the
    /// known live version).
    pub(crate) fn ready(&mut self, max: usize) -> Vec<Operation> {
        let mut blocked: BTreeSet<DocKey> = BTreeSet::new();
        let mut batch = Vec::new();
        for entry in &mut self.durable.queue {
            if batch.len() >= max {
                break;
            }
            let key = op_key(&entry.op);
            if !blocked.insert(key.clone()) {
                continue;
            }
            if self.volatile.in_flight.contains(&entry.qid) {
                continue;
            }
            entry.sent = true;
            self.volatile.in_flight.insert(entry.qid);
            let mut op = entry.op.clone();
            if op.base_version.is_none() && matches!(op.action, Action::Update | Action::Delete) {
                op.base_version = self
                    .durable
                    .known
                    .get(&key)
                    .filter(|doc| !doc.deleted)
                    .map(|doc| Version(doc.version));
            }
            batch.push(op);
        }
        batch
    }

    /// The queue entry of `op_id`, if it is still queued.
    pub(crate) fn entry_of(&self, op_id: &OpId) -> Option<&Entry> {
        self.durable
            .queue
            .iter()
            .find(|entry| entry.op.op_id.as_ref() == Some(op_id))
    }

    /// What an acknowledgement does to the known state: `logic::ack_effect`.
    pub(crate) fn ack_effect(&self, op: &Operation, result: &OpResult) -> AckEffect {
        logic::ack_effect(self.durable.known.get(&op_key(op)), op, result)
    }

    /// Stores a document read from the server when it is newer than the
    /// known one (the engine's `store_document`).
    pub(crate) fn store_document(&mut self, document: &Document) {
        let key = document.key();
        let known = self.durable.known.get(&key).map_or(0, |doc| doc.version);
        if document.version.get() <= known {
            return;
        }
        self.durable.known.insert(
            key,
            ServerDoc {
                data: if document.deleted {
                    JsonObject::new()
                } else {
                    document.data.clone()
                },
                version: document.version.get(),
                deleted: document.deleted,
            },
        );
    }

    /// Removes an answered entry from the queue.
    pub(crate) fn remove(&mut self, qid: u64) {
        self.durable.queue.retain(|entry| entry.qid != qid);
        self.volatile.in_flight.remove(&qid);
    }

    /// Applies a pushed change: `logic::apply_change`, and the cursor
    /// moves past it. The stream is unfiltered, so the next change must be
    /// exactly `cursor + 1`.
    pub(crate) fn receive(&mut self, change: &Change) -> Received {
        let cursor = self.durable.cursor;
        if change.seq <= cursor {
            return Received::Replay;
        }
        if change.seq != cursor.next() {
            return Received::Gap;
        }
        let key = change.key();
        if let Some(doc) = logic::apply_change(self.durable.known.get(&key), change) {
            self.durable.known.insert(key, doc);
        }
        self.durable.cursor = change.seq;
        Received::Accepted
    }

    /// A crash: the volatile state is gone.
    pub(crate) fn crash(&mut self) {
        self.volatile = Volatile::default();
    }
}
