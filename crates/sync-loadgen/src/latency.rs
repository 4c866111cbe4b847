//! Write-to-other-client latency: one writer connection sends `insert`s at
//! a steady, modest rate (open loop, each send scheduled by the clock) and
//! one other connection, subscribed to the collection, receives them; the
//! figure is the time from the writer's send to the subscriber's receipt
//! of the change, for every change.
//!
//! Both connections say `hello` with a device id and the subscriber
//! subscribes, as clients do. The server sends a change to subscribers once
//! it is durable (the fan-out tails the committed log), so the latency
//! includes the write's fsync. The writer's `ack`s are timed too, from the
//! same sends: the difference between the two shows what delivery adds to
//! durability.
//!
//! At this rate neither process is short of CPU, so the figure is the path
//! of one change through the server, not a queue.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::error::{LoadError, Result};
use crate::raw::Read;
use crate::stats::{self, CpuMeter, CpuUse, Percentiles};
use crate::ws::{self, Socket};

/// What to run.
#[derive(Debug, Clone)]
pub struct LatencyConfig {
    /// `ws://host:port/ws`.
    pub url: String,
    /// Changes per second the writer sends.
    pub rate: u32,
    /// How long the writer sends.
    pub seconds: f64,
    /// How long after the last send changes may still arrive.
    pub grace: Duration,
    /// The server's pid, to report its CPU time.
    pub server_pid: Option<u32>,
}

impl LatencyConfig {
    /// `rate` changes/s for `seconds`, 2 s of grace.
    pub fn new(url: impl Into<String>, rate: u32, seconds: f64) -> Self {
        LatencyConfig {
            url: url.into(),
            rate,
            seconds,
            grace: Duration::from_secs(2),
            server_pid: None,
        }
    }
}

/// What a latency run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    /// Target changes per second.
    pub rate: u32,
    /// Changes the writer sent.
    pub changes_sent: u64,
    /// Changes the subscriber received.
    pub changes_received: u64,
    /// From the writer's send to the subscriber's receipt.
    pub latency: Percentiles,
    /// From the writer's send to its `ack` (the write durable).
    pub ack_latency: Percentiles,
    /// Error or conflict answers to the writer.
    pub write_errors: u64,
    /// CPU spent by the generator and the server.
    pub cpu: CpuUse,
}

/// Runs the scenario.
pub async fn run(config: &LatencyConfig) -> Result<LatencyResult> {
    if config.rate == 0 || config.seconds <= 0.0 {
        return Err(LoadError::Invalid(
            "latency needs a rate and a duration".into(),
        ));
    }
    let tag = ws::run_tag();
    let collection = format!("latency_{tag}");
    let total = (f64::from(config.rate) * config.seconds).ceil() as usize;

    let mut writer = ws::connect(&config.url, 64 * 1024).await?;
    ws::hello(&mut writer, Some(&format!("lg-lat-writer-{tag}"))).await?;
    let mut subscriber = ws::connect(&config.url, 64 * 1024).await?;
    ws::hello(&mut subscriber, Some(&format!("lg-lat-sub-{tag}"))).await?;
    ws::subscribe(&mut subscriber, &collection, None).await?;

    let started = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let (stop_tx, stop_rx) = watch::channel(false);
    let receiver = tokio::spawn(receive(subscriber, started, Arc::clone(&sent_at), stop_rx));

    let meter = CpuMeter::start(config.server_pid);
    let mut acks = Acks {
        histogram: stats::micros_histogram(),
        op_prefix: format!("\"lg-{tag}-").into_bytes(),
        answers: 0,
        errors: 0,
    };
    let begin = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.rate));
    for (change, slot) in sent_at.iter().enumerate() {
        let due = begin + interval.mul_f64(change as f64);
        acks.read_until(&mut writer, due, started, &sent_at).await?;
        let text = format!(
            r#"{{"type":"insert","collection":"{collection}","recordId":"l-{change}","opId":"lg-{tag}-{change}","data":{{"n":{change},"text":"latency"}}}}"#
        );
        stats::mark_sent(slot, started.elapsed().as_nanos() as u64);
        writer.send_text(text.as_bytes()).await?;
    }
    // The last acks and deliveries, or the grace period.
    let deadline = tokio::time::Instant::now() + config.grace;
    while acks.answers < total as u64 && tokio::time::Instant::now() < deadline {
        acks.read_until(
            &mut writer,
            tokio::time::Instant::now() + Duration::from_millis(5),
            started,
            &sent_at,
        )
        .await?;
    }
    let mut receiver = receiver;
    let joined = match tokio::time::timeout_at(deadline, &mut receiver).await {
        Ok(joined) => joined,
        Err(_) => {
            let _ = stop_tx.send(true);
            receiver.await
        }
    };
    let cpu = meter.stop();
    let (histogram, received) =
        joined.map_err(|error| LoadError::Protocol(format!("receive task failed: {error}")))?;
    writer.close().await;
    Ok(LatencyResult {
        rate: config.rate,
        changes_sent: total as u64,
        changes_received: received,
        latency: Percentiles::from_micros(&histogram),
        ack_latency: Percentiles::from_micros(&acks.histogram),
        write_errors: acks.errors,
        cpu,
    })
}

