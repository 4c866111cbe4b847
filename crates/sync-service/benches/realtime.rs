//! Real-time benchmarks of the server binary over real sockets, with the
//! budgets `docs/benchmarks.md` reports: fan-out latency with 1,000
//! subscribers at 100 and 1,000 changes/s, durable acknowledged writes of
//! 64 WebSocket writers, bulk sync in batches of 500, the resident memory
//! of 10,000 idle connections (and of 50,000 held, the limit of open files
//! raised) and the catch-up of a client 100,000 changes
//! behind; and, with the budgets of the specification where it has one,
//! the latency of a write to one other subscribed client, the resident
//! memory per document after 100,000 documents, and a reconnect storm of
//! 10,000 subscribed clients resuming from their cursors.
//!
//! Each scenario gets a fresh `sync-server` child process (release build,
//! sled store in a temporary directory, fsync durability, `RUST_LOG=warn`)
//! on a free port, driven by `sync-loadgen` from this process. With auth
//! `none` every connection is the one user `anonymous`, so the per-user
//! connection limit (default 1,000) and the operation rate limit (default
//! 10,000/s) are raised in the server's configuration file; everything
//! else is the default.
//!
//! The peer, a Node.js relay (`bench/peer-relay`, installed with `npm ci`
//! when its packages are missing), runs the same fan-out and idle scenarios
//! from the same load generator in the same run; the records give its
//! figures and the ratios, and `fanout-latency.svg` charts both. Without
//! Node.js the peer's figures are left out, loudly.
//!
//! Results are printed (each scenario's whole result as JSON, with the CPU
//! both processes spent) and written as records to
//! `$SYNC_BENCH_OUT/realtime.json` for `cargo xtask bench`. With
//! `SYNC_BENCH_QUICK` set the runs are shorter and the counts smaller.
//! Scenario names after `--` (`fanout`, `writes`, `bulk`, `idle`, `held`,
//! `catchup`, `latency`, `memory`, `reconnect`, `postgres`) run only those.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sync_loadgen::chart::{self, Series};
use sync_loadgen::ws::Protocol;
use sync_loadgen::{bulk, catchup, fanout, idle, latency, memory, reconnect, writes};
use sync_testkit::ChildServer;
use sync_testkit::bench::{output_dir, quick, record, write_records};

/// The server's settings for the benchmark: defaults, except the limits a
/// single-user load would hit.
const SERVER_CONFIG: &str = "\
[limits]
connections_per_user_max = 100000
operations_per_second = 100000000
operations_burst = 100000000
";

/// A `sync-server` child process, killed when dropped (a panic included;
/// then its log is printed).
struct ServerProcess {
    server: ChildServer,
    /// Holds the data directory and the log until the process is gone.
    _dir: tempfile::TempDir,
    /// The PostgreSQL database and schema to drop, for a postgres server.
    schema: Option<(String, String)>,
}

/// Which store the server under test runs on.
#[derive(Debug, Clone)]
enum Backend {
    /// The embedded default.
    Sled,
    /// PostgreSQL at this URL, in a fresh schema.
    Postgres(String),
}

impl Backend {
    /// The prefix of the figures' names.
    fn label(&self) -> &'static str {
        match self {
            Backend::Sled => "realtime",
            Backend::Postgres(_) => "realtime (postgres)",
        }
    }
}

impl ServerProcess {
    async fn start() -> ServerProcess {
        ServerProcess::start_on(&Backend::Sled).await
    }

    async fn start_on(backend: &Backend) -> ServerProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sync.toml");
        std::fs::write(&config, SERVER_CONFIG).expect("write the config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
        let schema = match backend {
            Backend::Sled => None,
            Backend::Postgres(url) => {
                let schema = format!("bench_{}_{}", free_port(), std::process::id());
                command
                    .args(["--store", "postgres", "--database-url", url])
                    .args(["--database-schema", &schema]);
                Some((url.clone(), schema))
            }
        };
        command
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--durability", "fsync"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        let server = ChildServer::start(command, Some(&dir.path().join("server.log"))).await;
        ServerProcess {
            server,
            _dir: dir,
            schema,
        }
    }

    fn pid(&self) -> u32 {
        self.server.id()
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.server.addr())
    }

    fn http_url(&self) -> String {
        self.server.url("")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.server.kill();
        if let Some((url, schema)) = self.schema.take() {
            sync_testkit::run_aside(move || async move {
                sync_store::PgStore::drop_schema_at(&url, &schema).await
            });
        }
        if std::thread::panicking() {
            println!("sync-server's log:\n{}", self.server.output());
        }
    }
}

