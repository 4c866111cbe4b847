//! The state the application's handles and the background engine share:
//! the settings the builder decided, the local store and the offline queue,
//! the event and connection-state channels, the per-collection change
//! signals live queries wait on, and the clock every timestamp comes from.
//!
//! It sits below both sides: the handles ([`SyncClient`](crate::SyncClient),
//! [`Collection`](crate::Collection)) write through it and the engine
//! records the server's answers in it, so the engine never needs the
//! handles. The local view is computed here, from the known server state
//! with the pending operations replayed on top, so both read the same one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sync_core::{
    Clock, CollectionName, ConnectionState, DeviceId, DocId, JsonObject, Namespace, Operation,
    Priority, Publisher,
};
use sync_queue::SledQueue;
use tokio::sync::{Mutex, Notify, broadcast, watch};

use crate::error::Error;
use crate::events::{ConflictInfo, SyncEvent};
use crate::local::LocalStore;
use crate::logic;

/// The application's conflict resolver: given a conflict the server left
/// pending, the resolved document, or `None` to leave it pending.
pub type ConflictHook = Arc<dyn Fn(ConflictInfo) -> Option<JsonObject> + Send + Sync>;

/// Everything the builder decided.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) server_url: String,
    pub(crate) token: Option<String>,
    pub(crate) namespace: Namespace,
    pub(crate) collections: Vec<CollectionName>,
    pub(crate) reconnect_delay: Duration,
    pub(crate) max_reconnect_attempts: Option<u32>,
    pub(crate) ws_retry_interval: Duration,
    pub(crate) poll_wait_secs: u64,
    pub(crate) chunk_size: usize,
    pub(crate) device_name: String,
    pub(crate) platform: String,
    pub(crate) realtime: bool,
    /// The priority of each collection's writes (normal when not named).
    pub(crate) priorities: HashMap<CollectionName, Priority>,
    /// The bandwidth the device declares when it registers (bytes/s).
    pub(crate) bandwidth_limit: Option<u64>,
    /// Trusted for TLS besides the Mozilla roots.
    pub(crate) root_certificates: Vec<sync_realtime::RootCertificate>,
}

impl Settings {
    /// The WebSocket address for the HTTP base address.
    pub(crate) fn ws_url(&self) -> String {
        let base = self.server_url.trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.to_owned());
        format!("{rest}/ws")
    }
}

/// State shared by the handles and the background engine.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) device_id: DeviceId,
    pub(crate) local: LocalStore,
    pub(crate) queue: SledQueue,
    pub(crate) events: broadcast::Sender<SyncEvent>,
    pub(crate) state: Publisher<ConnectionState>,
    /// One generation counter per configured collection, bumped after every
    /// change of its local view; live queries wait on it.
    pub(crate) changed: HashMap<CollectionName, watch::Sender<u64>>,
    /// Wakes the engine when there is something new to push.
    pub(crate) wake: Notify,
    pub(crate) on_conflict: RwLock<Option<ConflictHook>>,
    /// Serialises local writes, so each one is planned on the view left by
    /// the one before.
    pub(crate) write_lock: Mutex<()>,
    /// The timestamp of the last local write: each write gets a later one,
    /// so two edits in the same millisecond still order by last-write-wins.
    pub(crate) last_write_ms: AtomicU64,
    /// Where every timestamp comes from, so tests and simulations can set
    /// the time of writes and of the queue's backoff.
    pub(crate) clock: Arc<dyn Clock>,
    /// The app says the link is metered or slow: low-priority operations
    /// stay queued until it says otherwise.
    pub(crate) metered: AtomicBool,
}

