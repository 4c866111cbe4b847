//! A load generator for the sync server: drives a running `sync-server`
//! over real WebSockets and HTTP and measures what `docs/benchmarks.md`
//! budgets.
//!
//! Scenarios (each a module with a config and a result struct):
//!
//! - [`fanout`]: one writer at a fixed rate, `S` subscribers; latency of
//!   each change to its last subscriber and of every delivery.
//! - [`writes`]: `K` WebSocket writers, each waiting for its durable `ack`.
//! - [`bulk`]: batches of creates through `POST /v1/sync`.
//! - [`idle`]: `N` idle connections and the server's resident memory.
//! - [`catchup`]: a subscriber `N` changes behind, time to be in sync.
//! - [`latency`]: one writer at a modest rate, one other subscribed
//!   client; time from each send to the other client's receipt.
//! - [`memory`]: `N` documents written; the server's resident memory per
//!   document.
//! - [`reconnect`]: `N` subscribed clients drop and reconnect at once,
//!   each resuming from its cursor; time until the last has caught up.
//!
//! Fan-out and idle connections also run against the peer, the Node.js
//! relay of `bench/peer-relay` ([`ws::Protocol::Relay`]); [`chart`] draws
//! the latencies of both.
//!
//! The generator shares the machine with the server, so it is built to
//! spend as little CPU as it can per frame (no JSON parsing on the hot
//! paths, few tasks, per-task tallies), and every scenario that can
//! reports the CPU both processes used ([`stats::CpuUse`]), so a run shows
//! when the generator rather than the server was the limit.
//!
//! ```no_run
//! # async fn run() -> Result<(), sync_loadgen::LoadError> {
//! let config = sync_loadgen::fanout::FanoutConfig::new("ws://127.0.0.1:7700/ws", 100, 100, 5.0);
//! let result = sync_loadgen::fanout::run(&config).await?;
//! println!("last subscriber p99: {} ms", result.last_subscriber.p99_ms);
//! # Ok(()) }
//! ```

pub mod bulk;
pub mod catchup;
pub mod chart;
pub mod error;
pub mod fanout;
pub mod idle;
pub mod latency;
pub mod memory;
pub mod raw;
pub mod reconnect;
pub mod stats;
pub mod writes;
pub mod ws;

pub use error::{LoadError, Result};
