//! Reconnect delays: exponential backoff with full jitter, so clients that
//! lost the same server do not all come back in the same millisecond.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// The delays between reconnect attempts: attempt `n` waits a random time
/// between half of and the whole of `base * 2^n`, capped at `max`, until
/// `attempts_max` attempts have been made (`docs/protocol.md`, "Connection
/// states and reconnecting").
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts_max: Option<u32>,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// Delays from `base` doubling up to `max`; `attempts_max` of `None`
    /// retries forever.
    pub fn new(base: Duration, max: Duration, attempts_max: Option<u32>) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            attempts_max,
            attempt: 0,
            rng: StdRng::from_os_rng(),
        }
    }

    /// The same, with a seeded random source (for reproducible tests).
    pub fn seeded(mut self, seed: u64) -> Backoff {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// The delay before the next attempt, or `None` once the attempts are
    /// used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts_max.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        let exponent = self.attempt.min(20);
        self.attempt += 1;
        let ceiling = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max)
            .as_millis() as u64;
        let floor = ceiling / 2;
        Some(Duration::from_millis(
            self.rng.random_range(floor..=ceiling.max(floor)),
        ))
    }

    /// How many attempts have been made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts again from `base` (after a successful connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_up_to_the_cap_and_stops() {
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1), Some(6)).seeded(7);
        let delays: Vec<Duration> = std::iter::from_fn(|| backoff.next_delay()).collect();
        assert_eq!(delays.len(), 6);
        for (n, delay) in delays.iter().enumerate() {
            let ceiling = (100u64 << n).min(1_000);
            let ms = delay.as_millis() as u64;
            assert!(ms >= ceiling / 2 && ms <= ceiling, "attempt {n}: {ms} ms");
        }
        backoff.reset();
        assert!(backoff.next_delay().unwrap() <= Duration::from_millis(100));
    }
}
