//! One authenticated client session, from its welcome to its end, over any transport.
//!
//! A single task owns the session and waits on two things: frames from the client, and its
//! mailbox from the hub (messages and events, node-wide heartbeat ticks, and the overflow and
//! shutdown flags; see [`crate::mailbox`]). An idle connection costs its task's state, so the
//! wait is kept small and everything else is boxed. Delivery keeps a cursor per conversation:
//! a message at `cursor + 1` is sent, an older one is a duplicate and dropped, a newer one means notifications were missed and the
//! gap is read from the conversation's stream first. So the client sees every message once,
//! in order — whether it is on a WebSocket, Server-Sent Events or long-polling (see
//! [`crate::transport`]).
//!
//! Presence is removed *before* the transport says goodbye, so a client that has seen its
//! close can rely on `chat_is_online()` already reflecting it.
//!
//! With `CHAT_ANONYMOUS_CONNECT` a session may start without a user (GatewayWorker's flow): it
//! listens only to the broadcast channel (where `chat_event('c:…')`, `chat_client_close` and
//! `chat_bind` reach it, addressed by client id), is in the client index with an empty user,
//! and refuses every client frame but `ping` and `auth`. `chat_bind` from PHP (or an `auth`
//! frame with a valid token) turns it into that user's session exactly as if it had connected
//! with a token: inbox and groups subscribed, presence registered, a second `welcome`.

pub mod actions;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_protocol::scripts::ConnInfo;
use chat_protocol::token::{self, TokenError};
use chat_protocol::wire::{self, close, ClientFrame, Cursors, ServerFrame};
use chat_protocol::{Claims, Conversation};
use std::future::Future;
use std::pin::Pin;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::app::App;
use crate::hub::{ConnId, LiveMessage, Outbound, Subscriber};
use crate::mailbox::{self, Ended};
use crate::metrics::Metrics;
use crate::ratelimit::TokenBucket;
use crate::streams::{self, Cursor, CursorMap};
use crate::transport::{close_with, Exit, Inbound, Transport};
use actions::{Actor, Known};

/// This connection's queue of things from the hub.
type Inbox = mailbox::Receiver;

/// What the client asked for when it connected.
pub struct Handshake {
    pub device: String,
    /// Resume cursors (URL, auth frame, `Last-Event-ID`).
    pub cursors: Option<Cursors>,
    /// The client acknowledges with `ack` frames; otherwise a message counts as acknowledged
    /// once handed to the transport.
    pub client_acks: bool,
}

/// Checks a connect token; the error is the close the client gets.
pub fn verify_token(app: &App, token: &str) -> Result<Claims, Exit> {
    let secret = app.settings.jwt_secret.as_bytes();
    token::verify(token, secret, unix_now(), app.settings.token_leeway_secs).map_err(|e| {
        Metrics::inc(&app.metrics.auth_failures_total);
        match e {
            TokenError::Expired { .. } => close_with(close::TOKEN_EXPIRED, "token expired: get a new one from the app"),
            other => close_with(close::BAD_TOKEN, format!("invalid token: {other}")),
        }
    })
}

/// This node's name for connection `conn` (what `chat_user_devices()` and `welcome` show).
pub fn conn_name(app: &App, conn: ConnId) -> String {
    chat_protocol::live::client_id(&app.settings.node_id, conn)
}

