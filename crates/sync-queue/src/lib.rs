//! The persistent offline queue of a client device.
//!
//! A device records every local edit as an
//! [`Operation`](sync_core::Operation) and puts it in this
//! queue; the sync loop takes batches out with `ready`, sends them, and
//! answers with `acknowledge` or `record_failure`. [`SledQueue`] implements
//! [`sync_core::OfflineQueue`] on a sled database in one directory.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use sync_core::{Action, OfflineQueue, Operation};
//! use sync_queue::{QueueConfig, SledQueue};
//!
//! let queue = SledQueue::open("queue-data", QueueConfig::default())?;
//! let mut op = Operation::new(Action::Update);
//! op.id = Some("doc-1".parse()?);
//! op.data = Some(serde_json::json!({"title": "x"}).as_object().cloned().unwrap_or_default());
//! let id = queue.enqueue(op).await?; // on disk now
//! let batch = queue.ready(1_700_000_000_000, 100).await?;
//! queue.acknowledge(&[id]).await?;
//! # let _ = batch; Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **Durable enqueue.** `enqueue` returns only after the operation is
//!   written and sled has flushed (fsync) it: an offline write survives a
//!   crash of the app (guarantee 5 of `docs/protocol.md`). Every other
//!   change (acknowledge, failure, retry, discard, the "sent" mark of
//!   `ready`) is flushed before its call returns too. Concurrent callers
//!   share flushes (group commit), so many writers cost few fsyncs.
//! - **Global order.** Entries get increasing [`QueueId`]s from a counter
//!   stored with each new entry, so the order survives restarts and an id
//!   is never reused, even after the queue was emptied.
//! - **FIFO per document.** `ready` returns entries oldest first (within
//!   a priority, below) and never
//!   one while an older entry of the same document is still queued, whether
//!   that one is in flight, waiting out a backoff or failed. A document is
//!   namespace (`default` when omitted) + collection + `id`/`serverId`; a
//!   create without id is its own document named by its `localId`, else
//!   its `opId`, else the entry itself. So at most one entry per document is
//!   in flight: if it fails, nothing behind it has overtaken it.
//! - **Nothing is dropped.** A full queue (`max_entries`, failed entries
//!   included), an invalid operation or a storage failure refuses the
//!   operation and hands it back ([`Error::into_operation`]; across the
//!   trait: `QueueError::Storage { unsaved: Some(op) }`).
//!
//! # Priority
//!
//! `ready` hands out high operations before normal ones before low ones
//! (each operation's [`Priority`](sync_core::Priority)), oldest first
//! within a priority. The order of a document's entries never changes: a
//! document counts as urgent as its most urgent entry, so a high edit
//! queued behind a low one of the same document takes that one along
//! first. [`SledQueue::take_ready_from`] leaves documents less urgent than
//! a given priority queued: a client on a metered link holds back its low
//! ones until the link is cheap again. A coalesced entry is as urgent as
//! the more urgent of its two edits.
//!
//! # In flight, and why sent entries are frozen
//!
//! Entries returned by `ready` are *in flight* until `acknowledge`,
//! `record_failure` or [`SledQueue::release_in_flight`] (for a batch whose
//! answer was lost); `ready` does not return them again meanwhile. The in-
//! flight mark lives in memory: after a restart nothing is in flight and
//! unacknowledged entries go out again with their original `opId`, which the
//! server answers as `duplicate` if it had applied them.
//!
//! `ready` also marks its entries *sent*, on disk, before returning. A sent
//! entry is never modified again, even after a failure brought it back: the
//! server may have applied it under its `opId`, so changing its data under
//! the same `opId` would lose the change (answered as a duplicate), and
//! resending it under a new `opId` would apply the old part twice.
//!
//! # Coalescing
//!
//! With [`QueueConfig::coalesce`] on, a new operation is folded into the
//! newest entry of its document when that entry was never sent and is not
//! failed, and only then (never into the middle of a document's entries,
//! which would reorder it):
//!
//! | queued (unsent) | new | result |
//! |---|---|---|
//! | `update` | `update` | one `update` whose data is the composed merge patch (`sync_diff::merge_patch::compose`); kept apart when no single patch has the effect of both |
//! | `upsert` | `update` | one `upsert`, patches composed likewise |
//! | `create` | `update` | the `create` with the patch applied to its document |
//! | `create` with an `id`, the only entry of its document | `delete` | both removed: the server never heard of the document |
//! | anything else | | a separate entry |
//!
//! The merged entry keeps its queue position, its `opId` (never sent, so
//! never seen by the server), its ids and `baseVersion`, and takes the new
//! operation's timestamp; the new operation's `opId` is dropped. A new
//! operation whose `baseVersion` differs from the queued one's (the client
//! rebased in between) is kept apart. `enqueue` returns the merged entry's
//! id (for a cancellation: the removed create's, which is no longer
//! queued); [`SledQueue::push`] says which case happened ([`Enqueued`]).
//!
//! # What is accepted
//!
//! `enqueue` refuses an operation whose fields do not fit its action
//! (`Operation::validate`): it would only fail on the server. It stores the
//! operation as given and makes up no `opId` (that would need a clock or
//! randomness the caller should own): an operation without one is not
//! protected against being applied twice when an answer is lost, so the
//! client SDK gives every operation an `opId` before enqueueing it.
//!
//! # Retries and failed entries
//!
//! `record_failure` counts an attempt and schedules the next one after an
//! exponential backoff, capped, with jitter drawn from a seedable RNG
//! ([`SledQueue::open_seeded`]) so tests are reproducible; no wall clock is
//! read inside, times come in as `now_ms`. After `max_attempts` failures
//! the entry is *failed*: it keeps its reason, `ready` skips it, `failed()`
//! lists it, `retry` puts it back with fresh attempts, `discard` removes and
//! returns it. `pending_count` counts every entry but failed ones.
//!
//! A failed entry still blocks the later entries of its document: sending
//! them would apply edits out of order (an update before the create it
//! belongs to). [`SledQueue::blocked_entries`] lists what waits behind a
//! failed entry, so the UI can ask the user to retry or discard it.
//!
//! # Inspection
//!
//! [`SledQueue::entries`], [`SledQueue::get`], [`SledQueue::len`] and
//! [`SledQueue::counts`] read the in-memory index; [`SledQueue::watch_counts`]
//! gives a [`Watch`](sync_core::Watch) of [`QueueCounts`] ("3 changes
//! waiting, 1 failed").
//!
//! # Design
//!
//! The whole queue is mirrored in memory (bounded by `max_entries`) and
//! every change is written to sled as one atomic batch before the index
//! changes, under one lock; the flush happens outside the lock. The
//! blocking methods ([`SledQueue::push`], [`SledQueue::take_ready`], ...)
//! are the synchronous API; the async trait runs them on tokio's blocking
//! pool. A storage failure poisons the queue: it refuses everything until
//! reopened, since what is on disk is then unknown. The on-disk format is
//! one sled tree described in the `record` module and pinned by a test.

