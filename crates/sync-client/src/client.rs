//! The application's side: [`SyncClient`] and its builder, [`Collection`]
//! (optimistic CRUD), [`Query`] (live queries) and [`TypedCollection`]
//! (the same with a [`SyncEntity`] type).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use sync_core::queue::{QueueId, QueuedOp};
use sync_core::{
    Action, CollectionName, ConnectionState, DeviceId, DocId, Filter, JsonObject, Namespace,
    OfflineQueue, OpId, Operation, SyncEntity, Timestamp, Version,
};
use sync_queue::{QueueConfig, SledQueue};
use tokio::sync::{Mutex, Notify, broadcast, mpsc, oneshot, watch};

use crate::engine::{self, Command};
use crate::error::Error;
use crate::events::{ConflictInfo, SyncEvent};
use crate::local::LocalStore;
use crate::logic::{self, Order};

/// The application's conflict resolver: given a conflict the server left
/// pending, the resolved document, or `None` to leave it pending.
pub type ConflictHook = Arc<dyn Fn(ConflictInfo) -> Option<JsonObject> + Send + Sync>;

/// Everything the builder decided.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) server_url: String,
    pub(crate) token: Option<String>,
    pub(crate) namespace: Namespace,
    pub(crate) collections: Vec<CollectionName>,
    pub(crate) reconnect_delay: Duration,
    pub(crate) max_reconnect_attempts: Option<u32>,
    pub(crate) ws_retry_interval: Duration,
    pub(crate) poll_wait_secs: u64,
    pub(crate) chunk_size: usize,
    pub(crate) device_name: String,
    pub(crate) platform: String,
    pub(crate) realtime: bool,
}

impl Settings {
    /// The WebSocket address for the HTTP base address.
    pub(crate) fn ws_url(&self) -> String {
        let base = self.server_url.trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.to_owned());
        format!("{rest}/ws")
    }
}

/// State shared by the handles and the background engine.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) device_id: DeviceId,
    pub(crate) local: LocalStore,
    pub(crate) queue: SledQueue,
    pub(crate) events: broadcast::Sender<SyncEvent>,
    pub(crate) state: watch::Sender<ConnectionState>,
    /// One generation counter per configured collection, bumped after every
    /// change of its local view; live queries wait on it.
    pub(crate) changed: HashMap<CollectionName, watch::Sender<u64>>,
    /// Wakes the engine when there is something new to push.
    pub(crate) wake: Notify,
    pub(crate) on_conflict: RwLock<Option<ConflictHook>>,
    /// Serialises local writes, so each one is planned on the view left by
    /// the one before.
    pub(crate) write_lock: Mutex<()>,
    /// The timestamp of the last local write: each write gets a later one,
    /// so two edits in the same millisecond still order by last-write-wins.
    pub(crate) last_write_ms: AtomicU64,
}

impl Shared {
    /// Tells the live queries of `collection` that its view changed.
    pub(crate) fn touch(&self, collection: &CollectionName) {
        if let Some(sender) = self.changed.get(collection) {
            sender.send_modify(|generation| *generation += 1);
        }
    }

    /// Sends an event to whoever listens (nobody is fine).
    pub(crate) fn emit(&self, event: SyncEvent) {
        let _ = self.events.send(event);
    }

    /// The pending operations of one collection, grouped by document, in
    /// queue order.
    fn pending_ops(&self, collection: &CollectionName) -> BTreeMap<String, Vec<Operation>> {
        let mut pending: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
        let mut entries = self.queue.entries();
        entries.sort_by_key(|entry| entry.queued.id);
        for entry in entries {
            let op = entry.queued.op;
            let ns = op.namespace.clone().unwrap_or_default();
            if ns != self.settings.namespace || op.collection.as_ref() != Some(collection) {
                continue;
            }
            if let Ok(Some(id)) = op.document_id() {
                pending.entry(id.to_string()).or_default().push(op);
            }
        }
        pending
    }

    /// The local view of one document.
    fn view(&self, collection: &CollectionName, id: &str) -> Result<Option<JsonObject>, Error> {
        let server = self
            .local
            .server_doc(&self.settings.namespace, collection, id)?;
        let pending = self.pending_ops(collection).remove(id).unwrap_or_default();
        let refs: Vec<&Operation> = pending.iter().collect();
        Ok(logic::local_view(server.as_ref(), &refs))
    }

