//! Durable acknowledged writes: `K` WebSocket writers, each sending one
//! `insert` and waiting for its `ack` (sent only once the write is on
//! disk) before the next: a closed loop, so the figure is the server's
//! acknowledged writes per second at that concurrency.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{LoadError, Result};
use crate::raw::Read;
use crate::stats::{self, CpuMeter, CpuUse, Percentiles};
use crate::ws;

/// What to run.
#[derive(Debug, Clone)]
pub struct WritesConfig {
    /// `ws://host:port/ws`.
    pub url: String,
    /// Concurrent writers, each on its own connection.
    pub writers: usize,
    /// How long they write.
    pub seconds: f64,
    /// The server's pid, to report its CPU time.
    pub server_pid: Option<u32>,
}

/// What a writes run measured.
#[derive(Debug, Clone, Serialize)]
pub struct WritesResult {
    /// Writers.
    pub writers: usize,
    /// Acknowledged writes.
    pub acked: u64,
    /// Writes answered with an error or a conflict.
    pub errors: u64,
    /// Acknowledged writes per second.
    pub writes_per_s: f64,
    /// Time from send to ack.
    pub ack_latency: Percentiles,
    /// CPU spent by the generator and the server.
    pub cpu: CpuUse,
}

/// Runs the scenario.
pub async fn run(config: &WritesConfig) -> Result<WritesResult> {
    if config.writers == 0 || config.seconds <= 0.0 {
        return Err(LoadError::Invalid(
            "writes needs writers and a duration".into(),
        ));
    }
    let tag = ws::run_tag();
    let collection = format!("writes_{tag}");
    let mut sockets = Vec::with_capacity(config.writers);
    for writer in 0..config.writers {
        let mut socket = ws::connect(&config.url, 16 * 1024).await?;
        ws::hello(&mut socket, Some(&format!("lg-w-{tag}-{writer}"))).await?;
        sockets.push(socket);
    }
    let run_for = Duration::from_secs_f64(config.seconds);
    let meter = CpuMeter::start(config.server_pid);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.writers);
    for (writer, mut socket) in sockets.into_iter().enumerate() {
        let collection = collection.clone();
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = stats::micros_histogram();
            let (mut acked, mut errors) = (0u64, 0u64);
            let mut n = 0u64;
            while started.elapsed() < run_for {
                let text = format!(
                    r#"{{"type":"insert","collection":"{collection}","recordId":"w{writer}-{n}","opId":"lg-{tag}-{writer}-{n}","data":{{"n":{n},"text":"durable write"}}}}"#
                );
                let sent = Instant::now();
                ws::send(&mut socket, text).await?;
                let mut answer = None;
                while answer.is_none() {
                    let read = socket.read_batch(|frame| match ws::message_type(frame) {
                        Some(b"ack") => answer = Some(true),
                        Some(b"error" | b"conflict") => answer = Some(false),
                        _ => {}
                    });
                    let read = tokio::time::timeout(ws::SETUP_TIMEOUT, read)
                        .await
                        .map_err(|_| LoadError::Timeout("no answer to a write".into()))??;
                    if read == Read::Closed {
                        return Err(LoadError::Protocol("the server closed a writer".into()));
                    }
                }
                match answer {
                    Some(true) => acked += 1,
                    _ => errors += 1,
                }
                stats::record(&mut histogram, sent.elapsed().as_micros() as u64);
                n += 1;
            }
            Ok::<_, LoadError>((histogram, acked, errors))
        }));
    }
    let mut histogram = stats::micros_histogram();
    let (mut acked, mut errors) = (0u64, 0u64);
    for task in tasks {
        let (one, a, e) = task
            .await
            .map_err(|error| LoadError::Protocol(format!("writer task failed: {error}")))??;
        histogram
            .add(&one)
            .map_err(|error| LoadError::Protocol(format!("histogram: {error}")))?;
        acked += a;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(WritesResult {
        writers: config.writers,
        acked,
        errors,
        writes_per_s: acked as f64 / elapsed,
        ack_latency: Percentiles::from_micros(&histogram),
        cpu: meter.stop(),
    })
}
