//! The crate's error type, and its mapping to the trait boundary's
//! [`sync_core::queue::QueueError`].

use sync_core::Operation;
use sync_core::queue::{QueueError, QueueId};

/// Why the queue could not do what was asked. Every variant raised by
/// `enqueue` carries the operation back, so the caller never loses it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The queue holds `max_entries` entries already; nothing was stored.
    #[error("the queue is full ({max_entries} entries)")]
    Full {
        /// The configured limit.
        max_entries: usize,
        /// The operation that was not stored.
        op: Box<Operation>,
    },
    /// The operation's fields do not fit its action; nothing was stored.
    #[error("operation refused: {reason}")]
    Invalid {
        /// What is wrong with it.
        reason: String,
        /// The operation that was not stored.
        op: Box<Operation>,
    },
    /// Storing the operation failed. Nothing is known to be stored; should
    /// the disk have taken part of the write after all, the operation can
    /// reappear after a reopen with the same `opId`, which the server
    /// answers as a duplicate.
    #[error("operation not stored: {reason}")]
    NotStored {
        /// What the storage said.
        reason: String,
        /// The operation handed back.
        op: Box<Operation>,
    },
    /// No entry with this id.
    #[error("no queued operation {0:?}")]
    NotFound(QueueId),
    /// The storage failed (I/O, or sled's own error, kept as the source).
    #[error("queue storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored record does not decode.
    #[error("corrupt queue record {key}: {message}")]
    Corrupt {
        /// The record's key, printed.
        key: String,
        /// What failed to decode.
        message: String,
    },
    /// An earlier flush failed, so what is on disk is no longer known: the
    /// queue refuses everything until it is reopened.
    #[error("the queue failed earlier ({0}); reopen it")]
    Poisoned(String),
    /// The configuration is not usable.
    #[error("invalid queue configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// The operation this error hands back, if it carries one.
    pub fn into_operation(self) -> Option<Operation> {
        match self {
            Error::Full { op, .. } | Error::Invalid { op, .. } | Error::NotStored { op, .. } => {
                Some(*op)
            }
            _ => None,
        }
    }

    pub(crate) fn storage(error: sled::Error) -> Error {
        Error::Storage(Box::new(error))
    }
}

impl From<Error> for QueueError {
    fn from(error: Error) -> QueueError {
        let message = error.to_string();
        match error {
            Error::NotFound(id) => QueueError::NotFound(id),
            Error::Full { op, .. } | Error::Invalid { op, .. } | Error::NotStored { op, .. } => {
                QueueError::Storage {
                    message,
                    unsaved: Some(op),
                }
            }
            Error::Storage(_)
            | Error::Corrupt { .. }
            | Error::Poisoned(_)
            | Error::InvalidConfig(_) => QueueError::Storage {
                message,
                unsaved: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use sync_core::Action;

    use super::*;

    #[test]
    fn errors_that_refuse_an_operation_hand_it_back_across_the_trait() {
        let op = Operation::new(Action::Delete);
        let error = Error::Full {
            max_entries: 3,
            op: Box::new(op.clone()),
        };
        match QueueError::from(error) {
            QueueError::Storage {
                message,
                unsaved: Some(unsaved),
            } => {
                assert_eq!(*unsaved, op);
                assert!(message.contains("full"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            QueueError::from(Error::NotFound(QueueId(7))),
            QueueError::NotFound(QueueId(7))
        ));
    }
}
