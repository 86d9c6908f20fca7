//! `chat-bench floor`: the least a fan-out server can do on this machine, measured next to ours
//! and the peer's in scenario 2.
//!
//! It speaks the peer's protocol (`/?uid=<uid>&groups=<g>`, no token, `m<seq> <envelope>`
//! forwarded as it is) and does nothing else: no presence, acks, cursors or heartbeats, no task
//! per connection on the send path. One thread; each notification's WebSocket frame is built
//! once, and every notification that has already arrived is concatenated into one buffer, which
//! is written to every member's socket in one loop, one `write` per socket. Only what a socket
//! does not take at once waits for that socket to become writable. What remains is the kernel's
//! cost of one write per recipient (and of the loopback receive it does on the sender's time):
//! the figure below which no server that writes each connection separately can go here. The
//! ratio of ours to it is what our own code costs.
//!
//! Settings (environment), like the peer's: FLOOR_LISTEN (default 127.0.0.1:0), FLOOR_REDIS_URL,
//! FLOOR_NAMESPACE. Prints "floor listening on HOST:PORT" once it accepts connections.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{bail, Context};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// One accepted connection: its socket, and what it has not taken yet.
struct Conn {
    stream: TcpStream,
    pending: RefCell<Vec<u8>>,
    wake: tokio::sync::Notify,
}

/// Channel name → members. Single-threaded: nothing here is shared between threads.
#[derive(Default)]
struct Channels {
    members: HashMap<String, Vec<Rc<Conn>>>,
}

pub fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve())
}

