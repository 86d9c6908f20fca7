//! How frames reach a client and come back: the one thing that differs between WebSocket,
//! Server-Sent Events and long-polling.
//!
//! A [`crate::session::Session`] owns the delivery logic (cursors, replay, presence, acks) and
//! drives any [`Transport`]; a transport only moves bytes. So all three transports give the
//! same authentication, order and resume semantics, and a fix to delivery is a fix for all.

pub mod poll;
pub mod sse;
pub mod ws;

use std::borrow::Cow;

use chat_protocol::wire::Cursors;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::hub::LiveMessage;

/// How a session ends.
#[derive(Debug)]
pub enum Exit {
    /// Tell the client this close code and reason (a close frame, an SSE `close` event or a
    /// poll answer's `close`).
    Close(u16, Cow<'static, str>),
    /// The client closed; answer its close frame.
    ClientClosed,
    /// The transport is gone or stuck; just drop it.
    Gone,
}

pub fn close_with(code: u16, reason: impl Into<Cow<'static, str>>) -> Exit {
    Exit::Close(code, reason.into())
}

/// What came from the client.
#[derive(Debug)]
pub enum Inbound {
    /// A text frame (JSON, parsed by the session).
    Text(Utf8Bytes),
    /// A binary frame: refused with an error frame.
    Binary,
    /// Proof of life without content (a pong).
    Activity,
    /// A WebSocket ping: counts against the rate limit; its pong goes out on the next flush.
    Ping,
    /// A long-poll request attached, with the client's cursors when it sent them (they count
    /// as its acknowledgement). The session flushes what it has. With `lost`, the client lacks
    /// part of what was answered before (an answer was lost on the way): the transport has
    /// dropped its buffer, and the session restarts each conversation after the client's
    /// cursor (a conversation missing from them restarts where the session started it).
    Attached { cursors: Option<Cursors>, lost: bool },
}

/// Moves frames between a session and its client.
///
/// `feed` queues a frame, `flush` pushes what is queued to the client; a session feeds a batch
/// and flushes once. Errors are the [`Exit`] the session must end with.
pub trait Transport: Send {
    /// Name in presence records (`chat_user_devices()`): `websocket`, `sse`, `poll`.
    const KIND: &'static str;
    /// Whether the transport wants every cursor after each message frame (SSE writes them as
    /// event ids; long-poll compares them with what the client says it has).
    const TRACKS_CURSORS: bool = false;

    /// Queues a frame. With [`Self::TRACKS_CURSORS`], frames that move a cursor (messages and
    /// the welcome) come with all of the client's cursors after them.
    fn feed(&mut self, frame: Utf8Bytes, cursors: Option<Cursors>) -> impl std::future::Future<Output = Result<(), Exit>> + Send;

    /// Queues a message from the hub; like [`Self::feed`] with its text, unless the transport
    /// has a cheaper way to write a frame every recipient shares.
    fn feed_live(&mut self, m: &LiveMessage, cursors: Option<Cursors>) -> impl std::future::Future<Output = Result<(), Exit>> + Send {
        self.feed(m.text.clone(), cursors)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = Result<(), Exit>> + Send;

    /// The next thing from the client. Pending as long as nothing comes (forever for SSE,
    /// whose client sends through `POST /send`); an error when the client is gone.
    fn recv(&mut self) -> impl std::future::Future<Output = Result<Inbound, Exit>> + Send;

    /// Called every heartbeat interval: keep the link alive and detect a silent client.
    fn heartbeat(&mut self) -> impl std::future::Future<Output = Result<(), Exit>> + Send;

    /// Tells the client why the session ended and releases the transport.
    fn finish(self, exit: Exit) -> impl std::future::Future<Output = ()> + Send;
}

/// Close reasons are limited to 123 bytes by RFC 6455; the other transports keep the same text.
pub fn truncate(reason: Cow<'static, str>) -> String {
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

/// `{"code":4004,"reason":"…"}`: how SSE and long-poll say what a close frame would.
pub fn close_json(code: u16, reason: Cow<'static, str>) -> String {
    serde_json::json!({"code": code, "reason": truncate(reason)}).to_string()
}
