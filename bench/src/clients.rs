//! `chat-bench clients`: one load-generator process holding many WebSocket connections.
//!
//! One process may hold at most ~20,000 open files here, so the orchestrator starts several of
//! these. Each connection binds its socket to one of several loopback source addresses
//! (127.0.0.2, 127.0.0.3, ...) before connecting, so the ~28k ephemeral ports of one source
//! address are not a limit. Sockets close with SO_LINGER 0 (a reset, no TIME_WAIT), which is
//! also how a "dropped" client looks to the server.
//!
//! Talks to the orchestrator over stdin/stdout, one JSON line per reply:
//! - on start it connects every user (bounded concurrency, retries) and prints `ready`;
//! - `stats` prints what was delivered since the last `stats` (count, latency histogram,
//!   sequence holes, group deliveries) and starts a new interval;
//! - `drop` drops every connection at once; all reconnect; prints how long until every one
//!   got its welcome frame again;
//! - `mark` / `check` read each user's inbox sequence from Redis to count messages lost after
//!   the mark (the reconnect storm's loss check);
//! - `quit` exits.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use memchr::memmem::Finder;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::util::{mono_ns, raise_nofile};

/// Which server the connections talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// chat-sidecar: `/ws?token=<HS256 JWT>`.
    Chat,
    /// the Node.js ws peer: `/?uid=<uid>&groups=<g>`.
    Peer,
    /// `chat-bench floor`, the minimal fan-out server: the peer's protocol.
    Floor,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Server address, host:port.
    #[arg(long)]
    pub addr: SocketAddr,
    /// User ids are <prefix><n> for n in first..first+count.
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub first: usize,
    #[arg(long)]
    pub count: usize,
    /// JWT secret (chat only).
    #[arg(long, default_value = "")]
    pub secret: String,
    /// Group every connection joins (peer only, until chat-sidecar has groups).
    #[arg(long, default_value = "")]
    pub group: String,
    /// Source addresses 127.0.0.2 .. 127.0.0.(1+src_ips), used round-robin.
    #[arg(long, default_value_t = 32)]
    pub src_ips: u32,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Redis URL and key namespace, for the loss check (`mark` / `check`).
    #[arg(long)]
    pub redis: Option<String>,
    #[arg(long, default_value = "chat")]
    pub ns: String,
    /// Do not send resume cursors when reconnecting (chat only; by default the client sends
    /// `cursors={"u:<uid>":<last seq seen>}` so delivery restarts right after it).
    #[arg(long)]
    pub no_resume: bool,
    /// Give up the initial connect phase after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub connect_timeout_s: u64,
}

type Ws = WebSocketStream<TcpStream>;

/// Where one connection stands in its user's inbox `u:<uid>`.
#[derive(Debug, Default)]
struct ConnState {
    /// Last sequence number seen (from a message or the welcome's cursor).
    last: Option<u64>,
    /// Sequence ranges (inclusive) that were missing while connected.
    holes: Vec<(u64, u64)>,
    /// Ranges jumped over by reconnecting without resume (the welcome cursor was ahead).
    skipped: Vec<(u64, u64)>,
    dups: u64,
    /// Inbox sequence read from Redis at `mark`.
    mark: u64,
}

/// One group message as this process saw it.
#[derive(Debug, Clone, Copy)]
struct GroupMsg {
    sent_ns: u64,
    count: u64,
    first_ns: u64,
    last_ns: u64,
}

struct Stats {
    /// End-to-end latency of inbox messages, microseconds.
    hist: Histogram<u64>,
    delivered: u64,
    first_ns: u64,
    last_ns: u64,
    group: HashMap<u64, GroupMsg>,
    /// `message` frames whose fields could not be found (the envelope changed shape).
    unparsed: u64,
    /// Frames of other types (presence events, pongs, ...).
    other: u64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds"),
            delivered: 0,
            first_ns: 0,
            last_ns: 0,
            group: HashMap::new(),
            unparsed: 0,
            other: 0,
        }
    }
}

/// Group messages with sequence numbers below this are counted without a lock (every scenario's
/// are): a 10,000-member burst is a million frames for these processes to count, on the same two
/// cores as the server they measure, and one mutex for all of them was the client's hot spot.
const GROUP_SLOTS: usize = 4096;

