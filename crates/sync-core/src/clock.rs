//! Time: the injected wall [`Clock`] and the hybrid logical clock ([`Hlc`]).
//!
//! An HLC timestamp is a wall-clock millisecond, a logical counter and a node
//! id. It follows physical time where clocks agree, never goes backwards on
//! one node, orders every event after the events it has seen, and gives a
//! total order (the node id breaks ties), which is what last-write-wins needs
//! to be independent of arrival order.
//!
//! A device with a clock far in the future would otherwise win every
//! last-write-wins race; [`HlcClock::clamp`] brings any timestamp more than
//! `max_clock_skew` ahead of the server back to the server's time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{CoreError, excerpt};
use crate::timestamp::{TEXT_LEN, Timestamp};

/// A source of wall-clock time. Sync logic takes one instead of reading the
/// system clock, so tests and the simulation can drive time by hand.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;

    /// The current time as a [`Timestamp`] (saturating at year 9999).
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now_millis().min(Timestamp::MAX_MILLIS)).unwrap_or_default()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_millis(&self) -> u64 {
        (**self).now_millis()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `millis` since the epoch.
    pub fn new(millis: u64) -> ManualClock {
        ManualClock {
            millis: AtomicU64::new(millis),
        }
    }

    /// Moves the clock to `millis` (backwards too: real clocks do).
    pub fn set(&self, millis: u64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// The node part of an HLC: breaks ties between equal times of two nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    /// A node id derived from a name (a device id, a server name) by 64-bit
    /// FNV-1a: stable across runs, platforms and releases.
    pub fn from_name(name: &str) -> NodeId {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let hash = name.bytes().fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
        NodeId(hash)
    }
}

/// A hybrid logical clock timestamp. Ordered by physical time, then the
/// logical counter, then the node id: a total order.
///
/// Printed as `2023-12-01T10:30:00.000Z-0000002a-00000000000000ff` (ISO time,
/// counter and node in fixed-width hex), so the text sorts as the value does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    physical_ms: u64,
    logical: u32,
    node: NodeId,
}

impl Hlc {
    /// An HLC timestamp from its parts; `None` if `physical_ms` is past year 9999.
    pub fn new(physical_ms: u64, logical: u32, node: NodeId) -> Option<Hlc> {
        (physical_ms <= Timestamp::MAX_MILLIS).then_some(Hlc {
            physical_ms,
            logical,
            node,
        })
    }

    /// The HLC of a plain wall-clock time written by `node`.
    pub fn from_timestamp(time: Timestamp, node: NodeId) -> Hlc {
        Hlc {
            physical_ms: time.as_millis(),
            logical: 0,
            node,
        }
    }

    /// Wall-clock milliseconds since the epoch.
    pub fn physical_ms(self) -> u64 {
        self.physical_ms
    }

    /// The logical counter within one millisecond.
    pub fn logical(self) -> u32 {
        self.logical
    }

    /// The node that made this timestamp.
    pub fn node(self) -> NodeId {
        self.node
    }

