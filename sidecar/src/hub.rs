//! Fan-out of Redis pub/sub notifications to this node's connections.
//!
//! A node subscribes only to the live channels its local connections hold: the first local
//! subscriber of a channel causes a SUBSCRIBE, the last one leaving an UNSUBSCRIBE. Joining
//! waits for Redis to confirm the subscription, so a connection that then reads its starting
//! cursor cannot miss a message published in between.
//!
//! Each notification is parsed once per node and the envelope bytes are shared (`Arc`) by
//! every local recipient. Notifications that arrived together are handed over together: one
//! lock and one wake-up per subscriber for the lot. Recipients have bounded queues; a full
//! queue flags the connection as too slow instead of growing memory.
//!
//! A payload may be addressed to some connections only (`@ids` / `!ids`, see
//! [`chat_protocol::live`]): client ids are `<node id>-<ConnId>`, so the hub keeps this node's
//! id and hands such a payload only to the local subscribers it names (or does not name).
//!
//! When the pub/sub connection drops, the supervisor reconnects, resubscribes every channel
//! and sends [`Outbound::Resync`] to every connection, which then fills what it missed from
//! the conversation's stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashSet;

use chat_protocol::live::{self, Audience, LiveEvent};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Identifies a connection on this node.
pub type ConnId = u64;

/// Something for one connection to act on.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A new message in one of the connection's conversations.
    Message(Arc<LiveMessage>),
    /// `chat_kick`: close with this reason.
    Kick(Arc<str>),
    /// An ephemeral event (read sync, receipt, typing, …): written to the client as is.
    Event(Utf8Bytes),
    /// The user joined a group at its sequence `seq`: start receiving it.
    Joined { group: Arc<str>, seq: u64 },
    /// The user left a group: stop receiving it.
    Left { group: Arc<str> },
    /// Notifications may have been missed: catch up from the streams.
    Resync,
    /// `chat_bind`: this anonymous connection becomes the session of user `.0`.
    Bind(Arc<str>),
    /// Time to check the client is alive (one node-wide tick for every connection, instead
    /// of a timer in each).
    Heartbeat,
}

/// A message as announced on a live channel, shared by all local recipients.
#[derive(Debug)]
pub struct LiveMessage {
    /// The live channel it came on; connections key their cursors by it.
    pub topic: Arc<str>,
    pub seq: u64,
    pub text: Utf8Bytes,
}

/// Which local subscribers of a topic a notification is for.
enum Reach {
    All,
    /// Only these connections (`@ids`).
    Only(HashSet<ConnId>),
    /// Every connection but these (`!ids`).
    Except(HashSet<ConnId>),
}

impl Reach {
    fn admits(&self, conn: ConnId) -> bool {
        match self {
            Reach::All => true,
            Reach::Only(ids) => ids.contains(&conn),
            Reach::Except(ids) => !ids.contains(&conn),
        }
    }
}

/// A local connection's mailbox. When it is full, the connection ends as too slow.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub conn: ConnId,
    pub tx: crate::mailbox::Sender,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("Redis did not confirm the subscription in time")]
    Unavailable,
}

struct Topic {
    name: Arc<str>,
    /// Distinguishes this topic from an earlier one of the same name, so a late confirmation
    /// for a topic that was dropped and re-created does not mark the new one as subscribed.
    id: u64,
    subscribers: Vec<Subscriber>,
    confirmed: bool,
}

enum Cmd {
    Subscribe { name: Arc<str>, id: u64, ack: oneshot::Sender<()> },
    Unsubscribe { name: Arc<str> },
}

pub struct Hub {
    topics: Mutex<HashMap<Arc<str>, Topic>>,
    cmds: mpsc::UnboundedSender<Cmd>,
    next_topic: AtomicU64,
    metrics: Arc<Metrics>,
    /// This node's id: the prefix of its connections' client ids.
    node_id: String,
}

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

