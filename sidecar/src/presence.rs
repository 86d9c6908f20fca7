//! Presence: registers this node's connections in Redis with a TTL and keeps them fresh.
//!
//! Each connection is recorded as (user, connection, node) with an expiry on Redis's clock.
//! The node refreshes each of its entries every third of the TTL, spread over that interval; if
//! the node dies, its entries simply expire and its users go offline without anyone cleaning up.
//!
//! Presence *events* (members of the user's groups see `presence` frames; `user.online`,
//! `user.offline`, `group.occupied`, `group.vacated` webhooks) are announced once per
//! transition: online when the first connection registers, offline only after
//! `CHAT_PRESENCE_DEBOUNCE_MS` without any connection, so a quick reconnect announces nothing.
//! Users of a node that died are announced offline by whichever node's sweeper finds their
//! presence expired first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_protocol::scripts::{self, ConnInfo};
use chat_protocol::Keys;
use futures_util::future::join_all;
use crate::engine::Redis;
use tokio_util::sync::CancellationToken;

use crate::hub::ConnId;
use crate::metrics::Metrics;
use crate::webhook::Webhook;

/// Each third of the TTL, every entry is refreshed once, a few at a time
/// ([`crate::background::spread`], as the heartbeats are): all of a node's connections at once
/// (20,000 script calls of a dozen commands each) kept Redis busy in one block every interval,
/// and PHP's pushes queued behind it.
fn refresh_round(ttl_ms: u64) -> Duration {
    (Duration::from_millis(ttl_ms) / 3).max(Duration::from_millis(1))
}

/// A local connection's user and what was registered for it.
type Registered = (Arc<str>, Arc<ConnInfo>);

pub struct Presence {
    keys: Keys,
    ttl_ms: u64,
    debounce: Duration,
    /// Presence frames go to a group only while it has at most this many online members.
    group_events_limit: u64,
    redis: Redis,
    metrics: Arc<Metrics>,
    webhook: Option<Arc<Webhook>>,
    local: Mutex<HashMap<ConnId, Registered>>,
}

impl Presence {
    pub fn new(
        keys: Keys,
        ttl_ms: u64,
        debounce_ms: u64,
        group_events_limit: u64,
        redis: Redis,
        metrics: Arc<Metrics>,
        webhook: Option<Arc<Webhook>>,
    ) -> Arc<Self> {
        Arc::new(Presence {
            keys,
            ttl_ms,
            debounce: Duration::from_millis(debounce_ms),
            group_events_limit,
            redis,
            metrics,
            webhook,
            local: Mutex::new(HashMap::new()),
        })
    }

    /// Records a new connection. Once this returns, `chat_is_online($uid)` is true. An empty
    /// `uid` records an anonymous connection (client index only); registering the same `conn`
    /// again with a user (after `chat_bind`) replaces that.
    pub async fn register(self: &Arc<Self>, conn: ConnId, uid: Arc<str>, info: ConnInfo) -> redis::RedisResult<()> {
        let info = Arc::new(info);
        self.local.lock().unwrap().insert(conn, (uid.clone(), info.clone()));
        let fresh: u64 =
            scripts::register(&self.keys, &uid, &info, self.ttl_ms, true).invoke_async(&mut self.redis.clone()).await?;
        if fresh == 1 {
            let me = self.clone();
            tokio::spawn(async move { me.announce(&uid, true).await });
        }
        Ok(())
    }

