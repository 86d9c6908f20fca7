//! The Lua scripts and the one way to call each of them.
//!
//! Both the extension (blocking connection) and the sidecar (async connection) build the same
//! [`redis::ScriptInvocation`] here and run it with `invoke` / `invoke_async`, which uses
//! EVALSHA and falls back to EVAL when Redis does not know the script yet: one round trip in
//! the common case. Scripts read the clock with `TIME`, so every expiry and timestamp is on
//! Redis's clock, not on the skewed clocks of PHP and sidecar hosts.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};
use serde::{Deserialize, Serialize};

use crate::ids::{Conversation, MessageId};
use crate::keys::Keys;

static PUSH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/push.lua")));
static REGISTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/presence_register.lua")));
static UNREGISTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/presence_unregister.lua")));
static COUNT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/presence_count.lua")));
static DEVICES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/presence_devices.lua")));
static KICK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/kick.lua")));
static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/ack.lua")));
static READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/read.lua")));
static UNREAD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/unread.lua")));
static JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/group_join.lua")));
static LEAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/group_leave.lua")));
static ONLINE_MEMBERS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/online_members.lua")));
static BROADCAST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/broadcast.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/presence_settle.lua")));
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/presence_sweep.lua")));
static GROUP_PRESENCE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/group_presence.lua")));
static ONLINE_USERS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/online_users.lua")));
static CLIENTS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/clients.lua")));
static USER_CLIENTS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/user_clients.lua")));
static ONLINE_GROUPS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/online_groups.lua")));
static CLIENT_EVENT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/client_event.lua")));
static CLIENT_BIND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/client_bind.lua")));
static DATASET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/dataset.lua")));
static SESSION_SET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../lua/session_set.lua")));

/// Most stream entries one read/unread call scans (bounds the script's run time).
pub const MAX_SCAN: u64 = 10_000;

/// A message to accept into one or more conversations.
#[derive(Debug)]
pub struct Push<'a> {
    pub id: &'a MessageId,
    /// Sender's user id (validated), if a user sent it.
    pub from: Option<&'a str>,
    /// Recipient's user id (validated), for one-to-one messages.
    pub to: Option<&'a str>,
    /// The payload as JSON text. The caller guarantees it is valid JSON.
    pub data_json: &'a str,
    /// Conversations to append to; each gets its own sequence number.
    pub targets: &'a [Conversation],
    /// Approximate number of messages each stream keeps.
    pub retention: u64,
    /// Replication id of the server the push runs on (`INFO replication`, read when the
    /// connection was opened); `""` when unknown. A conversation last advanced under another
    /// one starts a new epoch (see `lua/push.lua`).
    pub replid: &'a str,
    /// The caller may have sent this push before (it timed out, or the connection broke):
    /// conversations that already hold the message id are not written again.
    pub retry: bool,
}