    /// The local view of every document of a collection, each with its id.
    pub(crate) fn view_all(&self, collection: &CollectionName) -> Result<Vec<JsonObject>, Error> {
        let mut pending = self.pending_ops(collection);
        let mut docs = Vec::new();
        for (id, server) in self
            .local
            .server_docs(&self.settings.namespace, collection)?
        {
            let ops = pending.remove(&id).unwrap_or_default();
            let refs: Vec<&Operation> = ops.iter().collect();
            if let Some(data) = logic::local_view(Some(&server), &refs) {
                docs.push(logic::with_id(&id, data));
            }
        }
        for (id, ops) in pending {
            let refs: Vec<&Operation> = ops.iter().collect();
            if let Some(data) = logic::local_view(None, &refs) {
                docs.push(logic::with_id(&id, data));
            }
        }
        Ok(docs)
    }
}

/// Builds a [`SyncClient`].
#[derive(Debug, Clone)]
pub struct SyncClientBuilder {
    server_url: Option<String>,
    token: Option<String>,
    device_id: Option<String>,
    data_dir: Option<PathBuf>,
    collections: Vec<String>,
    namespace: String,
    reconnect_delay: Duration,
    max_reconnect_attempts: Option<u32>,
    ws_retry_interval: Duration,
    poll_wait_secs: u64,
    chunk_size: usize,
    device_name: String,
    platform: String,
    realtime: bool,
    queue: QueueConfig,
}

impl Default for SyncClientBuilder {
    fn default() -> Self {
        SyncClientBuilder {
            server_url: None,
            token: None,
            device_id: None,
            data_dir: None,
            collections: Vec::new(),
            namespace: Namespace::DEFAULT.to_owned(),
            reconnect_delay: Duration::from_secs(1),
            max_reconnect_attempts: Some(5),
            ws_retry_interval: Duration::from_secs(60),
            poll_wait_secs: 25,
            chunk_size: 500,
            device_name: "sync-client".to_owned(),
            platform: std::env::consts::OS.to_owned(),
            realtime: true,
            queue: QueueConfig::default(),
        }
    }
}

impl SyncClientBuilder {
    /// The server's HTTP address, `http://127.0.0.1:7700` (required); the
    /// WebSocket address is derived from it (`ws://.../ws`).
    pub fn server_url(mut self, url: impl Into<String>) -> Self {
        self.server_url = Some(url.into());
        self
    }

