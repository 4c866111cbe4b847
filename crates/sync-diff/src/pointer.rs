//! JSON Pointer (RFC 6901): `/a/b/0` names a value inside a document.

use std::fmt;

use serde_json::Value;

use crate::error::DiffError;

/// A parsed JSON Pointer: a list of reference tokens, unescaped (`~1` is
/// `/`, `~0` is `~`). The empty pointer names the whole document.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonPointer(Vec<String>);

impl JsonPointer {
    /// The pointer to the whole document.
    pub fn root() -> JsonPointer {
        JsonPointer(Vec::new())
    }

    /// A pointer from unescaped reference tokens.
    pub fn from_segments(segments: impl IntoIterator<Item = String>) -> JsonPointer {
        JsonPointer(segments.into_iter().collect())
    }

    /// Parses the string form (RFC 6901 section 3).
    pub fn parse(text: &str) -> Result<JsonPointer, DiffError> {
        if text.is_empty() {
            return Ok(JsonPointer::root());
        }
        let invalid = |reason| DiffError::InvalidPointer {
            pointer: text.to_owned(),
            reason,
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| invalid("must be empty or start with '/'"))?;
        rest.split('/')
            .map(|token| unescape(token).ok_or_else(|| invalid("'~' must be followed by 0 or 1")))
            .collect::<Result<Vec<_>, _>>()
            .map(JsonPointer)
    }

    /// The unescaped reference tokens.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Whether this points at the whole document.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The pointer to the parent and the last token; `None` for the root.
    pub fn split_last(&self) -> Option<(JsonPointer, &str)> {
        let (last, parent) = self.0.split_last()?;
        Some((JsonPointer(parent.to_vec()), last))
    }

    /// This pointer extended by one token.
    pub fn child(&self, token: impl Into<String>) -> JsonPointer {
        let mut segments = self.0.clone();
        segments.push(token.into());
        JsonPointer(segments)
    }

    /// Whether `self` lies strictly inside `other`.
    pub fn is_proper_descendant_of(&self, other: &JsonPointer) -> bool {
        self.0.len() > other.0.len() && self.0.starts_with(&other.0)
    }

    /// The value this pointer names in `doc`.
    pub fn get<'a>(&self, doc: &'a Value) -> Result<&'a Value, DiffError> {
        let mut current = doc;
        for (depth, token) in self.0.iter().enumerate() {
            let here = || JsonPointer(self.0[..=depth].to_vec());
            current = match current {
                Value::Object(map) => map.get(token).ok_or_else(|| DiffError::PathNotFound {
                    path: here().to_string(),
                })?,
                Value::Array(items) => {
                    let index = parse_index(token, &here())?;
                    items.get(index).ok_or_else(|| DiffError::IndexOutOfRange {
                        path: here().to_string(),
                        index,
                        len: items.len(),
                    })?
                }
                _ => {
                    return Err(DiffError::PathNotFound {
                        path: here().to_string(),
                    });
                }
            };
        }
        Ok(current)
    }

    /// The value this pointer names in `doc`, mutably.
    pub fn get_mut<'a>(&self, doc: &'a mut Value) -> Result<&'a mut Value, DiffError> {
        resolve_mut(&self.0, doc)
    }

    /// The parent's tokens and the last token; `None` for the root.
    pub(crate) fn split_last_token(&self) -> Option<(&[String], &str)> {
        let (last, parent) = self.0.split_last()?;
        Some((parent, last))
    }
}

/// The value that the pointer made of `tokens` names in `doc`, mutably.
pub(crate) fn resolve_mut<'a>(
    tokens: &[String],
    doc: &'a mut Value,
) -> Result<&'a mut Value, DiffError> {
    let mut current = doc;
    for (depth, token) in tokens.iter().enumerate() {
        let here = || JsonPointer(tokens[..=depth].to_vec());
        current = match current {
            Value::Object(map) => map.get_mut(token).ok_or_else(|| DiffError::PathNotFound {
                path: here().to_string(),
            })?,
            Value::Array(items) => {
                let index = parse_index(token, &here())?;
                let len = items.len();
                items
                    .get_mut(index)
                    .ok_or_else(|| DiffError::IndexOutOfRange {
                        path: here().to_string(),
                        index,
                        len,
                    })?
            }
            _ => {
                return Err(DiffError::PathNotFound {
                    path: here().to_string(),
                });
            }
        };
    }
    Ok(current)
}

/// Parses an array index token: `0` or digits without a leading zero.
pub(crate) fn parse_index(token: &str, path: &JsonPointer) -> Result<usize, DiffError> {
    let canonical = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    canonical
        .then(|| token.parse::<usize>().ok())
        .flatten()
        .ok_or_else(|| DiffError::InvalidIndex {
            path: path.to_string(),
            token: token.to_owned(),
        })
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.0 {
            f.write_str("/")?;
            f.write_str(&token.replace('~', "~0").replace('/', "~1"))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for JsonPointer {
    type Err = DiffError;
    fn from_str(text: &str) -> Result<Self, DiffError> {
        JsonPointer::parse(text)
    }
}

sync_core::serde_as_string!(JsonPointer);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 6901 section 5, every example.
    #[test]
    fn rfc_6901_examples() {
        let doc = json!({
            "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3,
            "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8
        });
        for (pointer, expected) in [
            ("", doc.clone()),
            ("/foo", json!(["bar", "baz"])),
            ("/foo/0", json!("bar")),
            ("/", json!(0)),
            ("/a~1b", json!(1)),
            ("/c%d", json!(2)),
            ("/e^f", json!(3)),
            ("/g|h", json!(4)),
            ("/i\\j", json!(5)),
            ("/k\"l", json!(6)),
            ("/ ", json!(7)),
            ("/m~0n", json!(8)),
        ] {
            let parsed = JsonPointer::parse(pointer).unwrap();
            assert_eq!(parsed.get(&doc).unwrap(), &expected, "{pointer}");
            assert_eq!(parsed.to_string(), pointer);
        }
    }

    #[test]
    fn rejects_malformed_pointers_and_indexes() {
        for bad in ["foo", "/a~", "/a~2", "~1"] {
            assert!(
                matches!(
                    JsonPointer::parse(bad),
                    Err(DiffError::InvalidPointer { .. })
                ),
                "{bad}"
            );
        }
        let doc = json!({"list": [1, 2]});
        let get = |p: &str| JsonPointer::parse(p).unwrap().get(&doc).cloned();
        assert!(matches!(
            get("/list/01"),
            Err(DiffError::InvalidIndex { .. })
        ));
        assert!(matches!(
            get("/list/-"),
            Err(DiffError::InvalidIndex { .. })
        ));
        assert!(matches!(
            get("/list/2"),
            Err(DiffError::IndexOutOfRange {
                index: 2,
                len: 2,
                ..
            })
        ));
        assert!(matches!(
            get("/missing"),
            Err(DiffError::PathNotFound { .. })
        ));
        assert!(matches!(
            get("/list/0/deeper"),
            Err(DiffError::PathNotFound { .. })
        ));
    }
}
