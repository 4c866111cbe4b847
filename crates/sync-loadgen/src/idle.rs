//! Idle connections: opens `N` WebSockets (each `hello` and `subscribe`),
//! holds them, and reads the server's resident memory (`VmRSS`) before
//! and after, for the memory one connection costs.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::error::{LoadError, Result};
use crate::stats;
use crate::ws;

/// What to run.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// `ws://host:port/ws`.
    pub url: String,
    /// Connections to hold.
    pub connections: usize,
    /// The server's pid, whose memory is read.
    pub server_pid: u32,
    /// How long to hold them before reading the memory.
    pub settle: Duration,
    /// Connections opened at once.
    pub connect_concurrency: usize,
    /// Whether each `hello` names a device (which the server then
    /// registers durably).
    pub devices: bool,
    /// How far each connection goes: to tell what the memory is for.
    pub stage: Stage,
    /// The protocol the server speaks (the relay has no `hello`).
    pub protocol: ws::Protocol,
}

/// How far an idle connection goes before it waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stage {
    /// The WebSocket upgrade only.
    Upgrade,
    /// The upgrade and `hello`.
    Hello,
    /// The upgrade, `hello` and `subscribe` (what a client does).
    #[default]
    Subscribe,
}

/// What an idle run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// Connections held.
    pub connections: usize,
    /// The server's resident memory before opening them, in MB.
    pub rss_before_mb: f64,
    /// Its resident memory holding them, in MB.
    pub rss_after_mb: f64,
    /// The difference per connection, in KB.
    pub kb_per_connection: f64,
    /// Seconds to open them all.
    pub open_s: f64,
    /// The generator's own resident memory holding them, in MB.
    pub generator_rss_mb: f64,
}

/// Runs the scenario.
pub async fn run(config: &IdleConfig) -> Result<IdleResult> {
    if config.connections == 0 {
        return Err(LoadError::Invalid("idle needs connections".into()));
    }
    let before = stats::resident_kib(config.server_pid)?;
    let tag = ws::run_tag();
    let collection = format!("idle_{tag}");
    let url = config.url.as_str();
    let collection_ref = collection.as_str();
    let tag_ref = tag.as_str();
    let (devices, stage) = (config.devices, config.stage);
    let says_hello = stage != Stage::Upgrade && config.protocol == ws::Protocol::Sync;
    let started = Instant::now();
    let opened: Vec<Result<ws::Socket>> = futures::stream::iter(0..config.connections)
        .map(|index| async move {
            // Idle sockets: a small receive buffer.
            let device = devices.then(|| format!("lg-idle-{tag_ref}-{index}"));
            let mut socket = ws::connect(url, 4096).await?;
            if says_hello {
                ws::hello(&mut socket, device.as_deref()).await?;
            }
            if stage == Stage::Subscribe {
                ws::subscribe(&mut socket, collection_ref, None).await?;
            }
            Ok(socket)
        })
        .buffer_unordered(config.connect_concurrency.max(1))
        .collect()
        .await;
    let open_s = started.elapsed().as_secs_f64();
    let sockets: Vec<ws::Socket> = opened.into_iter().collect::<Result<_>>()?;
    tokio::time::sleep(config.settle).await;
    let after = stats::resident_kib(config.server_pid)?;
    let generator = stats::resident_kib(std::process::id())?;
    drop(sockets);
    Ok(IdleResult {
        connections: config.connections,
        rss_before_mb: before as f64 / 1024.0,
        rss_after_mb: after as f64 / 1024.0,
        kb_per_connection: after.saturating_sub(before) as f64 / config.connections as f64,
        open_s,
        generator_rss_mb: generator as f64 / 1024.0,
    })
}