/// One group message's counters; `first_ns` starts at `u64::MAX`.
struct GroupSlot {
    sent_ns: AtomicU64,
    count: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

impl GroupSlot {
    fn new() -> GroupSlot {
        GroupSlot { sent_ns: AtomicU64::new(0), count: AtomicU64::new(0), first_ns: AtomicU64::new(u64::MAX), last_ns: AtomicU64::new(0) }
    }
}

struct Shared {
    args: ClientArgs,
    group_slots: Vec<GroupSlot>,
    conns: Vec<Mutex<ConnState>>,
    stats: Mutex<Stats>,
    /// Connections that currently have their welcome frame.
    live: AtomicUsize,
    /// Welcomes received since the last `drop`.
    welcomed: AtomicUsize,
    /// Connections that gave up after repeated failures.
    failed: AtomicUsize,
    /// Connections the server closed or that broke without being asked to.
    lost: AtomicU64,
    connect_errors: AtomicU64,
    last_error: Mutex<String>,
    epoch: watch::Sender<u64>,
    gate: Semaphore,
}

pub async fn main(args: ClientArgs) -> anyhow::Result<()> {
    let (soft, hard) = raise_nofile();
    if (args.count as u64) + 64 > soft {
        bail!("{} connections need more open files than this process may hold ({soft}, hard limit {hard})", args.count);
    }
    let (epoch, _) = watch::channel(0u64);
    let shared = Arc::new(Shared {
        group_slots: (0..GROUP_SLOTS).map(|_| GroupSlot::new()).collect(),
        conns: (0..args.count).map(|_| Mutex::new(ConnState::default())).collect(),
        stats: Mutex::new(Stats::new()),
        live: AtomicUsize::new(0),
        welcomed: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        lost: AtomicU64::new(0),
        connect_errors: AtomicU64::new(0),
        last_error: Mutex::new(String::new()),
        epoch,
        gate: Semaphore::new(args.concurrency.max(1)),
        args,
    });
    let started = mono_ns();
    for i in 0..shared.args.count {
        tokio::spawn(connection(shared.clone(), i));
    }
    let limit = Duration::from_secs(shared.args.connect_timeout_s);
    wait_all_welcomed(&shared, limit).await;
    let mut out = tokio::io::stdout();
    let ready = json!({
        "ready": true,
        "live": shared.live.load(Relaxed),
        "failed": shared.failed.load(Relaxed),
        "connect_errors": shared.connect_errors.load(Relaxed),
        "last_error": shared.last_error.lock().unwrap().clone(),
        "ms": (mono_ns() - started) as f64 / 1e6,
    });
    reply(&mut out, ready).await?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match line.trim() {
            "stats" => stats(&shared),
            "group" => group_stats(&shared),
            "drop" => storm(&shared).await,
            "mark" => mark(&shared).await.unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
            "check" => check(&shared).await.unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
            "quit" => break,
            other => json!({"error": format!("unknown command {other:?}")}),
        };
        reply(&mut out, answer).await?;
    }
    Ok(())
}

