//! Starting and stopping a server: open the store, build the state and
//! routes, serve, compact the log now and then, and shut down gracefully
//! (stop accepting, end long-polls and WebSockets, flush, release the store).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sync_conflict::ConflictEngine;
use sync_core::store::RetentionPolicy;
use sync_core::{Clock, ConflictResolver, HlcClock, NodeId, SyncStore, SystemClock};
use sync_store::{
    Compression, Durability, Encryption, EncryptionKey, PgConfig, PgStore, SledStore, StoreConfig,
};
use tokio::task::JoinHandle;

use crate::config::{
    CompressionMode, Config, ConfigError, DurabilityMode, StorageConfig, StoreKind,
};
use crate::metrics::Metrics;
use crate::reload::ConfigSource;
use crate::state::{AppState, AuditLog, SyncMiddleware};
use sync_engine::Syncer;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or closed.
    #[error("store: {0}")]
    Store(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Builds a [`Server`] from its settings and the application's hooks.
pub struct ServerBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    middleware: Vec<Arc<dyn SyncMiddleware>>,
    resolvers: Vec<(String, Arc<dyn ConflictResolver>)>,
    store: Option<Arc<dyn SyncStore>>,
    config_source: Option<ConfigSource>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server with `config`, the system clock and the audit log.
    pub fn new(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            clock: Arc::new(SystemClock),
            middleware: vec![Arc::new(AuditLog)],
            resolvers: Vec::new(),
            store: None,
            config_source: None,
        }
    }

    /// Where a reload (`Server::reload_from_source`, SIGHUP in the binary,
    /// `POST /v1/admin/reload`) reads the new settings: for the binary, the
    /// configuration file with the environment and flags applied again.
    pub fn config_source(mut self, source: ConfigSource) -> ServerBuilder {
        self.config_source = Some(source);
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> ServerBuilder {
        self.clock = clock;
        self
    }

    /// Adds a middleware run on every sync request (after the audit log).
    pub fn middleware(mut self, middleware: Arc<dyn SyncMiddleware>) -> ServerBuilder {
        self.middleware.push(middleware);
        self
    }

    /// Registers the application's resolver for `collection` (strategy `custom`).
    pub fn resolver(
        mut self,
        collection: impl Into<String>,
        resolver: Arc<dyn ConflictResolver>,
    ) -> ServerBuilder {
        self.resolvers.push((collection.into(), resolver));
        self
    }

    /// Serves from `store` instead of opening the configured one.
    pub fn store(mut self, store: Arc<dyn SyncStore>) -> ServerBuilder {
        self.store = Some(store);
        self
    }

    /// Opens the store, binds the address and starts serving.
    pub async fn start(self) -> Result<Server, ServerError> {
        let config = self.config;
        config.validate()?;
        let auth = config.auth.authenticator()?;
        // Read before the store opens: a bad certificate stops the start
        // having touched nothing.
        let tls = match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(cert), Some(key)) => {
                Some(crate::tls::acceptor(cert, key).map_err(ServerError::Tls)?)
            }
            _ => None,
        };
        let metrics = Arc::new(Metrics::default());
        let (store, sled) = match self.store {
            Some(store) => (store, None),
            None => open_store(&config, Arc::clone(&metrics)).await?,
        };
        let mut engine = ConflictEngine::new(config.conflict_config());
        for (collection, resolver) in self.resolvers {
            engine.register_resolver(collection, resolver);
        }
        let hlc = HlcClock::new(
            NodeId::from_name(&config.node_name),
            config.max_clock_skew(),
        );
        let syncer = Syncer::new(
            Arc::clone(&store),
            engine,
            Arc::clone(&self.clock),
            hlc,
            config.limits.document_bytes_max,
        );
        let state = AppState::new(
            syncer,
            auth,
            &config,
            self.middleware,
            metrics,
            self.config_source,
        );
        // The fan-out starts from the head as it is before any connection
        // can write.
        let fan_out_from = store
            .head()
            .await
            .map_err(|error| ServerError::Store(error.to_string()))?;
        let listener = listen(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr()?;
        let app = crate::app(state.clone(), &config.cors.allowed_origins, config.console);
        let serve_state = state.clone();
        let serving = match tls {
            None => tokio::spawn(async move {
                axum::serve(
                    without_delay(listener),
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { serve_state.shutting_down().await })
                .await
            }),
            Some(acceptor) => {
                // `tap_io` only to have axum's connect info for any listener.
                let listener = axum::serve::ListenerExt::tap_io(
                    crate::tls::TlsListener::new(listener, acceptor)?,
                    |_| {},
                );
                tokio::spawn(async move {
                    axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async move { serve_state.shutting_down().await })
                    .await
                })
            }
        };
        let compaction = compaction_task(&config, state.clone());
        let fan_out_state = state.clone();
        let fan_out = tokio::spawn(Arc::clone(state.realtime()).run(
            fan_out_from,
            state.metrics_handle(),
            async move {
                fan_out_state.shutting_down().await;
            },
        ));
        tracing::info!(
            %addr,
            tls = config.tls.cert_file.is_some(),
            store = ?config.store,
            auth = ?config.auth.mode,
            "sync server listening"
        );
        Ok(Server {
            addr,
            state,
            serving,
            compaction,
            fan_out,
            sled,
        })
    }
}

