//! `time_parse`: the client times the server accepts (an operation's
//! `timestamp`, `lastSyncTimestamp`: ISO-8601 / RFC 3339 as
//! [`Timestamp::parse`] reads it) and the HLC text of changes
//! ([`Hlc::parse`], [`Hlc::parse_lenient`]), and the clock that observes
//! them ([`HlcClock`]).

use sync_core::{Hlc, HlcClock, NodeId, Timestamp};

/// Reads each NUL-separated part of `data` (two at most) as a timestamp
/// and as an HLC. What parses prints in the canonical form and parses back
/// to the same value; a UTC time keeps its date and time of day to the
/// second; printed text sorts as the values do; and a clock observing a
/// parsed HLC moves forward, past it, and stays printable.
pub fn time_parse(data: &[u8]) {
    let parts = crate::split::split(data, 2);
    let texts: Vec<String> = parts
        .iter()
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    let mut times = Vec::new();
    let mut hlcs = Vec::new();
    for text in &texts {
        if let Ok(time) = Timestamp::parse(text) {
            check_timestamp(text, time);
            times.push(time);
        }
        if let Ok(hlc) = Hlc::parse(text) {
            check_hlc(hlc);
            hlcs.push(hlc);
        }
        let node = NodeId::from_name(text);
        match Hlc::parse_lenient(text, node) {
            Ok(hlc) => {
                check_hlc(hlc);
                let plain = Timestamp::parse(text).ok();
                let full = Hlc::parse(text).ok();
                assert!(
                    full == Some(hlc) || plain.map(|t| Hlc::from_timestamp(t, node)) == Some(hlc),
                    "parse_lenient({text:?}) is neither parse"
                );
            }
            Err(_) => assert!(Hlc::parse(text).is_err() && Timestamp::parse(text).is_err()),
        }
    }
    if let [a, b] = times[..] {
        assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
    }
    if let [a, b] = hlcs[..] {
        assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
    }
    // The receive rule, with wall times from the parsed times.
    let walls: Vec<u64> = times.iter().map(|t| t.as_millis()).chain([0]).collect();
    let mut clock = HlcClock::new(NodeId(7), HlcClock::DEFAULT_MAX_SKEW);
    for (index, remote) in hlcs.iter().enumerate() {
        let wall = walls[index % walls.len()];
        let before = clock.last();
        let clamped = clock.clamp(*remote, wall);
        let next = clock.observe(*remote, wall);
        // At the last printable timestamp the clock can only stay.
        let stays =
            |hlc: Hlc| hlc.physical_ms() == Timestamp::MAX_MILLIS && hlc.logical() == u32::MAX;
        assert!(
            next > before || (stays(next) && next >= before),
            "observe went back from {before} to {next}"
        );
        assert!(
            next > clamped || stays(next),
            "observe({remote}) at {wall} gave {next}"
        );
        check_hlc(next);
        let now = clock.now(wall);
        assert!(
            now > next || (stays(now) && now >= next),
            "now went back from {next} to {now}"
        );
        check_hlc(now);
    }
}

fn check_timestamp(text: &str, time: Timestamp) {
    let printed = time.to_string();
    assert_eq!(
        Timestamp::parse(&printed),
        Ok(time),
        "{text:?} printed as {printed}, which reads otherwise"
    );
    assert!(
        printed.len() == 24 && printed.ends_with('Z'),
        "{text:?} printed as {printed}"
    );
    let json = serde_json::to_string(&time).unwrap_or_default();
    assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(time));
    // A UTC time (not a leap second) keeps its date and time to the second.
    let utc = text.ends_with(['Z', 'z']) || text.ends_with("+00:00");
    let leap = text.get(17..19) == Some("60");
    if utc && !leap && text.len() >= 20 {
        // Date and time of day; the separator between them may differ.
        let same = |range: std::ops::Range<usize>| text.get(range.clone()) == printed.get(range);
        assert!(same(0..10) && same(11..19), "{text:?} read as {printed}");
    }
}

fn check_hlc(hlc: Hlc) {
    assert!(
        hlc.physical_ms() <= Timestamp::MAX_MILLIS,
        "{hlc:?} is past year 9999"
    );
    let printed = hlc.to_string();
    assert_eq!(
        Hlc::parse(&printed),
        Ok(hlc),
        "{printed} does not read back"
    );
    let json = serde_json::to_string(&hlc).unwrap_or_default();
    assert_eq!(serde_json::from_str::<Hlc>(&json).ok(), Some(hlc));
    assert_eq!(hlc.timestamp().as_millis(), hlc.physical_ms());
}
