//! Every Redis key and channel name, in one place.
//!
//! All keys of one conversation share the hash tag `{<conversation>}` so a script touching a
//! conversation runs on one Redis Cluster shard. Keys are prefixed by a namespace (INI
//! `chat.namespace`, sidecar `CHAT_NAMESPACE`) so several apps can share one Redis.

use crate::ids::Conversation;

/// Key and channel names under one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    ns: String,
}

impl Keys {
    pub fn new(namespace: impl Into<String>) -> Self {
        Keys { ns: namespace.into() }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// String counter: the last sequence number assigned in `conv`.
    pub fn seq(&self, conv: &Conversation) -> String {
        format!("{}:{{{}}}:seq", self.ns, conv)
    }

    /// Stream of `conv`'s messages; entry id `<seq>-0`, field `e` holds the envelope JSON.
    pub fn stream(&self, conv: &Conversation) -> String {
        format!("{}:{{{}}}:stream", self.ns, conv)
    }

    /// Pub/sub channel on which new messages of `conv` (and control events) are announced.
    pub fn live(&self, conv: &Conversation) -> String {
        format!("{}:{{{}}}:live", self.ns, conv)
    }

    /// Sorted set of a user's live connections: member = connection id, score = expiry (ms).
    pub fn conns(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:conns", self.ns, uid)
    }

    /// Hash of a user's live connections: field = connection id, value = JSON details.
    pub fn conn_info(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:conninfo", self.ns, uid)
    }

    /// Sorted set of online users: member = user id, score = latest connection expiry (ms).
    pub fn online(&self) -> String {
        format!("{}:online", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_share_a_hash_tag() {
        let k = Keys::new("chat");
        let c = Conversation::inbox("alice").unwrap();
        assert_eq!(k.seq(&c), "chat:{u:alice}:seq");
        assert_eq!(k.stream(&c), "chat:{u:alice}:stream");
        assert_eq!(k.live(&c), "chat:{u:alice}:live");
        assert_eq!(k.conns("alice"), "chat:{u:alice}:conns");
        assert_eq!(k.conn_info("alice"), "chat:{u:alice}:conninfo");
        assert_eq!(Keys::new("app2").online(), "app2:online");
    }
}
