//! WebSocket transport (`/ws`): frames are WebSocket text frames, liveness is ping/pong.
//!
//! Messages from the hub arrive with their frame already encoded ([`LiveMessage::ws_frame`]):
//! a session copies those bytes into a buffer of its own and writes it to the socket itself,
//! instead of handing each message to tungstenite (which would take a reference to it and
//! encode the same frame again for every recipient). Everything else — events, replays,
//! pings, the close — goes through tungstenite. The two never interleave: whichever has bytes
//! waiting is written out before the other takes a frame, so the client sees frames in the
//! order the session fed them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_protocol::wire::{self, close, ClientFrame, Cursors};
use chat_protocol::Claims;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::{close_with, truncate, Exit, Inbound, Transport};
use crate::app::App;
use crate::hub::LiveMessage;
use crate::metrics::Metrics;

/// A WebSocket on the plain socket (`edge::upgraded_socket`).
pub type Ws = WebSocketStream<TcpStream>;

pub struct WsTransport {
    ws: Ws,
    metrics: Arc<Metrics>,
    write_timeout: Duration,
    heartbeat: Duration,
    last_heard: Instant,
    max_frame_bytes: usize,
    /// Encoded message frames not written yet; written once they reach `write_buffer` bytes,
    /// and at each flush (then freed: an idle connection keeps no buffer).
    out: Vec<u8>,
    write_buffer: usize,
}

/// `payload` as one unmasked, final WebSocket text frame (RFC 6455 §5.2).
pub fn text_frame(payload: &str) -> Bytes {
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(0x81);
    if len < 126 {
        frame.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        frame.push(126);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(payload.as_bytes());
    frame.into()
}

impl WsTransport {
    pub fn new(app: &App, ws: Ws) -> Self {
        WsTransport {
            ws,
            metrics: app.metrics.clone(),
            write_timeout: Duration::from_millis(app.settings.write_timeout_ms),
            heartbeat: Duration::from_millis(app.settings.heartbeat_ms),
            last_heard: Instant::now(),
            max_frame_bytes: app.settings.max_frame_bytes,
            out: Vec::new(),
            write_buffer: app.settings.write_buffer_bytes.max(1),
        }
    }

    /// Writes the encoded frames waiting in `out`, after anything tungstenite holds.
    async fn write_out(&mut self) -> Result<(), Exit> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Tungstenite may hold part of a frame (a pong it could not finish writing while it
        // read): it goes first, or the stream would be corrupt.
        let r = bounded(self.write_timeout, self.ws.flush()).await;
        self.io(r)?;
        let (ws, out) = (&mut self.ws, &self.out);
        let r = bounded(self.write_timeout, async { ws.get_mut().write_all(out).await.map_err(WsError::Io) }).await;
        self.io(r)?;
        self.out = Vec::new();
        Ok(())
    }

    /// Hands a frame to tungstenite, after the encoded frames waiting in `out`.
    async fn feed_ws(&mut self, message: Message) -> Result<(), Exit> {
        self.write_out().await?;
        let r = bounded(self.write_timeout, self.ws.feed(message)).await;
        self.io(r)
    }

    /// Checks the token from the URL/header, or waits for an `auth` frame (which may also
    /// bring resume cursors). With `CHAT_ANONYMOUS_CONNECT` a connection without a token in
    /// the URL or a header is anonymous at once (`None`): it may still send an `auth` frame,
    /// which then binds it.
    pub async fn authenticate(&mut self, app: &App, token: Option<String>, cursors: &mut Option<Cursors>) -> Result<Option<Claims>, Exit> {
        let token = match token {
            Some(t) => t,
            None if app.settings.anonymous_connect => return Ok(None),
            None => self.auth_frame(Duration::from_millis(app.settings.auth_timeout_ms), cursors).await?,
        };
        crate::session::verify_token(app, &token).map(Some)
    }

    /// Waits for the `auth` frame. Anything else first — another text frame, a binary frame, a
    /// ping — closes with 4003 as docs/PROTOCOL.md promises; an unsolicited pong is a heartbeat
    /// (RFC 6455 §5.5.3) and is passed over; a close is answered like any other.
    async fn auth_frame(&mut self, wait: Duration, cursors: &mut Option<Cursors>) -> Result<String, Exit> {
        const NOT_AUTH: &str = "the first frame must be {\"type\":\"auth\",\"token\":\"...\"}";
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(close_with(close::AUTH_TIMEOUT, "no token: pass ?token=, an Authorization: Bearer header, or an auth frame first")),
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(self.read_error(e)),
                Ok(None) => return Err(Exit::Gone),
            };
            return match msg {
                Message::Text(t) => match wire::parse_client(&t) {
                    Ok(ClientFrame::Auth { token, cursors: from_frame }) => {
                        if from_frame.is_some() {
                            *cursors = from_frame;
                        }
                        Ok(token)
                    }
                    _ => Err(close_with(close::AUTH_TIMEOUT, NOT_AUTH)),
                },
                Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(_) => Err(Exit::ClientClosed),
                Message::Binary(_) | Message::Ping(_) => Err(close_with(close::AUTH_TIMEOUT, NOT_AUTH)),
            };
        }
    }

    fn read_error(&self, e: WsError) -> Exit {
        match e {
            WsError::Capacity(_) => {
                Metrics::inc(&self.metrics.oversized_frames_total);
                close_with(close::TOO_BIG, format!("frame exceeds {} bytes", self.max_frame_bytes))
            }
            WsError::Utf8(_) => {
                Metrics::inc(&self.metrics.invalid_utf8_total);
                close_with(close::INVALID_UTF8, "text frame is not valid UTF-8")
            }
            WsError::Protocol(p) => close_with(1002, format!("protocol error: {p}")),
            _ => Exit::Gone,
        }
    }

    fn io(&self, r: Result<Result<(), WsError>, tokio::time::error::Elapsed>) -> Result<(), Exit> {
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::Gone),
            Err(_) => {
                Metrics::inc(&self.metrics.slow_consumer_disconnects_total);
                tracing::info!("write timed out; dropping slow client");
                Err(Exit::Gone)
            }
        }
    }
}

