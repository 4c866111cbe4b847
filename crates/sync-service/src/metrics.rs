//! Sync analytics kept in memory by each server node (the figures of
//! `GET /v1/stats`): how many sync requests ran, how many failed, and
//! how long they took (mean and p99 from a histogram). Durable counters
//! (operations by status, conflicts by strategy) live in the store; the
//! operations nothing is written for (duplicates, errors) are counted by
//! each node's [`sync_engine::Syncer`].

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use sync_core::store::StoreStats;

/// Counters and the duration histogram of one node.
#[derive(Debug)]
pub struct Metrics {
    syncs: AtomicU64,
    failed_syncs: AtomicU64,
    durations_us: Mutex<Histogram<u64>>,
    /// WebSocket connections open now.
    pub connections: AtomicU64,
    /// Changes pushed to WebSocket subscribers.
    pub deliveries: AtomicU64,
    /// Slow consumers sent `resync`.
    pub resyncs: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            syncs: AtomicU64::new(0),
            failed_syncs: AtomicU64::new(0),
            // 1 us to 10 min, 3 significant digits: fits any sync.
            durations_us: Mutex::new(
                Histogram::new_with_bounds(1, 600_000_000, 3)
                    .expect("constant histogram bounds are valid"),
            ),
            connections: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }
}

/// A summary of sync requests (`GET /v1/stats`).
#[derive(Debug, Clone, Serialize, PartialEq)]
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

impl Metrics {
    /// Records one sync request.
    pub fn record_sync(&self, duration: Duration, ok: bool) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed_syncs.fetch_add(1, Ordering::Relaxed);
        }
        let micros = (duration.as_micros() as u64).clamp(1, 600_000_000);
        if let Ok(mut histogram) = self.durations_us.lock() {
            let _ = histogram.record(micros);
        }
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
    pub fn prometheus(&self, store: &StoreStats, devices_online: usize) -> String {
        let summary = self.summary();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "sync_requests_total",
            "counter",
            "Sync requests handled by this node.",
            &[(String::new(), summary.total_syncs as f64)],
        );
        metric(
            "sync_requests_failed_total",
            "counter",
            "Sync requests that ended in an error.",
            &[(
                String::new(),
                self.failed_syncs.load(Ordering::Relaxed) as f64,
            )],
        );
        metric(
            "sync_request_duration_ms",
            "summary",
            "Sync request duration.",
            &[
                ("{quantile=\"0.99\"}".into(), summary.p99_duration_ms),
                ("_mean".into(), summary.average_duration_ms),
            ],
        );
        let by_status: Vec<(String, f64)> = store
            .operations
            .iter()
            .map(|(status, n)| {
                (
                    format!("{{status=\"{}\"}}", status_name(*status)),
                    *n as f64,
                )
            })
            .collect();
        metric(
            "sync_operations_total",
            "counter",
            "Operations applied, by status.",
            &by_status,
        );
        let by_strategy: Vec<(String, f64)> = store
            .conflicts
            .iter()
            .map(|(strategy, n)| (format!("{{strategy=\"{strategy}\"}}"), *n as f64))
            .collect();
        metric(
            "sync_conflicts_total",
            "counter",
            "Conflicts, by the strategy that handled them.",
            &by_strategy,
        );
        metric(
            "sync_log_head",
            "gauge",
            "The durable head of the change log.",
            &[(String::new(), store.head.get() as f64)],
        );
        metric(
            "sync_documents",
            "gauge",
            "Live documents.",
            &[(String::new(), store.documents as f64)],
        );
        metric(
            "sync_connections",
            "gauge",
            "WebSocket connections open on this node.",
            &[(
                String::new(),
                self.connections.load(Ordering::Relaxed) as f64,
            )],
        );
        metric(
            "sync_devices_online",
            "gauge",
            "Devices with a WebSocket connection on this node.",
            &[(String::new(), devices_online as f64)],
        );
        metric(
            "sync_deliveries_total",
            "counter",
            "Changes pushed to WebSocket subscribers.",
            &[(
                String::new(),
                self.deliveries.load(Ordering::Relaxed) as f64,
            )],
        );
        metric(
            "sync_resyncs_total",
            "counter",
            "Slow consumers told to resync.",
            &[(String::new(), self.resyncs.load(Ordering::Relaxed) as f64)],
        );
        out
    }
}

fn status_name(status: sync_core::OpStatus) -> &'static str {
    use sync_core::OpStatus;
    match status {
        OpStatus::Success => "success",
        OpStatus::Merged => "merged",
        OpStatus::Conflict => "conflict",
        OpStatus::Duplicate => "duplicate",
        OpStatus::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_and_renders() {
        let metrics = Metrics::default();
        assert_eq!(metrics.summary().success_rate, 1.0);
        for ms in 1..=100 {
            metrics.record_sync(Duration::from_millis(ms), ms != 100);
        }
        let summary = metrics.summary();
        assert_eq!(summary.total_syncs, 100);
        assert!((summary.success_rate - 0.99).abs() < 1e-9);
        assert!((summary.p99_duration_ms - 99.0).abs() < 1.0, "{summary:?}");
        let text = metrics.prometheus(&StoreStats::default(), 0);
        assert!(text.contains("sync_requests_total 100"), "{text}");
        assert!(text.contains("# TYPE sync_log_head gauge"));
    }
}
