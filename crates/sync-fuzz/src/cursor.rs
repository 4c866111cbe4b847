//! `cursor`: the change-log cursor a client hands back (`?cursor=`, a
//! sync body's `cursor`, a subscription's `cursor`), as
//! [`sync_core::Cursor`] decodes it.

use sync_core::{Cursor, LogId, Seq};

/// Reads `data` as cursor text and as a JSON string. Parsing is canonical:
/// a cursor that parses prints as exactly the text it came from, and the
/// JSON form reads the same as the bare text. Any log and position, taken
/// from the first 16 bytes, prints to text that parses back to them.
pub fn cursor(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = Cursor::parse(text);
        if let Ok(cursor) = parsed {
            assert_eq!(cursor.to_string(), text, "cursor is not canonical");
        }
        let quoted = serde_json::to_string(text).unwrap_or_default();
        let from_json = serde_json::from_str::<Cursor>(&quoted);
        assert_eq!(
            from_json.ok(),
            parsed.ok(),
            "the JSON form of {text:?} reads otherwise"
        );
    }
    if let Ok(cursor) = serde_json::from_slice::<Cursor>(data) {
        let wire = serde_json::to_string(&cursor).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Cursor>(&wire).ok(), Some(cursor));
    }
    if let Some((log, seq)) = data.get(..8).zip(data.get(8..16)) {
        let number = |bytes: &[u8]| bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
        let cursor = Cursor::new(LogId(number(log)), Seq(number(seq)));
        let text = cursor.to_string();
        assert_eq!(
            Cursor::parse(&text),
            Ok(cursor),
            "{text} does not parse back"
        );
        assert_eq!(cursor.log(), LogId(number(log)));
        assert_eq!(cursor.seq(), Seq(number(seq)));
    }
}
