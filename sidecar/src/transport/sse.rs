//! Server-Sent Events transport (`GET /sse`): one streamed HTTP response per session.
//!
//! Every frame is an event whose `data` is the frame's JSON; message frames and the welcome
//! carry an `id:` holding all of the client's cursors, so `EventSource`'s own reconnect
//! (`Last-Event-ID`) resumes exactly. The client sends through `POST /send`, so there is
//! nothing to read here: the session only learns that the client left when the response body
//! is dropped.

use std::time::Duration;

use axum::body::{Body, Bytes};
use chat_protocol::wire::Cursors;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{close_json, Exit, Inbound, Transport};
use crate::app::App;
use crate::metrics::Metrics;

pub struct SseTransport {
    tx: mpsc::Sender<Bytes>,
    /// Events fed since the last flush.
    buf: String,
    write_timeout: Duration,
    metrics: std::sync::Arc<Metrics>,
}

impl SseTransport {
    /// The transport and the response body it writes to.
    pub fn new(app: &App) -> (Self, Body) {
        // A few chunks in flight: a client that stops reading blocks the session's writes,
        // which then time out like a stuck WebSocket.
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
        });
        let t = SseTransport {
            tx,
            buf: String::new(),
            write_timeout: Duration::from_millis(app.settings.write_timeout_ms),
            metrics: app.metrics.clone(),
        };
        (t, Body::from_stream(stream))
    }

    /// Appends one event. `data` is split at line breaks (JSON may contain them as
    /// whitespace); the client joins the lines with `\n`, which keeps the JSON equal.
    fn push_event(&mut self, event: Option<&str>, id: Option<&str>, data: &str) {
        if let Some(e) = event {
            self.buf.push_str("event: ");
            self.buf.push_str(e);
            self.buf.push('\n');
        }
        if let Some(id) = id {
            self.buf.push_str("id: ");
            self.buf.push_str(id);
            self.buf.push('\n');
        }
        for line in data.split(['\r', '\n']) {
            self.buf.push_str("data: ");
            self.buf.push_str(line);
            self.buf.push('\n');
        }
        self.buf.push('\n');
    }
}

impl Transport for SseTransport {
    const KIND: &'static str = "sse";
    const TRACKS_CURSORS: bool = true;

    async fn feed(&mut self, frame: Utf8Bytes, cursors: Option<Cursors>) -> Result<(), Exit> {
        let id = cursors.map(|c| serde_json::to_string(&c).expect("cursors serialize"));
        self.push_event(None, id.as_deref(), &frame);
        if self.buf.len() >= 64 * 1024 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Exit> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        match tokio::time::timeout(self.write_timeout, self.tx.send(chunk)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::Gone),
            Err(_) => {
                Metrics::inc(&self.metrics.slow_consumer_disconnects_total);
                tracing::info!("SSE write timed out; dropping slow client");
                Err(Exit::Gone)
            }
        }
    }

    async fn recv(&mut self) -> Result<Inbound, Exit> {
        // The body is dropped when the client disconnects.
        self.tx.closed().await;
        Err(Exit::Gone)
    }

    async fn heartbeat(&mut self) -> Result<(), Exit> {
        self.buf.push_str(": heartbeat\n\n");
        self.flush().await
    }

    async fn finish(mut self, exit: Exit) {
        if let Exit::Close(code, reason) = exit {
            self.push_event(Some("close"), None, &close_json(code, reason));
            let _ = self.flush().await;
        }
    }
}
