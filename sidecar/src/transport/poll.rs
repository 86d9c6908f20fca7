//! Long-polling transport (`GET /poll`): a session that outlives its requests.
//!
//! The first poll starts a session like any other; its answer names the session (`conn`).
//! Later polls carrying that `conn` attach to the same session, which in between keeps its
//! subscriptions and buffers what arrives, so nothing ephemeral is lost between polls and the
//! user stays online. A session without an attached request for `CHAT_POLL_GRACE_MS` ends.
//!
//! The client's cursors on each poll are the truth about what it has. When they are behind
//! what the session last answered, that answer was lost on the way: the buffer is dropped and
//! the session delivers again from the client's cursors, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_protocol::wire::{close, Cursors};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{close_json, close_with, Exit, Inbound, Transport};

/// A poll request handed to a session.
pub struct Attach {
    /// The client's cursors, when it sent them.
    pub cursors: Option<Cursors>,
    /// How long the request may be held.
    pub wait: Duration,
    /// Receives the JSON answer.
    pub reply: oneshot::Sender<String>,
}

/// The long-poll sessions of this node, by connection name.
#[derive(Default)]
pub struct Polls {
    sessions: Mutex<HashMap<String, PollSession>>,
}

/// A live long-poll session: its user, and where its requests are handed.
type PollSession = (Arc<str>, mpsc::Sender<Attach>);

impl Polls {
    /// Hands `attach` to the live session `conn` of `uid`; gives it back when there is none
    /// (expired, or on another node), so the caller starts a new session.
    pub fn attach(&self, conn: &str, uid: &str, attach: Attach) -> Result<(), Attach> {
        let sessions = self.sessions.lock().unwrap();
        match sessions.get(conn) {
            Some((owner, tx)) if &**owner == uid => tx.try_send(attach).map_err(|e| e.into_inner()),
            _ => Err(attach),
        }
    }

    fn insert(&self, conn: String, uid: Arc<str>, tx: mpsc::Sender<Attach>) {
        self.sessions.lock().unwrap().insert(conn, (uid, tx));
    }

    fn remove(&self, conn: &str) {
        self.sessions.lock().unwrap().remove(conn);
    }
}

pub struct PollTransport {
    conn: String,
    polls: Arc<Polls>,
    attaches: mpsc::Receiver<Attach>,
    /// The request being held, and when it must be answered.
    held: Option<(oneshot::Sender<String>, Instant)>,
    /// Frames not yet answered.
    frames: Vec<Utf8Bytes>,
    bytes: usize,
    /// Cursors after the last message frame fed, and as of the last answer.
    fed: Option<Cursors>,
    answered: Option<Cursors>,
    grace: Duration,
    /// Frames, and bytes of them, buffered without a request before the session waits for the
    /// client's next poll (`CHAT_OUTBOUND_QUEUE`, `CHAT_OUTBOUND_QUEUE_BYTES`).
    max_frames: usize,
    max_bytes: usize,
    idle_since: Instant,
}

/// Answer as soon as this much is buffered, so a long backlog goes out in pieces.
const ANSWER_FRAMES: usize = 500;
const ANSWER_BYTES: usize = 512 * 1024;

impl PollTransport {
    /// A new session's transport, holding its first request, registered under `conn`.
    pub fn new(polls: Arc<Polls>, conn: String, uid: Arc<str>, first: Attach, grace: Duration, max_frames: usize, max_bytes: usize) -> Self {
        let (tx, attaches) = mpsc::channel(4);
        polls.insert(conn.clone(), uid, tx);
        let now = Instant::now();
        PollTransport {
            conn,
            polls,
            attaches,
            held: Some((first.reply, now + first.wait)),
            frames: Vec::new(),
            bytes: 0,
            fed: None,
            answered: None,
            grace,
            max_frames: max_frames.max(ANSWER_FRAMES),
            max_bytes: max_bytes.max(ANSWER_BYTES),
            idle_since: now,
        }
    }

