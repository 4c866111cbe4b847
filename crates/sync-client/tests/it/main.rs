//! End-to-end tests of the client SDK against a real server: convergence,
//! offline edits and crashes, concurrent edits under `merge` and `lww`,
//! and a server restart mid-sync.

mod branches;
mod conflicts;
mod converge;
mod crash_rounds;
mod offline;
mod priority;
mod restart;
mod support;
mod tls;
