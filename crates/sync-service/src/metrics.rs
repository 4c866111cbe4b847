//! What each server node measures, for `GET /metrics` (Prometheus text
//! format, by its conventions: `_total` counters, `_seconds` histograms with
//! buckets, gauges for what is there now, labels from small fixed sets and
//! never an id) and the sync summary of `GET /v1/stats` (mean and p99 from
//! a fine-grained histogram). The store's durable counters (operations by
//! status, conflicts by strategy, log head, documents) are read at each
//! scrape; the operations nothing is written for (duplicates, errors) are
//! counted by each node's [`sync_engine::Syncer`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram as FineHistogram;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;
use sync_core::store::StoreStats;
use sync_core::{CommitObserver, OpStatus, Strategy};

/// The content type of [`Metrics::prometheus`]'s text.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Which door a sync request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `POST /v1/sync` or bulk sync.
    Http,
    /// A write message on a WebSocket.
    WebSocket,
}

impl Door {
    /// Every door, in the order of [`Door::index`].
    const ALL: [Door; 2] = [Door::Http, Door::WebSocket];

    fn label(self) -> &'static str {
        match self {
            Door::Http => "http",
            Door::WebSocket => "websocket",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The type of a client's WebSocket message, the label of its timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `ping`.
    Ping,
    /// `hello`.
    Hello,
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `insert`.
    Insert,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
}

impl MessageKind {
    /// Every type, in the order of [`MessageKind::index`].
    const ALL: [MessageKind; 7] = [
        MessageKind::Ping,
        MessageKind::Hello,
        MessageKind::Subscribe,
        MessageKind::Unsubscribe,
        MessageKind::Insert,
        MessageKind::Update,
        MessageKind::Delete,
    ];

    fn label(self) -> &'static str {
        match self {
            MessageKind::Ping => "ping",
            MessageKind::Hello => "hello",
            MessageKind::Subscribe => "subscribe",
            MessageKind::Unsubscribe => "unsubscribe",
            MessageKind::Insert => "insert",
            MessageKind::Update => "update",
            MessageKind::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One door's series, looked up once: recording a request finds no label.
#[derive(Debug)]
struct DoorSeries {
    ok: Counter,
    error: Counter,
    seconds: Histogram,
}

/// The label set of one label.
type Label = [(&'static str, &'static str); 1];
/// A histogram family whose buckets are fixed by a function.
type Histograms = Family<Label, Histogram, fn() -> Histogram>;

/// Buckets from 100 us to about 13 s, doubling.
fn duration_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_1, 2.0, 18,
    ))
}

/// The metrics of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    syncs: AtomicU64,
    failed_syncs: AtomicU64,
    durations_us: Mutex<FineHistogram<u64>>,
    /// By [`Door::index`].
    doors: [DoorSeries; 2],
    /// By [`MessageKind::index`].
    message_seconds: [Histogram; 7],
    delivery_delay_seconds: Histogram,
    commit_seconds: Histogram,
    commit_writes: Histogram,
    connections: Gauge,
    deliveries: Counter,
    resyncs: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<[(&'static str, &'static str); 2], Counter>::default();
        let request_seconds = Histograms::new_with_constructor(duration_buckets);
        // Every series from zero, so that rates start at once.
        let doors = Door::ALL.map(|door| {
            let series = |outcome| {
                requests
                    .get_or_create(&[("door", door.label()), ("outcome", outcome)])
                    .clone()
            };
            DoorSeries {
                ok: series("ok"),
                error: series("error"),
                seconds: request_seconds
                    .get_or_create(&[("door", door.label())])
                    .clone(),
            }
        });
        let message_families = Histograms::new_with_constructor(duration_buckets);
        let message_seconds = MessageKind::ALL.map(|kind| {
            message_families
                .get_or_create(&[("type", kind.label())])
                .clone()
        });
        let delivery_delay_seconds = duration_buckets();
        let commit_seconds = duration_buckets();
        // 1 to 4,096 writes, doubling: up to the largest group.
        let commit_writes = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 13),
        );
        let connections = Gauge::default();
        let deliveries = Counter::default();
        let resyncs = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "sync_requests",
            "Sync requests handled by this node, by door and outcome.",
            requests.clone(),
        );
        registry.register_with_unit(
            "sync_request_duration",
            "Time to handle a sync request, by door.",
            Unit::Seconds,
            request_seconds.clone(),
        );
        registry.register_with_unit(
            "sync_websocket_message_duration",
            "Time to handle a client's WebSocket message, by message type.",
            Unit::Seconds,
            message_families,
        );
        registry.register_with_unit(
            "sync_fanout_delay",
            "From a change's commit to its push to a subscriber's connection.",
            Unit::Seconds,
            delivery_delay_seconds.clone(),
        );
        registry.register_with_unit(
            "sync_commit_duration",
            "Time of a group commit, from its transaction's start to durability.",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        registry.register(
            "sync_commit_group_writes",
            "Writes committed together in one group commit.",
            commit_writes.clone(),
        );
        registry.register(
            "sync_connections",
            "WebSocket connections open on this node.",
            connections.clone(),
        );
        registry.register(
            "sync_deliveries",
            "Changes pushed to WebSocket subscribers.",
            deliveries.clone(),
        );
        registry.register(
            "sync_resyncs",
            "Slow consumers told to resync.",
            resyncs.clone(),
        );
        Metrics {
            registry,
            syncs: AtomicU64::new(0),
            failed_syncs: AtomicU64::new(0),
            // 1 us to 10 min, 3 significant digits: fits any sync.
            durations_us: Mutex::new(
                FineHistogram::new_with_bounds(1, 600_000_000, 3)
                    .expect("constant histogram bounds are valid"),
            ),
            doors,
            message_seconds,
            delivery_delay_seconds,
            commit_seconds,
            commit_writes,
            connections,
            deliveries,
            resyncs,
        }
    }
}

