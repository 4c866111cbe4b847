//! The client side of the WebSocket transport (`docs/protocol.md`,
//! "WebSocket protocol"): a reconnecting connection that a client SDK
//! builds on.
//!
//! [`RealtimeClient::connect`] spawns a background task that owns the
//! socket. It introduces itself with `hello`, re-sends every active
//! subscription from that subscription's own cursor after each (re)connect
//! so the stream resumes without a gap, drops changes it already delivered
//! (per subscription, by `seq`), follows the server's `resync` messages and
//! reconnects with [`Backoff`](crate::Backoff) after a drop. Its state is
//! published as a [`Watch`](sync_core::Watch); pushed changes come
//! out of [`RealtimeClient::next_event`].

mod driver;
mod tls;

pub use tls::{RootCertificate, TlsError};

use std::time::Duration;

use sync_core::realtime::{RealTimeEvent, Subscription, TransportError};
use sync_core::{ConnectionState, Cursor, DeviceId, OpResult, Operation, Publisher, Watch};
use tokio::sync::{Mutex, mpsc, oneshot};

/// How a [`RealtimeClient`] connects and reconnects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The WebSocket address, `ws://host:port/ws`, or `wss://` for TLS.
    pub url: String,
    /// Root certificates trusted for `wss://` besides the Mozilla roots
    /// (a private CA, a self-signed certificate).
    pub root_certificates: Vec<RootCertificate>,
    /// The token sent as `Authorization: Bearer <token>` at the upgrade.
    pub token: Option<String>,
    /// The device, sent in `hello`.
    pub device_id: DeviceId,
    /// The cursor sent in `hello`: where subscriptions made without a
    /// cursor of their own resume (the SDK's sync position). `None` makes
    /// such subscriptions start from the current documents.
    pub hello_cursor: Option<Cursor>,
    /// The first reconnect delay; later ones double (with jitter).
    pub reconnect_delay: Duration,
    /// The longest reconnect delay.
    pub reconnect_delay_max: Duration,
    /// Reconnect attempts before giving up into [`ConnectionState::Error`];
    /// `None` retries forever.
    pub reconnect_attempts_max: Option<u32>,
    /// A connection that received no frame at all (the server pings every
    /// `heartbeatSecs`) for this long is taken for dead and replaced.
    pub heartbeat_timeout: Duration,
    /// How long [`RealtimeClient::send`] and [`RealtimeClient::subscribe`]
    /// wait for the server's answer.
    pub request_timeout: Duration,
    /// How many pushed events wait for [`RealtimeClient::next_event`]
    /// before the connection stops reading (and the server resyncs it).
    pub event_buffer: usize,
}

impl ClientConfig {
    /// The defaults for `url` and `device_id`: reconnect after 1 s doubling
    /// up to 30 s, at most 5 attempts, a heartbeat timeout of
    /// two server heartbeats (2 × 30 s) plus 10 s of slack.
    pub fn new(url: impl Into<String>, device_id: DeviceId) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            root_certificates: Vec::new(),
            token: None,
            device_id,
            hello_cursor: None,
            reconnect_delay: Duration::from_secs(1),
            reconnect_delay_max: Duration::from_secs(30),
            reconnect_attempts_max: Some(5),
            heartbeat_timeout: Duration::from_secs(70),
            request_timeout: Duration::from_secs(30),
            event_buffer: 1024,
        }
    }
}

/// What the handle asks the background task to do.
pub(crate) enum Command {
    Subscribe {
        subscription: Subscription,
        reply: oneshot::Sender<Result<String, TransportError>>,
    },
    Unsubscribe {
        id: String,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
    Send {
        op: Box<Operation>,
        reply: oneshot::Sender<Result<OpResult, TransportError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// A reconnecting real-time connection to a sync server.
///
/// Cheap to share behind an `Arc`; dropping it (or [`close`](Self::close))
/// ends the background task.
#[derive(Debug)]
pub struct RealtimeClient {
    commands: mpsc::UnboundedSender<Command>,
    events: Mutex<mpsc::Receiver<RealTimeEvent>>,
    state: Watch<ConnectionState>,
    request_timeout: Duration,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Subscribe { .. } => "Subscribe",
            Command::Unsubscribe { .. } => "Unsubscribe",
            Command::Send { .. } => "Send",
            Command::Close { .. } => "Close",
        })
    }
}

