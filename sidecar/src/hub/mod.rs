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
//! [`chat_protocol::live`]): client ids are `<node id>-<ConnId in base 36>`, so the hub keeps this node's
//! id and hands such a payload only to the local subscribers it names (or does not name).
//!
//! The pub/sub connection itself lives in [`link`]. When it drops, the link reconnects,
//! resubscribes every channel and sends [`Outbound::Resync`] to every connection, which then
//! fills what it missed from the conversation's stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashSet;

use chat_protocol::live::{self, Audience, LiveEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

mod link;
mod resp;

pub use crate::conn_id::ConnId;

/// Something for one connection to act on.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A new message in one of the connection's conversations.
    Message(Arc<LiveMessage>),
    /// Consecutive messages of one conversation that arrived together, for every subscriber
    /// alike: shared by all of them, so the hub's work is one queue push per subscriber for the
    /// lot rather than one per message (a group's burst reaches 10,000 queues).
    Batch(Arc<[Arc<LiveMessage>]>),
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
    /// The envelope: a slice of `ws_frame`, no second copy.
    pub text: Utf8Bytes,
    /// The envelope as a complete WebSocket text frame. Frames from a server are not masked,
    /// so these bytes are the same for every recipient: built once here, each WebSocket session
    /// copies them into its write buffer instead of encoding the frame again.
    pub ws_frame: bytes::Bytes,
}

impl LiveMessage {
    pub fn new(topic: Arc<str>, seq: u64, envelope: &str) -> LiveMessage {
        let ws_frame = crate::transport::ws::text_frame(envelope);
        let text = ws_frame.slice(ws_frame.len() - envelope.len()..);
        let text = Utf8Bytes::try_from(text).expect("a slice of a str at its start");
        LiveMessage { topic, seq, text, ws_frame }
    }
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
    subscribers: Subscribers,
    confirmed: bool,
}

/// Subscribers per topic before the list becomes a map.
const MANY: usize = 16;

/// A topic's local subscribers, at most one entry per connection. Most topics are one user's
/// inbox with a connection or two: a short list. A topic that grows past [`MANY`] (a large
/// group, the broadcast topic, which holds every connection of the node) becomes a map by
/// connection, so leaving stays O(1): with a list, N connections dropping at once (a network
/// blip, a reconnect storm) cost O(N²) under the hub's lock — 361 million entries visited for
/// 19,000, 28 times that for a node of 100,000.
enum Subscribers {
    Few(Vec<Subscriber>),
    Many(HashMap<ConnId, Subscriber, foldhash::fast::RandomState>),
}

impl Subscribers {
    fn insert(&mut self, sub: Subscriber) {
        match self {
            Subscribers::Few(list) => {
                if let Some(same) = list.iter_mut().find(|s| s.conn == sub.conn) {
                    *same = sub;
                } else if list.len() < MANY {
                    list.push(sub);
                } else {
                    let mut map: HashMap<_, _, _> = list.drain(..).map(|s| (s.conn, s)).collect();
                    map.insert(sub.conn, sub);
                    *self = Subscribers::Many(map);
                }
            }
            Subscribers::Many(map) => {
                map.insert(sub.conn, sub);
            }
        }
    }

