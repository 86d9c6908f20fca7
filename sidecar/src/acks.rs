//! Node-wide batching of delivery acknowledgements.
//!
//! A user's acknowledged position per conversation (where a device that connects without
//! cursors starts) used to be written by each connection on its own timer: a timer per busy
//! connection and a Redis script call per connection and tick. In a 10,000-member group that
//! was 10,000 script calls for every quarter second of traffic, competing with delivery for the
//! same cores. Here sessions only record the highest sequence in one table per node (a short
//! critical section; nothing allocated for a conversation and user already pending), and one
//! task writes the table every `CHAT_ACK_FLUSH_MS`, one shard at a time spread over that
//! interval: one script call per group with its local members in the shard (the group's `acked`
//! hash, on the group's slot), one per inbox, a few at a time (see [`crate::background`]). An
//! idle node has no timer armed: the flusher waits until the table is non-empty.
//!
//! Acknowledgements are a resume hint, not a delivery guarantee (clients resume from their own
//! cursors; the worst a lost one does is that a device connecting without cursors is sent again
//! what another device already had), so a failed write is logged and counted, and a later one
//! covers it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_protocol::topology::Durability;
use chat_protocol::{scripts, Conversation, Keys};
use crate::engine::Redis;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Members of one group written by one script call.
const MEMBERS_PER_CALL: usize = 1000;

/// Pending acknowledgements: (conversation id (`u:alice`, `g:room`), uid) -> highest sequence.
/// Hashed with foldhash: every delivered batch records here, and SipHash's resistance to
/// chosen keys buys nothing for ids the node already holds.
type Table = HashMap<(Arc<str>, Arc<str>), u64, foldhash::fast::RandomState>;

/// The table is split so that sessions on different worker threads rarely wait for each other,
/// and so that the flusher writes a second's acknowledgements in 64 small parts rather than one
/// block (10,000 inbox acks at once held one-to-one p99 latency up by milliseconds).
const SHARDS: usize = 64;

/// What one flush writes: per conversation, its members' positions.
type Writes = Vec<(Arc<str>, Members)>;

/// Members of a conversation and the sequence each acknowledged.
type Members = Vec<(Arc<str>, u64)>;

pub struct Acks {
    keys: Keys,
    /// A connection of its own: the `WAIT` after each flush holds it up.
    redis: Redis,
    /// Replicas that must confirm the writes (from CHAT_REDIS_URL).
    durability: Durability,
    metrics: Arc<Metrics>,
    shards: [Mutex<Table>; SHARDS],
    /// Picks a shard.
    spread: foldhash::fast::FixedState,
    /// Whether anything was recorded since the flusher last looked (it sleeps otherwise).
    armed: std::sync::atomic::AtomicBool,
    woken: Notify,
}

