//! `GET /ws` (and `/v1/ws`): the WebSocket protocol of `docs/protocol.md`.
//!
//! Each connection has a reader (this task: parses messages, starts
//! subscriptions), a write pipeline that applies the connection's writes
//! in order, each batch of them in one group commit, and a writer task that
//! drains the connection's send queue and writes every frame waiting into
//! one socket flush, sends heartbeat pings, and closes connections that
//! stopped answering, whose token expired, or that the server is shutting
//! down. For a device that declared a `bandwidthLimit` the writer paces
//! every frame to it (`pacing`): catch-up, live changes and answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use sync_core::{Action, CloseCode, Cursor, DeviceId, OpId, OpStatus, Operation};
use sync_realtime::{Ack, ClientMessage, ErrorMessage, ServerMessage, WriteMessage};
use tokio::sync::mpsc;

use crate::api::QueryPairs;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metrics::{Door, MessageKind};
use crate::realtime::{Connection, Outbound, SubscribeRequest};
use crate::state::{AppState, SyncRequestInfo, Transport};
use sync_engine::{BatchContext, SyncPoint};

/// The chunk a connection's socket is read in: messages are small, and an
/// idle connection keeps its read buffer (a larger message is read whole
/// once its header is in).
const READ_BUFFER_BYTES: usize = 512;

/// Frames the writer puts into one socket flush at most.
const WRITE_BATCH_MAX: usize = 256;

/// Write messages of one connection applied as one batch at most.
const WRITE_BATCH_OPS_MAX: usize = 512;

/// The upgrade: checks the origin and the token (401 before upgrading).
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let origins = &state.settings().websocket_origins;
    if !origins.is_empty() {
        let origin = headers
            .get(axum::http::header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if let Some(origin) = origin
            && !origins
                .iter()
                .any(|allowed| allowed == origin || allowed == "*")
        {
            return Err(ApiError::Forbidden(format!(
                "origin {origin:?} is not allowed"
            )));
        }
    }
    let principal = state
        .auth()
        .authenticate_request(&headers, query.first("token"))?;
    let limits = state.limits();
    let connection = state
        .realtime()
        .connect(&principal.user, limits.connections_per_user_max)?;
    let message_max = limits.request_bytes_max;
    Ok(ws
        // One byte over the limit still arrives, so it can be refused with
        // 1009; anything larger is cut off by the codec.
        .max_message_size(message_max + 1)
        .max_frame_size(message_max + 1)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| run(state, socket, principal, connection)))
}

struct Session {
    state: AppState,
    principal: Principal,
    connection: Arc<Connection>,
    device: Option<DeviceId>,
    hello_cursor: Option<Cursor>,
    last_heard_ms: Arc<AtomicU64>,
    /// The write pipeline, started by the first write (an idle or
    /// read-only connection costs no pipeline).
    writes: Option<(mpsc::Sender<WriteRequest>, tokio::task::JoinHandle<()>)>,
}

/// The connection's life: starts its writer, then reads. Not an `async
/// fn`: an async function keeps its arguments' space in its future for as
/// long as it lives, and an idle connection is mostly that future, so the
/// socket is split and the session made before it.
fn run(
    state: AppState,
    socket: WebSocket,
    principal: Principal,
    connection: Arc<Connection>,
) -> impl std::future::Future<Output = ()> {
    state.metrics().connection(true);
    let (sink, stream) = socket.split();
    let now_ms = state.syncer().clock().now_millis();
    let last_heard_ms = Arc::new(AtomicU64::new(now_ms));
    let writer = tokio::spawn(write_loop(
        state.clone(),
        sink,
        Arc::clone(&connection),
        principal.expires_at,
        Arc::clone(&last_heard_ms),
    ));
    let session = Session {
        writes: None,
        state,
        principal,
        connection,
        device: None,
        hello_cursor: None,
        last_heard_ms,
    };
    read_loop(stream, session, writer)
}

