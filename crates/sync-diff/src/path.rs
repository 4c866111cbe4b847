//! Field paths: where in a document a field lives (`address.city`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pointer::JsonPointer;

/// The path of a field from the document's root, one segment per nested
/// object. Printed dotted (`address.city`) for people; serialised as a JSON
/// Pointer (`/address/city`) because segments may themselves contain dots.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// The document's root.
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// A path from its segments.
    pub fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> FieldPath {
        FieldPath(segments.into_iter().map(Into::into).collect())
    }

    /// This path extended by one segment.
    pub fn child(&self, segment: impl Into<String>) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(segment.into());
        FieldPath(segments)
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The top-level field this path is under (`address` for `address.city`).
    pub fn top_level(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &FieldPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The same path as a JSON Pointer.
    pub fn to_pointer(&self) -> JsonPointer {
        JsonPointer::from_segments(self.0.iter().cloned())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.to_pointer())
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let pointer = JsonPointer::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(FieldPath(pointer.segments().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_dotted_and_serialises_as_a_pointer() {
        let path = FieldPath::new(["address", "zip.code"]);
        assert_eq!(path.to_string(), "address.zip.code");
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(json, "\"/address/zip.code\"");
        assert_eq!(serde_json::from_str::<FieldPath>(&json).unwrap(), path);
        assert_eq!(path.top_level(), Some("address"));
        assert!(path.starts_with(&FieldPath::new(["address"])));
        assert!(FieldPath::root().is_root());
    }
}
