//! Retries: each failure doubles the delay up to the cap, jitter stays in
//! its bounds and is reproducible from the seed, and an entry is failed
//! after `max_attempts`.

use serde_json::json;
use sync_core::OfflineQueue;
use sync_core::queue::QueueId;
use sync_queue::{EntryState, FailureOutcome, QueueConfig, SledQueue};

use crate::support::{config, queue, update};

/// Fails entry 1 `times` times, each at its due time; returns the delays.
fn delays(queue: &SledQueue, times: u32) -> Vec<u64> {
    let mut now = 1_000_000;
    let mut delays = Vec::new();
    for _ in 0..times {
        match queue.fail(QueueId(1), "timeout", now).unwrap() {
            FailureOutcome::RetryAt(at) => {
                delays.push(at - now);
                now = at;
            }
            FailureOutcome::Failed => break,
        }
    }
    delays
}

#[test]
fn delays_double_up_to_the_cap() {
    let (_dir, queue) = queue(QueueConfig {
        max_attempts: 10,
        ..config()
    });
    queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
    assert_eq!(
        delays(&queue, 9),
        [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000]
    );
    let entry = queue.get(QueueId(1)).unwrap();
    assert_eq!(entry.queued.attempts, 9);
    assert_eq!(entry.state, EntryState::Waiting);
}

#[test]
fn jitter_stays_in_bounds_and_follows_the_seed() {
    let config = QueueConfig {
        max_attempts: 100,
        base_delay_ms: 1_000,
        max_delay_ms: 60_000,
        jitter: 0.5,
        ..config()
    };
    let schedule = |seed| {
        let dir = tempfile::tempdir().unwrap();
        let queue = SledQueue::open_seeded(dir.path(), config.clone(), seed).unwrap();
        queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
        delays(&queue, 40)
    };
    let first = schedule(3);
    assert_eq!(first.len(), 40);
    for (n, delay) in first.iter().enumerate() {
        let (low, high) = config.backoff_bounds_ms(n as u32 + 1);
        assert!(
            (low..=high).contains(delay),
            "delay {delay} after failure {} outside {low}..={high}",
            n + 1
        );
    }
    // Capped from the 7th failure on: 34 draws from [30 s, 60 s] that are
    // not all the same.
    let capped: std::collections::BTreeSet<u64> = first[6..].iter().copied().collect();
    assert!(capped.len() > 10, "{capped:?}");
    assert_eq!(schedule(3), first);
    assert_ne!(schedule(4), first);
}

#[test]
fn full_jitter_may_retry_at_once_but_never_later_than_the_cap() {
    let (_dir, queue) = queue(QueueConfig {
        max_attempts: 100,
        jitter: 1.0,
        ..config()
    });
    queue.push(update("a", "u1", json!({"n": 1}))).unwrap();
    for delay in delays(&queue, 50) {
        assert!(delay <= 1_000, "{delay}");
    }
}

#[tokio::test]
async fn an_entry_fails_for_good_after_max_attempts_and_comes_back_on_retry() {
    let (_dir, queue) = queue(config());
    let id = queue
        .enqueue(update("a", "u1", json!({"n": 1})))
        .await
        .unwrap();
    let mut now = 0;
    for attempt in 1..=3 {
        let batch = queue.ready(now, 10).await.unwrap();
        assert_eq!(batch.len(), 1, "attempt {attempt}");
        queue
            .record_failure(id, &format!("error {attempt}"), now)
            .await
            .unwrap();
        now = queue.get(id).unwrap().queued.next_attempt_ms;
    }
    let failed = queue.failed().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].last_error.as_deref(), Some("error 3"));
    assert_eq!(queue.pending_count().await.unwrap(), 0);
    assert!(queue.ready(u64::MAX, 10).await.unwrap().is_empty());

    queue.retry(id).await.unwrap();
    assert!(queue.failed().await.unwrap().is_empty());
    assert_eq!(queue.pending_count().await.unwrap(), 1);
    let batch = queue.ready(now, 10).await.unwrap();
    assert_eq!(batch[0].attempts, 0);
    assert_eq!(batch[0].next_attempt_ms, 0);
    let op = queue.discard(id).await.unwrap();
    assert_eq!(op.op_id.unwrap(), "u1");
    assert_eq!(queue.pending_count().await.unwrap(), 0);
}
