//! End-to-end tests of the sync server: each test starts a real server on
//! `127.0.0.1:0` over a sled store in a temporary directory and talks to it
//! over real HTTP and WebSocket, as a client would.

mod auth;
mod bad_input;
mod bandwidth;
mod branches;
mod crash_rounds;
mod disk_full;
mod documents;
mod encryption;
mod feed;
mod idempotency;
mod limits;
mod metrics;
mod openapi;
mod operations;
mod partial_failure;
mod priority;
mod realtime;
mod reload;
mod restart;
mod scale_out;
mod scenarios;
mod seed_004;
mod support;