    /// Answers the held request with everything buffered.
    fn answer(&mut self, close: Option<String>) {
        let Some((reply, _)) = self.held.take() else { return };
        let mut body = String::with_capacity(self.bytes + 64);
        body.push_str(r#"{"conn":"#);
        body.push_str(&serde_json::to_string(&self.conn).expect("string serializes"));
        body.push_str(r#","frames":["#);
        for (i, f) in self.frames.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(f);
        }
        body.push(']');
        if let Some(c) = close {
            body.push_str(r#","close":"#);
            body.push_str(&c);
        }
        body.push('}');
        // A request that gave up already loses this answer; its client's next cursors show it.
        let _ = reply.send(body);
        self.frames.clear();
        self.bytes = 0;
        if self.fed.is_some() {
            self.answered = self.fed.clone();
        }
        self.idle_since = Instant::now();
    }

    /// Takes a new request: what the session must know of it.
    fn take(&mut self, a: Attach) -> Inbound {
        if self.held.is_some() {
            // Superseded by a newer poll of the same client.
            self.answer(None);
        }
        self.held = Some((a.reply, Instant::now() + a.wait));
        let lost = match (&a.cursors, &self.answered) {
            (Some(client), Some(answered)) => answered.iter().any(|(conv, &seq)| client.get(conv).is_none_or(|&c| c < seq)),
            _ => false,
        };
        if lost {
            self.frames.clear();
            self.bytes = 0;
            self.fed = None;
            self.answered = None;
        }
        Inbound::Attached { cursors: a.cursors, lost }
    }
}

impl Transport for PollTransport {
    const KIND: &'static str = "poll";
    const TRACKS_CURSORS: bool = true;

    async fn feed(&mut self, frame: Utf8Bytes, cursors: Option<Cursors>) -> Result<(), Exit> {
        self.bytes += frame.len();
        self.frames.push(frame);
        if cursors.is_some() {
            self.fed = cursors;
        }
        if self.frames.len() >= ANSWER_FRAMES || self.bytes >= ANSWER_BYTES {
            if self.held.is_some() {
                self.answer(None);
            } else if self.frames.len() >= self.max_frames || self.bytes >= self.max_bytes {
                // Backpressure: wait for the client's next poll instead of buffering more.
                let deadline = self.idle_since + self.grace;
                let next = tokio::select! {
                    a = self.attaches.recv() => a,
                    _ = tokio::time::sleep_until(deadline) => None,
                };
                let Some(a) = next else { return Err(Exit::Gone) };
                if let Inbound::Attached { lost: true, .. } = self.take(a) {
                    // It lost an answer while a backlog is being fed: simplest correct thing
                    // is a fresh session from its cursors.
                    return Err(close_with(close::TOO_SLOW, "an answer was lost during a replay; poll again with your cursors"));
                }
                self.answer(None);
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Exit> {
        if !self.frames.is_empty() {
            self.answer(None);
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<Inbound, Exit> {
        loop {
            let deadline = match &self.held {
                Some((_, until)) => *until,
                None => self.idle_since + self.grace,
            };
            tokio::select! {
                a = self.attaches.recv() => match a {
                    Some(a) => return Ok(self.take(a)),
                    None => return Err(Exit::Gone),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if self.held.is_some() {
                        self.answer(None);
                    } else {
                        return Err(Exit::Gone);
                    }
                }
            }
        }
    }

    async fn heartbeat(&mut self) -> Result<(), Exit> {
        Ok(())
    }

    async fn finish(mut self, exit: Exit) {
        self.polls.remove(&self.conn);
        let close = match exit {
            Exit::Close(code, reason) => Some(close_json(code, reason)),
            Exit::ClientClosed | Exit::Gone => None,
        };
        self.answer(close);
    }
}

impl Drop for PollTransport {
    fn drop(&mut self) {
        self.polls.remove(&self.conn);
    }
}
