//! Whether Redis answers, watched from one task: clients must not sit on a silent socket while
//! their node cannot reach Redis, and a load balancer must stop sending new ones.
//!
//! Every [`EVERY`] the task PINGs Redis through the node's command handle (which reconnects,
//! following a Sentinel switch, as needed). The first failure makes the node not ready
//! (`/readyz` answers 503 from the flag, at once, instead of waiting on Redis itself); after
//! [`DOWN_AFTER`] failures in a row the node counts Redis as down, and the callback closes every
//! connection with 1013 so that clients reconnect with backoff and resume from their cursors,
//! here once Redis is back or on another node. New connections are refused with 1013 meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Redis;

/// How often Redis is checked.
pub const EVERY: Duration = Duration::from_millis(500);
/// How long one check may take.
const PATIENCE: Duration = Duration::from_secs(1);
/// Failed checks in a row after which Redis counts as down.
pub const DOWN_AFTER: u32 = 2;

#[derive(Debug)]
pub struct Health {
    /// The last check succeeded.
    ready: AtomicBool,
    /// Fewer than [`DOWN_AFTER`] checks in a row failed.
    up: AtomicBool,
}

impl Health {
    /// Whether the last check of Redis succeeded (what `/readyz` says).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether Redis counts as reachable (new connections are refused while it does not).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// Starts watching; `on_down` runs once each time Redis becomes unreachable.
pub fn watch(mut redis: Redis, shutdown: CancellationToken, on_down: impl Fn() + Send + 'static) -> Arc<Health> {
    let health = Arc::new(Health { ready: AtomicBool::new(true), up: AtomicBool::new(true) });
    let h = health.clone();
    crate::background::spawn_essential("Redis health check", async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let pong = tokio::time::timeout(PATIENCE, redis::cmd("PING").query_async::<String>(&mut redis)).await;
            match pong {
                Ok(Ok(_)) => {
                    if failures >= DOWN_AFTER {
                        tracing::info!("Redis answers again");
                    }
                    failures = 0;
                    h.ready.store(true, Ordering::Release);
                    h.up.store(true, Ordering::Release);
                }
                failed => {
                    failures += 1;
                    h.ready.store(false, Ordering::Release);
                    if failures == DOWN_AFTER {
                        let why = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => format!("no answer within {PATIENCE:?}"),
                        };
                        tracing::warn!(error = %why, "Redis is unreachable: closing connections (1013) until it is back");
                        h.up.store(false, Ordering::Release);
                        on_down();
                    }
                }
            }
        }
    });
    health
}
