//! Presence: registers this node's connections in Redis with a TTL and keeps them fresh.
//!
//! Each connection is recorded as (user, connection, node) with an expiry on Redis's clock.
//! The node refreshes all of its entries every third of the TTL; if the node dies, its
//! entries simply expire and its users go offline without anyone cleaning up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_protocol::scripts::{self, ConnInfo};
use chat_protocol::Keys;
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::hub::ConnId;
use crate::metrics::Metrics;

pub struct Presence {
    keys: Keys,
    ttl_ms: u64,
    redis: ConnectionManager,
    metrics: Arc<Metrics>,
    local: Mutex<HashMap<ConnId, (Arc<str>, Arc<ConnInfo>)>>,
}

impl Presence {
    pub fn new(keys: Keys, ttl_ms: u64, redis: ConnectionManager, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Presence { keys, ttl_ms, redis, metrics, local: Mutex::new(HashMap::new()) })
    }

    /// Records a new connection. Once this returns, `chat_is_online($uid)` is true.
    pub async fn register(&self, conn: ConnId, uid: Arc<str>, info: ConnInfo) -> redis::RedisResult<()> {
        let info = Arc::new(info);
        self.local.lock().unwrap().insert(conn, (uid.clone(), info.clone()));
        let r: redis::RedisResult<u64> =
            scripts::register(&self.keys, &uid, &info, self.ttl_ms).invoke_async(&mut self.redis.clone()).await;
        r.map(drop)
    }

    /// Removes a connection. Once this returns, it no longer counts as live.
    pub async fn unregister(&self, conn: ConnId) {
        let Some((uid, info)) = self.local.lock().unwrap().remove(&conn) else { return };
        let r: redis::RedisResult<u64> =
            scripts::unregister(&self.keys, &uid, &info.id).invoke_async(&mut self.redis.clone()).await;
        if let Err(e) = r {
            // The entry expires by itself within the TTL.
            Metrics::inc(&self.metrics.redis_errors_total);
            tracing::warn!(error = %e, conn = %info.id, "could not remove presence entry; it will expire");
        }
    }

    /// Refreshes every local entry each third of the TTL until shutdown.
    pub fn spawn_refresher(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(me.ttl_ms / 3));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => me.refresh_all().await,
                }
            }
        });
    }

    async fn refresh_all(&self) {
        let entries: Vec<_> = self.local.lock().unwrap().values().cloned().collect();
        // The multiplexed connection pipelines these on the wire; chunks bound the memory.
        for chunk in entries.chunks(512) {
            let calls = chunk.iter().map(|(uid, info)| {
                let mut redis = self.redis.clone();
                let inv = scripts::register(&self.keys, uid, info, self.ttl_ms);
                async move { inv.invoke_async::<u64>(&mut redis).await }
            });
            let failures = join_all(calls).await.into_iter().filter(|r| r.is_err()).count();
            if failures > 0 {
                self.metrics.redis_errors_total.fetch_add(failures as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(failures, "presence refresh failed for some connections");
            }
        }
    }

    /// Removes all local entries (graceful shutdown).
    pub async fn unregister_all(&self) {
        let conns: Vec<ConnId> = self.local.lock().unwrap().keys().copied().collect();
        join_all(conns.into_iter().map(|c| self.unregister(c))).await;
    }
}