impl Shared {
    /// Milliseconds since the epoch by the client's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_millis()
    }

    /// The timestamp of a new local write: now, or just after the previous
    /// write when the clock has not moved on (or went back).
    pub(crate) fn next_write_ms(&self) -> u64 {
        let now = self.now_ms();
        let stamp = |previous: u64| now.max(previous.saturating_add(1));
        let previous = self
            .last_write_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |previous| {
                Some(stamp(previous))
            })
            .unwrap_or_else(|previous| previous);
        stamp(previous)
    }

    /// The least urgent priority the engine sends now: everything, or
    /// only normal and high ones on a metered link.
    pub(crate) fn lowest_priority(&self) -> Priority {
        if self.metered.load(Ordering::SeqCst) {
            Priority::Normal
        } else {
            Priority::Low
        }
    }

    /// Queued operations the metered link holds back (none when it is not
    /// metered). A low entry still queued after a push belongs to a
    /// document with no more urgent entry, since one would have taken it
    /// along.
    pub(crate) fn held_back(&self) -> usize {
        if self.lowest_priority() == Priority::Low {
            return 0;
        }
        self.queue
            .entries()
            .iter()
            .filter(|entry| {
                entry.state != sync_queue::EntryState::Failed
                    && entry.queued.op.priority == Priority::Low
            })
            .count()
    }

    /// The priority of a write to `collection` when its handle names none.
    pub(crate) fn priority_of(&self, collection: &CollectionName) -> Priority {
        self.settings
            .priorities
            .get(collection)
            .copied()
            .unwrap_or_default()
    }

    /// Tells the live queries of `collection` that its view changed.
    pub(crate) fn touch(&self, collection: &CollectionName) {
        if let Some(sender) = self.changed.get(collection) {
            sender.send_modify(|generation| *generation += 1);
        }
    }

    /// Sends an event to whoever listens (nobody is fine).
    pub(crate) fn emit(&self, event: SyncEvent) {
        let _ = self.events.send(event);
    }

    /// The pending operations of one collection, grouped by document, in
    /// queue order.
    fn pending_ops(&self, collection: &CollectionName) -> BTreeMap<String, Vec<Operation>> {
        let mut pending: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
        let mut entries = self.queue.entries();
        entries.sort_by_key(|entry| entry.queued.id);
        for entry in entries {
            let op = entry.queued.op;
            let ns = op.namespace.clone().unwrap_or_default();
            if ns != self.settings.namespace || op.collection.as_ref() != Some(collection) {
                continue;
            }
            if let Ok(Some(id)) = op.document_id() {
                pending.entry(id.to_string()).or_default().push(op);
            }
        }
        pending
    }

    /// The local view of one document.
    ///
    /// The queue is read before the known state: an acknowledgement stores
    /// the known state before it removes the queue entry, so a read between
    /// the two sees the operation, the new state or both, never neither.
    pub(crate) fn view(
        &self,
        collection: &CollectionName,
        id: &str,
    ) -> Result<Option<JsonObject>, Error> {
        // An id that is not a valid document id has no operations either.
        let pending: Vec<Operation> = match DocId::new(id) {
            Ok(doc) => self
                .queue
                .entries_of(&self.settings.namespace, collection, &doc)
                .into_iter()
                .map(|entry| entry.queued.op)
                .collect(),
            Err(_) => Vec::new(),
        };
        let server = self
            .local
            .server_doc(&self.settings.namespace, collection, id)?;
        let refs: Vec<&Operation> = pending.iter().collect();
        Ok(logic::local_view(server.as_ref(), &refs))
    }

    /// The local view of every document of a collection, each with its id;
    /// the queue is read first, as in [`view`](Self::view).
    pub(crate) fn view_all(&self, collection: &CollectionName) -> Result<Vec<JsonObject>, Error> {
        let mut pending = self.pending_ops(collection);
        let mut docs = Vec::new();
        for (id, server) in self
            .local
            .server_docs(&self.settings.namespace, collection)?
        {
            let ops = pending.remove(&id).unwrap_or_default();
            let refs: Vec<&Operation> = ops.iter().collect();
            if let Some(data) = logic::local_view(Some(&server), &refs) {
                docs.push(logic::with_id(&id, data));
            }
        }
        for (id, ops) in pending {
            let refs: Vec<&Operation> = ops.iter().collect();
            if let Some(data) = logic::local_view(None, &refs) {
                docs.push(logic::with_id(&id, data));
            }
        }
        Ok(docs)
    }
}
