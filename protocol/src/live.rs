//! The payload published on a conversation's live channel (see [`crate::keys::Keys::live`]).
//!
//! Nodes parse every payload once per node, not once per recipient, so the format puts what
//! routing needs in a tiny text header and leaves the envelope as opaque bytes to forward:
//!
//! - `m<seq> <envelope JSON>` — message number `<seq>` of the conversation;
//! - `k<reason>` — close every connection of the inbox's user (`chat_kick`); reason may be empty;
//! - `j<seq> <group>` — on an inbox channel: the user joined `group` at its sequence `<seq>`;
//!   live sessions start receiving it after that sequence;
//! - `l<group>` — on an inbox channel: the user left `group`; live sessions stop receiving it;
//! - `e<JSON frame>` — an ephemeral event (read sync, receipt) forwarded to the channel's
//!   clients as is; not stored, not sequenced.
//!
//! The Lua scripts write these; [`LiveEvent::parse`] reads them.

/// One parsed live-channel payload, borrowing from the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent<'a> {
    Message { seq: u64, envelope: &'a str },
    Kick { reason: &'a str },
    Event { frame: &'a str },
    Joined { group: &'a str, seq: u64 },
    Left { group: &'a str },
}

/// A payload that does not follow the format above (a foreign publisher on our channel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed live-channel payload: {0}")]
pub struct MalformedLive(&'static str);

impl<'a> LiveEvent<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, MalformedLive> {
        let text = std::str::from_utf8(payload).map_err(|_| MalformedLive("not UTF-8"))?;
        match text.as_bytes().first() {
            Some(b'm') => {
                let (seq, envelope) =
                    text[1..].split_once(' ').ok_or(MalformedLive("message without envelope"))?;
                let seq = seq.parse().map_err(|_| MalformedLive("bad sequence number"))?;
                Ok(LiveEvent::Message { seq, envelope })
            }
            Some(b'k') => Ok(LiveEvent::Kick { reason: &text[1..] }),
            Some(b'e') if text.len() > 1 => Ok(LiveEvent::Event { frame: &text[1..] }),
            Some(b'j') => {
                let (seq, group) = text[1..].split_once(' ').ok_or(MalformedLive("join without group"))?;
                let seq = seq.parse().map_err(|_| MalformedLive("bad join sequence"))?;
                Ok(LiveEvent::Joined { group, seq })
            }
            Some(b'l') if text.len() > 1 => Ok(LiveEvent::Left { group: &text[1..] }),
            _ => Err(MalformedLive("unknown event tag")),
        }
    }
}

/// Formats a message payload exactly as the push script does.
pub fn message_payload(seq: u64, envelope: &str) -> String {
    format!("m{seq} {envelope}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_and_kicks() {
        let p = message_payload(42, r#"{"a":1}"#);
        assert_eq!(
            LiveEvent::parse(p.as_bytes()).unwrap(),
            LiveEvent::Message { seq: 42, envelope: r#"{"a":1}"# }
        );
        assert_eq!(LiveEvent::parse(b"kbye").unwrap(), LiveEvent::Kick { reason: "bye" });
        assert_eq!(LiveEvent::parse(b"k").unwrap(), LiveEvent::Kick { reason: "" });
        assert_eq!(LiveEvent::parse(b"j7 room").unwrap(), LiveEvent::Joined { group: "room", seq: 7 });
        assert_eq!(LiveEvent::parse(b"lroom").unwrap(), LiveEvent::Left { group: "room" });
        assert_eq!(LiveEvent::parse(br#"e{"type":"read"}"#).unwrap(), LiveEvent::Event { frame: r#"{"type":"read"}"# });
    }

    #[test]
    fn refuses_garbage() {
        for p in [&b""[..], b"x", b"m12", b"mx {}", b"\xff", b"e"] {
            assert!(LiveEvent::parse(p).is_err(), "{p:?}");
        }
    }
}
