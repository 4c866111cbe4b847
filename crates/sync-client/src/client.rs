//! [`SyncClient`], the handle an application holds: collections, events,
//! the connection's state, the queue's pending and failed operations, the
//! conflict resolver, and the commands to the background sync (sync now,
//! close).
//!
//! The handle owns the background task and talks to it only through a
//! command channel; everything else goes through the shared state, which is
//! why the engine needs nothing from this module.

use std::sync::Arc;

use std::sync::atomic::Ordering;
use sync_core::queue::{QueueId, QueuedOp};
use sync_core::{
    ConnectionState, DeviceId, JsonObject, OfflineQueue, Operation, SyncEntity, Watch,
};
use tokio::sync::{mpsc, oneshot};

use crate::collection::Collection;
use crate::engine::{self, Command};
use crate::error::Error;
use crate::events::{ConflictInfo, Events};
use crate::shared::Shared;
use crate::typed::TypedCollection;

/// An offline-first client of a sync server.
///
/// Writes go to the local view and the durable offline queue at once; a
/// background task pushes the queue and applies the server's changes, over
/// WebSocket when it can and HTTP polling when it cannot. Call
/// [`close`](Self::close) to stop it; dropping it stops the task too.
pub struct SyncClient {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("device_id", &self.shared.device_id)
            .field("server_url", &self.shared.settings.server_url)
            .finish_non_exhaustive()
    }
}

impl SyncClient {
    /// Starts the background sync over `shared` and returns its handle.
    pub(crate) fn start(shared: Arc<Shared>) -> SyncClient {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(engine::run(Arc::clone(&shared), command_rx));
        SyncClient {
            shared,
            commands,
            task: Some(task),
        }
    }

    /// One collection (`"todos"`): [`Error::Invalid`] for a name that is
    /// not valid, [`Error::UnknownCollection`] for one the builder did not
    /// list.
    pub fn collection(&self, name: &str) -> Result<Collection, Error> {
        Collection::new(&self.shared, name)
    }

    /// The collection of an entity type, checked as by
    /// [`collection`](Self::collection).
    pub fn typed<T: SyncEntity>(&self) -> Result<TypedCollection<T>, Error> {
        Ok(TypedCollection::new(self.collection(T::COLLECTION)?))
    }

    /// This device's id (stable across restarts).
    pub fn device_id(&self) -> &DeviceId {
        &self.shared.device_id
    }

    /// The background sync's events from now on.
    pub fn events(&self) -> Events {
        Events::new(self.shared.events.subscribe())
    }

    /// The real-time connection's state (`disconnected`, `connecting`,
    /// `connected`, `reconnecting`, `error`), to read or wait for.
    pub fn connection_state(&self) -> Watch<ConnectionState> {
        self.shared.state.watch()
    }

    /// Marks the link metered or slow (`true`) or not. While it is, writes
    /// of low priority (see
    /// [`collection_priority`](crate::SyncClientBuilder::collection_priority))
    /// stay in the durable queue and show in the local view as pending;
    /// normal and high ones still go. Clearing it sends what was held back.
    pub fn set_metered(&self, metered: bool) {
        let was = self.shared.metered.swap(metered, Ordering::SeqCst);
        if was && !metered {
            self.shared.wake.notify_one();
        }
    }

    /// Whether the link is marked metered.
    pub fn is_metered(&self) -> bool {
        self.shared.metered.load(Ordering::SeqCst)
    }

    /// Operations waiting for the server (failed ones excluded).
    pub async fn pending_count(&self) -> Result<usize, Error> {
        Ok(self.shared.queue.pending_count().await?)
    }

    /// The operations set aside after too many failures, with their
    /// reasons. They keep showing in the local view and block later edits
    /// of their document until [`retry`](Self::retry) or
    /// [`discard`](Self::discard).
    pub async fn failed(&self) -> Result<Vec<QueuedOp>, Error> {
        Ok(OfflineQueue::failed(&self.shared.queue).await?)
    }