mod coalesce;
mod config;
mod error;
mod key;
mod lock;
mod record;
mod sled_queue;
mod state;

use sync_core::queue::{QueueId, QueuedOp};

pub use config::QueueConfig;
pub use error::Error;
pub use lock::wait_until_unlocked;
pub use sled_queue::SledQueue;

/// What `push` did with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored as a new entry with this id.
    Appended(QueueId),
    /// Merged into this existing, unsent entry.
    Coalesced(QueueId),
    /// Cancelled out with this unsent entry (a create and its delete),
    /// which was removed; nothing is stored.
    Cancelled(QueueId),
}

impl Enqueued {
    /// The id of the entry concerned: what `enqueue` returns.
    pub fn id(self) -> QueueId {
        match self {
            Enqueued::Appended(id) | Enqueued::Coalesced(id) | Enqueued::Cancelled(id) => id,
        }
    }
}

/// What a recorded failure did to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// It will be ready again at this time (milliseconds since the epoch).
    RetryAt(u64),
    /// It has used its attempts and is set aside as failed.
    Failed,
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting to be sent (perhaps in backoff, or behind an older entry).
    Waiting,
    /// Handed out by `ready` and not yet answered.
    InFlight,
    /// Set aside after `max_attempts` failures.
    Failed,
}

/// A snapshot of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// The operation and its delivery history.
    pub queued: QueuedOp,
    /// Where it stands.
    pub state: EntryState,
    /// Whether it was ever handed out (then it is never modified).
    pub sent: bool,
}

/// How many entries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Entries not failed, in flight ones included (`pending_count`).
    pub pending: usize,
    /// Entries handed out and not yet answered.
    pub in_flight: usize,
    /// Entries set aside as failed.
    pub failed: usize,
}

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
