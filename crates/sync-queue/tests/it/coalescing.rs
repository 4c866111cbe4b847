//! Coalescing: unsent operations on one document merge where one operation
//! has the effect of both; entries that were ever handed out (in flight,
//! failed back into line, failed for good, or sent before a restart) are
//! never merged into.

use serde_json::json;
use sync_core::queue::QueueId;
use sync_queue::{Enqueued, QueueConfig, SledQueue};

use crate::support::{config, create, delete, ids, op_ids, queue, update};

#[test]
fn updates_merge_into_one_entry_that_keeps_the_first_op_id() {
    let (_dir, queue) = queue(config());
    assert_eq!(
        queue
            .push(update(
                "a",
                "u1",
                json!({"title": "x", "tags": {"red": true}})
            ))
            .unwrap(),
        Enqueued::Appended(QueueId(1))
    );
    queue.push(update("b", "other", json!({"n": 1}))).unwrap();
    assert_eq!(
        queue
            .push(update(
                "a",
                "u2",
                json!({"done": true, "tags": {"blue": true}})
            ))
            .unwrap(),
        Enqueued::Coalesced(QueueId(1))
    );
    assert_eq!(
        queue
            .push(update("a", "u3", json!({"title": null})))
            .unwrap(),
        Enqueued::Coalesced(QueueId(1))
    );
    let batch = queue.take_ready(0, 10).unwrap();
    assert_eq!(ids(&batch), [QueueId(1), QueueId(2)]);
    assert_eq!(op_ids(&batch), ["u1", "other"]);
    assert_eq!(
        serde_json::to_value(&batch[0].op.data).unwrap(),
        json!({"title": null, "done": true, "tags": {"red": true, "blue": true}})
    );
}

#[test]
fn an_update_folds_into_the_unsent_create() {
    let (_dir, queue) = queue(config());
    queue
        .push(create("a", "c1", json!({"title": "x", "n": 1})))
        .unwrap();
    assert_eq!(
        queue
            .push(update("a", "u1", json!({"n": 2, "title": null})))
            .unwrap(),
        Enqueued::Coalesced(QueueId(1))
    );
    let batch = queue.take_ready(0, 10).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].op.action, sync_core::Action::Create);
    assert_eq!(
        serde_json::to_value(&batch[0].op.data).unwrap(),
        json!({"n": 2})
    );
}

#[test]
fn a_delete_cancels_the_unsent_create() {
    let (_dir, queue) = queue(config());
    let mut counts = queue.watch_counts();
    queue
        .push(create("a", "c1", json!({"title": "x"})))
        .unwrap();
    queue.push(update("a", "u1", json!({"n": 2}))).unwrap();
    assert_eq!(counts.see().pending, 1);
    assert_eq!(
        queue.push(delete("a", "d1")).unwrap(),
        Enqueued::Cancelled(QueueId(1))
    );
    assert!(queue.is_empty());
    assert_eq!(counts.see().pending, 0);
    // The id was consumed: the next entry gets a new one.
    assert_eq!(
        queue.push(create("a", "c2", json!({}))).unwrap(),
        Enqueued::Appended(QueueId(2))
    );
}

#[test]
fn a_delete_does_not_cancel_a_create_behind_other_entries() {
    let (_dir, queue) = queue(config());
    queue.push(delete("a", "d0")).unwrap();
    queue.push(create("a", "c1", json!({}))).unwrap();
    assert_eq!(
        queue.push(delete("a", "d1")).unwrap(),
        Enqueued::Appended(QueueId(3))
    );
    assert_eq!(queue.len(), 3);
}

#[test]
fn in_flight_entries_are_never_merged_into() {
    let (_dir, queue) = queue(config());
    queue.push(create("a", "c1", json!({"n": 1}))).unwrap();
    assert_eq!(ids(&queue.take_ready(0, 10).unwrap()), [QueueId(1)]);
    // The create is in flight: neither an update nor a delete touches it.
    assert_eq!(
        queue.push(update("a", "u1", json!({"n": 2}))).unwrap(),
        Enqueued::Appended(QueueId(2))
    );
    assert_eq!(
        queue.push(update("a", "u2", json!({"m": 3}))).unwrap(),
        Enqueued::Coalesced(QueueId(2))
    );
    let entries = queue.entries();
    assert_eq!(
        serde_json::to_value(&entries[0].queued.op.data).unwrap(),
        json!({"n": 1})
    );
    assert_eq!(
        serde_json::to_value(&entries[1].queued.op.data).unwrap(),
        json!({"n": 2, "m": 3})
    );
    assert_eq!(
        queue.push(delete("a", "d1")).unwrap(),
        Enqueued::Appended(QueueId(3))
    );
}

#[test]
fn entries_sent_once_stay_frozen_after_a_failure_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
        queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
        queue.push(update("b", "v1", json!({"n": 1}))).unwrap();
        queue.take_ready(0, 10).unwrap();
        queue.fail(QueueId(1), "timeout", 0).unwrap();
        queue.close().unwrap();
    }
    let queue = SledQueue::open_seeded(dir.path(), config(), 1).unwrap();
    // Back in line (u1 after its failure, v1 after the restart), but sent.
    assert!(queue.entries().iter().all(|entry| entry.sent));
    for (doc, op_id) in [("a", "u2"), ("b", "v2")] {
        assert!(matches!(
            queue.push(update(doc, op_id, json!({"m": 2}))).unwrap(),
            Enqueued::Appended(_)
        ));
    }
    assert_eq!(queue.len(), 4);
}

#[test]
fn failed_entries_are_never_merged_into() {
    let (_dir, queue) = queue(QueueConfig {
        max_attempts: 1,
        ..config()
    });
    queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
    queue.take_ready(0, 10).unwrap();
    queue.fail(QueueId(1), "rejected", 0).unwrap();
    assert_eq!(
        queue.push(update("a", "u2", json!({"n": 2}))).unwrap(),
        Enqueued::Appended(QueueId(2))
    );
}

#[test]
fn patches_that_do_not_compose_stay_apart() {
    let (_dir, queue) = queue(config());
    queue.push(update("a", "u1", json!({"n": null}))).unwrap();
    assert_eq!(
        queue
            .push(update("a", "u2", json!({"n": {"x": 1}})))
            .unwrap(),
        Enqueued::Appended(QueueId(2))
    );
}

#[test]
fn coalescing_can_be_turned_off() {
    let (_dir, queue) = queue(QueueConfig {
        coalesce: false,
        ..config()
    });
    queue.push(create("a", "c1", json!({}))).unwrap();
    queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
    queue.push(delete("a", "d1")).unwrap();
    assert_eq!(queue.len(), 3);
}

#[test]
fn a_full_queue_still_merges_but_refuses_new_entries() {
    let (_dir, queue) = queue(QueueConfig {
        max_entries: 1,
        ..config()
    });
    queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
    assert_eq!(
        queue.push(update("a", "u2", json!({"n": 2}))).unwrap(),
        Enqueued::Coalesced(QueueId(1))
    );
    let refused = update("b", "v1", json!({"n": 1}));
    let error = queue.push(refused.clone()).unwrap_err();
    assert!(matches!(
        error,
        sync_queue::Error::Full { max_entries: 1, .. }
    ));
    assert_eq!(error.into_operation(), Some(refused));
    assert_eq!(queue.len(), 1);
}