/// Runs a write, bounded by `limit` only if it does not complete at once. Almost every write
/// does (the socket buffer has room), and then no timer is created: a deadline per frame would
/// read the clock and build a timer entry for every frame of every recipient.
async fn bounded<F>(limit: Duration, write: F) -> Result<Result<(), WsError>, tokio::time::error::Elapsed>
where
    F: Future<Output = Result<(), WsError>>,
{
    let mut write = std::pin::pin!(write);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(r) = first {
        return Ok(r);
    }
    Box::pin(tokio::time::timeout(limit, write)).await
}

impl Transport for WsTransport {
    const KIND: &'static str = "websocket";

    async fn feed(&mut self, frame: Utf8Bytes, _cursors: Option<Cursors>) -> Result<(), Exit> {
        self.feed_ws(Message::Text(frame)).await
    }

    async fn feed_live(&mut self, m: &LiveMessage, _cursors: Option<Cursors>) -> Result<(), Exit> {
        if self.out.is_empty() {
            self.out.reserve(self.write_buffer.max(m.ws_frame.len()));
        }
        self.out.extend_from_slice(&m.ws_frame);
        if self.out.len() >= self.write_buffer {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Exit> {
        if !self.out.is_empty() {
            // Flushes tungstenite first.
            return self.write_out().await;
        }
        let r = bounded(self.write_timeout, self.ws.flush()).await;
        self.io(r)
    }

    async fn recv(&mut self) -> Result<Inbound, Exit> {
        let msg = match self.ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(self.read_error(e)),
            None => return Err(Exit::Gone),
        };
        self.last_heard = Instant::now();
        match msg {
            Message::Text(t) => Ok(Inbound::Text(t)),
            Message::Binary(_) => Ok(Inbound::Binary),
            Message::Close(_) => Err(Exit::ClientClosed),
            Message::Pong(_) | Message::Frame(_) => Ok(Inbound::Activity),
            // tungstenite queues the pong itself; it goes out with the next flush. Pings count
            // against the rate limit like any frame, so a ping flood cannot grow the queue.
            Message::Ping(_) => Ok(Inbound::Ping),
        }
    }

    async fn heartbeat(&mut self) -> Result<(), Exit> {
        if self.last_heard.elapsed() > self.heartbeat * 5 / 2 {
            return Err(close_with(close::TIMEOUT, "no frames from client; reconnect"));
        }
        self.feed_ws(Message::Ping(Default::default())).await?;
        self.flush().await
    }

    /// Sends the close frame (or answers the client's), then waits briefly for the handshake.
    async fn finish(mut self, exit: Exit) {
        let limit = self.write_timeout.min(Duration::from_secs(2));
        let frame = match exit {
            Exit::Gone => return,
            Exit::ClientClosed => {
                // Tungstenite queued the answer when it read the client's close — the client's
                // code echoed, or 1002 for a code RFC 6455 does not allow — and a flush sends it
                // (a second close() would be refused as SendAfterClosing, and the client saw
                // 1006). Frames still in `out` are dropped: nothing may follow a close. Then the
                // server closes TCP first (§7.1.1): dropping the stream does.
                let _ = tokio::time::timeout(limit, self.ws.flush()).await;
                return;
            }
            Exit::Close(code, reason) => Some(CloseFrame { code: code.into(), reason: truncate(reason).into() }),
        };
        if self.write_out().await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(limit, async {
            // A pong tungstenite holds must go first: it would write it after the close frame.
            if self.ws.flush().await.is_ok() && self.ws.close(frame).await.is_ok() {
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    /// Our frames parse as tungstenite's, at each of the three length encodings.
    #[test]
    fn a_text_frame_is_what_tungstenite_reads() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let payload = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let frame = text_frame(&payload);
            let mut cursor = std::io::Cursor::new(&frame[..]);
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().expect("a whole header");
            assert!(header.is_final && header.mask.is_none(), "final, unmasked");
            assert_eq!(header.opcode, tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text));
            assert_eq!(length as usize, payload.len());
            assert_eq!(&frame[cursor.position() as usize..], payload.as_bytes());
        }
    }

    #[test]
    fn a_live_message_shares_its_text_with_its_frame() {
        let m = LiveMessage::new("t".into(), 1, "{\"a\":1}");
        assert_eq!(m.text.as_str(), "{\"a\":1}");
        assert_eq!(&m.ws_frame[2..], m.text.as_bytes());
    }
}
