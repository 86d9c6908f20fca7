//! One authenticated WebSocket connection, from its first frame to its close.
//!
//! A single task owns the socket and selects over: frames from the client, items from the
//! hub (its bounded queue), the overflow signal, heartbeats and node shutdown. Delivery keeps
//! a cursor per conversation: a message at `cursor + 1` is sent, an older one is a duplicate
//! and dropped, a newer one means notifications were missed and the gap is read from the
//! conversation's stream first. So the client sees every message once, in order.
//!
//! Presence is removed *before* the close frame goes out, so a client that has seen its close
//! can rely on `chat_is_online()` already reflecting it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_protocol::scripts::ConnInfo;
use chat_protocol::token::{self, TokenError};
use chat_protocol::wire::{self, close, ClientFrame, ServerFrame};
use chat_protocol::{Claims, Conversation};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::hub::{ConnId, Outbound, Subscriber};
use crate::metrics::Metrics;
use crate::ratelimit::TokenBucket;
use crate::streams::{self, Cursor};

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How a session ends.
enum Exit {
    /// Send this close frame.
    Close(u16, Cow<'static, str>),
    /// The client closed; answer its close frame.
    ClientClosed,
    /// The transport is gone or stuck; just drop it.
    Gone,
}

fn close_with(code: u16, reason: impl Into<Cow<'static, str>>) -> Exit {
    Exit::Close(code, reason.into())
}

/// What the upgrade request carried.
pub struct Handshake {
    pub token: Option<String>,
    pub device: String,
}

/// Runs a connection to completion.
pub async fn run(app: Arc<App>, mut ws: Ws, hs: Handshake) {
    let claims = match authenticate(&app, &mut ws, hs.token).await {
        Ok(c) => c,
        Err(exit) => {
            Metrics::inc(&app.metrics.auth_failures_total);
            finish(&app, ws, exit).await;
            return;
        }
    };
    let conn = app.next_conn_id();
    let (tx, rx) = mpsc::channel(app.settings.outbound_queue);
    let overflow = Arc::new(Notify::new());
    let mut session = Session {
        conn,
        conn_name: format!("{}-{}", app.settings.node_id, conn),
        uid: Arc::from(claims.sub.as_str()),
        app: app.clone(),
        cursors: HashMap::new(),
        bucket: TokenBucket::new(app.settings.rate_limit, app.settings.rate_burst, Instant::now()),
        strikes: 0,
        last_heard: Instant::now(),
    };
    let exit = match session.start(&mut ws, &hs.device, Subscriber { conn, tx, overflow: overflow.clone() }).await {
        Ok(()) => {
            app.metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Metrics::inc(&app.metrics.connections_total);
            let exit = session.serve(&mut ws, rx, &overflow).await;
            app.metrics.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            exit
        }
        Err(exit) => exit,
    };
    session.leave().await;
    finish(&app, ws, exit).await;
}

/// Checks the token from the URL/header, or waits for an `auth` frame.
async fn authenticate(app: &App, ws: &mut Ws, token: Option<String>) -> Result<Claims, Exit> {
    let token = match token {
        Some(t) => t,
        None => {
            let wait = Duration::from_millis(app.settings.auth_timeout_ms);
            match tokio::time::timeout(wait, ws.next()).await {
                Err(_) => return Err(close_with(close::AUTH_TIMEOUT, "no token: pass ?token=, an Authorization: Bearer header, or an auth frame first")),
                Ok(Some(Ok(Message::Text(t)))) => match wire::parse_client(&t) {
                    Ok(ClientFrame::Auth { token }) => token,
                    _ => return Err(close_with(close::AUTH_TIMEOUT, "the first frame must be {\"type\":\"auth\",\"token\":\"...\"}")),
                },
                Ok(Some(Err(e))) => return Err(read_error(app, e)),
                Ok(_) => return Err(Exit::Gone),
            }
        }
    };
    let secret = app.settings.jwt_secret.as_bytes();
    token::verify(&token, secret, unix_now(), app.settings.token_leeway_secs).map_err(|e| match e {
        TokenError::Expired { .. } => close_with(close::TOKEN_EXPIRED, "token expired: get a new one from the app"),
        other => close_with(close::BAD_TOKEN, format!("invalid token: {other}")),
    })
}

struct Session {
    conn: ConnId,
    conn_name: String,
    uid: Arc<str>,
    app: Arc<App>,
    /// Live channel -> where this client stands in that conversation.
    cursors: HashMap<Arc<str>, Cursor>,
    bucket: TokenBucket,
    /// Frames refused in a row by the rate limit.
    strikes: u32,
    last_heard: Instant,
}

impl Session {
    /// Subscribes the user's inbox, registers presence, sends the welcome frame.
    async fn start(&mut self, ws: &mut Ws, device: &str, sub: Subscriber) -> Result<(), Exit> {
        let app = self.app.clone();
        let inbox = Conversation::Inbox(self.uid.to_string());
        let unavailable = || close_with(1013, "chat backend unavailable; try again later");
        let topic = app.hub.join(&app.keys.live(&inbox), sub).await.map_err(|_| unavailable())?;
        // Recorded before anything else can fail, so leave() always undoes the join.
        self.cursors.insert(topic.clone(), Cursor { stream_key: app.keys.stream(&inbox), seq: 0 });
        let mut redis = app.redis.clone();
        let cursor = Cursor::at_latest(&mut redis, &app.keys, &inbox).await.map_err(|e| {
            Metrics::inc(&app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "cannot read inbox sequence");
            unavailable()
        })?;
        let mut cursors_out = std::collections::BTreeMap::new();
        cursors_out.insert(inbox.to_string(), cursor.seq);
        self.cursors.insert(topic, cursor);
        let info = ConnInfo {
            id: self.conn_name.clone(),
            node: app.settings.node_id.clone(),
            device: device.to_owned(),
            transport: "websocket".into(),
            connected_at: unix_now_ms(),
        };
        app.presence.register(self.conn, self.uid.clone(), info).await.map_err(|e| {
            Metrics::inc(&app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "cannot register presence");
            unavailable()
        })?;
        let welcome = ServerFrame::Welcome {
            uid: self.uid.to_string(),
            conn: self.conn_name.clone(),
            node: app.settings.node_id.clone(),
            heartbeat_ms: app.settings.heartbeat_ms,
            max_frame_bytes: app.settings.max_frame_bytes,
            cursors: cursors_out,
        };
        self.write(ws, Message::text(welcome.to_json())).await?;
        self.flush(ws).await?;
        tracing::debug!(conn = %self.conn_name, uid = %self.uid, "connected");
        Ok(())
    }

