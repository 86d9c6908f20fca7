//! Signed webhooks to the PHP app: "these messages wait for an offline user", so the app can
//! send a mobile push, SMS or mail.
//!
//! The body is JSON; `X-Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
//! body>">` with `CHAT_WEBHOOK_SECRET` (Stripe's scheme): the timestamp is signed with the
//! body, so a receiver refuses a captured request replayed later than its tolerance (5 minutes
//! in `Chat\Webhook::verify`) even after it has forgotten the delivery ids it handled. Each
//! attempt is signed when it is sent, so a retry after a long backoff is not stale. Each delivery has an id (`X-Chat-Delivery`, also in the body) so the
//! app can drop a retried duplicate. Failed deliveries (network error or non-2xx) are retried
//! with exponential backoff; in-flight deliveries are bounded, and beyond the bound new ones
//! are dropped with an error log rather than growing memory.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::store::StoredMessage;

const MAX_IN_FLIGHT: usize = 1024;

pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: String,
    retries: u32,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Webhook {
    pub fn new(url: String, secret: String, retries: u32, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Webhook>> {
        anyhow::ensure!(!secret.is_empty(), "CHAT_WEBHOOK_URL is set but CHAT_WEBHOOK_SECRET is empty: the app could not verify the webhooks");
        let parsed = reqwest::Url::parse(&url).map_err(|e| anyhow::anyhow!("CHAT_WEBHOOK_URL {url:?}: {e}"))?;
        anyhow::ensure!(matches!(parsed.scheme(), "http" | "https"), "CHAT_WEBHOOK_URL must be http:// or https://");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("chat-sidecar/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Webhook { client, url, secret, retries, slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)), metrics }))
    }

    /// Queues a `message.offline` notification for `user`.
    pub fn offline_messages(self: &Arc<Self>, user: &str, messages: &[&StoredMessage]) {
        let envelopes: Vec<String> = messages.iter().map(|m| m.envelope()).collect();
        let delivery = ulid::Ulid::new().to_string();
        // Envelopes are spliced in as they are: they are JSON already.
        let body = format!(
            r#"{{"event":"message.offline","delivery":"{delivery}","user":"{user}","count":{},"messages":[{}]}}"#,
            envelopes.len(),
            envelopes.join(",")
        );
        self.send("message.offline", delivery, body);
    }

    /// Queues a presence event: `fields` are the JSON members after `event` and `delivery`.
    pub fn event(self: &Arc<Self>, event: &'static str, fields: String) {
        let delivery = ulid::Ulid::new().to_string();
        let body = format!(r#"{{"event":"{event}","delivery":"{delivery}",{fields}}}"#);
        self.send(event, delivery, body);
    }

    fn send(self: &Arc<Self>, event: &'static str, delivery: String, body: String) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            Metrics::inc(&self.metrics.webhook_dropped_total);
            tracing::error!(event, "too many webhook deliveries in flight; dropping one");
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut backoff = Duration::from_millis(500);
            for attempt in 0..=me.retries {
                let signature = sign(me.secret.as_bytes(), unix_now(), body.as_bytes());
                let sent = me
                    .client
                    .post(&me.url)
                    .header("Content-Type", "application/json")
                    .header("X-Chat-Event", event)
                    .header("X-Chat-Delivery", &delivery)
                    .header("X-Chat-Signature", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        Metrics::inc(&me.metrics.webhooks_delivered_total);
                        return;
                    }
                    Ok(r) => tracing::warn!(status = %r.status(), attempt, "webhook answered with an error"),
                    Err(e) => tracing::warn!(error = %e, attempt, "webhook delivery failed"),
                }
                if attempt < me.retries {
                    Metrics::inc(&me.metrics.webhook_retries_total);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
            Metrics::inc(&me.metrics.webhook_dropped_total);
            tracing::error!(event, delivery, "webhook given up after {} attempts", me.retries + 1);
        });
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `t=<timestamp>,v1=<hex>`: HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hmac_hex(secret, &[t.as_bytes(), b".", body]))
}

/// Lowercase hex of HMAC-SHA256(secret, the parts one after the other).
fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hmac_matches_the_rfc4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::hmac_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        // printf '1763769600.{}' | openssl dgst -sha256 -hmac Jefe
        assert_eq!(
            super::sign(b"Jefe", 1_763_769_600, b"{}"),
            "t=1763769600,v1=cef68ab8bbf53844dbf801eb4f58f882785707909bf2692f5a9361e5fe0acded"
        );
    }
}
