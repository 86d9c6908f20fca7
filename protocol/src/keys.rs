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

    /// Hash of `conv`'s current epoch: `e` its id, `b` the sequence after which it starts, `p`
    /// what survived of the previous epoch, `r` the replication id under which the sequence was
    /// last advanced (see `lua/push.lua`).
    pub fn epoch(&self, conv: &Conversation) -> String {
        format!("{}:{{{}}}:epoch", self.ns, conv)
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

    /// Set of a group's members (user ids).
    pub fn members(&self, group: &str) -> String {
        format!("{}:{{g:{}}}:members", self.ns, group)
    }

    /// Hash of a user's groups: group -> the group's sequence when the user joined.
    pub fn groups(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:groups", self.ns, uid)
    }

    /// Marker that the user has been announced online (presence events, webhooks).
    pub fn announced(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:announced", self.ns, uid)
    }

    /// Set of a group's members that are online (for group.occupied / group.vacated).
    pub fn present(&self, group: &str) -> String {
        format!("{}:{{g:{}}}:present", self.ns, group)
    }

    /// Channel every node subscribes to for `chat_broadcast`.
    pub fn broadcast(&self) -> String {
        format!("{}:broadcast", self.ns)
    }

    /// Hash conversation -> highest sequence any of the user's devices acknowledged.
    pub fn acked(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:acked", self.ns, uid)
    }

    /// Per group, uid → highest sequence any device of that member acknowledged. Kept with the
    /// group (not in each member's `acked`) so a node writes a big group's acknowledgements in
    /// one call on the group's slot instead of one call per member.
    pub fn group_acked(&self, group: &str) -> String {
        format!("{}:{{g:{}}}:acked", self.ns, group)
    }

    /// String: unix seconds of the user's last token revocation (`chat_kick` with
    /// `revoke_tokens`); tokens issued at or before it are refused. Expires once every token
    /// issued before it has expired anyway.
    pub fn revoked(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:revoked", self.ns, uid)
    }

    /// Hash conversation -> sequence the user has read up to.
    pub fn read(&self, uid: &str) -> String {
        format!("{}:{{u:{}}}:read", self.ns, uid)
    }

    /// Stream of every accepted message (field `e`: the envelope),
    /// consumed by the sidecars' MySQL writer through the consumer group [`Keys::LOG_GROUP`].
    pub fn log(&self) -> String {
        format!("{}:log", self.ns)
    }

    /// Set (to the id of the node that set it) once any node persists or notifies; the push
    /// script appends to the log only while it exists.
    pub fn log_enabled(&self) -> String {
        format!("{}:log:enabled", self.ns)
    }

    /// Stream of log entries the MySQL writer could not store (field `e`: the entry as it was,
    /// `why`: the reason), kept for an operator instead of being acknowledged away.
    pub fn log_dead(&self) -> String {
        format!("{}:log:dead", self.ns)
    }

    /// String written by the MySQL writer before it waits for the replicas (`WAIT` confirms what
    /// a connection wrote, so the writer writes this to learn that what it read is replicated).
    pub fn log_fence(&self) -> String {
        format!("{}:log:fence", self.ns)
    }

    /// String: `g<id>` while this Redis holds every conversation it ever had (set by the first
    /// sidecar on an empty Redis), `l<id>` once it may have lost some: conversations whose state
    /// is missing then start an epoch above any number they can have used.
    pub fn dataset(&self) -> String {
        format!("{}:dataset", self.ns)
    }

    /// Consumer group of the persistence log.
    pub const LOG_GROUP: &'static str = "persist";

    /// Sorted set of online users: member = user id, score = latest connection expiry (ms).
    pub fn online(&self) -> String {
        format!("{}:online", self.ns)
    }

    /// Sorted set of every live connection (client id), score = expiry (ms): the connection
    /// list of GatewayWorker's `getAllClientIdList()`, including connections without a user.
    pub fn clients(&self) -> String {
        format!("{}:clients", self.ns)
    }

    /// String: the user id of live connection `client` (empty while it has none, i.e. an
    /// anonymous connection waiting for `bindUid`). Expires with the connection's presence.
    pub fn client(&self, client: &str) -> String {
        format!("{}:client:{}", self.ns, client)
    }

    /// List: the answers of the session holding anonymous connection `client` to `chat_bind`
    /// calls binding it to `uid` (`1`, or `0<uid>` when it already belongs to that other user).
    /// `chat_bind` waits on it with BLPOP, so it returns once the binding is effective.
    pub fn bind_reply(&self, client: &str, uid: &str) -> String {
        format!("{}:bind:{}:{}", self.ns, client, uid)
    }

    /// String: the PHP session of live connection `client` (`serialize()`d array), written by
    /// PHP (`chat_set_session`); expires with the connection's presence.
    pub fn session(&self, client: &str) -> String {
        format!("{}:session:{}", self.ns, client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lua/read.lua` builds a sender's inbox channel as `ns .. ':{u:' .. uid .. '}:live'`.
    #[test]
    fn read_script_builds_inbox_channels_like_keys() {
        let k = Keys::new("ns1");
        assert_eq!(k.live(&Conversation::inbox("bob").unwrap()), format!("{}:{{u:{}}}:live", "ns1", "bob"));
        assert!(include_str!("../lua/read.lua").contains("ARGV[5] .. ':{u:' .. from .. '}:live'"));
        assert_eq!(k.announced("bob"), format!("{}:{{u:{}}}:announced", "ns1", "bob"));
        assert!(include_str!("../lua/presence_sweep.lua").contains("ARGV[1] .. ':{u:' .. uid .. '}:announced'"));
    }

    #[test]
    fn conversation_keys_share_a_hash_tag() {
        let k = Keys::new("chat");
        let c = Conversation::inbox("alice").unwrap();
        assert_eq!(k.seq(&c), "chat:{u:alice}:seq");
        assert_eq!(k.stream(&c), "chat:{u:alice}:stream");
        assert_eq!(k.live(&c), "chat:{u:alice}:live");
        assert_eq!(k.epoch(&c), "chat:{u:alice}:epoch");
        assert_eq!(k.conns("alice"), "chat:{u:alice}:conns");
        assert_eq!(k.conn_info("alice"), "chat:{u:alice}:conninfo");
        assert_eq!(Keys::new("app2").online(), "app2:online");
        assert_eq!(k.acked("alice"), "chat:{u:alice}:acked");
        assert_eq!(k.group_acked("room"), "chat:{g:room}:acked");
        assert_eq!(k.read("alice"), "chat:{u:alice}:read");
        assert_eq!(k.log(), "chat:log");
        assert_eq!(k.members("room"), "chat:{g:room}:members");
        assert_eq!(k.groups("alice"), "chat:{u:alice}:groups");
        assert_eq!(k.client("n1-7"), "chat:client:n1-7");
        assert_eq!(k.session("n1-7"), "chat:session:n1-7");
        assert_eq!(k.bind_reply("n1-7", "bob"), "chat:bind:n1-7:bob");
    }

    /// Scripts that reach per-connection or per-user keys by name build them like `Keys`.
    #[test]
    fn client_scripts_build_keys_like_keys() {
        let k = Keys::new("ns1");
        assert_eq!(k.client("c"), format!("{}:client:{}", "ns1", "c"));
        assert_eq!(k.session("c"), format!("{}:session:{}", "ns1", "c"));
        assert_eq!(k.conns("u"), format!("{}:{{u:{}}}:conns", "ns1", "u"));
        assert_eq!(k.members("g"), format!("{}:{{g:{}}}:members", "ns1", "g"));
        assert_eq!(k.groups("u"), format!("{}:{{u:{}}}:groups", "ns1", "u"));
        let clients = include_str!("../lua/clients.lua");
        for needle in ["ns .. ':client:' .. id", "ns .. ':session:' .. id", "ns .. ':{u:' .. uid .. '}:conns'", "ns .. ':{g:' .. group .. '}:members'"] {
            assert!(clients.contains(needle), "clients.lua lacks {needle}");
        }
        assert!(include_str!("../lua/online_groups.lua").contains("ns .. ':{u:' .. uid .. '}:groups'"));
        assert!(include_str!("../lua/client_event.lua").contains("ns .. ':{u:' .. uid .. '}:live'"));
    }
}
