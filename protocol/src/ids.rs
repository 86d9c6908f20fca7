//! User ids, group names, conversation ids and message ids.
//!
//! Ids end up inside Redis key names, channel names and JSON built by Lua without escaping,
//! so the accepted charset is deliberately narrow: ASCII letters, digits and `_ - . @ +`.
//! That keeps `{`/`}` (Redis Cluster hash-tag delimiters), `:` (our key separator), quotes and
//! whitespace out of every key.

use std::fmt;

/// Longest accepted user id or group name, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong { what: &'static str, len: usize },
    #[error("{what} contains {ch:?}; allowed are ASCII letters, digits and _ - . @ +")]
    BadChar { what: &'static str, ch: char },
    #[error("conversation id {0:?} must look like u:<user id> or g:<group name>")]
    BadConversation(String),
}

/// Checks a user id or group name; `what` names it in the error ("user id", "group name").
pub fn validate(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { what });
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { what, len: id.len() });
    }
    match id.chars().find(|c| !is_id_char(*c)) {
        Some(ch) => Err(IdError::BadChar { what, ch }),
        None => Ok(()),
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '+')
}

/// A sequenced message stream: a user's inbox or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Conversation {
    /// One user's inbox: one-to-one and system messages to that user, and copies of what they sent.
    Inbox(String),
    /// A group's shared stream.
    Group(String),
}

impl Conversation {
    /// The inbox of a validated user id.
    pub fn inbox(uid: &str) -> Result<Self, IdError> {
        validate("user id", uid)?;
        Ok(Conversation::Inbox(uid.to_owned()))
    }

    /// The stream of a validated group name.
    pub fn group(name: &str) -> Result<Self, IdError> {
        validate("group name", name)?;
        Ok(Conversation::Group(name.to_owned()))
    }

    /// Parses the `u:<uid>` / `g:<group>` form used on the wire.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.split_once(':') {
            Some(("u", uid)) => Self::inbox(uid),
            Some(("g", name)) => Self::group(name),
            _ => Err(IdError::BadConversation(s.to_owned())),
        }
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conversation::Inbox(uid) => write!(f, "u:{uid}"),
            Conversation::Group(name) => write!(f, "g:{name}"),
        }
    }
}

/// A message id: a ULID (26 characters, sortable by creation time, unique without coordination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(String);

impl MessageId {
    pub fn generate() -> Self {
        MessageId(ulid::Ulid::new().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_ids() {
        for id in ["alice", "user_42", "a.b-c", "me@example.com", "x+tag", "0"] {
            validate("user id", id).unwrap();
        }
    }

    #[test]
    fn refuses_key_breaking_ids() {
        for id in ["a{b}", "a:b", "a b", "é", "a\"b", "a\nb"] {
            assert!(matches!(validate("user id", id), Err(IdError::BadChar { .. })), "{id}");
        }
        assert_eq!(validate("group name", ""), Err(IdError::Empty { what: "group name" }));
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert!(matches!(validate("user id", &long), Err(IdError::TooLong { len: 129, .. })));
    }

    #[test]
    fn conversation_round_trips() {
        for s in ["u:alice", "g:room-1"] {
            assert_eq!(Conversation::parse(s).unwrap().to_string(), s);
        }
        assert!(Conversation::parse("x:alice").is_err());
        assert!(Conversation::parse("alice").is_err());
        assert!(Conversation::parse("u:").is_err());
    }

    #[test]
    fn message_ids_are_unique_and_sortable() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 26);
    }
}
