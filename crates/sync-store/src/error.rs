//! The crate's error type, and its mapping to the trait boundary's
//! [`sync_core::StoreError`].

use sync_core::StoreError;

/// Why the sled store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled reported an I/O or storage error.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record does not decode.
    #[error("corrupt record in {tree}: {message}")]
    Corrupt {
        /// The tree the record is in.
        tree: &'static str,
        /// What failed to decode.
        message: String,
    },
    /// The committer thread is gone (the store is closing).
    #[error("the store is closed")]
    Closed,
}

impl From<Error> for StoreError {
    fn from(error: Error) -> StoreError {
        match error {
            Error::Sled(error) => StoreError::Backend(error.to_string()),
            Error::Corrupt { tree, message } => StoreError::Corrupt(format!("{tree}: {message}")),
            Error::Closed => StoreError::Closed,
        }
    }
}
