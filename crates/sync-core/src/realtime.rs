//! The vocabulary of a live connection to the server, which pushes changes
//! of subscribed collections and carries operations back: its states,
//! subscriptions, pushed events and transport errors.

use serde::{Deserialize, Serialize};

use crate::change::Change;
use crate::cursor::Cursor;
use crate::error::ErrorBody;
use crate::names::{CollectionName, Namespace};
use crate::operation::Operation;
use crate::query::Filter;

/// The states a client connection reports (`docs/protocol.md`,
/// "Connection states and reconnecting").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Not connected and not trying.
    Disconnected,
    /// Opening the first connection.
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// Lost the connection; trying again with backoff.
    Reconnecting,
    /// Gave up (attempts exhausted or credentials refused).
    Error,
}

/// What to subscribe to: one collection of one namespace, optionally
/// filtered, from a cursor or from the current documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The client's name for the subscription, echoed in `subscribed`.
    pub id: Option<String>,
    /// The namespace.
    pub namespace: Namespace,
    /// The collection.
    pub collection: CollectionName,
    /// Field equalities a document must satisfy.
    pub filter: Filter,
    /// Resume after this position; `None` starts from the current documents.
    pub cursor: Option<Cursor>,
}

/// Something the server pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum RealTimeEvent {
    /// A change in a subscription. `matches` is false when the document
    /// stopped matching the subscription's filter with this change.
    Change {
        /// The subscription it belongs to.
        subscription: String,
        /// The change, with the whole document after it.
        change: Box<Change>,
        /// Whether the document still matches the filter.
        matches: bool,
    },
    /// The live stream was dropped (slow consumer or expired cursor): catch
    /// up from `cursor`, or replace the local copy when `reset` is set.
    Resync {
        /// Where to catch up from.
        cursor: Option<Cursor>,
        /// Whether the local copy must be replaced by the current documents.
        reset: bool,
    },
}

/// Why the transport could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection is closed; the operation was not sent and is handed back.
    #[error("connection closed")]
    Closed {
        /// The operation that was not sent, when there was one.
        unsent: Option<Box<Operation>>,
    },
    /// The server refused the request.
    #[error("server refused: {} ({})", .0.message, .0.code)]
    Rejected(ErrorBody),
    /// The server sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
}