/// Reads and handles the client's messages until the connection ends.
async fn read_loop(
    mut stream: futures::stream::SplitStream<WebSocket>,
    mut session: Session,
    writer: tokio::task::JoinHandle<()>,
) {
    let state = session.state.clone();
    let connection = Arc::clone(&session.connection);
    let idle = Duration::from_secs(state.limits().idle_timeout_secs.max(1));
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle, stream.next()) => next,
            () = state.shutting_down() => break,
        };
        let message = match next {
            Err(_) => {
                Box::pin(session.close(CloseCode::Normal, "idle timeout")).await;
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                if is_too_large(error) {
                    Box::pin(session.close(CloseCode::MessageTooBig, "message too large")).await;
                }
                break;
            }
            Ok(Some(Ok(message))) => message,
        };
        session.heard();
        if let Some(device) = &session.device {
            state
                .devices()
                .set_unacknowledged(device, connection.queued());
        }
        let keep_going = match message {
            // Boxed, as every await of this loop but its wait for the next
            // message: an idle connection carries the largest of them.
            Message::Text(text) => Box::pin(session.on_text(text.as_str())).await,
            Message::Binary(_) => {
                let refusal = ApiError::Invalid("binary frames are not supported".into());
                Box::pin(session.error(refusal, None)).await;
                true
            }
            Message::Ping(_) | Message::Pong(_) => true,
            Message::Close(_) => false,
        };
        if !keep_going {
            break;
        }
    }
    Box::pin(finish(state, session, connection, writer)).await;
}

/// Ends a connection whose reading has stopped: its subscriptions and
/// presence go, its writes already read are answered, and its writer
/// sends what is queued and stops.
async fn finish(
    state: AppState,
    mut session: Session,
    connection: Arc<Connection>,
    mut writer: tokio::task::JoinHandle<()>,
) {
    if state.is_shutting_down() {
        session
            .close(CloseCode::GoingAway, "server shutting down")
            .await;
    }
    state.realtime().disconnect(&connection);
    if let Some(device) = &session.device {
        state.devices().disconnected(device);
    }
    // Writes already read are still applied and answered.
    if let Some((requests, pipeline)) = session.writes.take() {
        drop(requests);
        let _ = pipeline.await;
    }
    drop(session);
    // The writer ends after what is queued; a client that stopped reading
    // does not hold the connection open.
    let ended = tokio::time::timeout(Duration::from_secs(1), connection.send(Outbound::End)).await;
    if ended.is_err()
        || tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    state.metrics().connection(false);
}

/// The metrics label of a client message: its `type`.
fn kind_of(message: &ClientMessage) -> MessageKind {
    match message {
        ClientMessage::Ping => MessageKind::Ping,
        ClientMessage::Hello { .. } => MessageKind::Hello,
        ClientMessage::Subscribe { .. } => MessageKind::Subscribe,
        ClientMessage::Unsubscribe { .. } => MessageKind::Unsubscribe,
        ClientMessage::Insert(_) => MessageKind::Insert,
        ClientMessage::Update(_) => MessageKind::Update,
        ClientMessage::Delete(_) => MessageKind::Delete,
    }
}