/// A summary of sync requests (`GET /v1/stats`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    /// Sync requests handled (bulk sync, `/v1/sync`, WebSocket writes).
    pub total_syncs: u64,
    /// Share of them that ended without error (1.0 when there were none).
    pub success_rate: f64,
    /// Mean duration in milliseconds.
    pub average_duration_ms: f64,
    /// 99th percentile duration in milliseconds.
    pub p99_duration_ms: f64,
}

/// What the node knows at a scrape besides its own metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scrape<'a> {
    /// The store's durable counters.
    pub(crate) store: &'a StoreStats,
    /// Devices with a WebSocket connection on this node.
    pub(crate) devices_online: usize,
    /// Live subscriptions on this node.
    pub(crate) subscriptions: usize,
    /// Pushes waiting in the send queues of this node's connections.
    pub(crate) queued_pushes: usize,
    /// Batches of writes at the store and waiting for it, by priority.
    pub(crate) writes: crate::admission::GateLoad,
}

impl Metrics {
    /// Records one sync request through `door`.
    pub fn record_sync(&self, door: Door, duration: Duration, ok: bool) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed_syncs.fetch_add(1, Ordering::Relaxed);
        }
        let series = &self.doors[door.index()];
        if ok { &series.ok } else { &series.error }.inc();
        series.seconds.observe(duration.as_secs_f64());
        let micros = (duration.as_micros() as u64).clamp(1, 600_000_000);
        if let Ok(mut histogram) = self.durations_us.lock() {
            let _ = histogram.record(micros);
        }
    }

    /// Records the handling of one WebSocket message of `kind`.
    pub fn record_message(&self, kind: MessageKind, duration: Duration) {
        self.message_seconds[kind.index()].observe(duration.as_secs_f64());
    }

    /// Records a change handed to a subscriber's connection `delay` after
    /// its commit.
    pub fn record_delivery(&self, delay: Duration) {
        self.deliveries.inc();
        self.delivery_delay_seconds.observe(delay.as_secs_f64());
    }

    /// Records a slow consumer told to resync.
    pub fn record_resync(&self) {
        self.resyncs.inc();
    }

    /// Counts a WebSocket connection opened (`true`) or closed.
    pub fn connection(&self, opened: bool) {
        self.connections.inc_by(if opened { 1 } else { -1 });
    }

    /// WebSocket connections open now.
    pub fn connections(&self) -> u64 {
        u64::try_from(self.connections.get()).unwrap_or(0)
    }

    /// The summary of every sync recorded so far.
    pub fn summary(&self) -> SyncSummary {
        let total = self.syncs.load(Ordering::Relaxed);
        let failed = self.failed_syncs.load(Ordering::Relaxed);
        let (mean, p99) = match self.durations_us.lock() {
            Ok(histogram) if !histogram.is_empty() => (
                histogram.mean() / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0,
            ),
            _ => (0.0, 0.0),
        };
        SyncSummary {
            total_syncs: total,
            success_rate: if total == 0 {
                1.0
            } else {
                (total - failed) as f64 / total as f64
            },
            average_duration_ms: mean,
            p99_duration_ms: p99,
        }
    }

    /// Everything in the Prometheus text format.
    pub(crate) fn prometheus(&self, scrape: Scrape<'_>) -> String {
        let mut now = Registry::default();
        let operations = Family::<Label, Counter>::default();
        // Every label value from zero, so that rates start at the first
        // scrape.
        for status in OpStatus::ALL {
            let count = scrape.store.operations.get(&status).copied();
            operations
                .get_or_create(&[("status", status.as_str())])
                .inc_by(count.unwrap_or(0));
        }
        now.register(
            "sync_operations",
            "Operations, by status (durable, all nodes).",
            operations,
        );
        let conflicts = Family::<Label, Counter>::default();
        for strategy in Strategy::ALL {
            let count = scrape.store.conflicts.get(&strategy).copied();
            conflicts
                .get_or_create(&[("strategy", strategy.as_str())])
                .inc_by(count.unwrap_or(0));
        }
        now.register(
            "sync_conflicts",
            "Conflicts, by the strategy that handled them (durable, all nodes).",
            conflicts,
        );
        let gauge = |value: u64| {
            let gauge = Gauge::<i64>::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            gauge
        };
        now.register(
            "sync_log_head",
            "The durable head of the change log.",
            gauge(scrape.store.head.get()),
        );
        now.register(
            "sync_documents",
            "Live documents.",
            gauge(scrape.store.documents),
        );
        now.register(
            "sync_devices_online",
            "Devices with a WebSocket connection on this node.",
            gauge(scrape.devices_online as u64),
        );
        now.register(
            "sync_subscriptions",
            "Live subscriptions on this node.",
            gauge(scrape.subscriptions as u64),
        );
        now.register(
            "sync_queued_pushes",
            "Pushes waiting in the send queues of this node's connections.",
            gauge(scrape.queued_pushes as u64),
        );
        now.register(
            "sync_writes_in_flight",
            "Batches of writes at the store on this node.",
            gauge(scrape.writes.in_flight as u64),
        );
        let waiting = Family::<Label, Gauge>::default();
        for priority in sync_core::Priority::ALL {
            let count = scrape.writes.waiting[priority.index()];
            waiting
                .get_or_create(&[("priority", priority.as_str())])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        now.register(
            "sync_writes_waiting",
            "Batches of writes waiting to go to the store on this node, by priority.",
            waiting,
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        let _ = prometheus_text::encode(&mut text, &now);
        text
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, writes: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_writes.observe(writes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_array_is_in_the_order_of_its_index() {
        for (at, door) in Door::ALL.into_iter().enumerate() {
            assert_eq!(door.index(), at, "{door:?}");
        }
        for (at, kind) in MessageKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), at, "{kind:?}");
        }
    }

    #[test]
    fn summarises_and_renders() {
        let metrics = Metrics::default();
        assert_eq!(metrics.summary().success_rate, 1.0);
        for ms in 1..=100 {
            metrics.record_sync(Door::Http, Duration::from_millis(ms), ms != 100);
        }
        let summary = metrics.summary();
        assert_eq!(summary.total_syncs, 100);
        assert!((summary.success_rate - 0.99).abs() < 1e-9);
        assert!((summary.p99_duration_ms - 99.0).abs() < 1.0, "{summary:?}");
        let text = metrics.prometheus(Scrape {
            store: &StoreStats::default(),
            devices_online: 0,
            subscriptions: 0,
            queued_pushes: 0,
            writes: crate::admission::GateLoad::default(),
        });
        for line in [
            "# TYPE sync_requests_total counter",
            "sync_requests_total{door=\"http\",outcome=\"ok\"} 99",
            "sync_requests_total{door=\"http\",outcome=\"error\"} 1",
            "# TYPE sync_request_duration_seconds histogram",
            "sync_request_duration_seconds_count{door=\"http\"} 100",
            "# TYPE sync_log_head gauge",
            "sync_writes_waiting{priority=\"high\"} 0",
            "sync_writes_in_flight 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
