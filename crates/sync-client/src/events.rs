//! What the client tells the application: [`SyncEvent`]s on a broadcast
//! channel and [`ConflictInfo`] for conflicts the server left pending.

use sync_core::{ConflictData, ConflictId, JsonObject, Strategy};

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
}
