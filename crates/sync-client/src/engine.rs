//! The background sync task: the I/O around the pure decisions of
//! `logic`.
//!
//! While the WebSocket is connected it subscribes each collection from its
//! stored cursor, applies pushed changes and pushes the queue one batch at
//! a time (at most one entry per document in flight, as the queue hands
//! them out). While it is not (connecting, reconnecting, or given up after
//! its attempts), HTTP takes over: the queue goes out by `POST /v1/sync` in
//! chunks and changes come in by long-polling `GET /v1/changes`; the task
//! switches back as soon as the WebSocket is up again.
//!
//! Every answer updates the known server state first and acknowledges the
//! queue entry after, so the local view never loses an edit in between.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sync_core::queue::{QueueId, QueuedOp};
use sync_core::realtime::{RealTimeEvent, Subscription};
use sync_core::{
    Change, ChangeOp, CollectionName, ConnectionState, Cursor, Document, Filter, OfflineQueue,
    OpResult, OpStatus, Operation,
};
use sync_realtime::{ClientConfig, RealtimeClient};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::client::Shared;
use crate::error::Error;
use crate::events::{ConflictInfo, SyncEvent};
use crate::http::Http;
use crate::logic::{self, AckEffect, Delivery, ServerDoc};

/// Operations sent over the WebSocket before their answers are awaited.
const WS_BATCH: usize = 64;
/// The longest pause between HTTP attempts while the server is unreachable.
const OFFLINE_PAUSE_MAX: Duration = Duration::from_secs(10);
/// How often the task looks for queue entries whose backoff ended.
const TICK: Duration = Duration::from_secs(1);

/// What the handle asks the task.
pub(crate) enum Command {
    /// Push and pull now; answer when done.
    SyncNow(oneshot::Sender<Result<(), Error>>),
    /// Stop.
    Close(oneshot::Sender<()>),
}

/// The real-time connection and what the task knows about it.
struct Realtime {
    client: Arc<RealtimeClient>,
    states: watch::Receiver<ConnectionState>,
    events: mpsc::UnboundedReceiver<RealTimeEvent>,
    subscribed: bool,
    forwarder: tokio::task::JoinHandle<()>,
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

struct Engine {
    shared: Arc<Shared>,
    http: Http,
    commands: mpsc::UnboundedReceiver<Command>,
    realtime: Option<Realtime>,
    /// When to try a new WebSocket after the last one gave up.
    ws_retry_at: Option<Instant>,
    /// The pause before the next HTTP attempt while offline.
    offline_pause: Duration,
    was_connected: bool,
    closing: Option<oneshot::Sender<()>>,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Stop,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Runs until the handle closes or goes away.
pub(crate) async fn run(shared: Arc<Shared>, commands: mpsc::UnboundedReceiver<Command>) {
    let http = match Http::new(&shared.settings.server_url, shared.settings.token.clone()) {
        Ok(http) => http,
        Err(error) => {
            shared.emit(SyncEvent::Error {
                message: error.to_string(),
            });
            return;
        }
    };
    let mut engine = Engine {
        shared,
        http,
        commands,
        realtime: None,
        ws_retry_at: None,
        offline_pause: Duration::from_millis(250),
        was_connected: false,
        closing: None,
    };
    engine.register_device().await;
    if engine.shared.settings.realtime {
        engine.start_realtime();
    }
    loop {
        let flow = if engine.ws_connected() {
            engine.realtime_round().await
        } else {
            engine.http_round().await
        };
        if matches!(flow, Flow::Stop) {
            break;
        }
    }
    if let Some(realtime) = engine.realtime.take() {
        realtime.client.close().await;
    }
    let _ = engine.shared.local.flush().await;
    engine
        .shared
        .state
        .send_replace(ConnectionState::Disconnected);
    if let Some(reply) = engine.closing.take() {
        let _ = reply.send(());
    }
}

impl Engine {
    fn ws_connected(&self) -> bool {
        self.realtime
            .as_ref()
            .is_some_and(|rt| *rt.states.borrow() == ConnectionState::Connected)
    }

