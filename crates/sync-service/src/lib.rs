//! The sync server: the HTTP API (bulk sync, change feed, documents,
//! history, conflicts, devices, stats, metrics), the WebSocket protocol with
//! its fan-out, auth and limits, all as `docs/protocol.md` describes them,
//! configuration, and the `sync-server` binary.
//!
//! Every write, whatever door it comes through, goes through one
//! [`sync_engine::Syncer`] (the `sync-engine` crate): validate, look up the `opId`, find the base of the
//! client's edit, let the conflict engine decide, and commit
//! compare-and-swap to the store, which acknowledges only once the write
//! is durable. A request's operations are committed together (one group
//! commit), so bulk sync of hundreds of operations costs one flush.
//!
//! ```no_run
//! # async fn run() -> Result<(), sync_service::ServerError> {
//! let server = sync_service::ServerBuilder::new(sync_service::Config::default())
//!     .start()
//!     .await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

mod admission;
mod api;
mod auth;
pub mod config;
mod console;
mod devices;
mod error;
pub mod limits;
mod metrics;
mod openapi;
mod pacing;
mod realtime;
mod reload;
mod send_queue;
mod server;
mod state;
mod tls;
mod ws;

pub use admission::WritePermit;
pub use api::SyncRequest;
pub use auth::{Authenticator, Grant, Principal};
pub use config::Config;
pub use error::ApiError;
pub use reload::ConfigSource;
pub use server::{Server, ServerBuilder, ServerError};
pub use state::{AppState, AuditLog, SyncMiddleware, SyncRequestInfo, Transport};

/// The whole application: every route over `state`, with its layers;
/// with `console`, the console at `/` and the todo demo at `/demo` too.
pub fn app(state: AppState, cors_origins: &[String], console: bool) -> axum::Router {
    let websocket = axum::Router::new()
        .route("/ws", axum::routing::get(ws::upgrade))
        .route("/v1/ws", axum::routing::get(ws::upgrade));
    let mut routes = api::router(state.clone(), cors_origins).merge(websocket);
    if console {
        routes = routes.merge(console::router());
    }
    api::outer_layers(routes.with_state(state))
}
