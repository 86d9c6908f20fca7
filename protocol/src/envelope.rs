//! The message envelope a client receives.
//!
//! The push script builds the envelope text in Lua by concatenation, splicing the message JSON
//! in verbatim, so PHP's `json_encode` output reaches the client byte for byte (re-encoding
//! with cjson would turn `[]` into `{}` and change floats). The field order is fixed:
//!
//! ```json
//! {"type":"message","id":"01JD…","conv":"u:bob","seq":7,"from":"alice","to":"bob","ts":1732230000123,"data":{"text":"hi"}}
//! ```
//!
//! This struct is the reading side, for the sidecar's tests and Rust clients.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Message id (ULID) returned by `chat_push`; identical in every conversation it lands in.
    pub id: String,
    /// Conversation this copy belongs to: `u:<uid>` or `g:<group>`.
    pub conv: String,
    /// Position in `conv`, starting at 1, without gaps.
    pub seq: u64,
    /// Sender's user id, or `null` for messages from the app itself.
    pub from: Option<String>,
    /// Recipient user id for one-to-one messages.
    pub to: Option<String>,
    /// Redis server time when the message was accepted, in milliseconds since the epoch.
    pub ts: u64,
    /// The application's payload, exactly as PHP encoded it.
    pub data: serde_json::Value,
}
