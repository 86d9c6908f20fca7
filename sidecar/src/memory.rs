//! Giving memory back to the system after slow consumers are gone.
//!
//! glibc's malloc keeps freed memory in its arenas for reuse and returns it to the system only
//! at the top of a heap. After a burst held by clients that do not read, the node's RSS stays
//! where the burst took it: three never-reading clients with 1,000 × 60 KB pushed to each took a
//! node from 8 to 174 MB, and it stayed at 174 MB after they were gone (frame bound only;
//! docs/BENCHMARKS.md). The byte bound on outbound queues (`mailbox`) keeps such bursts small
//! in the first place; this returns what a burst still left: after a slow consumer was
//! disconnected, `malloc_trim(0)` on a blocking thread, at most once per [`CHECK_EVERY`], and
//! once more [`SETTLE_CHECKS`] checks after the last such disconnect (a session counts as
//! ended before it has said goodbye — which may wait up to 2 s on a stuck socket — and only then
//! frees its queue). It is event-driven rather than periodic because a trim walks every arena
//! under its lock: worth it after a burst was freed, not every few seconds on a busy node.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the trimmer looks whether a slow consumer was disconnected.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Quiet checks after the last slow disconnect before the trailing trim (longer than a
/// session's goodbye, at most 2 s).
const SETTLE_CHECKS: u32 = 2;

/// Starts the trimmer; it ends with `shutdown`.
pub fn spawn_trimmer(metrics: Arc<Metrics>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut seen = slow_ends(&metrics);
        let mut settling = 0;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = slow_ends(&metrics);
            let due = if now != seen {
                seen = now;
                settling = SETTLE_CHECKS;
                true
            } else if settling > 0 {
                settling -= 1;
                settling == 0
            } else {
                false
            };
            if due {
                let _ = tokio::task::spawn_blocking(trim).await;
                Metrics::inc(&metrics.memory_trims_total);
            }
        }
    });
}

/// Slow consumers ended so far: write timeouts and queue overflows by either bound.
fn slow_ends(m: &Metrics) -> u64 {
    m.slow_consumer_disconnects_total.load(Relaxed) + m.outbound_overflow_frames_total.load(Relaxed) + m.outbound_overflow_bytes_total.load(Relaxed)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only touches the allocator's own state, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