    fn start_realtime(&mut self) {
        let settings = &self.shared.settings;
        let mut config = ClientConfig::new(settings.ws_url(), self.shared.device_id.clone());
        config.token = settings.token.clone();
        config.reconnect_delay = settings.reconnect_delay;
        config.reconnect_delay_max = (settings.reconnect_delay * 16).max(Duration::from_secs(1));
        config.reconnect_attempts_max = settings.max_reconnect_attempts;
        config.request_timeout = Duration::from_secs(15);
        let client = Arc::new(RealtimeClient::connect(config));
        let states = client.states();
        let (tx, events) = mpsc::unbounded_channel();
        let source = Arc::clone(&client);
        // Pushed events are drained at once, so the connection never stops
        // reading (and answering acks) while the task is busy pushing.
        let forwarder = tokio::spawn(async move {
            while let Some(event) = source.next_event().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        self.shared.state.send_replace(*states.borrow());
        self.realtime = Some(Realtime {
            client,
            states,
            events,
            subscribed: false,
            forwarder,
        });
        self.ws_retry_at = None;
    }

    /// Mirrors the connection's state to the handle and raises the
    /// connected / disconnected events.
    fn observe_state(&mut self) {
        let Some(rt) = self.realtime.as_mut() else {
            return;
        };
        let state = *rt.states.borrow_and_update();
        self.shared.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
        if state != ConnectionState::Connected && self.was_connected {
            self.was_connected = false;
            self.shared.emit(SyncEvent::Disconnected);
        }
        if matches!(
            state,
            ConnectionState::Error | ConnectionState::Disconnected
        ) {
            // The connection gave up: poll over HTTP, try again later.
            self.realtime = None;
            self.ws_retry_at = Some(Instant::now() + self.shared.settings.ws_retry_interval);
        }
    }

    async fn register_device(&self) {
        if matches!(self.shared.local.meta("registered"), Ok(Some(_))) {
            return;
        }
        let settings = &self.shared.settings;
        let registered = self
            .http
            .register_device(
                &self.shared.device_id,
                &settings.device_name,
                &settings.platform,
                &settings.collections,
            )
            .await;
        match registered {
            Ok(()) => {
                let _ = self.shared.local.set_meta("registered", "1");
            }
            Err(error) => tracing::debug!(%error, "device registration postponed"),
        }
    }

    // ---- the WebSocket mode ----

    async fn realtime_round(&mut self) -> Flow {
        if self.realtime.as_ref().is_some_and(|rt| !rt.subscribed)
            && let Err(error) = self.subscribe_all().await
        {
            tracing::debug!(%error, "subscribing failed; retrying");
            return self.pause(Duration::from_millis(500)).await;
        }
        if let Err(error) = self.push_realtime().await {
            self.report(&error);
        }
        let Some(rt) = self.realtime.as_mut() else {
            return Flow::Continue;
        };
        tokio::select! {
            event = rt.events.recv() => match event {
                Some(event) => self.on_event(event).await,
                None => self.observe_state(),
            },
            changed = rt.states.changed() => {
                if changed.is_err() {
                    self.realtime = None;
                    self.ws_retry_at = Some(Instant::now());
                } else {
                    self.observe_state();
                }
            }
            () = self.shared.wake.notified() => {}
            command = self.commands.recv() => return self.on_command(command).await,
            () = tokio::time::sleep(TICK) => {}
        }
        Flow::Continue
    }

    /// After a connection: catch up the collections that have no cursor
    /// yet over HTTP, then subscribe every collection from its cursor.
    async fn subscribe_all(&mut self) -> Result<(), Error> {
        self.register_device().await;
        let settings = self.shared.settings.clone();
        let mut missing = Vec::new();
        for collection in &settings.collections {
            if self
                .shared
                .local
                .cursor(&settings.namespace, collection)?
                .is_none()
            {
                missing.push(collection.clone());
            }
        }
        if !missing.is_empty() {
            self.pull_http(&missing, 0).await?;
        }
        let Some(rt) = self.realtime.as_ref() else {
            return Ok(());
        };
        let client = Arc::clone(&rt.client);
        for collection in &settings.collections {
            let cursor = self.shared.local.cursor(&settings.namespace, collection)?;
            let subscription = Subscription {
                id: Some(collection.to_string()),
                namespace: settings.namespace.clone(),
                collection: collection.clone(),
                filter: Filter::all(),
                cursor,
            };
            client
                .subscribe(subscription)
                .await
                .map_err(|error| Error::Network(error.to_string()))?;
        }
        if let Some(rt) = self.realtime.as_mut() {
            rt.subscribed = true;
        }
        self.was_connected = true;
        self.shared.emit(SyncEvent::Connected {
            collections: settings
                .collections
                .iter()
                .map(ToString::to_string)
                .collect(),
        });
        Ok(())
    }

    async fn on_event(&mut self, event: RealTimeEvent) {
        match event {
            RealTimeEvent::Change { change, .. } => {
                if let Err(error) = self.apply_remote(&change, true) {
                    self.report(&error);
                }
            }
            RealTimeEvent::Resync { reset: true, .. } => {
                // The server cannot resume us (expired or foreign cursor):
                // start over from a clean copy, then connect again.
                tracing::info!("server asked for a reset; re-reading the collections");
                if let Some(rt) = self.realtime.take() {
                    rt.client.close().await;
                }
                self.reset_collections();
                self.start_realtime();
            }
            RealTimeEvent::Resync { .. } => {}
        }
    }

    fn reset_collections(&self) {
        let settings = &self.shared.settings;
        for collection in &settings.collections {
            if let Err(error) = self
                .shared
                .local
                .clear_collection(&settings.namespace, collection)
            {
                self.report(&error);
            }
            self.shared.touch(collection);
        }
    }

    /// Sends what the queue has ready, a batch at a time, until nothing is
    /// ready or the connection drops.
    async fn push_realtime(&mut self) -> Result<(), Error> {
        let total = self.shared.queue.pending_count().await?;
        let mut done = 0;
        loop {
            let Some(client) = self.realtime.as_ref().map(|rt| Arc::clone(&rt.client)) else {
                return Ok(());
            };
            let batch = self.shared.queue.ready(now_ms(), WS_BATCH).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut outgoing = Vec::with_capacity(batch.len());
            for queued in &batch {
                outgoing.push(self.outgoing(&queued.op)?);
            }
            let answers =
                futures::future::join_all(outgoing.into_iter().map(|op| client.send(op))).await;
            let mut acked = Vec::new();
            let mut retry = false;
            let mut touched = HashSet::new();
            for (queued, answer) in batch.iter().zip(answers) {
                let delivery = logic::classify(&answer);
                match self.settle(queued, delivery, answer.ok()).await {
                    Settled::Acked => {
                        acked.push(queued.id);
                        touched.extend(queued.op.collection.clone());
                    }
                    Settled::Retry => retry = true,
                    Settled::Failed => {
                        touched.extend(queued.op.collection.clone());
                    }
                }
            }
            self.finish_batch(&acked, &touched).await?;
            done += batch.len();
            self.shared.emit(SyncEvent::SyncProgress {
                done: done.min(total.max(done)),
                total: total.max(done),
            });
            if retry {
                self.shared.queue.release_in_flight();
                return Ok(());
            }
        }
    }

    /// The operation as it goes out. An update or delete made while the
    /// document's server version was unknown (its create was still on the
    /// way) was made on the version that create produced: the known
    /// version now, since the entries of a document go out one at a time.
    /// Only the copy sent changes; the queue entry stays as it was.
    fn outgoing(&self, op: &Operation) -> Result<Operation, Error> {
        let mut op = op.clone();
        if op.base_version.is_none()
            && matches!(
                op.action,
                sync_core::Action::Update | sync_core::Action::Delete
            )
            && let (Some(collection), Some(id)) = (&op.collection, &op.id)
        {
            let ns = op.namespace.clone().unwrap_or_default();
            op.base_version = self
                .shared
                .local
                .server_doc(&ns, collection, id.as_str())?
                .filter(|doc| !doc.deleted)
                .map(|doc| sync_core::Version(doc.version));
        }
        Ok(op)
    }

    async fn finish_batch(
        &self,
        acked: &[QueueId],
        touched: &HashSet<CollectionName>,
    ) -> Result<(), Error> {
        if !acked.is_empty() {
            self.shared.queue.acknowledge(acked).await?;
        }
        for collection in touched {
            self.shared.touch(collection);
        }
        Ok(())
    }

    /// Acts on one answer: updates the server state and reports
    /// conflicts for a delivered operation, records a failure for a
    /// refused one.
    async fn settle(
        &self,
        queued: &QueuedOp,
        delivery: Delivery,
        result: Option<OpResult>,
    ) -> Settled {
        match (delivery, result) {
            (Delivery::Delivered { conflict }, Some(result)) => {
                match self.after_ack(&queued.op, &result, conflict).await {
                    Ok(()) => Settled::Acked,
                    Err(error) => {
                        // Without the outcome the view could lose the edit:
                        // send again later (the server answers `duplicate`).
                        tracing::debug!(%error, "outcome unknown; the operation goes again");
                        Settled::Retry
                    }
                }
            }
            (Delivery::Delivered { .. }, None) | (Delivery::Retry, _) => Settled::Retry,
            (Delivery::Refused(reason), _) => {
                self.shared.emit(SyncEvent::Error {
                    message: format!(
                        "operation on {}/{} refused: {reason}",
                        queued.op.collection.as_ref().map_or("", |c| c.as_str()),
                        queued.op.id.as_ref().map_or("", |id| id.as_str()),
                    ),
                });
                if let Err(error) = self
                    .shared
                    .queue
                    .record_failure(queued.id, &reason, now_ms())
                    .await
                {
                    self.report(&error.into());
                }
                Settled::Failed
            }
        }
    }

    /// The server state after one of our operations was answered.
    async fn after_ack(
        &self,
        op: &Operation,
        result: &OpResult,
        conflict: bool,
    ) -> Result<(), Error> {
        let ns = op.namespace.clone().unwrap_or_default();
        let (Some(collection), Some(id)) = (
            op.collection.clone(),
            op.id.clone().or(result.server_id.clone()),
        ) else {
            return Ok(());
        };
        let known = self
            .shared
            .local
            .server_doc(&ns, &collection, id.as_str())?;
        match logic::ack_effect(known.as_ref(), op, result) {
            AckEffect::Apply(doc) => {
                self.shared
                    .local
                    .put_server_doc(&ns, &collection, id.as_str(), &doc, None)?;
            }
            AckEffect::Keep => {}
            AckEffect::Fetch => self.fetch(&collection, id.as_str(), known.as_ref()).await?,
        }
        if result.status == OpStatus::Merged {
            self.shared.emit(SyncEvent::ConflictResolved {
                collection: collection.to_string(),
                id: id.to_string(),
                strategy: result.strategy,
            });
        }
        if conflict {
            self.on_pending_conflict(&collection, id.as_str(), result)
                .await;
        }
        Ok(())
    }

    /// Reads a document from the server into the known state.
    async fn fetch(
        &self,
        collection: &CollectionName,
        id: &str,
        known: Option<&ServerDoc>,
    ) -> Result<(), Error> {
        let ns = &self.shared.settings.namespace;
        if let Some(document) = self.http.document(ns, collection, id).await? {
            self.store_document(&document, known)?;
        }
        Ok(())
    }

    fn store_document(&self, document: &Document, known: Option<&ServerDoc>) -> Result<(), Error> {
        if document.version.get() <= known.map_or(0, |doc| doc.version) {
            return Ok(());
        }
        let doc = ServerDoc {
            data: if document.deleted {
                Default::default()
            } else {
                document.data.clone()
            },
            version: document.version.get(),
            deleted: document.deleted,
        };
        self.shared.local.put_server_doc(
            &document.namespace,
            &document.collection,
            document.id.as_str(),
            &doc,
            None,
        )
    }

    /// A conflict the server left pending: tell the application, and send
    /// its resolver's document when it gives one.
    async fn on_pending_conflict(&self, collection: &CollectionName, id: &str, result: &OpResult) {
        let (Some(conflict_id), Some(conflict_data)) =
            (result.conflict_id.clone(), result.conflict_data.clone())
        else {
            return;
        };
        let info = ConflictInfo {
            conflict_id: conflict_id.clone(),
            namespace: self.shared.settings.namespace.to_string(),
            collection: collection.to_string(),
            id: id.to_owned(),
            conflict_data,
        };
        self.shared.emit(SyncEvent::ConflictPending(info.clone()));
        let hook = self
            .shared
            .on_conflict
            .read()
            .ok()
            .and_then(|hook| hook.clone());
        let Some(hook) = hook else {
            return;
        };
        let Some(resolved) = hook(info) else {
            return;
        };
        match self.http.resolve_conflict(&conflict_id, &resolved).await {
            Ok(document) => {
                let ns = &self.shared.settings.namespace;
                let known = self
                    .shared
                    .local
                    .server_doc(ns, collection, id)
                    .ok()
                    .flatten();
                if let Err(error) = self.store_document(&document, known.as_ref()) {
                    self.report(&error);
                }
                self.shared.touch(collection);
                self.shared.emit(SyncEvent::ConflictResolved {
                    collection: collection.to_string(),
                    id: id.to_owned(),
                    strategy: Some(sync_core::Strategy::Manual),
                });
            }
            Err(error) => self.report(&error),
        }
    }

    fn apply_remote(&self, change: &Change, notify: bool) -> Result<(), Error> {
        apply_remote(&self.shared, change, notify)
    }

    // ---- the HTTP mode ----

    async fn http_round(&mut self) -> Flow {
        if self.realtime.is_none()
            && self.shared.settings.realtime
            && self.ws_retry_at.is_none_or(|at| Instant::now() >= at)
        {
            self.start_realtime();
        }
        self.observe_state();
        if self.ws_connected() {
            return Flow::Continue;
        }
        let collections = self.shared.settings.collections.clone();
        let outcome = match self.push_http().await {
            Ok(()) => {
                let wait = self.shared.settings.poll_wait_secs;
                let mut pull = Box::pin(pull_http(&self.shared, &self.http, &collections, wait));
                let states = self.realtime.as_ref().map(|rt| rt.states.clone());
                let ws_up = async move {
                    match states {
                        Some(mut states) => {
                            let _ = states.wait_for(|s| *s == ConnectionState::Connected).await;
                        }
                        None => std::future::pending().await,
                    }
                };
                let command = tokio::select! {
                    outcome = &mut pull => Ok(outcome),
                    () = ws_up => Ok(Ok(())),
                    () = self.shared.wake.notified() => Ok(Ok(())),
                    command = self.commands.recv() => Err(command),
                };
                match command {
                    Ok(outcome) => outcome,
                    Err(command) => {
                        drop(pull);
                        return self.on_command(command).await;
                    }
                }
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                self.offline_pause = Duration::from_millis(250);
                Flow::Continue
            }
            Err(error) => {
                tracing::debug!(%error, "HTTP sync failed");
                let pause = self.offline_pause;
                self.offline_pause = (pause * 2).min(OFFLINE_PAUSE_MAX);
                self.pause(pause).await
            }
        }
    }

    /// Waits `pause`, or less when something needs doing.
    async fn pause(&mut self, pause: Duration) -> Flow {
        let states = self.realtime.as_ref().map(|rt| rt.states.clone());
        let ws_change = async move {
            match states {
                Some(mut states) => {
                    let _ = states.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => Flow::Continue,
            () = ws_change => Flow::Continue,
            () = self.shared.wake.notified() => Flow::Continue,
            command = self.commands.recv() => self.on_command(command).await,
        }
    }

    /// Sends the queue by bulk sync, in chunks of `chunk_size` with
    /// progress events, until nothing is ready.
    async fn push_http(&mut self) -> Result<(), Error> {
        let total = self.shared.queue.pending_count().await?;
        if total == 0 {
            return Ok(());
        }
        // Taking entries marks them sent, which stops later edits from
        // being folded into them: only take them when the server answers.
        self.http.health().await?;
        let mut done = 0;
        loop {
            let batch = self
                .shared
                .queue
                .ready(now_ms(), 10 * self.shared.settings.chunk_size)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let chunks: Vec<&[QueuedOp]> = batch.chunks(self.shared.settings.chunk_size).collect();
            let count = chunks.len();
            for (index, chunk) in chunks.into_iter().enumerate() {
                let mut operations = Vec::with_capacity(chunk.len());
                for queued in chunk {
                    operations.push(self.outgoing(&queued.op)?);
                }
                let answer = match self
                    .http
                    .sync(&operations, &self.shared.device_id, (index + 1, count))
                    .await
                {
                    Ok(answer) => answer,
                    Err(error) => {
                        self.shared.queue.release_in_flight();
                        return Err(error);
                    }
                };
                let mut acked = Vec::new();
                let mut touched = HashSet::new();
                let mut retry = false;
                for queued in chunk {
                    let result = answer
                        .results
                        .iter()
                        .find(|result| result.op_id.is_some() && result.op_id == queued.op.op_id)
                        .cloned();
                    let delivery = match &result {
                        Some(result) => logic::classify_result(result),
                        None => match answer.errors.iter().find(|e| e.op_id == queued.op.op_id) {
                            Some(error) => {
                                Delivery::Refused(format!("{}: {}", error.code, error.message))
                            }
                            None => Delivery::Retry,
                        },
                    };
                    let result = result.map(|mut result| {
                        if result.strategy.is_none() {
                            result.strategy = answer
                                .conflicts
                                .iter()
                                .find(|c| Some(&c.id) == result.conflict_id.as_ref())
                                .map(|c| c.strategy);
                        }
                        result
                    });
                    match self.settle(queued, delivery, result).await {
                        Settled::Acked => {
                            acked.push(queued.id);
                            touched.extend(queued.op.collection.clone());
                        }
                        Settled::Failed => {
                            touched.extend(queued.op.collection.clone());
                        }
                        Settled::Retry => retry = true,
                    }
                }
                self.finish_batch(&acked, &touched).await?;
                done += chunk.len();
                self.shared.emit(SyncEvent::SyncProgress {
                    done,
                    total: total.max(done),
                });
                if retry {
                    self.shared.queue.release_in_flight();
                    return Ok(());
                }
            }
        }
    }

    /// Pulls the change feed for `collections` until it has nothing more,
    /// long-polling `wait_secs` on the first page. A cursor the server no
    /// longer knows resets the collections and reads them again.
    async fn pull_http(&self, collections: &[CollectionName], wait_secs: u64) -> Result<(), Error> {
        pull_http(&self.shared, &self.http, collections, wait_secs).await
    }

    // ---- commands ----

    async fn on_command(&mut self, command: Option<Command>) -> Flow {
        match command {
            None => Flow::Stop,
            Some(Command::Close(reply)) => {
                self.closing = Some(reply);
                Flow::Stop
            }
            Some(Command::SyncNow(reply)) => {
                let outcome = self.sync_now().await;
                let _ = reply.send(outcome);
                Flow::Continue
            }
        }
    }

    async fn sync_now(&mut self) -> Result<(), Error> {
        if self.ws_connected() {
            if self.realtime.as_ref().is_some_and(|rt| !rt.subscribed) {
                self.subscribe_all().await?;
            }
            self.push_realtime().await?;
        }
        // Whatever the WebSocket could not take goes by HTTP.
        self.push_http().await?;
        let collections = self.shared.settings.collections.clone();
        self.pull_http(&collections, 0).await?;
        let pending = self.shared.queue.pending_count().await?;
        if pending > 0 {
            return Err(Error::Pending(pending));
        }
        Ok(())
    }

    fn report(&self, error: &Error) {
        tracing::warn!(%error, "sync error");
        self.shared.emit(SyncEvent::Error {
            message: error.to_string(),
        });
    }
}

/// What became of one queue entry after its answer.
enum Settled {
    Acked,
    Retry,
    Failed,
}

/// Applies a change from the server when it is newer than what is
/// known, and moves the collection's cursor past it.
fn apply_remote(shared: &Shared, change: &Change, notify: bool) -> Result<(), Error> {
    let ns = &change.namespace;
    if *ns != shared.settings.namespace || !shared.changed.contains_key(&change.collection) {
        return Ok(());
    }
    let cursor = shared
        .local
        .cursor(ns, &change.collection)?
        .map(|stored| Cursor::new(stored.log(), change.seq));
    let known = shared
        .local
        .server_doc(ns, &change.collection, change.id.as_str())?;
    match logic::apply_change(known.as_ref(), change) {
        Some(doc) => {
            shared.local.put_server_doc(
                ns,
                &change.collection,
                change.id.as_str(),
                &doc,
                cursor,
            )?;
            if notify {
                let collection = change.collection.to_string();
                let id = change.id.to_string();
                shared.emit(match change.op {
                    ChangeOp::Insert => SyncEvent::Insert { collection, id },
                    ChangeOp::Update => SyncEvent::Update { collection, id },
                    ChangeOp::Delete => SyncEvent::Delete { collection, id },
                });
            }
            shared.touch(&change.collection);
        }
        None => {
            if let Some(cursor) = cursor {
                shared
                    .local
                    .advance_cursor(ns, &change.collection, cursor)?;
            }
        }
    }
    Ok(())
}

/// Pulls the change feed for `collections` until it has nothing more,
/// long-polling `wait_secs` on the first page. A cursor the server no
/// longer knows resets the collections and reads them again.
async fn pull_http(
    shared: &Shared,
    http: &Http,
    collections: &[CollectionName],
    wait_secs: u64,
) -> Result<(), Error> {
    let ns = shared.settings.namespace.clone();
    let mut wait = wait_secs;
    loop {
        // The oldest cursor of the collections; any without one reads
        // from the start. Changes already known are skipped by version.
        let mut cursor: Option<Cursor> = None;
        let mut from_start = false;
        for collection in collections {
            match shared.local.cursor(&ns, collection)? {
                Some(c) => {
                    if cursor.is_none_or(|old| c.seq() < old.seq()) {
                        cursor = Some(c);
                    }
                }
                None => from_start = true,
            }
        }
        if from_start {
            cursor = None;
        }
        let feed = match http
            .changes(cursor, &ns, collections, wait, &shared.device_id)
            .await
        {
            Ok(feed) => feed,
            Err(Error::Server { code, .. }) if code == "cursor_expired" => {
                for collection in collections {
                    shared.local.clear_collection(&ns, collection)?;
                    shared.touch(collection);
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        for change in &feed.changes {
            // The stored cursor may belong to nothing yet: the page's
            // log names it.
            if shared.local.cursor(&ns, &change.collection)?.is_none() {
                shared.local.advance_cursor(
                    &ns,
                    &change.collection,
                    Cursor::new(feed.cursor.log(), sync_core::Seq::ZERO),
                )?;
            }
            apply_remote(shared, change, true)?;
        }
        for collection in collections {
            shared.local.advance_cursor(&ns, collection, feed.cursor)?;
        }
        if !feed.has_more {
            return Ok(());
        }
        wait = 0;
    }
}
