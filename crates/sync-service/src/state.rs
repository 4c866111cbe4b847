//! What every request handler shares, and the middleware hook through
//! which an application sees (and may refuse) every sync request.

use std::sync::{Arc, PoisonError, RwLock};

use sync_core::{CollectionName, DeviceId, Operation, Priority};

use crate::admission::{WriteGate, WritePermit};
use crate::auth::{Authenticator, Principal};
use crate::config::{Config, ConfigError};
use crate::devices::Devices;
use crate::error::ApiError;
use crate::limits::{Limits, UserRateLimiter};
use crate::metrics::Metrics;
use crate::reload::{ConfigSource, Reloader};
use sync_engine::Syncer;

/// Where a sync request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST /api/{collection}/bulk-sync`.
    BulkSync,
    /// `POST /v1/sync`.
    Sync,
    /// A WebSocket write message.
    WebSocket,
}

impl Transport {
    /// The name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::BulkSync => "bulk-sync",
            Transport::Sync => "sync",
            Transport::WebSocket => "websocket",
        }
    }
}

/// A sync request as the middleware sees it, before anything is applied.
#[derive(Debug)]
pub struct SyncRequestInfo<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The sending device.
    pub device_id: Option<&'a DeviceId>,
    /// Where it came in.
    pub transport: Transport,
    /// The request id (`x-request-id`), when there is one.
    pub request_id: Option<&'a str>,
    /// The operations that could be read.
    pub operations: Vec<&'a Operation>,
}