/// Whether a read failed on a message over the size limit.
fn is_too_large(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

impl Session {
    fn heard(&self) {
        self.last_heard_ms
            .store(self.state.syncer().clock().now_millis(), Ordering::Relaxed);
    }

    async fn send(&self, message: &ServerMessage) {
        self.connection.send_message(message).await;
    }

    async fn close(&self, code: CloseCode, reason: &'static str) {
        self.connection.send(Outbound::Close(code, reason)).await;
    }

    async fn error(&self, error: ApiError, op_id: Option<String>) {
        self.send(&ServerMessage::Error(ErrorMessage::from_body(
            error.body(),
            op_id,
        )))
        .await;
    }

    /// Handles one text message; `false` ends the connection.
    async fn on_text(&mut self, text: &str) -> bool {
        let limits = self.state.limits();
        if text.len() > limits.request_bytes_max {
            self.close(CloseCode::MessageTooBig, "message too large")
                .await;
            return false;
        }
        if let Err(error) = limits.check_depth(text.as_bytes()) {
            self.error(error, None).await;
            return true;
        }
        let message = match ClientMessage::from_json(text) {
            Ok(message) => message,
            Err(error) => {
                let op_id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("opId").and_then(|id| id.as_str()).map(str::to_owned));
                self.error(
                    ApiError::Invalid(format!("invalid message: {error}")),
                    op_id,
                )
                .await;
                return true;
            }
        };
        let kind = kind_of(&message);
        let started = Instant::now();
        let keep_going = self.handle(message).await;
        self.state.metrics().record_message(kind, started.elapsed());
        keep_going
    }

    /// Acts on one message; whether the connection stays open.
    async fn handle(&mut self, message: ClientMessage) -> bool {
        match message {
            ClientMessage::Ping => {
                self.send(&ServerMessage::Pong).await;
                true
            }
            ClientMessage::Hello {
                device_id, cursor, ..
            } => self.hello(device_id, cursor).await,
            ClientMessage::Subscribe {
                id,
                collection,
                branch,
                namespace,
                filter,
                cursor,
            } => {
                let collection = match &branch {
                    Some(branch) => collection.with_branch(branch),
                    None => collection,
                };
                let id = id.unwrap_or_else(|| collection.to_string());
                let request = SubscribeRequest {
                    id,
                    namespace: namespace.unwrap_or_default(),
                    collection,
                    filter: filter.unwrap_or_default(),
                    after: None,
                };
                if let Err(error) = self.subscribe(request, cursor).await {
                    self.error(error, None).await;
                }
                true
            }
            ClientMessage::Unsubscribe { id, collection } => {
                let ended = self.state.realtime().unsubscribe(
                    &self.connection,
                    id.as_deref(),
                    collection.as_ref(),
                );
                if ended.is_empty() {
                    self.error(ApiError::NotFound("no such subscription".into()), None)
                        .await;
                }
                for id in ended {
                    self.send(&ServerMessage::Unsubscribed { id }).await;
                }
                true
            }
            ClientMessage::Insert(write) => self.write(write, Action::Upsert).await,
            ClientMessage::Update(write) => self.write(write, Action::Update).await,
            ClientMessage::Delete(write) => self.write(write, Action::Delete).await,
        }
    }

    async fn hello(&mut self, device_id: Option<DeviceId>, cursor: Option<String>) -> bool {
        let store = self.state.syncer().store();
        if let Some(device) = device_id {
            let now = self.state.syncer().clock().now();
            if let Err(error) = self
                .state
                .devices()
                .seen(&self.principal, &device, now)
                .await
            {
                self.error(error, None).await;
                self.close(CloseCode::PolicyViolation, "device belongs to another user")
                    .await;
                return false;
            }
            if self.device.as_ref() != Some(&device) {
                if let Some(old) = self.device.take() {
                    self.state.devices().disconnected(&old);
                }
                self.state.devices().connected(&device);
                match self.state.devices().bandwidth(&device).await {
                    Ok(cell) => self.connection.set_bandwidth(Some(cell)),
                    Err(error) => {
                        self.connection.set_bandwidth(None);
                        tracing::warn!(%error, "the device's bandwidth could not be read");
                    }
                }
                self.device = Some(device);
            }
        }
        if let Some(cursor) = cursor {
            match Cursor::parse(&cursor) {
                Ok(cursor) => self.hello_cursor = Some(cursor),
                Err(error) => {
                    self.error(error.into(), None).await;
                    return true;
                }
            }
        }
        match store.head().await {
            Ok(head) => {
                self.send(&ServerMessage::Welcome {
                    server_time: self.state.syncer().clock().now(),
                    cursor: Cursor::new(store.log_id(), head),
                    heartbeat_secs: self.state.settings().heartbeat_secs,
                })
                .await;
            }
            Err(error) => self.error(error.into(), None).await,
        }
        true
    }

    async fn subscribe(
        &mut self,
        mut request: SubscribeRequest,
        cursor: Option<String>,
    ) -> Result<(), ApiError> {
        self.principal.check_read(&request.namespace)?;
        let limits = self.state.limits();
        let replaces = self.connection.has_subscription(&request.id);
        if !replaces
            && self.connection.subscription_count() >= limits.subscriptions_per_connection_max
        {
            return Err(ApiError::TooLarge {
                message: format!(
                    "at most {} subscriptions per connection",
                    limits.subscriptions_per_connection_max
                ),
                limit: limits.subscriptions_per_connection_max as u64,
            });
        }
        let cursor = match cursor {
            Some(text) => Some(Cursor::parse(&text)?),
            None => self.hello_cursor,
        };
        let hub = self.state.realtime();
        let metrics = self.state.metrics();
        match cursor {
            Some(cursor) if cursor.log() != self.state.syncer().store().log_id() => {
                hub.reset(&self.connection, request, metrics).await
            }
            Some(cursor) => {
                request.after = Some(cursor.seq());
                if let Some(device) = &self.device {
                    self.state.devices().synced_to(device, cursor.seq());
                }
                hub.subscribe(&self.connection, request, metrics).await
            }
            None => hub.subscribe(&self.connection, request, metrics).await,
        }
    }

    async fn write(&mut self, write: WriteMessage, action: Action) -> bool {
        let started = Instant::now();
        let collection = write.collection.clone();
        let mut op: Operation = write.into_operation(action);
        // An operation without an opId gets the one it would get over HTTP,
        // so the same write sent again through either door is a replay.
        let op_id = op.op_id.clone().unwrap_or_else(|| {
            sync_engine::derived_op_id(
                &self.principal.user,
                self.device.as_ref(),
                &op.namespace.clone().unwrap_or_default(),
                &collection,
                &op,
            )
        });
        op.op_id = Some(op_id.clone());
        let refused = self.state.admit(&SyncRequestInfo {
            principal: &self.principal,
            device_id: self.device.as_ref(),
            transport: Transport::WebSocket,
            request_id: None,
            operations: vec![&op],
        });
        if let Err(error) = refused {
            self.error(error, Some(op_id.to_string())).await;
            return true;
        }
        self.connection.wrote(&op_id);
        let request = WriteRequest {
            op,
            op_id,
            device: self.device.clone(),
            started,
        };
        // The pipeline applies writes in the order they came; a full
        // pipeline makes this connection's reader wait.
        let (requests, _) = self.writes.get_or_insert_with(|| {
            let (requests, receiver) = mpsc::channel(WRITE_BATCH_OPS_MAX);
            let pipeline = tokio::spawn(write_pipeline(
                self.state.clone(),
                self.principal.clone(),
                Arc::clone(&self.connection),
                receiver,
            ));
            (requests, pipeline)
        });
        requests.send(request).await.is_ok()
    }
}