    fn remove(&mut self, conn: ConnId) {
        match self {
            Subscribers::Few(list) => {
                if let Some(at) = list.iter().position(|s| s.conn == conn) {
                    list.swap_remove(at);
                }
            }
            Subscribers::Many(map) => {
                map.remove(&conn);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Subscribers::Few(list) => list.is_empty(),
            Subscribers::Many(map) => map.is_empty(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Subscriber> {
        let (few, many) = match self {
            Subscribers::Few(list) => (Some(list.iter()), None),
            Subscribers::Many(map) => (None, Some(map.values())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
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
    pub fn start(topology: Arc<chat_protocol::topology::Topology>, metrics: Arc<Metrics>, node_id: String, shutdown: CancellationToken) -> Arc<Hub> {
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
        // Without its link the node would hold connections that never receive anything.
        crate::background::spawn_essential("pub/sub link", link::supervise(hub.clone(), topology, rx, shutdown));
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
                subscribers: Subscribers::Few(Vec::new()),
                confirmed: false,
            });
            t.subscribers.insert(sub);
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
        t.subscribers.remove(conn);
        if t.subscribers.is_empty() {
            let t = topics.remove(topic).expect("present");
            let _ = self.cmds.send(Cmd::Unsubscribe { name: t.name });
        }
    }

    /// Hands a batch of notifications (channel, payload: what the pub/sub connection had
    /// ready) to the local subscribers. Consecutive notifications of one channel reach each
    /// subscriber with one lock and one wake-up: under load a session then writes many frames
    /// per system call, and a lone notification is not delayed at all (a batch is only what
    /// had already arrived).
    fn dispatch(&self, batch: &[(&str, &[u8])]) {
        let mut rest = batch;
        while let Some(&(channel, _)) = rest.first() {
            let run = rest.iter().take_while(|(c, _)| *c == channel).count();
            self.dispatch_run(channel, &rest[..run]);
            rest = &rest[run..];
        }
    }

    fn dispatch_run(&self, channel: &str, msgs: &[(&str, &[u8])]) {
        let topics = self.topics.lock().unwrap();
        let Some(t) = topics.get(channel) else { return };
        let items = batched(msgs.iter().filter_map(|(_, payload)| self.parse(t, payload)));
        if items.is_empty() {
            return;
        }
        for s in t.subscribers.iter() {
            let admitted = items.iter().filter(|(reach, _)| reach.admits(s.conn));
            // A full mailbox ends its connection by itself (it resumes from its cursors).
            let sent = s.tx.send_all(admitted.map(|(_, item)| item.clone()));
            self.count_overflow(sent);
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
            LiveEvent::Message { seq, envelope } => Outbound::Message(Arc::new(LiveMessage::new(t.name.clone(), seq, envelope))),
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
                self.count_overflow(s.tx.try_send(item.clone()));
            }
        }
    }

    /// Counts a mailbox's first overflow by the bound it passed. The connection ends by itself
    /// (4009) and resumes from its cursors.
    fn count_overflow(&self, sent: Result<(), crate::mailbox::Full>) {
        use crate::mailbox::Full;
        match sent {
            Ok(()) | Err(Full::Already) => {}
            Err(Full::Frames) => Metrics::inc(&self.metrics.outbound_overflow_frames_total),
            Err(Full::Bytes) => Metrics::inc(&self.metrics.outbound_overflow_bytes_total),
        }
    }

    /// Tells every local connection that the node is shutting down.
    fn shut_down_all(&self) {
        self.each_subscriber(|s| s.tx.shut_down());
    }

    /// Redis became unreachable: every local connection closes with 1013, so that its client
    /// reconnects with backoff and resumes (here once Redis is back, or on another node)
    /// instead of sitting on a socket that receives nothing.
    pub fn backend_down(&self) {
        Metrics::inc(&self.metrics.redis_outages_total);
        self.each_subscriber(|s| s.tx.backend_down());
    }

    fn resync_all(&self) {
        self.each_subscriber(|s| self.count_overflow(s.tx.try_send(Outbound::Resync)));
    }

    /// Every subscription of every topic (a connection in several topics comes once per topic).
    fn each_subscriber(&self, f: impl Fn(&Subscriber)) {
        for t in self.topics.lock().unwrap().values() {
            t.subscribers.iter().for_each(&f);
        }
    }
}

/// Joins each run of messages for every subscriber into one [`Outbound::Batch`]; the rest
/// (events, messages for some connections only) stays as it is, in order.
fn batched(items: impl Iterator<Item = (Reach, Outbound)>) -> Vec<(Reach, Outbound)> {
    let mut out = Vec::new();
    let mut run: Vec<Arc<LiveMessage>> = Vec::new();
    let close = |run: &mut Vec<Arc<LiveMessage>>, out: &mut Vec<(Reach, Outbound)>| match run.len() {
        0 => {}
        1 => out.push((Reach::All, Outbound::Message(run.pop().expect("one")))),
        _ => out.push((Reach::All, Outbound::Batch(std::mem::take(run).into()))),
    };
    for item in items {
        match item {
            (Reach::All, Outbound::Message(m)) => run.push(m),
            other => {
                close(&mut run, &mut out);
                out.push(other);
            }
        }
    }
    close(&mut run, &mut out);
    out
}

impl Outbound {
    /// How many queue slots it takes: a batch counts as its messages, so a slow connection is
    /// found as soon as before.
    pub fn weight(&self) -> usize {
        match self {
            Outbound::Batch(b) => b.len(),
            _ => 1,
        }
    }

    /// What it weighs against the byte bound: the frames it will write (a batch is summed for
    /// each queue it enters, about a nanosecond per message, against ~190 ns of the node's CPU per
    /// delivery measured in docs/BENCHMARKS.md).
    pub fn bytes(&self) -> usize {
        match self {
            Outbound::Message(m) => m.ws_frame.len(),
            Outbound::Batch(b) => b.iter().map(|m| m.ws_frame.len()).sum(),
            Outbound::Event(frame) => frame.len(),
            Outbound::Kick(reason) => reason.len(),
            Outbound::Joined { group, .. } | Outbound::Left { group } => group.len(),
            Outbound::Bind(uid) => uid.len(),
            Outbound::Resync | Outbound::Heartbeat => 0,
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn sub(conn: ConnId) -> Subscriber {
        Subscriber { conn, tx: crate::mailbox::channel(1, usize::MAX).0 }
    }

    fn conns(s: &Subscribers) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = s.iter().map(|s| s.conn).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_topic_keeps_one_entry_per_connection_as_a_list_and_as_a_map() {
        let mut s = Subscribers::Few(Vec::new());
        for conn in 0..MANY as u64 {
            s.insert(sub(conn));
        }
        s.insert(sub(3));
        assert!(matches!(s, Subscribers::Few(_)));
        assert_eq!(conns(&s), (0..MANY as u64).collect::<Vec<_>>(), "joining twice is one entry");
        for conn in MANY as u64..100 {
            s.insert(sub(conn));
        }
        assert!(matches!(s, Subscribers::Many(_)), "a large topic becomes a map");
        s.insert(sub(50));
        for conn in (0..100).filter(|c| c % 3 == 0) {
            s.remove(conn);
        }
        s.remove(1000);
        assert_eq!(conns(&s), (0..100).filter(|c| c % 3 != 0).collect::<Vec<_>>());
        for conn in 0..100 {
            s.remove(conn);
        }
        assert!(s.is_empty());
    }

    #[test]
    fn messages_for_everyone_that_arrived_together_become_one_batch_in_order() {
        let msg = |seq| Outbound::Message(Arc::new(LiveMessage::new("t".into(), seq, "x")));
        let only = || Reach::Only(HashSet::from([7]));
        let items = vec![(Reach::All, msg(1)), (Reach::All, msg(2)), (Reach::All, msg(3)), (only(), msg(4)), (Reach::All, msg(5)), (Reach::All, Outbound::Resync), (Reach::All, msg(6)), (Reach::All, msg(7))];
        let out = batched(items.into_iter());
        let shape: Vec<String> = out
            .iter()
            .map(|(reach, item)| {
                let who = if matches!(reach, Reach::All) { "all" } else { "some" };
                match item {
                    Outbound::Batch(b) => format!("{who}:batch{:?}", b.iter().map(|m| m.seq).collect::<Vec<_>>()),
                    Outbound::Message(m) => format!("{who}:msg{}", m.seq),
                    _ => format!("{who}:other"),
                }
            })
            .collect();
        assert_eq!(shape, ["all:batch[1, 2, 3]", "some:msg4", "all:msg5", "all:other", "all:batch[6, 7]"]);
        assert_eq!(out[0].1.weight(), 3);
    }

    #[test]
    fn leaving_a_small_topic_keeps_the_others() {
        let mut s = Subscribers::Few(Vec::new());
        (1..=3).for_each(|c| s.insert(sub(c)));
        s.remove(1);
        assert_eq!(conns(&s), vec![2, 3]);
        s.remove(3);
        s.remove(2);
        assert!(s.is_empty());
    }
}