    async fn serve(&mut self, ws: &mut Ws, mut rx: mpsc::Receiver<Outbound>, overflow: &Notify) -> Exit {
        let app = self.app.clone();
        let heartbeat = Duration::from_millis(app.settings.heartbeat_ms);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        loop {
            let step = tokio::select! {
                biased;
                _ = app.shutdown.cancelled() => Err(close_with(close::GOING_AWAY, "server shutting down; reconnect")),
                _ = overflow.notified() => {
                    Metrics::inc(&app.metrics.slow_consumer_disconnects_total);
                    Err(close_with(close::TOO_SLOW, "outbound queue overflow: reconnect and resume"))
                }
                frame = ws.next() => self.on_frame(ws, frame).await,
                item = rx.recv() => match item {
                    Some(item) => self.deliver(ws, item, &mut rx).await,
                    None => Err(close_with(close::INTERNAL, "internal error")),
                },
                _ = ticker.tick() => self.heartbeat(ws, heartbeat).await,
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    async fn on_frame(&mut self, ws: &mut Ws, frame: Option<Result<Message, WsError>>) -> Result<(), Exit> {
        let now = Instant::now();
        let msg = match frame {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(read_error(&self.app, e)),
            None => return Err(Exit::Gone),
        };
        self.last_heard = now;
        if let Message::Close(_) = msg {
            return Err(Exit::ClientClosed);
        }
        if matches!(msg, Message::Pong(_) | Message::Frame(_)) {
            return Ok(());
        }
        if !self.bucket.take(now) {
            Metrics::inc(&self.app.metrics.rate_limited_frames_total);
            self.strikes += 1;
            if self.strikes > self.app.settings.rate_burst.max(1) {
                return Err(close_with(close::POLICY, "rate limit exceeded"));
            }
            if self.strikes == 1 {
                let limit = self.app.settings.rate_limit;
                let err = ServerFrame::error(wire::error::RATE_LIMITED, format!("more than {limit} frames per second; frame dropped"));
                self.send_now(ws, err).await?;
            }
            return Ok(());
        }
        self.strikes = 0;
        match msg {
            Message::Text(text) => {
                let reply = match wire::parse_client(&text) {
                    Ok(ClientFrame::Ping { r#ref }) => ServerFrame::Pong { r#ref },
                    Ok(ClientFrame::Auth { .. }) => {
                        ServerFrame::error(wire::error::ALREADY_AUTHENTICATED, "this connection is already authenticated")
                    }
                    Err(e) => {
                        Metrics::inc(&self.app.metrics.bad_frames_total);
                        ServerFrame::error(e.code(), e.to_string())
                    }
                };
                self.send_now(ws, reply).await
            }
            Message::Binary(_) => {
                Metrics::inc(&self.app.metrics.bad_frames_total);
                let err = ServerFrame::error(wire::error::BINARY_UNSUPPORTED, "binary frames are not supported; send JSON text frames");
                self.send_now(ws, err).await
            }
            // Pings are answered by tungstenite itself on the next write or flush.
            _ => self.flush(ws).await,
        }
    }

    /// Writes `first` and whatever else is already queued, then flushes once.
    async fn deliver(&mut self, ws: &mut Ws, first: Outbound, rx: &mut mpsc::Receiver<Outbound>) -> Result<(), Exit> {
        self.handle(ws, first).await?;
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(item) => self.handle(ws, item).await?,
                Err(_) => break,
            }
        }
        self.flush(ws).await
    }

    async fn handle(&mut self, ws: &mut Ws, item: Outbound) -> Result<(), Exit> {
        match item {
            Outbound::Message(m) => {
                let Some(at) = self.cursors.get(&m.topic).map(|c| c.seq) else { return Ok(()) };
                if m.seq <= at {
                    return Ok(());
                }
                if m.seq > at + 1 {
                    self.catch_up(ws, m.topic.clone(), m.seq - 1).await?;
                    if self.cursors.get(&m.topic).is_some_and(|c| c.seq >= m.seq) {
                        return Ok(());
                    }
                }
                self.write(ws, Message::Text(m.text.clone())).await?;
                Metrics::inc(&self.app.metrics.messages_delivered_total);
                if let Some(c) = self.cursors.get_mut(&m.topic) {
                    c.seq = m.seq;
                }
                Ok(())
            }
            Outbound::Kick(reason) => {
                Metrics::inc(&self.app.metrics.kicks_total);
                let reason = if reason.is_empty() { "closed by the app".to_owned() } else { reason.to_string() };
                Err(close_with(close::KICKED, reason))
            }
            Outbound::Resync => {
                let topics: Vec<Arc<str>> = self.cursors.keys().cloned().collect();
                for topic in topics {
                    self.catch_up(ws, topic, u64::MAX).await?;
                }
                Ok(())
            }
        }
    }

    /// Sends what the stream holds after the cursor, up to sequence `upto`.
    async fn catch_up(&mut self, ws: &mut Ws, topic: Arc<str>, upto: u64) -> Result<(), Exit> {
        let app = self.app.clone();
        let mut redis = app.redis.clone();
        loop {
            let Some(cursor) = self.cursors.get(&topic) else { return Ok(()) };
            let (key, after) = (cursor.stream_key.clone(), cursor.seq);
            if after >= upto {
                return Ok(());
            }
            let batch = streams::read_after(&mut redis, &key, after, app.settings.replay_batch).await.map_err(|e| {
                Metrics::inc(&app.metrics.redis_errors_total);
                tracing::warn!(error = %e, "cannot read stream to fill a gap");
                close_with(1013, "chat backend unavailable; reconnect and resume")
            })?;
            if batch.is_empty() {
                return Ok(());
            }
            for (seq, envelope) in batch {
                if seq > upto {
                    return Ok(());
                }
                let expected = self.cursors[&topic].seq + 1;
                if seq > expected {
                    // Older than the stream's retention; later issues read these from MySQL.
                    app.metrics.messages_trimmed_total.fetch_add(seq - expected, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(conv = %key, from = expected, to = seq - 1, "messages already trimmed from the stream");
                }
                self.write(ws, Message::text(envelope)).await?;
                Metrics::inc(&app.metrics.messages_replayed_total);
                Metrics::inc(&app.metrics.messages_delivered_total);
                self.cursors.get_mut(&topic).expect("present").seq = seq;
            }
        }
    }

    async fn heartbeat(&mut self, ws: &mut Ws, every: Duration) -> Result<(), Exit> {
        if self.last_heard.elapsed() > every * 5 / 2 {
            return Err(close_with(close::TIMEOUT, "no frames from client; reconnect"));
        }
        self.write(ws, Message::Ping(Default::default())).await?;
        self.flush(ws).await
    }

    async fn send_now(&mut self, ws: &mut Ws, frame: ServerFrame) -> Result<(), Exit> {
        self.write(ws, Message::text(frame.to_json())).await?;
        self.flush(ws).await
    }

    async fn write(&mut self, ws: &mut Ws, msg: Message) -> Result<(), Exit> {
        let limit = Duration::from_millis(self.app.settings.write_timeout_ms);
        self.io(tokio::time::timeout(limit, ws.feed(msg)).await)
    }

    async fn flush(&mut self, ws: &mut Ws) -> Result<(), Exit> {
        let limit = Duration::from_millis(self.app.settings.write_timeout_ms);
        self.io(tokio::time::timeout(limit, ws.flush()).await)
    }

    fn io(&self, r: Result<Result<(), WsError>, tokio::time::error::Elapsed>) -> Result<(), Exit> {
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::Gone),
            Err(_) => {
                Metrics::inc(&self.app.metrics.slow_consumer_disconnects_total);
                tracing::info!(conn = %self.conn_name, "write timed out; dropping slow client");
                Err(Exit::Gone)
            }
        }
    }

    /// Stops delivery and removes presence.
    async fn leave(&mut self) {
        for topic in self.cursors.keys() {
            self.app.hub.leave(topic, self.conn);
        }
        self.app.presence.unregister(self.conn).await;
        tracing::debug!(conn = %self.conn_name, uid = %self.uid, "disconnected");
    }
}

fn read_error(app: &App, e: WsError) -> Exit {
    match e {
        WsError::Capacity(_) => {
            Metrics::inc(&app.metrics.oversized_frames_total);
            close_with(close::TOO_BIG, format!("frame exceeds {} bytes", app.settings.max_frame_bytes))
        }
        WsError::Utf8(_) => {
            Metrics::inc(&app.metrics.invalid_utf8_total);
            close_with(close::INVALID_UTF8, "text frame is not valid UTF-8")
        }
        WsError::Protocol(p) => close_with(1002, format!("protocol error: {p}")),
        _ => Exit::Gone,
    }
}

/// Sends the close frame (or answers the client's), then waits briefly for the handshake.
async fn finish(app: &App, mut ws: Ws, exit: Exit) {
    let frame = match exit {
        Exit::Gone => return,
        Exit::ClientClosed => None,
        Exit::Close(code, reason) => Some(CloseFrame { code: code.into(), reason: truncate(reason).into() }),
    };
    let limit = Duration::from_millis(app.settings.write_timeout_ms.min(2000));
    let _ = tokio::time::timeout(limit, async {
        if ws.close(frame).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Close reasons are limited to 123 bytes by RFC 6455.
fn truncate(reason: Cow<'static, str>) -> String {
    let mut s = reason.into_owned();
    if s.len() > 123 {
        let mut end = 123;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
