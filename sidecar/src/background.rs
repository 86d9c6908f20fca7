//! Background work for every connection (heartbeats, presence refreshes, acknowledgements):
//! spread over its interval, and written to Redis in small pipelines.
//!
//! A node writes thousands of small script calls at once when a timer fires (a second's
//! acknowledgements, every connection's presence refresh). Sent all together on the
//! multiplexed connection they reach Redis as one long pipeline, which Redis runs before it
//! reads anyone else: PHP's `chat_push()` calls queued behind it, and one-to-one p99 latency at
//! 10,000 msg/s went from 0.4 ms to 37 ms once a second. Sent [`PER_PIPELINE`] at a time, the
//! same work interleaves with other clients' commands instead.
//!
//! Bounded concurrency alone still left blocks of work: a sixteenth of 10,000 connections pinged,
//! refreshed or acknowledged at once kept a core and Redis busy for milliseconds, and the
//! messages arriving meanwhile waited behind it. Together the three held one-to-one p99 at
//! 17–24 ms against 4.6 ms with all three stopped (docs/BENCHMARKS.md). So each interval is cut
//! into slots about [`TICK`] apart ([`slots`]), and each tick serves one slot: the same work, in
//! pieces small enough to pass unnoticed.

use std::future::Future;
use std::time::Duration;

use chat_protocol::scripts;
use redis::aio::ConnectionManager;
use redis::ScriptInvocation;
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

/// Script calls per pipeline: one write and one read for the lot instead of a round trip each
/// (a command, a reply and two task wake-ups per call were most of an idle node's CPU), and
/// few enough that Redis runs no long block of them ahead of other clients' commands.
pub const PER_PIPELINE: usize = 16;

/// Sends `pipe` (built with `ignore_errors`: one call per item of `batch`, in order) and returns
/// how many calls failed. A call that Redis answered with `NOSCRIPT` (it lost its scripts: a
/// restart, `SCRIPT FLUSH`) is run again as `reload(item)`, which loads the script.
pub async fn run_pipeline<I>(
    redis: &mut ConnectionManager,
    pipe: redis::Pipeline,
    batch: &[I],
    reload: impl Fn(&I) -> ScriptInvocation<'static>,
) -> usize {
    let results: Vec<redis::RedisResult<redis::Value>> = match pipe.query_async(redis).await {
        Ok(r) => r,
        Err(_) => return batch.len(),
    };
    let mut failures = 0;
    for (item, r) in batch.iter().zip(results) {
        match r {
            Ok(_) => {}
            Err(e) if scripts::is_no_script(&e) => failures += usize::from(reload(item).invoke_async::<redis::Value>(redis).await.is_err()),
            Err(_) => failures += 1,
        }
    }
    failures
}