    /// The wall-clock part as a [`Timestamp`].
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_millis(self.physical_ms).unwrap_or_default()
    }

    /// Parses the printed form of an HLC.
    pub fn parse(input: &str) -> Result<Hlc, CoreError> {
        match Hlc::parse_canonical(input.as_bytes()) {
            Some(canonical) => Ok(canonical),
            None => Hlc::parse_parts(input),
        }
    }

    /// Any text of the HLC's form, split into its parts.
    fn parse_parts(input: &str) -> Result<Hlc, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidTimestamp {
            value: excerpt(input),
            reason: reason.to_owned(),
        };
        let mut parts = input.rsplitn(3, '-');
        let (Some(node), Some(logical), Some(time)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected <iso time>-<counter>-<node>"));
        };
        if logical.len() != 8 || node.len() != 16 {
            return Err(invalid("counter and node must be 8 and 16 hex digits"));
        }
        let hex = |digits: &str| {
            digits
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(logical) || !hex(node) {
            return Err(invalid("counter and node must be lowercase hex"));
        }
        let logical =
            u32::from_str_radix(logical, 16).map_err(|_| invalid("counter is not hex"))?;
        let node = u64::from_str_radix(node, 16).map_err(|_| invalid("node is not hex"))?;
        let time = Timestamp::parse(time)?;
        Ok(Hlc::from_timestamp(time, NodeId(node)).with_logical(logical))
    }

    /// Exactly the canonical text (as `Display` writes it), read without
    /// splitting; `None` for anything else, which `parse` then reads or
    /// refuses.
    fn parse_canonical(input: &[u8]) -> Option<Hlc> {
        if input.len() != HLC_TEXT_LEN || input[TEXT_LEN] != b'-' || input[TEXT_LEN + 9] != b'-' {
            return None;
        }
        let hex = |digits: &[u8]| {
            digits.iter().try_fold(0u64, |value, &digit| {
                let nibble = match digit {
                    b'0'..=b'9' => digit - b'0',
                    b'a'..=b'f' => digit - b'a' + 10,
                    _ => return None,
                };
                Some(value << 4 | u64::from(nibble))
            })
        };
        let logical = u32::try_from(hex(&input[TEXT_LEN + 1..TEXT_LEN + 9])?).ok()?;
        let node = hex(&input[TEXT_LEN + 10..])?;
        let time = Timestamp::parse_canonical(&input[..TEXT_LEN])?;
        Some(Hlc::from_timestamp(time, NodeId(node)).with_logical(logical))
    }

    /// Parses either an HLC or a plain ISO-8601 time (which becomes an HLC
    /// of `node` with counter 0): the `timestamp` field of an operation may
    /// carry either.
    pub fn parse_lenient(input: &str, node: NodeId) -> Result<Hlc, CoreError> {
        Hlc::parse(input).or_else(|hlc_error| {
            Timestamp::parse(input)
                .map(|time| Hlc::from_timestamp(time, node))
                .map_err(|_| hlc_error)
        })
    }

    fn with_logical(mut self, logical: u32) -> Hlc {
        self.logical = logical;
        self
    }

    fn with_node(mut self, node: NodeId) -> Hlc {
        self.node = node;
        self
    }

    /// The next timestamp after `(physical_ms, logical)`: the counter goes
    /// up, and on overflow the millisecond does. At the last millisecond
    /// that prints (year 9999) with a full counter the clock stays where it
    /// is: a timestamp past it would print as another time.
    fn bumped(physical_ms: u64, logical: u32, node: NodeId) -> Hlc {
        match logical.checked_add(1) {
            Some(logical) => Hlc {
                physical_ms,
                logical,
                node,
            },
            None if physical_ms < Timestamp::MAX_MILLIS => Hlc {
                physical_ms: physical_ms + 1,
                logical: 0,
                node,
            },
            None => Hlc {
                physical_ms: Timestamp::MAX_MILLIS,
                logical,
                node,
            },
        }
    }
}

/// Bytes of an HLC's canonical text: its time, then `-`, 8 hex digits,
/// `-` and 16 hex digits.
const HLC_TEXT_LEN: usize = TEXT_LEN + 26;

impl Hlc {
    /// Hands `use_text` the clock's text: `<time>-<counter, 8 hex
    /// digits>-<node, 16 hex digits>`, written without a formatter, as
    /// every stored change holds one.
    pub fn with_text<R>(&self, use_text: impl FnOnce(&str) -> R) -> R {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; HLC_TEXT_LEN];
        out[..TEXT_LEN].copy_from_slice(&self.timestamp().text());
        let mut put_hex = |at: usize, digits: usize, value: u64| {
            for i in 0..digits {
                out[at + i] = HEX[(value >> (4 * (digits - 1 - i)) & 0xf) as usize];
            }
        };
        put_hex(TEXT_LEN + 1, 8, u64::from(self.logical));
        put_hex(TEXT_LEN + 10, 16, self.node.0);
        use_text(crate::ascii(&out))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

impl std::str::FromStr for Hlc {
    type Err = CoreError;
    fn from_str(input: &str) -> Result<Self, CoreError> {
        Hlc::parse(input)
    }
}

crate::serde_as_string!(Hlc, with_text);

/// One node's hybrid logical clock: the send and receive rules of Kulkarni
/// et al., with the skew clamp. Pure state; the caller passes wall time in
/// and shares the clock behind a lock where several tasks use it.
#[derive(Debug, Clone)]
pub struct HlcClock {
    node: NodeId,
    last: Hlc,
    max_skew_ms: u64,
}

impl HlcClock {
    /// The default `max_clock_skew`: 60 seconds.
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

    /// A clock for `node` that clamps remote times more than `max_skew` ahead.
    pub fn new(node: NodeId, max_skew: Duration) -> HlcClock {
        HlcClock {
            node,
            last: Hlc::default().with_node(node),
            max_skew_ms: max_skew.as_millis() as u64,
        }
    }

    /// The node this clock stamps with.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The latest timestamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// The greatest distance ahead of local time a remote time may be.
    pub fn max_skew(&self) -> Duration {
        Duration::from_millis(self.max_skew_ms)
    }

