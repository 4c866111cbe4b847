//! Differences of JSON documents and their application.
//!
//! Three formats, one job each:
//!
//! - **Merge patch** ([`merge_patch`], RFC 7386): the changed members only,
//!   `null` removing one. Compact and readable; it is the protocol's delta
//!   format (`update.data`, a change's `delta`). It cannot set a member *to*
//!   `null`.
//! - **JSON Patch** ([`json_patch`], RFC 6902, with [`pointer`](mod@pointer) for RFC 6901
//!   paths): precise operations (`add`, `remove`, `replace`, `move`, `copy`,
//!   `test`) applied all or nothing. For array edits and for clients that
//!   speak RFC 6902.
//! - **Field delta** ([`delta`]): added / modified / removed values by
//!   nested [`FieldPath`]: the readable answer to "what changed", for the
//!   conflict engine, history views and analytics.
//!
//! Plus [`text`]: a character-level edit list for strings and the three-way
//! text merge used when both sides edited the same string (word tokens,
//! both sides' edits applied as operational transform would, the later
//! write kept where both changed the same words).
//!
//! Each format satisfies `apply(a, diff(a, b)) == b` (property-tested), and
//! each is available through [`sync_core::DiffCalculator`] for generic code:
//!
//! ```
//! use serde_json::json;
//! use sync_core::DiffCalculator;
//! use sync_diff::{JsonPatchDiff, MergePatchDiff};
//!
//! let old = json!({"title": "Buy milk", "tags": ["home"], "done": false});
//! let new = json!({"title": "Buy oat milk", "tags": ["home", "shop"], "done": false});
//!
//! let merge = MergePatchDiff.diff(&old, &new);
//! assert_eq!(merge, json!({"title": "Buy oat milk", "tags": ["home", "shop"]}));
//!
//! let patch = JsonPatchDiff.diff(&old, &new);
//! assert_eq!(
//!     serde_json::to_value(&patch)?,
//!     json!([{"op": "add", "path": "/tags/1", "value": "shop"},
//!            {"op": "replace", "path": "/title", "value": "Buy oat milk"}])
//! );
//! assert_eq!(JsonPatchDiff.apply(&old, &patch)?, new);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each `apply` has an `apply_owned` form (and [`DiffCalculator::apply_owned`])
//! for a patch the caller no longer needs, such as a received delta: the
//! same result, with the patch's values moved into it instead of copied.
//!
//! Nothing here knows about storage, sockets or document metadata: values
//! in, values out.

pub mod delta;
mod error;
pub mod json_patch;
mod members;
pub mod merge_patch;
pub mod path;
pub mod pointer;
pub mod text;

use serde_json::Value;
use sync_core::DiffCalculator;

pub use delta::FieldDelta;
pub use error::DiffError;
pub use json_patch::{Patch, PatchOperation};
pub use path::FieldPath;
pub use pointer::JsonPointer;
pub use text::{ConflictRegion, TextDelta, TextMerge, TextOp};

/// Field deltas through [`DiffCalculator`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldDeltaDiff;

impl DiffCalculator for FieldDeltaDiff {
    type Patch = FieldDelta;
    type Error = DiffError;

    fn diff(&self, old: &Value, new: &Value) -> FieldDelta {
        delta::diff(old, new)
    }

    fn apply(&self, doc: &Value, patch: &FieldDelta) -> Result<Value, DiffError> {
        delta::apply(doc, patch)
    }

    fn apply_owned(&self, doc: &Value, patch: FieldDelta) -> Result<Value, DiffError> {
        delta::apply_owned(doc, patch)
    }
}

/// RFC 7386 merge patches through [`DiffCalculator`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MergePatchDiff;

impl DiffCalculator for MergePatchDiff {
    type Patch = Value;
    type Error = DiffError;

    fn diff(&self, old: &Value, new: &Value) -> Value {
        merge_patch::diff(old, new)
    }

    fn apply(&self, doc: &Value, patch: &Value) -> Result<Value, DiffError> {
        Ok(merge_patch::apply(doc, patch))
    }

    fn apply_owned(&self, doc: &Value, patch: Value) -> Result<Value, DiffError> {
        Ok(merge_patch::apply_owned(doc, patch))
    }
}

/// RFC 6902 JSON Patch through [`DiffCalculator`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonPatchDiff;

impl DiffCalculator for JsonPatchDiff {
    type Patch = Patch;
    type Error = DiffError;

    fn diff(&self, old: &Value, new: &Value) -> Patch {
        json_patch::diff(old, new)
    }

    fn apply(&self, doc: &Value, patch: &Patch) -> Result<Value, DiffError> {
        json_patch::apply(doc, patch)
    }

    fn apply_owned(&self, doc: &Value, patch: Patch) -> Result<Value, DiffError> {
        json_patch::apply_owned(doc, patch)
    }
}

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
