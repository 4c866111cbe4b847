//! What the client tells the application: [`SyncEvent`]s through
//! [`Events`] and [`ConflictInfo`] for conflicts the server left pending.

use sync_core::{ConflictData, ConflictId, JsonObject, Strategy};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// A conflict the server left pending (strategy `manual`), as handed to
/// the `on_conflict` hook and the [`SyncEvent::ConflictPending`] event.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictInfo {
    /// The conflict's id on the server (`/v1/conflicts/{id}`).
    pub conflict_id: ConflictId,
    /// The document's namespace.
    pub namespace: String,
    /// The document's collection.
    pub collection: String,
    /// The document's id.
    pub id: String,
    /// Both sides and the fields both changed.
    pub conflict_data: ConflictData,
}

impl ConflictInfo {
    /// The server's side merged with the client's for every field: a
    /// convenient starting point for a resolver.
    pub fn client_over_server(&self) -> JsonObject {
        let mut doc = self.conflict_data.server_data.clone();
        for (field, value) in &self.conflict_data.client_data {
            doc.insert(field.clone(), value.clone());
        }
        doc
    }
}

/// Something that happened in the background sync.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    /// The real-time connection is up and the collections are subscribed.
    Connected {
        /// The collections synced in real time.
        collections: Vec<String>,
    },
    /// The real-time connection was lost (HTTP polling takes over).
    Disconnected,
    /// Another device created a document.
    Insert {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
    },
    /// Another device changed a document.
    Update {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
    },
    /// Another device deleted a document.
    Delete {
        /// Its collection.
        collection: String,
        /// Its id.
        id: String,
    },
    /// One of this client's operations met a concurrent edit and the
    /// conflict was resolved (by the server's strategy, or by the
    /// `on_conflict` hook: `Manual`).
    ConflictResolved {
        /// The document's collection.
        collection: String,
        /// The document's id.
        id: String,
        /// The strategy that resolved it, when the server said.
        strategy: Option<Strategy>,
    },
    /// The server left a conflict pending for a manual decision.
    ConflictPending(ConflictInfo),
    /// Something failed (an operation refused, the server unreachable).
    Error {
        /// What went wrong.
        message: String,
    },
    /// Progress of pushing the offline queue (chunked bulk sync).
    SyncProgress {
        /// Operations answered so far in this push.
        done: usize,
        /// Operations pending when the push started.
        total: usize,
    },
    /// This receiver fell behind and the oldest events it had not read,
    /// `count` of them, were dropped: what they said is best read again
    /// from the collections.
    Missed {
        /// Events dropped.
        count: u64,
    },
}

/// The background sync's events, in order, from the moment
/// [`SyncClient::events`](crate::SyncClient::events) was called. Events
/// wait for the receiver, up to a bound; one that falls further behind
/// misses the oldest and is told with [`SyncEvent::Missed`].
#[derive(Debug)]
pub struct Events(broadcast::Receiver<SyncEvent>);

impl Events {
    pub(crate) fn new(receiver: broadcast::Receiver<SyncEvent>) -> Events {
        Events(receiver)
    }

    /// The next event, waiting for one; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<SyncEvent> {
        match self.0.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(count)) => Some(SyncEvent::Missed { count }),
            Err(RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SyncEvent> {
        match self.0.try_recv() {
            Ok(event) => Some(event),
            Err(TryRecvError::Lagged(count)) => Some(SyncEvent::Missed { count }),
            Err(TryRecvError::Empty | TryRecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast;

    use super::{Events, SyncEvent};

    #[tokio::test]
    async fn a_receiver_that_fell_behind_is_told_how_much_it_missed() {
        let (sender, receiver) = broadcast::channel(2);
        let mut events = Events::new(receiver);
        assert_eq!(events.try_recv(), None);
        for done in 1..=3 {
            sender
                .send(SyncEvent::SyncProgress { done, total: 3 })
                .expect("a receiver");
        }
        assert_eq!(events.try_recv(), Some(SyncEvent::Missed { count: 1 }));
        assert_eq!(
            events.recv().await,
            Some(SyncEvent::SyncProgress { done: 2, total: 3 })
        );
        for done in 4..=6 {
            sender
                .send(SyncEvent::SyncProgress { done, total: 6 })
                .expect("a receiver");
        }
        assert_eq!(events.recv().await, Some(SyncEvent::Missed { count: 2 }));
        assert_eq!(
            events.try_recv(),
            Some(SyncEvent::SyncProgress { done: 5, total: 6 })
        );
        drop(sender);
        assert_eq!(
            events.recv().await,
            Some(SyncEvent::SyncProgress { done: 6, total: 6 })
        );
        assert_eq!(events.recv().await, None);
        assert_eq!(events.try_recv(), None);
    }
}