    /// A timestamp for a local event or a message about to be sent: later
    /// than every timestamp this clock has issued or observed.
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        let wall_ms = wall_ms.min(Timestamp::MAX_MILLIS);
        self.last = if wall_ms > self.last.physical_ms {
            Hlc {
                physical_ms: wall_ms,
                logical: 0,
                node: self.node,
            }
        } else {
            Hlc::bumped(self.last.physical_ms, self.last.logical, self.node)
        };
        self.last
    }

    /// Whether `remote` is more than the allowed skew ahead of `wall_ms`.
    pub fn is_beyond_skew(&self, remote: Hlc, wall_ms: u64) -> bool {
        remote.physical_ms > wall_ms.saturating_add(self.max_skew_ms)
    }

    /// `remote` unchanged if it is within the allowed skew of `wall_ms`;
    /// otherwise the local wall time, keeping the remote node id. A device
    /// whose clock runs ahead therefore cannot win last-write-wins races.
    pub fn clamp(&self, remote: Hlc, wall_ms: u64) -> Hlc {
        if self.is_beyond_skew(remote, wall_ms) {
            Hlc {
                physical_ms: wall_ms.min(Timestamp::MAX_MILLIS),
                logical: 0,
                node: remote.node,
            }
        } else {
            remote
        }
    }

