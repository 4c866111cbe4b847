//! The trait boundary and the inspection API: `OfflineQueue` through a
//! trait object, refusals handing the operation back, the counts watch,
//! concurrent enqueues, and the async API outside a tokio runtime.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use serde_json::json;
use sync_core::queue::{QueueError, QueueId};
use sync_core::{Action, OfflineQueue, Operation};
use sync_queue::{QueueConfig, QueueCounts, SledQueue};

use crate::support::{config, queue, update};

#[tokio::test]
async fn the_trait_object_round_trip() {
    let (_dir, queue) = queue(config());
    let queue: Arc<dyn OfflineQueue> = Arc::new(queue);
    let first = queue
        .enqueue(update("a", "u1", json!({"n": 1})))
        .await
        .unwrap();
    let second = queue
        .enqueue(update("b", "v1", json!({"n": 1})))
        .await
        .unwrap();
    assert!(first < second);
    assert_eq!(queue.pending_count().await.unwrap(), 2);
    let batch = queue.ready(0, 10).await.unwrap();
    assert_eq!(batch.len(), 2);
    queue.acknowledge(&[first, second]).await.unwrap();
    assert_eq!(queue.pending_count().await.unwrap(), 0);
    assert!(matches!(
        queue.discard(first).await,
        Err(QueueError::NotFound(id)) if id == first
    ));
}

#[tokio::test]
async fn refusals_hand_the_operation_back_across_the_trait() {
    let (_dir, queue) = queue(QueueConfig {
        max_entries: 1,
        ..config()
    });
    let invalid = Operation::new(Action::Update); // no id, no data
    match queue.enqueue(invalid.clone()).await {
        Err(QueueError::Storage {
            message,
            unsaved: Some(op),
        }) => {
            assert_eq!(*op, invalid);
            assert!(message.contains("refused"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    queue
        .enqueue(update("a", "u1", json!({"n": 1})))
        .await
        .unwrap();
    let refused = update("b", "v1", json!({"n": 1}));
    match queue.enqueue(refused.clone()).await {
        Err(QueueError::Storage {
            unsaved: Some(op), ..
        }) => assert_eq!(*op, refused),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(queue.len(), 1);
}

#[tokio::test]
async fn the_watch_follows_every_change() {
    let (_dir, queue) = queue(QueueConfig {
        max_attempts: 1,
        ..config()
    });
    let mut counts = queue.watch_counts();
    let counted = |pending, in_flight, failed| QueueCounts {
        pending,
        in_flight,
        failed,
    };
    assert_eq!(counts.see(), counted(0, 0, 0));
    let a = queue
        .enqueue(update("a", "u1", json!({"n": 1})))
        .await
        .unwrap();
    queue
        .enqueue(update("b", "v1", json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(counts.has_changed(), Some(true));
    assert_eq!(counts.see(), counted(2, 0, 0));
    queue.ready(0, 10).await.unwrap();
    assert_eq!(counts.see(), counted(2, 2, 0));
    queue.record_failure(a, "rejected", 0).await.unwrap();
    assert_eq!(counts.see(), counted(1, 1, 1));
    queue.acknowledge(&[QueueId(2)]).await.unwrap();
    // A waiting task is woken by the change.
    let waiter = {
        let mut counts = counts.clone();
        tokio::spawn(async move { counts.wait_for(|counts| counts.failed == 0).await })
    };
    queue.discard(a).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), counted(0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_get_distinct_increasing_ids() {
    let (_dir, queue) = queue(config());
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..25 {
                let op = update(
                    &format!("w{writer}-{n}"),
                    &format!("w{writer}-{n}"),
                    json!({"n": n}),
                );
                ids.push(queue.enqueue(op).await.unwrap());
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let ids = task.await.unwrap();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        all.extend(ids);
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200);
    assert_eq!(queue.len(), 200);
}

/// Polls a future to completion without any runtime: the queue's async
/// methods run their work inline when there is no tokio runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[test]
fn the_async_api_works_without_a_tokio_runtime() {
    let (_dir, queue) = queue(config());
    let id = block_on(queue.enqueue(update("a", "u1", json!({"n": 1})))).unwrap();
    assert_eq!(block_on(queue.ready(0, 10)).unwrap().len(), 1);
    block_on(queue.acknowledge(&[id])).unwrap();
    assert!(queue.is_empty());
}

#[test]
fn an_invalid_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = SledQueue::open(
        dir.path(),
        QueueConfig {
            max_attempts: 0,
            ..config()
        },
    )
    .unwrap_err();
    assert!(matches!(error, sync_queue::Error::InvalidConfig(_)));
}