impl Hub {
    /// Creates the hub and spawns its pub/sub supervisor.
    pub fn start(client: redis::Client, metrics: Arc<Metrics>, node_id: String, shutdown: CancellationToken) -> Arc<Hub> {
        let (cmds, rx) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            topics: Mutex::new(HashMap::new()),
            cmds,
            next_topic: AtomicU64::new(1),
            metrics,
            node_id,
        });
        let watcher = hub.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            watcher.shut_down_all();
        });
        tokio::spawn(supervise(hub.clone(), client, rx, shutdown));
        hub
    }

    /// Adds `sub` to `topic` and returns once Redis delivers the topic's notifications.
    /// On error `sub` is not left behind.
    pub async fn join(&self, topic: &str, sub: Subscriber) -> Result<Arc<str>, HubError> {
        let conn = sub.conn;
        let (name, ack) = {
            let mut topics = self.topics.lock().unwrap();
            let t = topics.entry(Arc::from(topic)).or_insert_with_key(|name| Topic {
                name: name.clone(),
                id: self.next_topic.fetch_add(1, Relaxed),
                subscribers: Vec::new(),
                confirmed: false,
            });
            t.subscribers.push(sub);
            if t.confirmed {
                return Ok(t.name.clone());
            }
            let (tx, rx) = oneshot::channel();
            // Sent under the lock so commands reach Redis in the order the topic map changed.
            let _ = self.cmds.send(Cmd::Subscribe { name: t.name.clone(), id: t.id, ack: tx });
            (t.name.clone(), rx)
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, ack).await {
            Ok(Ok(())) => Ok(name),
            _ => {
                self.leave(&name, conn);
                Err(HubError::Unavailable)
            }
        }
    }

    /// Removes connection `conn` from `topic`; unsubscribes when it was the last one.
    pub fn leave(&self, topic: &str, conn: ConnId) {
        let mut topics = self.topics.lock().unwrap();
        let Some(t) = topics.get_mut(topic) else { return };
        t.subscribers.retain(|s| s.conn != conn);
        if t.subscribers.is_empty() {
            let t = topics.remove(topic).expect("present");
            let _ = self.cmds.send(Cmd::Unsubscribe { name: t.name });
        }
    }

    /// Hands a batch of notifications (what the pub/sub connection had ready) to the local
    /// subscribers. Consecutive notifications of one channel reach each subscriber with one
    /// lock and one wake-up: under load a session then writes many frames per system call, and
    /// a lone notification is not delayed at all (a batch is only what had already arrived).
    fn dispatch(&self, batch: &[redis::Msg]) {
        let mut rest = batch;
        while let Some(first) = rest.first() {
            let channel = first.get_channel_name();
            let run = rest.iter().take_while(|m| m.get_channel_name() == channel).count();
            self.dispatch_run(channel, &rest[..run]);
            rest = &rest[run..];
        }
    }

    fn dispatch_run(&self, channel: &str, msgs: &[redis::Msg]) {
        let topics = self.topics.lock().unwrap();
        let Some(t) = topics.get(channel) else { return };
        let items: Vec<(Reach, Outbound)> = msgs.iter().filter_map(|m| self.parse(t, m.get_payload_bytes())).collect();
        if items.is_empty() {
            return;
        }
        for s in &t.subscribers {
            let admitted = items.iter().filter(|(reach, _)| reach.admits(s.conn));
            // A full mailbox ends its connection by itself (it resumes from its cursors).
            let _ = s.tx.send_all(admitted.map(|(_, item)| item.clone()));
        }
    }

    /// What a notification on topic `t` means for its subscribers, and which of them it reaches.
    fn parse(&self, t: &Topic, payload: &[u8]) -> Option<(Reach, Outbound)> {
        let channel = &*t.name;
        let (audience, payload) = match live::split_audience(payload) {
            Ok(split) => split,
            Err(e) => {
                tracing::warn!(channel, error = %e, "ignoring notification");
                return None;
            }
        };
        let reach = match audience {
            None => Reach::All,
            Some(a @ Audience::Only(_)) => Reach::Only(self.local_conns(a)),
            Some(a) => Reach::Except(self.local_conns(a)),
        };
        // Addressed to connections of other nodes only: nothing to do here.
        if matches!(&reach, Reach::Only(ids) if ids.is_empty()) {
            return None;
        }
        let event = match LiveEvent::parse(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(channel, error = %e, "ignoring notification");
                return None;
            }
        };
        let item = match event {
            LiveEvent::Message { seq, envelope } => Outbound::Message(Arc::new(LiveMessage {
                topic: t.name.clone(),
                seq,
                text: Utf8Bytes::from(envelope.to_owned()),
            })),
            LiveEvent::Kick { reason } => Outbound::Kick(Arc::from(reason)),
            LiveEvent::Event { frame } => Outbound::Event(Utf8Bytes::from(frame.to_owned())),
            LiveEvent::Joined { group, seq } => Outbound::Joined { group: Arc::from(group), seq },
            LiveEvent::Left { group } => Outbound::Left { group: Arc::from(group) },
            // Only ever for named connections: a bind without `@ids` would bind every
            // anonymous connection of the channel at once.
            LiveEvent::Bind { .. } if !matches!(reach, Reach::Only(_)) => {
                tracing::warn!(channel, "ignoring a bind event not addressed to a connection");
                return None;
            }
            LiveEvent::Bind { uid } => Outbound::Bind(Arc::from(uid)),
        };
        Some((reach, item))
    }

    /// The connections of this node among an audience's client ids.
    fn local_conns(&self, audience: Audience<'_>) -> HashSet<ConnId> {
        audience
            .clients()
            .filter_map(live::split_client_id)
            .filter(|(node, _)| *node == self.node_id)
            .map(|(_, conn)| conn)
            .collect()
    }

    fn confirm(&self, name: &str, id: u64) {
        if let Some(t) = self.topics.lock().unwrap().get_mut(name) {
            if t.id == id {
                t.confirmed = true;
            }
        }
    }

    /// Topics to resubscribe after a reconnect; marks them all unconfirmed meanwhile.
    fn unconfirm_all(&self) -> Vec<(Arc<str>, u64)> {
        let mut topics = self.topics.lock().unwrap();
        topics
            .values_mut()
            .map(|t| {
                t.confirmed = false;
                (t.name.clone(), t.id)
            })
            .collect()
    }

    /// Hands `item` to the local subscribers of `topic` that `pick` chooses (the broadcast
    /// channel reaches every connection once).
    pub fn tell(&self, topic: &str, item: Outbound, pick: impl Fn(ConnId) -> bool) {
        if let Some(t) = self.topics.lock().unwrap().get(topic) {
            for s in t.subscribers.iter().filter(|s| pick(s.conn)) {
                offer(s, item.clone());
            }
        }
    }

    /// Tells every local connection that the node is shutting down.
    fn shut_down_all(&self) {
        self.each_subscriber(|s| s.tx.shut_down());
    }

    fn resync_all(&self) {
        self.each_subscriber(|s| offer(s, Outbound::Resync));
    }

    /// Every subscription of every topic (a connection in several topics comes once per topic).
    fn each_subscriber(&self, f: impl Fn(&Subscriber)) {
        for t in self.topics.lock().unwrap().values() {
            t.subscribers.iter().for_each(&f);
        }
    }
}

