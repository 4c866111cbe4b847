//! The real-time transport of the sync engine (`docs/protocol.md`,
//! "WebSocket protocol"): the WebSocket protocol's messages in both
//! directions, and the reconnect policy (exponential backoff with jitter)
//! clients use to come back and resume from their cursor.
//!
//! The message types are the protocol's single definition: the server
//! parses [`ClientMessage`] and writes [`ServerMessage`], clients do the
//! reverse, and golden JSON tests pin the shapes. The minimal messages of
//! clients that send no `hello` (`subscribe` with only a collection, writes
//! without `opId` that name the document by `id`, `ping`) parse as they
//! are.
//!
//! [`RealtimeClient`] is the client side: a reconnecting connection that
//! resumes every subscription from its cursor, which the client SDK
//! builds on.

mod backoff;
mod client;
mod protocol;

pub use backoff::Backoff;
pub use client::{ClientConfig, RealtimeClient};
pub use protocol::{
    Ack, ClientMessage, ErrorMessage, Origin, ServerChange, ServerMessage, WriteMessage,
};
pub use sync_core::ConnectionState;
