//! Reconnect storm: `N` clients connected (each `hello` with its device id,
//! `subscribe` with a cursor), then all drop at once, as when a network or
//! a load balancer fails; while they are away a writer commits `W`
//! changes to their collection; then all reconnect at once, each saying
//! `hello` as the same device and subscribing with the cursor it had, and
//! reading until it has the `W` changes it missed.
//!
//! The figure is the time from the first reconnect to the last client
//! resubscribed and caught up; each client's own time is kept too
//! (percentiles), and clients that failed or timed out are counted. Every
//! client is its own task, and all connect at once (no pacing): the
//! server's accept queue, its handshakes, device lookups, and one catch-up
//! read of the log per subscription all meet in the same second.
//!
//! Each client holds a socket in this process and one in the server, so
//! both need an open-file limit over `N` (checked before the run).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::{LoadError, Result};
use crate::raw::Read;
use crate::stats::{self, CpuMeter, CpuUse, Percentiles};
use crate::ws::{self, Socket};

/// What to run.
#[derive(Debug, Clone)]
pub struct ReconnectConfig {
    /// `ws://host:port/ws`.
    pub url: String,
    /// Clients.
    pub clients: usize,
    /// Changes written while they are away.
    pub writes: u64,
    /// Connections opened at once while setting up (the reconnect itself
    /// is all at once).
    pub connect_concurrency: usize,
    /// Longest wait for the last client.
    pub timeout: Duration,
    /// The server's pid, to report its CPU time.
    pub server_pid: Option<u32>,
}

impl ReconnectConfig {
    /// `clients` clients, 5 changes while they are away, 60 s at most.
    pub fn new(url: impl Into<String>, clients: usize) -> Self {
        ReconnectConfig {
            url: url.into(),
            clients,
            writes: 5,
            connect_concurrency: 64,
            timeout: Duration::from_secs(60),
            server_pid: None,
        }
    }
}

/// What a reconnect storm measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectResult {
    /// Clients.
    pub clients: usize,
    /// Changes written while they were away.
    pub writes: u64,
    /// Clients resubscribed and caught up.
    pub caught_up: usize,
    /// Clients that failed (refused, closed, timed out).
    pub failed: usize,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Seconds from the first reconnect to the last client caught up.
    pub storm_s: f64,
    /// Each client's time from its own connect to caught up.
    pub client_latency: Percentiles,
    /// Each client's time from the first reconnect to caught up (the
    /// queueing the storm adds).
    pub since_storm: Percentiles,
    /// Seconds to set up the clients the first time.
    pub setup_s: f64,
    /// CPU spent by the generator and the server during the storm.
    pub cpu: CpuUse,
}

