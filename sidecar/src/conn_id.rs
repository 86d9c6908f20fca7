//! Connection ids: unique on this node, and unguessable.
//!
//! A client id (`<node id>-<n>`, `chat_protocol::live::client_id`) is what an app binds an
//! anonymous connection by (`chat_bind`), addresses it by (`chat_event('c:…')`,
//! `chat_client_close`) and, in GatewayWorker-style apps, sometimes takes from the browser. With
//! `n` a counter, an attacker who saw their own id (`…-305`) could name the next visitor's
//! (`…-306`) to a careless bind endpoint and have that connection bound to their account
//! (issue 17). So `n` is a counter passed through a keyed permutation of the 64-bit numbers: a
//! four-round Feistel network whose round function is HMAC-SHA256 under 32 random bytes drawn at
//! start. A permutation keeps ids unique without a registry to check collisions against, and
//! without the key, seeing any number of ids tells nothing about the next. It costs four HMACs
//! per connection (about 2 µs), once, and the id stays a plain `u64`, as cheap to keep, hash and
//! compare as the counter was.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Identifies a connection on this node.
pub type ConnId = u64;

/// Hands out this node's connection ids.
pub struct ConnIds {
    next: AtomicU64,
    /// Keyed once at start; each round clones it, saving the key schedule.
    mac: Hmac<Sha256>,
}

impl ConnIds {
    /// A generator with a fresh random key.
    pub fn new() -> ConnIds {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is available");
        ConnIds::with_key(&key)
    }

    fn with_key(key: &[u8]) -> ConnIds {
        ConnIds { next: AtomicU64::new(0), mac: Hmac::new_from_slice(key).expect("HMAC takes any key length") }
    }

    /// The next id: a number no other connection of this node has had.
    pub fn next(&self) -> ConnId {
        self.permute(self.next.fetch_add(1, Relaxed))
    }

    fn permute(&self, n: u64) -> u64 {
        let (mut left, mut right) = ((n >> 32) as u32, n as u32);
        for round in 0u8..4 {
            let mut mac = self.mac.clone();
            mac.update(&[round]);
            mac.update(&right.to_be_bytes());
            let digest = mac.finalize().into_bytes();
            let f = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
            (left, right) = (right, left ^ f);
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

impl Default for ConnIds {
    fn default() -> Self {
        ConnIds::new()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_and_do_not_follow_the_counter() {
        let ids = ConnIds::new();
        let drawn: Vec<u64> = (0..100_000).map(|_| ids.next()).collect();
        assert_eq!(drawn.iter().collect::<HashSet<_>>().len(), drawn.len(), "no id twice");
        let small = drawn.iter().filter(|&&id| id < 1 << 40).count();
        assert!(small < 5, "ids spread over all 64 bits, not near the counter: {small} of 100,000 below 2^40");
        let steps = drawn.windows(2).filter(|w| w[1].wrapping_sub(w[0]) < 1000).count();
        assert!(steps < 5, "consecutive ids are not close: {steps}");
        let ones: u32 = drawn.iter().map(|id| id.count_ones()).sum();
        let mean = f64::from(ones) / drawn.len() as f64;
        assert!((31.5..32.5).contains(&mean), "about half the bits set: {mean}");
    }

    #[test]
    fn the_key_decides_the_sequence() {
        let (a, b, a2) = (ConnIds::with_key(b"one"), ConnIds::with_key(b"two"), ConnIds::with_key(b"one"));
        let seq = |g: &ConnIds| (0..8).map(|_| g.next()).collect::<Vec<_>>();
        let (sa, sb) = (seq(&a), seq(&b));
        assert_ne!(sa, sb);
        assert_eq!(sa, seq(&a2), "a permutation of the counter, deterministic under one key");
    }
}