    /// The receive rule: merges a remote timestamp (clamped first, so a
    /// runaway clock cannot drag this one along) and returns a local
    /// timestamp later than both it and everything seen before.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Hlc {
        let remote = self.clamp(remote, wall_ms);
        let wall_ms = wall_ms.min(Timestamp::MAX_MILLIS);
        let last = self.last;
        let physical_ms = wall_ms.max(last.physical_ms).max(remote.physical_ms);
        self.last = if physical_ms == last.physical_ms && physical_ms == remote.physical_ms {
            Hlc::bumped(physical_ms, last.logical.max(remote.logical), self.node)
        } else if physical_ms == last.physical_ms {
            Hlc::bumped(physical_ms, last.logical, self.node)
        } else if physical_ms == remote.physical_ms {
            Hlc::bumped(physical_ms, remote.logical, self.node)
        } else {
            Hlc {
                physical_ms,
                logical: 0,
                node: self.node,
            }
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T0: u64 = 1_701_426_600_000;

    fn clock() -> HlcClock {
        HlcClock::new(NodeId(1), HlcClock::DEFAULT_MAX_SKEW)
    }

    #[test]
    fn prints_and_parses() {
        let hlc = Hlc::new(T0, 42, NodeId(255)).unwrap();
        let text = hlc.to_string();
        assert_eq!(text, "2023-12-01T10:30:00.000Z-0000002a-00000000000000ff");
        assert_eq!(Hlc::parse(&text).unwrap(), hlc);
        assert_eq!(serde_json::to_string(&hlc).unwrap(), format!("\"{text}\""));
    }

    #[test]
    fn rejects_malformed_text() {
        for input in [
            "",
            "2023-12-01T10:30:00.000Z",
            "2023-12-01T10:30:00.000Z-2a-ff",
            "2023-12-01T10:30:00.000Z-0000002A-00000000000000ff",
            "garbage-0000002a-00000000000000ff",
            "2023-12-01T10:30:00.000Z-0000002a-00000000000000fg",
        ] {
            assert!(Hlc::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn lenient_parse_accepts_plain_iso_times() {
        let hlc = Hlc::parse_lenient("2023-12-01T10:30:00.000Z", NodeId(7)).unwrap();
        assert_eq!(hlc, Hlc::new(T0, 0, NodeId(7)).unwrap());
        assert!(Hlc::parse_lenient("soon", NodeId(7)).is_err());
    }

    #[test]
    fn now_is_monotonic_when_the_wall_clock_goes_back() {
        let mut clock = clock();
        let a = clock.now(T0);
        let b = clock.now(T0 - 5_000);
        let c = clock.now(T0);
        assert!(a < b && b < c);
        assert_eq!(b.physical_ms(), T0);
    }

    #[test]
    fn observe_moves_past_the_remote_time() {
        let mut clock = clock();
        let remote = Hlc::new(T0 + 10_000, 3, NodeId(9)).unwrap();
        let local = clock.observe(remote, T0);
        assert!(local > remote);
        assert_eq!(local.physical_ms(), T0 + 10_000);
        assert_eq!(local.logical(), 4);
        assert!(clock.now(T0) > local);
    }

    #[test]
    fn remote_times_beyond_the_skew_are_clamped() {
        let mut clock = clock();
        let runaway = Hlc::new(T0 + 3_600_000, 0, NodeId(9)).unwrap();
        assert!(clock.is_beyond_skew(runaway, T0));
        let clamped = clock.clamp(runaway, T0);
        assert_eq!(clamped.physical_ms(), T0);
        assert_eq!(clamped.node(), NodeId(9));
        let local = clock.observe(runaway, T0);
        assert!(local.physical_ms() <= T0 + 60_000, "dragged to {local}");

        let near = Hlc::new(T0 + 59_000, 0, NodeId(9)).unwrap();
        assert_eq!(clock.clamp(near, T0), near);
    }

    #[test]
    fn node_id_breaks_ties() {
        let a = Hlc::new(T0, 0, NodeId(1)).unwrap();
        let b = Hlc::new(T0, 0, NodeId(2)).unwrap();
        assert!(a < b);
        assert_ne!(NodeId::from_name("device-A"), NodeId::from_name("device-B"));
        assert_eq!(NodeId::from_name(""), NodeId(0xcbf2_9ce4_8422_2325));
    }

    #[test]
    fn counter_overflow_moves_to_the_next_millisecond() {
        let mut clock = clock();
        let top = Hlc::new(T0, u32::MAX, NodeId(9)).unwrap();
        let next = clock.observe(top, T0);
        assert_eq!((next.physical_ms(), next.logical()), (T0 + 1, 0));
    }

    #[test]
    fn the_clock_stops_at_the_last_printable_timestamp() {
        // Found by the `time_parse` fuzz target: observing the greatest HLC
        // made one past year 9999, which printed as 1970.
        let mut clock = clock();
        let last = Hlc::new(Timestamp::MAX_MILLIS, u32::MAX, NodeId(9)).unwrap();
        for next in [
            clock.observe(last, Timestamp::MAX_MILLIS),
            clock.now(u64::MAX),
        ] {
            assert_eq!(next.physical_ms(), Timestamp::MAX_MILLIS);
            assert_eq!(Hlc::parse(&next.to_string()).unwrap(), next);
        }
    }

    fn arb_hlc() -> impl Strategy<Value = Hlc> {
        (0..=Timestamp::MAX_MILLIS, any::<u32>(), any::<u64>())
            .prop_map(|(p, l, n)| Hlc::new(p, l, NodeId(n)).unwrap())
    }

    /// An HLC-looking text: its time canonical or not, its counter and
    /// node of any case and length.
    fn hlc_looking() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                arb_hlc().prop_map(|hlc| hlc.timestamp().to_string()),
                Just("2023-12-01T10:30:00Z".to_owned()),
                Just("2023-02-30T10:30:00.000Z".to_owned()),
            ],
            prop_oneof!["[0-9a-f]{8}", "[0-9a-fA-G]{7,9}"],
            prop_oneof!["[0-9a-f]{16}", "[0-9a-fA-G]{15,17}"],
        )
            .prop_map(|(time, logical, node)| format!("{time}-{logical}-{node}"))
    }

    proptest! {
        #[test]
        fn the_canonical_path_reads_as_the_split_one(input in hlc_looking()) {
            match Hlc::parse_canonical(input.as_bytes()) {
                Some(fast) => prop_assert_eq!(Some(fast), Hlc::parse_parts(&input).ok()),
                // What the canonical path leaves, the split one reads or
                // refuses; either way `parse` answers as it does.
                None => prop_assert_eq!(Hlc::parse(&input).ok(), Hlc::parse_parts(&input).ok()),
            }
        }

        #[test]
        fn text_roundtrips_and_sorts_like_the_value(a in arb_hlc(), b in arb_hlc()) {
            prop_assert_eq!(Hlc::parse_canonical(a.to_string().as_bytes()), Some(a));
            prop_assert_eq!(Hlc::parse(&a.to_string()).unwrap(), a);
            prop_assert_eq!(a.to_string().cmp(&b.to_string()), a.cmp(&b));
        }

        #[test]
        fn issued_timestamps_strictly_increase(
            events in proptest::collection::vec((any::<bool>(), T0 - 100_000..T0 + 100_000, arb_hlc()), 1..50)
        ) {
            let mut clock = clock();
            let mut previous = clock.last();
            for (is_receive, wall, remote) in events {
                let next = if is_receive { clock.observe(remote, wall) } else { clock.now(wall) };
                prop_assert!(next > previous);
                if is_receive {
                    prop_assert!(next > clock.clamp(remote, wall));
                }
                previous = next;
            }
        }
    }
}
