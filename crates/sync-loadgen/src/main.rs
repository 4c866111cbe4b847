//! `sync-loadgen`: drives a running `sync-server` and prints what one
//! scenario measured, as JSON.
//!
//! ```text
//! sync-loadgen fanout --url ws://127.0.0.1:7700/ws --subscribers 1000 --rate 100 --seconds 10
//! sync-loadgen writes --url ws://127.0.0.1:7700/ws --writers 64 --seconds 10
//! sync-loadgen bulk --url http://127.0.0.1:7700 --batch 500 --seconds 10
//! sync-loadgen idle --url ws://127.0.0.1:7700/ws --connections 10000 --server-pid 1234
//! sync-loadgen catchup --url ws://127.0.0.1:7700/ws --changes 100000
//! sync-loadgen latency --url ws://127.0.0.1:7700/ws --rate 50 --seconds 5
//! sync-loadgen memory --url http://127.0.0.1:7700 --documents 100000 --server-pid 1234
//! sync-loadgen reconnect --url ws://127.0.0.1:7700/ws --clients 10000 --writes 5
//! ```
//!
//! The server's default limits allow 1,000 connections per user (and with
//! auth `none` everyone is one user) and 10,000 operations per second:
//! raise `limits.connections_per_user_max` and
//! `limits.operations_per_second` for the larger scenarios.

#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sync_loadgen::ws::Protocol;
use sync_loadgen::{bulk, catchup, fanout, idle, latency, memory, reconnect, writes};

