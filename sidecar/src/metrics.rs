//! Counters and gauges, rendered as Prometheus text at `/metrics`.
//!
//! Plain atomics: the hot path only ever does a relaxed `fetch_add`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

macro_rules! metrics {
    ($( $(#[doc = $doc:literal])+ $name:ident : $kind:ident, )*) => {
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[doc = $doc])+ pub $name: metrics!(@ty $kind), )*
        }

        impl Metrics {
            /// Prometheus text exposition format.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let help = concat!($($doc),+).trim();
                    let _ = writeln!(out, "# HELP chat_{} {}", stringify!($name), help);
                    let _ = writeln!(out, "# TYPE chat_{} {}", stringify!($name), stringify!($kind));
                    let _ = writeln!(out, "chat_{} {}", stringify!($name), self.$name.load(Relaxed));
                )*
                out
            }
        }
    };
    (@ty counter) => { AtomicU64 };
    (@ty gauge) => { AtomicI64 };
}

metrics! {
    /// Client connections currently open.
    connections: gauge,
    /// HTTP connections open (WebSockets leave this count once upgraded).
    http_connections: gauge,
    /// Connections that have not authenticated yet (no complete request, or a WebSocket waiting for its auth frame).
    unauthenticated_connections: gauge,
    /// Unauthenticated connections closed to make room for newer ones (CHAT_MAX_UNAUTHENTICATED).
    unauthenticated_evicted_total: counter,
    /// HTTP connections closed because a request head (or a POST /send body) did not arrive within CHAT_HEADER_TIMEOUT_MS.
    header_timeouts_total: counter,
    /// Kept-alive HTTP connections closed after CHAT_IDLE_TIMEOUT_MS without a request.
    idle_timeouts_total: counter,
    /// Requests refused with 431 because their line and headers exceeded CHAT_MAX_HEADER_BYTES.
    oversized_headers_total: counter,
    /// Client connections authenticated since start.
    connections_total: counter,
    /// Connection attempts refused for a bad, expired or missing token.
    auth_failures_total: counter,
    /// Upgrade requests refused because their Origin is not allowed.
    origin_rejections_total: counter,
    /// Message frames written to clients (live and replayed).
    messages_delivered_total: counter,
    /// Messages fetched from Redis streams to fill a gap.
    messages_replayed_total: counter,
    /// Messages a connection could not get because the stream had already trimmed them.
    messages_trimmed_total: counter,
    /// Connections closed because their outbound queue overflowed or a write timed out.
    slow_consumer_disconnects_total: counter,
    /// Outbound queues that overflowed their frame bound (CHAT_OUTBOUND_QUEUE); each ends its connection with 4009.
    outbound_overflow_frames_total: counter,
    /// Outbound queues that overflowed their byte bound (CHAT_OUTBOUND_QUEUE_BYTES); each ends its connection with 4009.
    outbound_overflow_bytes_total: counter,
    /// Times the node returned freed memory to the system (malloc_trim) after slow consumers were disconnected.
    memory_trims_total: counter,
    /// Client frames refused by the rate limit.
    rate_limited_frames_total: counter,
    /// Connections closed for exceeding the frame size limit.
    oversized_frames_total: counter,
    /// Connections closed for invalid UTF-8.
    invalid_utf8_total: counter,
    /// Client frames answered with an error frame (bad JSON, unknown type, ...).
    bad_frames_total: counter,
    /// Client payloads (`send`, `signal`, `POST /send`) refused because they are not I-JSON (RFC 7493).
    payloads_refused_total: counter,
    /// Connections closed by chat_kick.
    kicks_total: counter,
    /// Redis commands that failed.
    redis_errors_total: counter,
    /// Times the pub/sub connection to Redis was re-established.
    pubsub_reconnects_total: counter,
    /// Messages sent by clients with `send` frames.
    client_sends_total: counter,
    /// Messages written to MySQL by this node.
    messages_persisted_total: counter,
    /// Messages replayed to clients from MySQL (older than Redis retention).
    messages_from_mysql_total: counter,
    /// MySQL statements that failed.
    mysql_errors_total: counter,
    /// Messages that took the (conversation, seq) of one Redis lost; the old row went to chat_messages_replaced.
    history_conflicts_total: counter,
    /// Persistence log entries that were not message envelopes, moved to the dead-letter stream.
    log_dead_letters_total: counter,
    /// Writes (client sends, acknowledgements, read state) not confirmed by the replicas CHAT_REDIS_URL asks for.
    unconfirmed_writes_total: counter,
    /// Resets sent: a client had seen messages Redis then lost (a failover, a restart without persistence).
    history_resets_total: counter,
    /// Times Redis became unreachable (every connection closed with 1013).
    redis_outages_total: counter,
    /// Webhooks the app accepted (2xx).
    webhooks_delivered_total: counter,
    /// Webhook attempts that failed and were retried.
    webhook_retries_total: counter,
    /// Webhooks given up after all retries, or dropped because too many were in flight.
    webhook_dropped_total: counter,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.kicks_total);
        m.connections.fetch_add(3, Relaxed);
        let text = m.render();
        assert!(text.contains("# TYPE chat_kicks_total counter\nchat_kicks_total 1\n"), "{text}");
        assert!(text.contains("chat_connections 3\n"));
        assert!(text.contains("# HELP chat_connections Client connections currently open."));
    }
}