/// A hook run on every sync request before it is applied: audit logging,
/// extra validation, quotas. Returning an error refuses the whole request
/// with that error.
pub trait SyncMiddleware: Send + Sync {
    /// Sees the request; an error refuses it.
    fn before_sync(&self, request: &SyncRequestInfo<'_>) -> Result<(), ApiError>;
}

/// The default middleware: one structured audit line per operation, through
/// `tracing` (target `sync::audit`). Data is not logged, only what was
/// done to which document by whom.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditLog;

impl SyncMiddleware for AuditLog {
    fn before_sync(&self, request: &SyncRequestInfo<'_>) -> Result<(), ApiError> {
        for op in &request.operations {
            tracing::info!(
                target: "sync::audit",
                transport = request.transport.as_str(),
                request_id = request.request_id.unwrap_or(""),
                user = request.principal.user.as_str(),
                device = request.device_id.map_or("", DeviceId::as_str),
                action = op.action.as_str(),
                namespace = op.namespace.as_ref().map_or("default", |ns| ns.as_str()),
                collection = op.collection.as_ref().map_or("", |c| c.as_str()),
                id = op.id.as_ref().or(op.server_id.as_ref()).map_or("", |id| id.as_str()),
                op_id = op.op_id.as_ref().map_or("", |id| id.as_str()),
                "sync operation"
            );
        }
        Ok(())
    }
}

/// Settings fixed at start that the handlers read (the limits, which a
/// reload may change, are [`AppState::limits`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds between WebSocket pings.
    pub heartbeat_secs: u64,
    /// Origins allowed to open WebSockets; empty allows any.
    pub websocket_origins: Vec<String>,
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    syncer: Syncer,
    auth: Authenticator,
    settings: Settings,
    /// The limits in force (reloadable).
    limits: RwLock<Arc<Limits>>,
    /// The collections compaction bounds (reloadable).
    retention: RwLock<Arc<Vec<(CollectionName, u64)>>>,
    reloader: Reloader,
    rate: UserRateLimiter,
    gate: Arc<WriteGate>,
    metrics: Arc<Metrics>,
    devices: Devices,
    realtime: Arc<crate::realtime::Hub>,
    middleware: Vec<Arc<dyn SyncMiddleware>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `syncer` with `config`, checking credentials with `auth`,
    /// measuring into `metrics` (shared with the store, which reports its
    /// commits); `source` gives the new settings of a reload.
    pub fn new(
        syncer: Syncer,
        auth: Authenticator,
        config: &Config,
        middleware: Vec<Arc<dyn SyncMiddleware>>,
        metrics: Arc<Metrics>,
        source: Option<ConfigSource>,
    ) -> AppState {
        let settings = Settings {
            heartbeat_secs: config.heartbeat_secs,
            websocket_origins: config.cors.websocket_origins.clone(),
        };
        let devices = Devices::new(Arc::clone(syncer.store()));
        let rate = UserRateLimiter::new(
            config.limits.operations_per_second,
            config.limits.operations_burst,
        );
        let realtime = Arc::new(crate::realtime::Hub::new(
            Arc::clone(syncer.store()),
            Arc::clone(syncer.clock()),
            config.limits.send_queue_frames_max,
        ));
        AppState {
            inner: Arc::new(Inner {
                realtime,
                syncer,
                auth,
                limits: RwLock::new(Arc::new(config.limits.clone())),
                retention: RwLock::new(Arc::new(crate::reload::retention(config))),
                reloader: Reloader::new(config.clone(), source),
                settings,
                rate,
                gate: WriteGate::new(config.limits.writes_in_flight_max),
                metrics,
                devices,
                middleware,
                shutdown: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// The operation processor.
    pub fn syncer(&self) -> &Syncer {
        &self.inner.syncer
    }

    /// The credential checker.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The limits in force.
    pub fn limits(&self) -> Arc<Limits> {
        Arc::clone(
            &self
                .inner
                .limits
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The collections whose log compaction keeps a bounded number of
    /// versions, with that number.
    pub fn retention(&self) -> Arc<Vec<(CollectionName, u64)>> {
        Arc::clone(
            &self
                .inner
                .retention
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The settings fixed at start.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Puts `new` in force: the per-collection conflict settings, the
    /// retention and the limits, at once and without dropping a
    /// connection. Refused, with the running settings kept, when `new` does
    /// not validate or changes a setting that needs a restart.
    pub fn reload(&self, new: Config) -> Result<(), ConfigError> {
        let new = self.inner.reloader.accept(new)?;
        self.inner.syncer.reconfigure(new.conflict_config());
        self.inner.rate.set_rate(
            new.limits.operations_per_second,
            new.limits.operations_burst,
        );
        self.inner
            .gate
            .set_capacity(new.limits.writes_in_flight_max);
        *self
            .inner
            .limits
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(new.limits.clone());
        *self
            .inner
            .retention
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(crate::reload::retention(&new));
        tracing::info!("settings reloaded");
        Ok(())
    }

    /// Reads the server's configuration source again and reloads it
    /// ([`AppState::reload`]); an error when the server has no source.
    pub fn reload_from_source(&self) -> Result<(), ConfigError> {
        let new = self
            .inner
            .reloader
            .read_source()
            .ok_or(ConfigError::Invalid {
                name: "config",
                message: "this server was started without a configuration source to reload".into(),
            })??;
        self.reload(new)
    }

    /// The settings in force.
    pub fn config(&self) -> Config {
        self.inner.reloader.current()
    }

    /// The per-user rate limiter of operations, whatever their door.
    pub fn rate(&self) -> &UserRateLimiter {
        &self.inner.rate
    }

    /// The gate bounding the batches of writes at the store.
    pub(crate) fn write_gate(&self) -> &WriteGate {
        &self.inner.gate
    }

    /// The write gate, for a task that waits on it while doing more.
    pub(crate) fn write_gate_handle(&self) -> Arc<WriteGate> {
        Arc::clone(&self.inner.gate)
    }

    /// Waits until a batch of writes whose most urgent operation is of
    /// `priority` may go to the store: at most `writes_in_flight_max`
    /// batches are there at once, and waiting ones are let in high before
    /// normal before low. Hold the permit until the batch is answered.
    pub async fn enter_writes(&self, priority: Priority) -> WritePermit {
        self.inner.gate.enter(priority).await
    }

    /// The node's analytics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The real-time fan-out.
    pub fn realtime(&self) -> &Arc<crate::realtime::Hub> {
        &self.inner.realtime
    }

    /// The node's analytics, shareable with background tasks.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// The device registry's live side.
    pub fn devices(&self) -> &Devices {
        &self.inner.devices
    }

    /// Tells long-lived requests (long-polls, WebSockets) to end.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut receiver = self.inner.shutdown.subscribe();
        let _ = receiver.wait_for(|down| *down).await;
    }

    /// Admits a batch of writes, the same way whichever door it came
    /// through: the caller's rate limit is charged one token per operation
    /// (shared by HTTP and WebSocket), then every middleware sees the batch;
    /// the first error refuses it whole.
    pub fn admit(&self, request: &SyncRequestInfo<'_>) -> Result<(), ApiError> {
        let cost = u32::try_from(request.operations.len().max(1)).unwrap_or(u32::MAX);
        let now_ms = self.syncer().clock().now_millis();
        self.rate().charge(&request.principal.user, cost, now_ms)?;
        self.inner
            .middleware
            .iter()
            .try_for_each(|middleware| middleware.before_sync(request))
    }
}
