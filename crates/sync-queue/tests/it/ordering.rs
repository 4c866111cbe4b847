//! FIFO per document: `ready` hands out entries oldest first, one per
//! document at a time, and nothing overtakes an older entry of its
//! document, whether that one is in flight, in backoff or failed.

use serde_json::json;
use sync_core::queue::QueueId;
use sync_core::{Action, Operation, Priority};
use sync_queue::{EntryState, FailureOutcome, QueueConfig};

use crate::support::{config, ids, queue, update};

fn no_coalescing() -> QueueConfig {
    QueueConfig {
        coalesce: false,
        ..config()
    }
}

#[test]
fn oldest_first_and_one_entry_per_document() {
    let (_dir, queue) = queue(no_coalescing());
    for (doc, n) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)] {
        queue
            .push(update(doc, &format!("op{n}"), json!({"n": n})))
            .unwrap();
    }
    let first = queue.take_ready(0, 10).unwrap();
    assert_eq!(ids(&first), [QueueId(1), QueueId(2), QueueId(4)]);
    // In flight: not handed out again, and they hold back their documents.
    assert!(queue.take_ready(0, 10).unwrap().is_empty());
    assert_eq!(queue.counts().in_flight, 3);
    queue.ack(&[QueueId(2)]).unwrap();
    assert_eq!(ids(&queue.take_ready(0, 10).unwrap()), [QueueId(5)]);
    queue.ack(&[QueueId(1), QueueId(4)]).unwrap();
    assert_eq!(ids(&queue.take_ready(0, 10).unwrap()), [QueueId(3)]);
}

#[test]
fn max_limits_the_batch() {
    let (_dir, queue) = queue(no_coalescing());
    for n in 0..5 {
        queue
            .push(update(&format!("d{n}"), &format!("op{n}"), json!({"n": n})))
            .unwrap();
    }
    assert!(queue.take_ready(0, 0).unwrap().is_empty());
    assert_eq!(
        ids(&queue.take_ready(0, 2).unwrap()),
        [QueueId(1), QueueId(2)]
    );
    assert_eq!(
        ids(&queue.take_ready(0, 2).unwrap()),
        [QueueId(3), QueueId(4)]
    );
}

#[test]
fn an_entry_in_backoff_holds_back_its_document_only() {
    let (_dir, queue) = queue(no_coalescing());
    queue.push(update("a", "a1", json!({"n": 1}))).unwrap();
    queue.push(update("a", "a2", json!({"n": 2}))).unwrap();
    queue.push(update("b", "b1", json!({"n": 1}))).unwrap();
    assert_eq!(
        ids(&queue.take_ready(1_000, 10).unwrap()),
        [QueueId(1), QueueId(3)]
    );
    assert_eq!(
        queue.fail(QueueId(1), "timeout", 1_000).unwrap(),
        FailureOutcome::RetryAt(1_100)
    );
    queue.ack(&[QueueId(3)]).unwrap();
    // Entry 2 is due, but entry 1 of the same document is not yet.
    assert!(queue.take_ready(1_050, 10).unwrap().is_empty());
    let retried = queue.take_ready(1_100, 10).unwrap();
    assert_eq!(ids(&retried), [QueueId(1)]);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("timeout"));
    queue.ack(&[QueueId(1)]).unwrap();
    assert_eq!(ids(&queue.take_ready(1_100, 10).unwrap()), [QueueId(2)]);
}

#[test]
fn a_failed_entry_blocks_its_document_until_retried_or_discarded() {
    let (_dir, queue) = queue(no_coalescing());
    queue.push(update("a", "a1", json!({"n": 1}))).unwrap();
    queue.push(update("a", "a2", json!({"n": 2}))).unwrap();
    queue.push(update("a", "a3", json!({"n": 3}))).unwrap();
    queue.push(update("b", "b1", json!({"n": 1}))).unwrap();
    let mut now = 0;
    for attempt in 1..=3 {
        let batch = queue.take_ready(now, 10).unwrap();
        assert_eq!(batch[0].id, QueueId(1), "attempt {attempt}");
        let outcome = queue.fail(QueueId(1), "rejected", now).unwrap();
        if let FailureOutcome::RetryAt(at) = outcome {
            now = at;
        } else {
            assert_eq!(attempt, 3);
        }
    }
    queue.ack(&[QueueId(4)]).unwrap();
    assert_eq!(queue.get(QueueId(1)).unwrap().state, EntryState::Failed);
    assert_eq!(ids(&queue.failed_entries()), [QueueId(1)]);
    assert_eq!(ids(&queue.blocked_entries()), [QueueId(2), QueueId(3)]);
    assert!(queue.take_ready(u64::MAX, 10).unwrap().is_empty());
    assert_eq!(queue.counts().pending, 2);
    assert_eq!(queue.counts().failed, 1);

    // Retry: back in line first, fresh attempts.
    queue.requeue(QueueId(1)).unwrap();
    assert!(queue.blocked_entries().is_empty());
    let batch = queue.take_ready(now, 10).unwrap();
    assert_eq!(ids(&batch), [QueueId(1)]);
    assert_eq!(batch[0].attempts, 0);
    // Fail it for good again, then discard: the next one moves up.
    for _ in 0..3 {
        queue.fail(QueueId(1), "rejected", now).unwrap();
    }
    assert_eq!(queue.get(QueueId(1)).unwrap().state, EntryState::Failed);
    let discarded = queue.remove(QueueId(1)).unwrap();
    assert_eq!(discarded.op_id.unwrap(), "a1");
    assert_eq!(ids(&queue.take_ready(now, 10).unwrap()), [QueueId(2)]);
}