    /// The bearer token sent on every request and at the WebSocket upgrade.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// This device's id. Without it one is generated at the first start
    /// and kept in the data directory.
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }

    /// Where the local store and the offline queue live (required).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The collections this device syncs.
    pub fn collections<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.collections = names.into_iter().map(Into::into).collect();
        self
    }

    /// The namespace the collections live in (`default`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The first WebSocket reconnect delay; later ones double, with jitter
    /// (default 1 s).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// Reconnect attempts before the WebSocket gives up and HTTP polling
    /// carries on alone (default 5); `None` retries forever.
    pub fn max_reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_reconnect_attempts = attempts;
        self
    }

    /// After the WebSocket gave up, how long to poll over HTTP before a
    /// fresh WebSocket attempt (default 60 s).
    pub fn websocket_retry_interval(mut self, interval: Duration) -> Self {
        self.ws_retry_interval = interval;
        self
    }

    /// Seconds one HTTP long-poll waits for changes (default 25, at most 60).
    pub fn poll_wait_secs(mut self, secs: u64) -> Self {
        self.poll_wait_secs = secs.min(60);
        self
    }

    /// Operations per bulk-sync request over HTTP (default 500).
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size.clamp(1, 1_000);
        self
    }

    /// The name and platform the device registers with.
    pub fn device_info(mut self, name: impl Into<String>, platform: impl Into<String>) -> Self {
        self.device_name = name.into();
        self.platform = platform.into();
        self
    }

    /// Whether to use the WebSocket at all (default on); off syncs by HTTP
    /// polling only.
    pub fn realtime(mut self, enabled: bool) -> Self {
        self.realtime = enabled;
        self
    }

    /// The offline queue's limits and retry schedule.
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.queue = config;
        self
    }

    /// Opens the local store and the queue, and starts the background sync.
    /// Works offline: nothing here needs the server.
    pub async fn build(self) -> Result<SyncClient, Error> {
        let server_url = self
            .server_url
            .ok_or_else(|| Error::Config("server_url is required".into()))?;
        let data_dir = self
            .data_dir
            .ok_or_else(|| Error::Config("data_dir is required".into()))?;
        let namespace = Namespace::new(self.namespace)?;
        let collections = self
            .collections
            .into_iter()
            .map(CollectionName::new)
            .collect::<Result<Vec<_>, _>>()?;
        if collections.is_empty() {
            return Err(Error::Config("name at least one collection".into()));
        }
        std::fs::create_dir_all(&data_dir).map_err(|e| Error::Storage(e.to_string()))?;
        let queue_config = self.queue;
        let (local, queue) = {
            let data_dir = data_dir.clone();
            tokio::task::spawn_blocking(move || -> Result<(LocalStore, SledQueue), Error> {
                let local = LocalStore::open(&data_dir.join("local"))?;
                let queue = SledQueue::open(data_dir.join("queue"), queue_config)?;
                Ok((local, queue))
            })
            .await
            .map_err(|e| Error::Storage(e.to_string()))??
        };
        let device_id = match (self.device_id, local.meta("device_id")?) {
            (Some(id), _) => DeviceId::new(id)?,
            (None, Some(stored)) => DeviceId::new(stored)?,
            (None, None) => DeviceId::generate(),
        };
        local.set_meta("device_id", device_id.as_str())?;
        let settings = Settings {
            server_url,
            token: self.token,
            namespace,
            collections: collections.clone(),
            reconnect_delay: self.reconnect_delay,
            max_reconnect_attempts: self.max_reconnect_attempts,
            ws_retry_interval: self.ws_retry_interval,
            poll_wait_secs: self.poll_wait_secs,
            chunk_size: self.chunk_size,
            device_name: self.device_name,
            platform: self.platform,
            realtime: self.realtime,
        };
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            settings,
            device_id,
            local,
            queue,
            events,
            state: watch::Sender::new(ConnectionState::Disconnected),
            changed: collections
                .into_iter()
                .map(|name| (name, watch::Sender::new(0)))
                .collect(),
            wake: Notify::new(),
            on_conflict: RwLock::new(None),
            write_lock: Mutex::new(()),
            last_write_ms: AtomicU64::new(0),
        });
        let (commands, command_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(engine::run(Arc::clone(&shared), command_rx));
        Ok(SyncClient {
            shared,
            commands,
            task: Some(task),
        })
    }
}

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
    /// A builder with the defaults its settings name.
    pub fn builder() -> SyncClientBuilder {
        SyncClientBuilder::default()
    }

    /// One collection (`"todos"`).
    pub fn collection(&self, name: &str) -> Collection {
        Collection {
            shared: Arc::downgrade(&self.shared),
            name: CollectionName::new(name).map_err(|e| e.to_string()),
        }
    }

    /// The collection of an entity type.
    pub fn typed<T: SyncEntity>(&self) -> TypedCollection<T> {
        TypedCollection {
            inner: self.collection(T::COLLECTION),
            _type: std::marker::PhantomData,
        }
    }

    /// This device's id (stable across restarts).
    pub fn device_id(&self) -> &DeviceId {
        &self.shared.device_id
    }

    /// The background sync's events.
    pub fn events(&self) -> broadcast::Receiver<SyncEvent> {
        self.shared.events.subscribe()
    }

    /// The real-time connection's state (`disconnected`, `connecting`,
    /// `connected`, `reconnecting`, `error`).
    pub fn connection_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
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
    /// after a failure, or behind a failed one).
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

/// One collection of a [`SyncClient`]: optimistic reads and writes.
#[derive(Clone)]
pub struct Collection {
    /// Weak, so a collection handle kept by the application does not keep
    /// the store open after the client is closed.
    shared: Weak<Shared>,
    name: Result<CollectionName, String>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl Collection {
    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.shared.upgrade().ok_or(Error::Closed)
    }

