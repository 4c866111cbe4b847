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

    /// [`apply`](Self::apply) for a patch the caller no longer needs: the
    /// same result or error, `doc` untouched on error, and the patch's
    /// values moved into the result where a format can instead of copied.
    /// By default the patch is borrowed and dropped.
    fn apply_owned(&self, doc: &Value, patch: Self::Patch) -> Result<Value, Self::Error> {
        self.apply(doc, &patch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::DiffCalculator;

    /// Replaces the document whole, and refuses to patch `null`.
    struct Replace;

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("null cannot be patched")]
    struct NullDocument;

    impl DiffCalculator for Replace {
        type Patch = Value;
        type Error = NullDocument;

        fn diff(&self, _old: &Value, new: &Value) -> Value {
            new.clone()
        }

        fn apply(&self, doc: &Value, patch: &Value) -> Result<Value, NullDocument> {
            if doc.is_null() {
                Err(NullDocument)
            } else {
                Ok(patch.clone())
            }
        }
    }

    #[test]
    fn apply_owned_defaults_to_apply() {
        let patch = Replace.diff(&json!(1), &json!({"a": [2]}));
        assert_eq!(
            Replace.apply_owned(&json!(1), patch.clone()),
            Ok(json!({"a": [2]}))
        );
        assert_eq!(Replace.apply_owned(&Value::Null, patch), Err(NullDocument));
    }
}
