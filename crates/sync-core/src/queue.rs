//! The [`OfflineQueue`] trait: operations a device made while it could not
//! reach the server, kept durably until the server acknowledges them.
//!
//! Contract for implementations: an operation is persisted before
//! [`OfflineQueue::enqueue`] returns (it survives a crash of the app);
//! operations on one document come out in the order they went in; an
//! operation that keeps failing is set aside as failed with its reason,
//! never dropped.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::operation::Operation;

/// The position of an entry in the queue: increasing in enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(pub u64);

/// An operation waiting in the queue, with its delivery history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedOp {
    /// Its position in the queue.
    pub id: QueueId,
    /// The operation to send.
    pub op: Operation,
    /// How many times sending it has failed.
    pub attempts: u32,
    /// Not to be sent again before this time (milliseconds since the epoch).
    pub next_attempt_ms: u64,
    /// The reason of the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Why the queue could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The underlying storage failed; for `enqueue` the operation was not
    /// stored and is handed back.
    #[error("queue storage failed: {message}")]
    Storage {
        /// What the storage said.
        message: String,
        /// The operation that was not stored, when there was one.
        unsaved: Option<Box<Operation>>,
    },
    /// No entry with this id.
    #[error("no queued operation {0:?}")]
    NotFound(QueueId),
}

/// A durable FIFO of operations waiting for the server.
#[async_trait]
pub trait OfflineQueue: Send + Sync {
    /// Stores `op` durably and returns its position.
    async fn enqueue(&self, op: Operation) -> Result<QueueId, QueueError>;

    /// Up to `max` operations ready to send at `now_ms`, the most urgent
    /// ([`Priority`](crate::Priority)) first and oldest first within a
    /// priority, with no operation ahead of an older one on the same
    /// document.
    async fn ready(&self, now_ms: u64, max: usize) -> Result<Vec<QueuedOp>, QueueError>;

    /// Removes operations the server has acknowledged.
    async fn acknowledge(&self, ids: &[QueueId]) -> Result<(), QueueError>;

    /// Records a failed delivery: the entry is retried after a backoff, or
    /// set aside as failed once it has used its attempts.
    async fn record_failure(
        &self,
        id: QueueId,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), QueueError>;

    /// How many operations wait to be sent (failed ones excluded).
    async fn pending_count(&self) -> Result<usize, QueueError>;

    /// The operations set aside as failed, with their reasons.
    async fn failed(&self) -> Result<Vec<QueuedOp>, QueueError>;

    /// Puts a failed operation back in line with fresh attempts.
    async fn retry(&self, id: QueueId) -> Result<(), QueueError>;

    /// Removes an operation for good and returns it.
    async fn discard(&self, id: QueueId) -> Result<Operation, QueueError>;
}
