//! The engine's WebSocket mode: the connection through
//! `sync_realtime::RealtimeClient`, the subscriptions from the stored
//! cursors, and the queue pushed a batch at a time.
//!
//! Events the server pushes are drained into a channel by a task of their
//! own, so the connection keeps reading (and answering acks) while the
//! engine waits for the answers of a batch. A batch holds at most one entry
//! per document, as the queue hands them out, so the entries of one
//! document reach the server in order.

use std::sync::Arc;
use std::time::Duration;

use sync_core::realtime::{RealTimeEvent, Subscription};
use sync_core::{ConnectionState, Filter, OfflineQueue, Watch};
use sync_realtime::{ClientConfig, RealtimeClient};
use tokio::sync::mpsc;

use super::remote::{Batch, Remote};
use crate::error::Error;
use crate::events::SyncEvent;
use crate::logic;
use crate::shared::Shared;

/// Operations sent over the WebSocket before their answers are awaited.
const WS_BATCH: usize = 64;

/// The real-time connection and what the engine knows about it.
pub(super) struct Realtime {
    client: Arc<RealtimeClient>,
    pub(super) states: Watch<ConnectionState>,
    pub(super) events: mpsc::UnboundedReceiver<RealTimeEvent>,
    /// Whether every collection is subscribed on this connection.
    pub(super) subscribed: bool,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

impl Realtime {
    /// Starts connecting (and reconnecting, within the settings' limits)
    /// and mirrors the first state to the handle.
    pub(super) fn connect(shared: &Shared) -> Realtime {
        let settings = &shared.settings;
        let mut config = ClientConfig::new(settings.ws_url(), shared.device_id.clone());
        config.token = settings.token.clone();
        config.root_certificates = settings.root_certificates.clone();
        config.reconnect_delay = settings.reconnect_delay;
        config.reconnect_delay_max = (settings.reconnect_delay * 16).max(Duration::from_secs(1));
        config.reconnect_attempts_max = settings.max_reconnect_attempts;
        config.request_timeout = Duration::from_secs(15);
        let client = Arc::new(RealtimeClient::connect(config));
        let states = client.states();
        let (tx, events) = mpsc::unbounded_channel();
        let source = Arc::clone(&client);
        let forwarder = tokio::spawn(async move {
            while let Some(event) = source.next_event().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        shared.state.replace(states.get());
        Realtime {
            client,
            states,
            events,
            subscribed: false,
            forwarder,
        }
    }

    /// Whether the socket is up now.
    pub(super) fn is_connected(&self) -> bool {
        self.states.get() == ConnectionState::Connected
    }

    /// Subscribes every collection from its stored cursor.
    pub(super) async fn subscribe(&mut self, shared: &Shared) -> Result<(), Error> {
        let settings = &shared.settings;
        for collection in &settings.collections {
            let cursor = shared.local.cursor(&settings.namespace, collection)?;
            let subscription = Subscription {
                id: Some(collection.to_string()),
                namespace: settings.namespace.clone(),
                collection: collection.clone(),
                filter: Filter::all(),
                cursor,
            };
            self.client
                .subscribe(subscription)
                .await
                .map_err(|error| Error::Network(Box::new(error)))?;
        }
        self.subscribed = true;
        Ok(())
    }

    /// Sends what the queue has ready, a batch at a time, until nothing is
    /// ready or an answer says to try again later.
    pub(super) async fn push(&self, remote: &Remote) -> Result<(), Error> {
        let shared = &remote.shared;
        let total = shared.queue.pending_count().await?;
        let mut done = 0;
        loop {
            let batch = shared
                .queue
                .ready_from(shared.now_ms(), WS_BATCH, shared.lowest_priority())
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut outgoing = Vec::with_capacity(batch.len());
            for queued in &batch {
                outgoing.push(remote.outgoing(&queued.op)?);
            }
            let answers =
                futures::future::join_all(outgoing.into_iter().map(|op| self.client.send(op)))
                    .await;
            let mut settled = Batch::default();
            for (queued, answer) in batch.iter().zip(answers) {
                let delivery = logic::classify(&answer);
                remote
                    .settle(&mut settled, queued, delivery, answer.ok())
                    .await;
            }
            remote.finish(&settled).await?;
            done += batch.len();
            shared.emit(SyncEvent::SyncProgress {
                done: done.min(total.max(done)),
                total: total.max(done),
            });
            if settled.retry {
                shared.queue.release_in_flight();
                return Ok(());
            }
        }
    }

    /// Closes the connection for good.
    pub(super) async fn close(self) {
        self.client.close().await;
    }
}
