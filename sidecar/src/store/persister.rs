//! Moves messages from the Redis persistence log into MySQL and tells the app about messages
//! for offline users.
//!
//! Every node with `CHAT_MYSQL_URL` or `CHAT_WEBHOOK_URL` reads the log through one consumer
//! group, so each entry is handled by one node. An entry is acknowledged (and deleted) only
//! after its batch is in MySQL; while MySQL is down entries stay pending in Redis and the
//! batch is retried. Inserts ignore rows already present, so a batch replayed after a crash is
//! stored once. Entries left pending by a node that died are claimed by the others after
//! `CHAT_PERSIST_CLAIM_IDLE_MS`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_protocol::topology::Durability;
use chat_protocol::{scripts, Keys};
use crate::engine::Redis;
use redis::Value;
use tokio_util::sync::CancellationToken;

use super::{History, StoredMessage};
use crate::metrics::Metrics;
use crate::webhook::Webhook;

pub struct Persister {
    pub keys: Keys,
    /// Most entries the log may hold (pushes are refused beyond it).
    pub log_bound: u64,
    /// Replicas that must hold an entry before it is stored in MySQL (from CHAT_REDIS_URL).
    pub durability: Durability,
    /// A connection of its own: XREADGROUP BLOCK would stall a shared multiplexed connection.
    pub redis: Redis,
    pub history: Option<History>,
    pub webhook: Option<Arc<Webhook>>,
    pub consumer: String,
    pub batch: usize,
    pub claim_idle_ms: u64,
    pub metrics: Arc<Metrics>,
}

type Entry = (String, String);

