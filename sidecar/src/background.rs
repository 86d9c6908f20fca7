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
use crate::engine::Redis;
use redis::ScriptInvocation;
use tokio_util::sync::CancellationToken;

/// Exit status of a node that lost one of its essential tasks (EX_SOFTWARE).
pub const EXIT_TASK_PANICKED: i32 = 70;

/// Spawns a task the node cannot do without (the pub/sub link, presence refreshes,
/// acknowledgements, heartbeats, the history persister). If it panics, the node exits with
/// [`EXIT_TASK_PANICKED`] so that its supervisor restarts it: a node whose refresher had died
/// would keep its connections while its users went offline one TTL later, and nothing would say
/// why. Connections resume on a restarted node from their cursors.
pub fn spawn_essential<F>(name: &'static str, task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = tokio::spawn(task);
    tokio::spawn(watch(name, handle, || std::process::exit(EXIT_TASK_PANICKED)));
}

/// Waits for `handle`; calls `on_panic` if its task panicked.
async fn watch(name: &'static str, handle: tokio::task::JoinHandle<()>, on_panic: impl FnOnce()) {
    if let Err(e) = handle.await {
        if e.is_panic() {
            tracing::error!(task = name, "an essential task panicked; exiting so that the node is restarted");
            on_panic();
        }
    }
}

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
    redis: &mut Redis,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_essential_task_is_reported_and_a_finished_one_is_not() {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let panicked = std::sync::Arc::new(AtomicBool::new(false));
        let flag = panicked.clone();
        watch("test", tokio::spawn(async {}), move || flag.store(true, SeqCst)).await;
        assert!(!panicked.load(SeqCst), "ended normally");
        let flag = panicked.clone();
        watch("test", tokio::spawn(async { panic!("boom") }), move || flag.store(true, SeqCst)).await;
        assert!(panicked.load(SeqCst), "the panic reached on_panic");
    }

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
