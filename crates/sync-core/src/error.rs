//! Validation errors of the core types and the protocol's error codes.
//!
//! [`ErrorCode`] is the single place where a failure is paired with its HTTP
//! status and WebSocket close code, so the server and every client agree.

use serde::{Deserialize, Serialize};

/// A value that failed validation. Expected outcomes (a version conflict, a
/// duplicate `opId`) are results, not errors; see [`crate::OpStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A namespace, collection, id or other name broke its rules.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// Which kind of name ("namespace", "collection", ...).
        kind: &'static str,
        /// The rejected input, cut to 200 characters.
        value: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A timestamp that is neither ISO-8601 nor an HLC string, or out of range.
    #[error("invalid timestamp {value:?}: {reason}")]
    InvalidTimestamp {
        /// The rejected input, cut to 200 characters.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A cursor this server did not issue, or one that was tampered with.
    #[error("invalid cursor {value:?}")]
    InvalidCursor {
        /// The rejected input, cut to 200 characters.
        value: String,
    },
    /// An operation whose fields do not fit its action.
    #[error("invalid operation: {0}")]
    InvalidOperation(String),
    /// A filter that cannot be parsed.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// An application value that is not a JSON object, or a document that
    /// does not fit the application's type.
    #[error("invalid entity: {0}")]
    InvalidEntity(String),
}

impl CoreError {
    /// The protocol code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidRequest
    }
}

/// Cuts user input that is echoed back in an error message.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 200;
    value.chars().take(MAX_CHARS).collect()
}

/// The error codes of the wire protocol (`docs/protocol.md`, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// Malformed or semantically invalid input (400).
    InvalidRequest,
    /// Missing, malformed or expired credentials (401).
    Unauthorized,
    /// Valid credentials without access to the namespace (403).
    Forbidden,
    /// No such document, conflict, device or route (404).
    NotFound,
    /// The request cannot apply to the current state (409).
    Conflict,
    /// A body, message or document over its size limit (413).
    TooLarge,
    /// Too many requests; retry after the advertised delay (429).
    RateLimited,
    /// A failure of the server itself (500).
    Internal,
    /// A cursor older than what retention kept (410).
    CursorExpired,
    /// The node cannot commit now (its store is unreachable or stalled);
    /// retry after the advertised delay (503).
    Unavailable,
    /// The disk is full; retry after the advertised delay (507).
    InsufficientStorage,
}

impl ErrorCode {
    /// Every code, for tables and exhaustive tests.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::CursorExpired,
        ErrorCode::Unavailable,
        ErrorCode::InsufficientStorage,
    ];

    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::CursorExpired => "cursor_expired",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
        }
    }

    /// The HTTP status an error with this code is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::CursorExpired => 410,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::InsufficientStorage => 507,
        }
    }

    /// Whether the error says "not now" rather than "never": sending the
    /// same request again later is right.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::Internal
                | ErrorCode::Unavailable
                | ErrorCode::InsufficientStorage
        )
    }

    /// How long a client should wait before retrying, for the codes of a
    /// passing condition of the server (the rate limit says its own).
    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            ErrorCode::Unavailable => Some(2),
            ErrorCode::InsufficientStorage => Some(10),
            _ => None,
        }
    }

    /// The WebSocket close code for errors that end a connection; `None`
    /// where the connection stays open and an `error` message is sent.
    pub fn ws_close_code(self) -> Option<CloseCode> {
        match self {
            ErrorCode::TooLarge => Some(CloseCode::MessageTooBig),
            ErrorCode::Unauthorized => Some(CloseCode::PolicyViolation),
            ErrorCode::Internal => Some(CloseCode::InternalError),
            _ => None,
        }
    }
}

/// The WebSocket close codes the server sends (RFC 6455, section 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: a normal close (idle, or heartbeats missed).
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1008: a failed or expired token, or a device of another user.
    PolicyViolation,
    /// 1009: a message over the size limit.
    MessageTooBig,
    /// 1011: the server failed.
    InternalError,
}

impl CloseCode {
    /// The number on the wire.
    pub fn number(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of an error on the wire: `{"code", "message", "details"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// Optional structured context (the limit that was exceeded, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An error body without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            details: None,
        }
    }
}

impl From<&CoreError> for ErrorBody {
    fn from(error: &CoreError) -> Self {
        ErrorBody::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        }
    }

    #[test]
    fn statuses_are_distinct() {
        let mut statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.http_status()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        assert_eq!(statuses.len(), ErrorCode::ALL.len());
    }
}
