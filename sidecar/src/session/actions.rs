//! What a client frame does: send, typing, signal, read, ack — checked and carried out for
//! one user.
//!
//! Shared by live sessions (which already know the user's conversations from their cursors)
//! and `POST /send` (which holds no session and asks Redis), so the rules are written once.

use chat_protocol::scripts::{self, Push};
use std::time::Duration;

use chat_protocol::topology::Durability;
use chat_protocol::wire::{self, ServerFrame, Target, WireError};
use chat_protocol::{ids, ijson, Conversation, MessageId};

use crate::app::App;
use crate::metrics::Metrics;
use crate::streams::Cursor;

/// A user acting through a client.
pub struct Actor<'a> {
    pub app: &'a App,
    pub uid: &'a str,
}

/// What the caller already knows about a conversation of the user, to save Redis a question.
#[derive(Debug, Clone, Copy)]
pub enum Known {
    /// A live session holds it; the client has been sent up to this sequence.
    Held(u64),
    /// A live session does not hold it: not the user's.
    NotHeld,
    /// No session: ask Redis.
    Ask,
}

/// Tries of a client send whose connection failed (a failover): about 1.5 s in all.
const ACCEPT_ATTEMPTS: u32 = 4;

/// The push and its `WAIT` in one round trip: the push's reply and how many replicas hold it.
async fn push_and_wait(keys: &chat_protocol::Keys, push: &Push<'_>, d: Durability, con: &mut crate::engine::Pinned) -> redis::RedisResult<(Vec<u64>, u32)> {
    let mut replies: Vec<redis::RedisResult<redis::Value>> = scripts::push_and_wait(keys, push, d.replicas, d.timeout).query_async(con).await?;
    let waited = replies.pop().unwrap_or(Ok(redis::Value::Nil));
    let flat: Vec<u64> = match replies.pop() {
        Some(Ok(v)) => redis::from_redis_value(v)?,
        // A master that has not seen the script yet (after a failover): load it, then wait.
        Some(Err(e)) if scripts::is_no_script(&e) => {
            let flat = scripts::push(keys, push).invoke_async(con).await?;
            let n: u32 = scripts::wait(d.replicas, d.timeout).query_async(con).await?;
            return Ok((flat, n));
        }
        Some(Err(e)) => return Err(e),
        None => return Err(redis::RedisError::from((redis::ErrorKind::Client, "no reply to the push"))),
    };
    Ok((flat, redis::from_redis_value(waited?)?))
}

fn forbidden(conv: &str) -> ServerFrame {
    ServerFrame::error(wire::error::FORBIDDEN, format!("{conv:?} is not a conversation of this user"))
}

fn unavailable(app: &App, what: &str, e: redis::RedisError) -> ServerFrame {
    Metrics::inc(&app.metrics.redis_errors_total);
    tracing::warn!(error = %e, "{what}");
    ServerFrame::error(wire::error::UNAVAILABLE, "chat backend unavailable; retry")
}

/// Refuses a payload some consumer downstream could not read (a lone surrogate, `1e400`, nesting
/// past `ijson::MAX_DEPTH`, a repeated member name): it would be stored and then break MySQL
/// persistence, `chat_history()` and replays for everyone in the conversation. The limit is the
/// frame's own (`CHAT_MAX_FRAME_BYTES`), which the payload is part of.
fn check_payload(app: &App, kind: &'static str, data: &str) -> Result<(), WireError> {
    ijson::validate_str(data, app.settings.max_frame_bytes).map_err(|e| {
        Metrics::inc(&app.metrics.bad_frames_total);
        Metrics::inc(&app.metrics.payloads_refused_total);
        WireError::BadFrame { kind, detail: format!("data is not I-JSON (RFC 7493): {e}") }
    })
}