fn offer(s: &Subscriber, item: Outbound) {
    // A full mailbox ends its connection by itself (it resumes from its cursors).
    let _ = s.tx.try_send(item);
}

/// At most this many commands are merged into one batch (bounds one SUBSCRIBE's size).
const MAX_BATCH: usize = 4096;

/// At most this many notifications are dispatched as one batch.
const MAX_DISPATCH: usize = 4096;

/// The (un)subscribe commands queued at one moment, merged: one UNSUBSCRIBE and one SUBSCRIBE
/// for all of them, so a node subscribes thousands of channels per Redis round trip instead of
/// one (a burst of connects would otherwise queue up behind one round trip each).
struct Batch {
    /// Channels whose last command in the batch was SUBSCRIBE.
    subscribe: Vec<Arc<str>>,
    /// Channels whose last command in the batch was UNSUBSCRIBE.
    unsubscribe: Vec<Arc<str>>,
    /// Joiners waiting for their topic's confirmation.
    acks: Vec<(Arc<str>, u64, oneshot::Sender<()>)>,
}

impl Batch {
    fn drain(first: Cmd, cmds: &mut mpsc::UnboundedReceiver<Cmd>) -> Batch {
        // The last command per channel wins: both are idempotent in Redis, and the topic map
        // already reflects the final state. Acks of a topic dropped meanwhile are harmless
        // (`confirm` checks the topic id).
        let mut last: HashMap<Arc<str>, bool> = HashMap::new();
        let mut order: Vec<Arc<str>> = Vec::new();
        let mut acks = Vec::new();
        let mut take = |cmd: Cmd| {
            let (name, subscribe) = match cmd {
                Cmd::Subscribe { name, id, ack } => {
                    acks.push((name.clone(), id, ack));
                    (name, true)
                }
                Cmd::Unsubscribe { name } => (name, false),
            };
            if last.insert(name.clone(), subscribe).is_none() {
                order.push(name);
            }
        };
        take(first);
        for _ in 1..MAX_BATCH {
            match cmds.try_recv() {
                Ok(cmd) => take(cmd),
                Err(_) => break,
            }
        }
        let (subscribe, unsubscribe) = order.into_iter().partition(|n| last[n]);
        Batch { subscribe, unsubscribe, acks }
    }

    async fn apply(&self, sink: &mut redis::aio::PubSubSink) -> redis::RedisResult<()> {
        if !self.unsubscribe.is_empty() {
            let names: Vec<&str> = self.unsubscribe.iter().map(|n| &**n).collect();
            sink.unsubscribe(&names).await?;
        }
        if !self.subscribe.is_empty() {
            let names: Vec<&str> = self.subscribe.iter().map(|n| &**n).collect();
            sink.subscribe(&names).await?;
        }
        Ok(())
    }