    /// Removes a connection. Once this returns, it no longer counts as live.
    pub async fn unregister(self: &Arc<Self>, conn: ConnId) {
        let Some((uid, info)) = self.local.lock().unwrap().remove(&conn) else { return };
        let r: redis::RedisResult<u64> =
            scripts::unregister(&self.keys, &uid, &info.id).invoke_async(&mut self.redis.clone()).await;
        match r {
            // An anonymous connection was nobody's: no presence to settle.
            Ok(0) if !uid.is_empty() => {
                // Announced offline only if still offline after the debounce.
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(me.debounce).await;
                    let settle: redis::RedisResult<u64> =
                        scripts::settle_offline(&me.keys, &uid).invoke_async(&mut me.redis.clone()).await;
                    match settle {
                        Ok(1) => me.announce(&uid, false).await,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, %uid, "cannot settle presence; the sweeper will"),
                    }
                });
            }
            Ok(_) => {}
            Err(e) => {
                // The entry expires by itself within the TTL.
                Metrics::inc(&self.metrics.redis_errors_total);
                tracing::warn!(error = %e, conn = %info.id, "could not remove presence entry; it will expire");
            }
        }
    }

    /// Tells the user's groups and the app that `uid` came online or went offline.
    async fn announce(&self, uid: &str, online: bool) {
        let mut redis = self.redis.clone();
        let status = if online { "online" } else { "offline" };
        let groups: Vec<String> = match redis::cmd("HKEYS").arg(self.keys.groups(uid)).query_async(&mut redis).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, uid, "cannot read groups for a presence event");
                Vec::new()
            }
        };
        let at = crate::session::unix_now_ms();
        // One script per group (it records the member and publishes the event), all of them
        // pipelined on the multiplexed connection.
        let calls = groups.into_iter().filter(|g| chat_protocol::ids::validate("group", g).is_ok()).map(|group| {
            let mut redis = self.redis.clone();
            let event = format!(r#"e{{"type":"presence","group":"{group}","uid":"{uid}","status":"{status}"}}"#);
            let inv = scripts::group_presence(&self.keys, &group, uid, online, &event, self.group_events_limit);
            async move { (inv.invoke_async::<u64>(&mut redis).await, group) }
        });
        for (edge, group) in join_all(calls).await {
            match (edge, &self.webhook) {
                (Ok(1), Some(webhook)) => {
                    let event = if online { "group.occupied" } else { "group.vacated" };
                    webhook.event(event, format!(r#""group":"{group}","user":"{uid}","at":{at}"#));
                }
                (Ok(_), _) => {}
                (Err(e), _) => tracing::warn!(error = %e, uid, group, "group presence not recorded nor announced"),
            }
        }
        if let Some(webhook) = &self.webhook {
            let event = if online { "user.online" } else { "user.offline" };
            webhook.event(event, format!(r#""user":"{uid}","at":{at}"#));
        }
    }

    /// Announces offline the users whose presence expired because their node died.
    async fn sweep(&self) {
        let expired: redis::RedisResult<Vec<String>> = scripts::sweep_expired(&self.keys, 500).invoke_async(&mut self.redis.clone()).await;
        match expired {
            Ok(users) => {
                for uid in users {
                    tracing::info!(%uid, "presence expired (its node stopped); announcing offline");
                    self.announce(&uid, false).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
        }
    }

    /// Refreshes every local entry each third of the TTL until shutdown; sweeps once a round.
    pub fn spawn_refresher(self: &Arc<Self>, shutdown: CancellationToken) {
        let round = refresh_round(self.ttl_ms);
        let slots = crate::background::slots(round);
        let me = self.clone();
        crate::background::spawn_essential("presence refresher", crate::background::spread(round, slots, shutdown, move |slot| {
            let me = me.clone();
            async move {
                me.refresh_slot(slot, slots).await;
                if slot == slots - 1 {
                    me.sweep().await;
                }
            }
        }));
    }

    /// Refreshes the local entries of one slot (connection id modulo `slots`), in pipelines of
    /// [`crate::background::PER_PIPELINE`].
    async fn refresh_slot(&self, slot: u64, slots: u64) {
        let entries: Vec<Registered> =
            self.local.lock().unwrap().iter().filter(|(conn, _)| **conn % slots == slot).map(|(_, e)| e.clone()).collect();
        let mut redis = self.redis.clone();
        let mut failures = 0usize;
        for batch in entries.chunks(crate::background::PER_PIPELINE) {
            let pipe = scripts::refresh_all(&self.keys, batch.iter().map(|(uid, info)| (&**uid, &**info)), self.ttl_ms);
            failures += crate::background::run_pipeline(&mut redis, pipe, batch, |(uid, info)| scripts::register(&self.keys, uid, info, self.ttl_ms, false)).await;
        }
        if failures > 0 {
            self.metrics.redis_errors_total.fetch_add(failures as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(failures, "presence refresh failed for some connections");
        }
    }

    /// Removes all local entries (graceful shutdown).
    pub async fn unregister_all(self: &Arc<Self>) {
        let conns: Vec<ConnId> = self.local.lock().unwrap().keys().copied().collect();
        join_all(conns.into_iter().map(|c| self.unregister(c))).await;
    }
}
