//! Background Redis writes (acknowledgements, presence refreshes) at bounded concurrency.
//!
//! A node writes thousands of small script calls at once when a timer fires (a second's
//! acknowledgements, every connection's presence refresh). Sent all together on the
//! multiplexed connection they reach Redis as one long pipeline, which Redis runs before it
//! reads anyone else: PHP's `chat_push()` calls queued behind it, and one-to-one p99 latency at
//! 10,000 msg/s went from 0.4 ms to 37 ms once a second. With a few calls in flight at a time
//! the same work interleaves with other clients' commands instead.

use futures_util::StreamExt;
use std::future::Future;

/// Calls in flight at once: enough to hide the round trip, few enough that Redis serves other
/// clients between them.
pub const IN_FLIGHT: usize = 16;

/// Runs every call with at most [`IN_FLIGHT`] outstanding; returns how many failed.
pub async fn run_all<T, F>(calls: impl IntoIterator<Item = F>) -> usize
where
    F: Future<Output = redis::RedisResult<T>>,
{
    let mut results = futures_util::stream::iter(calls).buffer_unordered(IN_FLIGHT);
    let mut failures = 0;
    while let Some(r) = results.next().await {
        failures += usize::from(r.is_err());
    }
    failures
}
