//! Fan-out: one task tails the durable change log and hands each change to
//! the subscriptions of its (namespace, collection), encoded once and
//! shared by every subscriber.
//!
//! A subscription first catches up (the changes after its cursor, or the
//! current documents as inserts) while the tailer buffers what arrives
//! live for it; the buffer is then drained past the catch-up's end and the
//! subscription goes live, so nothing is lost or sent twice in between.
//! Live changes go into each connection's bounded send queue without
//! waiting: a subscriber whose queue is full is dropped from the live
//! stream and told to `resync` from the last change it was given, never
//! silently skipped, and never slowing the other subscribers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use sync_core::store::ChangeFilter;
use sync_core::{
    Change, ChangeOp, Clock, CollectionName, Cursor, DocId, Filter, LogId, Namespace, OpId,
    RawChange, Seq, SyncStore, UserId, Version,
};
use sync_realtime::{ServerChange, ServerMessage};
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::send_queue::SendQueue;

/// Changes one catch-up read takes at a time.
const CATCH_UP_PAGE: usize = 1_000;
/// A catch-up page of at least this many changes is encoded on a blocking
/// thread, beside the reading and the writing; a short one (the usual
/// resume after a reconnect) is not worth the hop.
const ENCODE_APART_MIN: usize = 256;
/// Changes the tailer reads at a time.
const TAIL_PAGE: usize = 4_096;
/// Live changes buffered for a subscription while it catches up.
const CATCH_UP_BUFFER_MAX: usize = 100_000;
/// Recent opIds of a connection remembered to suppress their echo.
const OWN_OPS_MAX: usize = 4_096;

/// A frame for a connection's writer.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame.
    Frame(Utf8Bytes),
    /// Close the connection with this code and reason.
    Close(sync_core::CloseCode, &'static str),
    /// Stop writing (the reader has ended).
    End,
}

/// One change, encoded once for every subscriber; the two variants a
/// filtered subscription may need are encoded on first use.
#[derive(Debug)]
pub(crate) struct EncodedChange {
    change: ServerChange,
    op: ChangeOp,
    log: LogId,
    plain: Utf8Bytes,
    as_insert: OnceLock<Utf8Bytes>,
    leaving: OnceLock<Utf8Bytes>,
}

impl EncodedChange {
    fn new(change: Change, log: LogId) -> EncodedChange {
        let op = change.op;
        let change = ServerChange::from_change(change, log);
        EncodedChange {
            plain: change.message_json(op).into(),
            change,
            op,
            log,
            as_insert: OnceLock::new(),
            leaving: OnceLock::new(),
        }
    }

    /// The operation that caused the change.
    fn op_id(&self) -> Option<&OpId> {
        self.change.origin.as_ref().map(|origin| &origin.op_id)
    }

    /// The change arriving in a filtered subscription it starts to match.
    fn as_insert(&self) -> Utf8Bytes {
        self.as_insert
            .get_or_init(|| self.change.message_json(ChangeOp::Insert).into())
            .clone()
    }

    /// The change that makes a document leave a filtered subscription.
    fn leaving(&self) -> Utf8Bytes {
        if self.op == ChangeOp::Delete {
            return self.plain.clone();
        }
        self.leaving
            .get_or_init(|| {
                let mut change = self.change.clone();
                change.matches = Some(false);
                change.message_json(ChangeOp::Update).into()
            })
            .clone()
    }
}

/// A connection's side of the fan-out: its send queue, and the opIds it
/// wrote (whose changes it is not sent back).
#[derive(Debug)]
pub struct Connection {
    user: UserId,
    queue: SendQueue<Outbound>,
    resyncs: Mutex<Vec<Utf8Bytes>>,
    resync_ready: Notify,
    own_ops: Mutex<(HashSet<OpId>, VecDeque<OpId>)>,
    subscriptions: Mutex<HashMap<String, Arc<Subscription>>>,
    connections_by_user: Arc<Mutex<HashMap<UserId, usize>>>,
    /// The declared bandwidth of the connection's device (bytes/s, 0 for
    /// none), shared with the device registry so a new registration
    /// applies at once.
    bandwidth: Mutex<Option<Arc<AtomicU64>>>,
}

