//! A connection's bounded queue of outbound frames, with one receiver (its
//! writer). It holds no allocation while empty: most connections are idle
//! most of the time, and a channel's preallocated block would be the
//! largest part of an idle connection's memory.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};

/// The queue; see the module documentation.
#[derive(Debug)]
pub(crate) struct SendQueue<T> {
    items: Mutex<VecDeque<T>>,
    /// One permit per free place; closed with the queue.
    space: Semaphore,
    /// Wakes the receiver when an item arrives.
    arrived: Notify,
}

impl<T> SendQueue<T> {
    /// An empty queue of at most `capacity` items.
    pub(crate) fn new(capacity: usize) -> SendQueue<T> {
        SendQueue {
            items: Mutex::new(VecDeque::new()),
            space: Semaphore::new(capacity),
            arrived: Notify::new(),
        }
    }

    /// Queues `item`, waiting while the queue is full; `false` once the
    /// queue is closed.
    pub(crate) async fn send(&self, item: T) -> bool {
        match self.space.acquire().await {
            Ok(permit) => {
                permit.forget();
                self.push(item);
                true
            }
            Err(_) => false,
        }
    }

    /// Queues `item` if there is room and the queue is open.
    pub(crate) fn try_send(&self, item: T) -> bool {
        match self.space.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.push(item);
                true
            }
            Err(_) => false,
        }
    }

    fn push(&self, item: T) {
        self.lock().push_back(item);
        self.arrived.notify_one();
    }

    /// The next item, waiting for one.
    pub(crate) async fn recv(&self) -> T {
        loop {
            if let Some(item) = self.try_recv() {
                return item;
            }
            // An item pushed since `try_recv` left a stored notification.
            self.arrived.notified().await;
        }
    }

    /// The next item, if one is waiting. The queue's memory goes back
    /// when it empties.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let mut items = self.lock();
        let item = items.pop_front()?;
        if items.is_empty() {
            items.shrink_to_fit();
        }
        drop(items);
        self.space.add_permits(1);
        Some(item)
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Refuses every item from now on, and wakes the senders waiting for
    /// room (theirs is refused too): the receiver is gone.
    pub(crate) fn close(&self) {
        self.space.close();
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_a_full_queue_refuses_or_waits() {
        let queue = Arc::new(SendQueue::new(2));
        assert!(queue.try_send(1));
        assert!(queue.send(2).await);
        assert!(!queue.try_send(3), "full");
        let waiting = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.send(3).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a sender waits for room");
        assert_eq!(queue.recv().await, 1);
        assert!(waiting.await.expect("sender"), "room made, the item queued");
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.try_recv(), Some(2));
        assert_eq!(queue.recv().await, 3);
        assert_eq!(queue.try_recv(), None);
        assert_eq!(queue.lock().capacity(), 0, "an empty queue holds no memory");
    }

    #[tokio::test]
    async fn the_receiver_wakes_for_an_item_sent_while_it_waits() {
        let queue = Arc::new(SendQueue::new(4));
        let receiver = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.recv().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(queue.try_send(7));
        let item = tokio::time::timeout(Duration::from_secs(5), receiver)
            .await
            .expect("woken")
            .expect("receiver");
        assert_eq!(item, 7);
    }

    #[tokio::test]
    async fn closing_refuses_new_items_and_frees_waiting_senders() {
        let queue = Arc::new(SendQueue::new(1));
        assert!(queue.try_send(1));
        let waiting = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.send(2).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.close();
        let sent = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("freed")
            .expect("sender");
        assert!(!sent, "refused once closed");
        assert!(!queue.try_send(3));
        assert_eq!(queue.try_recv(), Some(1), "what was queued stays readable");
    }
}