    fn name_in(&self, shared: &Shared) -> Result<CollectionName, Error> {
        let name = self.name.as_ref().map_err(|e| Error::Invalid(e.clone()))?;
        if !shared.changed.contains_key(name) {
            return Err(Error::UnknownCollection(name.to_string()));
        }
        Ok(name.clone())
    }

    /// Saves a document and returns its id: the data's `"id"` when it has
    /// one, else a new UUIDv7. A new document is created; an existing one
    /// is updated with the fields that differ (delta only). Visible locally
    /// at once, queued durably before returning.
    pub async fn save(&self, mut data: JsonObject) -> Result<DocId, Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let (id, generated) = match data.remove("id") {
            Some(Value::String(id)) => (DocId::new(id)?, false),
            Some(other) => return Err(Error::Invalid(format!("id must be a string, not {other}"))),
            None => (DocId::generate(), true),
        };
        let _guard = shared.write_lock.lock().await;
        let current = shared.view(&name, id.as_str())?;
        if let Some((action, payload)) = logic::plan_save(current.as_ref(), data, generated) {
            enqueue(&shared, &name, action, &id, Some(payload)).await?;
        }
        Ok(id)
    }

    /// Changes some fields of a document (an RFC 7386 merge patch: `null`
    /// removes a field).
    pub async fn update(&self, id: &str, mut patch: JsonObject) -> Result<(), Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let id = DocId::new(id)?;
        patch.remove("id");
        let _guard = shared.write_lock.lock().await;
        if shared.view(&name, id.as_str())?.is_none() {
            return Err(Error::NotFound(id.to_string()));
        }
        if patch.is_empty() {
            return Ok(());
        }
        enqueue(&shared, &name, Action::Update, &id, Some(patch)).await
    }

    /// Deletes a document; nothing happens when it does not exist.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let id = DocId::new(id)?;
        let _guard = shared.write_lock.lock().await;
        if shared.view(&name, id.as_str())?.is_none() {
            return Ok(());
        }
        enqueue(&shared, &name, Action::Delete, &id, None).await
    }

    /// One document as the local view has it (with its `"id"`).
    pub async fn get(&self, id: &str) -> Result<Option<JsonObject>, Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        Ok(shared.view(&name, id)?.map(|data| logic::with_id(id, data)))
    }

    /// Every document of the collection, ordered by id.
    pub async fn list(&self) -> Result<Vec<JsonObject>, Error> {
        self.query().get().await
    }

    /// A query over the collection, to refine with `where_eq` and
    /// `order_by`.
    pub fn query(&self) -> Query {
        Query {
            collection: self.clone(),
            filter: Filter::all(),
            order: Vec::new(),
            limit: None,
        }
    }

    /// The documents whose `field` equals `value`.
    pub fn where_eq(&self, field: impl Into<String>, value: impl Into<Value>) -> Query {
        self.query().where_eq(field, value)
    }

    /// The whole collection, live: see [`Query::watch`].
    pub fn watch(&self) -> BoxStream<'static, Vec<JsonObject>> {
        self.query().watch()
    }
}

/// Queues one local write durably and tells the live queries and the
/// engine.
async fn enqueue(
    shared: &Shared,
    name: &CollectionName,
    action: Action,
    id: &DocId,
    data: Option<JsonObject>,
) -> Result<(), Error> {
    let ns = &shared.settings.namespace;
    let server = shared.local.server_doc(ns, name, id.as_str())?;
    let mut op = Operation::new(action);
    op.op_id = Some(OpId::generate());
    op.collection = Some(name.clone());
    op.namespace = Some(ns.clone());
    op.id = Some(id.clone());
    let previous = shared.last_write_ms.load(Ordering::SeqCst);
    let stamp = now_ms().max(previous + 1);
    shared.last_write_ms.store(stamp, Ordering::SeqCst);
    op.timestamp = Timestamp::from_millis(stamp);
    op.base_version = match action {
        Action::Create => None,
        _ => server
            .filter(|doc| !doc.deleted)
            .map(|doc| Version(doc.version)),
    };
    op.data = data;
    shared.queue.enqueue(op).await?;
    shared.touch(name);
    shared.wake.notify_one();
    Ok(())
}