/// What an anonymous session needs to become a user's later (kept only while it has none).
struct Unbound {
    device: String,
    connected_at: u64,
    /// When it is closed if still unbound (`CHAT_ANONYMOUS_TIMEOUT_MS`).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a bind reply stays in Redis when the PHP call that waited for it gave up.
const BIND_REPLY_TTL_MS: u64 = 60_000;

/// Runs a session to completion, then lets the transport say why it ended. Without `claims`
/// the session is anonymous until the app binds it (only when `CHAT_ANONYMOUS_CONNECT` is on;
/// the transports check that).
pub fn run<T: Transport>(app: Arc<App>, mut transport: T, conn: ConnId, claims: Option<Claims>, hs: Handshake) -> impl Future<Output = ()> + Send {
    let (tx, mut rx) = mailbox::channel(app.settings.outbound_queue, app.settings.outbound_queue_bytes);
    let unbound = match claims {
        Some(_) => None,
        None => {
            let limit = app.settings.anonymous_timeout_ms;
            Some(Box::new(Unbound {
                device: hs.device.clone(),
                connected_at: unix_now_ms(),
                deadline: (limit > 0).then(|| Box::pin(tokio::time::sleep(Duration::from_millis(limit)))),
            }))
        }
    };
    let bucket = TokenBucket::new(app.settings.rate_limit, app.settings.rate_burst, Instant::now());
    let mut session = Session {
        sub: Subscriber { conn, tx },
        broadcast: None,
        conn,
        uid: Arc::from(claims.as_ref().map_or("", |c| c.sub.as_str())),
        unbound,
        app,
        cursors: CursorMap::default(),
        bucket,
        strikes: 0,
        client_acks: hs.client_acks,
        delivered: 0,
        stale: HashSet::new(),
    };
    // Only what the start needs, boxed: the claims and the handshake are not kept.
    // A token's issue time, for the revocation check (None: no token yet, anonymous).
    let opening = Box::new((hs.device, hs.cursors.unwrap_or_default(), claims.as_ref().map(|c| c.iat)));
    // An async block rather than an async fn: it uses what it captured in place, where an
    // async fn would keep its arguments and the locals they are moved into side by side, for
    // the whole life of the connection. Cold paths are boxed so that what an idle connection
    // keeps is only the serve loop's own state, not the largest of every future it might await.
    async move {
        let t = &mut transport;
        let started = {
            let (device, cursors, issued) = *opening;
            Box::pin(session.start(t, &mut rx, &device, cursors, issued)).await
        };
        let exit = match started {
            Ok(()) => {
                let metrics = &session.app.metrics;
                metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Metrics::inc(&metrics.connections_total);
                let exit = session.serve(t, rx).await;
                session.app.metrics.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                exit
            }
            Err(exit) => exit,
        };
        Box::pin(session.leave()).await;
        Box::pin(transport.finish(exit)).await;
    }
}

struct Session {
    conn: ConnId,
    /// The user; empty while the connection is anonymous.
    uid: Arc<str>,
    /// Set while anonymous (boxed: token sessions pay one pointer for it).
    unbound: Option<Box<Unbound>>,
    app: Arc<App>,
    /// Live channel -> where this client stands in that conversation.
    cursors: CursorMap,
    bucket: TokenBucket,
    /// Frames refused in a row by the rate limit.
    strikes: u32,
    /// The client sends `ack` frames; otherwise what was handed to the transport counts as
    /// acknowledged. Either way [`crate::acks::Acks`] batches them node-wide.
    client_acks: bool,
    /// Messages handed to the transport since the last [`Session::report`].
    delivered: u64,
    /// Conversations whose live notifications were dropped during a replay; their streams
    /// are read again before anything else is delivered.
    stale: HashSet<Arc<str>>,
    /// This connection's mailbox, to join more conversations later (groups joined live).
    sub: Subscriber,
    /// The broadcast channel, once joined (every session joins it; it is not a conversation).
    broadcast: Option<Arc<str>>,
}

impl Session {
    /// This connection's client id, built when needed (a stored copy would cost every idle
    /// connection an allocation).
    fn conn_name(&self) -> String {
        conn_name(&self.app, self.conn)
    }

    fn anonymous(&self) -> bool {
        self.unbound.is_some()
    }

    /// Joins the broadcast channel, then opens the user's conversations; an anonymous session
    /// only registers in the client index and says welcome without a user.
    async fn start<T: Transport>(&mut self, t: &mut T, rx: &mut Inbox, device: &str, requested: Cursors, issued: Option<Option<u64>>) -> Result<(), Exit> {
        let app = self.app.clone();
        // Refused at once while Redis is known to be down, rather than after timeouts.
        if !app.health.is_up() {
            return Err(close_with(close::TRY_AGAIN, "chat backend unavailable; reconnect later and resume"));
        }
        let broadcast = app.hub.join(&app.keys.broadcast(), self.sub.clone()).await.map_err(|e| backend_down(&app, "subscribe failed", &e))?;
        self.broadcast = Some(broadcast);
        if let Some(unbound) = &self.unbound {
            let info = self.conn_info(T::KIND, device, unbound.connected_at);
            app.presence
                .register(self.conn, self.uid.clone(), info)
                .await
                .map_err(|e| backend_down(&app, "cannot register an anonymous connection", &e))?;
            // Cursors the client sent are of no conversation of its (none yet).
            send_now(t, self.welcome(Cursors::new(), Cursors::new())).await?;
            tracing::debug!(conn = %self.conn_name(), transport = T::KIND, "connected anonymously");
            return Ok(());
        }
        self.open_user(t, rx, device, unix_now_ms(), requested, false, issued).await
    }

    fn conn_info(&self, transport: &str, device: &str, connected_at: u64) -> ConnInfo {
        ConnInfo {
            id: self.conn_name(),
            node: self.app.settings.node_id.clone(),
            device: device.to_owned(),
            transport: transport.into(),
            connected_at,
        }
    }

    fn welcome(&self, cursors: Cursors, epochs: Cursors) -> ServerFrame {
        ServerFrame::Welcome {
            uid: (!self.uid.is_empty()).then(|| self.uid.to_string()),
            conn: self.conn_name(),
            node: self.app.settings.node_id.clone(),
            heartbeat_ms: self.app.settings.heartbeat_ms,
            max_frame_bytes: self.app.settings.max_frame_bytes,
            cursors,
            epochs,
        }
    }