    /// Puts a failed operation back in line.
    pub async fn retry(&self, id: QueueId) -> Result<(), Error> {
        OfflineQueue::retry(&self.shared.queue, id).await?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Drops a queued operation for good (the local view forgets it) and
    /// returns it.
    pub async fn discard(&self, id: QueueId) -> Result<Operation, Error> {
        let op = OfflineQueue::discard(&self.shared.queue, id).await?;
        if let Some(collection) = &op.collection {
            self.shared.touch(collection);
        }
        Ok(op)
    }

    /// Registers the application's conflict resolver: called for every
    /// conflict the server leaves pending; a returned document is sent as
    /// the resolution (`POST /v1/conflicts/{id}/resolve`).
    pub fn on_conflict<F>(&self, resolver: F)
    where
        F: Fn(ConflictInfo) -> Option<JsonObject> + Send + Sync + 'static,
    {
        if let Ok(mut hook) = self.shared.on_conflict.write() {
            *hook = Some(Arc::new(resolver));
        }
    }

    /// Pushes everything that can be sent now and pulls what the server
    /// has; returns when done. Fails when the server cannot be reached, or
    /// with [`Error::Pending`] when operations are still waiting (backoff
    /// after a failure, or behind a failed one); low-priority operations
    /// held back by a metered link ([`set_metered`](Self::set_metered))
    /// do not count.
    pub async fn sync_now(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::SyncNow(reply))
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Stops the background sync, closes the connection and flushes the
    /// local store. Pending operations stay queued for the next start.
    pub async fn close(mut self) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close(reply)).is_ok() {
            let _ = done.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.shared.local.flush().await
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::{ManualClock, Timestamp};

    use super::*;

    #[tokio::test]
    async fn writes_are_stamped_by_the_injected_clock_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000));
        let client = SyncClient::builder()
            // Nothing listens there: the writes stay queued.
            .server_url("http://127.0.0.1:9")
            .data_dir(dir.path())
            .collections(["todos"])
            .realtime(false)
            .clock(clock.clone())
            .build()
            .await
            .unwrap();
        let todos = client.collection("todos").unwrap();
        for at in [1_000, 1_000, 400, 5_000] {
            clock.set(at);
            todos.save(json!({ "at": at })).await.unwrap();
        }
        let mut entries = client.shared.queue.entries();
        entries.sort_by_key(|entry| entry.queued.id);
        let stamps: Vec<u64> = entries
            .iter()
            .filter_map(|entry| entry.queued.op.timestamp.map(Timestamp::as_millis))
            .collect();
        assert_eq!(stamps, [1_000, 1_001, 1_002, 5_000]);
        client.close().await.unwrap();
    }

    #[tokio::test]
    async fn collections_are_checked_when_taken_and_documents_must_be_objects() {
        #[derive(serde::Serialize)]
        struct Todo {
            text: &'static str,
            done: bool,
        }
        let dir = tempfile::tempdir().unwrap();
        let client = SyncClient::builder()
            .server_url("http://127.0.0.1:9")
            .data_dir(dir.path())
            .collections(["todos"])
            .realtime(false)
            .build()
            .await
            .unwrap();
        assert!(matches!(
            client.collection("bad name"),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            client.collection("notes"),
            Err(Error::UnknownCollection(_))
        ));
        let todos = client.collection("todos").unwrap();
        let id = todos
            .save(Todo {
                text: "typed",
                done: false,
            })
            .await
            .unwrap();
        assert_eq!(
            todos.get(id.as_str()).await.unwrap().unwrap()["text"],
            "typed"
        );
        for not_an_object in [json!([1, 2]), json!("text"), json!(null)] {
            let error = todos.save(not_an_object).await.unwrap_err();
            assert!(matches!(error, Error::Invalid(_)), "{error}");
        }
        assert!(matches!(
            todos.update(id.as_str(), json!(3)).await,
            Err(Error::Invalid(_))
        ));
        client.close().await.unwrap();
    }
}