impl Persister {
    /// Turns the log on and creates the consumer group, then runs in the background. Once
    /// this returns, every accepted message is logged.
    pub async fn start(mut self, shutdown: CancellationToken) -> redis::RedisResult<()> {
        self.ensure_group().await?;
        crate::background::spawn_essential("history persister", async move { self.run(shutdown).await });
        Ok(())
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let mut own_pending = true;
        let mut last_claim: Option<Instant> = None;
        let mut group_ready = true;
        while !shutdown.is_cancelled() {
            if !group_ready {
                match self.ensure_group().await {
                    Ok(()) => group_ready = true,
                    Err(e) => {
                        self.redis_trouble("cannot create the log consumer group", &e, &shutdown).await;
                        continue;
                    }
                }
            }
            let step = if last_claim.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                last_claim = Some(Instant::now());
                self.claim_abandoned().await
            } else {
                self.read(if own_pending { "0" } else { ">" }).await
            };
            match step {
                Ok(entries) if entries.is_empty() => own_pending = false,
                // Entries not done stay pending: read them again first.
                Ok(entries) => own_pending |= !self.process(entries, &shutdown).await,
                Err(e) => {
                    if e.to_string().contains("NOGROUP") {
                        group_ready = false; // Redis lost its data; start over
                    }
                    self.redis_trouble("reading the persistence log failed", &e, &shutdown).await;
                }
            }
        }
    }

    /// The log and its consumer group, created again if Redis lost them (with the dataset
    /// marker, when that is gone too).
    async fn ensure_group(&mut self) -> redis::RedisResult<()> {
        let _: (String, u8) = scripts::dataset(&self.keys, true, Some(self.log_bound)).invoke_async(&mut self.redis).await?;
        Ok(())
    }

    async fn read(&mut self, id: &str) -> redis::RedisResult<Vec<Entry>> {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(Keys::LOG_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.batch)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(self.keys.log())
            .arg(id)
            .query_async(&mut self.redis)
            .await?;
        // [[stream, [[id, [field, value, ...]], ...]]] or nil
        Ok(match reply {
            Value::Array(streams) => streams.into_iter().flat_map(|s| nth(s, 1).map(entries).unwrap_or_default()).collect(),
            _ => Vec::new(),
        })
    }

    async fn claim_abandoned(&mut self) -> redis::RedisResult<Vec<Entry>> {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(self.keys.log())
            .arg(Keys::LOG_GROUP)
            .arg(&self.consumer)
            .arg(self.claim_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.redis)
            .await?;
        let claimed = nth(reply, 1).map(entries).unwrap_or_default();
        if !claimed.is_empty() {
            tracing::info!(entries = claimed.len(), "took over log entries a stopped node left pending");
        }
        Ok(claimed)
    }

    /// Stores a batch; false when it must be read again (replicas or Redis did not confirm).
    async fn process(&mut self, entries: Vec<Entry>, shutdown: &CancellationToken) -> bool {
        let mut rows = Vec::with_capacity(entries.len());
        let mut dead = Vec::new();
        for (id, envelope) in &entries {
            match StoredMessage::from_envelope(envelope) {
                Some(row) => rows.push(row),
                None => dead.push((id.as_str(), envelope.as_str())),
            }
        }
        // Only what the replicas hold goes to MySQL: an entry a dying master never passed on is
        // a push that was not accepted (it threw, or is repeated on the new master under another
        // number), and storing it would keep a message twice.
        if !self.replicas_hold_what_was_read(shutdown).await {
            return false;
        }
        // Set aside, never acknowledged away: an entry nothing can store is kept for an operator.
        if !dead.is_empty() && !self.dead_letter(&dead, shutdown).await {
            return false;
        }
        if let Some(history) = &self.history {
            let mut backoff = Duration::from_millis(200);
            loop {
                match history.insert(&rows).await {
                    Ok(replaced) => {
                        if replaced > 0 {
                            self.metrics.history_conflicts_total.fetch_add(replaced, std::sync::atomic::Ordering::Relaxed);
                        }
                        break;
                    }
                    Err(e) => {
                        Metrics::inc(&self.metrics.mysql_errors_total);
                        tracing::warn!(error = %e, retry_in = ?backoff, rows = rows.len(), "MySQL insert failed; entries stay pending in Redis");
                        tokio::select! {
                            _ = shutdown.cancelled() => return false,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            self.metrics.messages_persisted_total.fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
        let done: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(self.keys.log())
            .arg(Keys::LOG_GROUP)
            .arg(&ids)
            .ignore()
            .cmd("XDEL")
            .arg(self.keys.log())
            .arg(&ids)
            .ignore()
            .query_async(&mut self.redis)
            .await;
        if let Err(e) = done {
            // They stay pending and are written again (idempotently) later.
            Metrics::inc(&self.metrics.redis_errors_total);
            tracing::warn!(error = %e, "could not acknowledge persisted log entries");
        }
        if let Some(webhook) = &self.webhook {
            self.notify_offline(webhook.clone(), &rows).await;
        }
        true
    }

    /// With replicas to wait for: a small write on this connection, then `WAIT` for it. The
    /// replication stream is ordered, so once the replicas hold this write they hold every
    /// entry written before it, which includes everything just read. False (entries stay
    /// pending, and are read again) when they do not confirm in time.
    async fn replicas_hold_what_was_read(&mut self, shutdown: &CancellationToken) -> bool {
        let d = self.durability;
        if d.replicas == 0 {
            return true;
        }
        let confirmed: redis::RedisResult<(u64,)> = redis::pipe()
            .cmd("SET")
            .arg(self.keys.log_fence())
            .arg(&self.consumer)
            .ignore()
            .add_command(scripts::wait(d.replicas, d.timeout))
            .query_async(&mut self.redis)
            .await;
        match confirmed {
            Ok((n,)) if n >= u64::from(d.replicas) => true,
            other => {
                Metrics::inc(&self.metrics.unconfirmed_writes_total);
                tracing::warn!(result = ?other, "the replicas do not confirm the log entries read; they stay pending until they do");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                false
            }
        }
    }

    /// Copies entries that are not envelopes to the dead-letter stream; true once Redis has them
    /// (only then may they leave the log).
    async fn dead_letter(&mut self, dead: &[(&str, &str)], shutdown: &CancellationToken) -> bool {
        let mut pipe = redis::pipe();
        for (id, envelope) in dead {
            pipe.cmd("XADD").arg(self.keys.log_dead()).arg("*").arg("e").arg(*envelope).arg("log_id").arg(*id).arg("why").arg("not a message envelope").ignore();
        }
        match pipe.query_async::<()>(&mut self.redis).await {
            Ok(()) => {
                self.metrics.log_dead_letters_total.fetch_add(dead.len() as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(entries = dead.len(), stream = %self.keys.log_dead(), "log entries that are not message envelopes were moved to the dead-letter stream");
                true
            }
            Err(e) => {
                self.redis_trouble("cannot move unreadable log entries to the dead-letter stream; they stay pending", &e, shutdown).await;
                false
            }
        }
    }

    /// One webhook per offline recipient per batch, listing their new messages.
    async fn notify_offline(&mut self, webhook: Arc<Webhook>, rows: &[StoredMessage]) {
        let mut by_user: BTreeMap<&str, Vec<&StoredMessage>> = BTreeMap::new();
        for r in rows {
            if let Some(owner) = r.conv.strip_prefix("u:") {
                if r.sender.as_deref() != Some(owner) {
                    by_user.entry(owner).or_default().push(r);
                }
            }
        }
        for (user, messages) in by_user {
            let live: redis::RedisResult<u64> = scripts::live_connections(&self.keys, user).invoke_async(&mut self.redis).await;
            match live {
                Ok(0) => webhook.offline_messages(user, &messages),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, user, "cannot check presence for the offline webhook"),
            }
        }
    }

    async fn redis_trouble(&self, what: &str, e: &redis::RedisError, shutdown: &CancellationToken) {
        Metrics::inc(&self.metrics.redis_errors_total);
        tracing::warn!(error = %e, "{what}");
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn nth(v: Value, n: usize) -> Option<Value> {
    match v {
        Value::Array(items) => items.into_iter().nth(n),
        _ => None,
    }
}

/// `[[id, [field, value, ...]], ...]` -> (id, envelope); deleted entries (nil fields) are skipped.
fn entries(v: Value) -> Vec<Entry> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else { return None };
            if pair.len() != 2 {
                return None;
            }
            let fields = pair.pop()?;
            let id: String = redis::from_redis_value(pair.pop()?).ok()?;
            let fields: Vec<String> = redis::from_redis_value(fields).ok()?;
            let envelope = fields.chunks(2).find(|kv| kv[0] == "e").and_then(|kv| kv.get(1).cloned())?;
            Some((id, envelope))
        })
        .collect()
}
