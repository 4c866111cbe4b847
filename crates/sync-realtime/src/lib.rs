//! The real-time transport of the sync engine (SPEC section 5): the
//! WebSocket protocol's messages in both directions, and the reconnect
//! policy (exponential backoff with jitter) clients use to come back and
//! resume from their cursor.
//!
//! The message types are the protocol's single definition: the server
//! parses [`ClientMessage`] and writes [`ServerMessage`], clients do the
//! reverse, and golden JSON tests pin the shapes. Seed 001's backend
//! messages (`subscribe`, `insert`, `update`, `delete`, `ping`) parse as
//! they are written there.
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
