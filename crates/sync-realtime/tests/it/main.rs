//! End-to-end tests of [`sync_realtime::RealtimeClient`] against real sync
//! servers on loopback, each over a sled store in a temporary directory.

mod client;
mod fake_server;
mod protocol_doc;
mod support;