/// Runs the scenario.
pub async fn run(config: &ReconnectConfig) -> Result<ReconnectResult> {
    if config.clients == 0 || config.writes == 0 {
        return Err(LoadError::Invalid(
            "reconnect needs clients and writes".into(),
        ));
    }
    if let Some(limit) = stats::open_files_limit()?
        && limit < config.clients as u64 + 64
    {
        return Err(LoadError::Invalid(format!(
            "{} clients need more open files than the limit of {limit}: raise it (ulimit -n)",
            config.clients
        )));
    }
    let tag = ws::run_tag();
    let collection = format!("storm_{tag}");
    let url = config.url.as_str();
    let (collection_ref, tag_ref) = (collection.as_str(), tag.as_str());

    // Every client connected and subscribed from the head of the log.
    let setup = Instant::now();
    let connected: Vec<Result<(Socket, String)>> = futures::stream::iter(0..config.clients)
        .map(|index| async move {
            let mut socket = ws::connect(url, 4096).await?;
            let cursor = ws::hello(&mut socket, Some(&device(tag_ref, index))).await?;
            ws::subscribe(&mut socket, collection_ref, Some(&cursor)).await?;
            Ok((socket, cursor))
        })
        .buffer_unordered(config.connect_concurrency.max(1))
        .collect()
        .await;
    let setup_s = setup.elapsed().as_secs_f64();
    let (sockets, cursors): (Vec<Socket>, Vec<String>) = connected
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();

    // All drop; the changes they miss are written and acknowledged.
    drop(sockets);
    write_missed(config, &collection, &tag).await?;

    // All reconnect at once.
    let meter = CpuMeter::start(config.server_pid);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + config.timeout;
    let mut clients = JoinSet::new();
    for (index, cursor) in cursors.into_iter().enumerate() {
        let (url, collection, tag) = (config.url.clone(), collection.clone(), tag.clone());
        let writes = config.writes;
        clients.spawn(async move {
            let begun = Instant::now();
            let resumed = tokio::time::timeout_at(
                deadline,
                resume(&url, &device(&tag, index), &collection, &cursor, writes),
            )
            .await
            .unwrap_or_else(|_| Err(LoadError::Timeout("a client did not catch up".into())));
            let done = Instant::now();
            resumed.map(|socket| (socket, done - begun, done - started))
        });
    }
    let mut own = stats::micros_histogram();
    let mut since = stats::micros_histogram();
    let (mut caught_up, mut failed) = (0usize, 0usize);
    let mut first_error = None;
    let mut last = Duration::ZERO;
    // Sockets stay open until the last client is done, as clients would.
    let mut held = Vec::with_capacity(config.clients);
    while let Some(joined) = clients.join_next().await {
        let outcome =
            joined.map_err(|error| LoadError::Protocol(format!("client task failed: {error}")))?;
        match outcome {
            Ok((socket, client, storm)) => {
                caught_up += 1;
                stats::record(&mut own, client.as_micros() as u64);
                stats::record(&mut since, storm.as_micros() as u64);
                last = last.max(storm);
                held.push(socket);
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    let cpu = meter.stop();
    drop(held);
    Ok(ReconnectResult {
        clients: config.clients,
        writes: config.writes,
        caught_up,
        failed,
        first_error,
        storm_s: if failed > 0 {
            started.elapsed().as_secs_f64()
        } else {
            last.as_secs_f64()
        },
        client_latency: Percentiles::from_micros(&own),
        since_storm: Percentiles::from_micros(&since),
        setup_s,
        cpu,
    })
}

fn device(tag: &str, index: usize) -> String {
    format!("lg-storm-{tag}-{index}")
}

/// One client's return: connect, `hello` as the same device, `subscribe`
/// with its cursor, and read until it has the `writes` changes it missed.
async fn resume(
    url: &str,
    device: &str,
    collection: &str,
    cursor: &str,
    writes: u64,
) -> Result<Socket> {
    let mut socket = ws::connect(url, 4096).await?;
    ws::hello(&mut socket, Some(device)).await?;
    ws::subscribe(&mut socket, collection, Some(cursor)).await?;
    let mut received = 0u64;
    while received < writes {
        let read = socket.read_batch(|frame| {
            if ws::find_u64(frame, br#""n":"#).is_some() {
                received += 1;
            }
        });
        if read.await? == Read::Closed {
            return Err(LoadError::Protocol(
                "the server closed a resumed client".into(),
            ));
        }
    }
    Ok(socket)
}

/// Writes the changes the clients miss, one after another, each
/// acknowledged (durable) before the storm starts.
async fn write_missed(config: &ReconnectConfig, collection: &str, tag: &str) -> Result<()> {
    let mut socket = ws::connect(&config.url, 16 * 1024).await?;
    ws::hello(&mut socket, Some(&format!("lg-storm-writer-{tag}"))).await?;
    for n in 0..config.writes {
        let text = format!(
            r#"{{"type":"insert","collection":"{collection}","recordId":"s-{n}","opId":"lg-{tag}-{n}","data":{{"n":{n},"text":"missed while away"}}}}"#
        );
        ws::send(&mut socket, text).await?;
        ws::expect(&mut socket, "ack").await?;
    }
    socket.close().await;
    Ok(())
}
