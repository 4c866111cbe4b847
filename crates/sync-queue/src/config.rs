//! [`QueueConfig`]: the queue's limits and its retry schedule, and the pure
//! backoff arithmetic behind [`SledQueue`](crate::SledQueue)'s
//! `record_failure`.

use crate::error::Error;

/// Limits and retry schedule of a queue.
///
/// The delay before retry number `n` (after the `n`-th failure) is
/// `min(max_delay_ms, base_delay_ms * 2^(n-1))`, of which a random share of
/// up to `jitter` is taken off: the delay is drawn uniformly from
/// `[delay * (1 - jitter), delay]`. `jitter = 1.0` is "full jitter",
/// `0.0` a fixed schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Failed deliveries after which an entry is set aside as failed.
    pub max_attempts: u32,
    /// The delay before the first retry, in milliseconds.
    pub base_delay_ms: u64,
    /// The longest delay between two attempts, in milliseconds.
    pub max_delay_ms: u64,
    /// The share of each delay (0.0 to 1.0) that is randomised away, so
    /// that devices that failed together do not retry together.
    pub jitter: f64,
    /// Whether unsent operations on one document are merged (see the crate
    /// docs for the rules).
    pub coalesce: bool,
    /// The most entries (pending and failed) the queue holds; `enqueue`
    /// on a full queue fails and hands the operation back.
    pub max_entries: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_attempts: 10,
            base_delay_ms: 1_000,
            max_delay_ms: 5 * 60 * 1_000,
            jitter: 0.5,
            coalesce: true,
            max_entries: 10_000,
        }
    }
}

impl QueueConfig {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: &str| Err(Error::InvalidConfig(message.to_owned()));
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1");
        }
        if self.base_delay_ms > self.max_delay_ms {
            return invalid("base_delay_ms must not exceed max_delay_ms");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return invalid("jitter must be between 0.0 and 1.0");
        }
        if self.max_entries == 0 {
            return invalid("max_entries must be at least 1");
        }
        Ok(())
    }

    /// The delay before the retry that follows failure number `attempts`
    /// (counting from 1) without jitter: exponential, capped.
    pub fn backoff_cap_ms(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(63);
        self.base_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay_ms)
    }

    /// The shortest and longest delay (inclusive) the queue may choose after
    /// failure number `attempts`.
    pub fn backoff_bounds_ms(&self, attempts: u32) -> (u64, u64) {
        let cap = self.backoff_cap_ms(attempts);
        // The float product is at most `cap`, so the subtraction cannot
        // underflow; rounding down keeps the lower bound inside the range.
        let spread = ((cap as f64) * self.jitter.clamp(0.0, 1.0)) as u64;
        (cap - spread.min(cap), cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_doubles_and_is_capped() {
        let config = QueueConfig {
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            jitter: 0.0,
            ..QueueConfig::default()
        };
        let caps: Vec<u64> = (1..=6).map(|n| config.backoff_cap_ms(n)).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(config.backoff_cap_ms(u32::MAX), 1_000);
        assert_eq!(config.backoff_bounds_ms(3), (400, 400));
    }

    #[test]
    fn jitter_widens_the_range_downwards() {
        let config = QueueConfig {
            base_delay_ms: 1_000,
            jitter: 0.5,
            ..QueueConfig::default()
        };
        assert_eq!(config.backoff_bounds_ms(1), (500, 1_000));
        let full = QueueConfig {
            jitter: 1.0,
            ..config
        };
        assert_eq!(full.backoff_bounds_ms(2), (0, 2_000));
    }

    #[test]
    fn nonsense_is_refused() {
        for config in [
            QueueConfig {
                max_attempts: 0,
                ..QueueConfig::default()
            },
            QueueConfig {
                base_delay_ms: 10,
                max_delay_ms: 5,
                ..QueueConfig::default()
            },
            QueueConfig {
                jitter: 1.5,
                ..QueueConfig::default()
            },
            QueueConfig {
                jitter: f64::NAN,
                ..QueueConfig::default()
            },
            QueueConfig {
                max_entries: 0,
                ..QueueConfig::default()
            },
        ] {
            assert!(config.validate().is_err(), "{config:?}");
        }
        assert!(QueueConfig::default().validate().is_ok());
    }
}
