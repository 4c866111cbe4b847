//! The client SDK of the sync engine: an offline-first local store with
//! optimistic writes, a persistent offline queue, live queries and a
//! background sync over WebSocket with HTTP polling as the fallback.
//!
//! ```no_run
//! # async fn example() -> Result<(), sync_client::Error> {
//! use futures::StreamExt;
//! use serde_json::json;
//! use sync_client::{Order, SyncClient};
//!
//! let client = SyncClient::builder()
//!     .server_url("http://127.0.0.1:7700")
//!     .data_dir("./todo-data")
//!     .collections(["todos"])
//!     .build()
//!     .await?;
//! let todos = client.collection("todos")?;
//! let id = todos.save(json!({"text": "Buy milk", "done": false})).await?;
//! todos.update(id.as_str(), json!({"done": true})).await?;
//! let mut open = todos.where_eq("done", false).order_by("text", Order::Ascending).watch();
//! while let Some(list) = open.next().await {
//!     println!("{} open todos", list.len());
//! }
//! # Ok(()) }
//! ```
//!
//! # Why it is built this way
//!
//! The local view of a document is never stored: it is the server's last
//! known state (kept in a small sled store, with a cursor per collection)
//! with the still-pending operations of the offline queue
//! (`sync-queue`, durable before a write returns) rebased on top. Both
//! survive a crash, so a restart shows exactly the same view, and when the
//! server's answer arrives the known state moves forward and the
//! acknowledged operation leaves the queue, in that order, so nothing
//! flickers away. Every client adopts what the server decided and replays
//! its own pending edits on top, which is what makes all replicas converge.
//!
//! The decisions (the view, which change applies, what an ack means for
//! the known state, what a save sends) are pure functions in `logic`, unit
//! tested without I/O; the background task in `engine` does the I/O.

mod builder;
mod client;
mod collection;
mod engine;
mod error;
mod events;
mod http;
mod local;
/// The client's sync decisions as pure functions (no I/O): the local view
/// of a document (known server state with the pending operations replayed
/// on top), what an incoming change or an acknowledgement does to the known
/// server state, how a server answer classifies for the queue, and what a
/// save sends. Reachable so that the seeded multi-device simulation
/// (`sync-sim`) drives exactly the decisions the real client makes; hidden
/// from the documentation and not covered by semver: not an API for
/// applications.
#[doc(hidden)]
pub mod logic;
mod shared;
mod typed;

pub use builder::SyncClientBuilder;
pub use client::SyncClient;
pub use collection::{Collection, Query};
pub use error::{BoxError, Error};
pub use events::{ConflictInfo, Events, SyncEvent};
pub use logic::Order;
pub use shared::ConflictHook;
pub use sync_core::queue::{QueueId, QueuedOp};
pub use sync_core::{
    Clock, ConnectionState, DocId, JsonObject, ManualClock, Priority, SyncEntity, SystemClock,
    Watch,
};
pub use typed::TypedCollection;

/// The README's examples, compiled and run as doctests so they stay true.
/// They live here because this crate sees every library they use.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// This crate's own README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct CrateReadmeDoctests;
