//! The message envelope a client receives.
//!
//! The push script builds the envelope text in Lua by concatenation, splicing the message JSON
//! in verbatim, so PHP's `json_encode` output reaches the client byte for byte (re-encoding
//! with cjson would turn `[]` into `{}` and change floats). The field order is fixed:
//!
//! ```json
//! {"type":"message","id":"01JD…","conv":"u:bob","seq":7,"epoch":1764950400000000,"from":"alice","to":"bob","ts":1732230000123,"data":{"text":"hi"}}
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
    /// Position in `conv`: one more than the message before within an epoch.
    pub seq: u64,
    /// The conversation's epoch (see `lua/push.lua`): a new one begins, far above every earlier
    /// number, when Redis may have lost some of the conversation. Absent in envelopes written
    /// before epochs existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Sender's user id, or `null` for messages from the app itself.
    pub from: Option<String>,
    /// Recipient user id for one-to-one messages.
    pub to: Option<String>,
    /// Redis server time when the message was accepted, in milliseconds since the epoch.
    pub ts: u64,
    /// The application's payload, exactly as PHP encoded it.
    pub data: serde_json::Value,
}

/// The `data` part of an envelope: everything after the first `,"data":` up to the closing
/// brace. The fields before `data` hold only validated ids and numbers, so the first match is
/// the real one.
pub fn data_of(envelope: &str) -> Option<&str> {
    let start = envelope.find(r#","data":"#)? + r#","data":"#.len();
    envelope.get(start..envelope.len().checked_sub(1)?)
}

/// Rebuilds an envelope from its parts, byte for byte as `lua/push.lua` writes it (used for
/// messages read back from MySQL).
#[allow(clippy::too_many_arguments)]
pub fn format(id: &str, conv: &str, seq: u64, epoch: Option<u64>, from: Option<&str>, to: Option<&str>, ts: u64, data: &str) -> String {
    let q = |s: Option<&str>| s.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""));
    let epoch = epoch.map(|e| format!(r#","epoch":{e}"#)).unwrap_or_default();
    format!(
        r#"{{"type":"message","id":"{id}","conv":"{conv}","seq":{seq}{epoch},"from":{},"to":{},"ts":{ts},"data":{data}}}"#,
        q(from),
        q(to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Copied from a real `XRANGE` of an envelope written by lua/push.lua.
    const FROM_LUA: &str = r#"{"type":"message","id":"01M809DEY96YD9QZT9XPEVFT2Y","conv":"u:bob","seq":1764950400000001,"epoch":1764950400000000,"from":"alice","to":"bob","ts":1795306208182,"data":{"text":"hey","data":[1]}}"#;
    // Written before epochs existed.
    const OLD: &str = r#"{"type":"message","id":"01M809DEY96YD9QZT9XPEVFT2Y","conv":"u:bob","seq":1,"from":null,"to":"bob","ts":1795306208182,"data":[]}"#;

    #[test]
    fn format_matches_the_push_script_byte_for_byte() {
        let e: Envelope = serde_json::from_str(FROM_LUA).unwrap();
        let data = data_of(FROM_LUA).unwrap();
        assert_eq!(data, r#"{"text":"hey","data":[1]}"#);
        let rebuilt = format(&e.id, &e.conv, e.seq, e.epoch, e.from.as_deref(), e.to.as_deref(), e.ts, data);
        assert_eq!(rebuilt, FROM_LUA);
        let e: Envelope = serde_json::from_str(OLD).unwrap();
        assert_eq!(e.epoch, None);
        assert_eq!(format(&e.id, &e.conv, e.seq, e.epoch, None, e.to.as_deref(), e.ts, data_of(OLD).unwrap()), OLD);
        assert!(format("x", "u:a", 1, None, None, None, 5, "[]").contains(r#""from":null,"to":null"#));
    }
}
