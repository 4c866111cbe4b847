//! The crate's error type: every failure a request can end in, with the
//! protocol code it is reported with (`{"error": {"code", "message"}}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sync_core::{CoreError, ErrorBody, ErrorCode, StoreError};

/// Why a request failed. Each variant maps to one [`ErrorCode`], so its
/// HTTP status and WebSocket close code come from `sync-core`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or semantically invalid input.
    #[error("{0}")]
    Invalid(String),
    /// Missing, malformed or expired credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without access to what was asked.
    #[error("{0}")]
    Forbidden(String),
    /// No such document, conflict, device or route.
    #[error("{0}")]
    NotFound(String),
    /// The request cannot apply to the current state.
    #[error("{0}")]
    Conflict(String),
    /// Over a size or count limit.
    #[error("{message}")]
    TooLarge {
        /// What was too large.
        message: String,
        /// The limit that applies.
        limit: u64,
    },
    /// Over the rate limit.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// A cursor from another log (a wiped or foreign store): start over.
    #[error("{0}")]
    CursorExpired(String),
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// A failure of the server itself.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The protocol code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Invalid(_) => ErrorCode::InvalidRequest,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge { .. } => ErrorCode::TooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::CursorExpired(_) => ErrorCode::CursorExpired,
            ApiError::Store(error) => error.code(),
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The wire body of this error. Store failures are reported without
    /// their internals.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Store(error) => error.public_message(),
            other => other.to_string(),
        };
        let mut body = ErrorBody::new(self.code(), message);
        body.details = match self {
            ApiError::TooLarge { limit, .. } => Some(serde_json::json!({ "limit": limit })),
            _ => self
                .retry_after_secs()
                .map(|secs| serde_json::json!({ "retryAfterSecs": secs })),
        };
        body
    }

    /// When a client may retry, for a passing condition.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            other => other.code().retry_after_secs(),
        }
    }

    /// A forbidden error naming the namespace, which the caller may name
    /// since it asked for it.
    pub fn namespace_forbidden(namespace: &str) -> ApiError {
        ApiError::Forbidden(format!("no access to namespace {namespace:?}"))
    }
}

impl From<sync_engine::EngineError> for ApiError {
    fn from(error: sync_engine::EngineError) -> ApiError {
        use sync_engine::EngineError;
        match error {
            EngineError::Invalid(message) => ApiError::Invalid(message),
            EngineError::Forbidden(message) => ApiError::Forbidden(message),
            EngineError::NotFound(message) => ApiError::NotFound(message),
            EngineError::Conflict(message) => ApiError::Conflict(message),
            EngineError::TooLarge { message, limit } => ApiError::TooLarge { message, limit },
            EngineError::Store(error) => ApiError::Store(error),
            EngineError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> ApiError {
        ApiError::Invalid(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "store failure");
        }
        let status = StatusCode::from_u16(self.code().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            axum::Json(serde_json::json!({ "error": self.body() })),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