/// Load generator for the sync server.
#[derive(Debug, Parser)]
#[command(name = "sync-loadgen", version, about)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// One paced writer, many subscribers: latency to the last subscriber.
    Fanout {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Subscribers.
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        /// Changes per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Seconds of writing.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Receive tasks (0: one per subscriber).
        #[arg(long, default_value_t = 1)]
        tasks: usize,
        /// Seconds changes may still arrive after the last send.
        #[arg(long, default_value_t = 2.0)]
        grace: f64,
        /// Connections opened at once while setting up.
        #[arg(long, default_value_t = 64)]
        connect_concurrency: usize,
        /// Name a device in each subscriber's hello (the server registers it).
        #[arg(long)]
        devices: bool,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
        /// What the server speaks: `sync` (`docs/protocol.md`) or `relay`
        /// (the peer, bench/peer-relay).
        #[arg(long, default_value = "sync")]
        protocol: Protocol,
    },
    /// Writers waiting for each durable ack: acknowledged writes per second.
    Writes {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Concurrent writers.
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Seconds of writing.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Batches of creates through POST /v1/sync: operations per second.
    Bulk {
        /// The server's HTTP URL.
        #[arg(long, default_value = "http://127.0.0.1:7700")]
        url: String,
        /// Operations per request.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Seconds of posting.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Idle connections and the server's resident memory.
    Idle {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Connections to hold.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// The server's pid (its /proc/<pid>/status is read).
        #[arg(long)]
        server_pid: u32,
        /// Seconds to hold them before reading the memory.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// Name a device in each hello (the server registers it).
        #[arg(long)]
        devices: bool,
        /// How far each connection goes: upgrade, hello or subscribe.
        #[arg(long, default_value = "subscribe", value_parser = parse_stage)]
        stage: idle::Stage,
        /// What the server speaks: `sync` or `relay`.
        #[arg(long, default_value = "sync")]
        protocol: Protocol,
    },
    /// A client far behind: time until it has every change.
    Catchup {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Changes it is behind.
        #[arg(long, default_value_t = 100_000)]
        changes: u64,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// One writer, one other subscribed client: send-to-receipt latency.
    Latency {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Changes per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Seconds of writing.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Documents written: the server's resident memory per document.
    Memory {
        /// The server's HTTP URL.
        #[arg(long, default_value = "http://127.0.0.1:7700")]
        url: String,
        /// Documents to write.
        #[arg(long, default_value_t = 100_000)]
        documents: u64,
        /// JSON bytes per document.
        #[arg(long, default_value_t = 100)]
        document_bytes: usize,
        /// The server's pid (its /proc/<pid>/status is read).
        #[arg(long)]
        server_pid: u32,
        /// Seconds to wait after the writes before reading the memory.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
    },
    /// Subscribed clients drop and reconnect at once: time until the last
    /// has caught up.
    Reconnect {
        /// The server's WebSocket URL.
        #[arg(long, default_value = "ws://127.0.0.1:7700/ws")]
        url: String,
        /// Clients.
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Changes written while they are away.
        #[arg(long, default_value_t = 5)]
        writes: u64,
        /// Seconds to wait for the last client.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// The server's pid, to report its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

fn parse_stage(text: &str) -> Result<idle::Stage, String> {
    match text {
        "upgrade" => Ok(idle::Stage::Upgrade),
        "hello" => Ok(idle::Stage::Hello),
        "subscribe" => Ok(idle::Stage::Subscribe),
        other => Err(format!(
            "unknown stage {other:?} (upgrade | hello | subscribe)"
        )),
    }
}

fn print(result: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(result)?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Every connection is an open file: as many as this process may have.
    sync_loadgen::idle::raise_file_limit(u64::MAX)?;
    match Args::parse().scenario {
        Scenario::Fanout {
            url,
            subscribers,
            rate,
            seconds,
            tasks,
            grace,
            connect_concurrency,
            devices,
            server_pid,
            protocol,
        } => {
            let config = fanout::FanoutConfig {
                grace: Duration::from_secs_f64(grace),
                receive_tasks: tasks,
                connect_concurrency,
                devices,
                server_pid,
                protocol,
                ..fanout::FanoutConfig::new(url, subscribers, rate, seconds)
            };
            print(&fanout::run(&config).await.context("fan-out")?)
        }
        Scenario::Writes {
            url,
            writers,
            seconds,
            server_pid,
        } => {
            let config = writes::WritesConfig {
                url,
                writers,
                seconds,
                server_pid,
            };
            print(&writes::run(&config).await.context("writes")?)
        }
        Scenario::Bulk {
            url,
            batch,
            clients,
            seconds,
            server_pid,
        } => {
            let config = bulk::BulkConfig {
                clients,
                server_pid,
                ..bulk::BulkConfig::new(url, batch, seconds)
            };
            print(&bulk::run(&config).await.context("bulk")?)
        }
        Scenario::Idle {
            url,
            connections,
            server_pid,
            settle,
            devices,
            stage,
            protocol,
        } => {
            let config = idle::IdleConfig {
                url,
                connections,
                server_pid,
                settle: Duration::from_secs_f64(settle),
                connect_concurrency: 64,
                devices,
                stage,
                protocol,
            };
            print(&idle::run(&config).await.context("idle")?)
        }
        Scenario::Catchup {
            url,
            changes,
            server_pid,
        } => {
            let config = catchup::CatchupConfig {
                url,
                changes,
                timeout: Duration::from_secs(120),
                server_pid,
            };
            print(&catchup::run(&config).await.context("catch-up")?)
        }
        Scenario::Latency {
            url,
            rate,
            seconds,
            server_pid,
        } => {
            let config = latency::LatencyConfig {
                server_pid,
                ..latency::LatencyConfig::new(url, rate, seconds)
            };
            print(&latency::run(&config).await.context("latency")?)
        }
        Scenario::Memory {
            url,
            documents,
            document_bytes,
            server_pid,
            settle,
        } => {
            let config = memory::MemoryConfig {
                url,
                documents,
                document_bytes,
                server_pid,
                settle: Duration::from_secs_f64(settle),
            };
            print(&memory::run(&config).await.context("memory")?)
        }
        Scenario::Reconnect {
            url,
            clients,
            writes,
            timeout,
            server_pid,
        } => {
            let config = reconnect::ReconnectConfig {
                writes,
                timeout: Duration::from_secs_f64(timeout),
                server_pid,
                ..reconnect::ReconnectConfig::new(url, clients)
            };
            print(&reconnect::run(&config).await.context("reconnect")?)
        }
    }
}