/// The writer's answers, each matched to its write by the `opId` it
/// carries.
struct Acks {
    histogram: hdrhistogram::Histogram<u64>,
    /// `"lg-{tag}-`: what precedes the change's number in an `opId`.
    op_prefix: Vec<u8>,
    /// Answers received.
    answers: u64,
    errors: u64,
}

impl Acks {
    /// Tallies one frame from the server.
    fn count(&mut self, frame: &[u8], now_ns: u64, sent_at: &[AtomicU64]) {
        let kind = ws::message_type(frame);
        if !matches!(kind, Some(b"ack" | b"error" | b"conflict")) {
            return;
        }
        self.answers += 1;
        if kind != Some(b"ack") {
            self.errors += 1;
            return;
        }
        if let Some(micros) = ws::find_u64(frame, &self.op_prefix)
            .and_then(|change| stats::micros_since_sent(sent_at, change, now_ns))
        {
            stats::record(&mut self.histogram, micros);
        }
    }

    /// Reads the writer's answers until `until`.
    async fn read_until(
        &mut self,
        socket: &mut Socket,
        until: tokio::time::Instant,
        started: Instant,
        sent_at: &[AtomicU64],
    ) -> Result<()> {
        loop {
            let read = socket.read_batch(|frame| {
                self.count(frame, started.elapsed().as_nanos() as u64, sent_at);
            });
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(until) => return Ok(()),
                read = read => {
                    if read? == Read::Closed {
                        return Err(LoadError::Protocol("the server closed the writer".into()));
                    }
                }
            }
        }
    }
}

/// The subscriber: records each change's latency until every change has
/// arrived or `stop` is set.
async fn receive(
    mut socket: Socket,
    started: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
    mut stop: watch::Receiver<bool>,
) -> (hdrhistogram::Histogram<u64>, u64) {
    let mut histogram = stats::micros_histogram();
    let mut received = 0u64;
    let total = sent_at.len() as u64;
    let reading = async {
        let mut changes: Vec<u64> = Vec::with_capacity(16);
        while received < total {
            let read = socket
                .read_batch(|frame| {
                    if let Some(change) = ws::find_u64(frame, br#""n":"#) {
                        changes.push(change);
                    }
                })
                .await;
            if !matches!(read, Ok(Read::Frames(_))) {
                break;
            }
            let now_ns = started.elapsed().as_nanos() as u64;
            for change in changes.drain(..) {
                if let Some(micros) = stats::micros_since_sent(&sent_at, change, now_ns) {
                    stats::record(&mut histogram, micros);
                    received += 1;
                }
            }
        }
    };
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => {}
        () = reading => {}
    }
    (histogram, received)
}
