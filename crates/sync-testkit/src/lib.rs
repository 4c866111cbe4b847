//! Test support for the workspace's tests, in one place:
//!
//! - [`Random`] and [`seed`]: a small seeded generator whose seed is
//!   printed, so a failing run is replayed by setting one variable;
//! - [`ChildTest`]: one test of the current test binary run as a child
//!   process and killed with SIGKILL, the crash harness of the store, the
//!   queue and the client;
//! - [`ChildServer`]: the `sync-server` binary as a child process on a
//!   free port, ready when `/ready` says so;
//! - [`ws`]: a WebSocket client written by hand, for frames of any shape
//!   and a client that never answers;
//! - [`run_aside`]: async clean-up (dropping a test's database schema)
//!   from a `Drop`;
//! - [`bench`](mod@bench): the figures a benchmark hands to `cargo xtask bench`.

mod aside;
pub mod bench;
mod child;
mod random;
mod server;
pub mod ws;

pub use aside::run_aside;
pub use child::ChildTest;
pub use random::{Random, seed};
pub use server::ChildServer;
