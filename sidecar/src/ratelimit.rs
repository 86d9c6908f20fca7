//! Token buckets for client frames: one per connection, and one per user for `POST /send`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Allows `rate` frames per second on average and `burst` above that at once.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(rate.max(1) + burst);
        TokenBucket { rate: f64::from(rate.max(1)), capacity, tokens: capacity, last: now }
    }

    /// Whether the bucket would be back at capacity by `now` (its owner has been idle).
    pub fn is_full(&self, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate >= self.capacity
    }

    /// Takes one token; `false` when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A bucket per user, for frames that arrive without a connection (`POST /send`). Each node
/// limits on its own, so a user spread over n nodes gets at most n times the rate.
pub struct PerUser {
    rate: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

/// Above this many users the map drops buckets that have refilled (their users are idle).
const PRUNE_ABOVE: usize = 10_000;

impl PerUser {
    pub fn new(rate: u32, burst: u32) -> Self {
        PerUser { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn take(&self, uid: &str) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(uid) {
            buckets.retain(|_, b| !b.is_full(now));
        }
        buckets.entry(uid.to_owned()).or_insert_with(|| TokenBucket::new(self.rate, self.burst, now)).take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..15).filter(|_| b.take(t0)).count(), 15);
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
        // Idle time never banks more than the capacity.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..100).filter(|_| b.take(later)).count(), 15);
    }

    #[test]
    fn per_user_buckets_are_separate() {
        let users = PerUser::new(1, 1);
        assert!(users.take("a") && users.take("a"));
        assert!(!users.take("a"));
        assert!(users.take("b"), "another user has its own bucket");
    }
}
