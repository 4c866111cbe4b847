//! Idle connections: opens `N` WebSockets (each `hello` and `subscribe`),
//! holds them, and reads the server's resident memory (`VmRSS`) before
//! and after, for the memory one connection costs.

use std::net::{IpAddr, Ipv4Addr};
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

/// Connections from one source address, below the ~28,000 ports it has
/// towards one server.
const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// Where connection `index` of `connections` comes from: towards a server
/// on the loopback, runs of more than [`CONNECTIONS_PER_SOURCE`] spread
/// over 127.0.0.1, 127.0.0.2, ...; otherwise the system's choice.
fn source_for(url: &str, index: usize, connections: usize) -> Option<IpAddr> {
    let host = ws::authority(url).ok()?.rsplit_once(':')?.0;
    let loopback = host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback || connections <= CONNECTIONS_PER_SOURCE {
        return None;
    }
    let last = u8::try_from(1 + index / CONNECTIONS_PER_SOURCE).ok()?;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// Raises this process's limit of open files to `wanted` (the hard limit
/// too, which needs the privilege to), or as far as it may go; returns the
/// limit now. Children started afterwards inherit it.
pub fn raise_file_limit(wanted: u64) -> Result<u64> {
    use rlimit::Resource;
    let (_, hard) = Resource::NOFILE.get()?;
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return Ok(wanted);
    }
    Ok(rlimit::increase_nofile_limit(wanted)?)
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
    let (devices, stage, connections) = (config.devices, config.stage, config.connections);
    let says_hello = stage != Stage::Upgrade && config.protocol == ws::Protocol::Sync;
    let started = Instant::now();
    let opened: Vec<Result<ws::Socket>> = futures::stream::iter(0..config.connections)
        .map(|index| async move {
            // Idle sockets: a small receive buffer.
            let device = devices.then(|| format!("lg-idle-{tag_ref}-{index}"));
            let mut socket =
                ws::connect_from(url, 4096, source_for(url, index, connections)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_connections_to_the_loopback_spread_over_source_addresses() {
        let url = "ws://127.0.0.1:8080/ws";
        assert_eq!(
            source_for(url, 19_999, 20_000),
            None,
            "few: the system chooses"
        );
        let source = |index| source_for(url, index, 50_000).map(|ip| ip.to_string());
        assert_eq!(source(0).as_deref(), Some("127.0.0.1"));
        assert_eq!(source(19_999).as_deref(), Some("127.0.0.1"));
        assert_eq!(source(20_000).as_deref(), Some("127.0.0.2"));
        assert_eq!(source(49_999).as_deref(), Some("127.0.0.3"));
        assert_eq!(
            source_for("ws://localhost:1/ws", 25_000, 50_000)
                .map(|ip| ip.to_string())
                .as_deref(),
            Some("127.0.0.2")
        );
        assert_eq!(
            source_for("ws://10.0.0.5:80/ws", 25_000, 50_000),
            None,
            "not the loopback"
        );
    }
}