/// `chat_push`: per target, the sequence number and epoch (a flat `Vec<u64>`; see [`landed`]).
pub fn push(keys: &Keys, msg: &Push<'_>) -> ScriptInvocation<'static> {
    let (k, a) = push_parts(keys, msg);
    invocation(&PUSH, &k, &a)
}

/// [`push`] and then `WAIT replicas timeout` in one round trip: the second reply says how many
/// replicas hold everything the connection wrote, the push included. Results come back one per
/// command, errors included (`Vec<RedisResult<redis::Value>>`); on [`is_no_script`] run [`push`]
/// (which loads the script) and the WAIT on their own.
pub fn push_and_wait(keys: &Keys, msg: &Push<'_>, replicas: u32, timeout: std::time::Duration) -> redis::Pipeline {
    let (k, a) = push_parts(keys, msg);
    let mut pipe = calls_pipeline();
    add_call(&mut pipe, &PUSH, &k, &a);
    pipe.add_command(wait(replicas, timeout));
    pipe
}

/// `WAIT replicas timeout`: how many replicas hold what this connection wrote so far.
pub fn wait(replicas: u32, timeout: std::time::Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(replicas).arg(timeout.as_millis().max(1) as u64);
    cmd
}

/// The reply of [`push`] as (sequence, epoch) per target.
pub fn landed(flat: &[u64]) -> Vec<(u64, u64)> {
    flat.chunks(2).map(|p| (p[0], p.get(1).copied().unwrap_or(0))).collect()
}

/// Whether a push was refused because the history log holds too many entries MySQL has not
/// stored yet (`CHATBACKLOG`).
pub fn is_backlog_full(e: &redis::RedisError) -> bool {
    e.code() == Some("CHATBACKLOG")
}

/// Whether a push was refused because this Redis has no dataset marker yet (`CHATNOTREADY`:
/// new, restarted empty or flushed, and no sidecar has set it again yet). Nothing was written.
pub fn is_not_ready(e: &redis::RedisError) -> bool {
    e.code() == Some("CHATNOTREADY")
}

/// Sets the dataset marker when it is missing (`lost`: the Redis may have lost data), and the
/// persistence log when `log_bound` is given (this node persists). Returns
/// `(marker, created now)` (`(String, u8)`). See `lua/dataset.lua`.
pub fn dataset(keys: &Keys, lost: bool, log_bound: Option<u64>) -> ScriptInvocation<'static> {
    let mut inv = DATASET.prepare_invoke();
    inv.key(keys.dataset()).key(keys.log_enabled()).key(keys.log());
    inv.arg(if lost { "l" } else { "g" }).arg(log_bound.map(|b| b.to_string()).unwrap_or_default()).arg(Keys::LOG_GROUP);
    inv
}

fn push_parts(keys: &Keys, msg: &Push<'_>) -> (Vec<String>, Vec<String>) {
    let mut k = vec![keys.log(), keys.log_enabled(), keys.dataset()];
    let mut a = vec![
        msg.id.as_str().to_owned(),
        json_str_or_null(msg.from),
        json_str_or_null(msg.to),
        msg.data_json.to_owned(),
        msg.retention.to_string(),
        msg.replid.to_owned(),
        if msg.retry { "1" } else { "0" }.to_owned(),
    ];
    for conv in msg.targets {
        k.extend([keys.seq(conv), keys.stream(conv), keys.epoch(conv)]);
        a.extend([conv.to_string(), keys.live(conv)]);
    }
    (k, a)
}

/// The targets of a one-to-one push: the recipient's inbox, and the sender's own inbox so the
/// sender's other devices see what they sent (multi-device sync).
pub fn direct_targets(to: &str, from: Option<&str>) -> Vec<Conversation> {
    let mut targets = vec![Conversation::Inbox(to.to_owned())];
    if let Some(from) = from.filter(|f| *f != to) {
        targets.push(Conversation::Inbox(from.to_owned()));
    }
    targets
}

/// Registers or refreshes a live connection; returns 1 when the user must be announced
/// online (`u64`). `uid` is empty for an anonymous connection (client index only); `new` is
/// false for the periodic refresh, which then leaves a connection bound meanwhile alone.
pub fn register(keys: &Keys, uid: &str, conn: &ConnInfo, ttl_ms: u64, new: bool) -> ScriptInvocation<'static> {
    let (k, a) = register_parts(keys, uid, conn, ttl_ms, new);
    invocation(&REGISTER, &k, &a)
}

/// The periodic refresh of many connections: the EVALSHA that [`register`] runs (`new` false)
/// for each, in one pipeline, so the lot costs one write and one read instead of a round trip
/// each. Results come back one per connection (`Vec<RedisResult<u64>>`); a
/// [`is_no_script`] error means Redis has lost its script cache since — run [`register`] for
/// that connection, which loads the script again.
pub fn refresh_all<'a>(keys: &Keys, conns: impl IntoIterator<Item = (&'a str, &'a ConnInfo)>, ttl_ms: u64) -> redis::Pipeline {
    let mut pipe = calls_pipeline();
    for (uid, conn) in conns {
        let (k, a) = register_parts(keys, uid, conn, ttl_ms, false);
        add_call(&mut pipe, &REGISTER, &k, &a);
    }
    pipe
}