/// A write on its way to the store.
struct WriteRequest {
    op: Operation,
    op_id: OpId,
    device: Option<DeviceId>,
    started: Instant,
}

/// Applies a connection's writes in order. Every write that arrived while
/// the previous batch was being committed goes into the next batch: one
/// `Syncer::apply`, one group commit, then the answers in order. A client
/// that sends without waiting for each ack therefore pays one flush per
/// batch instead of one per write.
///
/// A batch waits at the write gate as its most urgent write. While it
/// waits it still takes the writes that arrive (it has not gone to the
/// store yet), and a more urgent one raises the whole batch: a high write
/// sent behind a low one on the same connection does not wait as low, and
/// the connection's writes still go in the order they came.
async fn write_pipeline(
    state: AppState,
    principal: Principal,
    connection: Arc<Connection>,
    mut requests: mpsc::Receiver<WriteRequest>,
) {
    let log = state.syncer().store().log_id();
    let gate = state.write_gate_handle();
    // A write of another device than the batch's, kept for the next one.
    let mut carry: Option<WriteRequest> = None;
    loop {
        let first = match carry.take() {
            Some(first) => first,
            None => match requests.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut open = take_waiting(&mut batch, &mut requests, &mut carry);
        let mut priority = most_urgent(&batch);
        let mut entering = Box::pin(gate.enter(priority));
        let permit = loop {
            tokio::select! {
                biased;
                permit = &mut entering => break permit,
                next = requests.recv(), if open => {
                    match next {
                        Some(next) if next.device == batch[0].device => {
                            batch.push(next);
                            open = take_waiting(&mut batch, &mut requests, &mut carry);
                        }
                        Some(next) => {
                            carry = Some(next);
                            open = false;
                        }
                        None => open = false,
                    }
                    let now = most_urgent(&batch);
                    if now < priority {
                        priority = now;
                        entering = Box::pin(gate.enter(priority));
                    }
                }
            }
        };
        answer(&state, &principal, &connection, log, batch).await;
        drop(permit);
    }
}

/// Adds the writes already waiting to `batch`, up to its size; a write of
/// another device (a `hello` in between) goes to `carry` and ends the
/// batch. Whether more writes may still join.
fn take_waiting(
    batch: &mut Vec<WriteRequest>,
    requests: &mut mpsc::Receiver<WriteRequest>,
    carry: &mut Option<WriteRequest>,
) -> bool {
    while batch.len() < WRITE_BATCH_OPS_MAX {
        match requests.try_recv() {
            Ok(next) if next.device == batch[0].device => batch.push(next),
            Ok(next) => {
                *carry = Some(next);
                return false;
            }
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
    false
}

/// The priority a batch waits as: its most urgent write's.
fn most_urgent(batch: &[WriteRequest]) -> sync_core::Priority {
    batch
        .iter()
        .map(|request| request.op.priority)
        .min()
        .unwrap_or_default()
}

/// Applies one batch (its write permit held by the caller) and sends each
/// write its answer.
async fn answer(
    state: &AppState,
    principal: &Principal,
    connection: &Connection,
    log: sync_core::LogId,
    batch: Vec<WriteRequest>,
) {
    let Some(device) = batch.first().map(|request| request.device.clone()) else {
        return;
    };
    let context = BatchContext {
        caller: principal,
        device_id: device,
        collection: None,
        strategy: None,
        sync_point: SyncPoint::None,
    };
    let (meta, operations): (Vec<(OpId, Instant)>, Vec<_>) = batch
        .into_iter()
        .map(|request| ((request.op_id, request.started), Ok(request.op)))
        .unzip();
    let reports = match state.syncer().apply(&context, operations).await {
        Ok(reports) => reports,
        Err(error) => {
            let body = error.body();
            for (op_id, started) in meta {
                state
                    .metrics()
                    .record_sync(Door::WebSocket, started.elapsed(), false);
                let message = ServerMessage::Error(ErrorMessage::from_body(
                    body.clone(),
                    Some(op_id.to_string()),
                ));
                connection.send_message(&message).await;
            }
            return;
        }
    };
    for ((op_id, started), report) in meta.into_iter().zip(reports) {
        let result = report.result;
        state.metrics().record_sync(
            Door::WebSocket,
            started.elapsed(),
            result.status != OpStatus::Error,
        );
        let message = message_for(op_id, result, report.conflict, log);
        connection.send_message(&message).await;
    }
}

/// The writer: sends what the connection's queue holds until the
/// connection ends.
async fn write_loop(
    state: AppState,
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    connection: Arc<Connection>,
    expires_at: Option<u64>,
    last_heard_ms: Arc<AtomicU64>,
) {
    let _ended = WriterEnded(&connection);
    let connection = &*connection;
    let heartbeat = Duration::from_secs(state.settings().heartbeat_secs.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut beats = Heartbeat {
        clock: Arc::clone(state.syncer().clock()),
        expires_at,
        last_heard_ms,
        unanswered: 0,
        last_ping_ms: 0,
    };
    let mut pacing = Pacing {
        started: tokio::time::Instant::now(),
        pacer: None,
    };
    loop {
        let first = tokio::select! {
            outbound = connection.next_outbound() => Some(outbound),
            () = connection.resync_ready() => None,
            _ = ticker.tick() => {
                if !beats.tick(&mut sink).await {
                    return;
                }
                continue;
            }
        };
        let mut pending = first;
        let mut written = 0;
        loop {
            match pending.take() {
                Some(Outbound::Frame(frame)) => {
                    if !pacing
                        .before(frame.len(), connection, &mut sink, &mut ticker, &mut beats)
                        .await
                        || sink.feed(Message::Text(frame)).await.is_err()
                    {
                        return;
                    }
                    written += 1;
                }
                Some(Outbound::End) => return,
                Some(Outbound::Close(code, reason)) => {
                    let _ = sink.flush().await;
                    let _ = close(&mut sink, code, reason).await;
                    return;
                }
                None => {}
            }
            if written >= WRITE_BATCH_MAX {
                if sink.flush().await.is_err() {
                    return;
                }
                written = 0;
            }
            match connection.try_next_outbound() {
                Some(next) => pending = Some(next),
                None => break,
            }
        }
        // Resyncs go after every frame queued before them.
        for resync in connection.take_resyncs() {
            if !pacing
                .before(resync.len(), connection, &mut sink, &mut ticker, &mut beats)
                .await
                || sink.feed(Message::Text(resync)).await.is_err()
            {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Closes the connection's queue however its writer ends (returned, or
/// aborted by the reader), so no sender waits for room that never comes.
struct WriterEnded<'a>(&'a Connection);

impl Drop for WriterEnded<'_> {
    fn drop(&mut self) {
        self.0.writer_ended();
    }
}

/// The writer's heartbeat: a ping every tick, and the end of a connection
/// that left two unanswered or whose token expired.
struct Heartbeat {
    clock: Arc<dyn sync_core::Clock>,
    expires_at: Option<u64>,
    last_heard_ms: Arc<AtomicU64>,
    /// Pings sent since the client was last heard from.
    unanswered: u32,
    /// When the last one went out.
    last_ping_ms: u64,
}

impl Heartbeat {
    /// One tick; `false` when the connection is to end.
    async fn tick(&mut self, sink: &mut futures::stream::SplitSink<WebSocket, Message>) -> bool {
        let now_ms = self.clock.now_millis();
        if self.last_heard_ms.load(Ordering::Relaxed) >= self.last_ping_ms {
            self.unanswered = 0;
        }
        if self.unanswered >= 2 {
            let _ = close(sink, CloseCode::Normal, "missed heartbeats").await;
            return false;
        }
        if self.expires_at.is_some_and(|exp| exp <= now_ms / 1000) {
            let _ = close(sink, CloseCode::PolicyViolation, "token expired").await;
            return false;
        }
        if sink.send(Message::Ping(Default::default())).await.is_err() {
            return false;
        }
        self.unanswered += 1;
        self.last_ping_ms = now_ms;
        true
    }
}

/// The writer's pacing to the device's declared bandwidth (see `pacing`).
struct Pacing {
    /// Pacing runs on the monotonic clock: it measures a link, not a date.
    started: tokio::time::Instant,
    pacer: Option<crate::pacing::Pacer>,
}

impl Pacing {
    /// Waits until a frame of `bytes` may go to a device that declared a
    /// bandwidth, sending what is already fed and keeping the heartbeat
    /// meanwhile; `false` when the connection is to end.
    async fn before(
        &mut self,
        bytes: usize,
        connection: &Connection,
        sink: &mut futures::stream::SplitSink<WebSocket, Message>,
        ticker: &mut tokio::time::Interval,
        beats: &mut Heartbeat,
    ) -> bool {
        let Some(limit) = connection.bandwidth_limit() else {
            self.pacer = None;
            return true;
        };
        let now_ms = || self.started.elapsed().as_millis() as u64;
        let rate = limit.max(crate::pacing::RATE_MIN_BYTES_PER_SEC);
        if self.pacer.as_ref().is_none_or(|pacer| pacer.rate() != rate) {
            self.pacer = Some(crate::pacing::Pacer::new(rate, now_ms()));
        }
        loop {
            let Some(pacer) = self.pacer.as_mut() else {
                return true;
            };
            let wait_ms = pacer.wait_ms(bytes, now_ms());
            if wait_ms == 0 {
                return true;
            }
            if sink.flush().await.is_err() {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                _ = ticker.tick() => {
                    if !beats.tick(sink).await {
                        return false;
                    }
                }
            }
        }
    }
}

async fn close(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    code: CloseCode,
    reason: &'static str,
) -> Result<(), axum::Error> {
    sink.send(Message::Close(Some(CloseFrame {
        code: code.number(),
        reason: reason.into(),
    })))
    .await
}

/// The WebSocket answer to one applied write: `ack`, `conflict` (left
/// pending) or `error`, from the engine's report (its HTTP counterpart is
/// the report's result in the bulk-sync `results` list).
fn message_for(
    op_id: OpId,
    result: sync_core::OpResult,
    conflict: Option<sync_core::ConflictRecord>,
    log: sync_core::LogId,
) -> ServerMessage {
    match (result.status, conflict, result.error) {
        (OpStatus::Error, _, error) => {
            let error = error.unwrap_or_else(|| {
                sync_core::ErrorBody::new(sync_core::ErrorCode::Internal, "failed")
            });
            ServerMessage::Error(ErrorMessage::from_body(error, Some(op_id.to_string())))
        }
        (OpStatus::Conflict, Some(conflict), _) => ServerMessage::Conflict(Box::new(conflict)),
        (status, _, _) => ServerMessage::Ack(Ack {
            op_id,
            status,
            record_id: result.server_id.unwrap_or_else(sync_core::DocId::generate),
            version: result.version,
            seq: result.seq,
            cursor: result.seq.map(|seq| Cursor::new(log, seq)),
            data: result.data,
        }),
    }
}
