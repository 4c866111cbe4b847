//! [`SyncClientBuilder`]: the client's settings, checked once, and the
//! start-up that opens the local store and the queue and hands them to a
//! new [`SyncClient`].
//!
//! Starting needs nothing from the server, so an application opens its
//! data offline as well as online; every setting has a default but the
//! server's address, the data directory and the collections.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use sync_realtime::RootCertificate;

use sync_core::{
    Clock, CollectionName, ConnectionState, DeviceId, Namespace, Priority, Publisher, SystemClock,
};
use sync_queue::{QueueConfig, SledQueue};
use tokio::sync::{Mutex, Notify, broadcast, watch};

use crate::client::SyncClient;
use crate::error::Error;
use crate::local::LocalStore;
use crate::shared::{Settings, Shared};

impl SyncClient {
    /// A builder with the defaults its settings name.
    pub fn builder() -> SyncClientBuilder {
        SyncClientBuilder::default()
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
    root_certificates_pem: Vec<Vec<u8>>,
    queue: QueueConfig,
    clock: ClockSource,
    priorities: Vec<(String, Priority)>,
    metered: bool,
    bandwidth_limit: Option<u64>,
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
            root_certificates_pem: Vec::new(),
            queue: QueueConfig::default(),
            clock: ClockSource(Arc::new(SystemClock)),
            priorities: Vec::new(),
            metered: false,
            bandwidth_limit: None,
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

    /// Trusts the certificates of this PEM file for `https://` and
    /// `wss://` besides the Mozilla roots (a private CA, a self-signed
    /// certificate); may be called more than once. A file without a
    /// certificate, or one that does not decode, fails [`build`](Self::build).
    pub fn add_root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.root_certificates_pem.push(pem.as_ref().to_vec());
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

    /// The clock every timestamp comes from: the time of local writes and
    /// of the queue's retry backoff (default: the system clock). Tests and
    /// simulations pass a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ClockSource(clock);
        self
    }

    /// The priority of the writes to collection `name` (default normal):
    /// the queue sends high ones first, the server admits them first under
    /// load, and low ones wait while the link is metered
    /// ([`metered`](Self::metered)). The operations of one document keep
    /// their order whatever their priorities.
    pub fn collection_priority(mut self, name: impl Into<String>, priority: Priority) -> Self {
        self.priorities.push((name.into(), priority));
        self
    }

    /// Starts with the link marked metered or slow (default off): writes
    /// of low priority stay queued, durably, until
    /// [`SyncClient::set_metered`](crate::SyncClient::set_metered)`(false)`;
    /// normal and high ones still go.
    pub fn metered(mut self, metered: bool) -> Self {
        self.metered = metered;
        self
    }

    /// The most bytes per second the server should send this device
    /// (declared in its registration's capabilities as `bandwidthLimit`):
    /// the server paces catch-up and live changes to it.
    pub fn bandwidth_limit(mut self, bytes_per_sec: u64) -> Self {
        self.bandwidth_limit = Some(bytes_per_sec);
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
        let mut priorities = HashMap::new();
        for (name, priority) in self.priorities {
            let name = CollectionName::new(name)?;
            if !collections.contains(&name) {
                return Err(Error::Config(format!(
                    "a priority for {name}, which is not among the collections"
                )));
            }
            priorities.insert(name, priority);
        }
        if self.bandwidth_limit == Some(0) {
            return Err(Error::Config("bandwidth_limit must be above 0".into()));
        }
        let mut root_certificates = Vec::new();
        for pem in &self.root_certificates_pem {
            root_certificates.extend(
                RootCertificate::from_pem(pem)
                    .map_err(|error| Error::Config(format!("root certificate: {error}")))?,
            );
        }
        std::fs::create_dir_all(&data_dir).map_err(|e| Error::Storage(Box::new(e)))?;
        let queue_config = self.queue;
        let (local, queue) = {
            let data_dir = data_dir.clone();
            tokio::task::spawn_blocking(move || -> Result<(LocalStore, SledQueue), Error> {
                let local = LocalStore::open(&data_dir.join("local"))?;
                let queue = SledQueue::open(data_dir.join("queue"), queue_config)?;
                Ok((local, queue))
            })
            .await
            .map_err(|e| Error::Storage(Box::new(e)))??
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
            priorities,
            bandwidth_limit: self.bandwidth_limit,
            root_certificates,
        };
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            settings,
            device_id,
            local,
            queue,
            events,
            state: Publisher::new(ConnectionState::Disconnected),
            changed: collections
                .into_iter()
                .map(|name| (name, watch::Sender::new(0)))
                .collect(),
            wake: Notify::new(),
            on_conflict: RwLock::new(None),
            write_lock: Mutex::new(()),
            last_write_ms: AtomicU64::new(0),
            clock: self.clock.0,
            metered: AtomicBool::new(self.metered),
        });
        Ok(SyncClient::start(shared))
    }
}

/// The injected clock, wrapped so that the builder stays `Debug`.
#[derive(Clone)]
struct ClockSource(Arc<dyn Clock>);

impl fmt::Debug for ClockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}
