//! Catch-up: a client `N` changes behind. The changes are written first
//! (bulk sync, batches of 500), then a fresh subscriber subscribes with the
//! cursor from before them; the figure is the time from its `subscribe`
//! until it has received all `N`, with the CPU both sides spent in it.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bulk::{self, BulkConfig};
use crate::error::{LoadError, Result};
use crate::raw::Read;
use crate::stats::{CpuMeter, CpuUse};
use crate::ws;

/// What to run.
#[derive(Debug, Clone)]
pub struct CatchupConfig {
    /// `ws://host:port/ws`; the HTTP API is on the same host and port.
    pub url: String,
    /// Changes the client is behind.
    pub changes: u64,
    /// Longest wait for them.
    pub timeout: Duration,
    /// The server's pid, to report its CPU time while catching up.
    pub server_pid: Option<u32>,
}

/// What a catch-up run measured.
#[derive(Debug, Clone, Serialize)]
pub struct CatchupResult {
    /// Changes written while the client was away.
    pub changes: u64,
    /// Changes it received.
    pub received: u64,
    /// Seconds to write them (bulk sync).
    pub write_s: f64,
    /// Seconds from `subscribe` to `subscribed`.
    pub subscribed_s: f64,
    /// Seconds from `subscribe` to the last change.
    pub catch_up_s: f64,
    /// Changes received per second while catching up.
    pub changes_per_s: f64,
    /// CPU spent from `subscribe` to the last change.
    pub cpu: CpuUse,
}

/// Runs the scenario.
pub async fn run(config: &CatchupConfig) -> Result<CatchupResult> {
    if config.changes == 0 {
        return Err(LoadError::Invalid("catch-up needs changes".into()));
    }
    let tag = ws::run_tag();
    let collection = format!("catchup_{tag}");
    // Where the client left: the head before the writes.
    let mut probe = ws::connect(&config.url, 16 * 1024).await?;
    let cursor = ws::hello(&mut probe, Some(&format!("lg-probe-{tag}"))).await?;
    drop(probe);

    let write = bulk::run(&BulkConfig {
        collection: Some(collection.clone()),
        operations: Some(config.changes),
        ..BulkConfig::new(config.url.replacen("ws://", "http://", 1), 500, 0.0)
    })
    .await?;
    if write.operations < config.changes {
        return Err(LoadError::Protocol(format!(
            "only {} of {} changes were written",
            write.operations, config.changes
        )));
    }

    let mut socket = ws::connect(&config.url, 256 * 1024).await?;
    ws::hello(&mut socket, Some(&format!("lg-behind-{tag}"))).await?;
    let meter = CpuMeter::start(config.server_pid);
    let started = Instant::now();
    ws::subscribe(&mut socket, &collection, Some(&cursor)).await?;
    let subscribed_s = started.elapsed().as_secs_f64();
    let deadline = tokio::time::Instant::now() + config.timeout;
    let mut received = 0u64;
    while received < config.changes {
        let read = socket.read_batch(|frame| {
            if ws::find_u64(frame, br#""n":"#).is_some() {
                received += 1;
            }
        });
        let Ok(read) = tokio::time::timeout_at(deadline, read).await else {
            break;
        };
        if read? == Read::Closed {
            return Err(LoadError::Protocol("the server closed the socket".into()));
        }
    }
    let catch_up_s = started.elapsed().as_secs_f64();
    let cpu = meter.stop();
    Ok(CatchupResult {
        changes: config.changes,
        received,
        write_s: write.cpu.wall_s,
        subscribed_s,
        catch_up_s,
        changes_per_s: received as f64 / catch_up_s,
        cpu,
    })
}
