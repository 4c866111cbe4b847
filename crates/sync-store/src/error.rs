//! The crate's error type, and its mapping to the trait boundary's
//! [`sync_core::StoreError`].

use sync_core::StoreError;

/// The error of a storage backend, kept as the source of
/// [`Error::Storage`] so that no backend's type is part of this API.
/// Shared rather than boxed: one failed group commit answers every writer
/// of the group with the same error.
pub type SourceError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why a store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The embedded storage engine reported an I/O or storage error.
    #[error("storage: {source}")]
    Storage {
        /// The engine's own error.
        source: SourceError,
        /// Whether it was a full disk.
        storage_full: bool,
    },
    /// A stored record does not decode.
    #[error("corrupt record in {tree}: {message}")]
    Corrupt {
        /// The tree (sled) or table (PostgreSQL) the record is in.
        tree: &'static str,
        /// What failed to decode.
        message: String,
    },
    /// The disk holding the data directory has less free space than the
    /// store keeps in reserve: nothing was written.
    #[error("{available} bytes free on the data directory's disk, {reserve} kept in reserve")]
    StorageFull {
        /// Bytes free.
        available: u64,
        /// Bytes the store keeps free.
        reserve: u64,
    },
    /// A record is encrypted under a key the store was not given.
    #[error("a record is encrypted under key {key_id:08x}, which is not configured")]
    MissingKey {
        /// The id of the key the record needs.
        key_id: u32,
    },
    /// The committer is gone (the store is closing).
    #[error("the store is closed")]
    Closed,
    /// PostgreSQL refused a statement, or the connection to it failed.
    #[error("postgres: {message}")]
    Postgres {
        /// What went wrong, with the server's message when it sent one.
        message: String,
        /// The SQLSTATE code when the server refused the statement (then the
        /// transaction was rolled back); `None` for connection failures,
        /// where the fate of a commit in flight is unknown.
        code: Option<String>,
    },
    /// No connection could be taken from the PostgreSQL connection pool.
    #[error("postgres connection pool: {0}")]
    Pool(String),
    /// The store's settings are invalid (database URL, schema name).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A snapshot was to be loaded into a store holding data.
    #[error("the store is not empty: a snapshot loads only into an empty store")]
    NotEmpty,
    /// The database was migrated by a newer build than this one.
    #[error("the database schema is at version {found}, this build knows up to {known}")]
    SchemaTooNew {
        /// The version found in `schema_migrations`.
        found: i32,
        /// The newest version this build can migrate to.
        known: i32,
    },
}

#[cfg(feature = "sled")]
impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Error {
        let storage_full = matches!(
            &error,
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull
        );
        Error::Storage {
            source: std::sync::Arc::new(error),
            storage_full,
        }
    }
}

/// PostgreSQL's SQLSTATE for a full disk.
const DISK_FULL: &str = "53100";

impl From<Error> for StoreError {
    fn from(error: Error) -> StoreError {
        match error {
            Error::Storage {
                source,
                storage_full: true,
            } => StoreError::StorageFull(source.to_string()),
            Error::Postgres {
                code: Some(ref code),
                ..
            } if code == DISK_FULL => StoreError::StorageFull(error.to_string()),
            error @ Error::StorageFull { .. } => StoreError::StorageFull(error.to_string()),
            error @ (Error::Postgres { code: None, .. } | Error::Pool(_)) => {
                StoreError::Unavailable(error.to_string())
            }
            Error::Storage { source, .. } => StoreError::Backend(source.to_string()),
            Error::Corrupt { tree, message } => StoreError::Corrupt(format!("{tree}: {message}")),
            Error::Closed => StoreError::Closed,
            error @ Error::MissingKey { .. } => StoreError::Corrupt(error.to_string()),
            Error::NotEmpty => StoreError::NotEmpty,
            error @ (Error::Postgres { .. } | Error::Config(_) | Error::SchemaTooNew { .. }) => {
                StoreError::Backend(error.to_string())
            }
        }
    }
}
