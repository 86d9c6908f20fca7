//! The client wire protocol: JSON text frames in both directions, error codes, close codes.
//! `docs/PROTOCOL.md` is the prose version of this file; keep them in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Close codes the sidecar uses. 1xxx are RFC 6455's; 4xxx are ours.
pub mod close {
    /// The node is shutting down; reconnect (to another node) and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame was not valid UTF-8.
    pub const INVALID_UTF8: u16 = 1007;
    /// The client kept flooding after being told it is rate limited.
    pub const POLICY: u16 = 1008;
    /// A frame or message exceeded the node's size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The node hit an internal error; reconnect and resume.
    pub const INTERNAL: u16 = 1011;
    /// Redis is unavailable to the node; reconnect with backoff and resume.
    pub const TRY_AGAIN: u16 = 1013;
    /// The token is not valid (bad signature, malformed, wrong algorithm, bad subject).
    pub const BAD_TOKEN: u16 = 4001;
    /// The token has expired: fetch a new one from the app and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// No token arrived in time (URL, header or first frame).
    pub const AUTH_TIMEOUT: u16 = 4003;
    /// The app closed this user's connections (`chat_kick`); do not reconnect automatically.
    pub const KICKED: u16 = 4004;
    /// The client read too slowly and its outbound queue overflowed; reconnect and resume.
    pub const TOO_SLOW: u16 = 4009;
    /// The client stopped answering pings.
    pub const TIMEOUT: u16 = 4010;
}

/// Error codes carried by `{"type":"error"}` frames; the connection stays open after these.
pub mod error {
    pub const BAD_JSON: &str = "bad_json";
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    pub const BAD_FRAME: &str = "bad_frame";
    pub const BINARY_UNSUPPORTED: &str = "binary_unsupported";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const ALREADY_AUTHENTICATED: &str = "already_authenticated";
    /// The conversation is not one this user may read or write, or the connection is anonymous
    /// and not bound to a user yet.
    pub const FORBIDDEN: &str = "forbidden";
    /// Client sends are switched off on this node (`CHAT_CLIENT_SEND=false`).
    pub const SEND_DISABLED: &str = "send_disabled";
    /// The node could not accept a `send` right now (Redis unavailable); retry it.
    pub const UNAVAILABLE: &str = "unavailable";
    /// `POST /send`: the token is invalid (bad signature, malformed, missing).
    pub const BAD_TOKEN: &str = "bad_token";
    /// `POST /send`: the token expired; get a new one from the app.
    pub const TOKEN_EXPIRED: &str = "token_expired";
}

/// Last sequence seen per conversation, as a client reports it on (re)connect.
pub type Cursors = BTreeMap<String, u64>;

