//! The sled implementation of [`SyncStore`], with a single committer thread
//! doing group commit.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use sync_core::store::{
    ChangeFilter, ChangePage, CommitObserver, CommitOutcome, ConflictQuery, DeviceRecord,
    DocumentPage, RetentionPolicy, StoreSnapshot, StoreStats, StoredDocument, Write,
};
use sync_core::{
    Change, CollectionName, ConflictId, ConflictRecord, DeviceId, DocId, DocKey, Document, Filter,
    LogId, Namespace, OpId, OpResult, Seq, StoreError, SyncStore, UserId, Version,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::committed::{Group, Source};
use crate::error::Error;
use crate::keys;
use crate::replay::{document_at, projection_differences};

/// Whether an acknowledgement waits for the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge after fsync (the default, which the durability guarantee
    /// of `docs/protocol.md` needs).
    #[default]
    Fsync,
    /// Acknowledge after handing the writes to the operating system, without
    /// fsync. **Unsafe**: a power loss or kernel crash can lose acknowledged
    /// writes. For tests and benchmarks only.
    Os,
}

/// Settings of a [`SledStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// When writes are acknowledged.
    pub durability: Durability,
    /// The most writes one group commit takes.
    pub batch_writes_max: usize,
    /// The most write requests waiting for the committer.
    pub queue_depth_max: usize,
    /// Free bytes kept on the data directory's disk: with less, writes are
    /// refused ([`Error::StorageFull`]) before sled runs out of space, and
    /// accepted again once space is free.
    pub disk_reserve_bytes: u64,
    /// Told of every group commit.
    pub commit_observer: Option<Arc<dyn CommitObserver>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::Fsync,
            batch_writes_max: 4_096,
            queue_depth_max: 8_192,
            disk_reserve_bytes: 64 * 1024 * 1024,
            commit_observer: None,
        }
    }
}

struct Trees {
    db: sled::Db,
    meta: Tree,
    docs: Tree,
    log: Tree,
    history: Tree,
    ops: Tree,
    conflicts: Tree,
    devices: Tree,
}

type Reply = oneshot::Sender<Result<Vec<CommitOutcome>, Error>>;

/// The embedded store: one sled database in a data directory.
pub struct SledStore {
    trees: Arc<Trees>,
    /// The log's id; replaced once by a snapshot load.
    log_id: Arc<AtomicU64>,
    durable_head: Arc<watch::Sender<Seq>>,
    committer: mpsc::Sender<(Vec<Write>, Reply)>,
    committer_thread: std::thread::JoinHandle<()>,
    flushing: tokio::sync::Mutex<()>,
    /// Held by the committer for each group commit, and by a snapshot or a
    /// load for its whole read or write: no commit runs meanwhile.
    commit_gate: Arc<std::sync::Mutex<()>>,
    /// The data directory and the space kept free on its disk.
    disk: Disk,
    /// Why the last group commit failed, until one succeeds.
    last_failure: Arc<std::sync::Mutex<Option<Error>>>,
}

/// The data directory's disk and the free space the store keeps on it.
#[derive(Debug, Clone)]
struct Disk {
    path: PathBuf,
    reserve_bytes: u64,
}

