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
        if let Some(canonical) = Timestamp::parse_canonical(input.as_bytes()) {
            return Ok(canonical);
        }
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

    /// The canonical text, `YYYY-MM-DDTHH:MM:SS.mmmZ`, written without a
    /// formatter: every stored record and every frame holds timestamps.
    pub(crate) fn text(self) -> [u8; TEXT_LEN] {
        let (days, in_day) = (self.0 / MILLIS_PER_DAY, self.0 % MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        put_digits(&mut out[0..4], year);
        put_digits(&mut out[5..7], month);
        put_digits(&mut out[8..10], day);
        put_digits(&mut out[11..13], in_day / 3_600_000);
        put_digits(&mut out[14..16], in_day / 60_000 % 60);
        put_digits(&mut out[17..19], in_day / 1_000 % 60);
        put_digits(&mut out[20..23], in_day % 1_000);
        out
    }

    /// Exactly the canonical text (as [`Timestamp::text`] writes it), read
    /// without a parser; `None` for anything else, which the full parser
    /// then reads or refuses.
    pub(crate) fn parse_canonical(input: &[u8]) -> Option<Timestamp> {
        let input: &[u8; TEXT_LEN] = input.try_into().ok()?;
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(at, byte)| input[at] != byte)
            || (input[19], input[23]) != (b'.', b'Z')
        {
            return None;
        }
        let year = read_digits(&input[0..4])?;
        let month = read_digits(&input[5..7])?;
        let day = read_digits(&input[8..10])?;
        let hour = read_digits(&input[11..13])?;
        let minute = read_digits(&input[14..16])?;
        let second = read_digits(&input[17..19])?;
        let millis = read_digits(&input[20..23])?;
        if year < 1970
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let in_day = ((hour * 60 + minute) * 60 + second) * 1_000 + millis;
        Timestamp::from_millis(days_from_civil(year, month, day) * MILLIS_PER_DAY + in_day)
    }
}

/// Bytes of a timestamp's canonical text.
pub(crate) const TEXT_LEN: usize = 24;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// Writes `value` as decimal digits filling `out`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The number the decimal digits of `digits` make; `None` if one is not a
/// digit.
fn read_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

fn is_leap_year(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The year, month and day of `days` after 1970-01-01 (the proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`, for days since
/// the epoch, which are never negative here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The days from 1970-01-01 to a date of 1970 or later (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = year - u64::from(month <= 2);
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl Timestamp {
    /// Hands `use_text` the time's ISO-8601 text, written without a
    /// formatter.
    pub fn with_text<R>(&self, use_text: impl FnOnce(&str) -> R) -> R {
        use_text(crate::ascii(&self.text()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        Timestamp::parse(input)
    }
}

crate::serde_as_string!(Timestamp, with_text);

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

    /// The `time` crate's reading of `input` as RFC 3339, to millis.
    fn by_the_time_crate(input: &str) -> Option<u64> {
        let parsed = OffsetDateTime::parse(input, &Rfc3339).ok()?;
        u64::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
    }

    /// A canonical-looking text, in range of its fields or not.
    fn canonical_looking() -> impl Strategy<Value = String> {
        (
            1960u32..2500,
            0u32..14,
            0u32..33,
            0u32..25,
            0u32..61,
            0u32..61,
            0u32..1000,
        )
            .prop_map(|(year, month, day, hour, minute, second, millis)| {
                format!(
                    "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
                )
            })
    }

    proptest! {
        #[test]
        fn print_parse_roundtrip(millis in 0..=Timestamp::MAX_MILLIS) {
            let t = Timestamp::from_millis(millis).unwrap();
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn the_text_is_what_the_time_crate_prints(millis in 0..=Timestamp::MAX_MILLIS) {
            let t = Timestamp::from_millis(millis).unwrap();
            let printed = (OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis as i64))
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .unwrap();
            prop_assert_eq!(t.to_string(), printed);
        }

        #[test]
        fn canonical_texts_read_as_the_time_crate_reads_them(input in canonical_looking()) {
            let fast = Timestamp::parse_canonical(input.as_bytes()).map(Timestamp::as_millis);
            let full = by_the_time_crate(&input).filter(|&millis| millis <= Timestamp::MAX_MILLIS);
            // The fast path may leave a text to the full parser (a leap
            // second), never read one differently.
            if fast.is_some() {
                prop_assert_eq!(fast, full);
            }
            prop_assert_eq!(Timestamp::parse(&input).ok().map(Timestamp::as_millis), full);
        }
    }
}
