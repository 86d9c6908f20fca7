//! A device that stays connected the way chat.js does: it reconnects with backoff whenever its
//! connection ends, resumes from its own cursors, drops a message at or below its cursor or
//! whose id it already has (a duplicate), and records everything it sees — for the fault tests, which then check that every
//! accepted message arrived exactly once and in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::url_encode;

/// What a device saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Messages processed (above the cursor), in order.
    pub messages: Vec<Value>,
    /// Messages dropped as duplicates (at or below the cursor, or an id already processed).
    pub duplicates: Vec<Value>,
    /// `reset` frames.
    pub resets: Vec<Value>,
    /// Close codes of the connections that ended.
    pub closes: Vec<u16>,
    /// Per conversation, the last sequence processed.
    pub cursors: BTreeMap<String, u64>,
    /// Ids of the messages processed, as chat.js remembers its latest per conversation.
    ids: std::collections::HashSet<String>,
    /// The longest time without any frame or close while the device was supposed to listen.
    pub longest_silence: Duration,
    /// What the connection loop did, and when (for failure messages).
    pub trail: Vec<(Instant, String)>,
    /// When the longest silence began.
    pub silent_since: Option<Instant>,
    last_event: Option<Instant>,
}

impl Seen {
    fn event(&mut self) {
        let now = Instant::now();
        if let Some(at) = self.last_event {
            if now - at > self.longest_silence {
                self.longest_silence = now - at;
                self.silent_since = Some(at);
            }
        }
        self.last_event = Some(now);
    }

    /// The messages of `conv`, as their `data.n`.
    pub fn numbers(&self, conv: &str) -> Vec<u64> {
        self.messages.iter().filter(|m| m["conv"] == conv).filter_map(|m| m["data"]["n"].as_u64()).collect()
    }
}

pub struct Device {
    pub seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    /// Connects to `addr` (host:port of a sidecar) with `token` and keeps connecting.
    pub fn start(addr: String, token: String) -> Device {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let cursors = serde_json::to_string(&s.lock().unwrap().cursors).unwrap();
                let url = format!("ws://{addr}/ws?token={token}&ack=client&cursors={}", url_encode(&cursors));
                s.lock().unwrap().trail.push((Instant::now(), "connecting".into()));
                let connected = tokio_tungstenite::connect_async(&url).await;
                s.lock().unwrap().trail.push((Instant::now(), format!("connected: {}", connected.is_ok())));
                if let Ok((mut ws, _)) = connected {
                    while let Some(Ok(msg)) = ws.next().await {
                        match msg {
                            Message::Text(t) => on_frame(&s, serde_json::from_str(&t).expect("JSON frames")),
                            Message::Close(c) => {
                                let mut seen = s.lock().unwrap();
                                seen.trail.push((Instant::now(), format!("close {c:?}")));
                                seen.closes.push(c.map_or(1005, |f| f.code.into()));
                                seen.event();
                            }
                            _ => s.lock().unwrap().event(),
                        }
                    }
                }
                s.lock().unwrap().event();
                s.lock().unwrap().trail.push((Instant::now(), "ended".into()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Device { seen, task }
    }

    /// Forgets the silence so far (the quiet before the load started).
    pub fn listen_from_now(&self) {
        let mut seen = self.seen.lock().unwrap();
        seen.last_event = Some(Instant::now());
        seen.longest_silence = Duration::ZERO;
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn on_frame(s: &Arc<Mutex<Seen>>, f: Value) {
    let mut seen = s.lock().unwrap();
    seen.event();
    match f["type"].as_str() {
        // As chat.js does: the node's cursors are where delivery starts.
        Some("welcome") => {
            for (conv, seq) in f["cursors"].as_object().into_iter().flatten() {
                seen.cursors.insert(conv.clone(), seq.as_u64().unwrap());
            }
        }
        Some("message") => {
            let (conv, seq) = (f["conv"].as_str().unwrap().to_owned(), f["seq"].as_u64().unwrap());
            if seq > seen.cursors.get(&conv).copied().unwrap_or(0) {
                seen.cursors.insert(conv.clone(), seq);
                // A push repeated on a new master after a failover comes under a new number.
                if seen.ids.insert(format!("{conv} {}", f["id"].as_str().unwrap())) {
                    seen.messages.push(f);
                } else {
                    seen.duplicates.push(f);
                }
            } else {
                seen.duplicates.push(f);
            }
        }
        Some("reset") => seen.resets.push(f),
        _ => {}
    }
}