/// `script` with these keys and arguments, run on its own (EVALSHA, loading it if needed).
fn invocation(script: &'static Script, keys: &[String], args: &[String]) -> ScriptInvocation<'static> {
    let mut inv = script.prepare_invoke();
    for key in keys {
        inv.key(key);
    }
    for arg in args {
        inv.arg(arg);
    }
    inv
}

/// A pipeline of script calls whose results come back one per call, errors included.
fn calls_pipeline() -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe
}

/// Adds the EVALSHA of `script` with these keys and arguments to `pipe`.
fn add_call(pipe: &mut redis::Pipeline, script: &Script, keys: &[String], args: &[String]) {
    pipe.cmd("EVALSHA").arg(script.get_hash()).arg(keys.len()).arg(keys).arg(args);
}

/// Whether a script call failed because Redis does not know the script (`NOSCRIPT`).
pub fn is_no_script(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// Keys and arguments of `presence_register.lua`, in its order.
fn register_parts(keys: &Keys, uid: &str, conn: &ConnInfo, ttl_ms: u64, new: bool) -> ([String; 7], [String; 5]) {
    let k = [
        keys.conns(uid),
        keys.conn_info(uid),
        keys.online(),
        keys.announced(uid),
        keys.client(&conn.id),
        keys.clients(),
        keys.session(&conn.id),
    ];
    let info = serde_json::to_string(conn).expect("plain struct");
    let a = [ttl_ms.to_string(), uid.to_owned(), conn.id.clone(), info, if new { "1" } else { "0" }.to_owned()];
    (k, a)
}

/// Removes a live connection; returns how many the user still has (`u64`).
pub fn unregister(keys: &Keys, uid: &str, conn_id: &str) -> ScriptInvocation<'static> {
    let mut inv = UNREGISTER.prepare_invoke();
    inv.key(keys.conns(uid)).key(keys.conn_info(uid)).key(keys.online());
    inv.key(keys.client(conn_id)).key(keys.clients()).key(keys.session(conn_id));
    inv.arg(uid).arg(conn_id);
    inv
}

/// After the offline debounce: 1 when the user must be announced offline (`u64`).
pub fn settle_offline(keys: &Keys, uid: &str) -> ScriptInvocation<'static> {
    let mut inv = SETTLE.prepare_invoke();
    inv.key(keys.conns(uid)).key(keys.announced(uid));
    inv
}

/// Users whose presence expired (a node died), to announce offline (`Vec<String>`).
pub fn sweep_expired(keys: &Keys, max: usize) -> ScriptInvocation<'static> {
    let mut inv = SWEEP.prepare_invoke();
    inv.key(keys.online());
    inv.arg(keys.namespace()).arg(max);
    inv
}

/// Records `uid` going online/offline in `group` and publishes `event` (a live payload) to the
/// group unless more than `limit` members are online (0: never); 1 when the group became
/// occupied/vacated.
pub fn group_presence(keys: &Keys, group: &str, uid: &str, online: bool, event: &str, limit: u64) -> ScriptInvocation<'static> {
    let mut inv = GROUP_PRESENCE.prepare_invoke();
    inv.key(keys.present(group)).key(keys.live(&Conversation::Group(group.to_owned())));
    inv.arg(uid).arg(if online { "online" } else { "offline" }).arg(event).arg(limit);
    inv
}

/// `chat_is_online`: number of the user's live connections (`u64`).
pub fn live_connections(keys: &Keys, uid: &str) -> ScriptInvocation<'static> {
    let mut inv = COUNT.prepare_invoke();
    inv.key(keys.conns(uid));
    inv
}

/// `chat_online_count`: number of users with at least one live connection (`u64`).
pub fn online_users(keys: &Keys) -> ScriptInvocation<'static> {
    let mut inv = COUNT.prepare_invoke();
    inv.key(keys.online());
    inv
}

