//! The background sync task: the I/O around the pure decisions of
//! `logic`, and the loop that picks a mode.
//!
//! While the WebSocket is connected the task runs the WebSocket mode
//! (`realtime`): it subscribes each collection from its stored cursor,
//! applies pushed changes and pushes the queue one batch at a time. While
//! it is not (connecting, reconnecting, or given up after its attempts), it
//! runs the HTTP mode (`http`): the queue goes out by `POST /v1/sync` in
//! chunks and changes come in by long-polling `GET /v1/changes`; the task
//! switches back as soon as the WebSocket is up again. Both modes settle
//! answers and apply changes through `remote`, so they record the server's
//! word the same way.
//!
//! The task sees the application only through the shared state and the
//! [`Command`]s of the handle.

mod http;
mod realtime;
mod remote;

use std::sync::Arc;
use std::time::Duration;

use sync_core::realtime::RealTimeEvent;
use sync_core::{CollectionName, ConnectionState, OfflineQueue};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::realtime::Realtime;
use self::remote::Remote;
use crate::error::Error;
use crate::events::SyncEvent;
use crate::http::Http;
use crate::shared::Shared;

/// The longest pause between HTTP attempts while the server is unreachable.
const OFFLINE_PAUSE_MAX: Duration = Duration::from_secs(10);
/// The first pause between HTTP attempts after the server became
/// unreachable.
const OFFLINE_PAUSE_MIN: Duration = Duration::from_millis(250);
/// How often the task looks for queue entries whose backoff ended.
const TICK: Duration = Duration::from_secs(1);

/// What the handle asks the task.
pub(crate) enum Command {
    /// Push and pull now; answer when done.
    SyncNow(oneshot::Sender<Result<(), Error>>),
    /// Stop.
    Close(oneshot::Sender<()>),
}

struct Engine {
    remote: Remote,
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

/// Runs until the handle closes or goes away.
pub(crate) async fn run(shared: Arc<Shared>, commands: mpsc::UnboundedReceiver<Command>) {
    let http = match Http::new(
        &shared.settings.server_url,
        shared.settings.token.clone(),
        &shared.settings.root_certificates,
    ) {
        Ok(http) => http,
        Err(error) => {
            shared.emit(SyncEvent::Error {
                message: error.to_string(),
            });
            return;
        }
    };
    let mut engine = Engine {
        remote: Remote { shared, http },
        commands,
        realtime: None,
        ws_retry_at: None,
        offline_pause: OFFLINE_PAUSE_MIN,
        was_connected: false,
        closing: None,
    };
    engine.remote.register_device().await;
    if engine.shared().settings.realtime {
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
        realtime.close().await;
    }
    let _ = engine.shared().local.flush().await;
    engine.shared().state.replace(ConnectionState::Disconnected);
    if let Some(reply) = engine.closing.take() {
        let _ = reply.send(());
    }
}

impl Engine {
    fn shared(&self) -> &Shared {
        &self.remote.shared
    }

    fn ws_connected(&self) -> bool {
        self.realtime.as_ref().is_some_and(Realtime::is_connected)
    }

    fn start_realtime(&mut self) {
        self.realtime = Some(Realtime::connect(self.shared()));
        self.ws_retry_at = None;
    }

    /// Mirrors the connection's state to the handle and raises the
    /// connected / disconnected events.
    fn observe_state(&mut self) {
        let Some(rt) = self.realtime.as_mut() else {
            return;
        };
        let state = rt.states.see();
        let shared = &self.remote.shared;
        shared.state.set(state);
        if state != ConnectionState::Connected && self.was_connected {
            self.was_connected = false;
            shared.emit(SyncEvent::Disconnected);
        }
        if matches!(
            state,
            ConnectionState::Error | ConnectionState::Disconnected
        ) {
            // The connection gave up: poll over HTTP, try again later.
            self.realtime = None;
            self.ws_retry_at = Some(Instant::now() + shared.settings.ws_retry_interval);
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
            self.remote.report(&error);
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
                if changed.is_none() {
                    self.realtime = None;
                    self.ws_retry_at = Some(Instant::now());
                } else {
                    self.observe_state();
                }
            }
            () = self.remote.shared.wake.notified() => {}
            command = self.commands.recv() => return self.on_command(command).await,
            () = tokio::time::sleep(TICK) => {}
        }
        Flow::Continue
    }

    /// After a connection: catch up the collections that have no cursor
    /// yet over HTTP, then subscribe every collection from its cursor.
    async fn subscribe_all(&mut self) -> Result<(), Error> {
        self.remote.register_device().await;
        let shared = Arc::clone(&self.remote.shared);
        let settings = &shared.settings;
        let mut missing = Vec::new();
        for collection in &settings.collections {
            if shared
                .local
                .cursor(&settings.namespace, collection)?
                .is_none()
            {
                missing.push(collection.clone());
            }
        }
        if !missing.is_empty() {
            http::pull(&self.remote, &missing, 0).await?;
        }
        let Some(rt) = self.realtime.as_mut() else {
            return Ok(());
        };
        rt.subscribe(&shared).await?;
        self.was_connected = true;
        shared.emit(SyncEvent::Connected {
            collections: settings
                .collections
                .iter()
                .map(ToString::to_string)
                .collect(),
        });
        Ok(())
    }

    async fn push_realtime(&self) -> Result<(), Error> {
        match &self.realtime {
            Some(rt) => rt.push(&self.remote).await,
            None => Ok(()),
        }
    }

    async fn on_event(&mut self, event: RealTimeEvent) {
        match event {
            RealTimeEvent::Change { change, .. } => {
                if let Err(error) = self.remote.apply(&change, true) {
                    self.remote.report(&error);
                }
            }
            RealTimeEvent::Resync { reset: true, .. } => {
                // The server cannot resume us (expired or foreign cursor):
                // start over from a clean copy, then connect again.
                tracing::info!("server asked for a reset; re-reading the collections");
                if let Some(rt) = self.realtime.take() {
                    rt.close().await;
                }
                self.remote.reset_collections();
                self.start_realtime();
            }
            RealTimeEvent::Resync { .. } => {}
        }
    }

    // ---- the HTTP mode ----

    async fn http_round(&mut self) -> Flow {
        if self.realtime.is_none()
            && self.shared().settings.realtime
            && self.ws_retry_at.is_none_or(|at| Instant::now() >= at)
        {
            self.start_realtime();
        }
        self.observe_state();
        if self.ws_connected() {
            return Flow::Continue;
        }
        let collections = self.shared().settings.collections.clone();
        let outcome = match http::push(&self.remote).await {
            Ok(()) => {
                let wait = self.shared().settings.poll_wait_secs;
                let mut pull = Box::pin(http::pull(&self.remote, &collections, wait));
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
                    () = self.remote.shared.wake.notified() => Ok(Ok(())),
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
                self.offline_pause = OFFLINE_PAUSE_MIN;
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
            () = self.remote.shared.wake.notified() => Flow::Continue,
            command = self.commands.recv() => self.on_command(command).await,
        }
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
        http::push(&self.remote).await?;
        let collections: Vec<CollectionName> = self.shared().settings.collections.clone();
        http::pull(&self.remote, &collections, 0).await?;
        let pending = self.shared().queue.pending_count().await?;
        let waiting = pending.saturating_sub(self.shared().held_back());
        if waiting > 0 {
            return Err(Error::Pending(waiting));
        }
        Ok(())
    }
}
