//! Wall-clock instants as the protocol writes them: ISO-8601 / RFC 3339 in
//! UTC with milliseconds (`2023-12-01T10:30:00.000Z`).

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{CoreError, excerpt};

/// Milliseconds since the Unix epoch, UTC. Printed and parsed as ISO-8601.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The latest instant that still prints with a four-digit year.
    pub const MAX_MILLIS: u64 = 253_402_300_799_999;

    /// An instant from milliseconds since the epoch; `None` past year 9999.
    pub fn from_millis(millis: u64) -> Option<Timestamp> {
        (millis <= Self::MAX_MILLIS).then_some(Timestamp(millis))
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// Parses RFC 3339 (`2023-12-01T10:30:00.000Z`, `...+02:00`, any number
    /// of fraction digits, truncated to milliseconds). A time without an
    /// offset, as Dart's `toIso8601String()` writes for local times, is read
    /// as UTC.
    pub fn parse(input: &str) -> Result<Timestamp, CoreError> {
        let invalid = |reason: String| CoreError::InvalidTimestamp {
            value: excerpt(input),
            reason,
        };
        let parsed = match OffsetDateTime::parse(input, &Rfc3339) {
            Ok(parsed) => parsed,
            Err(rfc_error) => {
                let local = format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
                );
                PrimitiveDateTime::parse(input, local)
                    .map(|naive| naive.assume_offset(UtcOffset::UTC))
                    .map_err(|_| invalid(rfc_error.to_string()))?
            }
        };
        // Floor, not truncation toward zero: a time a fraction of a
        // millisecond before 1970 is before 1970, not the epoch.
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        let millis = u64::try_from(millis).map_err(|_| invalid("before 1970".into()))?;
        Timestamp::from_millis(millis).ok_or_else(|| invalid("after year 9999".into()))
    }

    fn date_time(self) -> OffsetDateTime {
        // In range by construction: at most year 9999.
        OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(self.0 as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.date_time();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        Timestamp::parse(input)
    }
}

crate::serde_as_string!(Timestamp);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_seed_format_and_prints_it_back() {
        let t = Timestamp::parse("2023-12-01T10:30:00.000Z").unwrap();
        assert_eq!(t.as_millis(), 1_701_426_600_000);
        assert_eq!(t.to_string(), "2023-12-01T10:30:00.000Z");
    }

    #[test]
    fn accepts_offsets_fractions_and_offsetless_times() {
        for (input, expected) in [
            ("2023-12-01T12:30:00+02:00", "2023-12-01T10:30:00.000Z"),
            ("2023-12-01T10:30:00.123456789Z", "2023-12-01T10:30:00.123Z"),
            ("2023-12-01T10:30:00.5Z", "2023-12-01T10:30:00.500Z"),
            ("2023-12-01T10:30:00.250", "2023-12-01T10:30:00.250Z"),
            ("2023-12-01T10:30:00", "2023-12-01T10:30:00.000Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(
                Timestamp::parse(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for input in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-12-01",
            "1969-12-31T23:59:59Z",
            "2023-12-01T10:30:00.000Zjunk",
            // Found by the `time_parse` fuzz target: once read as the epoch.
            "1969-12-31T23:59:59.9995Z",
        ] {
            assert!(
                matches!(
                    Timestamp::parse(input),
                    Err(CoreError::InvalidTimestamp { .. })
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn serde_uses_iso_strings() {
        let t: Timestamp = serde_json::from_str("\"2023-12-01T11:20:00.000Z\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2023-12-01T11:20:00.000Z\""
        );
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }

    proptest! {
        #[test]
        fn print_parse_roundtrip(millis in 0..=Timestamp::MAX_MILLIS) {
            let t = Timestamp::from_millis(millis).unwrap();
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
    }
}
