//! Percentiles from HDR histograms, and what `/proc` says about a process
//! (resident memory, CPU time), so a run can tell whose CPU it spent.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1_000.0;
        Percentiles {
            count: histogram.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: histogram.max() as f64 / 1_000.0,
        }
    }
}

/// A histogram of microseconds from 1 µs to 10 minutes, 3 significant
/// digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant bounds are valid")
}

/// Records `micros` (at least 1) into `histogram`, saturating at its top.
pub fn record(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.max(1));
}

/// Marks change `slot` sent at `now_ns` (nanoseconds since the run
/// started): stored plus one, so that 0 means "not sent yet".
pub fn mark_sent(slot: &AtomicU64, now_ns: u64) {
    slot.store(now_ns + 1, Ordering::Release);
}

/// Microseconds from the send of `change` (see [`mark_sent`]) to `now_ns`;
/// `None` for a change out of range or not sent yet.
pub fn micros_since_sent(sent_at: &[AtomicU64], change: u64, now_ns: u64) -> Option<u64> {
    let sent_ns = sent_at
        .get(usize::try_from(change).ok()?)?
        .load(Ordering::Acquire);
    (sent_ns != 0).then(|| now_ns.saturating_sub(sent_ns - 1) / 1_000)
}

/// The resident memory of process `pid` (`VmRSS` of `/proc/<pid>/status`),
/// in KiB.
pub fn resident_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc/<pid>/status"))
}

/// This process's soft limit of open files (`Max open files` of
/// `/proc/self/limits`); `None` when unlimited.
pub fn open_files_limit() -> std::io::Result<Option<u64>> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| std::io::Error::other("no open-files limit in /proc/self/limits"))?;
    Ok(soft.parse().ok())
}

/// CPU seconds (user + system) process `pid` has used, from
/// `/proc/<pid>/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at `)`.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| std::io::Error::other("malformed /proc/<pid>/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |index: usize| -> u64 {
        fields
            .get(index - 3)
            .and_then(|field| field.parse().ok())
            .unwrap_or(0)
    };
    Ok((ticks(14) + ticks(15)) as f64 / 100.0)
}

/// CPU seconds the processes spent over a span: this process (the load
/// generator) and, when known, the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    /// Wall-clock seconds of the span.
    pub wall_s: f64,
    /// CPU seconds of the load generator.
    pub generator_s: f64,
    /// CPU seconds of the server, when its pid was given.
    pub server_s: Option<f64>,
}

/// A running measurement of [`CpuUse`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    started: std::time::Instant,
    generator: f64,
    server: Option<(u32, f64)>,
}

impl CpuMeter {
    /// Starts measuring; `server_pid` adds the server's CPU time.
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            generator: cpu_seconds(std::process::id()).unwrap_or(0.0),
            server: server_pid.and_then(|pid| Some((pid, cpu_seconds(pid).ok()?))),
        }
    }

    /// What was spent since [`CpuMeter::start`].
    pub fn stop(&self) -> CpuUse {
        CpuUse {
            wall_s: self.started.elapsed().as_secs_f64(),
            generator_s: cpu_seconds(std::process::id()).unwrap_or(0.0) - self.generator,
            server_s: self
                .server
                .and_then(|(pid, before)| Some(cpu_seconds(pid).ok()? - before)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut histogram = micros_histogram();
        for micros in 1..=1_000 {
            record(&mut histogram, micros * 10);
        }
        let p = Percentiles::from_micros(&histogram);
        assert_eq!(p.count, 1_000);
        assert!((p.p50_ms - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p99_ms - 9.9).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 10.0).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        assert!(resident_kib(std::process::id()).unwrap() > 0);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
        assert!(open_files_limit().unwrap().is_none_or(|limit| limit > 0));
    }
}