/// Connections the kernel queues for the server before it accepts them:
/// tokio's default, 1,024, dropped part of 10,000 clients reconnecting at
/// once, each then retrying only after a second (capped by the kernel's
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 8_192;

/// Turns off Nagle's algorithm on an accepted connection. Frames are
/// already gathered into one write per wake-up; holding a small frame
/// back until the peer acknowledges the one before cost up to the peer's
/// delayed-acknowledgement timeout (40 ms on Linux) whenever changes
/// reached a subscriber faster than it answered.
pub(crate) fn send_without_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

/// `listener`, every connection it accepts sending without delay.
fn without_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    axum::serve::ListenerExt::tap_io(listener, send_without_delay)
}

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The encryption at rest `storage` configures, its keys read from their
/// files.
fn encryption(storage: &StorageConfig) -> Result<Option<Encryption>, ServerError> {
    let Some(current) = &storage.encryption_key_file else {
        return Ok(None);
    };
    let read = |path: &std::path::PathBuf| {
        EncryptionKey::from_file(path).map_err(|error| ServerError::Store(error.to_string()))
    };
    let previous = storage
        .previous_key_files
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Encryption::new(read(current)?, previous)))
}

/// Rewrites the records not yet under the current key (under an earlier
/// one, or written before encryption was on) under it, beside the server's
/// work, and logs how many it rewrote.
fn reencrypt_in_background(store: Arc<SledStore>) {
    tokio::task::spawn_blocking(move || match store.reencrypt() {
        Ok(rewritten) => tracing::info!(
            rewritten,
            "records re-encrypted under the current key: the earlier keys can be removed"
        ),
        Err(error) => tracing::error!(%error, "re-encryption under the current key failed"),
    });
}

async fn open_store(
    config: &Config,
    metrics: Arc<Metrics>,
) -> Result<(Arc<dyn SyncStore>, Option<Arc<SledStore>>), ServerError> {
    match config.store {
        StoreKind::Sled => {
            let store_config = StoreConfig {
                durability: match config.durability {
                    DurabilityMode::Fsync => Durability::Fsync,
                    DurabilityMode::Os => Durability::Os,
                },
                disk_reserve_bytes: config.disk_reserve_mb.saturating_mul(1024 * 1024),
                cache_bytes: config.cache_mb.saturating_mul(1024 * 1024),
                commit_observer: Some(metrics),
                compression: match config.storage.compression {
                    CompressionMode::None => Compression::None,
                    CompressionMode::Zstd => Compression::Zstd,
                },
                encryption: encryption(&config.storage)?,
                ..StoreConfig::default()
            };
            let path = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || SledStore::open(path, store_config))
                .await
                .map_err(|error| ServerError::Store(error.to_string()))?
                .map_err(|error| {
                    ServerError::Store(format!(
                        "cannot open {}: {error}",
                        config.data_dir.display()
                    ))
                })?;
            let store = Arc::new(store);
            if store
                .reencryption_pending()
                .map_err(|error| ServerError::Store(error.to_string()))?
            {
                reencrypt_in_background(Arc::clone(&store));
            }
            Ok((Arc::clone(&store) as Arc<dyn SyncStore>, Some(store)))
        }
        StoreKind::Postgres => {
            let url = config.database_url.as_deref().unwrap_or_default();
            let store_config = PgConfig {
                commit_observer: Some(metrics),
                ..PgConfig::with_schema(config.database_schema.clone())
            };
            let store = PgStore::connect(url, store_config)
                .await
                .map_err(|error| ServerError::Store(format!("PostgreSQL: {error}")))?;
            Ok((Arc::new(store) as Arc<dyn SyncStore>, None))
        }
    }
}

