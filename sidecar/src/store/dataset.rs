//! The dataset marker: whether this Redis still holds every conversation it ever had.
//!
//! Pushes are refused while the marker is missing (see `protocol/lua/push.lua`): a conversation
//! whose keys are missing could be new or could have been lost, and a lost one must not count
//! from 1 again. Sidecars set it:
//! - at start, on a Redis without one: `g` (whole) when it is a new Redis or holds our keys from
//!   before markers, `l` (may have lost data) when it is empty but MySQL has history;
//! - while running, every [`EVERY`]: a marker that disappeared means Redis restarted empty or
//!   was flushed under us, so it comes back as `l`, and every conversation starts a new epoch
//!   above the numbers it may have used.
//!
//! The same script turns the persistence log on when this node persists, atomically with the
//! marker, so no push lands between the two unlogged.

use std::time::{Duration, Instant};

use chat_protocol::{scripts, Keys};
use tokio_util::sync::CancellationToken;

use super::History;
use crate::engine::Redis;

/// How often a running node checks that the marker (and the log, when it persists) is there.
pub const EVERY: Duration = Duration::from_millis(500);

/// Longest a node spends at start looking for keys of the namespace on a Redis without marker.
const SCAN_FOR: Duration = Duration::from_secs(2);

/// Sets the marker if this Redis has none; turns the log on when `log_bound` is given.
pub async fn declare(redis: &Redis, keys: &Keys, history: Option<&History>, log_bound: Option<u64>) -> anyhow::Result<()> {
    let mut con = redis.clone();
    let marker: Option<String> = redis::cmd("GET").arg(keys.dataset()).query_async(&mut con).await?;
    let lost = match marker {
        Some(_) => false,
        None => {
            let ours = holds_keys_of(&mut con, keys.namespace()).await?;
            let had_history = match history {
                Some(h) => h.has_messages().await?,
                None => false,
            };
            !ours && had_history
        }
    };
    let (marker, created): (String, u8) = scripts::dataset(keys, lost, log_bound).invoke_async(&mut con).await?;
    if created == 1 {
        if lost {
            tracing::warn!(%marker, "Redis holds no chat data but MySQL has history: Redis lost its data; conversations start new epochs");
        } else {
            tracing::info!(%marker, "dataset marker set");
        }
    }
    Ok(())
}

/// Keeps the marker (and the log) in place while the node runs.
pub fn watch(redis: Redis, keys: Keys, log_bound: Option<u64>, shutdown: CancellationToken) {
    crate::background::spawn_essential("dataset marker", async move {
        let mut con = redis;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let r: redis::RedisResult<(String, u8)> = scripts::dataset(&keys, true, log_bound).invoke_async(&mut con).await;
            match r {
                Ok((marker, 1)) => tracing::warn!(%marker, "the dataset marker was gone (Redis restarted empty or was flushed): set again; conversations start new epochs"),
                Ok(_) => {}
                // The health check reports an unreachable Redis.
                Err(e) => tracing::debug!(error = %e, "cannot check the dataset marker"),
            }
        }
    });
}

/// Whether any key of the namespace exists (a Redis from before dataset markers).
async fn holds_keys_of(con: &mut Redis, namespace: &str) -> redis::RedisResult<bool> {
    // Conversation counters only: they are written by pushes alone, and pushes need the marker,
    // so after a loss none exists before some node has set it again.
    let pattern = format!("{namespace}:{{*}}:seq");
    let started = Instant::now();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query_async(con).await?;
        if !found.is_empty() {
            return Ok(true);
        }
        if next == 0 || started.elapsed() > SCAN_FOR {
            return Ok(false);
        }
        cursor = next;
    }
}
