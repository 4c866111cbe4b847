//! Fan-out latency: `S` subscribers of one collection, one writer sending
//! `insert`s at a fixed rate (open loop: each send is scheduled by the
//! clock, never held back waiting for an ack), and for every change the
//! time from its send to its arrival at each subscriber.
//!
//! The figure that matters is the *last-subscriber* latency of a change
//! (the largest over the subscribers): a change is only "delivered" once
//! everyone has it. Changes not delivered to every subscriber by the end of
//! the run plus a grace period are counted as undelivered.
//!
//! The receive path is kept cheap because on a 2-core machine it shares the
//! CPU with the server: sockets are read with [`crate::raw`] (one `read`
//! per wake-up, every frame in it handled in place), frames are not parsed
//! as JSON, the change's number is found by a byte search for `"n":` (the
//! writer puts it in the data, and the server writes compact JSON with
//! sorted keys), all subscribers share one receive task by default (the
//! cheapest per delivery, measured against one task per subscriber), and
//! each task keeps its own tallies, merged once at the end, so nothing is
//! shared between threads per frame. The writer runs on a thread of its
//! own so its schedule does not wait behind the receivers; sends more than
//! 2 ms late are counted, and show when the generator (or a server that
//! stops reading the writer's socket) held the writer back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::{LoadError, Result};
use crate::raw::Read;
use crate::stats::{self, CpuMeter, CpuUse, Percentiles};
use crate::ws::{self, Protocol, Socket};

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// `ws://host:port/ws`.
    pub url: String,
    /// Subscribers, each on its own connection.
    pub subscribers: usize,
    /// Changes per second the writer sends.
    pub rate: u32,
    /// How long the writer sends.
    pub seconds: f64,
    /// How long after the last send changes may still arrive.
    pub grace: Duration,
    /// Receive tasks the subscribers are spread over; 0 gives each
    /// subscriber its own task.
    pub receive_tasks: usize,
    /// Connections opened at once while setting up.
    pub connect_concurrency: usize,
    /// Whether each subscriber's `hello` names a device (which the server
    /// then registers durably).
    pub devices: bool,
    /// The server's pid, to report its CPU time.
    pub server_pid: Option<u32>,
    /// The protocol the server speaks (the peer relay acknowledges
    /// nothing, so its writer's `acks` stay 0).
    pub protocol: Protocol,
}

impl FanoutConfig {
    /// `subscribers` at `rate` changes/s for `seconds`, 2 s of grace, one
    /// receive task.
    pub fn new(url: impl Into<String>, subscribers: usize, rate: u32, seconds: f64) -> Self {
        FanoutConfig {
            url: url.into(),
            subscribers,
            rate,
            seconds,
            grace: Duration::from_secs(2),
            receive_tasks: 1,
            connect_concurrency: 64,
            devices: false,
            server_pid: None,
            protocol: Protocol::Sync,
        }
    }
}

/// What a fan-out run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// Subscribers.
    pub subscribers: usize,
    /// Target changes per second.
    pub rate: u32,
    /// Seconds of sending.
    pub seconds: f64,
    /// Changes the writer sent.
    pub changes_sent: u64,
    /// Acks the writer received.
    pub acks: u64,
    /// Error answers to the writer's inserts.
    pub write_errors: u64,
    /// Per change, the latency to the last subscriber (changes delivered to
    /// every subscriber only).
    pub last_subscriber: Percentiles,
    /// Every single delivery's latency.
    pub all_deliveries: Percentiles,
    /// Deliveries received.
    pub deliveries: u64,
    /// Deliveries per second, from the first send to the last delivery.
    pub deliveries_per_s: f64,
    /// Changes not delivered to every subscriber by the end of the grace
    /// period.
    pub undelivered: u64,
    /// `resync` messages received (subscribers the server dropped as too
    /// slow).
    pub resyncs: u64,
    /// Sends more than 2 ms behind their schedule (the writer falling
    /// behind: the generator, not the server, would be the limit).
    pub late_sends: u64,
    /// The writer's largest lag behind its schedule, in ms.
    pub writer_max_lag_ms: f64,
    /// Changes per second the writer actually sent, first send to last
    /// (below `rate` when the writer fell behind: a server reading the
    /// writer's socket slower than `rate` holds it back).
    pub achieved_rate: f64,
    /// Receive tasks used.
    pub receive_tasks: usize,
    /// CPU spent by the generator and the server over the measurement.
    pub cpu: CpuUse,
    /// Generator CPU per delivery, in µs.
    pub generator_us_per_delivery: f64,
}

