//! What the HTTP listener (`listener.rs`) shares with the request handlers (`http.rs`): the
//! admission of connections that have not authenticated yet, and the socket wrapper that tells
//! the listener when a request begins.
//!
//! A node faces the internet, and a socket costs it a file descriptor (20,000 per process here)
//! and hyper's buffers whether or not its client ever says who it is. 600 sockets that sent
//! nothing took every descriptor of a node limited to 512, and `/healthz` and logins timed out
//! (issue 17). So:
//!
//! - every accepted socket holds a [`Slot`] of the [`Admission`] until its first request head
//!   is complete — a WebSocket until it is authenticated (its token checked, or its `auth` frame
//!   read). At most `CHAT_MAX_UNAUTHENTICATED` slots exist; admitting one more closes the
//!   *oldest* holder. Refusing the newest instead would let whoever holds the slots lock
//!   everyone out; closing the oldest means an attacker must open sockets faster than a real
//!   client completes its request (a millisecond or so) to keep anyone out;
//! - [`Watched`] notes when the first byte of a request arrives on a kept-alive connection, so
//!   the listener can apply the header-read timeout from there and the idle timeout before it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The connections that have not authenticated yet, at most `cap` of them.
pub struct Admission {
    cap: usize,
    /// Slot number (in admission order) -> how to close its holder.
    held: Mutex<BTreeMap<u64, CancellationToken>>,
    next: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(cap: usize, metrics: Arc<Metrics>) -> Arc<Admission> {
        Arc::new(Admission { cap: cap.max(1), held: Mutex::new(BTreeMap::new()), next: AtomicU64::new(0), metrics })
    }

    /// A slot for a new connection; at the cap, the oldest holder is told to close.
    pub fn admit(self: &Arc<Self>) -> Slot {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut held = self.held.lock().unwrap();
        while held.len() >= self.cap {
            let Some((_, oldest)) = held.pop_first() else { break };
            oldest.cancel();
            Metrics::inc(&self.metrics.unauthenticated_evicted_total);
        }
        held.insert(id, evicted.clone());
        self.metrics.unauthenticated_connections.store(held.len() as i64, Ordering::Relaxed);
        Slot { id, evicted, admission: self.clone() }
    }

    fn release(&self, id: u64) {
        let mut held = self.held.lock().unwrap();
        held.remove(&id);
        self.metrics.unauthenticated_connections.store(held.len() as i64, Ordering::Relaxed);
    }
}

/// A connection's place among the unauthenticated ones; dropping it gives the place back.
pub struct Slot {
    id: u64,
    evicted: CancellationToken,
    admission: Arc<Admission>,
}

impl Slot {
    /// Completes when the connection must close to make room for a newer one.
    pub fn evicted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.evicted.cancelled()
    }

    /// The same signal, to keep after the slot moved on.
    pub fn eviction(&self) -> CancellationToken {
        self.evicted.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(self.id);
    }
}

/// The slot of a connection whose first request this is, in the request's extensions: the
/// WebSocket upgrade keeps it until the connection is authenticated; every other handler drops
/// it with the request, its head being complete.
#[derive(Clone)]
pub struct Unauthenticated(pub Arc<Slot>);

/// Where an HTTP connection is, for the listener's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// A request head is on its way: from the connection's start, or the first byte of a later
    /// request. The header-read timeout applies.
    Head = 0,
    /// A request is being handled or its response written (also a held long-poll, an SSE
    /// stream). No timeout here.
    Busy = 1,
    /// Between requests on a kept-alive connection. The idle timeout applies.
    Idle = 2,
}

/// An HTTP connection's phase and since when, shared by [`Watched`], the service and the
/// listener.
pub struct ConnState {
    born: Instant,
    phase: AtomicU8,
    /// Milliseconds after `born` that the phase began.
    since_ms: AtomicU64,
    in_flight: AtomicU64,
    /// A request head was complete at least once.
    served: AtomicBool,
    /// Wakes the listener when the phase changes, so it arms that phase's deadline.
    changed: tokio::sync::Notify,
}

impl ConnState {
    pub fn new() -> Arc<ConnState> {
        Arc::new(ConnState { born: Instant::now(), phase: AtomicU8::new(Phase::Head as u8), since_ms: AtomicU64::new(0), in_flight: AtomicU64::new(0), served: AtomicBool::new(false), changed: tokio::sync::Notify::new() })
    }

    /// The phase and when it began.
    pub fn phase(&self) -> (Phase, Instant) {
        let phase = match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        };
        (phase, self.born + std::time::Duration::from_millis(self.since_ms.load(Ordering::Acquire)))
    }

    /// Whether no request head was ever complete on this connection.
    pub fn never_served(&self) -> bool {
        !self.served.load(Ordering::Acquire)
    }

    fn enter(&self, phase: Phase) {
        self.since_ms.store(self.born.elapsed().as_millis() as u64, Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
        // Stores a permit if the listener is not waiting right now: no change is missed.
        self.changed.notify_one();
    }

    /// Completes after the phase changed (since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// A request head is complete: busy until the returned guard (kept by the response body)
    /// is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.enter(Phase::Busy);
        InFlight(self.clone())
    }
}

/// A request being served; when the last one ends the connection is idle.
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(Phase::Idle);
        }
    }
}

/// The socket as hyper sees it: reads note the first byte of a request on an idle connection.
pub struct Watched {
    tcp: TcpStream,
    state: Arc<ConnState>,
}

impl Watched {
    pub fn new(tcp: TcpStream, state: Arc<ConnState>) -> Watched {
        Watched { tcp, state }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before && self.state.phase.load(Ordering::Acquire) == Phase::Idle as u8 {
            self.state.enter(Phase::Head);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The plain socket of an upgraded connection, and what hyper had read past the request (the
/// client's first frames, if it sent them at once). A WebSocket session then keeps neither
/// hyper's boxed stream nor this wrapper for its whole life.
pub fn upgraded_socket(upgraded: hyper::upgrade::Upgraded) -> Option<(TcpStream, Vec<u8>)> {
    match upgraded.downcast::<hyper_util::rt::TokioIo<Watched>>() {
        Ok(parts) => Some((parts.io.into_inner().tcp, parts.read_buf.to_vec())),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_unauthenticated_connection_makes_room() {
        let metrics = Arc::new(Metrics::default());
        let admission = Admission::new(2, metrics.clone());
        let (a, b) = (admission.admit(), admission.admit());
        assert_eq!(metrics.unauthenticated_connections.load(Ordering::Relaxed), 2);
        drop(b);
        let c = admission.admit();
        assert!(!a.eviction().is_cancelled(), "room was made by the one that left");
        let d = admission.admit();
        assert!(a.eviction().is_cancelled(), "the oldest is told to close");
        assert!(!c.eviction().is_cancelled() && !d.eviction().is_cancelled());
        a.evicted().await;
        drop(a);
        assert_eq!(metrics.unauthenticated_connections.load(Ordering::Relaxed), 2, "an evicted slot is not counted twice");
        assert_eq!(metrics.unauthenticated_evicted_total.load(Ordering::Relaxed), 1);
        drop((c, d));
        assert_eq!(metrics.unauthenticated_connections.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_connection_is_idle_once_its_last_request_is_done() {
        let state = ConnState::new();
        assert_eq!(state.phase().0, Phase::Head, "a new connection waits for its first head");
        let first = state.request();
        let second = state.request();
        assert_eq!(state.phase().0, Phase::Busy);
        drop(first);
        assert_eq!(state.phase().0, Phase::Busy);
        drop(second);
        assert_eq!(state.phase().0, Phase::Idle);
    }
}