/// `chat_user_devices`: flat `[id, info-json-or-nil, ...]`; decode with [`parse_devices`].
pub fn devices(keys: &Keys, uid: &str) -> ScriptInvocation<'static> {
    let mut inv = DEVICES.prepare_invoke();
    inv.key(keys.conns(uid)).key(keys.conn_info(uid));
    inv
}

/// `chat_kick`: asks nodes to close the user's connections; returns how many were live (`u64`).
pub fn kick(keys: &Keys, uid: &str, reason: &str) -> ScriptInvocation<'static> {
    let mut inv = KICK.prepare_invoke();
    inv.key(keys.conns(uid));
    inv.arg(keys.live(&Conversation::Inbox(uid.to_owned()))).arg(reason);
    inv
}

/// Raises `uid`'s acknowledged sequence in `conv` (never lowers it): the inbox in the user's
/// `acked` hash, a group in the group's (one field per member).
pub fn ack(keys: &Keys, uid: &str, conv: &Conversation, seq: u64) -> ScriptInvocation<'static> {
    ack_many(keys, conv, &[(uid, seq)])
}

/// Raises the acknowledged sequences of several members of `group` at once: `(uid, seq)`.
pub fn ack_group<S: AsRef<str>>(keys: &Keys, group: &str, members: &[(S, u64)]) -> ScriptInvocation<'static> {
    ack_many(keys, &Conversation::Group(group.to_owned()), members)
}

/// [`ack`] for an inbox (its owner acknowledged the highest of `members`' sequences), or
/// [`ack_group`] for a group.
pub fn ack_many<S: AsRef<str>>(keys: &Keys, conv: &Conversation, members: &[(S, u64)]) -> ScriptInvocation<'static> {
    let (key, args) = ack_parts(keys, conv, members);
    invocation(&ACK, &[key], &args)
}

/// Many [`ack_many`] writes in one pipeline (one write and one read for the lot), results one
/// per write (`Vec<RedisResult<()>>`); on [`is_no_script`], run that write's [`ack_many`],
/// which loads the script again.
pub fn ack_all<S: AsRef<str>>(keys: &Keys, writes: &[(Conversation, Vec<(S, u64)>)]) -> redis::Pipeline {
    let mut pipe = calls_pipeline();
    for (conv, members) in writes {
        let (key, args) = ack_parts(keys, conv, members);
        add_call(&mut pipe, &ACK, &[key], &args);
    }
    pipe
}

/// Key and arguments of `ack.lua`: an inbox's position is a field of its owner's `acked` hash
/// (the highest sequence given); a group's members are fields of the group's.
fn ack_parts<S: AsRef<str>>(keys: &Keys, conv: &Conversation, members: &[(S, u64)]) -> (String, Vec<String>) {
    match conv {
        Conversation::Inbox(owner) => {
            let seq = members.iter().map(|m| m.1).max().unwrap_or(0);
            (keys.acked(owner), vec![conv.to_string(), seq.to_string()])
        }
        Conversation::Group(group) => {
            let args = members.iter().flat_map(|(uid, seq)| [uid.as_ref().to_owned(), seq.to_string()]).collect();
            (keys.group_acked(group), args)
        }
    }
}

/// `uid` read `conv` up to `seq`: moves the read pointer, syncs the user's other devices,
/// sends receipts to the senders. Returns the read pointer (`u64`).
pub fn read(keys: &Keys, uid: &str, conv: &Conversation, seq: u64) -> ScriptInvocation<'static> {
    let mut inv = READ.prepare_invoke();
    inv.key(keys.read(uid)).key(keys.stream(conv));
    let own = keys.live(&Conversation::Inbox(uid.to_owned()));
    inv.arg(conv.to_string()).arg(seq).arg(uid).arg(own).arg(keys.namespace()).arg(MAX_SCAN);
    inv
}

