//! The crate's one error type: why a pointer, patch or delta does not fit.

/// Why a pointer could not be parsed or a patch or delta could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// A JSON Pointer that is not empty and does not start with `/`, or has
    /// a `~` not followed by `0` or `1` (RFC 6901 section 3).
    #[error("invalid JSON pointer {pointer:?}: {reason}")]
    InvalidPointer {
        /// The rejected pointer.
        pointer: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// The path names a member or element that does not exist.
    #[error("path {path:?} does not exist")]
    PathNotFound {
        /// The path, as a JSON Pointer.
        path: String,
    },
    /// An array index that is not a number, or has a leading zero.
    #[error("{token:?} is not a valid array index at {path:?}")]
    InvalidIndex {
        /// The path, as a JSON Pointer.
        path: String,
        /// The offending reference token.
        token: String,
    },
    /// An array index past the end of the array.
    #[error("index {index} is out of range at {path:?} (length {len})")]
    IndexOutOfRange {
        /// The path, as a JSON Pointer.
        path: String,
        /// The index.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// The parent of the target is a scalar, so nothing can be added under it.
    #[error("the parent of {path:?} is not an object or array")]
    NotAContainer {
        /// The path, as a JSON Pointer.
        path: String,
    },
    /// A `test` operation whose value differs from the document's.
    #[error("test failed at {path:?}")]
    TestFailed {
        /// The path, as a JSON Pointer.
        path: String,
    },
    /// A `move` whose target lies inside its source.
    #[error("cannot move {from:?} into its own child {path:?}")]
    MoveIntoChild {
        /// The source, as a JSON Pointer.
        from: String,
        /// The target, as a JSON Pointer.
        path: String,
    },
    /// An operation not allowed on the root (removing it).
    #[error("cannot remove the document root")]
    RemoveRoot,
    /// A field delta that does not fit the document it is applied to.
    #[error("delta does not fit the document at {path}: {reason}")]
    DeltaMismatch {
        /// The dotted field path.
        path: String,
        /// What did not fit.
        reason: &'static str,
    },
    /// A text delta whose ranges do not fit the text it is applied to.
    #[error("text delta does not fit the text: {0}")]
    TextMismatch(&'static str),
}