async fn reply(out: &mut tokio::io::Stdout, v: Value) -> anyhow::Result<()> {
    let mut line = v.to_string();
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

/// Waits until every connection that has not given up is welcomed (since the last drop).
async fn wait_all_welcomed(sh: &Shared, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let done = sh.welcomed.load(Relaxed) + sh.failed.load(Relaxed);
        if done >= sh.args.count {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn uid(sh: &Shared, i: usize) -> String {
    format!("{}{}", sh.args.prefix, sh.args.first + i)
}

fn source_addr(sh: &Shared, i: usize) -> Ipv4Addr {
    let n = sh.args.src_ips.max(1);
    // Spread over processes too: each starts at a different address.
    let k = ((sh.args.first + i) as u32) % n;
    Ipv4Addr::new(127, 0, 0, 2 + (k % 250) as u8)
}

fn url(sh: &Shared, i: usize) -> anyhow::Result<String> {
    let uid = uid(sh, i);
    let a = &sh.args;
    Ok(match a.kind {
        Kind::Chat => {
            let now = crate::util::unix_now();
            let claims = chat_protocol::Claims {
                sub: uid.clone(),
                exp: now + 24 * 3600,
                iat: Some(now),
                nbf: None,
                extra: Default::default(),
            };
            let token = chat_protocol::token::sign(&claims, a.secret.as_bytes())?;
            let last = sh.conns[i].lock().unwrap().last;
            match last {
                // {"u:<uid>":<seq>}, URL-encoded.
                Some(seq) if !a.no_resume => {
                    format!("ws://{}/ws?token={token}&device=bench&cursors=%7B%22u%3A{}%22%3A{seq}%7D", a.addr, claims_uid(&uid))
                }
                _ => format!("ws://{}/ws?token={token}&device=bench", a.addr),
            }
        }
        Kind::Peer | Kind::Floor if a.group.is_empty() => format!("ws://{}/?uid={uid}", a.addr),
        Kind::Peer | Kind::Floor => format!("ws://{}/?uid={uid}&groups={}", a.addr, a.group),
    })
}

/// User ids are ASCII letters, digits and `_ - . @ +`; only `+` and `@` need encoding in a URL.
fn claims_uid(uid: &str) -> String {
    uid.replace('+', "%2B").replace('@', "%40")
}

/// Connects, handshakes and waits for the welcome frame; returns the inbox cursor it gave.
async fn open(sh: &Shared, i: usize) -> anyhow::Result<(Ws, Option<u64>)> {
    let url = url(sh, i)?;
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source_addr(sh, i).into(), 0)).context("bind source address")?;
    let step = Duration::from_secs(20);
    let stream = tokio::time::timeout(step, sock.connect(sh.args.addr)).await.context("connect timed out")??;
    stream.set_nodelay(true)?;
    // Reset instead of FIN on close: no TIME_WAIT, and a drop looks like a lost network.
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(step, tokio_tungstenite::client_async_with_config(url, stream, Some(config)))
        .await
        .context("handshake timed out")??;
    let deadline = tokio::time::Instant::now() + step;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.context("no welcome frame")?;
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).context("non-JSON frame before welcome")?;
                if v["type"] == "welcome" {
                    let conv = format!("u:{}", uid(sh, i));
                    return Ok((ws, v["cursors"][&conv].as_u64()));
                }
                bail!("expected a welcome frame, got {t}");
            }
            Some(Ok(Message::Close(c))) => bail!("closed before welcome: {c:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("before welcome: {e}"),
            None => bail!("connection ended before welcome"),
        }
    }
}