/// `chat_unread`: flat `[conv, count, ...]` for the given conversations of `uid`, each with
/// the sequence before which nothing counts (the group's sequence when the user joined).
pub fn unread(keys: &Keys, uid: &str, convs: &[(Conversation, u64)]) -> ScriptInvocation<'static> {
    let mut inv = UNREAD.prepare_invoke();
    inv.key(keys.read(uid));
    inv.arg(uid).arg(MAX_SCAN);
    for (conv, floor) in convs {
        inv.key(keys.seq(conv)).key(keys.stream(conv)).key(keys.epoch(conv));
        inv.arg(conv.to_string()).arg(*floor);
    }
    inv
}

fn membership(script: &'static Script, keys: &Keys, uid: &str, group: &str) -> ScriptInvocation<'static> {
    let g = Conversation::Group(group.to_owned());
    let mut inv = script.prepare_invoke();
    inv.key(keys.members(group)).key(keys.groups(uid)).key(keys.seq(&g));
    inv.arg(uid).arg(group).arg(keys.live(&Conversation::Inbox(uid.to_owned()))).arg(keys.live(&g));
    inv
}

/// `chat_join_group`: 1 when newly added (`u64`).
pub fn join_group(keys: &Keys, uid: &str, group: &str) -> ScriptInvocation<'static> {
    membership(&JOIN, keys, uid, group)
}

/// `chat_leave_group`: 1 when removed (`u64`).
pub fn leave_group(keys: &Keys, uid: &str, group: &str) -> ScriptInvocation<'static> {
    membership(&LEAVE, keys, uid, group)
}

/// Online members of a group: a list of user ids (`Vec<String>`) or their count (`u64`).
pub fn online_members(keys: &Keys, group: &str, list: bool) -> ScriptInvocation<'static> {
    let mut inv = ONLINE_MEMBERS.prepare_invoke();
    inv.key(keys.members(group)).key(keys.online());
    inv.arg(if list { "1" } else { "0" });
    inv
}

/// `chat_broadcast`: publishes `data_json` to every connected client; returns online users (`u64`).
pub fn broadcast(keys: &Keys, data_json: &str) -> ScriptInvocation<'static> {
    let mut inv = BROADCAST.prepare_invoke();
    inv.key(keys.online());
    inv.arg(keys.broadcast()).arg(data_json);
    inv
}

/// `chat_online_users()`: user ids with a live connection (`Vec<String>`).
pub fn online_users_list(keys: &Keys) -> ScriptInvocation<'static> {
    let mut inv = ONLINE_USERS.prepare_invoke();
    inv.key(keys.online());
    inv
}

/// What [`clients`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientsMode {
    /// Flat `[client id, user id or "", …]` (`Vec<String>`).
    Users,
    /// Flat `[client id, session or nil, …]` (`Vec<Option<String>>`).
    Sessions,
    /// Counts: one without groups, else one per group (`Vec<u64>`).
    Count,
}

/// Live connections, all or those of `groups`' members (GatewayClient facade). `Users` and
/// `Sessions` take at most one group.
pub fn clients(keys: &Keys, mode: ClientsMode, groups: &[String]) -> ScriptInvocation<'static> {
    let mut inv = CLIENTS.prepare_invoke();
    inv.key(keys.clients());
    let mode = match mode {
        ClientsMode::Users => "users",
        ClientsMode::Sessions => "sessions",
        ClientsMode::Count => "count",
    };
    inv.arg(keys.namespace()).arg(mode);
    for g in groups {
        inv.arg(g);
    }
    inv
}

/// Live client ids of each of `uids`, in order (`Vec<Vec<String>>`).
pub fn user_clients(keys: &Keys, uids: &[String]) -> ScriptInvocation<'static> {
    let mut inv = USER_CLIENTS.prepare_invoke();
    inv.arg(keys.namespace());
    for u in uids {
        inv.arg(u);
    }
    inv
}

