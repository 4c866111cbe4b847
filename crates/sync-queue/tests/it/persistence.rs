//! Persistence: everything a queue held comes back after a reopen, in
//! order, with attempts, backoff, reasons and failed state; only the
//! in-flight marks (memory only) are gone.

use serde_json::json;
use sync_core::queue::QueueId;
use sync_queue::{EntryState, QueueConfig, SledQueue};

use crate::support::{config, create, delete, ids, update};

#[test]
fn a_reopened_queue_holds_the_same_entries_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
        queue
            .push(create("a", "c1", json!({"title": "x"})))
            .unwrap(); // 1
        queue.push(update("b", "u1", json!({"n": 1}))).unwrap(); // 2
        queue.push(delete("c", "d1")).unwrap(); // 3
        queue.push(update("d", "u2", json!({"n": 2}))).unwrap(); // 4
        queue.push(update("a", "u3", json!({"n": 3}))).unwrap(); // merged into 1
        queue.push(update("e", "u4", json!({"n": 4}))).unwrap(); // 5
        let batch = queue.take_ready(10_000, 10).unwrap();
        assert_eq!(ids(&batch).len(), 5);
        queue.ack(&[QueueId(4)]).unwrap();
        queue.fail(QueueId(2), "timeout", 10_000).unwrap();
        for _ in 0..3 {
            queue.fail(QueueId(3), "rejected", 10_000).unwrap();
        }
        let entries = queue.entries();
        assert_eq!(entries[0].state, EntryState::InFlight);
        queue.close().unwrap();
        entries
    };
    let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
    let after = queue.entries();
    assert_eq!(after.len(), 4);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.queued, new.queued);
        assert_eq!(old.sent, new.sent);
        let expected = match old.state {
            EntryState::InFlight => EntryState::Waiting,
            state => state,
        };
        assert_eq!(new.state, expected, "{:?}", new.queued.id);
    }
    assert_eq!(
        ids(after.iter().map(|entry| &entry.queued)),
        [QueueId(1), QueueId(2), QueueId(3), QueueId(5)]
    );
    let backoff = queue.get(QueueId(2)).unwrap().queued;
    assert_eq!((backoff.attempts, backoff.next_attempt_ms), (1, 10_100));
    assert_eq!(backoff.last_error.as_deref(), Some("timeout"));
    assert_eq!(ids(&queue.failed_entries()), [QueueId(3)]);
    assert_eq!(queue.counts().pending, 3);
    assert_eq!(
        serde_json::to_value(&queue.get(QueueId(1)).unwrap().queued.op.data).unwrap(),
        json!({"title": "x", "n": 3})
    );
    // Ids go on from where they were, not from the largest left.
    queue.ack(&[QueueId(5)]).unwrap();
    drop(queue);
    let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
    assert_eq!(
        queue.push(update("f", "u5", json!({}))).unwrap().id(),
        QueueId(6)
    );
    // Entries put back in flight order after the restart: ready again.
    assert_eq!(
        ids(&queue.take_ready(10_000, 10).unwrap()),
        [QueueId(1), QueueId(6)]
    );
}

#[test]
fn another_configuration_applies_to_the_reopened_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
        queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
        queue.fail(QueueId(1), "timeout", 0).unwrap();
    }
    let queue = SledQueue::open_seeded(
        dir.path(),
        QueueConfig {
            max_attempts: 2,
            ..config()
        },
        1,
    )
    .unwrap();
    assert_eq!(
        queue.fail(QueueId(1), "timeout", 0).unwrap(),
        sync_queue::FailureOutcome::Failed
    );
}

#[test]
fn an_open_queue_locks_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let queue = SledQueue::open(dir.path(), config()).unwrap();
    assert!(SledQueue::open(dir.path(), config()).is_err());
    drop(queue);
    assert!(SledQueue::open(dir.path(), config()).is_ok());
}
