//! The crate's one error type.

use sync_core::queue::QueueError;

/// A failure of a library the client uses (sled, the HTTP client, the
/// WebSocket), kept as the [`source`](std::error::Error::source) of
/// [`Error::Storage`] or [`Error::Network`] without its type being part of
/// this API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of the builder is missing or makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A name, id or value did not validate.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The collection is not among the configured ones.
    #[error("collection {0:?} is not configured on this client")]
    UnknownCollection(String),
    /// No document with this id in the local view.
    #[error("no document {0:?}")]
    NotFound(String),
    /// The local store (sled) failed.
    #[error("local storage failed: {0}")]
    Storage(#[source] BoxError),
    /// The offline queue refused or failed.
    #[error("offline queue failed: {0}")]
    Queue(String),
    /// The server could not be reached or answered with a failure.
    #[error("server unreachable or failing: {0}")]
    Network(#[source] BoxError),
    /// The server answered, but refused the request.
    #[error("server refused: {code}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The protocol error code (`invalid_request`, `cursor_expired`, ...).
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// `sync_now` returned with operations still waiting (in backoff or
    /// behind a failed one).
    #[error("{0} operations are still pending")]
    Pending(usize),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// A failure of the local store.
    pub(crate) fn storage(error: sled::Error) -> Self {
        Error::Storage(Box::new(error))
    }

    /// A failure to reach the server.
    pub(crate) fn network(error: reqwest::Error) -> Self {
        Error::Network(Box::new(error))
    }
}

impl From<QueueError> for Error {
    fn from(error: QueueError) -> Self {
        Error::Queue(error.to_string())
    }
}

impl From<sync_queue::Error> for Error {
    fn from(error: sync_queue::Error) -> Self {
        Error::Queue(error.to_string())
    }
}

impl From<sync_core::CoreError> for Error {
    fn from(error: sync_core::CoreError) -> Self {
        Error::Invalid(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Storage(format!("unreadable record: {error}").into())
    }
}
