//! The node's pub/sub connection to Redis: opens it, (un)subscribes in merged batches, reads
//! the notifications and hands them to the hub, reconnects when it drops.
//!
//! The task that reads the socket parses the notifications where they lie in its buffer and
//! dispatches them itself: Redis → this task → each connection's mailbox. redis-rs's async
//! pub/sub, used before, reads in a driver task of its own and passes every message through an
//! unbounded channel to the consumer: one more task wake-up, often on the other core, and a few
//! allocations per message, on the hottest path of one-to-one delivery.
//!
//! Replies come back in the order the commands went out, so every batch of commands ends with
//! a PING, and its answer confirms the whole batch: the connections that joined a topic in it
//! may read their starting cursors, since Redis now delivers the topic. Every [`PING_EVERY`] the
//! link checks its oldest unanswered PING (and sends one if none is out): one unanswered for
//! [`PONG_WITHIN`] means the link is dead even though the socket has not said so, and the node
//! reconnects.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::resp::{self, Reply};
use super::{Cmd, Hub};
use crate::metrics::Metrics;

/// At most this many commands are merged into one batch (bounds one SUBSCRIBE's size).
const MAX_BATCH: usize = 4096;

/// At most this many notifications are dispatched as one batch.
const MAX_DISPATCH: usize = 4096;

/// The read buffer's size: notifications are small, and one read takes many.
const READ_BUF: usize = 64 << 10;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(5);
const PONG_WITHIN: Duration = Duration::from_secs(15);

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("Redis closed the pub/sub connection")]
    Closed,
    #[error(transparent)]
    Protocol(#[from] resp::ProtocolError),
    #[error("Redis answered the pub/sub connection with an error: {0}")]
    Refused(String),
    #[error("connecting took over {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("{0:?}: only redis:// and redis+unix:// addresses are supported (this build has no TLS)")]
    Unsupported(String),
}

/// A topic the next PONG confirms, and the joiner waiting for it (none for a resubscription).
struct Waiter {
    name: Arc<str>,
    id: u64,
    ack: Option<oneshot::Sender<()>>,
}

/// What one PING's answer settles.
struct Barrier {
    sent: Instant,
    confirms: Vec<Waiter>,
    /// Whether connections must then catch up from the streams (after a reconnect).
    resync: bool,
}

/// PINGs written and not yet answered, oldest first. The writer pushes before writing, the
/// reader pops on each answer.
#[derive(Default)]
struct Barriers(Mutex<VecDeque<Barrier>>);

impl Barriers {
    fn push(&self, confirms: Vec<Waiter>, resync: bool) {
        self.0.lock().unwrap().push_back(Barrier { sent: Instant::now(), confirms, resync });
    }

    fn pop(&self) -> Option<Barrier> {
        self.0.lock().unwrap().pop_front()
    }

    fn oldest(&self) -> Option<Instant> {
        self.0.lock().unwrap().front().map(|b| b.sent)
    }

    /// The joiners still waiting when the link is lost: the next link answers them.
    fn into_joiners(self) -> Vec<Waiter> {
        self.0.into_inner().unwrap().into_iter().flat_map(|b| b.confirms).filter(|w| w.ack.is_some()).collect()
    }
}

/// The (un)subscribe commands queued at one moment, merged: one UNSUBSCRIBE and one SUBSCRIBE
/// for all of them, so a node subscribes thousands of channels per Redis round trip instead of
/// one (a burst of connects would otherwise queue up behind one round trip each).
struct Batch {
    /// Channels whose last command in the batch was SUBSCRIBE.
    subscribe: Vec<Arc<str>>,
    /// Channels whose last command in the batch was UNSUBSCRIBE.
    unsubscribe: Vec<Arc<str>>,
    /// Joiners waiting for their topic's confirmation.
    joiners: Vec<Waiter>,
}