impl Disk {
    /// Whether more than the reserve is free.
    fn check(&self) -> Result<(), Error> {
        let available = fs2::available_space(&self.path).map_err(sled::Error::Io)?;
        if available < self.reserve_bytes {
            return Err(Error::StorageFull {
                available,
                reserve: self.reserve_bytes,
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("log_id", &self.log_id())
            .field("durable_head", &self.head_seq())
            .finish()
    }
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|error| Error::Corrupt {
        tree,
        message: error.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain data with string keys: encoding cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// How long `open` waits for a lock a closing store still holds: sled's
/// background threads release the directory a moment after `close`.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn open_db(path: &Path) -> Result<sled::Db, Error> {
    wait_until_unlocked(path);
    // High-throughput mode trades disk space (segments are rewritten less
    // eagerly) for far less CPU per write: the committer is CPU-bound, and
    // this mode took 64 concurrent durable writers from about 13,000 to
    // 25,000 acknowledged writes per second.
    let config = sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput);
    Ok(config.open()?)
}

/// Waits up to [`LOCK_WAIT`] until no handle holds the exclusive lock sled
/// takes on the `db` file in `dir`. A lock still held after that is most
/// likely another process's, which opening then reports.
fn wait_until_unlocked(dir: &Path) {
    let deadline = Instant::now() + LOCK_WAIT;
    let Ok(file) = File::open(dir.join("db")) else {
        return;
    };
    while let Err(TryLockError::WouldBlock) = file.try_lock() {
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = file.unlock();
}

const STATS_KEY: &[u8] = b"stats";
const LOG_ID_KEY: &[u8] = b"log_id";

impl SledStore {
    /// Opens (or creates) the store in `path`. Must be called inside a
    /// tokio runtime only for the async methods; opening itself is blocking.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<SledStore, Error> {
        let db = open_db(path.as_ref())?;
        let trees = Trees {
            meta: db.open_tree("meta")?,
            docs: db.open_tree("docs")?,
            log: db.open_tree("log")?,
            history: db.open_tree("history")?,
            ops: db.open_tree("ops")?,
            conflicts: db.open_tree("conflicts")?,
            devices: db.open_tree("devices")?,
            db,
        };
        let log_id = match trees.meta.get(LOG_ID_KEY)? {
            Some(bytes) => LogId(
                keys::decode_seq(&bytes)
                    .ok_or_else(|| Error::Corrupt {
                        tree: "meta",
                        message: "log id".into(),
                    })?
                    .get(),
            ),
            None => {
                let log_id = LogId::generate();
                trees.meta.insert(LOG_ID_KEY, &log_id.0.to_be_bytes())?;
                trees.db.flush()?;
                log_id
            }
        };
        let head = match trees.log.last()? {
            Some((key, _)) => keys::decode_seq(&key).unwrap_or_default(),
            None => Seq::ZERO,
        };
        let trees = Arc::new(trees);
        let durable_head = Arc::new(watch::Sender::new(head));
        let commit_gate = Arc::new(std::sync::Mutex::new(()));
        let (sender, receiver) = mpsc::channel(config.queue_depth_max.max(1));
        let disk = Disk {
            path: path.as_ref().to_path_buf(),
            reserve_bytes: config.disk_reserve_bytes,
        };
        let last_failure = Arc::new(std::sync::Mutex::new(None));
        let committer = Committer {
            trees: Arc::clone(&trees),
            durable_head: Arc::clone(&durable_head),
            commit_gate: Arc::clone(&commit_gate),
            disk: disk.clone(),
            last_failure: Arc::clone(&last_failure),
            config,
        };
        let committer_thread = std::thread::Builder::new()
            .name("sync-store-committer".into())
            .spawn(move || committer.run(receiver))
            .map_err(|error| Error::from(sled::Error::Io(error)))?;
        Ok(SledStore {
            trees,
            log_id: Arc::new(AtomicU64::new(log_id.0)),
            durable_head,
            committer: sender,
            committer_thread,
            flushing: tokio::sync::Mutex::new(()),
            commit_gate,
            disk,
            last_failure,
        })
    }

    /// Stops accepting writes, lets the committer finish what is queued,
    /// flushes and releases the data directory (so it can be opened again).
    pub fn close(self) -> Result<(), Error> {
        let SledStore {
            trees,
            committer,
            committer_thread,
            ..
        } = self;
        drop(committer);
        committer_thread.join().map_err(|_| Error::Closed)?;
        trees.db.flush()?;
        Ok(())
    }

    /// Flushes everything written so far, one caller at a time, on a
    /// blocking thread. Never sled's `flush_async`: concurrent calls of it
    /// fill sled's I/O pool with flushes that wait for a log write needing
    /// a free pool thread, and every writer and reader then hangs (sled
    /// issues 1241 and 1308; seen here with 64 devices saying hello at
    /// once).
    async fn flush_durably(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.flushing.lock().await;
        let db = self.trees.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| StoreError::Backend(format!("flush task: {error}")))?
            .map_err(Error::from)?;
        Ok(())
    }

    fn head_seq(&self) -> Seq {
        *self.durable_head.borrow()
    }

    fn read_change(&self, seq: Seq) -> Result<Option<Change>, Error> {
        self.trees
            .log
            .get(keys::seq(seq))?
            .map(|bytes| decode("log", &bytes))
            .transpose()
    }

    fn history_changes(&self, key: &DocKey) -> Result<Vec<Change>, Error> {
        let head = self.head_seq();
        let mut changes = Vec::new();
        for entry in self.trees.history.scan_prefix(keys::history_prefix(key)) {
            let (_, value) = entry?;
            let seq = keys::decode_seq(&value).ok_or_else(|| Error::Corrupt {
                tree: "history",
                message: "seq".into(),
            })?;
            if seq > head {
                break;
            }
            if let Some(change) = self.read_change(seq)? {
                changes.push(change);
            }
        }
        Ok(changes)
    }

    /// What a snapshot's read or load needs, to run on a blocking thread.
    fn snapshot_parts(&self) -> SnapshotParts {
        SnapshotParts {
            trees: Arc::clone(&self.trees),
            durable_head: Arc::clone(&self.durable_head),
            commit_gate: Arc::clone(&self.commit_gate),
            log_id: Arc::clone(&self.log_id),
        }
    }

    /// Recomputes every document from the change log and compares it with
    /// the stored projection; returns the keys that differ (empty when the
    /// projection is exactly the log's). Documents are a projection of the
    /// log: this is the check that they still are.
    pub fn verify_projection(&self) -> Result<Vec<DocKey>, Error> {
        let mut by_document: BTreeMap<DocKey, Vec<Change>> = BTreeMap::new();
        for entry in self.trees.log.iter() {
            let (_, value) = entry?;
            let change: Change = decode("log", &value)?;
            by_document.entry(change.key()).or_default().push(change);
        }
        let mut stored = BTreeMap::new();
        for entry in self.trees.docs.iter() {
            let (_, value) = entry?;
            let document = decode::<StoredDocument>("docs", &value)?.document;
            stored.insert(document.key(), document);
        }
        Ok(projection_differences(&by_document, stored))
    }
}

/// The parts of a [`SledStore`] a snapshot reads or a load writes, shared
/// with it, so that either runs on a blocking thread: under the commit
/// gate they may take a while, and no runtime thread should wait that long.
struct SnapshotParts {
    trees: Arc<Trees>,
    durable_head: Arc<watch::Sender<Seq>>,
    commit_gate: Arc<std::sync::Mutex<()>>,
    log_id: Arc<AtomicU64>,
}

impl SnapshotParts {
    /// Reads everything under the commit gate: no group commit runs
    /// meanwhile, so every tree is as the durable head left it.
    fn read(&self) -> Result<StoreSnapshot, Error> {
        let _gate = self
            .commit_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let trees = &self.trees;
        let head = *self.durable_head.borrow();
        let mut snapshot = StoreSnapshot::new(LogId(self.log_id.load(Ordering::Acquire)), head);
        for entry in trees.log.iter() {
            let (_, value) = entry?;
            snapshot.changes.push(decode("log", &value)?);
        }
        for entry in trees.docs.iter() {
            let (_, value) = entry?;
            snapshot.documents.push(decode("docs", &value)?);
        }
        for entry in trees.ops.iter() {
            let (key, value) = entry?;
            let op_id = std::str::from_utf8(&key)
                .ok()
                .and_then(|id| OpId::new(id).ok())
                .ok_or_else(|| Error::Corrupt {
                    tree: "ops",
                    message: "op id".into(),
                })?;
            snapshot.op_results.push((op_id, decode("ops", &value)?));
        }
        for entry in trees.conflicts.iter() {
            let (_, value) = entry?;
            snapshot.conflicts.push(decode("conflicts", &value)?);
        }
        for entry in trees.devices.iter() {
            let (_, value) = entry?;
            snapshot.devices.push(decode("devices", &value)?);
        }
        snapshot.stats = match trees.meta.get(STATS_KEY)? {
            Some(bytes) => decode("meta", &bytes)?,
            None => StoreStats::default(),
        };
        snapshot.stats.head = head;
        Ok(snapshot)
    }

    /// Writes `snapshot` into the empty trees under the commit gate,
    /// flushes, then takes its log id and head.
    fn write(&self, snapshot: &StoreSnapshot) -> Result<(), Error> {
        let _gate = self
            .commit_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let trees = &self.trees;
        let empty = trees.log.is_empty()
            && trees.docs.is_empty()
            && trees.ops.is_empty()
            && trees.conflicts.is_empty()
            && trees.devices.is_empty()
            && *self.durable_head.borrow() == Seq::ZERO;
        if !empty {
            return Err(Error::NotEmpty);
        }
        let mut previous = Seq::ZERO;
        for change in &snapshot.changes {
            if change.seq <= previous || change.seq > snapshot.head {
                return Err(Error::Corrupt {
                    tree: "snapshot",
                    message: format!("change {} out of order or past the head", change.seq),
                });
            }
            previous = change.seq;
            trees.log.insert(keys::seq(change.seq), encode(change))?;
            trees.history.insert(
                keys::history(&change.key(), change.version),
                &keys::seq(change.seq),
            )?;
        }
        for stored in &snapshot.documents {
            trees
                .docs
                .insert(keys::document(&stored.document.key()), encode(stored))?;
        }
        for (op_id, result) in &snapshot.op_results {
            trees.ops.insert(op_id.as_str(), encode(result))?;
        }
        for record in &snapshot.conflicts {
            trees.conflicts.insert(record.id.as_str(), encode(record))?;
        }
        for device in &snapshot.devices {
            trees
                .devices
                .insert(device.device_id.as_str(), encode(device))?;
        }
        let mut stats = snapshot.stats.clone();
        stats.head = snapshot.head;
        trees.meta.insert(STATS_KEY, encode(&stats))?;
        trees
            .meta
            .insert(LOG_ID_KEY, &snapshot.log_id.0.to_be_bytes())?;
        trees.db.flush()?;
        self.log_id.store(snapshot.log_id.0, Ordering::Release);
        self.durable_head.send_replace(snapshot.head);
        Ok(())
    }
}

struct Committer {
    trees: Arc<Trees>,
    durable_head: Arc<watch::Sender<Seq>>,
    commit_gate: Arc<std::sync::Mutex<()>>,
    disk: Disk,
    last_failure: Arc<std::sync::Mutex<Option<Error>>>,
    config: StoreConfig,
}

impl Committer {
    fn run(mut self, mut receiver: mpsc::Receiver<(Vec<Write>, Reply)>) {
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
            let result = self.disk.check().and_then(|()| {
                let started = std::time::Instant::now();
                let committed = self.commit_group(&requests);
                let failure = committed.as_ref().err().cloned();
                *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
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
        let _ = self.trees.db.flush();
    }

    /// Applies every request's writes in one transaction, flushes once and
    /// advances the durable head.
    fn commit_group(
        &mut self,
        requests: &[(Vec<Write>, Reply)],
    ) -> Result<Vec<Vec<CommitOutcome>>, Error> {
        // The committer is the only writer of the head but for a snapshot
        // load, which holds the gate too.
        let _gate = self
            .commit_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let trees = &self.trees;
        let start = *self.durable_head.borrow();
        let result = (
            &trees.docs,
            &trees.log,
            &trees.history,
            &trees.ops,
            &trees.conflicts,
            &trees.meta,
        )
            .transaction(|(docs, log, history, ops, conflicts, meta)| {
                let source = TxSource {
                    docs,
                    ops,
                    conflicts,
                };
                let mut group = Group::new(start);
                let mut all = Vec::with_capacity(requests.len());
                for (writes, _) in requests {
                    let mut outcomes = Vec::with_capacity(writes.len());
                    for write in writes {
                        let outcome = group
                            .apply(write, &source)
                            .map_err(ConflictableTransactionError::Abort)?;
                        outcomes.push(outcome);
                    }
                    all.push(outcomes);
                }
                if !group.is_empty() {
                    let mut stats: StoreStats = match meta.get(STATS_KEY)? {
                        Some(bytes) => {
                            decode("meta", &bytes).map_err(ConflictableTransactionError::Abort)?
                        }
                        None => StoreStats::default(),
                    };
                    group.tally.add_to(&mut stats, group.head);
                    for change in &group.changes {
                        log.insert(&keys::seq(change.seq), encode(change))?;
                        history.insert(
                            keys::history(&change.key(), change.version),
                            &keys::seq(change.seq),
                        )?;
                    }
                    for stored in group.documents() {
                        docs.insert(keys::document(&stored.document.key()), encode(stored))?;
                    }
                    for record in group.conflicts() {
                        conflicts.insert(record.id.as_str(), encode(record))?;
                    }
                    for (op_id, result) in &group.results {
                        ops.insert(op_id.as_str(), encode(result))?;
                    }
                    meta.insert(STATS_KEY, encode(&stats))?;
                }
                let head = group.head;
                Ok((all, head))
            });
        let (outcomes, head) = match result {
            Ok(done) => done,
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => return Err(Error::from(error)),
        };
        if self.config.durability == Durability::Fsync {
            trees.db.flush()?;
        }
        self.durable_head.send_replace(head);
        Ok(outcomes)
    }
}

/// The committer's reads, inside its transaction.
struct TxSource<'a> {
    docs: &'a TransactionalTree,
    ops: &'a TransactionalTree,
    conflicts: &'a TransactionalTree,
}

fn tx_error(error: sled::transaction::UnabortableTransactionError) -> Error {
    match error {
        sled::transaction::UnabortableTransactionError::Storage(error) => Error::from(error),
        sled::transaction::UnabortableTransactionError::Conflict => Error::Corrupt {
            tree: "commit",
            message: "transaction conflict in the single committer".into(),
        },
    }
}

impl Source for TxSource<'_> {
    fn op_result(&self, op_id: &OpId) -> Result<Option<OpResult>, Error> {
        self.ops
            .get(op_id.as_str())
            .map_err(tx_error)?
            .map(|bytes| decode("ops", &bytes))
            .transpose()
    }

    fn document(&self, key: &DocKey) -> Result<Option<StoredDocument>, Error> {
        self.docs
            .get(keys::document(key))
            .map_err(tx_error)?
            .map(|bytes| decode("docs", &bytes))
            .transpose()
    }

    fn conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, Error> {
        self.conflicts
            .get(id.as_str())
            .map_err(tx_error)?
            .map(|bytes| decode("conflicts", &bytes))
            .transpose()
    }
}

#[async_trait]
impl SyncStore for SledStore {
    fn log_id(&self) -> LogId {
        LogId(self.log_id.load(Ordering::Acquire))
    }

    async fn get(&self, key: &DocKey) -> Result<Option<StoredDocument>, StoreError> {
        let found = self
            .trees
            .docs
            .get(keys::document(key))
            .map_err(Error::from)?;
        Ok(found.map(|bytes| decode("docs", &bytes)).transpose()?)
    }

    async fn list(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        filter: &Filter,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<DocumentPage, StoreError> {
        let prefix = keys::collection_prefix(namespace.as_str(), collection.as_str());
        let mut start = prefix.clone();
        if let Some(after) = after {
            start.extend_from_slice(after.as_str().as_bytes());
            start.push(0);
        }
        let mut documents = Vec::new();
        let mut next = None;
        for entry in self.trees.docs.range(start..) {
            let (key, value) = entry.map_err(Error::from)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let stored: StoredDocument = decode("docs", &value)?;
            if stored.document.deleted || !filter.matches(&stored.document.data) {
                continue;
            }
            if documents.len() == limit {
                next = documents.last().map(|d: &Document| d.id.clone());
                break;
            }
            documents.push(stored.document);
        }
        Ok(DocumentPage { documents, next })
    }

    async fn lookup_op(&self, op_id: &OpId) -> Result<Option<OpResult>, StoreError> {
        let found = self.trees.ops.get(op_id.as_str()).map_err(Error::from)?;
        Ok(found.map(|bytes| decode("ops", &bytes)).transpose()?)
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<CommitOutcome>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.committer
            .send((writes, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(answer.await.map_err(|_| StoreError::Closed)??)
    }

    async fn changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage, StoreError> {
        let head = self.head_seq();
        let mut changes = Vec::new();
        let mut last_seq = after;
        if after < head {
            for entry in self
                .trees
                .log
                .range(keys::seq(after.next())..=keys::seq(head))
            {
                let (key, value) = entry.map_err(Error::from)?;
                let seq = keys::decode_seq(&key).unwrap_or(last_seq);
                let change: Change = decode("log", &value)?;
                last_seq = seq;
                if filter.matches(&change) {
                    changes.push(change);
                    if changes.len() >= limit {
                        break;
                    }
                }
            }
        }
        Ok(ChangePage {
            changes,
            last_seq,
            has_more: last_seq < head,
        })
    }

    async fn head(&self) -> Result<Seq, StoreError> {
        Ok(self.head_seq())
    }

    async fn wait_for_head(&self, after: Seq) -> Result<Seq, StoreError> {
        let mut heads = self.durable_head.subscribe();
        let head = heads
            .wait_for(|head| *head > after)
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(*head)
    }

    async fn oldest_retained(&self) -> Result<Seq, StoreError> {
        let first = self.trees.log.first().map_err(Error::from)?;
        Ok(first
            .and_then(|(key, _)| keys::decode_seq(&key))
            .unwrap_or(self.head_seq().next()))
    }

    async fn history(&self, key: &DocKey) -> Result<Vec<Change>, StoreError> {
        Ok(self.history_changes(key)?)
    }

    async fn verify_projection(&self) -> Result<Vec<DocKey>, StoreError> {
        Ok(SledStore::verify_projection(self)?)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        if self.committer.is_closed() {
            return Err(StoreError::Closed);
        }
        let failure = self
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(failure) = failure {
            return Err(failure.into());
        }
        Ok(self.disk.check()?)
    }

    async fn document_at(
        &self,
        key: &DocKey,
        version: Version,
    ) -> Result<Option<Document>, StoreError> {
        Ok(document_at(&self.history_changes(key)?, version))
    }

    async fn get_conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, StoreError> {
        let found = self.trees.conflicts.get(id.as_str()).map_err(Error::from)?;
        Ok(found.map(|bytes| decode("conflicts", &bytes)).transpose()?)
    }

    async fn list_conflicts(
        &self,
        query: &ConflictQuery,
    ) -> Result<Vec<ConflictRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.trees.conflicts.iter() {
            let (_, value) = entry.map_err(Error::from)?;
            let record: ConflictRecord = decode("conflicts", &value)?;
            let wanted = query.status.is_none_or(|s| s == record.status)
                && query
                    .namespaces
                    .as_ref()
                    .is_none_or(|set| set.contains(&record.namespace))
                && query
                    .collection
                    .as_ref()
                    .is_none_or(|c| *c == record.collection);
            if wanted {
                found.push(record);
            }
        }
        found.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        found.truncate(query.limit);
        Ok(found)
    }

    async fn put_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
        self.trees
            .devices
            .insert(device.device_id.as_str(), encode(&device))
            .map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let found = self.trees.devices.get(id.as_str()).map_err(Error::from)?;
        Ok(found.map(|bytes| decode("devices", &bytes)).transpose()?)
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.trees.devices.iter() {
            let (_, value) = entry.map_err(Error::from)?;
            let device: DeviceRecord = decode("devices", &value)?;
            if device.user == *user {
                found.push(device);
            }
        }
        Ok(found)
    }

    async fn remove_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        let removed = self
            .trees
            .devices
            .remove(id.as_str())
            .map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(removed.is_some())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats: StoreStats = match self.trees.meta.get(STATS_KEY).map_err(Error::from)? {
            Some(bytes) => decode("meta", &bytes)?,
            None => StoreStats::default(),
        };
        stats.head = self.head_seq();
        Ok(stats)
    }

    async fn compact(&self, policy: &RetentionPolicy) -> Result<u64, StoreError> {
        let keep = policy.keep_versions.max(1);
        let mut removed = 0;
        let mut current: Option<Vec<u8>> = None;
        let mut entries: Vec<(sled::IVec, Seq)> = Vec::new();
        let flush_document = |entries: &mut Vec<(sled::IVec, Seq)>| -> Result<u64, Error> {
            let removable = entries.len().saturating_sub(keep as usize);
            let mut count = 0;
            for (history_key, seq) in entries.drain(..).take(removable) {
                if seq > policy.low_water {
                    break;
                }
                (&self.trees.history, &self.trees.log)
                    .transaction(|(history, log)| {
                        history.remove(&history_key)?;
                        log.remove(&keys::seq(seq))?;
                        Ok(())
                    })
                    .map_err(|error: TransactionError<Error>| match error {
                        TransactionError::Abort(error) => error,
                        TransactionError::Storage(error) => Error::from(error),
                    })?;
                count += 1;
            }
            Ok(count)
        };
        for entry in self.trees.history.iter() {
            let (key, value) = entry.map_err(Error::from)?;
            // `document key 0x01 version(8 bytes)`: see `keys::history`.
            let Some(split) = key.len().checked_sub(9).filter(|&at| key[at] == 1) else {
                return Err(Error::Corrupt {
                    tree: "history",
                    message: "key layout".into(),
                }
                .into());
            };
            let document = key[..split].to_vec();
            if current.as_ref() != Some(&document) {
                removed += flush_document(&mut entries)?;
                current = Some(document.clone());
            }
            let in_scope = policy.collections.as_ref().is_none_or(|collections| {
                document
                    .split(|&b| b == 0)
                    .nth(1)
                    .and_then(|name| std::str::from_utf8(name).ok())
                    .is_some_and(|name| collections.iter().any(|c| c.as_str() == name))
            });
            if in_scope {
                let seq = keys::decode_seq(&value).ok_or_else(|| Error::Corrupt {
                    tree: "history",
                    message: "seq".into(),
                })?;
                entries.push((key, seq));
            }
        }
        removed += flush_document(&mut entries)?;
        self.flush_durably().await?;
        Ok(removed)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_durably().await
    }

    async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        let parts = self.snapshot_parts();
        tokio::task::spawn_blocking(move || parts.read())
            .await
            .map_err(|error| StoreError::Backend(format!("snapshot task: {error}")))?
            .map_err(StoreError::from)
    }

    async fn load_snapshot(&self, snapshot: StoreSnapshot) -> Result<(), StoreError> {
        let parts = self.snapshot_parts();
        tokio::task::spawn_blocking(move || parts.write(&snapshot))
            .await
            .map_err(|error| StoreError::Backend(format!("snapshot load task: {error}")))?
            .map_err(StoreError::from)
    }
}