/// Compacts each collection with `keep_versions` (as the settings in force
/// say, reloads included) every interval, never above the lowest cursor of
/// the devices online.
fn compaction_task(config: &Config, state: AppState) -> Option<JoinHandle<()>> {
    if config.compaction_interval_secs == 0 {
        return None;
    }
    let interval = Duration::from_secs(config.compaction_interval_secs);
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = state.shutting_down() => return,
            }
            let policies = state.retention();
            if policies.is_empty() {
                continue;
            }
            let store = state.syncer().store();
            let head = match store.head().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::warn!(%error, "compaction skipped");
                    continue;
                }
            };
            let low_water = state
                .devices()
                .low_water()
                .map_or(head, |low| low.min(head));
            for (collection, keep_versions) in policies.iter() {
                let policy = RetentionPolicy {
                    keep_versions: *keep_versions,
                    low_water,
                    collections: Some(BTreeSet::from([collection.clone()])),
                };
                match store.compact(&policy).await {
                    Ok(removed) => tracing::info!(%collection, removed, "log compacted"),
                    Err(error) => tracing::warn!(%collection, %error, "compaction failed"),
                }
            }
        }
    }))
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    serving: JoinHandle<Result<(), std::io::Error>>,
    compaction: Option<JoinHandle<()>>,
    fan_out: JoinHandle<()>,
    sled: Option<Arc<SledStore>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address it serves on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (for embedding and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Puts `new` in force without a restart ([`AppState::reload`]).
    pub fn reload(&self, new: Config) -> Result<(), ConfigError> {
        self.state.reload(new)
    }

    /// Reads the configuration source again and puts it in force.
    pub fn reload_from_source(&self) -> Result<(), ConfigError> {
        self.state.reload_from_source()
    }

    /// Stops accepting, ends long-polls and WebSockets (close 1001),
    /// flushes and closes the store.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let Server {
            state,
            serving,
            compaction,
            fan_out,
            sled,
            ..
        } = self;
        state.begin_shutdown();
        let served = serving
            .await
            .map_err(|error| ServerError::Store(format!("server task: {error}")))?;
        if let Some(compaction) = compaction {
            let _ = compaction.await;
        }
        let _ = fan_out.await;
        state
            .syncer()
            .store()
            .flush()
            .await
            .map_err(|error| ServerError::Store(error.to_string()))?;
        drop(state);
        if let Some(sled) = sled {
            close_sled(sled).await?;
        }
        served?;
        Ok(())
    }
}

/// Closes the sled store once the last handle to it is gone, so its data
/// directory can be opened again at once.
async fn close_sled(mut sled: Arc<SledStore>) -> Result<(), ServerError> {
    for _ in 0..500 {
        match Arc::try_unwrap(sled) {
            Ok(store) => {
                return tokio::task::spawn_blocking(move || store.close())
                    .await
                    .map_err(|error| ServerError::Store(error.to_string()))?
                    .map_err(|error| ServerError::Store(error.to_string()));
            }
            Err(shared) => {
                sled = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Err(ServerError::Store(
        "the store is still in use after shutdown".into(),
    ))
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let tcp = listen("127.0.0.1:0".parse().expect("address")).expect("listen");
        let addr = tcp.local_addr().expect("address");
        let mut listener = without_delay(tcp);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().expect("TCP_NODELAY"));
    }
}