impl Batch {
    fn drain(first: Cmd, cmds: &mut mpsc::UnboundedReceiver<Cmd>) -> Batch {
        // The last command per channel wins: both are idempotent in Redis, and the topic map
        // already reflects the final state. Joiners of a topic dropped meanwhile are harmless
        // (`confirm` checks the topic id).
        let mut last: std::collections::HashMap<Arc<str>, bool> = Default::default();
        let mut order: Vec<Arc<str>> = Vec::new();
        let mut joiners = Vec::new();
        let mut take = |cmd: Cmd| {
            let (name, subscribe) = match cmd {
                Cmd::Subscribe { name, id, ack } => {
                    joiners.push(Waiter { name: name.clone(), id, ack: Some(ack) });
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
        Batch { subscribe, unsubscribe, joiners }
    }

    /// The commands, ending with the PING that confirms them.
    fn encode(&self, out: &mut Vec<u8>) {
        channels(out, b"UNSUBSCRIBE", self.unsubscribe.iter().map(|n| &**n));
        channels(out, b"SUBSCRIBE", self.subscribe.iter().map(|n| &**n));
        ping(out);
    }
}

/// `verb` (SUBSCRIBE, UNSUBSCRIBE) for `names`, at most [`MAX_BATCH`] channels per command;
/// nothing for no names.
fn channels<'a>(out: &mut Vec<u8>, verb: &[u8], names: impl Iterator<Item = &'a str>) {
    let names: Vec<&[u8]> = names.map(str::as_bytes).collect();
    for chunk in names.chunks(MAX_BATCH) {
        resp::command(out, std::iter::once(verb).chain(chunk.iter().copied()).collect::<Vec<_>>().into_iter());
    }
}

fn ping(out: &mut Vec<u8>) {
    resp::command(out, std::iter::once(&b"PING"[..]));
}

/// Owns the pub/sub connection: executes (un)subscribe commands in merged batches, reconnects.
pub(super) async fn supervise(
    hub: Arc<Hub>,
    topology: Arc<chat_protocol::topology::Topology>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    // Joiners whose confirmation a lost link never brought; the next link answers them.
    let mut joiners: Vec<Waiter> = Vec::new();
    loop {
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            // Found anew each time: after a failover the master is elsewhere.
            r = async {
                let info = crate::engine::resolve(&topology).await.map_err(|e| LinkError::Refused(e.to_string()))?;
                open(&info).await
            } => r,
        };
        let (reader, mut writer) = match opened {
            Ok(link) => link,
            Err(e) => {
                Metrics::inc(&hub.metrics.redis_errors_total);
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot open pub/sub connection to Redis");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };

        // Everything the node holds is subscribed again; the first PONG confirms it all, and
        // only then do connections catch up, so nothing published meanwhile is missed.
        let topics = hub.unconfirm_all();
        let mut out = Vec::new();
        channels(&mut out, b"SUBSCRIBE", topics.iter().map(|(n, _)| &**n));
        ping(&mut out);
        let mut confirms: Vec<Waiter> = topics.into_iter().map(|(name, id)| Waiter { name, id, ack: None }).collect();
        confirms.append(&mut joiners);
        let barriers = Arc::new(Barriers::default());
        barriers.push(confirms, connected_before);
        if connected_before {
            Metrics::inc(&hub.metrics.pubsub_reconnects_total);
        }
        connected_before = true;

        let mut reading = tokio::spawn(read(reader, hub.clone(), barriers.clone()));
        let mut health = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        let lost: String = 'link: {
            if let Err(e) = writer.write_all(&out).await {
                break 'link format!("resubscribing failed: {e}");
            }
            backoff = Duration::from_millis(100);
            loop {
                out.clear();
                tokio::select! {
                    _ = shutdown.cancelled() => { reading.abort(); return; }
                    r = &mut reading => break 'link match r {
                        Ok(Err(e)) => e.to_string(),
                        Ok(Ok(())) => unreachable!("the reader returns only on errors"),
                        Err(e) => format!("reader task ended: {e}"),
                    },
                    _ = health.tick() => match barriers.oldest() {
                        Some(sent) if sent.elapsed() > PONG_WITHIN => {
                            break 'link format!("Redis did not answer a PING within {PONG_WITHIN:?}");
                        }
                        Some(_) => {}
                        None => {
                            ping(&mut out);
                            barriers.push(Vec::new(), false);
                        }
                    },
                    cmd = cmds.recv() => {
                        let Some(first) = cmd else { reading.abort(); return; };
                        let batch = Batch::drain(first, &mut cmds);
                        batch.encode(&mut out);
                        barriers.push(batch.joiners, false);
                    }
                }
                if let Err(e) = writer.write_all(&out).await {
                    break 'link format!("writing to the pub/sub connection failed: {e}");
                }
            }
        };
        // Polling a finished JoinHandle again would panic; a running one must be gone before
        // its barriers are taken.
        if !reading.is_finished() {
            reading.abort();
            let _ = reading.await;
        }
        joiners = Arc::into_inner(barriers).map(Barriers::into_joiners).unwrap_or_default();
        Metrics::inc(&hub.metrics.redis_errors_total);
        tracing::warn!(reason = %lost, retry_in = ?backoff, "pub/sub connection to Redis lost; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

/// Connects and authenticates, as the URL says.
async fn open(info: &ConnectionInfo) -> Result<(Replies, Writer), LinkError> {
    let connect = async {
        Ok::<(Reader, Writer), std::io::Error>(match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                let (r, w) = tokio::net::UnixStream::connect(path).await?.into_split();
                (Box::new(r), Box::new(w))
            }
            other => return Err(std::io::Error::other(LinkError::Unsupported(format!("{other:?}")))),
        })
    };
    let (r, mut w) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| LinkError::ConnectTimeout)??;
    let mut replies = Replies { r, buf: BytesMut::with_capacity(READ_BUF) };
    let settings = info.redis_settings();
    if let Some(password) = settings.password() {
        let mut out = Vec::new();
        let args: Vec<&[u8]> =
            [Some(&b"AUTH"[..]), settings.username().map(str::as_bytes), Some(password.as_bytes())].into_iter().flatten().collect();
        resp::command(&mut out, args.into_iter());
        w.write_all(&out).await?;
        let (reply, n) = replies.next().await?;
        match reply {
            Reply::Simple(_) => {}
            Reply::Error(text) => return Err(LinkError::Refused(String::from_utf8_lossy(&replies.buf[text]).into_owned())),
            _ => return Err(LinkError::Refused("an unexpected answer to AUTH".into())),
        }
        replies.buf.advance(n);
    }
    Ok((replies, w))
}

/// The read side and its buffer of replies not yet handled.
struct Replies {
    r: Reader,
    buf: BytesMut,
}

impl Replies {
    /// Reads more from the socket.
    async fn fill(&mut self) -> Result<(), LinkError> {
        if self.buf.capacity() - self.buf.len() < READ_BUF / 4 {
            // Doubling: a large notification arriving in many reads is not copied once per read.
            self.buf.reserve(self.buf.len().max(READ_BUF));
        }
        match self.r.read_buf(&mut self.buf).await? {
            0 => Err(LinkError::Closed),
            _ => Ok(()),
        }
    }