/// One receive task's tallies.
struct Tally {
    /// Per change: the largest latency seen, in µs.
    max_us: Vec<u64>,
    /// Per change: deliveries seen.
    received: Vec<u32>,
    histogram: Histogram<u64>,
    resyncs: u64,
    last_delivery_ns: u64,
}

/// Runs the scenario.
pub async fn run(config: &FanoutConfig) -> Result<FanoutResult> {
    if config.subscribers == 0 || config.rate == 0 || config.seconds <= 0.0 {
        return Err(LoadError::Invalid(
            "fan-out needs subscribers, a rate and a duration".into(),
        ));
    }
    let tag = ws::run_tag();
    let collection = format!("fanout_{tag}");
    let total = (f64::from(config.rate) * config.seconds).ceil() as usize;

    let sockets = connect_all(config, &collection, &tag).await?;
    let tasks = match config.receive_tasks {
        0 => config.subscribers,
        n => n.min(config.subscribers),
    };
    let mut groups: Vec<Vec<Socket>> = (0..tasks).map(|_| Vec::new()).collect();
    for (index, socket) in sockets.into_iter().enumerate() {
        groups[index % tasks].push(socket);
    }

    let started = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..tasks).map(|_| AtomicU64::new(0)).collect());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::with_capacity(tasks);
    for (index, group) in groups.into_iter().enumerate() {
        receivers.push(tokio::spawn(receive(
            group,
            started,
            Arc::clone(&sent_at),
            Arc::clone(&progress),
            index,
            stop_rx.clone(),
        )));
    }

    // The writer runs on a thread and runtime of its own, so its pacing
    // does not wait behind the receive tasks.
    let meter = CpuMeter::start(config.server_pid);
    let (written_tx, written_rx) = tokio::sync::oneshot::channel();
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = {
        let (config, collection, tag) = (config.clone(), collection.clone(), tag.clone());
        let (sent_at, stop_writer) = (Arc::clone(&sent_at), Arc::clone(&stop_writer));
        std::thread::Builder::new()
            .name("loadgen-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(write(
                    &config,
                    &collection,
                    &tag,
                    started,
                    &sent_at,
                    written_tx,
                    &stop_writer,
                ))
            })?
    };
    let written = written_rx.await;

    // Wait for every delivery, or the grace period.
    let sent_count = sent_at.len() as u64;
    let expected = sent_count * config.subscribers as u64;
    let deadline = Instant::now() + config.grace;
    while written.is_ok() {
        let delivered: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        if delivered >= expected || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = meter.stop();
    let _ = stop_tx.send(true);
    stop_writer.store(true, Ordering::Relaxed);
    let (outcome, answers) = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|error| LoadError::Protocol(format!("writer failed: {error}")))?
        .map_err(|_| LoadError::Protocol("the writer panicked".into()))??;
    let (acks, write_errors) = (answers.acks, answers.errors);
    let mut tallies = Vec::with_capacity(tasks);
    for receiver in receivers {
        tallies.push(
            receiver
                .await
                .map_err(|error| LoadError::Protocol(format!("receive task failed: {error}")))?,
        );
    }

    let sent = outcome.sent as usize;
    debug_assert_eq!(outcome.sent, sent_count);
    let mut all = stats::micros_histogram();
    let mut last = stats::micros_histogram();
    let mut undelivered = 0u64;
    let mut deliveries = 0u64;
    let mut resyncs = 0u64;
    let mut last_delivery_ns = 0u64;
    for tally in &tallies {
        all.add(&tally.histogram)
            .map_err(|error| LoadError::Protocol(format!("histogram: {error}")))?;
        resyncs += tally.resyncs;
        last_delivery_ns = last_delivery_ns.max(tally.last_delivery_ns);
    }
    for change in 0..sent {
        let received: u64 = tallies
            .iter()
            .map(|tally| u64::from(tally.received[change]))
            .sum();
        deliveries += received;
        if received >= config.subscribers as u64 {
            let max = tallies.iter().map(|tally| tally.max_us[change]).max();
            stats::record(&mut last, max.unwrap_or(0));
        } else {
            undelivered += 1;
        }
    }
    let span_s = (last_delivery_ns as f64 / 1e9).max(f64::MIN_POSITIVE);
    let send_ns = |slot: Option<&AtomicU64>| slot.map_or(0, |at| at.load(Ordering::Relaxed));
    let sending_s = send_ns(sent_at.last()).saturating_sub(send_ns(sent_at.first())) as f64 / 1e9;
    let achieved_rate = match sent {
        0 | 1 => f64::from(config.rate),
        _ => (sent - 1) as f64 / sending_s.max(f64::MIN_POSITIVE),
    };
    Ok(FanoutResult {
        subscribers: config.subscribers,
        rate: config.rate,
        seconds: config.seconds,
        changes_sent: outcome.sent,
        acks,
        write_errors,
        last_subscriber: Percentiles::from_micros(&last),
        all_deliveries: Percentiles::from_micros(&all),
        deliveries,
        deliveries_per_s: deliveries as f64 / span_s,
        undelivered,
        resyncs,
        late_sends: outcome.late,
        writer_max_lag_ms: outcome.max_lag.as_secs_f64() * 1e3,
        achieved_rate,
        receive_tasks: tasks,
        cpu,
        generator_us_per_delivery: cpu.generator_s * 1e6 / (deliveries.max(1) as f64),
    })
}

