//! The write path's errors: why one operation (or, for a store failure, a
//! whole batch) was not applied. Each kind maps to one protocol error code;
//! the server's doors turn them into their wire shapes.

use sync_core::{CoreError, ErrorBody, ErrorCode, StoreError};

/// Why an operation was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Malformed or semantically invalid input.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not write where the operation writes.
    #[error("{0}")]
    Forbidden(String),
    /// No such document (or conflict).
    #[error("{0}")]
    NotFound(String),
    /// The operation cannot apply to the current state.
    #[error("{0}")]
    Conflict(String),
    /// Over a size limit.
    #[error("{message}")]
    TooLarge {
        /// What was too large.
        message: String,
        /// The limit that applies.
        limit: u64,
    },
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The write path itself gave up (a document that kept changing).
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// The protocol's code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Invalid(_) => ErrorCode::InvalidRequest,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::Conflict(_) => ErrorCode::Conflict,
            EngineError::TooLarge { .. } => ErrorCode::TooLarge,
            EngineError::Store(error) => error.code(),
            EngineError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The error as a result's `error` body says it. A store failure's
    /// cause stays in the server's logs.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            EngineError::Store(error) => error.public_message(),
            other => other.to_string(),
        };
        let code = self.code();
        let mut body = ErrorBody::new(code, message);
        if let EngineError::TooLarge { limit, .. } = self {
            body.details = Some(serde_json::json!({ "limit": limit }));
        } else if let Some(secs) = code.retry_after_secs() {
            body.details = Some(serde_json::json!({ "retryAfterSecs": secs }));
        }
        body
    }
}

impl From<CoreError> for EngineError {
    fn from(error: CoreError) -> EngineError {
        EngineError::Invalid(error.to_string())
    }
}
