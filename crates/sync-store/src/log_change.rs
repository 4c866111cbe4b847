//! A change as a store reads it from its log: whole, or with its delta and
//! document left as JSON text for readers that pass them on unread.

use serde::de::DeserializeOwned;
use sync_core::store::ChangeFilter;
use sync_core::{Change, RawChange, Seq};

/// A [`Change`] or a [`RawChange`], decoded from the change's JSON.
pub(crate) trait LogChange: DeserializeOwned {
    /// Its position in the log.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn seq(&self) -> Seq;
    /// Whether it passes `filter`.
    fn passes(&self, filter: &ChangeFilter) -> bool;
}

impl LogChange for Change {
    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.matches(self)
    }
}

impl LogChange for RawChange {
    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.admits(&self.namespace, &self.collection)
    }
}