impl Acks {
    /// Creates the table and spawns its flusher. On shutdown the node calls [`Acks::flush`]
    /// once its connections have ended, so their last acknowledgements are written too.
    pub fn start(keys: Keys, redis: Redis, durability: Durability, metrics: Arc<Metrics>, delay: Duration) -> Arc<Acks> {
        let acks = Arc::new(Acks {
            keys,
            redis,
            durability,
            metrics,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::default())),
            spread: foldhash::fast::FixedState::default(),
            armed: std::sync::atomic::AtomicBool::new(false),
            woken: Notify::new(),
        });
        let me = acks.clone();
        crate::background::spawn_essential("acknowledgement flusher", async move {
            let every = (delay / SHARDS as u32).max(Duration::from_millis(1));
            loop {
                me.woken.notified().await;
                // Rounds while acknowledgements keep coming: each shard once per `delay`.
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    me.armed.store(false, std::sync::atomic::Ordering::Release);
                    for shard in &me.shards {
                        tick.tick().await;
                        let table = std::mem::take(&mut *shard.lock().unwrap());
                        me.write(by_conversation([table])).await;
                    }
                    if !me.armed.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                }
            }
        });
        acks
    }

    fn shard(&self, conv: &str, uid: &str) -> &Mutex<Table> {
        use std::hash::BuildHasher;
        &self.shards[self.spread.hash_one((conv, uid)) as usize % SHARDS]
    }

    /// `uid`'s devices have `conv` up to `seq`. Never lowers a pending value.
    pub fn record(&self, uid: &Arc<str>, conv: &Arc<str>, seq: u64) {
        {
            let mut table = self.shard(conv, uid).lock().unwrap();
            let at = table.entry((conv.clone(), uid.clone())).or_insert(0);
            *at = (*at).max(seq);
        }
        if !self.armed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.woken.notify_one();
        }
    }

    /// Writes what is pending for `uid` in `convs` now, and waits until Redis has it: a
    /// connection of theirs is closing, and a device that connects right after without cursors
    /// must start after what this one received.
    pub async fn flush_user<'a>(&self, uid: &Arc<str>, convs: impl Iterator<Item = &'a Arc<str>>) {
        let mine: Writes = convs
            .filter_map(|conv| {
                let seq = self.shard(conv, uid).lock().unwrap().remove(&(conv.clone(), uid.clone()))?;
                Some((conv.clone(), vec![(uid.clone(), seq)]))
            })
            .collect();
        self.write(mine).await;
    }

    /// Writes everything pending, and waits until Redis has it.
    pub async fn flush(&self) {
        let tables: Vec<Table> = self.shards.iter().map(|shard| std::mem::take(&mut *shard.lock().unwrap())).collect();
        self.write(by_conversation(tables)).await;
    }

    /// Writes in pipelines ([`pipelines`]): a round trip per inbox (about one a second for each
    /// user who received anything) cost the node a command, a reply and two task wake-ups each.
    async fn write(&self, convs: Writes) {
        let writes: Vec<(Conversation, Members)> =
            convs.into_iter().filter_map(|(conv, users)| Some((Conversation::parse(&conv).ok()?, users))).collect();
        let mut redis = self.redis.clone();
        let mut failures = 0usize;
        for batch in pipelines(&writes) {
            let pipe = scripts::ack_all(&self.keys, batch);
            failures += crate::background::run_pipeline(&mut redis, pipe, batch, |(conv, users)| scripts::ack_many(&self.keys, conv, users)).await;
        }
        if failures > 0 {
            self.metrics.redis_errors_total.fetch_add(failures as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(failures, "acknowledged positions not recorded for some conversations; later acks cover them");
        }
        let d = self.durability;
        if d.replicas > 0 && !writes.is_empty() {
            // One WAIT for the whole flush: it covers everything written on this connection.
            match scripts::wait(d.replicas, d.timeout).query_async::<u64>(&mut redis).await {
                Ok(n) if n >= u64::from(d.replicas) => {}
                other => {
                    Metrics::inc(&self.metrics.unconfirmed_writes_total);
                    tracing::warn!(result = ?other, "acknowledged positions not confirmed by the replicas; a failover now may send those devices some messages again");
                }
            }
        }
    }
}

/// Writes per pipeline: at most [`crate::background::PER_PIPELINE`] calls, and at most
/// [`MEMBERS_PER_CALL`] members in all (a large group's slice goes alone), so Redis runs no
/// long block of them.
fn pipelines<T>(writes: &[(Conversation, Vec<T>)]) -> impl Iterator<Item = &[(Conversation, Vec<T>)]> {
    let mut rest = writes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut n, mut members) = (0, 0);
        while n < rest.len() && n < crate::background::PER_PIPELINE && (n == 0 || members + rest[n].1.len() <= MEMBERS_PER_CALL) {
            members += rest[n].1.len();
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

/// What `tables` hold, per conversation; a big group's members in slices, so one script call
/// stays short for Redis.
fn by_conversation(tables: impl IntoIterator<Item = Table>) -> Writes {
    let mut by_conv: HashMap<Arc<str>, Vec<(Arc<str>, u64)>> = HashMap::new();
    for ((conv, uid), seq) in tables.into_iter().flatten() {
        by_conv.entry(conv).or_default().push((uid, seq));
    }
    by_conv
        .into_iter()
        .flat_map(|(conv, users)| users.chunks(MEMBERS_PER_CALL).map(|part| (conv.clone(), part.to_vec())).collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(members: usize) -> (Conversation, Vec<u64>) {
        (Conversation::Group("g".into()), vec![0; members])
    }

    #[test]
    fn pipelines_hold_at_most_sixteen_writes_and_a_large_slice_goes_alone() {
        let mut writes: Vec<_> = (0..40).map(|_| write(1)).collect();
        writes.insert(5, write(MEMBERS_PER_CALL));
        let sizes: Vec<usize> = pipelines(&writes).map(|b| b.len()).collect();
        assert_eq!(sizes, vec![5, 1, 16, 16, 3]);
        assert_eq!(sizes.iter().sum::<usize>(), writes.len(), "every write once");
        assert_eq!(pipelines::<u64>(&[]).count(), 0);
    }
}
