//! Cursors: opaque positions in the change log handed to clients.
//!
//! A cursor names a [`Seq`] in one particular log. The log's [`LogId`] is
//! random and fixed when a store is created, so a cursor from another server
//! or from a data directory that was wiped is recognised as foreign (and the
//! client told to reset) instead of silently skipping changes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, excerpt};
use crate::names::Seq;

/// The identity of one change log, chosen when its store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogId(pub u64);

impl LogId {
    /// A fresh random log id.
    pub fn generate() -> LogId {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut half = [0u8; 8];
        half.copy_from_slice(&bytes[..8]);
        LogId(u64::from_be_bytes(half))
    }
}

/// A position in a change log: the client has seen every change up to and
/// including `seq`. Printed as an opaque string; clients store and return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    log: LogId,
    seq: Seq,
}

impl Cursor {
    const PREFIX: &'static str = "c1.";

    /// The cursor after change `seq` of `log`.
    pub fn new(log: LogId, seq: Seq) -> Cursor {
        Cursor { log, seq }
    }

    /// The log this cursor belongs to.
    pub fn log(self) -> LogId {
        self.log
    }

    /// The last change the holder has seen.
    pub fn seq(self) -> Seq {
        self.seq
    }

    /// Parses a cursor printed by [`Cursor`]'s `Display`.
    pub fn parse(input: &str) -> Result<Cursor, CoreError> {
        let invalid = || CoreError::InvalidCursor {
            value: excerpt(input),
        };
        let body = input.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        let (log, seq) = body.split_once('.').ok_or_else(invalid)?;
        let canonical_hex = log.len() == 16
            && log
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let canonical_dec = !seq.is_empty()
            && seq.bytes().all(|b| b.is_ascii_digit())
            && (seq == "0" || !seq.starts_with('0'));
        if !canonical_hex || !canonical_dec {
            return Err(invalid());
        }
        let log = u64::from_str_radix(log, 16).map_err(|_| invalid())?;
        let seq = seq.parse::<u64>().map_err(|_| invalid())?;
        Ok(Cursor::new(LogId(log), Seq(seq)))
    }
}

impl Cursor {
    /// Hands `use_text` the cursor's text: `c1.`, the log id in 16
    /// lowercase hex digits, `.` and the seq in decimal; written by hand,
    /// as every change message carries one.
    pub fn with_text<R>(&self, use_text: impl FnOnce(&str) -> R) -> R {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 3 + 16 + 1 + 20];
        text[..3].copy_from_slice(Self::PREFIX.as_bytes());
        for (i, digit) in text[3..19].iter_mut().enumerate() {
            *digit = HEX[(self.log.0 >> (60 - 4 * i) & 0xf) as usize];
        }
        text[19] = b'.';
        let mut seq = self.seq.0;
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (seq % 10) as u8;
            seq /= 10;
            if seq == 0 {
                break;
            }
        }
        let end = 20 + digits.len() - start;
        text[20..end].copy_from_slice(&digits[start..]);
        use_text(crate::ascii(&text[..end]))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

impl std::str::FromStr for Cursor {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        Cursor::parse(input)
    }
}

crate::serde_as_string!(Cursor, with_text);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn prints_and_parses() {
        let cursor = Cursor::new(LogId(0xabc), Seq(1234));
        assert_eq!(cursor.to_string(), "c1.0000000000000abc.1234");
        assert_eq!(
            Cursor::new(LogId(u64::MAX), Seq(0)).to_string(),
            "c1.ffffffffffffffff.0"
        );
        assert_eq!(Cursor::parse("c1.0000000000000abc.1234").unwrap(), cursor);
    }

    #[test]
    fn rejects_foreign_and_non_canonical_text() {
        for input in [
            "",
            "now",
            "1234",
            "c1.abc.1234",
            "c1.0000000000000ABC.1234",
            "c1.0000000000000abc.",
            "c1.0000000000000abc.01",
            "c1.0000000000000abc.-1",
            "c1.0000000000000abc.99999999999999999999999",
            "c2.0000000000000abc.1",
        ] {
            assert!(Cursor::parse(input).is_err(), "{input}");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(log in any::<u64>(), seq in any::<u64>()) {
            let cursor = Cursor::new(LogId(log), Seq(seq));
            prop_assert_eq!(cursor.to_string(), format!("c1.{log:016x}.{seq}"));
            prop_assert_eq!(Cursor::parse(&cursor.to_string()).unwrap(), cursor);
        }

        #[test]
        fn parse_never_panics(input in ".*") {
            let _ = Cursor::parse(&input);
        }
    }
}
