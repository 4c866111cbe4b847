//! The background task of a [`RealtimeClient`](super::RealtimeClient): it
//! owns the socket, connects and reconnects with backoff, re-sends the
//! subscriptions from their cursors, answers the handle's commands and
//! turns the server's messages into events and operation results.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sync_core::realtime::{RealTimeEvent, Subscription, TransportError};
use sync_core::{
    Action, Change, ChangeOp, ConnectionState, Cursor, DocId, ErrorBody, OpId, OpResult, OpStatus,
    Operation, Publisher, Seq,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

use super::{ClientConfig, Command, closed, tls};
use crate::{Backoff, ClientMessage, ServerChange, ServerMessage, WriteMessage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a graceful close waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// The task: connects, runs sessions, reconnects, and ends in
/// `disconnected` (closed) or `error` (gave up or refused).
pub(crate) async fn run(
    config: ClientConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<RealTimeEvent>,
    state: Publisher<ConnectionState>,
) {
    let backoff = Backoff::new(
        config.reconnect_delay,
        config.reconnect_delay_max,
        config.reconnect_attempts_max,
    );
    let mut driver = Driver {
        config,
        commands,
        events,
        state,
        backoff,
        subs: Vec::new(),
        closing: None,
        pending: HashMap::new(),
        controls: VecDeque::new(),
        pings_sent: 0,
        pongs_received: 0,
    };
    let end = driver.connect_loop().await;
    driver.set_state(end);
    if let Some(reply) = driver.closing.take() {
        let _ = reply.send(());
    }
}

/// Why the connection is not open (any more).
enum ConnectError {
    /// Worth another attempt.
    Retry(String),
    /// Retrying will not help (refused credentials, bad address).
    Fatal(String),
}

/// How a session ended.
enum End {
    /// Closed by the handle.
    Closed,
    /// Refused by the server (close 1008).
    Fatal,
    /// Lost; `welcomed` tells whether it had got as far as `welcome`.
    Dropped { welcomed: bool },
}

/// What woke the session up.
enum Wake {
    Frame(Option<Result<Message, tungstenite::Error>>),
    Command(Option<Command>),
    Silent,
}

/// A snapshot (the current documents sent as inserts) in progress.
struct Snapshot {
    /// The `ping` whose `pong` follows the last document.
    ping: u64,
    /// The documents delivered so far.
    seen: HashSet<DocId>,
}

/// An active subscription and where its stream stands.
struct Sub {
    id: String,
    request: Subscription,
    /// Where to resume: the cursor of the last change delivered, or the one
    /// `subscribed` gave.
    cursor: Option<Cursor>,
    /// The last `seq` delivered; changes at or below it are duplicates.
    last_seq: Seq,
    snapshot: Option<Snapshot>,
}

impl Sub {
    /// The cursor to subscribe from: none while a snapshot is unfinished
    /// (it starts again), otherwise the last position.
    fn resume_cursor(&self) -> Option<Cursor> {
        if self.snapshot.is_some() {
            None
        } else {
            self.cursor
        }
    }

    fn wants(&self, change: &ServerChange) -> bool {
        self.request.namespace == change.namespace
            && self.request.collection == change.collection
            && (self.request.filter.is_empty()
                || change.matches == Some(false)
                || change
                    .data
                    .as_ref()
                    .is_none_or(|data| self.request.filter.matches(data)))
    }
}

/// A request waiting for the server's answer, in the order sent.
enum Control {
    Subscribe {
        id: String,
        reply: oneshot::Sender<Result<String, TransportError>>,
    },
    Unsubscribe {
        id: String,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
}

/// A write waiting for its `ack`, `conflict` or `error`.
struct PendingSend {
    op: Box<Operation>,
    reply: oneshot::Sender<Result<OpResult, TransportError>>,
}

struct Driver {
    config: ClientConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<RealTimeEvent>,
    state: Publisher<ConnectionState>,
    backoff: Backoff,
    subs: Vec<Sub>,
    closing: Option<oneshot::Sender<()>>,
    pending: HashMap<OpId, PendingSend>,
    controls: VecDeque<Control>,
    pings_sent: u64,
    pongs_received: u64,
}

impl Driver {
    fn set_state(&self, state: ConnectionState) {
        self.state.set(state);
    }

    async fn connect_loop(&mut self) -> ConnectionState {
        let mut first = true;
        loop {
            self.set_state(if first {
                ConnectionState::Connecting
            } else {
                ConnectionState::Reconnecting
            });
            first = false;
            let opening = open(
                self.config.url.clone(),
                self.config.token.clone(),
                self.config.root_certificates.clone(),
                self.config.request_timeout,
            );
            match self.offline(opening).await {
                None => return ConnectionState::Disconnected,
                Some(Ok(socket)) => match self.session(socket).await {
                    End::Closed => return ConnectionState::Disconnected,
                    End::Fatal => return ConnectionState::Error,
                    End::Dropped { welcomed } => {
                        if welcomed {
                            self.backoff.reset();
                        }
                    }
                },
                Some(Err(ConnectError::Fatal(reason))) => {
                    tracing::warn!(%reason, "real-time connection refused; giving up");
                    return ConnectionState::Error;
                }
                Some(Err(ConnectError::Retry(reason))) => {
                    tracing::debug!(%reason, "real-time connection failed");
                }
            }
            let Some(delay) = self.backoff.next_delay() else {
                tracing::warn!(
                    attempts = self.backoff.attempts(),
                    "real-time reconnect attempts exhausted"
                );
                return ConnectionState::Error;
            };
            self.set_state(ConnectionState::Reconnecting);
            if self.offline(tokio::time::sleep(delay)).await.is_none() {
                return ConnectionState::Disconnected;
            }
        }
    }

    /// Waits for `work` while answering commands as a disconnected client
    /// does; `None` when the handle closed meanwhile.
    async fn offline<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(work);
        loop {
            let command = tokio::select! {
                out = &mut work => return Some(out),
                command = self.commands.recv() => command,
            };
            match command {
                None => return None,
                Some(Command::Close { reply }) => {
                    self.closing = Some(reply);
                    return None;
                }
                Some(Command::Send { op, reply }) => {
                    let _ = reply.send(Err(closed(*op)));
                }
                Some(Command::Subscribe {
                    subscription,
                    reply,
                }) => {
                    let id = self.register(subscription);
                    let _ = reply.send(Ok(id));
                }
                Some(Command::Unsubscribe { id, reply }) => {
                    self.subs.retain(|sub| sub.id != id);
                    let _ = reply.send(Ok(()));
                }
            }
        }
    }

    /// Adds (or replaces) a subscription; returns its id.
    fn register(&mut self, subscription: Subscription) -> String {
        let id = subscription
            .id
            .clone()
            .unwrap_or_else(|| subscription.collection.to_string());
        let sub = Sub {
            id: id.clone(),
            cursor: subscription.cursor,
            last_seq: subscription.cursor.map_or(Seq::ZERO, Cursor::seq),
            snapshot: None,
            request: subscription,
        };
        match self.subs.iter_mut().find(|old| old.id == id) {
            Some(old) => *old = sub,
            None => self.subs.push(sub),
        }
        id
    }

    async fn session(&mut self, mut socket: Socket) -> End {
        self.pings_sent = 0;
        self.pongs_received = 0;
        let end = self.session_loop(&mut socket).await;
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(closed(*pending.op)));
        }
        for control in self.controls.drain(..) {
            // The subscription stays registered and is sent again on the
            // next connection; an unsubscribe already took effect locally.
            match control {
                Control::Subscribe { id, reply } => {
                    let _ = reply.send(Ok(id));
                }
                Control::Unsubscribe { reply, .. } => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        end
    }

    async fn session_loop(&mut self, socket: &mut Socket) -> End {
        let hello = ClientMessage::Hello {
            device_id: Some(self.config.device_id.clone()),
            cursor: self.config.hello_cursor.map(|cursor| cursor.to_string()),
            client: Some(serde_json::json!({
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
            })),
        };
        if write(socket, &hello).await.is_err() {
            return End::Dropped { welcomed: false };
        }
        let mut restarted = false;
        for index in 0..self.subs.len() {
            let sub = &mut self.subs[index];
            if sub.snapshot.as_ref().is_some_and(|s| !s.seen.is_empty()) {
                restarted = true;
            }
            let message = subscribe_message(sub, sub.resume_cursor());
            if sub.resume_cursor().is_none() {
                sub.snapshot = Some(Snapshot {
                    ping: self.pings_sent + 1,
                    seen: HashSet::new(),
                });
            }
            if write(socket, &message).await.is_err() {
                return End::Dropped { welcomed: false };
            }
        }
        if restarted {
            // An unfinished snapshot starts again: the copy is replaced.
            self.emit(RealTimeEvent::Resync {
                cursor: None,
                reset: true,
            })
            .await;
        }
        if self.snapshot_pending() && self.ping(socket).await.is_err() {
            return End::Dropped { welcomed: false };
        }

        let mut welcomed = false;
        let heartbeat = self.config.heartbeat_timeout;
        let silent = tokio::time::sleep(heartbeat);
        tokio::pin!(silent);
        loop {
            let wake = tokio::select! {
                frame = socket.next() => Wake::Frame(frame),
                command = self.commands.recv() => Wake::Command(command),
                () = &mut silent => Wake::Silent,
            };
            match wake {
                Wake::Silent => {
                    tracing::debug!(?heartbeat, "no frame from the server; reconnecting");
                    return End::Dropped { welcomed };
                }
                Wake::Frame(None) | Wake::Frame(Some(Err(_))) => return End::Dropped { welcomed },
                Wake::Frame(Some(Ok(frame))) => {
                    silent
                        .as_mut()
                        .reset(tokio::time::Instant::now() + heartbeat);
                    match frame {
                        Message::Text(text) => {
                            let message = match serde_json::from_str::<ServerMessage>(&text) {
                                Ok(message) => message,
                                Err(error) => {
                                    tracing::warn!(%error, "unreadable server message");
                                    continue;
                                }
                            };
                            if matches!(message, ServerMessage::Welcome { .. }) {
                                welcomed = true;
                                self.backoff.reset();
                                self.set_state(ConnectionState::Connected);
                                continue;
                            }
                            if self.on_message(socket, message).await.is_err() {
                                return End::Dropped { welcomed };
                            }
                        }
                        Message::Close(frame) => {
                            let code = frame.as_ref().map(|f| f.code);
                            if code == Some(CloseCode::Policy) {
                                tracing::warn!(?frame, "server refused the connection");
                                return End::Fatal;
                            }
                            return End::Dropped { welcomed };
                        }
                        Message::Binary(_)
                        | Message::Ping(_)
                        | Message::Pong(_)
                        | Message::Frame(_) => {}
                    }
                }
                Wake::Command(None) => {
                    shut(socket).await;
                    return End::Closed;
                }
                Wake::Command(Some(Command::Close { reply })) => {
                    self.closing = Some(reply);
                    shut(socket).await;
                    return End::Closed;
                }
                Wake::Command(Some(command)) => {
                    if self.on_command(socket, command, welcomed).await.is_err() {
                        return End::Dropped { welcomed };
                    }
                }
            }
        }
    }

    fn snapshot_pending(&self) -> bool {
        self.subs.iter().any(|sub| {
            sub.snapshot
                .as_ref()
                .is_some_and(|s| s.ping > self.pings_sent)
        })
    }

    async fn ping(&mut self, socket: &mut Socket) -> Result<(), tungstenite::Error> {
        self.pings_sent += 1;
        write(socket, &ClientMessage::Ping).await
    }

    async fn emit(&self, event: RealTimeEvent) {
        // A handle that went away no longer reads; nothing to do then.
        let _ = self.events.send(event).await;
    }

    async fn on_command(
        &mut self,
        socket: &mut Socket,
        command: Command,
        welcomed: bool,
    ) -> Result<(), tungstenite::Error> {
        match command {
            Command::Close { .. } => Ok(()),
            Command::Send { op, reply } => {
                if !welcomed {
                    let _ = reply.send(Err(closed(*op)));
                    return Ok(());
                }
                let message = match write_message(&op) {
                    Ok(message) => message,
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        return Ok(());
                    }
                };
                let op_id = op.op_id.clone().unwrap_or_else(OpId::generate);
                if let Err(error) = write(socket, &message).await {
                    let _ = reply.send(Err(closed(*op)));
                    return Err(error);
                }
                self.pending.insert(op_id, PendingSend { op, reply });
                Ok(())
            }
            Command::Subscribe {
                subscription,
                reply,
            } => {
                let id = self.register(subscription);
                let Some(index) = self.subs.iter().position(|sub| sub.id == id) else {
                    let _ = reply.send(Ok(id));
                    return Ok(());
                };
                let cursor = self.subs[index].resume_cursor();
                let message = subscribe_message(&self.subs[index], cursor);
                if cursor.is_none() {
                    self.subs[index].snapshot = Some(Snapshot {
                        ping: self.pings_sent + 1,
                        seen: HashSet::new(),
                    });
                }
                self.controls.push_back(Control::Subscribe { id, reply });
                write(socket, &message).await?;
                if cursor.is_none() {
                    self.ping(socket).await?;
                }
                Ok(())
            }
            Command::Unsubscribe { id, reply } => {
                self.subs.retain(|sub| sub.id != id);
                let message = ClientMessage::Unsubscribe {
                    id: Some(id.clone()),
                    collection: None,
                };
                self.controls.push_back(Control::Unsubscribe { id, reply });
                write(socket, &message).await
            }
        }
    }

    async fn on_message(
        &mut self,
        socket: &mut Socket,
        message: ServerMessage,
    ) -> Result<(), tungstenite::Error> {
        match message {
            ServerMessage::Welcome { .. } => {}
            ServerMessage::Subscribed { id, cursor } => {
                if let Some(sub) = self.subs.iter_mut().find(|sub| sub.id == id) {
                    if sub.snapshot.is_some() {
                        sub.last_seq = cursor.seq();
                        sub.cursor = Some(cursor);
                    } else if sub.last_seq < cursor.seq() || sub.cursor.is_none() {
                        sub.last_seq = sub.last_seq.max(cursor.seq());
                        sub.cursor = Some(cursor);
                    }
                }
                self.answer_subscribe(&id, Ok(id.clone()));
            }
            ServerMessage::Unsubscribed { id } => {
                let position = self.controls.iter().position(
                    |control| matches!(control, Control::Unsubscribe { id: wanted, .. } if *wanted == id),
                );
                if let Some(Control::Unsubscribe { reply, .. }) =
                    position.and_then(|at| self.controls.remove(at))
                {
                    let _ = reply.send(Ok(()));
                }
            }
            ServerMessage::Insert(change) => self.on_change(change, ChangeOp::Insert).await,
            ServerMessage::Update(change) => self.on_change(change, ChangeOp::Update).await,
            ServerMessage::Delete(change) => self.on_change(change, ChangeOp::Delete).await,
            ServerMessage::Ack(ack) => {
                if let Some(pending) = self.pending.remove(&ack.op_id) {
                    let mut result = OpResult::new(pending.op.action, ack.status);
                    result.op_id = Some(ack.op_id);
                    result.local_id = pending.op.local_id.clone();
                    result.server_id = Some(ack.record_id);
                    result.version = ack.version;
                    result.seq = ack.seq;
                    result.data = ack.data;
                    let _ = pending.reply.send(Ok(result));
                }
            }
            ServerMessage::Conflict(conflict) => {
                if let Some(pending) = self.pending.remove(&conflict.op_id) {
                    let mut result = OpResult::new(pending.op.action, OpStatus::Conflict);
                    result.op_id = Some(conflict.op_id.clone());
                    result.local_id = pending.op.local_id.clone();
                    result.server_id = Some(conflict.server_id.clone());
                    result.conflict_id = Some(conflict.id.clone());
                    result.strategy = Some(conflict.strategy);
                    result.conflict_data = Some(conflict.conflict_data.clone());
                    let _ = pending.reply.send(Ok(result));
                }
            }
            ServerMessage::Error(error) => {
                let body = ErrorBody {
                    code: error.code,
                    message: error.message,
                    details: error.details,
                };
                let pending = error
                    .op_id
                    .as_deref()
                    .and_then(|id| id.parse::<OpId>().ok())
                    .and_then(|id| self.pending.remove(&id));
                match pending {
                    Some(pending) => {
                        let _ = pending.reply.send(Err(TransportError::Rejected(body)));
                    }
                    None if error.op_id.is_none() => match self.controls.pop_front() {
                        Some(Control::Subscribe { id, reply }) => {
                            self.subs.retain(|sub| sub.id != id);
                            let _ = reply.send(Err(TransportError::Rejected(body)));
                        }
                        Some(Control::Unsubscribe { reply, .. }) => {
                            let _ = reply.send(Err(TransportError::Rejected(body)));
                        }
                        None => tracing::warn!(code = %body.code, message = %body.message,
                                               "server error"),
                    },
                    None => {}
                }
            }
            ServerMessage::Resync { id, cursor, reset } => {
                return self.on_resync(socket, id, cursor, reset).await;
            }
            ServerMessage::Pong => {
                self.pongs_received += 1;
                let done = self.pongs_received;
                for sub in &mut self.subs {
                    if sub.snapshot.as_ref().is_some_and(|s| s.ping <= done) {
                        sub.snapshot = None;
                    }
                }
            }
        }
        Ok(())
    }

    fn answer_subscribe(&mut self, id: &str, answer: Result<String, TransportError>) {
        let position = self.controls.iter().position(
            |control| matches!(control, Control::Subscribe { id: wanted, .. } if wanted == id),
        );
        if let Some(Control::Subscribe { reply, .. }) =
            position.and_then(|at| self.controls.remove(at))
        {
            let _ = reply.send(answer);
        }
    }

    async fn on_resync(
        &mut self,
        socket: &mut Socket,
        id: Option<String>,
        cursor: Option<Cursor>,
        reset: bool,
    ) -> Result<(), tungstenite::Error> {
        let concerned = |sub: &Sub| id.as_ref().is_none_or(|id| *id == sub.id);
        if reset {
            // The server sends `subscribed` and the current documents next.
            let ping = self.pings_sent + 1;
            for sub in self.subs.iter_mut().filter(|sub| concerned(sub)) {
                sub.cursor = None;
                sub.last_seq = Seq::ZERO;
                sub.snapshot = Some(Snapshot {
                    ping,
                    seen: HashSet::new(),
                });
            }
            self.emit(RealTimeEvent::Resync {
                cursor: None,
                reset: true,
            })
            .await;
            return self.ping(socket).await;
        }
        let mut messages = Vec::new();
        for sub in self.subs.iter_mut().filter(|sub| concerned(sub)) {
            // Everything queued before the resync has arrived: a snapshot in
            // progress is complete.
            sub.snapshot = None;
            let from = sub.cursor.or(cursor);
            messages.push(subscribe_message(sub, from));
        }
        for message in &messages {
            write(socket, message).await?;
        }
        Ok(())
    }

    async fn on_change(&mut self, change: ServerChange, op: ChangeOp) {
        let snapshot_target = if change.origin.is_none() {
            self.subs.iter().position(|sub| {
                sub.snapshot
                    .as_ref()
                    .is_some_and(|s| !s.seen.contains(&change.record_id))
                    && sub.wants(&change)
            })
        } else {
            None
        };
        let target = match snapshot_target {
            Some(index) => {
                if let Some(snapshot) = self.subs[index].snapshot.as_mut() {
                    snapshot.seen.insert(change.record_id.clone());
                }
                index
            }
            None => {
                let Some(index) = self
                    .subs
                    .iter()
                    .position(|sub| change.seq > sub.last_seq && sub.wants(&change))
                else {
                    tracing::trace!(seq = %change.seq, "duplicate change dropped");
                    return;
                };
                let sub = &mut self.subs[index];
                sub.last_seq = change.seq;
                sub.cursor = Some(change.cursor);
                index
            }
        };
        let subscription = self.subs[target].id.clone();
        let matches = change.matches.unwrap_or(true);
        self.emit(RealTimeEvent::Change {
            subscription,
            change: Box::new(to_change(change, op)),
            matches,
        })
        .await;
    }
}

/// Opens the socket, with the token as `Authorization: Bearer`.
async fn open(
    url: String,
    token: Option<String>,
    root_certificates: Vec<tls::RootCertificate>,
    timeout: Duration,
) -> Result<Socket, ConnectError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| ConnectError::Fatal(format!("bad address {url:?}: {error}")))?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|error| ConnectError::Fatal(format!("bad token: {error}")))?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    // Only a `wss://` address uses it; a bad root certificate is fatal.
    let connector = if url.starts_with("wss://") {
        Some(
            tls::connector(&root_certificates)
                .map_err(|error| ConnectError::Fatal(error.to_string()))?,
        )
    } else {
        None
    };
    // Nagle's algorithm off: an operation is sent when it is made, not
    // when the server has acknowledged the segment before it.
    let disable_nagle = true;
    let connecting = connect_async_tls_with_config(request, None, disable_nagle, connector);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(ConnectError::Retry("connect timed out".into())),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) =>
        {
            Err(ConnectError::Fatal(format!(
                "upgrade refused with {}",
                response.status()
            )))
        }
        Ok(Err(error)) => Err(ConnectError::Retry(error.to_string())),
    }
}

