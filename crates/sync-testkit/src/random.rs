//! Seeded randomness for tests that replay by seed.

// The seed goes to stderr, where a failing test's output shows it.
#![allow(clippy::print_stderr)]

use std::time::{SystemTime, UNIX_EPOCH};

/// A small xorshift generator: the same seed gives the same sequence.
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    /// A generator started from `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Random {
        Random(seed | 1)
    }

    /// The next value below `below` (which must not be zero).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// The seed in the environment variable `replay`, or one from the clock;
/// printed either way with the variable that replays it.
pub fn seed(replay: &str) -> u64 {
    let seed = std::env::var(replay)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("seed {seed} ({replay}={seed} replays it)");
    seed
}