impl RealtimeClient {
    /// Starts connecting in the background (state `connecting`) and returns
    /// at once. Must be called inside a Tokio runtime.
    pub fn connect(config: ClientConfig) -> RealtimeClient {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::channel(config.event_buffer.max(1));
        let state_tx = Publisher::new(ConnectionState::Connecting);
        let state = state_tx.watch();
        let request_timeout = config.request_timeout;
        tokio::spawn(driver::run(config, command_rx, event_tx, state_tx));
        RealtimeClient {
            commands,
            events: Mutex::new(events),
            state,
            request_timeout,
        }
    }

    /// The connection's current state.
    pub fn state(&self) -> ConnectionState {
        self.state.get()
    }

    /// A watch of the connection's states, to wait for changes.
    pub fn states(&self) -> Watch<ConnectionState> {
        self.state.clone()
    }

    /// Waits until the state is `wanted` (or the task ended); returns the
    /// state it stopped at.
    pub async fn wait_for(&self, wanted: ConnectionState) -> ConnectionState {
        let mut states = self.state.clone();
        match states.wait_for(|state| *state == wanted).await {
            Some(state) => state,
            None => self.state.get(),
        }
    }

    /// Starts a subscription and returns its id (the subscription's own, or
    /// its collection's name). While connected it waits for `subscribed`;
    /// while (re)connecting it is registered and sent once connected. It
    /// stays active across reconnects until [`unsubscribe`](Self::unsubscribe).
    pub async fn subscribe(&self, subscription: Subscription) -> Result<String, TransportError> {
        let (reply, answer) = oneshot::channel();
        self.request(
            Command::Subscribe {
                subscription,
                reply,
            },
            answer,
            None,
        )
        .await
    }

    /// Ends a subscription: no more of its changes are delivered.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), TransportError> {
        let (reply, answer) = oneshot::channel();
        let id = id.to_owned();
        self.request(Command::Unsubscribe { id, reply }, answer, None)
            .await
    }

    /// Sends one operation and waits for its `ack`, `conflict` or `error`.
    ///
    /// A `create` or `upsert` goes as `insert`. Without an `opId` one is
    /// generated. When the connection is not up, or drops (or the answer
    /// times out) before the answer, the operation comes back in
    /// [`TransportError::Closed`] with its `opId` set: sending it again is
    /// safe, the server dedupes by `opId`.
    pub async fn send(&self, mut op: Operation) -> Result<OpResult, TransportError> {
        if op.op_id.is_none() {
            op.op_id = Some(sync_core::OpId::generate());
        }
        if self.state() != ConnectionState::Connected {
            return Err(closed(op));
        }
        let (reply, answer) = oneshot::channel();
        let keep = op.clone();
        self.request(
            Command::Send {
                op: Box::new(op),
                reply,
            },
            answer,
            Some(keep),
        )
        .await
    }

    /// The next pushed event; `None` once the connection is shut down (by
    /// [`close`](Self::close) or after giving up) and the buffer is empty.
    pub async fn next_event(&self) -> Option<RealTimeEvent> {
        self.events.lock().await.recv().await
    }

    /// Shuts the connection down gracefully: sends a close frame, fails
    /// what is still waiting with [`TransportError::Closed`] and ends in
    /// state `disconnected`.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Close { reply }).is_ok() {
            let _ = done.await;
        }
    }

    async fn request<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<T, TransportError>>,
        unsent: Option<Operation>,
    ) -> Result<T, TransportError> {
        let gone = |unsent: Option<Operation>| TransportError::Closed {
            unsent: unsent.map(Box::new),
        };
        if self.commands.send(command).is_err() {
            return Err(gone(unsent));
        }
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(gone(unsent)),
        }
    }
}

/// The error that hands `op` back unsent.
pub(crate) fn closed(op: Operation) -> TransportError {
    TransportError::Closed {
        unsent: Some(Box::new(op)),
    }
}