/// Sends a close frame and waits briefly for the server's.
async fn shut(socket: &mut Socket) {
    let _ = socket.close(None).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

async fn write(socket: &mut Socket, message: &ClientMessage) -> Result<(), tungstenite::Error> {
    // Plain data with string keys: serialisation cannot fail.
    let text = serde_json::to_string(message).unwrap_or_default();
    socket.send(Message::text(text)).await
}

fn subscribe_message(sub: &Sub, cursor: Option<Cursor>) -> ClientMessage {
    let request = &sub.request;
    ClientMessage::Subscribe {
        id: Some(sub.id.clone()),
        collection: request.collection.clone(),
        branch: None,
        namespace: Some(request.namespace.clone()),
        filter: (!request.filter.is_empty()).then(|| request.filter.clone()),
        cursor: cursor.map(|cursor| cursor.to_string()),
    }
}

/// The `insert`, `update` or `delete` message for `op`.
fn write_message(op: &Operation) -> Result<ClientMessage, TransportError> {
    let Some(collection) = op.collection.clone() else {
        return Err(TransportError::Protocol(
            "an operation needs a collection".into(),
        ));
    };
    let write = WriteMessage {
        collection,
        branch: op.branch.clone(),
        record_id: op.id.clone().or_else(|| op.server_id.clone()),
        data: op.data.clone(),
        op_id: op.op_id.clone(),
        base_version: op.base_version,
        timestamp: op.timestamp,
        namespace: op.namespace.clone(),
        priority: op.priority,
    };
    Ok(match op.action {
        Action::Create | Action::Upsert => ClientMessage::Insert(write),
        Action::Update => ClientMessage::Update(write),
        Action::Delete => ClientMessage::Delete(write),
    })
}

/// The change a pushed message describes. A current document sent as an
/// insert has no origin; it gets a fresh `opId`.
fn to_change(change: ServerChange, op: ChangeOp) -> Change {
    let (op_id, device_id) = match change.origin {
        Some(origin) => (origin.op_id, origin.device_id),
        None => (OpId::generate(), None),
    };
    Change {
        seq: change.seq,
        namespace: change.namespace,
        collection: change.collection,
        id: change.record_id,
        op,
        delta: change.delta,
        version: change.version,
        timestamp: change.timestamp,
        op_id,
        device_id,
        user: None,
        data: change.data,
    }
}