async fn serve() -> anyhow::Result<()> {
    let listen = std::env::var("FLOOR_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let url = std::env::var("FLOOR_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = std::env::var("FLOOR_NAMESPACE").unwrap_or_else(|_| "peer".into());
    let client = redis::Client::open(url.as_str()).context("FLOOR_REDIS_URL")?;
    let (sink, mut stream) = client.get_async_pubsub().await.context("cannot connect to Redis")?.split();
    let channels = Rc::new(RefCell::new(Channels::default()));
    let listener = TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    println!("floor listening on {}", listener.local_addr()?);

    let fan_out = {
        let channels = channels.clone();
        async move {
            // channel -> the frames of every notification that had arrived, in order.
            let mut batch: HashMap<String, Vec<u8>> = HashMap::new();
            while let Some(first) = stream.next().await {
                add_frame(&mut batch, &first);
                while let Some(Some(more)) = stream.next().now_or_never() {
                    add_frame(&mut batch, &more);
                }
                let ch = channels.borrow();
                for (name, frames) in batch.drain() {
                    for conn in ch.members.get(&name).into_iter().flatten() {
                        write_or_queue(conn, &frames);
                    }
                }
            }
            anyhow::Ok(())
        }
    };
    let accept = async {
        loop {
            let (sock, _) = listener.accept().await?;
            let _ = sock.set_nodelay(true);
            let (channels, sink, ns) = (channels.clone(), sink.clone(), ns.clone());
            tokio::task::spawn_local(async move {
                if let Err(e) = connection(sock, channels, sink, &ns).await {
                    eprintln!("floor: connection: {e:#}");
                }
            });
        }
        #[allow(unreachable_code)]
        anyhow::Ok(())
    };
    tokio::select! {
        r = fan_out => { r?; bail!("the Redis pub/sub connection closed") }
        r = accept => r,
    }
}

/// Appends the WebSocket text frame of one `m<seq> <envelope>` notification.
fn add_frame(batch: &mut HashMap<String, Vec<u8>>, msg: &redis::Msg) {
    let payload = msg.get_payload_bytes();
    if payload.first() != Some(&b'm') {
        return;
    }
    let Some(space) = payload.iter().position(|&b| b == b' ') else { return };
    let envelope = &payload[space + 1..];
    let buf = batch.entry(msg.get_channel_name().to_owned()).or_default();
    frame_header(buf, envelope.len());
    buf.extend_from_slice(envelope);
}

/// A server's (unmasked) text frame header.
fn frame_header(buf: &mut Vec<u8>, len: usize) {
    buf.push(0x81);
    if len < 126 {
        buf.push(len as u8);
    } else if len <= u16::MAX as usize {
        buf.push(126);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(127);
        buf.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

fn write_or_queue(conn: &Conn, bytes: &[u8]) {
    let mut pending = conn.pending.borrow_mut();
    if !pending.is_empty() {
        pending.extend_from_slice(bytes);
        return;
    }
    let n = match conn.stream.try_write(bytes) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => return, // the reader sees the connection end and removes it
    };
    if n < bytes.len() {
        pending.extend_from_slice(&bytes[n..]);
        conn.wake.notify_one();
    }
}

/// Handshake, subscriptions, welcome; then discards what the client sends (answering pings)
/// and flushes what its socket did not take at once, until the connection ends.
async fn connection(mut sock: TcpStream, channels: Rc<RefCell<Channels>>, mut sink: redis::aio::PubSubSink, ns: &str) -> anyhow::Result<()> {
    let (uid, groups) = handshake(&mut sock).await?;
    let mut names = vec![format!("{ns}:{{u:{uid}}}:live")];
    names.extend(groups.iter().map(|g| format!("{ns}:{{g:{g}}}:live")));
    let conn = Rc::new(Conn { stream: sock, pending: RefCell::new(Vec::new()), wake: tokio::sync::Notify::new() });
    for name in &names {
        let fresh = {
            let mut ch = channels.borrow_mut();
            let members = ch.members.entry(name.clone()).or_default();
            members.push(conn.clone());
            members.len() == 1
        };
        if fresh {
            sink.subscribe(name).await.context("SUBSCRIBE")?;
        }
    }
    let mut welcome = Vec::new();
    let text = format!(r#"{{"type":"welcome","uid":"{uid}"}}"#);
    frame_header(&mut welcome, text.len());
    welcome.extend_from_slice(text.as_bytes());
    write_or_queue(&conn, &welcome);

    let result = serve_connection(&conn).await;
    let mut ch = channels.borrow_mut();
    for name in &names {
        if let Some(members) = ch.members.get_mut(name) {
            members.retain(|c| !Rc::ptr_eq(c, &conn));
            if members.is_empty() {
                ch.members.remove(name);
                let mut sink = sink.clone();
                let name = name.clone();
                tokio::task::spawn_local(async move { sink.unsubscribe(name).await });
            }
        }
    }
    result
}

async fn serve_connection(conn: &Conn) -> anyhow::Result<()> {
    let mut input = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            r = conn.stream.readable() => {
                r?;
                match conn.stream.try_read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        input.extend_from_slice(&buf[..n]);
                        if answer_pings(conn, &mut input)? {
                            return Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return Ok(()),
                }
            }
            _ = conn.wake.notified() => {
                loop {
                    let done = {
                        let mut pending = conn.pending.borrow_mut();
                        match conn.stream.try_write(&pending) {
                            Ok(n) => { pending.drain(..n); pending.is_empty() }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                            Err(_) => return Ok(()),
                        }
                    };
                    if done {
                        break;
                    }
                    conn.stream.writable().await?;
                }
            }
        }
    }
}

/// Consumes the complete client frames in `input`; a ping gets a pong. True on a close frame.
fn answer_pings(conn: &Conn, input: &mut Vec<u8>) -> anyhow::Result<bool> {
    loop {
        if input.len() < 2 {
            return Ok(false);
        }
        let (op, short) = (input[0] & 0x0f, (input[1] & 0x7f) as usize);
        let (len, mut at) = match short {
            126 if input.len() >= 4 => (u16::from_be_bytes([input[2], input[3]]) as usize, 4),
            127 => bail!("client frame too large"),
            126 => return Ok(false),
            n => (n, 2),
        };
        let masked = input[1] & 0x80 != 0;
        let key_at = at;
        if masked {
            at += 4;
        }
        if input.len() < at + len {
            return Ok(false);
        }
        if op == 0x8 {
            return Ok(true);
        }
        let mut payload = input[at..at + len].to_vec();
        if masked {
            let key = [input[key_at], input[key_at + 1], input[key_at + 2], input[key_at + 3]];
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        input.drain(..at + len);
        if op == 0x1 && payload.windows(6).any(|w| w == b"\"ping\"") {
            let pong = br#"{"type":"pong"}"#;
            let mut frame = Vec::new();
            frame_header(&mut frame, pong.len());
            frame.extend_from_slice(pong);
            write_or_queue(conn, &frame);
        }
    }
}

/// Reads the HTTP upgrade request, answers 101; returns the uid and groups of its query.
async fn handshake(sock: &mut TcpStream) -> anyhow::Result<(String, Vec<String>)> {
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        if req.len() > 8192 {
            bail!("request head too large");
        }
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            bail!("closed during the handshake");
        }
        req.extend_from_slice(&buf[..n]);
    }
    let head = std::str::from_utf8(&req).context("request head is not UTF-8")?;
    let target = head.split_whitespace().nth(1).context("no request target")?;
    let key = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")).map(|(_, v)| v.trim()))
        .context("no Sec-WebSocket-Key")?;
    let (mut uid, mut groups) = (String::new(), Vec::new());
    for (k, v) in target.split_once('?').map(|(_, q)| q).unwrap_or("").split('&').filter_map(|p| p.split_once('=')) {
        match k {
            "uid" => uid = v.to_owned(),
            "groups" => groups = v.split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect(),
            _ => {}
        }
    }
    let valid = |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@+-".contains(&b));
    if !valid(&uid) || !groups.iter().all(|g| valid(g)) {
        bail!("bad uid or group in {target}");
    }
    let accept = derive_accept_key(key.as_bytes());
    let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    sock.write_all(resp.as_bytes()).await?;
    Ok((uid, groups))
}
