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
//! `RealtimeClient` (feature `client`, on by default) is the client side:
//! a reconnecting connection over `ws://` or `wss://` (rustls) that resumes
//! every subscription from its cursor, which the client SDK builds on.
//! Without the feature the crate is the messages and the backoff policy
//! alone, with no async runtime or WebSocket library, as the server uses
//! it.

mod backoff;
#[cfg(feature = "client")]
mod client;
mod protocol;

pub use backoff::Backoff;
#[cfg(feature = "client")]
pub use client::{ClientConfig, RealtimeClient, RootCertificate, TlsError};
pub use protocol::{
    Ack, ClientMessage, ErrorMessage, Origin, ServerChange, ServerMessage, WriteMessage,
};
pub use sync_core::ConnectionState;

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
