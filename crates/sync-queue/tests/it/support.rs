//! Builders for operations and a temp-dir queue.

use serde_json::Value;
use sync_core::queue::QueueId;
use sync_core::{Action, Operation};
use sync_queue::{QueueConfig, SledQueue};
use tempfile::TempDir;

/// An operation on document `doc` of `todos` with opId `op_id`; `data`
/// `null` means none.
pub(crate) fn op(action: Action, doc: &str, op_id: &str, data: Value) -> Operation {
    let mut op = Operation::new(action);
    op.collection = Some("todos".parse().unwrap());
    op.id = Some(doc.parse().unwrap());
    op.op_id = Some(op_id.parse().unwrap());
    op.data = data.as_object().cloned();
    op
}

pub(crate) fn create(doc: &str, op_id: &str, data: Value) -> Operation {
    op(Action::Create, doc, op_id, data)
}

pub(crate) fn update(doc: &str, op_id: &str, data: Value) -> Operation {
    op(Action::Update, doc, op_id, data)
}

pub(crate) fn delete(doc: &str, op_id: &str) -> Operation {
    op(Action::Delete, doc, op_id, Value::Null)
}

/// A configuration without jitter and with short delays.
pub(crate) fn config() -> QueueConfig {
    QueueConfig {
        max_attempts: 3,
        base_delay_ms: 100,
        max_delay_ms: 1_000,
        jitter: 0.0,
        coalesce: true,
        max_entries: 1_000,
    }
}

/// A fresh queue in a temp dir (kept alive by the returned guard).
pub(crate) fn queue(config: QueueConfig) -> (TempDir, SledQueue) {
    let dir = tempfile::tempdir().unwrap();
    let queue = SledQueue::open_seeded(dir.path(), config, 7).unwrap();
    (dir, queue)
}

/// The ids of `ops`.
pub(crate) fn ids<'a>(
    ops: impl IntoIterator<Item = &'a sync_core::queue::QueuedOp>,
) -> Vec<QueueId> {
    ops.into_iter().map(|queued| queued.id).collect()
}

/// The opIds of `ops`, as strings.
pub(crate) fn op_ids<'a>(
    ops: impl IntoIterator<Item = &'a sync_core::queue::QueuedOp>,
) -> Vec<String> {
    ops.into_iter()
        .map(|queued| {
            queued
                .op
                .op_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect()
}