/// A live query: field equalities, ordering, a limit.
#[derive(Debug, Clone)]
pub struct Query {
    collection: Collection,
    filter: Filter,
    order: Vec<(String, Order)>,
    limit: Option<usize>,
}

impl Query {
    /// Keeps the documents whose top-level `field` equals `value`.
    pub fn where_eq(mut self, field: impl Into<String>, value: impl Into<Value>) -> Query {
        self.filter = self.filter.and_equals(field, value);
        self
    }

    /// Orders by `field` (then by later `order_by`s, then by id).
    pub fn order_by(mut self, field: impl Into<String>, order: Order) -> Query {
        self.order.push((field.into(), order));
        self
    }

    /// At most `n` documents.
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }

    /// The current result.
    pub async fn get(&self) -> Result<Vec<JsonObject>, Error> {
        let shared = self.collection.shared()?;
        let name = self.collection.name_in(&shared)?;
        let docs = shared.view_all(&name)?;
        Ok(logic::run_query(
            docs,
            &self.filter,
            &self.order,
            self.limit,
        ))
    }

    /// The result now and after every change that alters it, local or
    /// remote. The stream ends when the client is closed or dropped; an
    /// unknown collection gives an empty stream.
    pub fn watch(self) -> BoxStream<'static, Vec<JsonObject>> {
        let Ok(shared) = self.collection.shared() else {
            return futures::stream::empty().boxed();
        };
        let Ok(name) = self.collection.name_in(&shared) else {
            return futures::stream::empty().boxed();
        };
        let Some(generations) = shared.changed.get(&name).map(watch::Sender::subscribe) else {
            return futures::stream::empty().boxed();
        };
        drop(shared);
        let state = (self, generations, None::<Vec<JsonObject>>);
        futures::stream::unfold(state, |(query, mut generations, last)| async move {
            loop {
                if last.is_some() && generations.changed().await.is_err() {
                    return None;
                }
                generations.borrow_and_update();
                let result = match query.get().await {
                    Ok(result) => result,
                    Err(error) => {
                        tracing::warn!(%error, "live query failed");
                        last.as_ref()?;
                        continue;
                    }
                };
                if last.as_ref() != Some(&result) {
                    return Some((result.clone(), (query, generations, Some(result))));
                }
            }
        })
        .boxed()
    }
}

/// A collection read and written as values of an entity type.
pub struct TypedCollection<T> {
    inner: Collection,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: SyncEntity> TypedCollection<T> {
    /// Saves `value` (as [`Collection::save`]); `id` names the document, or
    /// `None` generates one.
    pub async fn save(&self, id: Option<&str>, value: &T) -> Result<DocId, Error> {
        let mut data = value.to_data()?;
        match id {
            Some(id) => {
                data.insert("id".to_owned(), Value::String(id.to_owned()));
            }
            None => {
                data.remove("id");
            }
        }
        self.inner.save(data).await
    }

    /// One value.
    pub async fn get(&self, id: &str) -> Result<Option<T>, Error> {
        match self.inner.get(id).await? {
            Some(mut data) => {
                data.remove("id");
                Ok(Some(T::from_data(&data)?))
            }
            None => Ok(None),
        }
    }

    /// Every value with its id, ordered by id.
    pub async fn list(&self) -> Result<Vec<(String, T)>, Error> {
        self.inner
            .list()
            .await?
            .into_iter()
            .map(entity_of)
            .collect()
    }

    /// Deletes a value.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.inner.delete(id).await
    }

    /// The values with their ids, live (see [`Query::watch`]); documents
    /// that do not read as `T` are skipped.
    pub fn watch(&self) -> BoxStream<'static, Vec<(String, T)>> {
        self.inner
            .watch()
            .map(|docs| {
                docs.into_iter()
                    .filter_map(|doc| entity_of(doc).ok())
                    .collect()
            })
            .boxed()
    }
}

fn entity_of<T: SyncEntity>(mut data: JsonObject) -> Result<(String, T), Error> {
    let id = match data.remove("id") {
        Some(Value::String(id)) => id,
        _ => String::new(),
    };
    Ok((id, T::from_data(&data)?))
}