impl Drop for Connection {
    /// The user's connection count goes down however the connection ends,
    /// an upgrade that never completed included.
    fn drop(&mut self) {
        let mut counts = lock(&self.connections_by_user);
        if let Some(count) = counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

impl Connection {
    /// Queues a frame, waiting while the queue is full (answers and
    /// catch-up: the client's own reading paces them).
    pub async fn send(&self, outbound: Outbound) -> bool {
        self.queue.send(outbound).await
    }

    /// Queues a message.
    pub async fn send_message(&self, message: &ServerMessage) -> bool {
        self.send(Outbound::Frame(message.to_json().into())).await
    }

    fn try_send(&self, frame: Utf8Bytes) -> bool {
        self.queue.try_send(Outbound::Frame(frame))
    }

    /// The next frame for the writer, waiting for one.
    pub async fn next_outbound(&self) -> Outbound {
        self.queue.recv().await
    }

    /// The next frame for the writer, if one is waiting.
    pub fn try_next_outbound(&self) -> Option<Outbound> {
        self.queue.try_recv()
    }

    /// The writer has ended: what is sent from now on is refused, and
    /// senders waiting for room are let go.
    pub fn writer_ended(&self) {
        self.queue.close();
    }

    /// Frames waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Notes a write of this connection, so its change is not echoed.
    pub fn wrote(&self, op_id: &OpId) {
        let mut own = lock(&self.own_ops);
        if own.0.insert(op_id.clone()) {
            own.1.push_back(op_id.clone());
            if own.1.len() > OWN_OPS_MAX
                && let Some(oldest) = own.1.pop_front()
            {
                own.0.remove(&oldest);
            }
        }
    }

    fn is_own(&self, op_id: &OpId) -> bool {
        lock(&self.own_ops).0.contains(op_id)
    }

    /// Resync messages waiting to be written after the queued frames.
    pub fn take_resyncs(&self) -> Vec<Utf8Bytes> {
        std::mem::take(&mut *lock(&self.resyncs))
    }

    /// Resolves when resyncs are waiting.
    pub async fn resync_ready(&self) {
        self.resync_ready.notified().await;
    }

    /// Whether it holds a subscription named `id`.
    pub fn has_subscription(&self, id: &str) -> bool {
        lock(&self.subscriptions).contains_key(id)
    }

    /// How many subscriptions it holds.
    pub fn subscription_count(&self) -> usize {
        lock(&self.subscriptions).len()
    }

    /// Paces the connection to the bandwidth in `cell` (its device's), or
    /// not at all.
    pub fn set_bandwidth(&self, cell: Option<Arc<AtomicU64>>) {
        *lock(&self.bandwidth) = cell;
    }

    /// The bytes per second the connection is paced to, if any.
    pub fn bandwidth_limit(&self) -> Option<u64> {
        lock(&self.bandwidth)
            .as_ref()
            .map(|cell| cell.load(Ordering::Relaxed))
            .filter(|limit| *limit > 0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CatchingUp,
    Live,
    Dropped,
}

#[derive(Debug)]
struct SubState {
    mode: Mode,
    /// The last change given to the connection (or passed over).
    last_seq: Seq,
    buffer: Vec<Arc<EncodedChange>>,
    /// Filtered subscriptions: whether each document seen matches now.
    matching: HashMap<DocId, bool>,
    /// Without a cursor: the versions sent as current documents.
    sent_versions: HashMap<DocId, Version>,
    /// Resumed from a cursor: a document not seen yet may be on the
    /// client, so one that does not match is sent as leaving. Without a
    /// cursor the client holds exactly the documents it was sent.
    unseen_may_match: bool,
}

/// One subscription of one connection.
#[derive(Debug)]
pub(crate) struct Subscription {
    id: String,
    namespace: Namespace,
    collection: CollectionName,
    filter: Filter,
    connection: Arc<Connection>,
    state: Mutex<SubState>,
}

impl Subscription {
    /// The frame `change` becomes for this subscription, if any; updates
    /// what it knows of the document's matching.
    fn frame_for(&self, state: &mut SubState, change: &EncodedChange) -> Option<Utf8Bytes> {
        if self.filter.is_empty() {
            return Some(change.plain.clone());
        }
        let inner = &change.change;
        let now = inner
            .data
            .as_ref()
            .is_some_and(|data| self.filter.matches(data));
        let was = state
            .matching
            .insert(inner.record_id.clone(), now)
            .or((!state.unseen_may_match).then_some(false));
        match (was, now) {
            (Some(true), true) => Some(change.plain.clone()),
            (Some(false), true) | (None, true) => Some(match change.op {
                ChangeOp::Update => change.as_insert(),
                _ => change.plain.clone(),
            }),
            // Unknown before (resumed from a cursor): the client may hold it.
            (Some(true), false) | (None, false) => Some(change.leaving()),
            (Some(false), false) => None,
        }
    }

    /// Hands a live change to the connection at `now_ms`; drops the live
    /// stream with a `resync` when the connection's queue is full.
    fn deliver(
        &self,
        state: &mut SubState,
        change: &EncodedChange,
        now_ms: u64,
        metrics: &Metrics,
    ) {
        let inner = &change.change;
        if inner.seq <= state.last_seq || state.mode == Mode::Dropped {
            return;
        }
        if state
            .sent_versions
            .get(&inner.record_id)
            .is_some_and(|sent| inner.version <= *sent)
        {
            state.last_seq = inner.seq;
            return;
        }
        if change
            .op_id()
            .is_some_and(|op_id| self.connection.is_own(op_id))
        {
            // No echo: the writer has its ack. It still learns whether the
            // document matches, for its next change.
            let _ = self.frame_for(state, change);
            state.last_seq = inner.seq;
            return;
        }
        let Some(frame) = self.frame_for(state, change) else {
            state.last_seq = inner.seq;
            return;
        };
        if self.connection.try_send(frame) {
            state.last_seq = inner.seq;
            let committed_ms = inner.timestamp.physical_ms();
            metrics.record_delivery(Duration::from_millis(now_ms.saturating_sub(committed_ms)));
        } else {
            self.drop_live(state, change.log, metrics);
        }
    }

    fn drop_live(&self, state: &mut SubState, log: LogId, metrics: &Metrics) {
        state.mode = Mode::Dropped;
        state.buffer.clear();
        metrics.record_resync();
        let resync = ServerMessage::Resync {
            id: Some(self.id.clone()),
            cursor: Some(Cursor::new(log, state.last_seq)),
            reset: false,
        };
        lock(&self.connection.resyncs).push(resync.to_json().into());
        self.connection.resync_ready.notify_one();
    }
}

/// The frames of a catch-up page: encoded, or being encoded on a blocking
/// thread.
enum Frames {
    Ready(Vec<Utf8Bytes>),
    Pending(tokio::task::JoinHandle<Vec<Utf8Bytes>>),
}

impl Frames {
    /// Sends the frames once they are encoded.
    async fn send(self, subscription: &Subscription) -> Result<(), ApiError> {
        let frames = match self {
            Frames::Ready(frames) => frames,
            Frames::Pending(encoding) => encoding.await.map_err(|error| {
                ApiError::Internal(format!("encoding a catch-up page failed: {error}"))
            })?,
        };
        for frame in frames {
            subscription.connection.send(Outbound::Frame(frame)).await;
        }
        Ok(())
    }
}

/// The frames of changes read with their documents left as text.
fn encode_unread(changes: Vec<RawChange>, log: LogId) -> Vec<Utf8Bytes> {
    changes
        .into_iter()
        .map(|change| {
            let op = change.op;
            ServerChange::from_raw_change(change, log)
                .message_json(op)
                .into()
        })
        .collect()
}

type Key = (Namespace, CollectionName);

/// The fan-out of one server node.
pub struct Hub {
    store: Arc<dyn SyncStore>,
    clock: Arc<dyn Clock>,
    subscriptions: RwLock<HashMap<Key, Vec<Arc<Subscription>>>>,
    connections_by_user: Arc<Mutex<HashMap<UserId, usize>>>,
    queue_frames_max: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// What a subscription asks for.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// Its id.
    pub id: String,
    /// The namespace.
    pub namespace: Namespace,
    /// The collection.
    pub collection: CollectionName,
    /// Field equalities.
    pub filter: Filter,
    /// Resume after this seq; `None` sends the current documents first.
    pub after: Option<Seq>,
}

impl Hub {
    /// A hub over `store`, with send queues of `queue_frames_max` frames;
    /// `clock` times each push against its change's commit.
    pub fn new(store: Arc<dyn SyncStore>, clock: Arc<dyn Clock>, queue_frames_max: usize) -> Hub {
        Hub {
            store,
            clock,
            subscriptions: RwLock::new(HashMap::new()),
            connections_by_user: Arc::new(Mutex::new(HashMap::new())),
            queue_frames_max: queue_frames_max.max(16),
        }
    }

    /// Subscriptions on this node, of every connection.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    fn has_no_subscriptions(&self) -> bool {
        self.subscriptions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_empty()
    }

    /// Registers a connection of `user` (refused past `per_user_max`).
    pub fn connect(&self, user: &UserId, per_user_max: usize) -> Result<Arc<Connection>, ApiError> {
        {
            let mut counts = lock(&self.connections_by_user);
            let count = counts.entry(user.clone()).or_default();
            if *count >= per_user_max {
                return Err(ApiError::RateLimited {
                    retry_after_secs: 30,
                });
            }
            *count += 1;
        }
        Ok(Arc::new(Connection {
            user: user.clone(),
            queue: SendQueue::new(self.queue_frames_max),
            resyncs: Mutex::new(Vec::new()),
            resync_ready: Notify::new(),
            own_ops: Mutex::new((HashSet::new(), VecDeque::new())),
            subscriptions: Mutex::new(HashMap::new()),
            connections_by_user: Arc::clone(&self.connections_by_user),
            bandwidth: Mutex::new(None),
        }))
    }

    /// Removes a connection's subscriptions (its user's count goes down
    /// when the last handle to it is dropped).
    pub fn disconnect(&self, connection: &Arc<Connection>) {
        let subscriptions: Vec<Arc<Subscription>> = lock(&connection.subscriptions)
            .drain()
            .map(|(_, s)| s)
            .collect();
        for subscription in &subscriptions {
            self.unregister(subscription);
        }
    }

    fn unregister(&self, subscription: &Arc<Subscription>) {
        let key = (
            subscription.namespace.clone(),
            subscription.collection.clone(),
        );
        let mut all = self
            .subscriptions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(list) = all.get_mut(&key) {
            list.retain(|other| !Arc::ptr_eq(other, subscription));
            if list.is_empty() {
                all.remove(&key);
            }
        }
    }

    /// Ends the subscription `id` (or the subscriptions of `collection`) of
    /// `connection`; returns the ids ended.
    pub fn unsubscribe(
        &self,
        connection: &Arc<Connection>,
        id: Option<&str>,
        collection: Option<&CollectionName>,
    ) -> Vec<String> {
        let ended: Vec<Arc<Subscription>> = {
            let mut subscriptions = lock(&connection.subscriptions);
            let ids: Vec<String> = subscriptions
                .values()
                .filter(|s| {
                    id.is_some_and(|id| s.id == id)
                        || (id.is_none() && collection.is_some_and(|c| &s.collection == c))
                })
                .map(|s| s.id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| subscriptions.remove(id))
                .collect()
        };
        for subscription in &ended {
            self.unregister(subscription);
        }
        ended.into_iter().map(|s| s.id.clone()).collect()
    }

    /// Starts a subscription: registers it (live changes are buffered from
    /// now on), sends `subscribed`, catches up, drains the buffer and goes
    /// live. A subscription with the same id replaces the old one.
    pub async fn subscribe(
        &self,
        connection: &Arc<Connection>,
        request: SubscribeRequest,
        metrics: &Metrics,
    ) -> Result<(), ApiError> {
        self.unsubscribe(connection, Some(&request.id), None);
        let log = self.store.log_id();
        let subscription = Arc::new(Subscription {
            id: request.id.clone(),
            namespace: request.namespace.clone(),
            collection: request.collection.clone(),
            filter: request.filter.clone(),
            connection: Arc::clone(connection),
            state: Mutex::new(SubState {
                mode: Mode::CatchingUp,
                last_seq: Seq::ZERO,
                buffer: Vec::new(),
                matching: HashMap::new(),
                sent_versions: HashMap::new(),
                unseen_may_match: request.after.is_some(),
            }),
        });
        lock(&connection.subscriptions).insert(request.id.clone(), Arc::clone(&subscription));
        self.subscriptions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((request.namespace.clone(), request.collection.clone()))
            .or_default()
            .push(Arc::clone(&subscription));

        let caught_up = match request.after {
            Some(after) => self.catch_up_changes(&subscription, after).await?,
            None => self.catch_up_documents(&subscription).await?,
        };
        let mut state = lock(&subscription.state);
        if state.mode == Mode::Dropped {
            // The buffer overflowed while catching up: resume from there.
            state.last_seq = caught_up;
            state.mode = Mode::Live;
            subscription.drop_live(&mut state, log, metrics);
            return Ok(());
        }
        state.last_seq = state.last_seq.max(caught_up);
        state.mode = Mode::Live;
        let buffered = std::mem::take(&mut state.buffer);
        let now_ms = self.clock.now_millis();
        for change in &buffered {
            subscription.deliver(&mut state, change, now_ms, metrics);
        }
        Ok(())
    }

    async fn catch_up_changes(
        &self,
        subscription: &Arc<Subscription>,
        mut after: Seq,
    ) -> Result<Seq, ApiError> {
        let log = self.store.log_id();
        subscription
            .connection
            .send_message(&ServerMessage::Subscribed {
                id: subscription.id.clone(),
                cursor: Cursor::new(log, after),
            })
            .await;
        let filter = ChangeFilter {
            namespaces: Some([subscription.namespace.clone()].into()),
            collections: Some([subscription.collection.clone()].into()),
            skip_branches: true,
        };
        if subscription.filter.is_empty() {
            return self.catch_up_unread(subscription, &filter, after).await;
        }
        loop {
            let page = self
                .store
                .changes_after(after, &filter, CATCH_UP_PAGE)
                .await?;
            let encoded: Vec<EncodedChange> = page
                .changes
                .into_iter()
                .map(|change| EncodedChange::new(change, log))
                .collect();
            let frames: Vec<Utf8Bytes> = {
                let mut state = lock(&subscription.state);
                encoded
                    .iter()
                    .filter_map(|change| subscription.frame_for(&mut state, change))
                    .collect()
            };
            for frame in frames {
                subscription.connection.send(Outbound::Frame(frame)).await;
            }
            after = page.last_seq;
            if !page.has_more {
                return Ok(after);
            }
        }
    }

    /// The catch-up of a subscription without a filter: nothing to look
    /// for in the documents, so their stored text goes into the frames as
    /// it is. A long page is encoded on a blocking thread while the next is
    /// read and the one before is written, so the three use both cores.
    async fn catch_up_unread(
        &self,
        subscription: &Arc<Subscription>,
        filter: &ChangeFilter,
        mut after: Seq,
    ) -> Result<Seq, ApiError> {
        let log = self.store.log_id();
        let mut encoding: Option<Frames> = None;
        loop {
            let page = self
                .store
                .raw_changes_after(after, filter, CATCH_UP_PAGE)
                .await?;
            let changes = page.changes;
            let next = if changes.len() >= ENCODE_APART_MIN {
                Frames::Pending(tokio::task::spawn_blocking(move || {
                    encode_unread(changes, log)
                }))
            } else {
                Frames::Ready(encode_unread(changes, log))
            };
            if let Some(frames) = encoding.replace(next) {
                frames.send(subscription).await?;
            }
            after = page.last_seq;
            if !page.has_more {
                if let Some(frames) = encoding {
                    frames.send(subscription).await?;
                }
                return Ok(after);
            }
        }
    }

    async fn catch_up_documents(&self, subscription: &Arc<Subscription>) -> Result<Seq, ApiError> {
        let log = self.store.log_id();
        let head = self.store.head().await?;
        subscription
            .connection
            .send_message(&ServerMessage::Subscribed {
                id: subscription.id.clone(),
                cursor: Cursor::new(log, head),
            })
            .await;
        let mut after: Option<DocId> = None;
        loop {
            let page = self
                .store
                .list(
                    &subscription.namespace,
                    &subscription.collection,
                    &subscription.filter,
                    after.as_ref(),
                    CATCH_UP_PAGE,
                )
                .await?;
            for document in &page.documents {
                {
                    let mut state = lock(&subscription.state);
                    state
                        .sent_versions
                        .insert(document.id.clone(), document.version);
                    if !subscription.filter.is_empty() {
                        state.matching.insert(document.id.clone(), true);
                    }
                }
                let message = ServerMessage::Insert(ServerChange::from_document(document, log));
                subscription.connection.send_message(&message).await;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(head),
            }
        }
    }

    /// Sends `{"type": "resync", "reset": true}` and then the current
    /// documents, for a cursor of another log.
    pub async fn reset(
        &self,
        connection: &Arc<Connection>,
        request: SubscribeRequest,
        metrics: &Metrics,
    ) -> Result<(), ApiError> {
        connection
            .send_message(&ServerMessage::Resync {
                id: Some(request.id.clone()),
                cursor: None,
                reset: true,
            })
            .await;
        self.subscribe(
            connection,
            SubscribeRequest {
                after: None,
                ..request
            },
            metrics,
        )
        .await
    }

    fn dispatch(&self, change: Change, metrics: &Metrics) {
        let key = (change.namespace.clone(), change.collection.clone());
        let all = self
            .subscriptions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(subscribers) = all.get(&key) else {
            return;
        };
        let encoded = Arc::new(EncodedChange::new(change, self.store.log_id()));
        let now_ms = self.clock.now_millis();
        for subscription in subscribers {
            let mut state = lock(&subscription.state);
            match state.mode {
                Mode::Live => subscription.deliver(&mut state, &encoded, now_ms, metrics),
                Mode::CatchingUp => {
                    if state.buffer.len() >= CATCH_UP_BUFFER_MAX {
                        state.mode = Mode::Dropped;
                        state.buffer.clear();
                    } else {
                        state.buffer.push(Arc::clone(&encoded));
                    }
                }
                Mode::Dropped => {}
            }
        }
    }

    /// Tails the log after `from` and fans every change out, until
    /// `shutdown` resolves. `from` is the head read before the server
    /// accepted its first connection, so no change committed meanwhile is
    /// passed over.
    pub async fn run(
        self: Arc<Self>,
        from: Seq,
        metrics: Arc<Metrics>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut position = from;
        tokio::pin!(shutdown);
        loop {
            let head = tokio::select! {
                woken = self.store.wait_for_head(position) => match woken {
                    Ok(head) => head,
                    Err(error) => {
                        tracing::warn!(%error, "fan-out stopped waiting for the log");
                        return;
                    }
                },
                () = &mut shutdown => return,
            };
            // With no subscription the changes up to `head` concern no one:
            // a subscription registered from now on catches up from the
            // store, which already holds them.
            if self.has_no_subscriptions() {
                position = position.max(head);
                continue;
            }
            loop {
                let page = match self
                    .store
                    .changes_after(position, &ChangeFilter::default(), TAIL_PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        tracing::warn!(%error, "fan-out cannot read the log; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        break;
                    }
                };
                for change in page.changes {
                    self.dispatch(change, &metrics);
                }
                position = page.last_seq;
                if !page.has_more {
                    break;
                }
            }
        }
    }
}
