//! The sync engine's write path, apart from any transport: every door of
//! the server (HTTP bulk sync, `/v1/sync`, WebSocket writes, conflict
//! resolution, restore) hands its operations to one [`Syncer`], which
//! validates them, finds or derives their opIds (the same rule for every
//! door, [`derived_op_id`]), finds the base each edit was made on, lets the
//! conflict engine decide, and commits compare-and-swap through
//! [`sync_core::SyncStore`], deciding again when a concurrent writer got
//! there first.
//!
//! No HTTP, WebSocket or token types here: the caller is an [`Access`],
//! failures are [`EngineError`]s with their protocol codes, and the server
//! maps both to its wire shapes. The simulation and embedding applications
//! use this crate directly.

mod access;
mod branches;
mod error;
mod server_writes;
mod syncer;

pub use access::{Access, FullAccess};
pub use branches::MergeReport;
pub use error::EngineError;
pub use syncer::{BatchContext, OpReport, SyncPoint, Syncer, derived_op_id};

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
