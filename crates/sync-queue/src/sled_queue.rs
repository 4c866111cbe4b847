//! [`SledQueue`]: the offline queue on sled, its blocking API, and the
//! async [`OfflineQueue`] implementation on top of it.
//!
//! Every change follows one path: under the state lock, compute it, write it
//! to sled as one atomic batch, apply it to the in-memory index, take a
//! write generation; then, outside the lock, wait until a flush has covered
//! that generation. Concurrent callers share flushes (group commit): a
//! caller that finds its generation already flushed by someone else returns
//! without flushing.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::queue::{OfflineQueue, QueueError, QueueId, QueuedOp};
use sync_core::{CollectionName, DocId, Namespace, Operation, Priority, Publisher, Watch};

use crate::coalesce::{Coalesced, coalesce};
use crate::config::QueueConfig;
use crate::error::Error;
use crate::key::DocumentKey;
use crate::record::{self, Record};
use crate::state::{Entry, State};
use crate::{Enqueued, FailureOutcome, QueueCounts, QueueEntry};

/// The persistent offline queue of a device, in a sled database in one
/// directory.
///
/// A cheap handle: clones share one queue. The directory is locked while
/// any handle is alive. The blocking methods (`push`, `take_ready`, ...)
/// wait for the disk; the async [`OfflineQueue`] methods run them on
/// tokio's blocking pool (or inline outside a tokio runtime).
#[derive(Clone)]
pub struct SledQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SledQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledQueue")
            .field("config", &self.inner.config)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    config: QueueConfig,
    locked: Mutex<Locked>,
    /// The generation of the last batch written to sled (not yet
    /// necessarily on disk). Advanced under the state lock.
    written: AtomicU64,
    /// The generation the last successful flush covered. Held while
    /// flushing, so one caller flushes for all that wrote before it.
    flushed: Mutex<u64>,
    /// Set by the first storage failure; the queue refuses work after it.
    poisoned: OnceLock<String>,
    counts: Publisher<QueueCounts>,
}

struct Locked {
    state: State,
    rng: StdRng,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; should one ever, the data
    // is still consistent (every change is applied after its write
    // succeeded), so carry on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SledQueue {
    /// Opens (or creates) the queue in directory `path`, with jitter drawn
    /// from an RNG seeded by the operating system.
    pub fn open(path: impl AsRef<Path>, config: QueueConfig) -> Result<SledQueue, Error> {
        SledQueue::open_with_rng(path, config, StdRng::from_os_rng())
    }

    /// Opens the queue with a seeded jitter RNG, so retry times are
    /// reproducible (tests, simulations).
    pub fn open_seeded(
        path: impl AsRef<Path>,
        config: QueueConfig,
        seed: u64,
    ) -> Result<SledQueue, Error> {
        SledQueue::open_with_rng(path, config, StdRng::seed_from_u64(seed))
    }

    fn open_with_rng(
        path: impl AsRef<Path>,
        config: QueueConfig,
        rng: StdRng,
    ) -> Result<SledQueue, Error> {
        config.validate()?;
        let db = open_db(path.as_ref())?;
        let tree = db.open_tree(record::TREE).map_err(Error::storage)?;
        let mut next_id = 1;
        if let Some(bytes) = tree.get(record::NEXT_ID_KEY).map_err(Error::storage)? {
            next_id = record::decode_counter(&bytes).ok_or_else(|| Error::Corrupt {
                key: String::from_utf8_lossy(record::NEXT_ID_KEY).into_owned(),
                message: "malformed counter".to_owned(),
            })?;
        }
        let mut entries = Vec::new();
        for item in tree.scan_prefix(record::ENTRY_PREFIX) {
            let (key, value) = item.map_err(Error::storage)?;
            entries.push(Entry::from_record(Record::decode(&key, &value)?));
        }
        // The counter is written with every new entry; taking the maximum
        // also covers a directory written by a queue without it.
        if let Some(last) = entries.last() {
            next_id = next_id.max(last.queued.id.0.saturating_add(1));
        }
        let mut state = State::new(next_id);
        for entry in entries {
            state.insert(entry);
        }
        let counts = Publisher::new(state.counts());
        Ok(SledQueue {
            inner: Arc::new(Inner {
                db,
                tree,
                config,
                locked: Mutex::new(Locked { state, rng }),
                written: AtomicU64::new(0),
                flushed: Mutex::new(0),
                poisoned: OnceLock::new(),
                counts,
            }),
        })
    }

