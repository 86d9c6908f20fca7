//! The HTTP listener: accepts sockets and serves each with hyper's HTTP/1 connection, driven
//! here rather than by `axum::serve`, which exposes none of the limits a node facing the
//! internet needs (issue 17: a socket that sent nothing, or an unfinished request line, was held
//! for ever, and headers of ~500 KB were read):
//!
//! - **header-read timeout** (`CHAT_HEADER_TIMEOUT_MS`): a request head must be complete this
//!   long after the connection was accepted, or after the first byte of a later request;
//! - **idle timeout** (`CHAT_IDLE_TIMEOUT_MS`): a kept-alive connection with no request in flight
//!   is closed after this (a held long-poll or an open SSE stream is in flight, never idle);
//! - **header size** (`CHAT_MAX_HEADER_BYTES`): a larger request line and headers are answered
//!   `431 Request Header Fields Too Large` and the connection is closed;
//! - **unauthenticated connections** (`CHAT_MAX_UNAUTHENTICATED`): see [`crate::edge`].
//!
//! Each connection is one task that owns hyper's connection future and one timer, re-armed from
//! the connection's phase ([`edge::ConnState`]) whenever it fires: a close happens only if the
//! phase's deadline has really passed. A WebSocket leaves all of it at the upgrade (hyper's
//! connection ends there), so a live session pays nothing for it.
//!
//! Shutdown: stop accepting, ask every connection to finish its request and close, wait for
//! them (as `axum::serve`'s graceful shutdown did).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::edge::{self, Admission, ConnState, InFlight, Phase, Slot, Unauthenticated};
use crate::metrics::Metrics;

/// The listener's limits (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
}

/// hyper refuses a read buffer below this; heads between `max_header_bytes` and it are still
/// refused once complete (`max_header_size`).
const HYPER_MIN_BUF: usize = 8192;

/// Serves `router` on `listener` until `shutdown`, then waits (at most `drain`) for the
/// connections to finish.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, admission: Arc<Admission>, metrics: Arc<Metrics>, shutdown: CancellationToken, drain: Duration) {
    let conns = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors, mostly: the unauthenticated cap keeps this rare.
                // Accepting again at once would spin; a short pause lets connections close.
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        // Frames are small and latency matters: without TCP_NODELAY a frame written while the
        // previous one is unacknowledged waits for the client's delayed ACK (up to 40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let slot = admission.admit();
        conns.spawn(connection(tcp, router.clone(), limits, slot, metrics.clone(), shutdown.clone()));
    }
    conns.close();
    if tokio::time::timeout(drain, conns.wait()).await.is_err() {
        tracing::warn!("HTTP connections did not finish within {drain:?}");
    }
}

/// Why the listener closed a connection.
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

async fn connection(tcp: TcpStream, router: Router, limits: Limits, slot: Slot, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let _open = Gauge::up(&metrics);
    let state = ConnState::new();
    let eviction = slot.eviction();
    // The slot rides with the first request (see edge::Unauthenticated); later requests find
    // none.
    let first = std::sync::Mutex::new(Some(slot));
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let busy = service_state.request();
        if let Some(slot) = first.lock().unwrap().take() {
            req.extensions_mut().insert(Unauthenticated(Arc::new(slot)));
        }
        let router = router.clone();
        async move {
            let res: Response = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|never| match never {});
            Ok::<_, std::convert::Infallible>(res.map(|body| Body::new(Tracked { body, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(limits.max_header_bytes.max(HYPER_MIN_BUF)).max_header_size(limits.max_header_bytes);
    let conn = builder.serve_connection(TokioIo::new(edge::Watched::new(tcp, state.clone())), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let timer = tokio::time::sleep(Duration::ZERO);
    let mut timer = std::pin::pin!(timer);
    let mut draining = false;
    let mut eviction_moot = false;
    let closed = loop {
        let (phase, since) = state.phase();
        let deadline = match phase {
            Phase::Head => since + limits.header_timeout,
            Phase::Idle => since + limits.idle_timeout,
            // Looked at again after the shorter timeout: by then it may be idle.
            Phase::Busy => Instant::now().into_std() + limits.header_timeout.min(limits.idle_timeout),
        };
        timer.as_mut().reset(deadline.into());
        tokio::select! {
            biased;
            done = conn.as_mut() => {
                if let Err(e) = done {
                    if e.is_parse_too_large() {
                        Metrics::inc(&metrics.oversized_headers_total);
                    }
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                break None;
            }
            // The phase changed: its deadline is set again at the top of the loop.
            _ = state.changed() => {}
            _ = &mut timer => {
                let (phase, since) = state.phase();
                let now = std::time::Instant::now();
                match phase {
                    Phase::Head if now >= since + limits.header_timeout => break Some(Closed::HeaderTimeout),
                    Phase::Idle if now >= since + limits.idle_timeout => break Some(Closed::IdleTimeout),
                    _ => {}
                }
            }
            // Only while the first request's head is not complete; after that the slot moved
            // on (to the WebSocket upgrade, which closes itself, or dropped with the request).
            _ = eviction.cancelled(), if !eviction_moot => {
                if state.never_served() {
                    break Some(Closed::Evicted);
                }
                eviction_moot = true;
            }
            _ = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    match closed {
        Some(Closed::HeaderTimeout) => Metrics::inc(&metrics.header_timeouts_total),
        Some(Closed::IdleTimeout) => Metrics::inc(&metrics.idle_timeouts_total),
        Some(Closed::Evicted) | None => {}
    }
    // Dropping the connection closes the socket.
}

/// The open-HTTP-connections gauge, held by a connection's task.
struct Gauge(Arc<Metrics>);

impl Gauge {
    fn up(metrics: &Arc<Metrics>) -> Gauge {
        metrics.http_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Gauge(metrics.clone())
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.http_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until hyper has written (or dropped) it,
/// so a long-poll or an SSE stream never counts as idle.
struct Tracked {
    body: Body,
    _busy: InFlight,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
