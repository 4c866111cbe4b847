//! The [`DiffCalculator`] trait: compute the difference of two JSON values
//! and apply it. `sync-diff` implements it for field deltas, RFC 7386 merge
//! patches and RFC 6902 JSON patches.

use serde_json::Value;

/// A patch format: `apply(a, diff(a, b)) == b` for every pair of values.
pub trait DiffCalculator {
    /// The patch this format produces.
    type Patch;
    /// Why a patch could not be applied.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The patch that turns `old` into `new`.
    fn diff(&self, old: &Value, new: &Value) -> Self::Patch;

    /// `doc` with `patch` applied. A failing patch changes nothing: the
    /// input is borrowed and a new value returned.
    fn apply(&self, doc: &Value, patch: &Self::Patch) -> Result<Value, Self::Error>;
}
