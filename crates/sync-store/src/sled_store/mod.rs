//! The sled implementation of [`SyncStore`]: every record in one tree (see
//! [`layout`]), the log in pages (see [`pages`]), and a single committer
//! thread doing group commit, each group one atomic batch and one flush.

mod committer;
mod filter;
mod flushes;
mod layout;
mod migrate;
mod pages;
mod records;
mod snapshot;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, TryLockError};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sled::Tree;
use sync_core::store::{
    BranchRecord, ChangeFilter, ChangePage, CommitObserver, CommitOutcome, ConflictQuery,
    DeviceRecord, DocumentPage, RetentionPolicy, StoreSnapshot, StoreStats, StoredDocument, Write,
};
use sync_core::{
    BranchName, Change, CollectionName, ConflictId, ConflictRecord, DeviceId, DocId, DocKey,
    Document, Filter, LogId, Namespace, OpId, OpResult, RawChange, Seq, StoreError, SyncStore,
    UserId, Version,
};
use tokio::sync::{mpsc, oneshot, watch};

use self::committer::{Committer, Request};
use self::filter::KeyFilter;
use self::flushes::Flushes;
use self::pages::Page;
use self::records::Record;
use crate::codec::{Codec, Compression, Encryption};
use crate::error::Error;
use crate::log_change::LogChange;
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
    /// The most memory sled's page cache holds; the store's resident memory
    /// beyond it is the committer's queue and the readers' pages in use.
    pub cache_bytes: u64,
    /// Told of every group commit.
    pub commit_observer: Option<Arc<dyn CommitObserver>>,
    /// Whether records are compressed.
    pub compression: Compression,
    /// Encryption at rest: `None` stores records unencrypted.
    pub encryption: Option<Encryption>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::Fsync,
            batch_writes_max: 4_096,
            queue_depth_max: 8_192,
            disk_reserve_bytes: 64 * 1024 * 1024,
            cache_bytes: 1024 * 1024 * 1024,
            commit_observer: None,
            compression: Compression::default(),
            encryption: None,
        }
    }
}

/// What the store's handle, its committer and a snapshot share.
struct Shared {
    db: sled::Db,
    /// Documents, the log, op results, conflicts and the store's own records.
    tree: Tree,
    devices: Tree,
    /// The last seq on disk: readers never see past it.
    durable_head: watch::Sender<Seq>,
    /// The log's id; replaced once by a snapshot load.
    log_id: AtomicU64,
    /// The counters as the last group commit left them.
    stats: Mutex<StoreStats>,
    /// Held by the committer for each group commit, and by a snapshot or a
    /// load for its whole read or write: no commit runs meanwhile.
    gate: Mutex<()>,
    /// The data directory and the space kept free on its disk.
    disk: Disk,
    /// Why the last group commit failed, until one succeeds.
    failure: Mutex<Option<Error>>,
    /// Seals and opens every record but the store's own (`M`).
    codec: Codec,
    /// The document and op keys the tree may hold: a key it has not seen
    /// is absent without a read.
    known_keys: KeyFilter,
}

impl Shared {
    fn commit_gate(&self) -> MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> MutexGuard<'_, StoreStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn last_failure(&self) -> MutexGuard<'_, Option<Error>> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn head(&self) -> Seq {
        *self.durable_head.borrow()
    }

    /// `value` as a sealed record for the place `key`.
    fn seal<T: Record>(&self, key: &[u8], value: &T) -> Vec<u8> {
        self.codec.seal(key, &value.encode(key))
    }

    /// The record of the kind `what` sealed at `key`.
    fn open<T: Record>(&self, what: &'static str, key: &[u8], sealed: &[u8]) -> Result<T, Error> {
        T::decode(what, key, &self.codec.open(what, key, sealed)?)
    }