    /// The configuration the queue was opened with.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// Stores `op` durably (written and flushed to disk before this
    /// returns), merging it into the newest unsent entry of its document
    /// where the coalescing rules allow. Every refusal hands `op` back.
    /// Blocking.
    pub fn push(&self, op: Operation) -> Result<Enqueued, Error> {
        if let Err(error) = op.validate() {
            return Err(Error::Invalid {
                reason: error.to_string(),
                op: Box::new(op),
            });
        }
        let step = {
            let mut locked = lock(&self.inner.locked);
            let step = self.push_locked(&mut locked.state, &op);
            self.publish(&locked.state);
            step
        };
        match step {
            Ok(Some((enqueued, generation))) => match self.flush_through(generation) {
                Ok(()) => Ok(enqueued),
                Err(error) => Err(not_stored(error, op)),
            },
            Ok(None) => Err(Error::Full {
                max_entries: self.inner.config.max_entries,
                op: Box::new(op),
            }),
            Err(error) => Err(not_stored(error, op)),
        }
    }

    /// The locked part of [`SledQueue::push`]: writes `op` (merged, as a
    /// cancellation, or as a new entry) and returns what happened and the
    /// generation to flush, or `None` when the queue is full.
    fn push_locked(
        &self,
        state: &mut State,
        op: &Operation,
    ) -> Result<Option<(Enqueued, u64)>, Error> {
        self.check_usable()?;
        let key = DocumentKey::of(op, QueueId(state.next_id));
        let target = self.coalescing_target(state, &key).and_then(|target| {
            let entry = state.get(target)?;
            Some((
                target,
                entry.record(),
                coalesce(&entry.queued.op, op, state.is_alone(&key)),
            ))
        });
        match target {
            Some((target, mut record, Coalesced::Merged(merged))) => {
                record.queued.op = (*merged).clone();
                let mut batch = sled::Batch::default();
                batch.insert(record::entry_key(target), record.encode()?);
                let generation = self.write(batch)?;
                state.modify(target, |entry| entry.queued.op = *merged);
                Ok(Some((Enqueued::Coalesced(target), generation)))
            }
            Some((target, _, Coalesced::Cancelled)) => {
                let mut batch = sled::Batch::default();
                batch.remove(record::entry_key(target));
                let generation = self.write(batch)?;
                state.remove(target);
                Ok(Some((Enqueued::Cancelled(target), generation)))
            }
            Some((_, _, Coalesced::Separate)) | None => {
                if state.len() >= self.inner.config.max_entries {
                    return Ok(None);
                }
                let id = QueueId(state.next_id);
                let entry = Entry {
                    queued: QueuedOp {
                        id,
                        op: op.clone(),
                        attempts: 0,
                        next_attempt_ms: 0,
                        last_error: None,
                    },
                    key,
                    failed: false,
                    sent: false,
                    in_flight: false,
                };
                let next_id = id.0.saturating_add(1);
                let mut batch = sled::Batch::default();
                batch.insert(record::entry_key(id), entry.record().encode()?);
                batch.insert(record::NEXT_ID_KEY, &next_id.to_be_bytes());
                let generation = self.write(batch)?;
                state.next_id = next_id;
                state.insert(entry);
                Ok(Some((Enqueued::Appended(id), generation)))
            }
        }
    }

    /// The entry a new operation on `key` may be merged into: the newest of
    /// its document, if coalescing is on and that entry was never sent and
    /// is not failed.
    fn coalescing_target(&self, state: &State, key: &DocumentKey) -> Option<QueueId> {
        if !self.inner.config.coalesce {
            return None;
        }
        let newest = state.newest_of(key)?;
        let entry = state.get(newest)?;
        (!entry.sent && !entry.failed).then_some(newest)
    }

    /// Up to `max` entries to send at `now_ms`, most urgent first (see
    /// [`SledQueue::take_ready_from`]), of every priority. Blocking.
    pub fn take_ready(&self, now_ms: u64, max: usize) -> Result<Vec<QueuedOp>, Error> {
        self.take_ready_from(now_ms, max, Priority::Low)
    }

