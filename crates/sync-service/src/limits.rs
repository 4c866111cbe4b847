//! Limits on what one request, connection or user may ask: sizes, nesting
//! depth, counts and rates. Every limit is configurable and each has its
//! error (`docs/protocol.md`, "Limits").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sync_core::UserId;

use crate::error::ApiError;

/// The configured limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body or WebSocket message, after decompression.
    pub request_bytes_max: usize,
    /// Deepest JSON nesting accepted.
    pub json_depth_max: usize,
    /// Most operations in one request.
    pub operations_per_request_max: usize,
    /// Largest document, serialised.
    pub document_bytes_max: usize,
    /// Most subscriptions on one WebSocket connection.
    pub subscriptions_per_connection_max: usize,
    /// Most WebSocket connections one user holds at once.
    pub connections_per_user_max: usize,
    /// Sustained operations per second per connection (HTTP: per user).
    pub operations_per_second: u32,
    /// Burst of operations allowed above the sustained rate.
    pub operations_burst: u32,
    /// A WebSocket connection that sends nothing for this long is closed.
    pub idle_timeout_secs: u64,
    /// Most changes returned by one page of the change feed or pull.
    pub changes_per_page_max: usize,
    /// Longest long-poll wait of the change feed.
    pub long_poll_secs_max: u64,
    /// Frames waiting in one WebSocket connection's send queue before its
    /// live stream is dropped with `resync`.
    pub send_queue_frames_max: usize,
    /// Batches of writes at the store at once; under load the others
    /// wait, the most urgent let in first (see `admission`).
    pub writes_in_flight_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes_max: 1024 * 1024,
            json_depth_max: 64,
            operations_per_request_max: 1_000,
            document_bytes_max: 256 * 1024,
            subscriptions_per_connection_max: 100,
            connections_per_user_max: 1_000,
            operations_per_second: 10_000,
            operations_burst: 20_000,
            idle_timeout_secs: 300,
            changes_per_page_max: 10_000,
            long_poll_secs_max: 60,
            send_queue_frames_max: 4_096,
            writes_in_flight_max: 128,
        }
    }
}

impl Limits {
    /// Fails when `body` nests arrays and objects deeper than the limit.
    /// Runs over the raw bytes before parsing, so a hostile body cannot
    /// exhaust the parser's stack.
    pub fn check_depth(&self, body: &[u8]) -> Result<(), ApiError> {
        match json_depth_exceeds(body, self.json_depth_max) {
            false => Ok(()),
            true => Err(ApiError::Invalid(format!(
                "JSON nesting deeper than {} levels",
                self.json_depth_max
            ))),
        }
    }

    /// Fails when a request carries more operations than allowed.
    pub fn check_operations(&self, count: usize) -> Result<(), ApiError> {
        if count > self.operations_per_request_max {
            return Err(ApiError::TooLarge {
                message: format!(
                    "{count} operations in one request; at most {} are allowed (send the rest in chunks)",
                    self.operations_per_request_max
                ),
                limit: self.operations_per_request_max as u64,
            });
        }
        Ok(())
    }
}

/// Whether the nesting of arrays and objects in `body` goes past `max`.
/// Brackets inside strings do not count.
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A token bucket: `rate` tokens a second up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate_per_sec: u32, burst: u32, now_ms: u64) -> TokenBucket {
        let burst = f64::from(burst.max(rate_per_sec).max(1));
        TokenBucket {
            rate_per_sec: f64::from(rate_per_sec.max(1)),
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// Takes `cost` tokens at `now_ms`, or says how long until they are there.
    pub fn take(&mut self, cost: u32, now_ms: u64) -> Result<(), Duration> {
        let elapsed_secs = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed_secs * self.rate_per_sec).min(self.burst);
        let cost = f64::from(cost);
        if cost <= self.tokens {
            self.tokens -= cost;
            return Ok(());
        }
        // A request larger than the burst can never pass: it waits as if
        // the bucket were full, and takes the whole burst.
        let missing = cost.min(self.burst) - self.tokens;
        if missing <= 0.0 {
            self.tokens = 0.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(missing / self.rate_per_sec))
    }
}

/// One token bucket per user, for every door.
#[derive(Debug)]
pub struct UserRateLimiter {
    buckets: Mutex<Buckets>,
}

/// The users' buckets and the rate they fill at.
#[derive(Debug)]
struct Buckets {
    rate_per_sec: u32,
    burst: u32,
    by_user: HashMap<UserId, TokenBucket>,
}

impl UserRateLimiter {
    /// Buckets of `rate_per_sec` with `burst`.
    pub fn new(rate_per_sec: u32, burst: u32) -> UserRateLimiter {
        UserRateLimiter {
            buckets: Mutex::new(Buckets {
                rate_per_sec,
                burst,
                by_user: HashMap::new(),
            }),
        }
    }

    /// Fills at `rate_per_sec` with `burst` from now on; every user starts
    /// again with a full bucket of the new size.
    pub fn set_rate(&self, rate_per_sec: u32, burst: u32) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if (buckets.rate_per_sec, buckets.burst) != (rate_per_sec, burst) {
            *buckets = Buckets {
                rate_per_sec,
                burst,
                by_user: HashMap::new(),
            };
        }
    }

    /// Charges `cost` operations to `user`; 429 with the wait when over.
    pub fn charge(&self, user: &UserId, cost: u32, now_ms: u64) -> Result<(), ApiError> {
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| ApiError::Internal("rate limiter poisoned".into()))?;
        let Buckets {
            rate_per_sec,
            burst,
            by_user,
        } = &mut *buckets;
        if by_user.len() > 100_000 {
            // Forget idle users rather than grow without bound; a forgotten
            // user starts again with a full bucket.
            by_user.retain(|_, bucket| now_ms.saturating_sub(bucket.last_ms) < 60_000);
        }
        let bucket = by_user
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::new(*rate_per_sec, *burst, now_ms));
        bucket
            .take(cost, now_ms)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(!json_depth_exceeds(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!json_depth_exceeds(br#"{"a": "[[[[[[\"[[["}"#, 1));
        let deep = "[".repeat(100_000);
        assert!(json_depth_exceeds(deep.as_bytes(), 64));
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let mut bucket = TokenBucket::new(10, 10, 0);
        assert!(bucket.take(10, 0).is_ok());
        let wait = bucket.take(5, 0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(bucket.take(5, 500).is_ok());
        assert!(bucket.take(1, 500).is_err());
        // Larger than the burst: waits for a full bucket, then passes.
        assert!(bucket.take(50, 500).is_err());
        assert!(bucket.take(50, 1_500).is_ok());
    }
}
