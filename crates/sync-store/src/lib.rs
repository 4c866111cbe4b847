//! The server's durable store behind [`sync_core::SyncStore`].
//!
//! [`SledStore`] keeps everything in one sled database in a data directory:
//! zero set-up. One committer thread owns every write: it takes all writes
//! queued while the previous flush ran, applies them in one sled transaction
//! (documents, change log, history index, opId results, conflict records and
//! counters together), flushes once, then advances the durable head and
//! answers the callers. So `seq`s are assigned in one place, gap-free, and a
//! write is acknowledged only once it is on disk, while concurrent writers
//! share the cost of each flush (group commit).
//!
//! Readers of the change log never see past the durable head, so nobody is
//! told of a change a crash could take back.

mod error;
mod keys;
mod replay;
mod sled_store;

pub use error::Error;
pub use replay::replay;
pub use sled_store::{Durability, SledStore, StoreConfig};