impl Actor<'_> {
    /// `conv_id` as a conversation of this user, and how far the client may go in it (what
    /// it was sent, or without a session what exists).
    pub async fn own(&self, conv_id: &str, known: Known) -> Result<(Conversation, u64), ServerFrame> {
        let conv = match conv_id.split_once(':') {
            Some(("u", uid)) if uid == self.uid => Conversation::Inbox(uid.to_owned()),
            Some(("g", group)) => Conversation::group(group).map_err(|_| forbidden(conv_id))?,
            _ => return Err(forbidden(conv_id)),
        };
        match known {
            Known::Held(seq) => Ok((conv, seq)),
            Known::NotHeld => Err(forbidden(conv_id)),
            Known::Ask => {
                if let Conversation::Group(g) = &conv {
                    if !self.is_member(g, self.uid).await? {
                        return Err(forbidden(conv_id));
                    }
                }
                let latest = Cursor::latest(&mut self.app.redis.clone(), &self.app.keys, &conv)
                    .await
                    .map_err(|e| unavailable(self.app, "cannot read a conversation's sequence", e))?;
                Ok((conv, latest))
            }
        }
    }

    /// Membership as Redis has it now.
    pub async fn is_member(&self, group: &str, uid: &str) -> Result<bool, ServerFrame> {
        redis::cmd("SISMEMBER")
            .arg(self.app.keys.members(group))
            .arg(uid)
            .query_async(&mut self.app.redis.clone())
            .await
            .map_err(|e| unavailable(self.app, "cannot check group membership", e))
    }

    /// Records what this device has, at once (sessions batch theirs instead).
    pub async fn ack(&self, conv: &Conversation, seq: u64) -> Result<(), ServerFrame> {
        scripts::ack(&self.app.keys, self.uid, conv, seq)
            .invoke_async::<()>(&mut self.app.redis.clone())
            .await
            .map_err(|e| unavailable(self.app, "cannot record acknowledgements", e))
    }

    /// The user read `conv` up to `seq` (already clamped by the caller).
    pub async fn read(&self, conv: &Conversation, seq: u64) -> Option<ServerFrame> {
        let app = self.app;
        let d = app.topology.durability;
        let mut con = app.confirmed.clone();
        let mut r: redis::RedisResult<u64> = scripts::read(&app.keys, self.uid, conv, seq).invoke_async(&mut con).await;
        if r.is_ok() && d.replicas > 0 {
            r = match scripts::wait(d.replicas, d.timeout).query_async::<u32>(&mut con).await {
                Ok(n) if n >= d.replicas => r,
                Ok(_) => {
                    Metrics::inc(&app.metrics.unconfirmed_writes_total);
                    return Some(ServerFrame::error(wire::error::UNAVAILABLE, "read state not confirmed by the replicas; send it again"));
                }
                Err(e) => Err(e),
            };
        }
        match r {
            Ok(_) => None,
            Err(e) => {
                Metrics::inc(&app.metrics.redis_errors_total);
                tracing::warn!(error = %e, "cannot record read state");
                Some(ServerFrame::error(wire::error::UNAVAILABLE, "read state not recorded; send it again"))
            }
        }
    }

    pub async fn send(&self, target: Target, data: &str, r#ref: Option<serde_json::Value>) -> ServerFrame {
        let refuse = |code: &str, message: String, r#ref| ServerFrame::Error { code: code.to_owned(), message, r#ref };
        if !self.app.settings.client_send {
            return refuse(wire::error::SEND_DISABLED, "clients may not send on this node; the app sends through chat_push()".into(), r#ref);
        }
        if let Err(e) = check_payload(self.app, "send", data) {
            return refuse(e.code(), e.to_string(), r#ref);
        }
        let (targets, to, own_conv) = match &target {
            Target::User(to) => {
                if let Err(e) = ids::validate("recipient", to) {
                    return refuse(wire::error::BAD_FRAME, e.to_string(), r#ref);
                }
                (scripts::direct_targets(to, Some(self.uid)), Some(to.as_str()), format!("u:{}", self.uid))
            }
            Target::Group(group) => {
                let Ok(conv) = Conversation::group(group) else {
                    return refuse(wire::error::BAD_FRAME, format!("bad group name {group:?}"), r#ref);
                };
                match self.is_member(group, self.uid).await {
                    Ok(true) => {}
                    Ok(false) => return refuse(wire::error::FORBIDDEN, format!("not a member of group {group:?}"), r#ref),
                    Err(e) => return e.with_ref(r#ref),
                }
                let id = conv.to_string();
                (vec![conv], None, id)
            }
        };
        let id = MessageId::generate();
        match self.accept(&id, to, data, &targets).await {
            Ok(seqs) => {
                Metrics::inc(&self.app.metrics.client_sends_total);
                // The sender's own copy (or the group's only copy) is the last target.
                ServerFrame::Sent { r#ref, id: id.to_string(), conv: own_conv, seq: seqs.last().map_or(0, |l| l.0) }
            }
            Err(why) => refuse(wire::error::UNAVAILABLE, why, r#ref),
        }
    }

    /// Stores a message of this user once Redis (and the replicas CHAT_REDIS_URL asks for)
    /// holds it: (sequence, epoch) per target. A try that lost its connection is repeated with
    /// the same id, which the push script recognises, so it is stored once.
    async fn accept(&self, id: &MessageId, to: Option<&str>, data: &str, targets: &[Conversation]) -> Result<Vec<(u64, u64)>, String> {
        let app = self.app;
        if !app.health.is_up() {
            return Err("not sent: chat backend unavailable; retry".into());
        }
        let d = app.topology.durability;
        let mut last = None;
        for attempt in 1..=ACCEPT_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let mut con = match app.confirmed.pin().await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let replid = con.replid().to_owned();
            let push = Push { id, from: Some(self.uid), to, data_json: data, targets, retention: app.settings.retention, replid: &replid, retry: attempt > 1 };
            let stored = if d.replicas == 0 {
                scripts::push(&app.keys, &push).invoke_async::<Vec<u64>>(&mut con).await.map(|flat| (flat, d.replicas))
            } else {
                push_and_wait(&app.keys, &push, d, &mut con).await
            };
            match stored {
                Ok((flat, confirmed)) if confirmed >= d.replicas => return Ok(scripts::landed(&flat)),
                Ok((_, confirmed)) => {
                    Metrics::inc(&app.metrics.unconfirmed_writes_total);
                    return Err(format!("stored as message {id}, but only {confirmed} of {} replica(s) confirmed it in time; it may be lost if Redis fails over now", d.replicas));
                }
                Err(e) if scripts::is_backlog_full(&e) || scripts::is_not_ready(&e) => {
                    Metrics::inc(&app.metrics.redis_errors_total);
                    return Err(format!("not sent: {}; retry later", e.detail().unwrap_or("chat backend not ready")));
                }
                Err(e) if crate::engine::drops_connection(&e) => last = Some(e),
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        Metrics::inc(&app.metrics.redis_errors_total);
        tracing::warn!(error = ?last, "client send failed");
        Err("not sent: chat backend unavailable; retry".into())
    }

    async fn publish(&self, channel: String, payload: String) -> Option<ServerFrame> {
        let r: redis::RedisResult<()> = redis::cmd("PUBLISH").arg(channel).arg(payload).query_async(&mut self.app.redis.clone()).await;
        r.err().map(|e| unavailable(self.app, "publish failed", e))
    }

    /// Whether the user may speak in `group`: from the session's view when it has one.
    async fn in_group(&self, group: &str, known: Known) -> Result<(), ServerFrame> {
        let conv = format!("g:{group}");
        match known {
            Known::Held(_) => Ok(()),
            Known::NotHeld => Err(forbidden(&conv)),
            Known::Ask => match self.is_member(group, self.uid).await? {
                true => Ok(()),
                false => Err(forbidden(&conv)),
            },
        }
    }

    /// Typing indicators: relayed live to the user or group, never stored.
    pub async fn typing(&self, target: Target, known: Known) -> Option<ServerFrame> {
        let uid = self.uid;
        match target {
            Target::User(to) => {
                if let Err(e) = ids::validate("recipient", &to) {
                    return Some(ServerFrame::error(wire::error::BAD_FRAME, e.to_string()));
                }
                let channel = self.app.keys.live(&Conversation::Inbox(to.clone()));
                self.publish(channel, format!(r#"e{{"type":"typing","from":"{uid}","to":"{to}"}}"#)).await
            }
            Target::Group(group) => {
                if let Err(e) = self.in_group(&group, known).await {
                    return Some(e);
                }
                let Ok(conv) = Conversation::group(&group) else { return Some(forbidden(&group)) };
                let channel = self.app.keys.live(&conv);
                self.publish(channel, format!(r#"e{{"type":"typing","from":"{uid}","group":"{group}"}}"#)).await
            }
        }
    }

    /// WebRTC signalling between two members of a group, relayed to the target's devices.
    pub async fn signal(&self, group: &str, to: &str, data: &str, known: Known) -> Option<ServerFrame> {
        if let Err(e) = check_payload(self.app, "signal", data) {
            return Some(ServerFrame::error(e.code(), e.to_string()));
        }
        if let Err(e) = self.in_group(group, known).await {
            return Some(e);
        }
        if let Err(e) = ids::validate("recipient", to) {
            return Some(ServerFrame::error(wire::error::BAD_FRAME, e.to_string()));
        }
        match self.is_member(group, to).await {
            Ok(true) => {}
            Ok(false) => return Some(ServerFrame::error(wire::error::FORBIDDEN, format!("{to:?} is not a member of group {group:?}"))),
            Err(frame) => return Some(frame),
        }
        let uid = self.uid;
        let channel = self.app.keys.live(&Conversation::Inbox(to.to_owned()));
        self.publish(channel, format!(r#"e{{"type":"signal","group":"{group}","from":"{uid}","data":{data}}}"#)).await
    }
}
