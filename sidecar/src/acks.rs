//! Node-wide batching of delivery acknowledgements.
//!
//! A user's acknowledged position per conversation (where a device that connects without
//! cursors starts) used to be written by each connection on its own timer: a timer per busy
//! connection and a Redis script call per connection and tick. In a 10,000-member group that
//! was 10,000 script calls for every quarter second of traffic, competing with delivery for the
//! same cores. Here sessions only record the highest sequence in one table per node (a short
//! critical section; nothing allocated for a conversation and user already pending), and one
//! task writes the table every [`ACK_DELAY`]: one script call per group with all of its local
//! members (the group's `acked` hash, on the group's slot), one per inbox, pipelined on the
//! multiplexed connection. An idle node has no timer armed: the flusher waits until the table
//! is non-empty.
//!
//! Acknowledgements are a resume hint, not a delivery guarantee (clients resume from their own
//! cursors; the worst a lost one does is a duplicate the client drops), so a failed write is
//! logged and counted, and a later one covers it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_protocol::{scripts, Conversation, Keys};
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Acknowledgements are coalesced for this long before they are written: a busy user costs
/// Redis at most one write per conversation per interval.
pub const ACK_DELAY: Duration = Duration::from_secs(1);

/// Script calls in flight per chunk of a flush: bounds what one flush holds at once.
const CHUNK: usize = 512;

/// Pending acknowledgements: conversation id (`u:alice`, `g:room`) -> (uid, highest sequence).
type Table = HashMap<Arc<str>, Vec<(Arc<str>, u64)>>;

pub struct Acks {
    keys: Keys,
    redis: ConnectionManager,
    metrics: Arc<Metrics>,
    pending: Mutex<Table>,
    /// Signalled when `pending` goes from empty to non-empty.
    woken: Notify,
}

impl Acks {
    /// Creates the table and spawns its flusher. On shutdown the node calls [`Acks::flush`]
    /// once its connections have ended, so their last acknowledgements are written too.
    pub fn start(keys: Keys, redis: ConnectionManager, metrics: Arc<Metrics>) -> Arc<Acks> {
        let acks = Arc::new(Acks { keys, redis, metrics, pending: Mutex::new(HashMap::new()), woken: Notify::new() });
        let me = acks.clone();
        tokio::spawn(async move {
            loop {
                me.woken.notified().await;
                tokio::time::sleep(ACK_DELAY).await;
                me.flush().await;
            }
        });
        acks
    }

    /// `uid`'s devices have `conv` up to `seq`. Never lowers a pending value.
    pub fn record(&self, uid: &Arc<str>, conv: &Arc<str>, seq: u64) {
        let was_empty = {
            let mut table = self.pending.lock().unwrap();
            let was_empty = table.is_empty();
            let users = match table.get_mut(conv) {
                Some(users) => users,
                None => table.entry(conv.clone()).or_default(),
            };
            match users.iter_mut().find(|(u, _)| u == uid) {
                Some((_, at)) => *at = (*at).max(seq),
                None => users.push((uid.clone(), seq)),
            }
            was_empty
        };
        if was_empty {
            self.woken.notify_one();
        }
    }

    /// Writes what is pending for `uid` in `convs` now, and waits until Redis has it: a
    /// connection of theirs is closing, and a device that connects right after without cursors
    /// must start after what this one received.
    pub async fn flush_user<'a>(&self, uid: &Arc<str>, convs: impl Iterator<Item = &'a Arc<str>>) {
        let mine: Vec<(Arc<str>, Vec<(Arc<str>, u64)>)> = {
            let mut table = self.pending.lock().unwrap();
            convs
                .filter_map(|conv| {
                    let users = table.get_mut(conv)?;
                    let at = users.iter().position(|(u, _)| u == uid)?;
                    let entry = users.swap_remove(at);
                    if users.is_empty() {
                        table.remove(conv);
                    }
                    Some((conv.clone(), vec![entry]))
                })
                .collect()
        };
        self.write(&mine).await;
    }

    /// Writes everything pending, and waits until Redis has it.
    pub async fn flush(&self) {
        let table = std::mem::take(&mut *self.pending.lock().unwrap());
        let convs: Vec<(Arc<str>, Vec<(Arc<str>, u64)>)> = table.into_iter().collect();
        self.write(&convs).await;
    }

    async fn write(&self, convs: &[(Arc<str>, Vec<(Arc<str>, u64)>)]) {
        for chunk in convs.chunks(CHUNK) {
            let calls = chunk.iter().filter_map(|(conv, users)| {
                let inv = match Conversation::parse(conv).ok()? {
                    Conversation::Group(group) => scripts::ack_group(&self.keys, &group, users),
                    inbox => scripts::ack(&self.keys, &users.first()?.0, &inbox, users.iter().map(|u| u.1).max()?),
                };
                let mut redis = self.redis.clone();
                Some(async move { inv.invoke_async::<()>(&mut redis).await })
            });
            let failures = join_all(calls).await.into_iter().filter(|r| r.is_err()).count();
            if failures > 0 {
                self.metrics.redis_errors_total.fetch_add(failures as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(failures, "acknowledged positions not recorded for some conversations; later acks cover them");
            }
        }
    }
}
