//! Real-time benchmarks of the server binary over real sockets (SPEC
//! section 9): fan-out latency with 1,000 subscribers at 100 and 1,000
//! changes/s, durable acknowledged writes of 64 WebSocket writers, bulk
//! sync in batches of 500, the resident memory of 10,000 idle connections
//! and the catch-up of a client 100,000 changes behind.
//!
//! Each scenario gets a fresh `sync-server` child process (release build,
//! sled store in a temporary directory, fsync durability, `RUST_LOG=warn`)
//! on a free port, driven by `sync-loadgen` from this process. With auth
//! `none` every connection is the one user `anonymous`, so the per-user
//! connection limit (default 1,000) and the operation rate limit (default
//! 10,000/s) are raised in the server's configuration file; everything
//! else is the default.
//!
//! Results are printed (each scenario's whole result as JSON, with the CPU
//! both processes spent) and written as records to
//! `$SYNC_BENCH_OUT/realtime.json` for `cargo xtask bench`. With
//! `SYNC_BENCH_QUICK` set the runs are shorter and the counts smaller.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sync_loadgen::{bulk, catchup, fanout, idle, writes};

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
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
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
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
        let schema = match backend {
            Backend::Sled => None,
            Backend::Postgres(url) => {
                let schema = format!("bench_{port}_{}", std::process::id());
                command
                    .args(["--store", "postgres", "--database-url", url])
                    .args(["--database-schema", &schema]);
                Some((url.clone(), schema))
            }
        };
        let child = command
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--durability", "fsync"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .spawn()
            .expect("start sync-server");
        let server = ServerProcess {
            child,
            port,
            dir,
            schema,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/health", self.http_url());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sync-server did not become healthy in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((url, schema)) = self.schema.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(sync_store::PgStore::drop_schema_at(&url, &schema))
            })
            .join();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("server.log"));
            println!("sync-server's log:\n{}", log.unwrap_or_default());
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn record(
    name: &str,
    value: f64,
    unit: &str,
    budget: Option<f64>,
    higher_is_better: bool,
) -> Value {
    println!("{name}: {value:.3} {unit}");
    json!({"name": name, "value": value, "unit": unit, "budget": budget, "higher_is_better": higher_is_better})
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
    catch_up_changes: u64,
}

async fn fan_out(plan: &Plan, backend: &Backend, rate: u32, records: &mut Vec<Value>) {
    let server = ServerProcess::start_on(backend).await;
    let prefix = backend.label();
    let config = fanout::FanoutConfig {
        server_pid: Some(server.pid()),
        ..fanout::FanoutConfig::new(server.ws_url(), 1_000, rate, plan.seconds)
    };
    let result = fanout::run(&config).await.expect("fan-out run");
    show(&format!("fan-out at {rate}/s ({prefix})"), &result);
    let label = format!("fan-out {rate} changes/s, 1,000 subscribers");
    let (p99_budget, peer) = if rate <= 100 {
        (12.0, "peer p50 4.6 ms, p99 12 ms")
    } else {
        (100.0, "peer p99 11 s, 2/3 undelivered")
    };
    records.push(record(
        &format!("{prefix}: {label}: last-subscriber p50"),
        result.last_subscriber.p50_ms,
        "ms",
        None,
        false,
    ));
    records.push(record(
        &format!("{prefix}: {label}: last-subscriber p99 ({peer})"),
        result.last_subscriber.p99_ms,
        "ms",
        Some(p99_budget),
        false,
    ));
    records.push(record(
        &format!("{prefix}: {label}: last-subscriber p999"),
        result.last_subscriber.p999_ms,
        "ms",
        None,
        false,
    ));
    let sent = result.changes_sent.max(1) as f64;
    records.push(record(
        &format!("{prefix}: {label}: changes delivered to every subscriber"),
        100.0 * (sent - result.undelivered as f64) / sent,
        "%",
        (rate > 100).then_some(100.0),
        true,
    ));
    records.push(record(
        &format!("{prefix}: {label}: undelivered changes"),
        result.undelivered as f64,
        "changes",
        None,
        false,
    ));
    records.push(record(
        &format!("{prefix}: {label}: changes/s the writer could send"),
        result.achieved_rate,
        "changes/s",
        None,
        true,
    ));
    if rate > 100 {
        records.push(record(
            &format!("{prefix}: {label}: deliveries (peer saturates near 225,000/s)"),
            result.deliveries_per_s,
            "deliveries/s",
            None,
            true,
        ));
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
        Some(20_000.0),
        true,
    ));
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
}

async fn idle_connections(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let connections = plan.idle_connections;
    let config = idle::IdleConfig {
        url: server.ws_url(),
        connections,
        server_pid: server.pid(),
        settle: Duration::from_secs(2),
        connect_concurrency: 64,
        // Without device ids: many concurrent device registrations (each
        // a sled `flush_async`) hang the sled store.
        devices: false,
        stage: idle::Stage::Subscribe,
    };
    let result = idle::run(&config).await.expect("idle run");
    show("idle connections", &result);
    let budget = (connections >= 10_000).then_some(150.0);
    records.push(record(
        &format!(
            "realtime: {} idle connections, server resident (peer: 10,000 in about 120 MB)",
            thousands(connections as u64)
        ),
        result.rss_after_mb,
        "MB",
        budget,
        false,
    ));
    records.push(record(
        "realtime: idle connection, server resident per connection (peer: 6.6-6.9 KB)",
        result.kb_per_connection,
        "KB",
        None,
        false,
    ));
}

async fn catch_up(plan: &Plan, records: &mut Vec<Value>) {
    let server = ServerProcess::start().await;
    let changes = plan.catch_up_changes;
    let config = catchup::CatchupConfig {
        url: server.ws_url(),
        changes,
        timeout: Duration::from_secs(120),
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
        (changes >= 100_000).then_some(2.0),
        false,
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
    let quick = std::env::var_os("SYNC_BENCH_QUICK").is_some()
        || std::env::args().any(|arg| arg == "--quick");
    let plan = if quick {
        Plan {
            seconds: 2.0,
            idle_connections: 2_000,
            catch_up_changes: 20_000,
        }
    } else {
        Plan {
            seconds: 10.0,
            idle_connections: 10_000,
            catch_up_changes: 100_000,
        }
    };
    println!("realtime: load average before: {}", load_average());
    let mut records = Vec::new();
    fan_out(&plan, &Backend::Sled, 100, &mut records).await;
    fan_out(&plan, &Backend::Sled, 1_000, &mut records).await;
    acked_writes(&plan, &Backend::Sled, &mut records).await;
    bulk_sync(&plan, &mut records).await;
    idle_connections(&plan, &mut records).await;
    catch_up(&plan, &mut records).await;
    // The same fan-out and writes with the PostgreSQL store, when there is
    // a database to measure against.
    let database = std::env::var("SYNC_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("SYNC_TEST_DATABASE_URL"));
    if let Ok(url) = database {
        let postgres = Backend::Postgres(url);
        fan_out(&plan, &postgres, 100, &mut records).await;
        acked_writes(&plan, &postgres, &mut records).await;
    }
    println!("realtime: load average after: {}", load_average());

    let out = std::env::var_os("SYNC_BENCH_OUT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).expect("bench output dir");
    std::fs::write(
        out.join("realtime.json"),
        serde_json::to_vec_pretty(&records).expect("json"),
    )
    .expect("write results");
}