    /// The document or op result of the kind `what` at `key`, if any: read
    /// only if the tree may hold it.
    fn read_known<T: Record>(&self, key: &[u8], what: &'static str) -> Result<Option<T>, Error> {
        if !self.known_keys.may_contain(key) {
            return Ok(None);
        }
        self.read(&self.tree, key, what)
    }

    /// The record of the kind `what` at `key` in `tree`, if any.
    fn read<T: Record>(
        &self,
        tree: &Tree,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, Error> {
        tree.get(key)?
            .map(|sealed| self.open(what, key, &sealed))
            .transpose()
    }

    /// A sealed log page.
    fn seal_page(&self, page: &Page) -> Vec<u8> {
        self.codec.seal(&layout::log(page.last), &page.bytes)
    }

    /// The opened log page sealed at `key`.
    fn open_page<'a>(&self, key: &[u8], sealed: &'a [u8]) -> Result<Cow<'a, [u8]>, Error> {
        self.codec.open("log", key, sealed)
    }

    /// The opened bytes of the first log page at or after `seq`: the page
    /// holding `seq` if the log still does.
    fn page_from(&self, seq: Seq) -> Result<Option<Vec<u8>>, Error> {
        let Some(record) = self.tree.range(layout::log(seq)..).next() else {
            return Ok(None);
        };
        let (key, sealed) = record?;
        if !key.starts_with(layout::LOG_ENTRIES) {
            return Ok(None);
        }
        Ok(Some(self.open_page(&key, &sealed)?.into_owned()))
    }

    /// Visits the retained log entries from `from` through `through`, in
    /// seq order, until `visit` breaks.
    fn visit_log(
        &self,
        from: Seq,
        through: Seq,
        mut visit: impl FnMut(pages::Entry<'_>) -> Result<ControlFlow<()>, Error>,
    ) -> Result<(), Error> {
        let end = layout::log(Seq(u64::MAX));
        for record in self.tree.range(layout::log(from)..=end) {
            let (key, sealed) = record?;
            let page = self.open_page(&key, &sealed)?;
            for entry in pages::entries(&page)? {
                if entry.seq < from {
                    continue;
                }
                if entry.seq > through || visit(entry)?.is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The retained changes after `after` that pass `filter`, at most
    /// `limit`, decoded as `C`.
    fn changes_after<C: LogChange>(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage<C>, Error> {
        let head = self.head();
        let mut changes = Vec::new();
        let mut last_seq = after;
        if after < head {
            self.visit_log(after.next(), head, |entry| {
                let change: C = entry.decode_as()?;
                last_seq = entry.seq;
                if change.passes(filter) {
                    changes.push(change);
                    if changes.len() >= limit {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
        }
        Ok(ChangePage {
            changes,
            last_seq,
            has_more: last_seq < head,
        })
    }

    /// Visits a document's retained log entries, newest first, from the
    /// one at `latest` back along the chain.
    fn walk_chain(
        &self,
        latest: Seq,
        mut visit: impl FnMut(pages::Entry<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        // The page last read: a document changed more than once in a page
        // is read from it once.
        let mut page: Option<Vec<u8>> = None;
        let mut seq = latest;
        while seq != Seq::ZERO {
            let cached = match &page {
                Some(bytes) => pages::find(bytes, seq)?.is_some(),
                None => false,
            };
            if !cached {
                page = self.page_from(seq)?;
            }
            let Some(bytes) = &page else {
                break;
            };
            let Some(entry) = pages::find(bytes, seq)? else {
                break;
            };
            seq = entry.previous;
            visit(entry)?;
        }
        Ok(())
    }

    /// A document's retained changes up to the durable head, oldest first.
    fn history(&self, key: &DocKey) -> Result<Vec<Change>, Error> {
        let Some(stored) = self.read_known::<StoredDocument>(&layout::document(key), "docs")?
        else {
            return Ok(Vec::new());
        };
        let head = self.head();
        let mut changes = Vec::new();
        self.walk_chain(stored.document.seq, |entry| {
            if entry.seq <= head {
                changes.push(entry.decode()?);
            }
            Ok(())
        })?;
        changes.reverse();
        Ok(changes)
    }
}

/// The embedded store: one sled database in a data directory.
pub struct SledStore {
    shared: Arc<Shared>,
    committer: mpsc::Sender<Request>,
    committer_thread: std::thread::JoinHandle<()>,
    flushes: Flushes,
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

/// Keys read per step of the scan of [`learn_stored_keys`], each step
/// holding the store open only for its length.
const KEYS_PER_STEP: usize = 10_000;

/// Adds every document and op key the tree held at opening to the store's
/// filter, then marks it complete; gives up if the store closes meanwhile
/// or the tree cannot be read (the filter then stays incomplete and every
/// lookup reads the tree).
fn learn_stored_keys(store: &std::sync::Weak<Shared>) {
    for prefix in [layout::DOCUMENTS, layout::OPS] {
        let mut after: Option<sled::IVec> = None;
        loop {
            let Some(shared) = store.upgrade() else {
                return;
            };
            let keys = match &after {
                Some(last) => shared.tree.range::<&[u8], _>((
                    std::ops::Bound::Excluded(&last[..]),
                    std::ops::Bound::Unbounded,
                )),
                None => shared.tree.range::<&[u8], _>(prefix..),
            }
            .keys()
            .take_while(|key| key.as_ref().map_or(true, |key| key.starts_with(prefix)))
            .take(KEYS_PER_STEP);
            let mut read = 0;
            for key in keys {
                let Ok(key) = key else {
                    return;
                };
                shared.known_keys.insert(&key);
                after = Some(key);
                read += 1;
            }
            if read < KEYS_PER_STEP {
                break;
            }
        }
    }
    if let Some(shared) = store.upgrade() {
        shared.known_keys.complete();
    }
}

/// How long `open` waits for a lock a closing store still holds: sled's
/// background threads release the directory a moment after `close`.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, Error> {
    wait_until_unlocked(path);
    // sled 0.34 has a `mode` setting (LowSpace, HighThroughput) that it
    // stores and never reads, so it is left at its default.
    let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
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

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("log_id", &self.log_id())
            .field("durable_head", &self.shared.head())
            .finish()
    }
}

impl SledStore {
    /// Opens (or creates) the store in `path`, bringing a data directory
    /// of an earlier format to this one first. Must be called inside a
    /// tokio runtime only for the async methods; opening itself is blocking.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<SledStore, Error> {
        let db = open_db(path.as_ref(), config.cache_bytes)?;
        let tree = db.open_tree(layout::TREE)?;
        let devices = db.open_tree(layout::DEVICES_TREE)?;
        let codec = Codec::new(config.compression, config.encryption.clone());
        migrate::to_current(&db, &tree, &devices, &codec)?;
        let log_id = match tree.get(layout::LOG_ID_KEY)? {
            Some(bytes) => LogId(
                layout::decode_seq(&bytes)
                    .ok_or_else(|| Error::Corrupt {
                        tree: "meta",
                        message: "log id".into(),
                    })?
                    .get(),
            ),
            None => {
                let log_id = LogId::generate();
                tree.insert(layout::LOG_ID_KEY, &layout::encode_u64(log_id.0))?;
                db.flush()?;
                log_id
            }
        };
        // The last page's key is its last entry's seq, which compaction
        // never drops: every document keeps its latest change.
        let head = match tree.scan_prefix(layout::LOG_ENTRIES).next_back() {
            Some(entry) => layout::seq_of_log_key(&entry?.0).unwrap_or_default(),
            None => Seq::ZERO,
        };
        let stats = layout::read_stats(&tree)?;
        let known_keys = KeyFilter::default();
        let holds_records = !devices.is_empty()
            || layout::RECORDS
                .into_iter()
                .any(|prefix| tree.scan_prefix(prefix).next().is_some());
        if let (Some(key_id), false) = (codec.current_key_id(), holds_records) {
            tree.insert(layout::SEALED_KEY, &key_id.to_be_bytes())?;
        }
        let shared = Arc::new(Shared {
            db,
            tree,
            devices,
            durable_head: watch::Sender::new(head),
            log_id: AtomicU64::new(log_id.0),
            stats: Mutex::new(stats),
            gate: Mutex::new(()),
            disk: Disk {
                path: path.as_ref().to_path_buf(),
                reserve_bytes: config.disk_reserve_bytes,
            },
            failure: Mutex::new(None),
            codec,
            known_keys,
        });
        let scanner = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("sync-store-keys".into())
            .spawn(move || learn_stored_keys(&scanner))
            .map_err(|error| Error::from(sled::Error::Io(error)))?;
        let (sender, receiver) = mpsc::channel(config.queue_depth_max.max(1));
        let committer = Committer {
            shared: Arc::clone(&shared),
            config,
        };
        let committer_thread = std::thread::Builder::new()
            .name("sync-store-committer".into())
            .spawn(move || committer.run(receiver))
            .map_err(|error| Error::from(sled::Error::Io(error)))?;
        Ok(SledStore {
            shared,
            committer: sender,
            committer_thread,
            flushes: Flushes::default(),
        })
    }

    /// Stops accepting writes, lets the committer finish what is queued,
    /// flushes and releases the data directory (so it can be opened again).
    pub fn close(self) -> Result<(), Error> {
        let SledStore {
            shared,
            committer,
            committer_thread,
            ..
        } = self;
        drop(committer);
        committer_thread.join().map_err(|_| Error::Closed)?;
        shared.db.flush()?;
        Ok(())
    }

    /// Makes everything the caller wrote before calling durable, sharing
    /// the flush with callers arriving together (see [`Flushes`]). Never
    /// through sled's `flush_async`: concurrent calls of it fill sled's I/O
    /// pool with flushes that wait for a log write needing a free pool
    /// thread, and every writer and reader then hangs (sled issues 1241 and
    /// 1308; seen here with 64 devices saying hello at once).
    async fn flush_durably(&self) -> Result<(), StoreError> {
        self.flushes
            .share(|| async {
                let db = self.shared.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|error| StoreError::Backend(format!("flush task: {error}")))?
                    .map_err(Error::from)?;
                Ok(())
            })
            .await
    }

    /// Recomputes every document from the change log and compares it with
    /// the stored projection; returns the keys that differ (empty when the
    /// projection is exactly the log's). Documents are a projection of the
    /// log: this is the check that they still are.
    pub fn verify_projection(&self) -> Result<Vec<DocKey>, Error> {
        let mut by_document: BTreeMap<DocKey, Vec<Change>> = BTreeMap::new();
        self.shared.visit_log(Seq::ZERO, Seq(u64::MAX), |entry| {
            let change = entry.decode()?;
            by_document.entry(change.key()).or_default().push(change);
            Ok(ControlFlow::Continue(()))
        })?;
        let mut stored = BTreeMap::new();
        for entry in self.shared.tree.scan_prefix(layout::DOCUMENTS) {
            let (key, value) = entry?;
            let document = self
                .shared
                .open::<StoredDocument>("docs", &key, &value)?
                .document;
            stored.insert(document.key(), document);
        }
        Ok(projection_differences(&by_document, stored))
    }

    /// Rewrites every record that is not under the current encryption key
    /// (under an earlier key, or unencrypted) under it, and flushes;
    /// returns how many were rewritten. Runs beside writes: each record is
    /// swapped only if it is still the one read, so nothing a writer stored
    /// meanwhile is overwritten. Blocking. Once it returns, the earlier
    /// keys can be dropped from the configuration.
    pub fn reencrypt(&self) -> Result<u64, Error> {
        let shared = &self.shared;
        let Some(key_id) = shared.codec.current_key_id() else {
            return Ok(0);
        };
        let mut rewritten = 0;
        for (tree, what) in [(&shared.tree, "record"), (&shared.devices, "devices")] {
            for entry in tree.iter() {
                let (key, sealed) = entry?;
                if !layout::is_sealed(&key) || !shared.codec.needs_reencryption(&sealed) {
                    continue;
                }
                let record = shared.codec.open(what, &key, &sealed)?;
                let resealed = shared.codec.seal(&key, &record);
                // A record changed meanwhile was written under the current key.
                if tree
                    .compare_and_swap(&key, Some(&sealed), Some(resealed))?
                    .is_ok()
                {
                    rewritten += 1;
                }
            }
        }
        shared
            .tree
            .insert(layout::SEALED_KEY, &key_id.to_be_bytes())?;
        shared.db.flush()?;
        Ok(rewritten)
    }

    /// Whether records may be under another key than the current one (or
    /// unencrypted while a key is set): a store opened under a new key, or
    /// with encryption newly turned on, until [`SledStore::reencrypt`] ran
    /// through.
    pub fn reencryption_pending(&self) -> Result<bool, Error> {
        let Some(key_id) = self.shared.codec.current_key_id() else {
            return Ok(false);
        };
        let sealed = self.shared.tree.get(layout::SEALED_KEY)?;
        Ok(sealed.as_deref() != Some(&key_id.to_be_bytes()[..]))
    }

    /// Removes the log entries `policy` lets go, keeping each document's
    /// newest `keep_versions`.
    fn compact_blocking(shared: &Shared, policy: &RetentionPolicy) -> Result<u64, Error> {
        let keep = policy.keep_versions.max(1) as usize;
        let mut removed = 0;
        let mut doomed = BTreeSet::new();
        for entry in shared.tree.scan_prefix(layout::DOCUMENTS) {
            let (key, value) = entry?;
            let in_scope = policy.collections.as_ref().is_none_or(|collections| {
                layout::collection_of(&key)
                    .is_some_and(|name| collections.iter().any(|c| c.as_str() == name))
            });
            if !in_scope {
                continue;
            }
            let stored: StoredDocument = shared.open("docs", &key, &value)?;
            let mut newer = 0;
            shared.walk_chain(stored.document.seq, |entry| {
                if newer >= keep && entry.seq <= policy.low_water {
                    doomed.insert(entry.seq);
                }
                newer += 1;
                Ok(())
            })?;
            if doomed.len() >= REMOVALS_PER_PASS {
                removed += shared.drop_log_entries(&std::mem::take(&mut doomed))?;
            }
        }
        removed += shared.drop_log_entries(&doomed)?;
        Ok(removed)
    }
}

/// The most log entries compaction collects before rewriting their pages.
const REMOVALS_PER_PASS: usize = 100_000;

impl Shared {
    /// Drops the entries at `doomed` from their pages, rewriting each page
    /// once (removing it once empty); returns how many were dropped. Each
    /// page is swapped only if it is still the one read, so a page
    /// resealed meanwhile is read again.
    fn drop_log_entries(&self, doomed: &BTreeSet<Seq>) -> Result<u64, Error> {
        let mut dropped = 0;
        let mut next = doomed.first().copied();
        while let Some(seq) = next {
            let Some(record) = self
                .tree
                .range(layout::log(seq)..=layout::log(Seq(u64::MAX)))
                .next()
            else {
                break;
            };
            let (key, sealed) = record?;
            let last = layout::seq_of_log_key(&key).unwrap_or_default();
            let page = self.open_page(&key, &sealed)?;
            let (kept, count) = pages::without(&page, |seq| doomed.contains(&seq))?;
            let after_page = doomed.range(last.next()..).next().copied();
            if count == 0 {
                next = after_page;
                continue;
            }
            let rewritten = kept.map(|bytes| self.codec.seal(&key, &bytes));
            if self
                .tree
                .compare_and_swap(&key, Some(&sealed), rewritten)?
                .is_ok()
            {
                dropped += count;
                next = after_page;
            }
        }
        Ok(dropped)
    }
}

#[async_trait]
impl SyncStore for SledStore {
    fn log_id(&self) -> LogId {
        LogId(self.shared.log_id.load(Ordering::Acquire))
    }

    async fn get(&self, key: &DocKey) -> Result<Option<StoredDocument>, StoreError> {
        Ok(self.shared.read_known(&layout::document(key), "docs")?)
    }

    async fn list(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        filter: &Filter,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<DocumentPage, StoreError> {
        let prefix = layout::collection_prefix(namespace.as_str(), collection.as_str());
        let mut start = prefix.clone();
        if let Some(after) = after {
            start.extend_from_slice(after.as_str().as_bytes());
            start.push(0);
        }
        let mut documents = Vec::new();
        let mut next = None;
        for entry in self.shared.tree.range(start..) {
            let (key, value) = entry.map_err(Error::from)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let stored: StoredDocument = self.shared.open("docs", &key, &value)?;
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
        Ok(self.shared.read_known(&layout::op(op_id), "ops")?)
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
        Ok(self.shared.changes_after(after, filter, limit)?)
    }

    async fn raw_changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage<RawChange>, StoreError> {
        Ok(self.shared.changes_after(after, filter, limit)?)
    }

    async fn head(&self) -> Result<Seq, StoreError> {
        Ok(self.shared.head())
    }

    async fn wait_for_head(&self, after: Seq) -> Result<Seq, StoreError> {
        let mut heads = self.shared.durable_head.subscribe();
        let head = heads
            .wait_for(|head| *head > after)
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(*head)
    }

    async fn oldest_retained(&self) -> Result<Seq, StoreError> {
        let mut oldest = self.shared.head().next();
        self.shared.visit_log(Seq::ZERO, Seq(u64::MAX), |entry| {
            oldest = entry.seq;
            Ok(ControlFlow::Break(()))
        })?;
        Ok(oldest)
    }

    async fn history(&self, key: &DocKey) -> Result<Vec<Change>, StoreError> {
        Ok(self.shared.history(key)?)
    }

    async fn verify_projection(&self) -> Result<Vec<DocKey>, StoreError> {
        Ok(SledStore::verify_projection(self)?)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        if self.committer.is_closed() {
            return Err(StoreError::Closed);
        }
        if let Some(failure) = self.shared.last_failure().clone() {
            return Err(failure.into());
        }
        Ok(self.shared.disk.check()?)
    }

    async fn document_at(
        &self,
        key: &DocKey,
        version: Version,
    ) -> Result<Option<Document>, StoreError> {
        Ok(document_at(&self.shared.history(key)?, version))
    }

    async fn get_conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, StoreError> {
        Ok(self
            .shared
            .read(&self.shared.tree, &layout::conflict(id), "conflicts")?)
    }

    async fn list_conflicts(
        &self,
        query: &ConflictQuery,
    ) -> Result<Vec<ConflictRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.shared.tree.scan_prefix(layout::CONFLICTS) {
            let (key, value) = entry.map_err(Error::from)?;
            let record: ConflictRecord = self.shared.open("conflicts", &key, &value)?;
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
        let key = device.device_id.as_str().as_bytes();
        self.shared
            .devices
            .insert(key, self.shared.seal(key, &device))
            .map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self
            .shared
            .read(&self.shared.devices, id.as_str().as_bytes(), "devices")?)
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.shared.devices.iter() {
            let (key, value) = entry.map_err(Error::from)?;
            let device: DeviceRecord = self.shared.open("devices", &key, &value)?;
            if device.user == *user {
                found.push(device);
            }
        }
        Ok(found)
    }

    async fn remove_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        let removed = self
            .shared
            .devices
            .remove(id.as_str())
            .map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(removed.is_some())
    }

    async fn put_branch(&self, branch: BranchRecord) -> Result<(), StoreError> {
        let key = layout::branch(&branch.key(), &branch.name);
        let sealed = self.shared.seal(&key, &branch);
        self.shared.tree.insert(key, sealed).map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(())
    }

    async fn get_branch(
        &self,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<Option<BranchRecord>, StoreError> {
        Ok(self
            .shared
            .read(&self.shared.tree, &layout::branch(key, name), "branches")?)
    }

    async fn list_branches(&self, key: &DocKey) -> Result<Vec<BranchRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.shared.tree.scan_prefix(layout::branches_of(key)) {
            let (key, value) = entry.map_err(Error::from)?;
            found.push(self.shared.open("branches", &key, &value)?);
        }
        Ok(found)
    }

    async fn remove_branch(&self, key: &DocKey, name: &BranchName) -> Result<bool, StoreError> {
        let removed = self
            .shared
            .tree
            .remove(layout::branch(key, name))
            .map_err(Error::from)?;
        self.flush_durably().await?;
        Ok(removed.is_some())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = self.shared.stats().clone();
        stats.head = self.shared.head();
        Ok(stats)
    }

    async fn compact(&self, policy: &RetentionPolicy) -> Result<u64, StoreError> {
        let shared = Arc::clone(&self.shared);
        let policy = policy.clone();
        let removed = tokio::task::spawn_blocking(move || Self::compact_blocking(&shared, &policy))
            .await
            .map_err(|error| StoreError::Backend(format!("compaction task: {error}")))??;
        self.flush_durably().await?;
        Ok(removed)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_durably().await
    }

    async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || snapshot::read(&shared))
            .await
            .map_err(|error| StoreError::Backend(format!("snapshot task: {error}")))?
            .map_err(StoreError::from)
    }

    async fn load_snapshot(&self, snapshot: StoreSnapshot) -> Result<(), StoreError> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || snapshot::write(&shared, &snapshot))
            .await
            .map_err(|error| StoreError::Backend(format!("snapshot load task: {error}")))?
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::store::WriteEffect;
    use sync_core::{Action, ChangeOp, Hlc, NodeId, OpStatus};

    use super::*;

    fn create(n: usize) -> Write {
        let key = DocKey::new(
            "default".parse().expect("namespace"),
            "notes".parse().expect("collection"),
            format!("note-{n}").parse().expect("id"),
        );
        let data = json!({"n": n}).as_object().cloned().unwrap_or_default();
        Write {
            op_id: format!("op-{n}").parse().expect("op id"),
            key,
            expected_version: Version::ZERO,
            effect: WriteEffect::Change {
                op: ChangeOp::Insert,
                delta: data.clone(),
                data,
                field_clocks: Default::default(),
                timestamp: Hlc::new(1_700_000_000_000, 0, NodeId(1)).expect("hlc"),
            },
            device_id: None,
            user: None,
            result: OpResult::new(Action::Create, OpStatus::Success),
            conflict: None,
            resolves: None,
        }
    }

    #[tokio::test]
    async fn a_reopened_store_learns_every_stored_key_in_the_background() {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = 2 * KEYS_PER_STEP + 7;
        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("open");
        let writes: Vec<Write> = (0..count).map(create).collect();
        for chunk in writes.chunks(4_000) {
            store.apply(chunk.to_vec()).await.expect("apply");
        }
        store.close().expect("close");

        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("reopen");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !store.shared.known_keys.is_complete() {
            assert!(Instant::now() < deadline, "the key scan ends");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for write in &writes {
            assert!(
                store
                    .shared
                    .known_keys
                    .may_contain(&layout::document(&write.key))
            );
            assert!(
                store
                    .shared
                    .known_keys
                    .may_contain(&layout::op(&write.op_id))
            );
        }
        let last = &writes[count - 1];
        assert!(store.get(&last.key).await.expect("get").is_some());
        assert!(
            store
                .lookup_op(&last.op_id)
                .await
                .expect("lookup")
                .is_some()
        );
        store.close().expect("close");
    }
}