    /// Up to `max` entries to send at `now_ms`, at most one per document,
    /// none ahead of an older entry of its document (failed, in flight or
    /// in backoff): high before normal before low, oldest first within a
    /// priority, a document counting as urgent as its most urgent entry.
    /// Documents less urgent than `lowest` stay queued (a metered link
    /// holds back the low ones). The entries returned are in flight until
    /// acknowledged, failed or released, and marked sent on disk before
    /// this returns, so they are never merged into. Blocking.
    pub fn take_ready_from(
        &self,
        now_ms: u64,
        max: usize,
        lowest: Priority,
    ) -> Result<Vec<QueuedOp>, Error> {
        let inner = &*self.inner;
        let (taken, generation) = {
            let mut locked = lock(&inner.locked);
            self.check_usable()?;
            let state = &mut locked.state;
            let ids = state.ready(now_ms, max, lowest);
            let mut batch = sled::Batch::default();
            let mut unsent = 0;
            for id in &ids {
                if let Some(entry) = state.get(*id).filter(|entry| !entry.sent) {
                    let mut record = entry.record();
                    record.sent = true;
                    batch.insert(record::entry_key(*id), record.encode()?);
                    unsent += 1;
                }
            }
            let generation = if unsent > 0 {
                Some(self.write(batch)?)
            } else {
                None
            };
            let mut taken = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(queued) = state.modify(id, |entry| {
                    entry.sent = true;
                    entry.in_flight = true;
                    entry.queued.clone()
                }) {
                    taken.push(queued);
                }
            }
            self.publish(state);
            (taken, generation)
        };
        if let Some(generation) = generation {
            self.flush_through(generation)?;
        }
        Ok(taken)
    }

    /// Removes the entries the server acknowledged; ids no longer queued
    /// are ignored (an acknowledgement may arrive twice). Returns how many
    /// were removed. Blocking.
    pub fn ack(&self, ids: &[QueueId]) -> Result<usize, Error> {
        let inner = &*self.inner;
        let (removed, generation) = {
            let mut locked = lock(&inner.locked);
            self.check_usable()?;
            let state = &mut locked.state;
            let present: Vec<QueueId> = ids
                .iter()
                .copied()
                .filter(|id| state.get(*id).is_some())
                .collect();
            if present.is_empty() {
                return Ok(0);
            }
            let mut batch = sled::Batch::default();
            for id in &present {
                batch.remove(record::entry_key(*id));
            }
            let generation = self.write(batch)?;
            let mut removed = 0;
            for id in present {
                removed += usize::from(state.remove(id).is_some());
            }
            self.publish(state);
            (removed, generation)
        };
        self.flush_through(generation)?;
        Ok(removed)
    }

    /// Records a failed delivery of entry `id` at `now_ms`: it is retried
    /// after an exponential, jittered backoff, or set aside as failed once
    /// it has failed `max_attempts` times. A failed entry only gets its
    /// reason updated. Blocking.
    pub fn fail(&self, id: QueueId, reason: &str, now_ms: u64) -> Result<FailureOutcome, Error> {
        let inner = &*self.inner;
        let (outcome, generation) = {
            let mut locked = lock(&inner.locked);
            self.check_usable()?;
            let Locked { state, rng } = &mut *locked;
            let Some(entry) = state.get(id) else {
                return Err(Error::NotFound(id));
            };
            let mut updated = entry.clone();
            updated.queued.last_error = Some(reason.to_owned());
            let outcome = if updated.failed {
                FailureOutcome::Failed
            } else {
                updated.in_flight = false;
                // A failure means a delivery was attempted: the server may
                // have seen the operation, so it is frozen from now on.
                updated.sent = true;
                updated.queued.attempts = updated.queued.attempts.saturating_add(1);
                if updated.queued.attempts >= inner.config.max_attempts {
                    updated.failed = true;
                    FailureOutcome::Failed
                } else {
                    let (low, high) = inner.config.backoff_bounds_ms(updated.queued.attempts);
                    let delay = rng.random_range(low..=high);
                    updated.queued.next_attempt_ms = now_ms.saturating_add(delay);
                    FailureOutcome::RetryAt(updated.queued.next_attempt_ms)
                }
            };
            let mut batch = sled::Batch::default();
            batch.insert(record::entry_key(id), updated.record().encode()?);
            let generation = self.write(batch)?;
            state.modify(id, |entry| *entry = updated);
            self.publish(state);
            (outcome, generation)
        };
        self.flush_through(generation)?;
        Ok(outcome)
    }

    /// Puts entry `id` back in line, due at once, with fresh attempts: a
    /// failed entry becomes pending again (and unblocks its document's later
    /// entries once delivered); a pending one just skips its backoff.
    /// Blocking.
    pub fn requeue(&self, id: QueueId) -> Result<(), Error> {
        let inner = &*self.inner;
        let generation = {
            let mut locked = lock(&inner.locked);
            self.check_usable()?;
            let state = &mut locked.state;
            let Some(entry) = state.get(id) else {
                return Err(Error::NotFound(id));
            };
            let mut updated = entry.clone();
            updated.failed = false;
            updated.queued.attempts = 0;
            updated.queued.next_attempt_ms = 0;
            let mut batch = sled::Batch::default();
            batch.insert(record::entry_key(id), updated.record().encode()?);
            let generation = self.write(batch)?;
            state.modify(id, |entry| *entry = updated);
            self.publish(state);
            generation
        };
        self.flush_through(generation)
    }

    /// Removes entry `id` for good, whatever its state, and returns its
    /// operation. Blocking.
    pub fn remove(&self, id: QueueId) -> Result<Operation, Error> {
        let inner = &*self.inner;
        let (op, generation) = {
            let mut locked = lock(&inner.locked);
            self.check_usable()?;
            let state = &mut locked.state;
            if state.get(id).is_none() {
                return Err(Error::NotFound(id));
            }
            let mut batch = sled::Batch::default();
            batch.remove(record::entry_key(id));
            let generation = self.write(batch)?;
            let entry = state.remove(id).ok_or(Error::NotFound(id))?;
            self.publish(state);
            (entry.queued.op, generation)
        };
        self.flush_through(generation)?;
        Ok(op)
    }

    /// Takes every entry out of flight without counting a failure, so the
    /// next `take_ready` hands them out again (after a lost connection whose
    /// batch got no answer). They keep their `opId`s, so a resend the server
    /// had already applied is answered as a duplicate. Returns how many.
    pub fn release_in_flight(&self) -> usize {
        let mut locked = lock(&self.inner.locked);
        let released = locked.state.release_in_flight();
        self.publish(&locked.state);
        released
    }

    /// A snapshot of every entry, oldest first.
    pub fn entries(&self) -> Vec<QueueEntry> {
        lock(&self.inner.locked)
            .state
            .iter()
            .map(Entry::snapshot)
            .collect()
    }

    /// A snapshot of the entries of one document, oldest first: those whose
    /// operation names document `id` of `collection` in `namespace` (by its
    /// `id` or `serverId`). Costs what the document's entries cost, not the
    /// queue's.
    pub fn entries_of(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        id: &DocId,
    ) -> Vec<QueueEntry> {
        let key = DocumentKey::document(namespace, collection, id);
        lock(&self.inner.locked)
            .state
            .of_document(&key)
            .map(Entry::snapshot)
            .collect()
    }

    /// Entry `id`, if it is queued.
    pub fn get(&self, id: QueueId) -> Option<QueueEntry> {
        lock(&self.inner.locked).state.get(id).map(Entry::snapshot)
    }

    /// How many entries the queue holds, failed ones included (what
    /// `max_entries` limits).
    pub fn len(&self) -> usize {
        lock(&self.inner.locked).state.len()
    }

    /// Whether the queue holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pending, in-flight and failed counts right now.
    pub fn counts(&self) -> QueueCounts {
        lock(&self.inner.locked).state.counts()
    }

    /// The entries set aside as failed, oldest first.
    pub fn failed_entries(&self) -> Vec<QueuedOp> {
        lock(&self.inner.locked)
            .state
            .iter()
            .filter(|entry| entry.failed)
            .map(|entry| entry.queued.clone())
            .collect()
    }

    /// The pending entries that wait behind a failed entry of their
    /// document, oldest first: they are not sent until that entry is
    /// retried or discarded.
    pub fn blocked_entries(&self) -> Vec<QueuedOp> {
        let locked = lock(&self.inner.locked);
        locked
            .state
            .blocked()
            .into_iter()
            .filter_map(|id| locked.state.get(id).map(|entry| entry.queued.clone()))
            .collect()
    }

    /// A watch of the counts, updated on every change: what a UI shows
    /// as "3 changes waiting, 1 failed".
    pub fn watch_counts(&self) -> Watch<QueueCounts> {
        self.inner.counts.watch()
    }

    /// Flushes and drops this handle. The directory is released once every
    /// clone is dropped (sled lets go of it a moment later; `open` waits
    /// for that).
    pub fn close(self) -> Result<(), Error> {
        self.inner.db.flush().map_err(Error::storage)?;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), Error> {
        match self.inner.poisoned.get() {
            Some(reason) => Err(Error::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Writes `batch` atomically (not yet flushed) and returns its
    /// generation. Call with the state lock held, before changing the
    /// index, so the index never shows what sled did not take.
    fn write(&self, batch: sled::Batch) -> Result<u64, Error> {
        self.inner
            .tree
            .apply_batch(batch)
            .map_err(|error| self.poison(Error::storage(error)))?;
        Ok(self.inner.written.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Returns once a flush has covered `generation` (group commit).
    fn flush_through(&self, generation: u64) -> Result<(), Error> {
        let mut flushed = lock(&self.inner.flushed);
        if *flushed >= generation {
            return Ok(());
        }
        self.check_usable()?;
        // Every generation up to `target` was written before it was taken,
        // so this one flush makes all of them durable.
        let target = self.inner.written.load(Ordering::SeqCst);
        self.inner
            .db
            .flush()
            .map_err(|error| self.poison(Error::storage(error)))?;
        *flushed = target;
        Ok(())
    }

    fn poison(&self, error: Error) -> Error {
        let _ = self.inner.poisoned.set(error.to_string());
        error
    }

    fn publish(&self, state: &State) {
        self.inner.counts.set(state.counts());
    }
}

/// How long `open` waits for a directory another handle still locks.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the sled database in `path`, once a handle that is closing has let
/// go of its lock.
fn open_db(path: &Path) -> Result<sled::Db, Error> {
    crate::lock::wait_until_unlocked(path, LOCK_WAIT);
    sled::Config::new()
        .path(path)
        .open()
        .map_err(Error::storage)
}

/// `error` as the refusal of `op`, handing it back.
fn not_stored(error: Error, op: Operation) -> Error {
    Error::NotStored {
        reason: error.to_string(),
        op: Box::new(op),
    }
}

/// Runs blocking queue work on tokio's blocking pool, or inline when there
/// is no tokio runtime.
impl SledQueue {
    /// [`SledQueue::take_ready_from`] on tokio's blocking pool: the
    /// entries to send at `now_ms`, most urgent first, none less urgent
    /// than `lowest`.
    pub async fn ready_from(
        &self,
        now_ms: u64,
        max: usize,
        lowest: Priority,
    ) -> Result<Vec<QueuedOp>, QueueError> {
        let queue = self.clone();
        run_blocking(move || queue.take_ready_from(now_ms, max, lowest)).await
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, QueueError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.spawn_blocking(work).await {
            Ok(result) => result.map_err(QueueError::from),
            Err(error) => Err(QueueError::Storage {
                message: format!(
                    "queue task failed: {error}; the operation may or may not be stored"
                ),
                unsaved: None,
            }),
        },
        Err(_) => work().map_err(QueueError::from),
    }
}

#[async_trait]
impl OfflineQueue for SledQueue {
    async fn enqueue(&self, op: Operation) -> Result<QueueId, QueueError> {
        let queue = self.clone();
        run_blocking(move || queue.push(op).map(|enqueued| enqueued.id())).await
    }

    async fn ready(&self, now_ms: u64, max: usize) -> Result<Vec<QueuedOp>, QueueError> {
        let queue = self.clone();
        run_blocking(move || queue.take_ready(now_ms, max)).await
    }

    async fn acknowledge(&self, ids: &[QueueId]) -> Result<(), QueueError> {
        let queue = self.clone();
        let ids = ids.to_vec();
        run_blocking(move || queue.ack(&ids).map(drop)).await
    }

    async fn record_failure(
        &self,
        id: QueueId,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), QueueError> {
        let queue = self.clone();
        let reason = reason.to_owned();
        run_blocking(move || queue.fail(id, &reason, now_ms).map(drop)).await
    }

    async fn pending_count(&self) -> Result<usize, QueueError> {
        Ok(self.counts().pending)
    }

    async fn failed(&self) -> Result<Vec<QueuedOp>, QueueError> {
        Ok(self.failed_entries())
    }

    async fn retry(&self, id: QueueId) -> Result<(), QueueError> {
        let queue = self.clone();
        run_blocking(move || queue.requeue(id)).await
    }

    async fn discard(&self, id: QueueId) -> Result<Operation, QueueError> {
        let queue = self.clone();
        run_blocking(move || queue.remove(id)).await
    }
}