/// Online users in at least one group: `[(uid, groups, client ids)]`.
pub fn online_groups(keys: &Keys) -> ScriptInvocation<'static> {
    let mut inv = ONLINE_GROUPS.prepare_invoke();
    inv.key(keys.online());
    inv.arg(keys.namespace());
    inv
}

/// Publishes `payloads` (live-channel payloads, see [`crate::live`]) to live connection
/// `client` only; 1 when it is live, 0 when not (`u64`).
pub fn client_event(keys: &Keys, client: &str, payloads: &[String]) -> ScriptInvocation<'static> {
    let mut inv = CLIENT_EVENT.prepare_invoke();
    inv.key(keys.client(client));
    inv.arg(keys.namespace()).arg(client).arg(keys.broadcast());
    for p in payloads {
        inv.arg(p);
    }
    inv
}

/// `chat_bind`: asks the node holding anonymous connection `client` to bind it to `uid`.
/// Returns `gone`, `bound`, `wait` or `other:<uid>` (`String`); see `lua/client_bind.lua`.
pub fn client_bind(keys: &Keys, client: &str, uid: &str) -> ScriptInvocation<'static> {
    let mut inv = CLIENT_BIND.prepare_invoke();
    inv.key(keys.client(client));
    inv.arg(uid).arg(keys.broadcast()).arg(client);
    inv
}

/// Writes the session of live connection `client`; with `expect`, only if the session still
/// is that (`""` = none). 1 written, 0 changed meanwhile, -1 not live (`i64`).
pub fn session_set(keys: &Keys, client: &str, session: &str, expect: Option<&str>) -> ScriptInvocation<'static> {
    let mut inv = SESSION_SET.prepare_invoke();
    inv.key(keys.client(client)).key(keys.session(client));
    inv.arg(session).arg(if expect.is_some() { "1" } else { "0" }).arg(expect.unwrap_or(""));
    inv
}

/// What a node records about each live connection (the value of the connection-info hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// Connection id, unique across nodes.
    pub id: String,
    /// Id of the node holding the connection.
    pub node: String,
    /// Device label the client gave (`?device=`), or `"unknown"`.
    pub device: String,
    /// Transport: `"websocket"` (later `"sse"`, `"poll"`).
    pub transport: String,
    /// When the connection was accepted, ms since the epoch.
    pub connected_at: u64,
}

/// Decodes the reply of [`devices`]. Entries whose info hash field vanished are kept with
/// the id only, since the connection itself is still live.
pub fn parse_devices(flat: Vec<Option<String>>) -> Vec<ConnInfo> {
    flat.chunks(2)
        .filter_map(|pair| {
            let id = pair.first()?.clone()?;
            let info = pair.get(1).cloned().flatten();
            Some(info.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or(ConnInfo {
                id,
                node: String::new(),
                device: "unknown".into(),
                transport: String::new(),
                connected_at: 0,
            }))
        })
        .collect()
}

fn json_str_or_null(s: Option<&str>) -> String {
    // Ids are validated to a charset that needs no JSON escaping.
    match s {
        Some(s) => format!("\"{s}\""),
        None => "null".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_targets_add_the_sender_once() {
        assert_eq!(direct_targets("bob", None), vec![Conversation::Inbox("bob".into())]);
        assert_eq!(direct_targets("bob", Some("bob")).len(), 1);
        assert_eq!(
            direct_targets("bob", Some("alice")),
            vec![Conversation::Inbox("bob".into()), Conversation::Inbox("alice".into())]
        );
    }

    #[test]
    fn parse_devices_handles_missing_info() {
        let info = ConnInfo {
            id: "c1".into(),
            node: "n1".into(),
            device: "phone".into(),
            transport: "websocket".into(),
            connected_at: 5,
        };
        let flat = vec![
            Some("c1".into()),
            Some(serde_json::to_string(&info).unwrap()),
            Some("c2".into()),
            None,
        ];
        let d = parse_devices(flat);
        assert_eq!(d[0], info);
        assert_eq!(d[1].id, "c2");
    }
}
