//! Who writes: the write path asks the caller's identity for its user and
//! whether it may write a namespace, and knows nothing of tokens. The
//! server's authenticated principal implements [`Access`]; [`FullAccess`]
//! is the caller of embedded uses and tests.

use sync_core::{Namespace, UserId};

use crate::error::EngineError;

/// A caller of the write path.
pub trait Access: std::fmt::Debug + Send + Sync {
    /// The user the writes are recorded for.
    fn user(&self) -> &UserId;
    /// Fails (`forbidden`) when the caller may not write `namespace`.
    fn check_write(&self, namespace: &Namespace) -> Result<(), EngineError>;
}

/// A caller that may write every namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullAccess {
    /// The user the writes are recorded for.
    pub user: UserId,
}

impl Access for FullAccess {
    fn user(&self) -> &UserId {
        &self.user
    }

    fn check_write(&self, _namespace: &Namespace) -> Result<(), EngineError> {
        Ok(())
    }
}