    /// Subscribes the user's conversations, registers presence (and, after `chat_bind`,
    /// answers the PHP call waiting for it: from here on the binding is effective), sends the
    /// welcome frame, then replays everything after each starting cursor. `issued`: the issue
    /// time of the token the session came with (`Some(None)`: a token without `iat`), checked
    /// against the user's revocation; `None` for a connection the app bound itself.
    #[allow(clippy::too_many_arguments)]
    async fn open_user<T: Transport>(
        &mut self,
        t: &mut T,
        rx: &mut Inbox,
        device: &str,
        connected_at: u64,
        requested: Cursors,
        answer_bind: bool,
        issued: Option<Option<u64>>,
    ) -> Result<(), Exit> {
        let app = self.app.clone();
        let unavailable = |what: &str, e: &dyn std::fmt::Display| backend_down(&app, what, e);
        let mut redis = app.redis.clone();
        let (groups, revoked): (HashMap<String, u64>, Option<u64>) = redis::pipe()
            .cmd("HGETALL")
            .arg(app.keys.groups(&self.uid))
            .cmd("GET")
            .arg(app.keys.revoked(&self.uid))
            .query_async(&mut redis)
            .await
            .map_err(|e| unavailable("cannot read the user's groups", &e))?;
        if let Some(iat) = issued {
            if token::is_revoked(iat, revoked) {
                Metrics::inc(&app.metrics.auth_failures_total);
                return Err(close_with(close::BAD_TOKEN, "token revoked (chat_kick): get a new one from the app"));
            }
        }
        // The inbox, then every group; a member never starts before the point they joined.
        let mut convs = vec![(Conversation::Inbox(self.uid.to_string()), 0)];
        convs.extend(groups.into_iter().filter_map(|(g, joined)| Some((Conversation::group(&g).ok()?, joined))));
        // All channels at once: the hub sends them to Redis in one SUBSCRIBE.
        let channels: Vec<String> = convs.iter().map(|(conv, _)| app.keys.live(conv)).collect();
        let joins = futures_util::future::join_all(channels.iter().map(|c| app.hub.join(c, self.sub.clone()))).await;
        let mut opened = Vec::with_capacity(convs.len());
        self.cursors.reserve_exact(convs.len());
        let mut failed = None;
        for ((conv, floor), joined) in convs.into_iter().zip(joins) {
            match joined {
                Ok(topic) => {
                    // Recorded before anything else can fail, so leave() always undoes the join.
                    self.cursors.insert(topic.clone(), Cursor::new(conv));
                    opened.push((topic, floor));
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(unavailable("subscribe failed", &e));
        }
        // Subscribed first, then read where each conversation is: nothing published in between
        // is missed. One round trip for every conversation's sequence, epoch and acknowledged
        // position.
        let mut pipe = redis::pipe();
        for (topic, _) in &opened {
            let c = &self.cursors[topic];
            pipe.cmd("GET").arg(app.keys.seq(&c.conv));
            pipe.cmd("HGET").arg(app.keys.epoch(&c.conv)).arg("e");
            match &c.conv {
                Conversation::Inbox(uid) => pipe.cmd("HGET").arg(app.keys.acked(uid)).arg(&*c.conv_id),
                Conversation::Group(group) => pipe.cmd("HGET").arg(app.keys.group_acked(group)).arg(&*self.uid),
            };
        }
        let positions: Vec<Option<u64>> =
            pipe.query_async(&mut redis).await.map_err(|e| unavailable("cannot read conversations' sequences", &e))?;
        let mut starts = Cursors::new();
        let mut epochs = Cursors::new();
        let mut resets = Vec::new();
        for ((topic, floor), at) in opened.iter().zip(positions.chunks(3)) {
            let (latest, epoch, acked) = (at[0].unwrap_or(0), at[1].unwrap_or(0), at.get(2).copied().flatten());
            let cursor = self.cursors.get_mut(topic).expect("just inserted");
            let asked = requested.get(&*cursor.conv_id).copied();
            // A client that has seen more than the conversation now holds saw messages Redis
            // lost: it is told so, never silently rewound.
            if let Some(was) = asked.filter(|c| *c > latest) {
                resets.push(ServerFrame::Reset { conv: cursor.conv_id.to_string(), seq: latest, was, epoch });
            }
            let wanted = asked.or(acked).unwrap_or(0);
            let start = wanted.max(*floor).min(latest);
            cursor.start_at(start);
            starts.insert(cursor.conv_id.to_string(), start);
            epochs.insert(cursor.conv_id.to_string(), epoch);
        }
        let info = self.conn_info(T::KIND, device, connected_at);
        app.presence
            .register(self.conn, self.uid.clone(), info)
            .await
            .map_err(|e| unavailable("cannot register presence", &e))?;
        if answer_bind {
            self.answer_bind(&self.uid.clone()).await?;
        }
        let welcome = self.welcome(starts.clone(), epochs);
        let ids = T::TRACKS_CURSORS.then(|| starts.clone());
        t.feed(welcome.to_json().into(), ids).await?;
        for reset in resets {
            Metrics::inc(&app.metrics.history_resets_total);
            t.feed(reset.to_json().into(), None).await?;
        }
        for conv in requested.keys().filter(|c| !starts.contains_key(*c)) {
            let e = ServerFrame::error(wire::error::FORBIDDEN, format!("cursor for {conv:?} ignored: not a conversation of this user"));
            t.feed(e.to_json().into(), None).await?;
        }
        self.stale.extend(self.cursors.keys().cloned());
        self.settle(t, rx).await?;
        t.flush().await?;
        tracing::debug!(conn = %self.conn_name(), uid = %self.uid, transport = T::KIND, ?starts, "connected");
        Ok(())
    }

    /// Waits for the client, the hub, or (anonymous only) the bind deadline. The wait keeps
    /// nothing but these three small futures, and everything it then does is awaited in its own
    /// state or boxed: what an idle connection holds is the size of this loop's largest state.
    async fn serve<T: Transport>(&mut self, t: &mut T, mut rx: Inbox) -> Exit {
        // A shutdown that began before this session joined the hub did not reach its mailbox.
        if self.app.shutdown.is_cancelled() {
            return self.ended(Ended::ShutDown);
        }
        loop {
            let event = tokio::select! {
                biased;
                inbound = t.recv() => Wake::Client(inbound),
                item = rx.recv() => Wake::Hub(item),
                _ = unbound_deadline(&mut self.unbound) => Wake::Unbound,
            };
            let step = match event {
                Wake::Client(Ok(inbound)) => Box::pin(self.on_inbound(t, inbound, &mut rx)).await,
                Wake::Client(Err(exit)) => Err(exit),
                // Boxed too: delivery nests the transport's write futures, and inline they would
                // make every idle connection's task as large as the deepest of them.
                Wake::Hub(Ok(item)) => Box::pin(self.deliver(t, item, &mut rx)).await,
                Wake::Hub(Err(ended)) => Err(self.ended(ended)),
                Wake::Unbound => Err(close_with(close::AUTH_TIMEOUT, "not bound to a user in time (CHAT_ANONYMOUS_TIMEOUT_MS)")),
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    /// The close for a mailbox that ended.
    fn ended(&self, why: Ended) -> Exit {
        match why {
            Ended::ShutDown => close_with(close::GOING_AWAY, "server shutting down; reconnect"),
            Ended::BackendDown => close_with(close::TRY_AGAIN, "chat backend unavailable; reconnect and resume"),
            Ended::Overflowed => {
                Metrics::inc(&self.app.metrics.slow_consumer_disconnects_total);
                close_with(close::TOO_SLOW, "outbound queue overflow: reconnect and resume")
            }
        }
    }

    async fn on_inbound<T: Transport>(&mut self, t: &mut T, inbound: Inbound, rx: &mut Inbox) -> Result<(), Exit> {
        let text = match inbound {
            Inbound::Activity => return Ok(()),
            Inbound::Attached { cursors, lost } => {
                if let Some(cursors) = cursors {
                    self.resume(&cursors, lost);
                }
                self.settle(t, rx).await?;
                return t.flush().await;
            }
            Inbound::Ping => None,
            Inbound::Binary => Some(Err(())),
            Inbound::Text(text) => Some(Ok(text)),
        };
        if !self.bucket.take(Instant::now()) {
            Metrics::inc(&self.app.metrics.rate_limited_frames_total);
            self.strikes += 1;
            if self.strikes > self.app.settings.rate_burst.max(1) {
                return Err(close_with(close::POLICY, "rate limit exceeded"));
            }
            if self.strikes == 1 {
                let limit = self.app.settings.rate_limit;
                let err = ServerFrame::error(wire::error::RATE_LIMITED, format!("more than {limit} frames per second; frame dropped"));
                return send_now(t, err).await;
            }
            return Ok(());
        }
        self.strikes = 0;
        let reply = match text {
            None => return t.flush().await,
            Some(Err(())) => {
                Metrics::inc(&self.app.metrics.bad_frames_total);
                Some(ServerFrame::error(wire::error::BINARY_UNSUPPORTED, "binary frames are not supported; send JSON text frames"))
            }
            Some(Ok(text)) if self.anonymous() => Box::pin(self.on_anonymous_frame(t, rx, &text)).await?,
            Some(Ok(text)) => Box::pin(self.on_frame(&text)).await,
        };
        match reply {
            Some(frame) => send_now(t, frame).await,
            None => Ok(()),
        }
    }

    async fn on_frame(&mut self, text: &str) -> Option<ServerFrame> {
        let actor = Actor { app: &self.app, uid: &self.uid };
        match wire::parse_client(text) {
            Ok(ClientFrame::Ping { r#ref }) => Some(ServerFrame::Pong { r#ref }),
            Ok(ClientFrame::Auth { .. }) => Some(ServerFrame::error(wire::error::ALREADY_AUTHENTICATED, "this connection is already authenticated")),
            Ok(ClientFrame::Ack { conv, seq }) => match actor.own(&conv, self.known(&conv)).await {
                Ok((_, delivered)) => {
                    // A device cannot acknowledge what it was never sent.
                    self.record_ack(&conv, seq.min(delivered));
                    None
                }
                Err(frame) => Some(frame),
            },
            Ok(ClientFrame::Read { conv, seq }) => match actor.own(&conv, self.known(&conv)).await {
                Ok((conversation, delivered)) => actor.read(&conversation, seq.min(delivered)).await,
                Err(frame) => Some(frame),
            },
            Ok(ClientFrame::Send { target, data, r#ref }) => Some(actor.send(target, data.get(), r#ref).await),
            Ok(ClientFrame::Typing { target }) => {
                let known = match &target {
                    wire::Target::Group(g) => self.known(&format!("g:{g}")),
                    wire::Target::User(_) => Known::Ask,
                };
                actor.typing(target, known).await
            }
            Ok(ClientFrame::Signal { group, to, data }) => actor.signal(&group, &to, data.get(), self.known(&format!("g:{group}"))).await,
            Err(e) => {
                Metrics::inc(&self.app.metrics.bad_frames_total);
                Some(ServerFrame::error(e.code(), e.to_string()))
            }
        }
    }

    /// A frame on a connection without a user: it may ping, or prove who it is with an `auth`
    /// frame; nothing else until the app binds it, since every other frame acts as a user.
    async fn on_anonymous_frame<T: Transport>(&mut self, t: &mut T, rx: &mut Inbox, text: &str) -> Result<Option<ServerFrame>, Exit> {
        match wire::parse_client(text) {
            Ok(ClientFrame::Ping { r#ref }) => Ok(Some(ServerFrame::Pong { r#ref })),
            Ok(ClientFrame::Auth { token, cursors }) => {
                // Like a token in the URL: a bad one ends the connection with the same close.
                let claims = verify_token(&self.app, &token)?;
                Box::pin(self.on_bind(t, rx, Arc::from(claims.sub.as_str()), cursors.unwrap_or_default(), false, Some(claims.iat))).await?;
                Ok(None)
            }
            Ok(_) => Ok(Some(ServerFrame::error(
                wire::error::FORBIDDEN,
                "this connection is not bound to a user yet: the app binds it (chat_bind, Gateway::bindUid) or the client sends an auth frame",
            ))),
            Err(e) => {
                Metrics::inc(&self.app.metrics.bad_frames_total);
                Ok(Some(ServerFrame::error(e.code(), e.to_string())))
            }
        }
    }

    /// `chat_bind` (`reply`: a PHP call waits for the answer) or an `auth` frame: an anonymous
    /// session becomes `uid`'s. A session that already has a user only answers.
    async fn on_bind<T: Transport>(&mut self, t: &mut T, rx: &mut Inbox, uid: Arc<str>, cursors: Cursors, reply: bool, issued: Option<Option<u64>>) -> Result<(), Exit> {
        if chat_protocol::ids::validate("user id", &uid).is_err() {
            tracing::warn!(conn = %self.conn_name(), "ignoring a bind to an invalid user id");
            return Ok(());
        }
        let Some(unbound) = self.unbound.take() else {
            if reply {
                self.answer_bind(&uid).await?;
            }
            return Ok(());
        };
        // The anonymous registration is replaced by the user's (same connection id).
        self.uid = uid;
        tracing::debug!(conn = %self.conn_name(), uid = %self.uid, "bound");
        Box::pin(self.open_user(t, rx, &unbound.device, unbound.connected_at, cursors, reply, issued)).await
    }

    /// Tells the `chat_bind` call waiting for `uid` whether this connection is now its.
    async fn answer_bind(&self, uid: &str) -> Result<(), Exit> {
        let answer = if *uid == *self.uid { "1".to_owned() } else { format!("0{}", self.uid) };
        let key = self.app.keys.bind_reply(&self.conn_name(), uid);
        redis::pipe()
            .cmd("RPUSH")
            .arg(&key)
            .arg(answer)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(BIND_REPLY_TTL_MS)
            .ignore()
            .query_async::<()>(&mut self.app.redis.clone())
            .await
            .map_err(|e| backend_down(&self.app, "cannot answer a bind", &e))
    }

    /// What this session knows of conversation `conv`.
    fn known(&self, conv: &str) -> Known {
        match self.cursors.values().find(|c| &*c.conv_id == conv) {
            Some(c) => Known::Held(c.seq),
            None => Known::NotHeld,
        }
    }

    /// Every cursor, as the client would write it.
    fn snapshot(&self) -> Cursors {
        self.cursors.values().map(|c| (c.conv_id.to_string(), c.seq)).collect()
    }

    /// A long-poll client's cursors: they count as its acknowledgement, and when it `lost`
    /// part of an answer each conversation restarts after its cursor (never before where this
    /// session started it).
    fn resume(&mut self, client: &Cursors, lost: bool) {
        if lost {
            for (topic, c) in self.cursors.iter_mut() {
                let to = client.get(&*c.conv_id).copied().unwrap_or(c.start).max(c.start);
                if to < c.seq {
                    c.seq = to;
                    self.stale.insert(topic.clone());
                }
            }
        }
        for c in self.cursors.values() {
            if let Some(&seq) = client.get(&*c.conv_id) {
                self.app.acks.record(&self.uid, &c.conv_id, seq.min(c.seq));
            }
        }
    }

    /// The client acknowledged `conv` up to `seq` (a conversation it holds).
    fn record_ack(&self, conv: &str, seq: u64) {
        if let Some(c) = self.cursors.values().find(|c| &*c.conv_id == conv) {
            self.app.acks.record(&self.uid, &c.conv_id, seq);
        }
    }

    /// After a batch: counts what it delivered and, in automatic mode (where a write counts
    /// as the acknowledgement), reports every cursor that moved. Once per batch rather than per
    /// message: both touch state shared by every connection of the node.
    fn report(&mut self) {
        if self.delivered > 0 {
            self.app.metrics.messages_delivered_total.fetch_add(std::mem::take(&mut self.delivered), std::sync::atomic::Ordering::Relaxed);
        }
        if self.client_acks {
            return;
        }
        for c in self.cursors.values_mut() {
            if c.seq > c.reported {
                c.reported = c.seq;
                self.app.acks.record(&self.uid, &c.conv_id, c.seq);
            }
        }
    }

    /// Moves the cursor of `topic` to `seq` and hands the message to the transport.
    async fn emit<T: Transport>(&mut self, t: &mut T, topic: &Arc<str>, seq: u64, message: Emitted<'_>) -> Result<(), Exit> {
        let Some(c) = self.cursors.get_mut(topic) else { return Ok(()) };
        c.seq = seq;
        let ids = T::TRACKS_CURSORS.then(|| self.snapshot());
        match message {
            Emitted::Read(text) => t.feed(text, ids).await?,
            Emitted::Live(m) => t.feed_live(m, ids).await?,
        }
        self.delivered += 1;
        Ok(())
    }

    /// Writes `first` and whatever else is already queued, then flushes once.
    async fn deliver<T: Transport>(&mut self, t: &mut T, first: Outbound, rx: &mut Inbox) -> Result<(), Exit> {
        self.handle(t, first, rx).await?;
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(Some(item)) => self.handle(t, item, rx).await?,
                Ok(None) => break,
                Err(ended) => return Err(self.ended(ended)),
            }
        }
        self.settle(t, rx).await?;
        self.report();
        t.flush().await
    }

    /// The user joined `group` (at its sequence `seq`) while connected: receive it from there.
    async fn joined(&mut self, group: &str, seq: u64) -> Result<(), Exit> {
        let Ok(conv) = Conversation::group(group) else { return Ok(()) };
        let channel = self.app.keys.live(&conv);
        if self.cursors.contains_key(channel.as_str()) {
            return Ok(());
        }
        let topic = self.app.hub.join(&channel, self.sub.clone()).await.map_err(|e| backend_down(&self.app, "cannot subscribe a joined group", &e))?;
        let mut cursor = Cursor::new(conv);
        cursor.start_at(seq);
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
    async fn settle<T: Transport>(&mut self, t: &mut T, rx: &mut Inbox) -> Result<(), Exit> {
        while let Some(topic) = self.stale.iter().next().cloned() {
            self.stale.remove(&topic);
            Box::pin(self.catch_up(t, topic, u64::MAX, rx)).await?;
        }
        Ok(())
    }

    /// During a replay: keeps the queue from overflowing. Messages are dropped (the replay
    /// or a later stream read covers them), events pass, a kick ends the session.
    async fn drain<T: Transport>(&mut self, t: &mut T, rx: &mut Inbox) -> Result<(), Exit> {
        while let Some(item) = rx.try_recv().map_err(|ended| self.ended(ended))? {
            match item {
                Outbound::Message(m) => self.missed(&m),
                Outbound::Batch(batch) => batch.iter().for_each(|m| self.missed(m)),
                Outbound::Resync => self.stale.extend(self.cursors.keys().cloned()),
                Outbound::Event(frame) => t.feed(frame, None).await?,
                Outbound::Kick(reason) => return Err(self.kicked(&reason)),
                Outbound::Joined { group, seq } => Box::pin(self.joined(&group, seq)).await?,
                Outbound::Left { group } => self.left(&group),
                Outbound::Bind(uid) => Box::pin(self.on_bind(t, rx, uid, Cursors::new(), true, None)).await?,
                Outbound::Heartbeat => Box::pin(t.heartbeat()).await?,
            }
        }
        Ok(())
    }

    /// A message dropped during a replay: its conversation is read again if it is newer.
    fn missed(&mut self, m: &LiveMessage) {
        if self.cursors.get(&m.topic).is_some_and(|c| m.seq > c.seq) {
            self.stale.insert(m.topic.clone());
        }
    }

    async fn handle<T: Transport>(&mut self, t: &mut T, item: Outbound, rx: &mut Inbox) -> Result<(), Exit> {
        match item {
            Outbound::Message(m) => self.live(t, &m, rx).await,
            Outbound::Batch(batch) => {
                for m in batch.iter() {
                    self.live(t, m, rx).await?;
                }
                Ok(())
            }
            Outbound::Event(frame) => t.feed(frame, None).await,
            Outbound::Kick(reason) => Err(self.kicked(&reason)),
            Outbound::Joined { group, seq } => Box::pin(self.joined(&group, seq)).await,
            Outbound::Left { group } => {
                self.left(&group);
                Ok(())
            }
            Outbound::Resync => {
                self.stale.extend(self.cursors.keys().cloned());
                Ok(())
            }
            Outbound::Bind(uid) => Box::pin(self.on_bind(t, rx, uid, Cursors::new(), true, None)).await,
            Outbound::Heartbeat => Box::pin(t.heartbeat()).await,
        }
    }

    /// A message as it came from the hub: written if it is the next of its conversation, after
    /// what the stream holds in between if some is missing, not at all if already sent.
    async fn live<T: Transport>(&mut self, t: &mut T, m: &LiveMessage, rx: &mut Inbox) -> Result<(), Exit> {
        let Some(at) = self.cursors.get(&m.topic).map(|c| c.seq) else { return Ok(()) };
        if m.seq <= at {
            return Ok(());
        }
        if m.seq > at + 1 {
            Box::pin(self.catch_up(t, m.topic.clone(), m.seq - 1, rx)).await?;
            if self.cursors.get(&m.topic).is_some_and(|c| c.seq >= m.seq) {
                return Ok(());
            }
        }
        self.emit(t, &m.topic, m.seq, Emitted::Live(m)).await
    }

    /// Sends what the stream holds after the cursor, up to sequence `upto`; what the stream
    /// has already trimmed comes from MySQL.
    async fn catch_up<T: Transport>(&mut self, t: &mut T, topic: Arc<str>, upto: u64, rx: &mut Inbox) -> Result<(), Exit> {
        let app = self.app.clone();
        let mut redis = app.redis.clone();
        loop {
            let Some(cursor) = self.cursors.get(&topic) else { return Ok(()) };
            // Built here, the one place that reads streams, rather than kept in every cursor.
            let (key, after) = (app.keys.stream(&cursor.conv), cursor.seq);
            if after >= upto {
                break;
            }
            let batch = streams::read_after(&mut redis, &key, after, app.settings.replay_batch)
                .await
                .map_err(|e| backend_down(&app, "cannot read a stream to fill a gap", &e))?;
            self.drain(t, rx).await?;
            let Some(&(first, _)) = batch.first() else { break };
            if first > after + 1 {
                // Either older than the stream's retention, or the start of a new epoch.
                let conv = self.cursors[&topic].conv.clone();
                let epoch = streams::epoch_of(&mut redis, &app.keys, &conv).await.map_err(|e| backend_down(&app, "cannot read a conversation's epoch", &e))?;
                tracing::debug!(conn = %self.conn_name(), conv = %conv, after, first, ?epoch, "gap in the stream");
                if first == epoch.base + 1 && after <= epoch.base {
                    Box::pin(self.enter_epoch(t, &topic, &epoch)).await?;
                    continue;
                }
                let before = first.min(upto.saturating_add(1));
                Box::pin(self.replay_from_mysql(t, &topic, before)).await?;
                continue;
            }
            for (seq, envelope) in batch {
                if seq > upto {
                    break;
                }
                self.emit(t, &topic, seq, Emitted::Read(envelope.into())).await?;
                Metrics::inc(&app.metrics.messages_replayed_total);
            }
        }
        self.report();
        Ok(())
    }

    /// The conversation moved to `epoch` while this client stood at its cursor: what the old
    /// epoch kept after the cursor comes from MySQL; if the client had seen more than survived,
    /// it is told (a `reset`); then delivery goes on at the new epoch.
    async fn enter_epoch<T: Transport>(&mut self, t: &mut T, topic: &Arc<str>, epoch: &streams::Epoch) -> Result<(), Exit> {
        let (conv_id, after) = {
            let c = &self.cursors[topic];
            (c.conv_id.clone(), c.seq)
        };
        if after > epoch.prev {
            Metrics::inc(&self.app.metrics.history_resets_total);
            tracing::warn!(conv = %conv_id, kept = epoch.prev, seen = after, "the client had seen messages Redis lost; sending a reset");
            let reset = ServerFrame::Reset { conv: conv_id.to_string(), seq: epoch.prev, was: after, epoch: epoch.id };
            t.feed(reset.to_json().into(), None).await?;
        } else if after < epoch.prev {
            Box::pin(self.replay_from_mysql(t, topic, epoch.prev + 1)).await?;
        }
        if let Some(c) = self.cursors.get_mut(topic) {
            c.seq = c.seq.max(epoch.base);
        }
        Ok(())
    }

    /// Replays messages below `before` from MySQL. A message MySQL does not have within a few
    /// seconds (the writer may lag) is stepped over, counted and logged as lost, and the rest of
    /// the range still comes: one missing row never costs the client the messages after it.
    async fn replay_from_mysql<T: Transport>(&mut self, t: &mut T, topic: &Arc<str>, before: u64) -> Result<(), Exit> {
        let app = self.app.clone();
        let mut deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let cursor = &self.cursors[topic];
            let (conv, after) = (cursor.conv_id.clone(), cursor.seq);
            if after + 1 >= before {
                return Ok(());
            }
            let rows = match &app.history {
                None => Vec::new(),
                Some(history) => match history.range(&conv, after, before, app.settings.replay_batch).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        Metrics::inc(&app.metrics.mysql_errors_total);
                        tracing::warn!(error = %e, "cannot read history from MySQL");
                        Vec::new()
                    }
                },
            };
            if rows.first().map(|r| r.seq) != Some(after + 1) {
                if app.history.is_some() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let next = rows.first().map_or(before, |r| r.seq);
                app.metrics.messages_trimmed_total.fetch_add(next - after - 1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%conv, from = after + 1, to = next - 1, "messages no longer in Redis and not in MySQL; stepped over");
                self.cursors.get_mut(topic).expect("present").seq = next - 1;
                // Waited once already: the rest of the range comes as MySQL has it.
                deadline = Instant::now();
                continue;
            }
            for row in rows {
                if row.seq != self.cursors[topic].seq + 1 {
                    break;
                }
                self.emit(t, topic, row.seq, Emitted::Read(row.envelope().into())).await?;
                Metrics::inc(&app.metrics.messages_from_mysql_total);
            }
        }
    }

    /// Records acknowledgements, stops delivery and removes presence.
    async fn leave(&mut self) {
        self.report();
        if !self.uid.is_empty() {
            self.app.acks.flush_user(&self.uid, self.cursors.values().map(|c| &c.conv_id)).await;
        }
        for topic in self.cursors.keys().chain(&self.broadcast) {
            self.app.hub.leave(topic, self.conn);
        }
        self.app.presence.unregister(self.conn).await;
        tracing::debug!(conn = %self.conn_name(), uid = %self.uid, "disconnected");
    }
}

/// A message for [`Session::emit`]: read back from a stream or MySQL, or live from the hub
/// (whose frame the transport may already have encoded).
enum Emitted<'a> {
    Read(Utf8Bytes),
    Live(&'a LiveMessage),
}

/// What woke a session.
enum Wake {
    Client(Result<Inbound, Exit>),
    Hub(Result<Outbound, Ended>),
    Unbound,
}

/// Completes when an anonymous session's bind deadline passes; never for other sessions.
async fn unbound_deadline(unbound: &mut Option<Box<Unbound>>) {
    match unbound.as_mut().and_then(|u| u.deadline.as_mut()) {
        Some(deadline) => deadline.await,
        None => std::future::pending().await,
    }
}

/// Ticks every connection's heartbeat from one node-wide timer, through the broadcast channel's
/// subscribers (every session of this node, once each). Spread over the interval, a few
/// connections per tick ([`crate::background::spread`]): pinging 10,000 connections at once,
/// and reading their 10,000 pongs, stalled delivery for tens of milliseconds every interval.
pub fn spawn_heartbeats(app: &Arc<App>) {
    let round = Duration::from_millis(app.settings.heartbeat_ms);
    let slots = crate::background::slots(round);
    let (hub, topic) = (app.hub.clone(), app.keys.broadcast());
    crate::background::spawn_essential("heartbeats", crate::background::spread(round, slots, app.shutdown.clone(), move |slot| {
        hub.tell(&topic, Outbound::Heartbeat, |conn| conn % slots == slot);
        async {}
    }));
}

async fn send_now<T: Transport>(t: &mut T, frame: ServerFrame) -> Result<(), Exit> {
    t.feed(frame.to_json().into(), None).await?;
    t.flush().await
}

/// Redis failed under a session: it ends with 1013 so the client resumes elsewhere or later.
fn backend_down(app: &App, what: &str, e: &dyn std::fmt::Display) -> Exit {
    Metrics::inc(&app.metrics.redis_errors_total);
    tracing::warn!(error = %e, "{what}");
    close_with(close::TRY_AGAIN, "chat backend unavailable; reconnect and resume")
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
