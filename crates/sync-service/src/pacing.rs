//! Pacing what the server sends a device to the bandwidth it declared
//! (`bandwidthLimit` in its capabilities, bytes per second).
//!
//! A token bucket of bytes, with no I/O and no clock of its own: the
//! connection's writer asks [`Pacer::wait_ms`] before each frame, passing
//! the time, and sleeps as long as it is told. The bucket holds a quarter
//! of a second of traffic, so a device that was idle gets a small burst
//! at once; a frame may go whenever the bucket is not in debt, and takes
//! its size out of it (into debt if it is larger than what is left). So
//! over any span of `t` seconds the writer sends at most `burst + rate * t`
//! bytes plus one frame, and it keeps the link busy at the declared rate
//! otherwise: catch-up pages, live changes and answers all count, and no
//! frame is ever cut or dropped by the pacing itself (a live stream that
//! falls behind its send queue gets `resync`, as for any slow reader).

/// The lowest rate paced at, in bytes per second: a smaller declared
/// limit is taken as this one, so that a frame never waits for minutes.
pub(crate) const RATE_MIN_BYTES_PER_SEC: u64 = 1_024;

/// A token bucket of bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    rate_bytes_per_sec: u64,
    burst_bytes: f64,
    /// Bytes that may go now; negative while in debt.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at_ms: u64,
}

impl Pacer {
    /// A full bucket at `now_ms` for `rate_bytes_per_sec`.
    pub(crate) fn new(rate_bytes_per_sec: u64, now_ms: u64) -> Pacer {
        let rate = rate_bytes_per_sec.max(RATE_MIN_BYTES_PER_SEC);
        let burst = rate as f64 / 4.0;
        Pacer {
            rate_bytes_per_sec: rate,
            burst_bytes: burst,
            tokens: burst,
            at_ms: now_ms,
        }
    }

    /// The rate it paces at.
    pub(crate) fn rate(&self) -> u64 {
        self.rate_bytes_per_sec
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed_ms = now_ms.saturating_sub(self.at_ms);
        self.at_ms = self.at_ms.max(now_ms);
        let earned = self.rate_bytes_per_sec as f64 * elapsed_ms as f64 / 1000.0;
        self.tokens = (self.tokens + earned).min(self.burst_bytes);
    }

    /// How long to wait at `now_ms` before a frame of `bytes` may go: 0
    /// means send it now (its size is then taken from the bucket);
    /// otherwise wait that many milliseconds and ask again.
    pub(crate) fn wait_ms(&mut self, bytes: usize, now_ms: u64) -> u64 {
        self.refill(now_ms);
        if self.tokens >= 0.0 {
            self.tokens -= bytes as f64;
            return 0;
        }
        let missing = -self.tokens;
        let wait = (missing * 1000.0 / self.rate_bytes_per_sec as f64).ceil() as u64;
        wait.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `frames` frames of `size` bytes through a pacer of `rate`,
    /// waiting as told on a simulated clock; returns when each was sent.
    fn run(rate: u64, size: usize, frames: usize) -> Vec<u64> {
        let mut now = 1_000_000;
        let mut pacer = Pacer::new(rate, now);
        let mut sent_at = Vec::new();
        for _ in 0..frames {
            loop {
                match pacer.wait_ms(size, now) {
                    0 => break,
                    wait => now += wait,
                }
            }
            sent_at.push(now - 1_000_000);
        }
        sent_at
    }

    #[test]
    fn never_faster_than_the_rate_after_the_first_burst() {
        for (rate, size) in [
            (10_000, 1_000),
            (50_000, 300),
            (2_048, 4_000),
            (1_000_000, 65_536),
        ] {
            let sent_at = run(rate, size, 200);
            let burst = rate as f64 / 4.0;
            for (n, at_ms) in sent_at.iter().enumerate() {
                // Frames 0..=n went by `at_ms`: at most the burst, what the
                // rate earned since, and the one frame that may go into debt.
                let bytes = ((n + 1) * size) as f64;
                let allowed = burst + rate as f64 * *at_ms as f64 / 1000.0 + size as f64;
                assert!(
                    bytes <= allowed,
                    "rate {rate}, frame {n}: {bytes} > {allowed}"
                );
            }
        }
    }

    #[test]
    fn keeps_up_with_the_rate() {
        // 200 frames of 1,000 bytes at 10,000 bytes/s: about 20 s, less the
        // first burst, never much more.
        let sent_at = run(10_000, 1_000, 200);
        let last = *sent_at.last().unwrap();
        assert!((19_000..=20_100).contains(&last), "{last} ms");
    }

    #[test]
    fn an_idle_pacer_allows_a_burst_and_no_more() {
        let mut pacer = Pacer::new(4_000, 0);
        // A quarter second of traffic at once, then a wait.
        assert_eq!(pacer.wait_ms(600, 0), 0);
        assert_eq!(pacer.wait_ms(600, 0), 0);
        let wait = pacer.wait_ms(600, 0);
        assert_eq!(wait, 50, "200 bytes of debt at 4,000 bytes/s");
        assert_eq!(pacer.wait_ms(600, wait), 0);
        // Long idle: the bucket refills to its burst only.
        assert_eq!(pacer.wait_ms(1_001, 60_000), 0);
        assert!(pacer.wait_ms(1, 60_000) > 0);
    }

    #[test]
    fn a_tiny_limit_is_taken_as_the_floor() {
        let pacer = Pacer::new(1, 0);
        assert_eq!(pacer.rate(), RATE_MIN_BYTES_PER_SEC);
    }
}