#[test]
fn creates_without_id_are_documents_of_their_own() {
    let (_dir, queue) = queue(config());
    for local in ["local_001", "local_002"] {
        let mut op = Operation::new(Action::Create);
        op.collection = Some("todos".parse().unwrap());
        op.local_id = Some(local.to_owned());
        op.data = json!({"title": local}).as_object().cloned();
        queue.push(op).unwrap();
    }
    assert_eq!(
        ids(&queue.take_ready(0, 10).unwrap()),
        [QueueId(1), QueueId(2)]
    );
}

#[test]
fn released_entries_go_out_again_unchanged() {
    let (_dir, queue) = queue(config());
    queue.push(update("a", "a1", json!({"n": 1}))).unwrap();
    let first = queue.take_ready(0, 10).unwrap();
    assert_eq!(queue.release_in_flight(), 1);
    let again = queue.take_ready(0, 10).unwrap();
    assert_eq!(first, again);
    assert_eq!(again[0].attempts, 0);
}

#[test]
fn unknown_ids_are_not_found_and_late_acks_are_ignored() {
    let (_dir, queue) = queue(config());
    let id = queue.push(update("a", "a1", json!({"n": 1}))).unwrap().id();
    assert_eq!(queue.ack(&[id, QueueId(99)]).unwrap(), 1);
    assert_eq!(queue.ack(&[id]).unwrap(), 0);
    for error in [
        queue.fail(id, "x", 0).unwrap_err(),
        queue.requeue(id).unwrap_err(),
        queue.remove(id).unwrap_err(),
    ] {
        assert!(matches!(error, sync_queue::Error::NotFound(found) if found == id));
    }
    // Ids are never reused, even on an emptied queue.
    let next = queue.push(update("a", "a2", json!({"n": 2}))).unwrap().id();
    assert_eq!(next, QueueId(2));
}

fn with_priority(mut op: Operation, priority: Priority) -> Operation {
    op.priority = priority;
    op
}

#[test]
fn a_high_entry_overtakes_a_backlog_of_low_ones_but_not_its_own_document() {
    let (dir, queue) = queue(no_coalescing());
    for n in 0..50 {
        let op = update(&format!("log{n}"), &format!("low{n}"), json!({"n": n}));
        queue.push(with_priority(op, Priority::Low)).unwrap();
    }
    // A low edit of "pay", then a high one of the same document, then a
    // high one of another document.
    let pay_low = update("pay", "pay-low", json!({"draft": true}));
    queue.push(with_priority(pay_low, Priority::Low)).unwrap();
    let pay_high = update("pay", "pay-high", json!({"sent": true}));
    queue.push(with_priority(pay_high, Priority::High)).unwrap();
    let alert = update("alert", "alert", json!({"on": true}));
    queue.push(with_priority(alert, Priority::High)).unwrap();

    let first = queue.take_ready(0, 3).unwrap();
    let op_ids: Vec<&str> = first
        .iter()
        .map(|q| q.op.op_id.as_ref().unwrap().as_str())
        .collect();
    // The document "pay" goes first, starting with its older low edit; the
    // high edit of it waits for that one.
    assert_eq!(op_ids, ["pay-low", "alert", "low0"]);
    queue.ack(&ids(&first)).unwrap();
    let next = queue.take_ready(0, 1).unwrap();
    assert_eq!(next[0].op.op_id.as_ref().unwrap().as_str(), "pay-high");
    drop(queue);

    // The priority is stored with the entry: a reopened queue keeps it.
    let reopened = sync_queue::SledQueue::open(dir.path(), no_coalescing()).unwrap();
    reopened.release_in_flight();
    let again = reopened.take_ready(0, 1).unwrap();
    assert_eq!(again[0].op.op_id.as_ref().unwrap().as_str(), "pay-high");
    assert_eq!(again[0].op.priority, Priority::High);
}

#[test]
fn take_ready_from_leaves_less_urgent_documents_queued() {
    let (_dir, queue) = queue(no_coalescing());
    let low = update("a", "low", json!({"n": 1}));
    queue.push(with_priority(low, Priority::Low)).unwrap();
    queue.push(update("b", "normal", json!({"n": 2}))).unwrap();
    let held = queue.take_ready_from(0, 10, Priority::Normal).unwrap();
    assert_eq!(ids(&held), [QueueId(2)]);
    assert_eq!(queue.counts().pending, 2);
    let released = queue.take_ready_from(0, 10, Priority::Low).unwrap();
    assert_eq!(ids(&released), [QueueId(1)]);
}
