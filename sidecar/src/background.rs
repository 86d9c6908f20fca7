//! Background work for every connection (heartbeats, presence refreshes, acknowledgements):
//! spread over its interval, and written to Redis at bounded concurrency.
//!
//! A node writes thousands of small script calls at once when a timer fires (a second's
//! acknowledgements, every connection's presence refresh). Sent all together on the
//! multiplexed connection they reach Redis as one long pipeline, which Redis runs before it
//! reads anyone else: PHP's `chat_push()` calls queued behind it, and one-to-one p99 latency at
//! 10,000 msg/s went from 0.4 ms to 37 ms once a second. With a few calls in flight at a time
//! the same work interleaves with other clients' commands instead.
//!
//! Bounded concurrency alone still left blocks of work: a sixteenth of 10,000 connections pinged,
//! refreshed or acknowledged at once kept a core and Redis busy for milliseconds, and the
//! messages arriving meanwhile waited behind it. Together the three held one-to-one p99 at
//! 17–24 ms against 4.6 ms with all three stopped (docs/BENCHMARKS.md). So each interval is cut
//! into slots about [`TICK`] apart ([`slots`]), and each tick serves one slot: the same work, in
//! pieces small enough to pass unnoticed.

use futures_util::StreamExt;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// About how far apart the ticks of spread-out work are.
pub const TICK: Duration = Duration::from_millis(50);

/// How many slots an interval of `round` is cut into: one per [`TICK`], at least one.
pub fn slots(round: Duration) -> u64 {
    (round.as_millis() / TICK.as_millis()).clamp(1, 100_000) as u64
}

/// Calls `each(slot)` for slots `0..slots` in turn, one every `round / slots`, round after round,
/// until `shutdown`. A tick whose work overran delays the next instead of bunching them up.
pub async fn spread<F, Fut>(round: Duration, slots: u64, shutdown: CancellationToken, mut each: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let every = (round / slots.max(1) as u32).max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for slot in (0..slots.max(1)).cycle() {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => each(slot).await,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_cut_into_ticks_about_50_ms_apart() {
        assert_eq!(slots(Duration::from_secs(25)), 500, "the default heartbeat");
        assert_eq!(slots(Duration::from_secs(10)), 200, "the default presence refresh");
        assert_eq!(slots(Duration::from_millis(20)), 1, "never zero");
    }

    #[tokio::test(start_paused = true)]
    async fn spread_serves_every_slot_once_per_round_in_turn() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (log, end) = (seen.clone(), stop.clone());
        let round = Duration::from_secs(1);
        let task = tokio::spawn(spread(round, 4, stop.clone(), move |slot| {
            log.lock().unwrap().push((tokio::time::Instant::now(), slot));
            if log.lock().unwrap().len() == 8 {
                end.cancel();
            }
            async {}
        }));
        let start = tokio::time::Instant::now();
        task.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(seen[7].0 - start, Duration::from_secs(2), "eight quarter-second ticks");
    }
}