    /// Waits for one whole reply at the front of the buffer, and says how long it is (for the
    /// handshake; the caller advances past it once done with its ranges).
    async fn next(&mut self) -> Result<(Reply, usize), LinkError> {
        loop {
            if let Some(reply) = resp::parse(&self.buf)? {
                return Ok(reply);
            }
            self.fill().await?;
        }
    }
}

/// Reads replies until the link fails: notifications go to the hub in batches (whatever one
/// read brought), PONGs settle their barriers.
async fn read(mut replies: Replies, hub: Arc<Hub>, barriers: Arc<Barriers>) -> Result<(), LinkError> {
    let mut batch: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(64);
    loop {
        let mut at = 0;
        while let Some((reply, n)) = resp::parse(&replies.buf[at..])? {
            let shift = |r: Range<usize>| r.start + at..r.end + at;
            match reply {
                Reply::Message { channel, payload } => batch.push((shift(channel), shift(payload))),
                Reply::Pong => {
                    // What came before the PONG is handed over first, as it arrived.
                    dispatch(&hub, &replies.buf, &mut batch);
                    if let Some(b) = barriers.pop() {
                        settle(&hub, b);
                    }
                }
                Reply::Error(text) => {
                    return Err(LinkError::Refused(String::from_utf8_lossy(&replies.buf[shift(text)]).into_owned()));
                }
                Reply::Simple(_) | Reply::Other => {}
            }
            at += n;
            if batch.len() >= MAX_DISPATCH {
                dispatch(&hub, &replies.buf, &mut batch);
            }
        }
        dispatch(&hub, &replies.buf, &mut batch);
        replies.buf.advance(at);
        replies.fill().await?;
    }
}

fn dispatch(hub: &Hub, buf: &[u8], batch: &mut Vec<(Range<usize>, Range<usize>)>) {
    if batch.is_empty() {
        return;
    }
    let notes: Vec<(&str, &[u8])> = batch
        .drain(..)
        .filter_map(|(channel, payload)| Some((std::str::from_utf8(&buf[channel]).ok()?, &buf[payload])))
        .collect();
    hub.dispatch(&notes);
}

fn settle(hub: &Hub, barrier: Barrier) {
    for w in barrier.confirms {
        hub.confirm(&w.name, w.id);
        if let Some(ack) = w.ack {
            let _ = ack.send(());
        }
    }
    if barrier.resync {
        tracing::info!("pub/sub reconnected; connections catch up from streams");
        hub.resync_all();
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
        assert_eq!(batch.joiners.len(), 3, "every joiner is answered once Redis confirms");
        assert!(rx.try_recv().is_err(), "the queue was drained");

        let mut out = Vec::new();
        batch.encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*3\r\n$11\r\nUNSUBSCRIBE\r\n$1\r\na\r\n$1\r\nd\r\n*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\nb\r\n$1\r\nc\r\n*1\r\n$4\r\nPING\r\n",
            "one command per verb, and the PING whose answer confirms them"
        );
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

    #[test]
    fn a_lost_link_hands_its_waiting_joiners_to_the_next() {
        let barriers = Barriers::default();
        let (ack, _rx) = oneshot::channel();
        barriers.push(vec![Waiter { name: "resub".into(), id: 1, ack: None }], true);
        barriers.push(Vec::new(), false);
        barriers.push(vec![Waiter { name: "joined".into(), id: 2, ack: Some(ack) }], false);
        let left: Vec<_> = barriers.into_joiners().into_iter().map(|w| w.name.to_string()).collect();
        assert_eq!(left, ["joined"], "resubscriptions are redone from the topic map anyway");
    }
}
