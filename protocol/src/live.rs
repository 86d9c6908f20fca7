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
//! - `b<uid>` — `chat_bind`: an anonymous connection becomes user `<uid>`'s session. Always
//!   addressed (`@<client id>`) and published on the broadcast channel, the only one an
//!   anonymous connection listens to; the session answers on [`crate::keys::Keys::bind_reply`].
//!
//! Any of these may be addressed to some connections only (the GatewayClient facade's
//! `sendToClient`, `closeClient`, `sendToAll($m, $client_ids)`, `$exclude_client_id`):
//!
//! - `@<client id>[,<client id>…] <payload>` — only these connections get it;
//! - `!<client id>[,<client id>…] <payload>` — every connection on the channel but these.
//!
//! A client id is the connection's name, `<node id>-<n>` with `n` in base 36 ([`client_id`],
//! [`split_client_id`]); each node picks out its own connections. See [`split_audience`].
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
    Bind { uid: &'a str },
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
            Some(b'b') if text.len() > 1 => Ok(LiveEvent::Bind { uid: &text[1..] }),
            _ => Err(MalformedLive("unknown event tag")),
        }
    }
}

/// Which of a channel's connections a payload is for (a prefix of the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Only these client ids (comma-separated).
    Only(&'a str),
    /// Everyone but these client ids (comma-separated).
    Except(&'a str),
}

impl<'a> Audience<'a> {
    /// The client ids listed.
    pub fn clients(&self) -> impl Iterator<Item = &'a str> {
        let (Audience::Only(list) | Audience::Except(list)) = *self;
        list.split(',').filter(|c| !c.is_empty())
    }
}

/// Splits an optional audience prefix (`@ids ` / `!ids `) off a payload; the rest is parsed
/// with [`LiveEvent::parse`].
pub fn split_audience(payload: &[u8]) -> Result<(Option<Audience<'_>>, &[u8]), MalformedLive> {
    let only = match payload.first() {
        Some(b'@') => true,
        Some(b'!') => false,
        _ => return Ok((None, payload)),
    };
    let space = payload.iter().position(|b| *b == b' ').ok_or(MalformedLive("audience without payload"))?;
    let list = std::str::from_utf8(&payload[1..space]).map_err(|_| MalformedLive("audience not UTF-8"))?;
    let audience = if only { Audience::Only(list) } else { Audience::Except(list) };
    Ok((Some(audience), &payload[space + 1..]))
}

/// The client id of connection `n` of node `node`: `<node id>-<n in base 36>` (lowercase, at
/// most 13 digits for a u64). Nodes draw `n` at random (unguessable, see the sidecar's
/// `conn_id`), so base 36 keeps the id short: 13 characters instead of up to 20 in decimal.
pub fn client_id(node: &str, n: u64) -> String {
    let mut digits = [0u8; 13];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(rest % 36) as usize];
        rest /= 36;
        if rest == 0 {
            break;
        }
    }
    let n = std::str::from_utf8(&digits[at..]).expect("ASCII digits");
    format!("{node}-{n}")
}

/// Splits a client id (`<node id>-<n>`, see [`client_id`]) into the node's id and the
/// node-local number. Node ids may themselves contain `-`, so the split is at the last one.
pub fn split_client_id(client: &str) -> Option<(&str, u64)> {
    let (node, n) = client.rsplit_once('-')?;
    if node.is_empty() || n.is_empty() || n.len() > 13 || !n.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()) {
        return None;
    }
    Some((node, u64::from_str_radix(n, 36).ok()?))
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
        assert_eq!(LiveEvent::parse(b"balice").unwrap(), LiveEvent::Bind { uid: "alice" });
    }

    #[test]
    fn splits_audiences() {
        let (a, rest) = split_audience(b"@n1-3,n2-4 e{}").unwrap();
        assert_eq!(a, Some(Audience::Only("n1-3,n2-4")));
        assert_eq!(a.unwrap().clients().collect::<Vec<_>>(), ["n1-3", "n2-4"]);
        assert_eq!(LiveEvent::parse(rest).unwrap(), LiveEvent::Event { frame: "{}" });
        let (a, rest) = split_audience(b"!n1-3 kbye now").unwrap();
        assert_eq!(a, Some(Audience::Except("n1-3")));
        assert_eq!(LiveEvent::parse(rest).unwrap(), LiveEvent::Kick { reason: "bye now" });
        assert_eq!(split_audience(b"e{}").unwrap(), (None, &b"e{}"[..]));
        assert!(split_audience(b"@n1-3").is_err());
    }

    #[test]
    fn client_ids_are_base_36_and_split_back() {
        assert_eq!(client_id("n7fk2q3x9", 0), "n7fk2q3x9-0");
        assert_eq!(client_id("n7fk2q3x9", 36 * 36 + 35), "n7fk2q3x9-10z");
        assert_eq!(client_id("n1", u64::MAX), "n1-3w5e11264sgsf", "13 digits at most");
        for n in [0, 1, 35, 36, 12345, 1 << 40, u64::MAX - 1, u64::MAX] {
            assert_eq!(split_client_id(&client_id("eu-west-1", n)), Some(("eu-west-1", n)));
        }
        assert_eq!(split_client_id("n7fk2q3x9-12"), Some(("n7fk2q3x9", 38)));
        assert_eq!(split_client_id("eu-west-1-5"), Some(("eu-west-1", 5)));
        for bad in ["n1", "n1-", "-5", "n1-X", "n1-+5", "n1-3w5e11264sgsg", "n1-00000000000000", "n1-a_b"] {
            assert_eq!(split_client_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for p in [&b""[..], b"x", b"m12", b"mx {}", b"\xff", b"e", b"b"] {
            assert!(LiveEvent::parse(p).is_err(), "{p:?}");
        }
    }
}