async fn connect_all(config: &FanoutConfig, collection: &str, tag: &str) -> Result<Vec<Socket>> {
    let url = config.url.as_str();
    let (devices, protocol) = (config.devices, config.protocol);
    futures::stream::iter(0..config.subscribers)
        .map(|index| async move {
            let device = devices.then(|| format!("lg-sub-{tag}-{index}"));
            ws::subscriber(url, protocol, device.as_deref(), collection, 128 * 1024).await
        })
        .buffer_unordered(config.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The subscribers of one task, read until `stop`: every socket is a
/// future of this one task (only the woken ones are polled), each read's
/// frames are tallied under one uncontended lock, and `stop` is awaited
/// once for the whole task rather than beside every read.
async fn receive(
    group: Vec<Socket>,
    started: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
    progress: Arc<Vec<AtomicU64>>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let total = sent_at.len();
    let tally = Mutex::new(Tally {
        max_us: vec![0; total],
        received: vec![0; total],
        histogram: stats::micros_histogram(),
        resyncs: 0,
        last_delivery_ns: 0,
    });
    let delivered = AtomicU64::new(0);
    let readers = group.into_iter().map(|mut socket| {
        let (tally, delivered, sent_at, progress) = (&tally, &delivered, &sent_at, &progress);
        async move {
            let mut changes: Vec<u64> = Vec::with_capacity(256);
            let mut resyncs = 0u64;
            loop {
                let read = socket
                    .read_batch(|frame| {
                        if ws::message_type(frame) == Some(b"resync") {
                            resyncs += 1;
                        } else if let Some(change) = ws::find_u64(frame, br#""n":"#) {
                            changes.push(change);
                        }
                    })
                    .await;
                // A socket that fails or closes just stops; its missing
                // deliveries show as undelivered.
                if !matches!(read, Ok(Read::Frames(_))) {
                    break;
                }
                if changes.is_empty() && resyncs == 0 {
                    continue;
                }
                let now_ns = started.elapsed().as_nanos() as u64;
                let mut tally = tally
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                tally.resyncs += std::mem::take(&mut resyncs);
                let mut counted = 0;
                for change in changes.drain(..) {
                    let Some(micros) = stats::micros_since_sent(sent_at, change, now_ns) else {
                        continue;
                    };
                    let slot = change as usize;
                    stats::record(&mut tally.histogram, micros);
                    tally.max_us[slot] = tally.max_us[slot].max(micros);
                    tally.received[slot] += 1;
                    counted += 1;
                }
                tally.last_delivery_ns = now_ns;
                drop(tally);
                let sum = delivered.fetch_add(counted, Ordering::Relaxed) + counted;
                progress[index].store(sum, Ordering::Relaxed);
            }
        }
    });
    // Dropping the readers at `stop` closes their sockets.
    tokio::select! {
        _ = stop.wait_for(|stopped| *stopped) => {}
        _ = futures::future::join_all(readers) => {}
    }
    tally
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct WriteOutcome {
    sent: u64,
    late: u64,
    max_lag: Duration,
}

/// Acks and error answers the writer has had.
#[derive(Debug, Default)]
struct Answers {
    acks: u64,
    errors: u64,
}

impl Answers {
    fn count(&mut self, frame: &[u8]) {
        match ws::message_type(frame) {
            Some(b"ack") => self.acks += 1,
            Some(b"error" | b"conflict") => self.errors += 1,
            _ => {}
        }
    }

    /// Reads the writer's answers for `wait`.
    async fn read_for(&mut self, socket: &mut Socket, wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => return Ok(()),
                read = socket.read_batch(|frame| self.count(frame)) => {
                    if read? == Read::Closed {
                        return Err(LoadError::Protocol("the server closed the writer".into()));
                    }
                }
            }
        }
    }
}

/// The writer: connects, sends the changes on schedule, says so through
/// `written`, then reads answers until `stop`.
async fn write(
    config: &FanoutConfig,
    collection: &str,
    tag: &str,
    started: Instant,
    sent_at: &[AtomicU64],
    written: tokio::sync::oneshot::Sender<()>,
    stop: &AtomicBool,
) -> Result<(WriteOutcome, Answers)> {
    let mut socket = ws::connect(&config.url, 64 * 1024).await?;
    if config.protocol == Protocol::Sync {
        ws::hello(&mut socket, Some(&format!("lg-writer-{tag}"))).await?;
    }
    let mut answers = Answers::default();
    let outcome = write_paced(
        &mut socket,
        &mut answers,
        config,
        collection,
        tag,
        started,
        sent_at,
    )
    .await?;
    let _ = written.send(());
    while !stop.load(Ordering::Relaxed) {
        answers
            .read_for(&mut socket, Duration::from_millis(5))
            .await?;
    }
    socket.close().await;
    Ok((outcome, answers))
}

/// Sends `rate` inserts a second, each at its scheduled time, reading the
/// answers in between.
async fn write_paced(
    socket: &mut Socket,
    answers: &mut Answers,
    config: &FanoutConfig,
    collection: &str,
    tag: &str,
    started: Instant,
    sent_at: &[AtomicU64],
) -> Result<WriteOutcome> {
    let begin = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.rate));
    let mut late = 0u64;
    let mut max_lag = Duration::ZERO;
    for (change, slot) in sent_at.iter().enumerate() {
        let due = begin + interval.mul_f64(change as f64);
        answers
            .read_for(
                socket,
                due.saturating_duration_since(tokio::time::Instant::now()),
            )
            .await?;
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        if lag > Duration::from_millis(2) {
            late += 1;
        }
        max_lag = max_lag.max(lag);
        let text = format!(
            r#"{{"type":"insert","collection":"{collection}","recordId":"f-{change}","opId":"lg-{tag}-{change}","data":{{"n":{change},"text":"fan-out load"}}}}"#
        );
        stats::mark_sent(slot, started.elapsed().as_nanos() as u64);
        socket.send_text(text.as_bytes()).await?;
    }
    Ok(WriteOutcome {
        sent: sent_at.len() as u64,
        late,
        max_lag,
    })
}
