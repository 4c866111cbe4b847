//! The server's durable store behind [`sync_core::SyncStore`], in two
//! implementations that pass the same conformance suite.
//!
//! [`SledStore`] keeps everything in one sled database in a data directory:
//! zero set-up. One committer thread owns every write: it takes all writes
//! queued while the previous flush ran, applies them as one atomic sled batch
//! (documents, change log, opId results, conflict records and counters
//! together, in one tree), flushes once, then advances the durable head and
//! answers the callers. So `seq`s are assigned in one place, gap-free, and a
//! write is acknowledged only once it is on disk, while concurrent writers
//! share the cost of each flush (group commit).
//!
//! [`PgStore`] keeps the same state in PostgreSQL tables so that several
//! server nodes can share one database and one change log. Each node's
//! committer task does group commit the same way, in one PostgreSQL
//! transaction per group; every such transaction first locks the single
//! row holding the log's head, so all nodes' transactions assign seqs one
//! after the other, in commit order, without gaps. Nodes learn of each
//! other's commits through `LISTEN`/`NOTIFY`, with a periodic poll of the
//! head as the fallback.
//!
//! Readers of the change log never see past the durable head, so nobody is
//! told of a change a crash could take back.

// Shared by both stores: with one of them alone, parts of it go unused,
// and with neither, only its configuration types are.
#[cfg_attr(not(any(feature = "sled", feature = "postgres")), allow(dead_code))]
mod codec;
#[cfg(any(feature = "sled", feature = "postgres"))]
#[cfg_attr(not(all(feature = "sled", feature = "postgres")), allow(dead_code))]
mod committed;
mod error;
#[cfg(any(feature = "sled", feature = "postgres"))]
mod log_change;
#[cfg(feature = "postgres")]
mod pg_store;
mod replay;
#[cfg(feature = "sled")]
mod sled_store;

pub use codec::{Compression, Encryption, EncryptionKey};
pub use error::{Error, SourceError};
#[cfg(feature = "postgres")]
pub use pg_store::{PgConfig, PgStore};
pub use replay::replay;
#[cfg(feature = "sled")]
pub use sled_store::{Durability, SledStore, StoreConfig};

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
