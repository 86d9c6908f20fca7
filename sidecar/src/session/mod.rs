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
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_protocol::scripts::{self, ConnInfo, Push};
use chat_protocol::token::{self, TokenError};
use chat_protocol::wire::{self, close, ClientFrame, Cursors, ServerFrame, Target};
use chat_protocol::{ids, Claims, Conversation, MessageId};
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

/// This connection's queue of things from the hub.
type Inbox = mpsc::Receiver<Outbound>;

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
    /// Resume cursors from the URL (`?cursors=`); an auth frame may bring them instead.
    pub cursors: Option<Cursors>,
    /// `?ack=client`: the client acknowledges with `ack` frames; otherwise a message counts as
    /// acknowledged once written to the socket.
    pub client_acks: bool,
}

/// Runs a connection to completion.
pub async fn run(app: Arc<App>, mut ws: Ws, mut hs: Handshake) {
    let claims = match authenticate(&app, &mut ws, hs.token.take(), &mut hs.cursors).await {
        Ok(c) => c,
        Err(exit) => {
            Metrics::inc(&app.metrics.auth_failures_total);
            finish(&app, ws, exit).await;
            return;
        }
    };
    let conn = app.next_conn_id();
    let (tx, mut rx) = mpsc::channel(app.settings.outbound_queue);
    let overflow = Arc::new(Notify::new());
    let mut session = Session {
        sub: Subscriber { conn, tx, overflow: overflow.clone() },
        extra_topics: Vec::new(),
        conn,
        conn_name: format!("{}-{}", app.settings.node_id, conn),
        uid: Arc::from(claims.sub.as_str()),
        app: app.clone(),
        cursors: HashMap::new(),
        bucket: TokenBucket::new(app.settings.rate_limit, app.settings.rate_burst, Instant::now()),
        strikes: 0,
        last_heard: Instant::now(),
        client_acks: hs.client_acks,
        acks: HashMap::new(),
        stale: HashSet::new(),
    };
    let exit = match session.start(&mut ws, &mut rx, &hs.device, hs.cursors.take().unwrap_or_default()).await {
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
async fn authenticate(app: &App, ws: &mut Ws, token: Option<String>, cursors: &mut Option<Cursors>) -> Result<Claims, Exit> {
    let token = match token {
        Some(t) => t,
        None => {
            let wait = Duration::from_millis(app.settings.auth_timeout_ms);
            match tokio::time::timeout(wait, ws.next()).await {
                Err(_) => return Err(close_with(close::AUTH_TIMEOUT, "no token: pass ?token=, an Authorization: Bearer header, or an auth frame first")),
                Ok(Some(Ok(Message::Text(t)))) => match wire::parse_client(&t) {
                    Ok(ClientFrame::Auth { token, cursors: from_frame }) => {
                        if from_frame.is_some() {
                            *cursors = from_frame;
                        }
                        token
                    }
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
    client_acks: bool,
    /// Acknowledged positions not yet written to Redis: conversation id -> seq.
    acks: HashMap<String, u64>,
    /// Conversations whose live notifications were dropped during a replay; their streams
    /// are read again before anything else is delivered.
    stale: HashSet<Arc<str>>,
    /// This connection's mailbox, to join more conversations later (groups joined live).
    sub: Subscriber,
    /// Channels joined that are not conversations (broadcast).
    extra_topics: Vec<Arc<str>>,
}

impl Session {
    /// Subscribes the user's conversations, registers presence, sends the welcome frame, then
    /// replays everything after each starting cursor.
    async fn start(&mut self, ws: &mut Ws, rx: &mut Inbox, device: &str, requested: Cursors) -> Result<(), Exit> {
        let app = self.app.clone();
        let unavailable = |what: &str, e: &dyn std::fmt::Display| backend_down(&app, what, e);
        let mut redis = app.redis.clone();
        let (acked, groups): (HashMap<String, u64>, HashMap<String, u64>) = redis::pipe()
            .cmd("HGETALL")
            .arg(app.keys.acked(&self.uid))
            .cmd("HGETALL")
            .arg(app.keys.groups(&self.uid))
            .query_async(&mut redis)
            .await
            .map_err(|e| unavailable("cannot read acknowledged positions and groups", &e))?;
        let broadcast = app.hub.join(&app.keys.broadcast(), self.sub.clone()).await.map_err(|e| unavailable("subscribe failed", &e))?;
        self.extra_topics.push(broadcast);
        // The inbox, then every group; a member never starts before the point they joined.
        let mut convs = vec![(Conversation::Inbox(self.uid.to_string()), 0)];
        convs.extend(groups.into_iter().filter_map(|(g, joined)| Some((Conversation::group(&g).ok()?, joined))));
        let mut starts = Cursors::new();
        for (conv, floor) in convs {
            let conv_id = conv.to_string();
            let topic = app.hub.join(&app.keys.live(&conv), self.sub.clone()).await.map_err(|e| unavailable("subscribe failed", &e))?;
            // Recorded before anything else can fail, so leave() always undoes the join.
            self.cursors.insert(topic.clone(), Cursor::new(&app.keys, conv));
            let latest = Cursor::latest(&mut redis, &app.keys, &self.cursors[&topic].conv)
                .await
                .map_err(|e| unavailable("cannot read a conversation's sequence", &e))?;
            let wanted = requested.get(&conv_id).or(acked.get(&conv_id)).copied().unwrap_or(0);
            let start = wanted.max(floor).min(latest);
            self.cursors.get_mut(&topic).expect("just inserted").seq = start;
            starts.insert(conv_id, start);
        }
        let info = ConnInfo {
            id: self.conn_name.clone(),
            node: app.settings.node_id.clone(),
            device: device.to_owned(),
            transport: "websocket".into(),
            connected_at: unix_now_ms(),
        };
        app.presence
            .register(self.conn, self.uid.clone(), info)
            .await
            .map_err(|e| unavailable("cannot register presence", &e))?;
        let welcome = ServerFrame::Welcome {
            uid: self.uid.to_string(),
            conn: self.conn_name.clone(),
            node: app.settings.node_id.clone(),
            heartbeat_ms: app.settings.heartbeat_ms,
            max_frame_bytes: app.settings.max_frame_bytes,
            cursors: starts.clone(),
        };
        self.write(ws, Message::text(welcome.to_json())).await?;
        for conv in requested.keys().filter(|c| !starts.contains_key(*c)) {
            let e = ServerFrame::error(wire::error::FORBIDDEN, format!("cursor for {conv:?} ignored: not a conversation of this user"));
            self.write(ws, Message::text(e.to_json())).await?;
        }
        self.stale.extend(self.cursors.keys().cloned());
        self.settle(ws, rx).await?;
        self.flush(ws).await?;
        tracing::debug!(conn = %self.conn_name, uid = %self.uid, ?starts, "connected");
        Ok(())
    }

    async fn serve(&mut self, ws: &mut Ws, mut rx: Inbox, overflow: &Notify) -> Exit {
        let app = self.app.clone();
        let heartbeat = Duration::from_millis(app.settings.heartbeat_ms);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        let ack_every = Duration::from_millis(250);
        let mut ack_ticker = tokio::time::interval_at(tokio::time::Instant::now() + ack_every, ack_every);
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
                _ = ack_ticker.tick() => { self.flush_acks().await; Ok(()) }
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
                    Ok(ClientFrame::Ping { r#ref }) => Some(ServerFrame::Pong { r#ref }),
                    Ok(ClientFrame::Auth { .. }) => {
                        Some(ServerFrame::error(wire::error::ALREADY_AUTHENTICATED, "this connection is already authenticated"))
                    }
                    Ok(ClientFrame::Ack { conv, seq }) => self.on_ack(conv, seq),
                    Ok(ClientFrame::Read { conv, seq }) => self.on_read(conv, seq).await,
                    Ok(ClientFrame::Send { target, data, r#ref }) => Some(self.on_send(target, data.get(), r#ref).await),
                    Ok(ClientFrame::Typing { target }) => self.on_typing(target).await,
                    Ok(ClientFrame::Signal { group, to, data }) => self.on_signal(&group, &to, data.get()).await,
                    Err(e) => {
                        Metrics::inc(&self.app.metrics.bad_frames_total);
                        Some(ServerFrame::error(e.code(), e.to_string()))
                    }
                };
                match reply {
                    Some(frame) => self.send_now(ws, frame).await,
                    None => Ok(()),
                }
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

    /// The cursor of conversation `conv`, if this connection holds it.
    fn cursor_of(&self, conv: &str) -> Option<&Cursor> {
        self.cursors.values().find(|c| c.conv_id == conv)
    }

    fn forbidden(conv: &str) -> ServerFrame {
        ServerFrame::error(wire::error::FORBIDDEN, format!("{conv:?} is not a conversation of this user"))
    }

    fn on_ack(&mut self, conv: String, seq: u64) -> Option<ServerFrame> {
        let Some(cursor) = self.cursor_of(&conv) else { return Some(Self::forbidden(&conv)) };
        // A device cannot acknowledge what it was never sent.
        let seq = seq.min(cursor.seq);
        let slot = self.acks.entry(conv).or_insert(0);
        *slot = (*slot).max(seq);
        None
    }

    async fn on_read(&mut self, conv: String, seq: u64) -> Option<ServerFrame> {
        let Some(cursor) = self.cursor_of(&conv) else { return Some(Self::forbidden(&conv)) };
        let (conversation, seq) = (cursor.conv.clone(), seq.min(cursor.seq));
        let r: redis::RedisResult<u64> =
            scripts::read(&self.app.keys, &self.uid, &conversation, seq).invoke_async(&mut self.app.redis.clone()).await;
        match r {
            Ok(_) => None,
            Err(e) => {
                Metrics::inc(&self.app.metrics.redis_errors_total);
                tracing::warn!(error = %e, "cannot record read state");
                Some(ServerFrame::error(wire::error::UNAVAILABLE, "read state not recorded; send it again"))
            }
        }
    }

    async fn on_send(&mut self, target: Target, data: &str, r#ref: Option<serde_json::Value>) -> ServerFrame {
        let refuse = |code: &str, message: String, r#ref| ServerFrame::Error { code: code.to_owned(), message, r#ref };
        if !self.app.settings.client_send {
            return refuse(wire::error::SEND_DISABLED, "clients may not send on this node; the app sends through chat_push()".into(), r#ref);
        }
        let (targets, to, own_conv) = match &target {
            Target::User(to) => {
                if let Err(e) = ids::validate("recipient", to) {
                    return refuse(wire::error::BAD_FRAME, e.to_string(), r#ref);
                }
                (scripts::direct_targets(to, Some(&self.uid)), Some(to.as_str()), format!("u:{}", self.uid))
            }
            Target::Group(group) => {
                let Ok(conv) = Conversation::group(group) else {
                    return refuse(wire::error::BAD_FRAME, format!("bad group name {group:?}"), r#ref);
                };
                match self.is_member(group, &self.uid.clone()).await {
                    Ok(true) => {}
                    Ok(false) => return refuse(wire::error::FORBIDDEN, format!("not a member of group {group:?}"), r#ref),
                    Err(e) => return e.with_ref(r#ref),
                }
                let id = conv.to_string();
                (vec![conv], None, id)
            }
        };
        let id = MessageId::generate();
        let push = Push { id: &id, from: Some(&self.uid), to, data_json: data, targets: &targets, retention: self.app.settings.retention };
        let seqs: redis::RedisResult<Vec<u64>> = scripts::push(&self.app.keys, &push).invoke_async(&mut self.app.redis.clone()).await;
        match seqs {
            Ok(seqs) => {
                Metrics::inc(&self.app.metrics.client_sends_total);
                // The sender's own copy (or the group's only copy) is the last target.
                ServerFrame::Sent { r#ref, id: id.to_string(), conv: own_conv, seq: *seqs.last().unwrap_or(&0) }
            }
            Err(e) => {
                Metrics::inc(&self.app.metrics.redis_errors_total);
                tracing::warn!(error = %e, "client send failed");
                refuse(wire::error::UNAVAILABLE, "not sent: chat backend unavailable; retry".into(), r#ref)
            }
        }
    }

    /// Membership as Redis has it now (not as this session last heard it).
    async fn is_member(&self, group: &str, uid: &str) -> Result<bool, ServerFrame> {
        let r: redis::RedisResult<bool> =
            redis::cmd("SISMEMBER").arg(self.app.keys.members(group)).arg(uid).query_async(&mut self.app.redis.clone()).await;
        r.map_err(|e| {
            Metrics::inc(&self.app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "cannot check group membership");
            ServerFrame::error(wire::error::UNAVAILABLE, "chat backend unavailable; retry")
        })
    }

    async fn publish(&self, channel: String, payload: String) -> Option<ServerFrame> {
        let r: redis::RedisResult<()> = redis::cmd("PUBLISH").arg(channel).arg(payload).query_async(&mut self.app.redis.clone()).await;
        r.err().map(|e| {
            Metrics::inc(&self.app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "publish failed");
            ServerFrame::error(wire::error::UNAVAILABLE, "chat backend unavailable; retry")
        })
    }

    /// Typing indicators: relayed live to the user or group, never stored.
    async fn on_typing(&mut self, target: Target) -> Option<ServerFrame> {
        let uid = self.uid.clone();
        match target {
            Target::User(to) => {
                if let Err(e) = ids::validate("recipient", &to) {
                    return Some(ServerFrame::error(wire::error::BAD_FRAME, e.to_string()));
                }
                let channel = self.app.keys.live(&Conversation::Inbox(to.clone()));
                self.publish(channel, format!(r#"e{{"type":"typing","from":"{uid}","to":"{to}"}}"#)).await
            }
            Target::Group(group) => {
                let conv = format!("g:{group}");
                if self.cursor_of(&conv).is_none() {
                    return Some(Self::forbidden(&conv));
                }
                let channel = self.app.keys.live(&Conversation::Group(group.clone()));
                self.publish(channel, format!(r#"e{{"type":"typing","from":"{uid}","group":"{group}"}}"#)).await
            }
        }
    }

    /// WebRTC signalling between two members of a group, relayed to the target's devices.
    async fn on_signal(&mut self, group: &str, to: &str, data: &str) -> Option<ServerFrame> {
        let conv = format!("g:{group}");
        if self.cursor_of(&conv).is_none() {
            return Some(Self::forbidden(&conv));
        }
        if let Err(e) = ids::validate("recipient", to) {
            return Some(ServerFrame::error(wire::error::BAD_FRAME, e.to_string()));
        }
        match self.is_member(group, to).await {
            Ok(true) => {}
            Ok(false) => return Some(ServerFrame::error(wire::error::FORBIDDEN, format!("{to:?} is not a member of group {group:?}"))),
            Err(frame) => return Some(frame),
        }
        let uid = self.uid.clone();
        let channel = self.app.keys.live(&Conversation::Inbox(to.to_owned()));
        self.publish(channel, format!(r#"e{{"type":"signal","group":"{group}","from":"{uid}","data":{data}}}"#)).await
    }

    /// Writes pending acknowledgements to Redis (coalesced: at most every 250 ms).
    async fn flush_acks(&mut self) {
        if self.acks.is_empty() {
            return;
        }
        let acks: Vec<(String, u64)> = self.acks.drain().collect();
        let r: redis::RedisResult<()> = scripts::ack(&self.app.keys, &self.uid, &acks).invoke_async(&mut self.app.redis.clone()).await;
        if let Err(e) = r {
            // Not fatal: a later ack covers these, at worst a device gets them again.
            Metrics::inc(&self.app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "cannot record acknowledgements");
        }
    }

    /// In automatic mode a write counts as the acknowledgement.
    fn auto_ack(&mut self, topic: &Arc<str>) {
        if !self.client_acks {
            if let Some(c) = self.cursors.get(topic) {
                self.acks.insert(c.conv_id.clone(), c.seq);
            }
        }
    }

    /// Writes `first` and whatever else is already queued, then flushes once.
    async fn deliver(&mut self, ws: &mut Ws, first: Outbound, rx: &mut Inbox) -> Result<(), Exit> {
        self.handle(ws, first, rx).await?;
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(item) => self.handle(ws, item, rx).await?,
                Err(_) => break,
            }
        }
        self.settle(ws, rx).await?;
        self.flush(ws).await
    }

    /// The user joined `group` (at its sequence `seq`) while connected: receive it from there.
    async fn joined(&mut self, group: &str, seq: u64) -> Result<(), Exit> {
        let Ok(conv) = Conversation::group(group) else { return Ok(()) };
        let channel = self.app.keys.live(&conv);
        if self.cursors.contains_key(channel.as_str()) {
            return Ok(());
        }
        let topic = self.app.hub.join(&channel, self.sub.clone()).await.map_err(|e| backend_down(&self.app, "cannot subscribe a joined group", &e))?;
        let mut cursor = Cursor::new(&self.app.keys, conv);
        cursor.seq = seq;
        self.cursors.insert(topic.clone(), cursor);
        self.stale.insert(topic);
        Ok(())
    }

    /// The user left `group`: nothing more of it reaches this connection.
    fn left(&mut self, group: &str) {
        let Ok(conv) = Conversation::group(group) else { return };
        let channel = self.app.keys.live(&conv);
        if let Some((topic, _)) = self.cursors.remove_entry(channel.as_str()) {
            self.app.hub.leave(&topic, self.conn);
            self.stale.remove(&topic);
        }
    }

    fn kicked(&self, reason: &str) -> Exit {
        Metrics::inc(&self.app.metrics.kicks_total);
        let reason = if reason.is_empty() { "closed by the app".to_owned() } else { reason.to_owned() };
        close_with(close::KICKED, reason)
    }

    /// Reads the streams of stale conversations until none is left.
    async fn settle(&mut self, ws: &mut Ws, rx: &mut Inbox) -> Result<(), Exit> {
        while let Some(topic) = self.stale.iter().next().cloned() {
            self.stale.remove(&topic);
            self.catch_up(ws, topic, u64::MAX, rx).await?;
        }
        Ok(())
    }

    /// During a replay: keeps the queue from overflowing. Messages are dropped (the replay
    /// or a later stream read covers them), events pass, a kick ends the session.
    async fn drain(&mut self, ws: &mut Ws, rx: &mut Inbox) -> Result<(), Exit> {
        while let Ok(item) = rx.try_recv() {
            match item {
                Outbound::Message(m) => {
                    if self.cursors.get(&m.topic).is_some_and(|c| m.seq > c.seq) {
                        self.stale.insert(m.topic.clone());
                    }
                }
                Outbound::Resync => self.stale.extend(self.cursors.keys().cloned()),
                Outbound::Event(frame) => self.write(ws, Message::Text(frame)).await?,
                Outbound::Kick(reason) => return Err(self.kicked(&reason)),
                Outbound::Joined { group, seq } => self.joined(&group, seq).await?,
                Outbound::Left { group } => self.left(&group),
            }
        }
        Ok(())
    }

    async fn handle(&mut self, ws: &mut Ws, item: Outbound, rx: &mut Inbox) -> Result<(), Exit> {
        match item {
            Outbound::Message(m) => {
                let Some(at) = self.cursors.get(&m.topic).map(|c| c.seq) else { return Ok(()) };
                if m.seq <= at {
                    return Ok(());
                }
                if m.seq > at + 1 {
                    self.catch_up(ws, m.topic.clone(), m.seq - 1, rx).await?;
                    if self.cursors.get(&m.topic).is_some_and(|c| c.seq >= m.seq) {
                        return Ok(());
                    }
                }
                self.write(ws, Message::Text(m.text.clone())).await?;
                Metrics::inc(&self.app.metrics.messages_delivered_total);
                if let Some(c) = self.cursors.get_mut(&m.topic) {
                    c.seq = m.seq;
                }
                self.auto_ack(&m.topic);
                Ok(())
            }
            Outbound::Event(frame) => self.write(ws, Message::Text(frame)).await,
            Outbound::Kick(reason) => Err(self.kicked(&reason)),
            Outbound::Joined { group, seq } => self.joined(&group, seq).await,
            Outbound::Left { group } => {
                self.left(&group);
                Ok(())
            }
            Outbound::Resync => {
                self.stale.extend(self.cursors.keys().cloned());
                Ok(())
            }
        }
    }

    /// Sends what the stream holds after the cursor, up to sequence `upto`; what the stream
    /// has already trimmed comes from MySQL.
    async fn catch_up(&mut self, ws: &mut Ws, topic: Arc<str>, upto: u64, rx: &mut Inbox) -> Result<(), Exit> {
        let app = self.app.clone();
        let mut redis = app.redis.clone();
        loop {
            let Some(cursor) = self.cursors.get(&topic) else { return Ok(()) };
            let (key, after) = (cursor.stream_key.clone(), cursor.seq);
            if after >= upto {
                break;
            }
            let batch = streams::read_after(&mut redis, &key, after, app.settings.replay_batch)
                .await
                .map_err(|e| backend_down(&app, "cannot read a stream to fill a gap", &e))?;
            self.drain(ws, rx).await?;
            let Some(&(first, _)) = batch.first() else { break };
            if first > after + 1 {
                // Older than the stream's retention.
                let before = first.min(upto.saturating_add(1));
                if !self.replay_from_mysql(ws, &topic, before).await? {
                    let lost = before - after - 1;
                    app.metrics.messages_trimmed_total.fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(conv = %key, from = after + 1, to = before - 1, "messages trimmed from Redis and not in MySQL");
                    self.cursors.get_mut(&topic).expect("present").seq = before - 1;
                }
                continue;
            }
            for (seq, envelope) in batch {
                if seq > upto {
                    break;
                }
                self.write(ws, Message::text(envelope)).await?;
                Metrics::inc(&app.metrics.messages_replayed_total);
                Metrics::inc(&app.metrics.messages_delivered_total);
                self.cursors.get_mut(&topic).expect("present").seq = seq;
            }
        }
        self.auto_ack(&topic);
        Ok(())
    }

    /// Replays messages below `before` from MySQL. Returns false when MySQL is not configured
    /// or does not get the missing messages within a few seconds (the writer may lag).
    async fn replay_from_mysql(&mut self, ws: &mut Ws, topic: &Arc<str>, before: u64) -> Result<bool, Exit> {
        let app = self.app.clone();
        let Some(history) = &app.history else { return Ok(false) };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let cursor = &self.cursors[topic];
            let (conv, after) = (cursor.conv_id.clone(), cursor.seq);
            if after + 1 >= before {
                return Ok(true);
            }
            let rows = match history.range(&conv, after, before, app.settings.replay_batch).await {
                Ok(rows) => rows,
                Err(e) => {
                    Metrics::inc(&app.metrics.mysql_errors_total);
                    tracing::warn!(error = %e, "cannot read history from MySQL");
                    Vec::new()
                }
            };
            if rows.first().map(|r| r.seq) != Some(after + 1) {
                if Instant::now() > deadline {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            for row in rows {
                if row.seq != self.cursors[topic].seq + 1 {
                    break;
                }
                self.write(ws, Message::text(row.envelope())).await?;
                Metrics::inc(&app.metrics.messages_from_mysql_total);
                Metrics::inc(&app.metrics.messages_delivered_total);
                self.cursors.get_mut(topic).expect("present").seq = row.seq;
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

    /// Records acknowledgements, stops delivery and removes presence.
    async fn leave(&mut self) {
        self.flush_acks().await;
        for topic in self.cursors.keys().chain(&self.extra_topics) {
            self.app.hub.leave(topic, self.conn);
        }
        self.app.presence.unregister(self.conn).await;
        tracing::debug!(conn = %self.conn_name, uid = %self.uid, "disconnected");
    }
}

/// Redis failed under a session: it ends with 1013 so the client resumes elsewhere or later.
fn backend_down(app: &App, what: &str, e: &dyn std::fmt::Display) -> Exit {
    Metrics::inc(&app.metrics.redis_errors_total);
    tracing::warn!(error = %e, "{what}");
    close_with(close::TRY_AGAIN, "chat backend unavailable; reconnect and resume")
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

pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