    fn confirm(self, hub: &Hub) {
        for (name, id, ack) in self.acks {
            hub.confirm(&name, id);
            let _ = ack.send(());
        }
    }
}

/// Owns the pub/sub connection: executes (un)subscribe commands in merged batches, reconnects.
async fn supervise(
    hub: Arc<Hub>,
    client: redis::Client,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    // Subscriptions requested while the link was down; answered once resubscribed.
    let mut pending: Vec<(Arc<str>, u64, oneshot::Sender<()>)> = Vec::new();
    loop {
        let link = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = client.get_async_pubsub() => r,
        };
        let (mut sink, mut stream) = match link {
            Ok(p) => p.split(),
            Err(e) => {
                Metrics::inc(&hub.metrics.redis_errors_total);
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot open pub/sub connection to Redis");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let topics = hub.unconfirm_all();
        if !topics.is_empty() {
            let mut failed = None;
            for chunk in topics.chunks(MAX_BATCH) {
                let names: Vec<&str> = chunk.iter().map(|(n, _)| &**n).collect();
                if let Err(e) = sink.subscribe(&names).await {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                tracing::warn!(error = %e, "resubscribing failed; reconnecting");
                tokio::time::sleep(backoff).await;
                continue;
            }
            for (name, id) in &topics {
                hub.confirm(name, *id);
            }
        }
        for (name, id, ack) in pending.drain(..) {
            hub.confirm(&name, id);
            let _ = ack.send(());
        }
        if connected_before {
            Metrics::inc(&hub.metrics.pubsub_reconnects_total);
            tracing::info!(channels = topics.len(), "pub/sub reconnected; connections catch up from streams");
            hub.resync_all();
        }
        connected_before = true;
        backoff = Duration::from_millis(100);

        let reader_hub = hub.clone();
        let mut reader = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_DISPATCH);
            while let Some(msg) = stream.next().await {
                batch.push(msg);
                // Whatever else has already arrived, without waiting for more.
                while batch.len() < MAX_DISPATCH {
                    match stream.next().now_or_never() {
                        Some(Some(msg)) => batch.push(msg),
                        _ => break,
                    }
                }
                reader_hub.dispatch(&batch);
                batch.clear();
            }
        });
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => { reader.abort(); return; }
                _ = &mut reader => {
                    tracing::warn!("pub/sub connection to Redis lost; reconnecting");
                    break;
                }
                cmd = cmds.recv() => {
                    let Some(first) = cmd else { reader.abort(); return; };
                    let batch = Batch::drain(first, &mut cmds);
                    match batch.apply(&mut sink).await {
                        Ok(()) => batch.confirm(&hub),
                        Err(e) => {
                            tracing::warn!(error = %e, "(UN)SUBSCRIBE failed; reconnecting");
                            pending.extend(batch.acks);
                            break;
                        }
                    }
                }
            }
        }
        reader.abort();
        Metrics::inc(&hub.metrics.redis_errors_total);
        tokio::time::sleep(backoff).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, id: u64) -> (Cmd, oneshot::Receiver<()>) {
        let (ack, rx) = oneshot::channel();
        (Cmd::Subscribe { name: Arc::from(name), id, ack }, rx)
    }

    fn unsub(name: &str) -> Cmd {
        Cmd::Unsubscribe { name: Arc::from(name) }
    }

    #[test]
    fn a_batch_merges_queued_commands_and_the_last_one_per_channel_wins() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (first, _a) = sub("a", 1);
        let (b, _b) = sub("b", 2);
        let (c_again, _c) = sub("c", 4);
        for cmd in [b, unsub("a"), unsub("c"), c_again, unsub("d")] {
            tx.send(cmd).unwrap();
        }
        let batch = Batch::drain(first, &mut rx);
        let names = |v: &[Arc<str>]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&batch.subscribe), ["b", "c"]);
        assert_eq!(names(&batch.unsubscribe), ["a", "d"]);
        assert_eq!(batch.acks.len(), 3, "every joiner is answered once Redis confirms");
        assert!(rx.try_recv().is_err(), "the queue was drained");
    }

    #[test]
    fn a_batch_is_bounded() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..MAX_BATCH + 10 {
            tx.send(unsub(&format!("ch{i}"))).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let batch = Batch::drain(first, &mut rx);
        assert_eq!(batch.unsubscribe.len(), MAX_BATCH);
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 10, "the rest waits for the next batch");
    }
}