/// One user's connection for the life of the process: connects, reads, reconnects when told
/// to (`drop`) or when the connection is lost.
async fn connection(sh: Arc<Shared>, i: usize) {
    let mut epoch = sh.epoch.subscribe();
    let mut failures = 0u32;
    loop {
        epoch.borrow_and_update();
        let opened = {
            let _permit = sh.gate.acquire().await.expect("never closed");
            open(&sh, i).await
        };
        let (mut ws, cursor) = match opened {
            Ok(x) => x,
            Err(e) => {
                failures += 1;
                sh.connect_errors.fetch_add(1, Relaxed);
                *sh.last_error.lock().unwrap() = format!("{e:#}");
                if failures >= 12 {
                    sh.failed.fetch_add(1, Relaxed);
                    return;
                }
                let backoff = Duration::from_millis(50u64 << failures.min(5));
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        failures = 0;
        if epoch.has_changed().unwrap_or(false) {
            // Told to drop while this handshake was under way: this welcome does not count.
            drop(ws);
            continue;
        }
        if let Some(c) = cursor {
            let mut st = sh.conns[i].lock().unwrap();
            match st.last {
                Some(last) if c > last => st.skipped.push((last + 1, c)),
                _ => {}
            }
            st.last = Some(st.last.map_or(c, |l| l.max(c)));
        }
        sh.live.fetch_add(1, Relaxed);
        sh.welcomed.fetch_add(1, Relaxed);
        // One wake-up registration for the connection's life, not one per frame.
        let changed = epoch.changed();
        tokio::pin!(changed);
        let dropped = loop {
            tokio::select! {
                biased;
                _ = &mut changed => break true,
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(t))) => on_text(&sh, i, &t),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break false,
                    Some(Ok(_)) => {}
                },
            }
        };
        sh.live.fetch_sub(1, Relaxed);
        drop(ws);
        if !dropped {
            sh.lost.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The fields of a message frame the benchmark needs, found without a full JSON parse (the
/// client processes share the CPU with the servers they measure).
struct Frame<'a> {
    conv: &'a str,
    seq: u64,
    t: Option<u64>,
}

/// The keys `parse_frame` looks for, each searcher built once: building a `str::find`
/// searcher per frame was a tenth of these processes' time in a burst.
static TYPE_MESSAGE: &str = r#"{"type":"message""#;
static CONV: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""conv":""#));
static SEQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""seq":"#));
static DATA: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""data":"#));
static T: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""t":"#));

/// What follows the first `key` in `s`. Every key is ASCII, so the cut is a char boundary.
fn after<'a>(s: &'a str, key: &Finder<'_>) -> Option<&'a str> {
    key.find(s.as_bytes()).map(|p| &s[p + key.needle().len()..])
}

fn leading_u64(s: &str) -> Option<u64> {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

fn parse_frame(t: &str) -> Option<Frame<'_>> {
    if !t.starts_with(TYPE_MESSAGE) {
        return None;
    }
    let conv = after(t, &CONV)?;
    let conv = &conv[..memchr::memchr(b'"', conv.as_bytes())?];
    let seq = leading_u64(after(t, &SEQ)?)?;
    let t = after(t, &DATA).and_then(|d| after(d, &T)).and_then(leading_u64);
    Some(Frame { conv, seq, t })
}

fn on_text(sh: &Shared, i: usize, text: &str) {
    let now = mono_ns();
    let Some(f) = parse_frame(text) else {
        let mut st = sh.stats.lock().unwrap();
        if text.starts_with(TYPE_MESSAGE) {
            st.unparsed += 1;
        } else {
            st.other += 1;
        }
        return;
    };
    if f.conv.starts_with("g:") {
        let sent = f.t.unwrap_or(now);
        if let Some(g) = sh.group_slots.get(f.seq as usize) {
            let _ = g.sent_ns.compare_exchange(0, sent, Relaxed, Relaxed);
            g.count.fetch_add(1, Relaxed);
            g.first_ns.fetch_min(now, Relaxed);
            g.last_ns.fetch_max(now, Relaxed);
            return;
        }
        let mut st = sh.stats.lock().unwrap();
        let g = st.group.entry(f.seq).or_insert(GroupMsg { sent_ns: sent, count: 0, first_ns: now, last_ns: now });
        g.count += 1;
        g.last_ns = g.last_ns.max(now);
        return;
    }
    {
        let mut c = sh.conns[i].lock().unwrap();
        match c.last {
            Some(last) if f.seq <= last => c.dups += 1,
            Some(last) if f.seq > last + 1 => c.holes.push((last + 1, f.seq - 1)),
            _ => {}
        }
        c.last = Some(c.last.map_or(f.seq, |l| l.max(f.seq)));
    }
    let mut st = sh.stats.lock().unwrap();
    st.delivered += 1;
    if st.first_ns == 0 {
        st.first_ns = now;
    }
    st.last_ns = now;
    if let Some(t) = f.t {
        let us = now.saturating_sub(t) / 1000;
        st.hist.saturating_record(us.max(1));
    }
}

/// What was delivered since the previous call; starts a new interval.
fn stats(sh: &Shared) -> Value {
    let st = std::mem::replace(&mut *sh.stats.lock().unwrap(), Stats::new());
    let hist: Vec<(u64, u64)> = st.hist.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
    let (mut holes, mut dups) = (0u64, 0u64);
    for c in &sh.conns {
        let c = c.lock().unwrap();
        holes += c.holes.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        dups += c.dups;
    }
    let mut group: Vec<Value> = st
        .group
        .iter()
        .map(|(seq, g)| json!([seq, g.sent_ns, g.count, g.first_ns, g.last_ns]))
        .collect();
    take_group_slots(sh, &mut group);
    json!({
        "delivered": st.delivered,
        "first_ns": st.first_ns,
        "last_ns": st.last_ns,
        "hist_us": hist,
        "unparsed": st.unparsed,
        "other": st.other,
        "group": group,
        "live": sh.live.load(Relaxed),
        "failed": sh.failed.load(Relaxed),
        "lost": sh.lost.load(Relaxed),
        "holes": holes,
        "dups": dups,
    })
}

/// The group counters alone, since the previous `stats` or `group`: scenario 2 asks every
/// 10 ms while a send is under way, and a full `stats` (a fresh histogram, every connection's
/// state) in this one thread would delay the very frames it is timing.
fn group_stats(sh: &Shared) -> Value {
    let mut group: Vec<Value> = {
        let mut st = sh.stats.lock().unwrap();
        st.group.drain().map(|(seq, g)| json!([seq, g.sent_ns, g.count, g.first_ns, g.last_ns])).collect()
    };
    take_group_slots(sh, &mut group);
    json!({ "group": group })
}

fn take_group_slots(sh: &Shared, group: &mut Vec<Value>) {
    for (seq, g) in sh.group_slots.iter().enumerate() {
        let count = g.count.swap(0, Relaxed);
        if count > 0 {
            // The send time is the same in every copy, so it is kept; the others restart.
            let (sent, first, last) = (g.sent_ns.load(Relaxed), g.first_ns.swap(u64::MAX, Relaxed), g.last_ns.swap(0, Relaxed));
            group.push(json!([seq, sent, count, first, last]));
        }
    }
}

/// Drops every connection at once and waits until all have their welcome frame again.
async fn storm(sh: &Shared) -> Value {
    let t0 = mono_ns();
    sh.welcomed.store(0, Relaxed);
    sh.epoch.send_modify(|e| *e += 1);
    let all = wait_all_welcomed(sh, Duration::from_secs(sh.args.connect_timeout_s)).await;
    json!({
        "storm_ms": (mono_ns() - t0) as f64 / 1e6,
        "all_back": all,
        "welcomed": sh.welcomed.load(Relaxed),
        "failed": sh.failed.load(Relaxed),
        "connect_errors": sh.connect_errors.load(Relaxed),
        "last_error": sh.last_error.lock().unwrap().clone(),
    })
}

/// Each user's inbox sequence in Redis, in connection order.
async fn inbox_seqs(sh: &Shared) -> anyhow::Result<Vec<u64>> {
    let url = sh.args.redis.as_deref().context("--redis is needed for the loss check")?;
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let keys = chat_protocol::Keys::new(sh.args.ns.clone());
    let mut out = Vec::with_capacity(sh.args.count);
    let all: Vec<usize> = (0..sh.args.count).collect();
    for chunk in all.chunks(1000) {
        let names: Vec<String> =
            chunk.iter().map(|&i| keys.seq(&chat_protocol::Conversation::Inbox(uid(sh, i)))).collect();
        let vals: Vec<Option<u64>> = redis::cmd("MGET").arg(&names).query_async(&mut con).await?;
        out.extend(vals.into_iter().map(|v| v.unwrap_or(0)));
    }
    Ok(out)
}

async fn mark(sh: &Shared) -> anyhow::Result<Value> {
    let seqs = inbox_seqs(sh).await?;
    for (c, s) in sh.conns.iter().zip(&seqs) {
        c.lock().unwrap().mark = *s;
    }
    Ok(json!({"marked": seqs.len()}))
}

/// Messages pushed after `mark` that a connection did not get, and those skipped earlier
/// by reconnecting without resume.
async fn check(sh: &Shared) -> anyhow::Result<Value> {
    let end = inbox_seqs(sh).await?;
    let (mut lost_after, mut skipped, mut pushed_after, mut users_missing) = (0u64, 0u64, 0u64, 0u64);
    let (mut holes, mut dups) = (0u64, 0u64);
    for (c, &end) in sh.conns.iter().zip(&end) {
        let c = c.lock().unwrap();
        let from = c.mark + 1;
        pushed_after += end.saturating_sub(c.mark);
        let overlap = |&(a, b): &(u64, u64)| {
            let (lo, hi) = (a.max(from), b.min(end));
            if hi >= lo { hi - lo + 1 } else { 0 }
        };
        let mut missing: u64 = c.holes.iter().chain(&c.skipped).map(overlap).sum();
        let seen = c.last.unwrap_or(0).max(c.mark);
        missing += end.saturating_sub(seen);
        if missing > 0 {
            users_missing += 1;
        }
        lost_after += missing;
        skipped += c.skipped.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        holes += c.holes.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        dups += c.dups;
    }
    Ok(json!({
        "pushed_after_mark": pushed_after,
        "lost_after_mark": lost_after,
        "users_missing": users_missing,
        "skipped_by_reconnect": skipped,
        "holes": holes,
        "dups": dups,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_envelope() {
        let t = r#"{"type":"message","id":"01J","conv":"u:b7","seq":42,"from":null,"to":"b7","ts":1,"data":{"t":123456}}"#;
        let f = parse_frame(t).unwrap();
        assert_eq!((f.conv, f.seq, f.t), ("u:b7", 42, Some(123456)));
        assert!(parse_frame(r#"{"type":"welcome"}"#).is_none());
        let no_t = r#"{"type":"message","id":"x","conv":"g:g1","seq":3,"from":"a","to":null,"ts":1,"data":{"text":"hi"}}"#;
        let f = parse_frame(no_t).unwrap();
        assert_eq!((f.conv, f.seq, f.t), ("g:g1", 3, None));
    }
}
