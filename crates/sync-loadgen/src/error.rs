//! The one error type of the load generator's library.

/// What can stop a scenario.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A socket could not be opened, read or written.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An HTTP request failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered something the scenario did not expect.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The arguments cannot be used (a bad URL, a zero count).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// The library's result.
pub type Result<T> = std::result::Result<T, LoadError>;
