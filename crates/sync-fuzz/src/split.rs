//! Helpers shared by the targets: cutting the input into parts, reading
//! JSON as the server does (depth check on the raw bytes first), and the
//! check that the depth check agrees with the parsed value.

use serde::Deserialize;
use serde_json::Value;
use sync_service::limits::Limits;

/// The separator between the parts of one input. A NUL byte never occurs
/// in valid JSON text, so every part can still be any JSON document.
pub(crate) const SEPARATOR: u8 = 0;

/// `data` cut at [`SEPARATOR`] into at most `parts` pieces (the last one
/// keeps any further separators).
pub(crate) fn split(data: &[u8], parts: usize) -> Vec<&[u8]> {
    data.splitn(parts, |&byte| byte == SEPARATOR).collect()
}

/// The nesting depth of arrays and objects in `value` (a scalar is 0).
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Reads `bytes` as the server reads a body or a message: the depth limit
/// on the raw bytes, then the parser. Checks that the two agree: a body the
/// depth check lets through never hits the parser's recursion limit, and a
/// body that parses is refused exactly when it nests deeper than the limit.
pub(crate) fn server_json(bytes: &[u8]) -> Option<Value> {
    let limits = Limits::default();
    let depth_ok = limits.check_depth(bytes).is_ok();
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => {
            let actual = depth(&value);
            assert_eq!(
                depth_ok,
                actual <= limits.json_depth_max,
                "check_depth says {depth_ok} for a document {actual} levels deep"
            );
            depth_ok.then_some(value)
        }
        Err(error) => {
            if depth_ok {
                // The parser's own depth limit is not why it failed: without
                // the limit it fails as well.
                let mut unbounded = serde_json::Deserializer::from_slice(bytes);
                unbounded.disable_recursion_limit();
                let parsed = Value::deserialize(&mut unbounded).and_then(|_| unbounded.end());
                assert!(
                    parsed.is_err(),
                    "the depth check let through a body the parser refused as too deep: {error}"
                );
            }
            None
        }
    }
}

/// `bytes` as any JSON document, with no limit but the parser's own.
pub(crate) fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}