/// A frame a client sends.
#[derive(Debug)]
pub enum ClientFrame {
    /// The token (and optionally resume cursors), as the first frame, when the token was not
    /// given in the URL or a header.
    Auth { token: String, cursors: Option<Cursors> },
    /// Application-level ping; answered with `pong` echoing `ref`.
    Ping { r#ref: Option<serde_json::Value> },
    /// "This device has received everything in `conv` up to `seq`."
    Ack { conv: String, seq: u64 },
    /// "The user has read `conv` up to `seq`."
    Read { conv: String, seq: u64 },
    /// A message from this user to a user or a group; `data` is kept verbatim.
    Send { target: Target, data: Box<RawValue>, r#ref: Option<serde_json::Value> },
    /// "This user is typing" to a user or a group; relayed live, never stored.
    Typing { target: Target },
    /// WebRTC signalling (offer/answer/ICE) to one member of a group both belong to.
    Signal { group: String, to: String, data: Box<RawValue> },
}

/// Who a `send` or `typing` frame is for: exactly one of `to` (a user) or `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    Group(String),
}

/// Why a client frame was refused; [`WireError::code`] is the error frame's `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame is not a JSON object with a string \"type\": {0}")]
    BadJson(String),
    #[error("unknown frame type {0:?}; known types: auth, ping, ack, read, send, typing, signal")]
    UnknownType(String),
    #[error("bad {kind} frame: {detail}")]
    BadFrame { kind: &'static str, detail: String },
}

impl WireError {
    pub fn code(&self) -> &'static str {
        match self {
            WireError::BadJson(_) => error::BAD_JSON,
            WireError::UnknownType(_) => error::UNKNOWN_TYPE,
            WireError::BadFrame { .. } => error::BAD_FRAME,
        }
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct AuthBody {
    token: String,
    #[serde(default)]
    cursors: Option<Cursors>,
}

#[derive(Deserialize)]
struct PingBody {
    #[serde(default, rename = "ref")]
    r: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PositionBody {
    conv: String,
    seq: u64,
}

#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    group: Option<String>,
    data: Box<RawValue>,
    #[serde(default, rename = "ref")]
    r: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TypingBody {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

#[derive(Deserialize)]
struct SignalBody {
    group: String,
    to: String,
    data: Box<RawValue>,
}

fn target(kind: &'static str, to: Option<String>, group: Option<String>) -> Result<Target, WireError> {
    match (to, group) {
        (Some(u), None) => Ok(Target::User(u)),
        (None, Some(g)) => Ok(Target::Group(g)),
        _ => Err(WireError::BadFrame { kind, detail: "give exactly one of \"to\" (a user) or \"group\"".into() }),
    }
}

/// Parses one client text frame.
pub fn parse_client(text: &str) -> Result<ClientFrame, WireError> {
    let head: Head<'_> = serde_json::from_str(text).map_err(|e| WireError::BadJson(e.to_string()))?;
    fn body<T: serde::de::DeserializeOwned>(kind: &'static str, text: &str) -> Result<T, WireError> {
        serde_json::from_str(text).map_err(|e| WireError::BadFrame { kind, detail: e.to_string() })
    }
    match head.kind.as_ref() {
        "auth" => body::<AuthBody>("auth", text).map(|b| ClientFrame::Auth { token: b.token, cursors: b.cursors }),
        "ping" => body::<PingBody>("ping", text).map(|b| ClientFrame::Ping { r#ref: b.r }),
        "ack" => body::<PositionBody>("ack", text).map(|b| ClientFrame::Ack { conv: b.conv, seq: b.seq }),
        "read" => body::<PositionBody>("read", text).map(|b| ClientFrame::Read { conv: b.conv, seq: b.seq }),
        "send" => {
            let b = body::<SendBody>("send", text)?;
            Ok(ClientFrame::Send { target: target("send", b.to, b.group)?, data: b.data, r#ref: b.r })
        }
        "typing" => {
            let b = body::<TypingBody>("typing", text)?;
            Ok(ClientFrame::Typing { target: target("typing", b.to, b.group)? })
        }
        "signal" => body::<SignalBody>("signal", text).map(|b| ClientFrame::Signal { group: b.group, to: b.to, data: b.data }),
        other => Err(WireError::UnknownType(other.chars().take(64).collect())),
    }
}

/// Parses resume cursors given in the URL (`?cursors={"u:alice":41}`).
pub fn parse_cursors(json: &str) -> Result<Cursors, WireError> {
    serde_json::from_str(json).map_err(|e| WireError::BadFrame { kind: "cursors", detail: e.to_string() })
}

/// A frame the sidecar sends, other than message envelopes and relayed events (which arrive
/// pre-serialized).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame after authentication. An anonymous connection (`CHAT_ANONYMOUS_CONNECT`)
    /// gets one with `uid: null` and no cursors, and a second one, with the user and the
    /// cursors, once the app binds it (`chat_bind`).
    Welcome {
        uid: Option<String>,
        conn: String,
        node: String,
        /// The client should send something (a `ping` frame will do) at least this often.
        heartbeat_ms: u64,
        max_frame_bytes: usize,
        /// Per conversation, the sequence after which delivery starts: the client's own cursor
        /// when it sent one, else the last one any of the user's devices acknowledged. Every
        /// message after it follows, in order (replayed first, then live).
        cursors: Cursors,
        /// Per conversation, its current epoch: it changes when Redis may have lost part of the
        /// conversation (a failover to a replica that lagged, a restart without persistence),
        /// and the new epoch's sequence numbers start far above every earlier one.
        #[serde(default)]
        epochs: Cursors,
    },
    /// The server no longer has what this client saw of `conv` after sequence `seq`, up to
    /// `was` (Redis lost those messages). Nothing is rewound: delivery goes on after `was` with
    /// the conversation's new messages, in `epoch`. The app should re-read what it shows of the
    /// conversation (its history may have changed).
    Reset { conv: String, seq: u64, was: u64, epoch: u64 },
    Pong {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<serde_json::Value>,
    },
    /// A `send` was accepted: its id, and its position in the sender's own inbox.
    Sent {
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<serde_json::Value>,
        id: String,
        conv: String,
        seq: u64,
    },
    Error {
        code: String,
        message: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        r#ref: Option<serde_json::Value>,
    },
}

impl ServerFrame {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerFrame::Error { code: code.to_owned(), message: message.into(), r#ref: None }
    }

    /// The same frame answering the client frame that carried `r#ref` (errors only).
    pub fn with_ref(self, r: Option<serde_json::Value>) -> Self {
        match self {
            ServerFrame::Error { code, message, .. } => ServerFrame::Error { code, message, r#ref: r },
            other => other,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_frames() {
        match parse_client(r#"{"type":"auth","token":"t","cursors":{"u:a":3}}"#).unwrap() {
            ClientFrame::Auth { token, cursors } => {
                assert_eq!(token, "t");
                assert_eq!(cursors.unwrap()["u:a"], 3);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_client(r#"{"type":"ping","ref":7}"#).unwrap(), ClientFrame::Ping { r#ref: Some(_) }));
        assert!(matches!(parse_client(r#"{"type":"ack","conv":"u:a","seq":4}"#).unwrap(), ClientFrame::Ack { seq: 4, .. }));
        assert!(matches!(
            parse_client(r#"{"type":"typing","group":"room"}"#).unwrap(),
            ClientFrame::Typing { target: Target::Group(g) } if g == "room"
        ));
        match parse_client(r#"{"type":"send","to":"bob","data":{"a":[]} }"#).unwrap() {
            ClientFrame::Send { target, data, .. } => {
                assert_eq!(target, Target::User("bob".into()));
                assert_eq!(data.get(), r#"{"a":[]}"#, "data is kept verbatim");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(parse_client("nope").unwrap_err().code(), error::BAD_JSON);
        assert_eq!(parse_client("[1]").unwrap_err().code(), error::BAD_JSON);
        assert_eq!(parse_client(r#"{"type":"zap"}"#).unwrap_err().code(), error::UNKNOWN_TYPE);
        assert_eq!(parse_client(r#"{"type":"auth"}"#).unwrap_err().code(), error::BAD_FRAME);
        assert_eq!(parse_client(r#"{"type":"ack","conv":"u:a","seq":-1}"#).unwrap_err().code(), error::BAD_FRAME);
        assert_eq!(parse_client(r#"{"type":"send","to":"b"}"#).unwrap_err().code(), error::BAD_FRAME);
        assert_eq!(parse_client(r#"{"type":"send","to":"b","group":"g","data":1}"#).unwrap_err().code(), error::BAD_FRAME);
        assert_eq!(parse_client(r#"{"type":"typing"}"#).unwrap_err().code(), error::BAD_FRAME);
        assert!(parse_cursors(r#"{"u:a":1}"#).is_ok());
        assert!(parse_cursors(r#"{"u:a":"x"}"#).is_err());
    }

    #[test]
    fn server_frames_serialize_with_type_tag() {
        let j = ServerFrame::error(error::BAD_JSON, "x").to_json();
        assert_eq!(j, r#"{"type":"error","code":"bad_json","message":"x"}"#);
        assert_eq!(ServerFrame::Pong { r#ref: None }.to_json(), r#"{"type":"pong"}"#);
    }
}