/// The peer relay as a child process, killed when dropped.
struct PeerProcess {
    child: Child,
    port: u16,
}

impl PeerProcess {
    /// Installs the relay's packages if they are missing and starts it;
    /// `None` (said on stdout) when Node.js or npm cannot.
    async fn start() -> Option<PeerProcess> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/peer-relay");
        if !dir.join("node_modules/ws").is_dir() {
            let installed = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status();
            if !installed.is_ok_and(|status| status.success()) {
                println!(
                    "realtime: PEER NOT MEASURED: `npm ci` in {} failed",
                    dir.display()
                );
                return None;
            }
        }
        let port = free_port();
        let child = match Command::new("node")
            .arg("relay.js")
            .arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                println!("realtime: PEER NOT MEASURED: cannot start node: {error}");
                return None;
            }
        };
        let peer = PeerProcess { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() >= deadline {
                println!("realtime: PEER NOT MEASURED: the relay did not listen in 30 s");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(peer)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn show(label: &str, result: &impl serde::Serialize) {
    println!(
        "realtime: {label}: {}",
        serde_json::to_string(result).unwrap_or_default()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

struct Plan {
    seconds: f64,
    idle_connections: usize,
    held_connections: usize,
    catch_up_changes: u64,
    latency_seconds: f64,
    memory_documents: u64,
    storm_clients: usize,
}

/// The prefix of the peer's figures.
const PEER: &str = "peer (Node.js relay)";

/// One fan-out run at `rate` against our server on `backend`.
async fn fan_out(plan: &Plan, backend: &Backend, rate: u32) -> fanout::FanoutResult {
    let server = ServerProcess::start_on(backend).await;
    let config = fanout::FanoutConfig {
        server_pid: Some(server.pid()),
        devices: true,
        ..fanout::FanoutConfig::new(server.ws_url(), 1_000, rate, plan.seconds)
    };
    let result = fanout::run(&config).await.expect("fan-out run");
    show(
        &format!("fan-out at {rate}/s ({})", backend.label()),
        &result,
    );
    result
}

/// The same fan-out run against the peer relay.
async fn peer_fan_out(plan: &Plan, rate: u32) -> Option<fanout::FanoutResult> {
    let peer = PeerProcess::start().await?;
    let config = fanout::FanoutConfig {
        server_pid: Some(peer.pid()),
        protocol: Protocol::Relay,
        ..fanout::FanoutConfig::new(peer.ws_url(), 1_000, rate, plan.seconds)
    };
    let result = fanout::run(&config).await.expect("peer fan-out run");
    show(&format!("fan-out at {rate}/s ({PEER})"), &result);
    Some(result)
}

fn fan_out_label(rate: u32) -> String {
    format!(
        "fan-out {} changes/s, 1,000 subscribers",
        thousands(u64::from(rate))
    )
}

/// Share of the changes sent that reached every subscriber, in percent.
fn delivered_percent(result: &fanout::FanoutResult) -> f64 {
    let sent = result.changes_sent.max(1) as f64;
    100.0 * (sent - result.undelivered as f64) / sent
}

/// The records of one fan-out run; budgets only for ours.
fn fan_out_records(prefix: &str, result: &fanout::FanoutResult, ours: bool) -> Vec<Value> {
    let rate = result.rate;
    let label = fan_out_label(rate);
    let budget = |value: f64| ours.then_some(value);
    let mut records = vec![
        record(
            &format!("{prefix}: {label}: last-subscriber p50"),
            result.last_subscriber.p50_ms,
            "ms",
            None,
            false,
        ),
        record(
            &format!("{prefix}: {label}: last-subscriber p99"),
            result.last_subscriber.p99_ms,
            "ms",
            // At 100/s the budget is a ratio to the peer's (`ratio_records`).
            budget(50.0).filter(|_| rate > 100),
            false,
        ),
        record(
            &format!("{prefix}: {label}: last-subscriber p999"),
            result.last_subscriber.p999_ms,
            "ms",
            None,
            false,
        ),
        record(
            &format!("{prefix}: {label}: changes delivered to every subscriber"),
            delivered_percent(result),
            "%",
            budget(100.0).filter(|_| rate > 100),
            true,
        ),
        record(
            &format!("{prefix}: {label}: changes/s the writer could send"),
            result.achieved_rate,
            "changes/s",
            None,
            true,
        ),
    ];
    if let Some(server_s) = result.cpu.server_s {
        records.push(record(
            &format!("{prefix}: {label}: server CPU per delivery"),
            server_s * 1e6 / result.deliveries.max(1) as f64,
            "µs",
            budget(4.0).filter(|_| rate <= 100),
            false,
        ));
    }
    if rate > 100 {
        records.push(record(
            &format!("{prefix}: {label}: deliveries"),
            result.deliveries_per_s,
            "deliveries/s",
            None,
            true,
        ));
    }
    records
}

/// How ours compares with the peer at one rate, as ratios where over 1
/// means ours is better. At 100 changes/s the budget is our last-subscriber
/// p99 at most half the peer's of the same run.
fn ratio_records(ours: &fanout::FanoutResult, peer: &fanout::FanoutResult) -> Vec<Value> {
    let label = fan_out_label(ours.rate);
    let mut records = vec![record(
        &format!("ours vs peer: {label}: peer p99 / our p99"),
        peer.last_subscriber.p99_ms / ours.last_subscriber.p99_ms.max(f64::MIN_POSITIVE),
        "x",
        (ours.rate <= 100).then_some(2.0),
        true,
    )];
    if ours.rate > 100 {
        records.push(record(
            &format!("ours vs peer: {label}: our deliveries/s / the peer's"),
            ours.deliveries_per_s / peer.deliveries_per_s.max(f64::MIN_POSITIVE),
            "x",
            None,
            true,
        ));
    }
    records
}

/// Server CPU per unit of work, in microseconds, when the run measured it.
fn cpu_per_unit_us(cpu: &sync_loadgen::stats::CpuUse, units: u64) -> Option<f64> {
    cpu.server_s
        .map(|server_s| server_s * 1e6 / units.max(1) as f64)
}

/// The chart line of one run.
fn series(system: &str, result: &fanout::FanoutResult, color: &str) -> Series {
    let undelivered = 100.0 - delivered_percent(result);
    let mut label = format!("{system}, {}/s", thousands(u64::from(result.rate)));
    if result.undelivered > 0 {
        label.push_str(&format!(" ({undelivered:.0}% undelivered)"));
    }
    Series {
        label,
        color: color.into(),
        dashed: result.rate > 100,
        percentiles: result.last_subscriber,
    }
}

async fn acked_writes(plan: &Plan, backend: &Backend, records: &mut Vec<Value>) {
    let server = ServerProcess::start_on(backend).await;
    let prefix = backend.label();
    let config = writes::WritesConfig {
        url: server.ws_url(),
        writers: 64,
        seconds: plan.seconds,
        server_pid: Some(server.pid()),
    };
    let result = writes::run(&config).await.expect("writes run");
    show(&format!("durable acked writes ({prefix})"), &result);
    records.push(record(
        &format!("{prefix}: durable acked writes, 64 WebSocket writers"),
        result.writes_per_s,
        "writes/s",
        Some(50_000.0),
        true,
    ));
    if let Some(cpu_us) = cpu_per_unit_us(&result.cpu, result.acked) {
        records.push(record(
            &format!("{prefix}: durable acked writes, 64 WebSocket writers: server CPU per write"),
            cpu_us,
            "µs",
            Some(20.0),
            false,
        ));
    }
    records.push(record(
        &format!("{prefix}: durable acked writes, 64 WebSocket writers: ack p99"),
        result.ack_latency.p99_ms,
        "ms",
        None,
        false,
    ));
}

async fn bulk_sync(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let config = bulk::BulkConfig {
        server_pid: Some(server.pid()),
        ..bulk::BulkConfig::new(server.http_url(), 500, plan.seconds)
    };
    let result = bulk::run(&config).await.expect("bulk run");
    show("bulk sync", &result);
    records.push(record(
        "realtime: bulk sync, batches of 500 (POST /v1/sync, 4 clients)",
        result.operations_per_s,
        "operations/s",
        Some(100_000.0),
        true,
    ));
    if let Some(cpu_us) = cpu_per_unit_us(&result.cpu, result.operations) {
        records.push(record(
            "realtime: bulk sync, batches of 500: server CPU per operation",
            cpu_us,
            "µs",
            Some(10.0),
            false,
        ));
    }
}

async fn idle_connections(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let result = idle(
        plan.idle_connections,
        server.ws_url(),
        server.pid(),
        Protocol::Sync,
    )
    .await;
    show("idle connections", &result);
    let budget = (plan.idle_connections >= 10_000).then_some(80.0);
    records.extend(idle_records("realtime", &result, budget));
    if let Some(peer) = PeerProcess::start().await {
        let result = idle(
            plan.idle_connections,
            peer.ws_url(),
            peer.pid(),
            Protocol::Relay,
        )
        .await;
        show(&format!("idle connections ({PEER})"), &result);
        records.extend(idle_records(PEER, &result, None));
    }
}

/// Many subscribed connections held at once. Each is an open file on
/// both sides, so the limit of open files is raised first, for this
/// process and the server it then starts. Raising the hard limit needs
/// the privilege to; without it the run holds as many as the limit allows
/// and says so.
async fn held_connections(plan: &Plan, records: &mut Vec<Value>) {
    // Files beside the connections: the store, logs, listeners.
    const SPARE_FILES: usize = 1_000;
    let wanted = plan.held_connections + SPARE_FILES;
    let limit = idle::raise_file_limit(wanted as u64).map_or(0, |limit| limit as usize);
    let connections = plan.held_connections.min(limit.saturating_sub(SPARE_FILES));
    if connections < plan.held_connections {
        println!(
            "realtime: held connections: {} open files wanted, the limit is {limit} \
             (raising it needs CAP_SYS_RESOURCE): holding {connections}",
            thousands(wanted as u64)
        );
    }
    if connections == 0 {
        return;
    }
    let server = ServerProcess::start().await;
    let result = idle(connections, server.ws_url(), server.pid(), Protocol::Sync).await;
    show("held connections", &result);
    let held = thousands(result.connections as u64);
    records.push(record(
        &format!("realtime: {held} subscribed connections held, server resident"),
        result.rss_after_mb,
        "MB",
        None,
        false,
    ));
    records.push(record(
        &format!("realtime: {held} subscribed connections held, time to open them all"),
        result.open_s,
        "s",
        None,
        false,
    ));
}

async fn idle(connections: usize, url: String, pid: u32, protocol: Protocol) -> idle::IdleResult {
    let config = idle::IdleConfig {
        url,
        connections,
        server_pid: pid,
        settle: Duration::from_secs(2),
        connect_concurrency: 64,
        devices: protocol == Protocol::Sync,
        stage: idle::Stage::Subscribe,
        protocol,
    };
    idle::run(&config).await.expect("idle run")
}

fn idle_records(prefix: &str, result: &idle::IdleResult, budget: Option<f64>) -> Vec<Value> {
    vec![
        record(
            &format!(
                "{prefix}: {} idle connections, server resident",
                thousands(result.connections as u64)
            ),
            result.rss_after_mb,
            "MB",
            budget,
            false,
        ),
        record(
            &format!("{prefix}: idle connection, server resident per connection"),
            result.kb_per_connection,
            "KB",
            None,
            false,
        ),
    ]
}

async fn catch_up(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let changes = plan.catch_up_changes;
    let config = catchup::CatchupConfig {
        url: server.ws_url(),
        changes,
        timeout: Duration::from_secs(120),
        server_pid: Some(server.pid()),
    };
    let result = catchup::run(&config).await.expect("catch-up run");
    show("catch-up", &result);
    assert_eq!(result.received, changes, "every change arrives");
    records.push(record(
        &format!(
            "realtime: catch-up of {} changes over WebSocket",
            thousands(changes)
        ),
        result.catch_up_s,
        "s",
        (changes >= 100_000).then_some(0.25),
        false,
    ));
    if let Some(server_s) = result.cpu.server_s {
        records.push(record(
            "realtime: catch-up, server CPU per change",
            server_s * 1e6 / changes as f64,
            "µs",
            None,
            false,
        ));
    }
}

/// The rate of the write-to-other-client run: modest, so the figure is
/// one change's path through the server rather than a queue.
const LATENCY_RATE: u32 = 50;

async fn write_to_other_client(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let config = latency::LatencyConfig {
        server_pid: Some(server.pid()),
        ..latency::LatencyConfig::new(server.ws_url(), LATENCY_RATE, plan.latency_seconds)
    };
    let result = latency::run(&config).await.expect("latency run");
    show("write to another client", &result);
    assert_eq!(
        result.changes_received, result.changes_sent,
        "every change arrives"
    );
    let label =
        format!("realtime: write to another client, 1 subscriber, {LATENCY_RATE} changes/s");
    records.push(record(
        &format!("{label}: p50"),
        result.latency.p50_ms,
        "ms",
        Some(1.0),
        false,
    ));
    records.push(record(
        &format!("{label}: p99"),
        result.latency.p99_ms,
        "ms",
        Some(2.5),
        false,
    ));
}

/// The JSON size of each document of the memory run.
const DOCUMENT_BYTES: usize = 100;

async fn resident_per_document(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let config = memory::MemoryConfig {
        url: server.http_url(),
        documents: plan.memory_documents,
        document_bytes: DOCUMENT_BYTES,
        server_pid: server.pid(),
        // Past the allocator's 10 s decay of freed pages: read two seconds
        // after the writes, 60-110 MB of 100,000 documents' figure was
        // memory already freed and not yet handed back.
        settle: Duration::from_secs(12),
    };
    let result = memory::run(&config).await.expect("memory run");
    show("resident memory per document", &result);
    let documents = thousands(result.documents);
    records.push(record(
        &format!("realtime: {documents} documents of {DOCUMENT_BYTES} bytes, server resident"),
        result.rss_after_mb,
        "MB",
        None,
        false,
    ));
    records.push(record(
        &format!("realtime: {documents} documents of {DOCUMENT_BYTES} bytes, server resident per document"),
        result.bytes_per_document,
        "bytes",
        None,
        false,
    ));
}

async fn reconnect_storm(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let config = reconnect::ReconnectConfig {
        server_pid: Some(server.pid()),
        ..reconnect::ReconnectConfig::new(server.ws_url(), plan.storm_clients)
    };
    let result = reconnect::run(&config).await.expect("reconnect run");
    show("reconnect storm", &result);
    let label = format!(
        "realtime: reconnect storm, {} clients resuming from their cursors",
        thousands(result.clients as u64)
    );
    records.push(record(
        &format!("{label}: last client resubscribed and caught up"),
        result.storm_s,
        "s",
        None,
        false,
    ));
    records.push(record(
        &format!("{label}: one client's reconnect to caught up, p99"),
        result.client_latency.p99_ms,
        "ms",
        None,
        false,
    ));
    records.push(record(
        &format!("{label}: clients caught up"),
        100.0 * result.caught_up as f64 / result.clients.max(1) as f64,
        "%",
        None,
        true,
    ));
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[tokio::main]
async fn main() {
    let quick = quick();
    let plan = if quick {
        Plan {
            seconds: 2.0,
            idle_connections: 2_000,
            held_connections: 5_000,
            catch_up_changes: 20_000,
            latency_seconds: 2.0,
            memory_documents: 20_000,
            storm_clients: 2_000,
        }
    } else {
        Plan {
            seconds: 10.0,
            idle_connections: 10_000,
            held_connections: 50_000,
            catch_up_changes: 100_000,
            latency_seconds: 5.0,
            memory_documents: 100_000,
            storm_clients: 10_000,
        }
    };
    println!("realtime: load average before: {}", load_average());
    let out = output_dir();
    // Scenario names on the command line (`cargo bench -p sync-service
    // --bench realtime -- --quick reconnect`) run only the scenarios whose
    // names contain one of them; none runs them all.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let runs = |scenario: &str| {
        filters.is_empty()
            || filters
                .iter()
                .any(|filter| scenario.contains(filter.as_str()))
    };
    let mut records = Vec::new();
    if runs("fanout") {
        let mut lines = Vec::new();
        for rate in [100, 1_000] {
            let ours = fan_out(&plan, &Backend::Sled, rate).await;
            records.extend(fan_out_records("realtime", &ours, true));
            lines.push(series("sync-server", &ours, "#1f77b4"));
            if let Some(peer) = peer_fan_out(&plan, rate).await {
                records.extend(fan_out_records(PEER, &peer, false));
                records.extend(ratio_records(&ours, &peer));
                lines.push(series("peer relay", &peer, "#d62728"));
            }
        }
        std::fs::write(
            out.join("fanout-latency.svg"),
            chart::latency_svg(
                "Fan-out to 1,000 subscribers: latency to the last subscriber",
                &lines,
            ),
        )
        .expect("write the chart");
    }
    if runs("writes") {
        acked_writes(&plan, &Backend::Sled, &mut records).await;
    }
    if runs("bulk") {
        bulk_sync(&plan, &mut records).await;
    }
    if runs("idle") {
        idle_connections(&plan, &mut records).await;
    }
    if runs("held") {
        held_connections(&plan, &mut records).await;
    }
    if runs("catchup") {
        catch_up(&plan, &mut records).await;
    }
    if runs("latency") {
        write_to_other_client(&plan, &mut records).await;
    }
    if runs("memory") {
        resident_per_document(&plan, &mut records).await;
    }
    if runs("reconnect") {
        reconnect_storm(&plan, &mut records).await;
    }
    // The same fan-out and writes with the PostgreSQL store, when there is
    // a database to measure against.
    let database = std::env::var("SYNC_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("SYNC_TEST_DATABASE_URL"));
    if let Ok(url) = database
        && runs("postgres")
    {
        let postgres = Backend::Postgres(url);
        let result = fan_out(&plan, &postgres, 100).await;
        records.extend(fan_out_records(postgres.label(), &result, true));
        acked_writes(&plan, &postgres, &mut records).await;
    }
    println!("realtime: load average after: {}", load_average());
    write_records("realtime.json", &records);
}
