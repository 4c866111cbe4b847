//! The shared vocabulary of the sync engine.
//!
//! Every other crate speaks in these types: validated names ([`Namespace`],
//! [`CollectionName`], [`DocId`], ...), [`Document`]s with their server
//! metadata, client [`Operation`]s, log [`Change`]s, opaque [`Cursor`]s, the
//! hybrid logical clock ([`Hlc`]) and the traits each layer implements
//! ([`DiffCalculator`], [`ConflictResolver`], [`OfflineQueue`],
//! [`SyncStore`]), and [`Watch`], how the SDK crates publish a value that
//! changes (a connection's state, a queue's counts). Only traits with more than one implementation or a
//! generic user live here; the WebSocket client, with one implementation,
//! is a plain type in `sync-realtime`.
//!
//! Why one small crate: the layers (diff, conflict, store, queue, transport,
//! server, client) are swapped and tested alone, so they may only meet
//! through types and traits that none of them owns. Nothing here does I/O or
//! reads a wall clock: time comes in through the [`Clock`] trait, so the
//! same logic runs under a simulated clock in tests.
//!
//! Types that cross the wire serialise exactly as the protocol specifies
//! (camelCase fields, ISO-8601 times); a malformed name, id, time or cursor
//! is a [`CoreError`] value at construction, never a panic.

/// Implements `Serialize` and `Deserialize` for a type through its
/// `Display` and `FromStr`: the type travels as its printed string, and a
/// string that does not parse is a deserialisation error. The calling
/// crate must depend on `serde`.
///
/// `serde_as_string!(T, with_text)` serialises through the type's own
/// `with_text(&self, impl FnOnce(&str) -> R) -> R` instead, for a type that
/// writes its text into a buffer of its own without a formatter.
#[macro_export]
macro_rules! serde_as_string {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        $crate::serde_as_string!(@deserialize $type);
    };
    ($type:ty, with_text) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.with_text(|text| serializer.serialize_str(text))
            }
        }

        $crate::serde_as_string!(@deserialize $type);
    };
    (@deserialize $type:ty) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text =
                    <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Text written byte by byte from ASCII digits and letters, as a `str`.
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    std::str::from_utf8(bytes).unwrap_or_default()
}

pub mod change;
pub mod clock;
pub mod conflict;
pub mod cursor;
pub mod diff;
pub mod document;
pub mod entity;
pub mod error;
pub mod names;
pub mod operation;
pub mod query;
pub mod queue;
pub mod realtime;
pub mod result;
#[cfg(feature = "openapi")]
mod schema;
pub mod store;
pub mod timestamp;
pub mod watch;

pub use change::{Change, ChangeOp, RawChange};
pub use clock::{Clock, Hlc, HlcClock, ManualClock, NodeId, SystemClock};
pub use conflict::{ConflictData, ConflictRecord, ConflictResolver, ConflictStatus, Strategy};
pub use cursor::{Cursor, LogId};
pub use diff::DiffCalculator;
pub use document::{DocKey, Document, FieldClocks};
pub use entity::SyncEntity;
pub use error::{CloseCode, CoreError, ErrorBody, ErrorCode};
pub use names::{
    BRANCH_SEPARATOR, BranchName, CollectionName, ConflictId, DeviceId, DocId, Namespace, OpId,
    Seq, UserId, Version,
};
pub use operation::{Action, Operation, Priority};
pub use query::Filter;
pub use queue::OfflineQueue;
pub use realtime::ConnectionState;
pub use result::{OpError, OpResult, OpStatus};
pub use store::{
    CommitObserver, CommitOutcome, StoreError, StoredDocument, SyncStore, Write, WriteEffect,
};
pub use timestamp::Timestamp;
pub use watch::{Publisher, Watch};

/// A JSON object: the body of every document and delta.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
