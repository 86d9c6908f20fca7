//! The PHP functions: argument checks, then one Redis round trip through `chat_protocol`.
//!
//! Every argument is validated before Redis is touched, so a bad call fails the same way
//! whether or not Redis is up. Each function returns `PhpResult`, whose error ext-php-rs
//! throws as the `Chat\*` exception chosen in `errors`.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_protocol::scripts::{self, Push};
use chat_protocol::{ids, token, Conversation, MessageId};
use ext_php_rs::boxed::ZBox;
use ext_php_rs::convert::FromZval;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};

use crate::args::{type_name, ArrayArg, Key, StrArg};
use crate::conn::{idempotent, repeatable, with_connection};
use crate::errors::{ChatError, Result};
use crate::{ini, json};

/// Longest `chat_kick` reason: a WebSocket close frame carries at most 125 payload bytes, two
/// of which are the close code.
const MAX_KICK_REASON: usize = 123;

/// Adds the functions to the module. Lives here because `wrap_function!` names a private
/// item `#[php_function]` generates next to each function.
pub fn register(module: ModuleBuilder) -> ModuleBuilder {
    module
        .function(wrap_function!(chat_token))
        .function(wrap_function!(chat_push))
        .function(wrap_function!(chat_is_online))
        .function(wrap_function!(chat_online_count))
        .function(wrap_function!(chat_user_devices))
        .function(wrap_function!(chat_kick))
        .function(wrap_function!(chat_unread))
        .function(wrap_function!(chat_history))
        .function(wrap_function!(chat_join_group))
        .function(wrap_function!(chat_leave_group))
        .function(wrap_function!(chat_group_members))
        .function(wrap_function!(chat_send_to_group))
        .function(wrap_function!(chat_broadcast))
        .function(wrap_function!(chat_online_users))
}

/// Mints a connect token (JWT, HS256) for `$uid`, valid for `$ttl` seconds, signed with
/// `chat.jwt_secret`. `$claims` adds app claims; `sub`, `exp` and `iat` are set here.
#[php_function]
#[php(defaults(ttl = 3600, claims = ArrayArg::EMPTY))]
pub fn chat_token(uid: StrArg<'_>, ttl: i64, claims: ArrayArg<'_>) -> PhpResult<String> {
    Ok(token_for(&uid, ttl, claims)?)
}

fn token_for(uid: &StrArg<'_>, ttl: i64, claims: ArrayArg<'_>) -> Result<String> {
    let uid = user_id(uid)?;
    let ttl = u64::try_from(ttl)
        .ok()
        .filter(|t| *t >= 1)
        .ok_or_else(|| ChatError::Invalid(format!("ttl must be at least 1 second, got {ttl}")))?;
    let extra = json::claims(claims)?;
    let now = unix_now()?;
    let claims = token::claims_for(&uid, now, ttl, extra)?;
    let signed = token::sign(&claims, ini::jwt_secret().as_bytes())?;
    // The sidecar refuses longer tokens; minting one would only move the failure to the browser.
    if signed.len() > token::MAX_TOKEN_LEN {
        return Err(ChatError::Invalid(format!(
            "the token would be {} bytes; the sidecar accepts at most {}, so put less into $claims",
            signed.len(),
            token::MAX_TOKEN_LEN
        )));
    }
    Ok(signed)
}

/// Sends `$message` (anything `json_encode` accepts) to `$uid`'s inbox and returns its id.
/// With `['from' => $sender]` it is a one-to-one message and also lands in the sender's inbox.
#[php_function]
#[php(defaults(options = ArrayArg::EMPTY))]
pub fn chat_push(uid: StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> PhpResult<String> {
    Ok(push(&uid, message, options)?)
}

fn push(uid: &StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> Result<String> {
    let to = user_id(uid)?;
    let from = push_options(options)?;
    let data_json = message_json(message)?;
    let targets = scripts::direct_targets(&to, from.as_deref());
    accept("chat_push", from.as_deref(), Some(&to), &data_json, &targets)
}

/// Stores a message in `targets` and returns its id once Redis (and, where the URL asks for it,
/// a replica) holds it. Repeated after a lost connection or a failover, the push is stored once:
/// its id is the idempotency key.
pub(crate) fn accept(op: &str, from: Option<&str>, to: Option<&str>, data_json: &str, targets: &[Conversation]) -> Result<String> {
    let keys = ini::keys()?;
    let retention = ini::retention()?;
    let id = MessageId::generate();
    let confirmed = idempotent(op, |link, attempt| {
        let msg = Push { id: &id, from, to, data_json, targets, retention, replid: &link.replid, retry: attempt.number > 1 };
        let durability = link.topology.durability;
        if durability.replicas == 0 {
            return scripts::push(&keys, &msg).invoke::<Vec<u64>>(&mut link.con).map(|_| None);
        }
        // WAIT blocks for up to its timeout, on top of the round trip.
        link.con.set_read_timeout(Some(link.timeout + durability.timeout))?;
        let r = push_and_wait(&keys, &msg, durability, &mut link.con);
        link.con.set_read_timeout(Some(link.timeout))?;
        r.map(|n| Some((n, u64::from(durability.replicas))))
    })?;
    match confirmed {
        Some((got, wanted)) if got < wanted => Err(ChatError::Connection(format!(
            "{op}: Redis stored message {id}, but only {got} of {wanted} replica(s) confirmed it in time (replicas in chat.redis_url); it may be lost if the master fails now — it was not retried, so check before sending it again"
        ))),
        _ => Ok(id.to_string()),
    }
}

/// The push and its `WAIT` in one round trip; how many replicas confirmed it.
fn push_and_wait(keys: &chat_protocol::Keys, msg: &Push<'_>, d: chat_protocol::topology::Durability, con: &mut redis::Connection) -> redis::RedisResult<u64> {
    let mut replies: Vec<redis::RedisResult<redis::Value>> = scripts::push_and_wait(keys, msg, d.replicas, d.timeout).query(con)?;
    let waited = replies.pop().unwrap_or(Ok(redis::Value::Nil));
    match replies.pop() {
        Some(Ok(_)) => Ok(redis::from_redis_value(waited?)?),
        // A master that has not seen the script yet (after a failover): load it, then wait.
        Some(Err(e)) if scripts::is_no_script(&e) => {
            scripts::push(keys, msg).invoke::<Vec<u64>>(con)?;
            scripts::wait(d.replicas, d.timeout).query(con)
        }
        Some(Err(e)) => Err(e),
        None => Err(redis::RedisError::from((redis::ErrorKind::Client, "no reply to the push"))),
    }
}

/// `$message` as JSON, refused when over `chat.max_message_bytes` or not I-JSON (RFC 7493):
/// `json_encode` happily writes what some reader downstream refuses (nesting past
/// `ijson::MAX_DEPTH`, noncharacters, or a repeated member name from a `JsonSerializable`),
/// and a stored message every reader must be able to read.
pub(crate) fn message_json(message: &Zval) -> Result<String> {
    let data_json = json::encode(message)?;
    let limit = ini::max_message_bytes()?;
    if data_json.len() > limit {
        return Err(ChatError::Invalid(format!(
            "the message is {} bytes as JSON; the limit is {limit} ({})",
            data_json.len(),
            ini::MAX_MESSAGE_BYTES
        )));
    }
    json::check_ijson(&data_json, limit)?;
    Ok(data_json)
}

/// The sender from `chat_push`'s options; any other key is refused so typos do not pass silently.
fn push_options(options: ArrayArg<'_>) -> Result<Option<String>> {
    let mut from = None;
    for (key, value) in options.iter() {
        if !matches!(&key, Key::Str(name) if name == "from") {
            return Err(ChatError::Invalid(format!(
                "unknown chat_push option {key}; the only option is 'from'"
            )));
        }
        from = sender(value)?;
    }
    Ok(from)
}

/// `null` means "from the app"; ints are accepted like for `$uid`.
fn sender(value: &Zval) -> Result<Option<String>> {
    let value = value.dereference();
    if value.is_null() {
        return Ok(None);
    }
    let from = <StrArg<'_> as FromZval>::from_zval(value).ok_or_else(|| {
        ChatError::Invalid(format!(
            "option 'from' must be a user id string, got {}",
            type_name(value)
        ))
    })?;
    let from = from.lossy();
    ids::validate("option 'from'", &from)?;
    Ok(Some(from.into_owned()))
}

/// Whether `$uid` has at least one live connection on any sidecar node.
#[php_function]
pub fn chat_is_online(uid: StrArg<'_>) -> PhpResult<bool> {
    let uid = user_id(&uid)?;
    let keys = ini::keys()?;
    let inv = scripts::live_connections(&keys, &uid);
    let n = repeatable("chat_is_online", |con| inv.invoke::<u64>(con))?;
    Ok(n > 0)
}

/// How many users have at least one live connection; with `$group`, how many of its members.
#[php_function]
pub fn chat_online_count(group: Option<StrArg<'_>>) -> PhpResult<i64> {
    let keys = ini::keys()?;
    let inv = match group {
        None => scripts::online_users(&keys),
        Some(g) => scripts::online_members(&keys, &group_name(&g)?, false),
    };
    let n = repeatable("chat_online_count", |con| inv.invoke::<u64>(con))?;
    Ok(php_int(n))
}

/// User ids with at least one live connection; with `$group`, only its members. Sorted.
#[php_function]
pub fn chat_online_users(group: Option<StrArg<'_>>) -> PhpResult<Vec<String>> {
    let keys = ini::keys()?;
    let inv = match group {
        None => scripts::online_users_list(&keys),
        Some(g) => scripts::online_members(&keys, &group_name(&g)?, true),
    };
    let mut users = repeatable("chat_online_users", |con| inv.invoke::<Vec<String>>(con))?;
    users.sort();
    Ok(users)
}

/// Adds `$uid` to `$group`. Their live connections receive the group from now on (not its
/// earlier messages). Returns false when they already were a member.
#[php_function]
pub fn chat_join_group(uid: StrArg<'_>, group: StrArg<'_>) -> PhpResult<bool> {
    let (uid, group) = (user_id(&uid)?, group_name(&group)?);
    let inv = scripts::join_group(&ini::keys()?, &uid, &group);
    Ok(repeatable("chat_join_group", |con| inv.invoke::<u64>(con))? == 1)
}

/// Removes `$uid` from `$group`; their live connections stop receiving it at once. Returns
/// false when they were not a member.
#[php_function]
pub fn chat_leave_group(uid: StrArg<'_>, group: StrArg<'_>) -> PhpResult<bool> {
    let (uid, group) = (user_id(&uid)?, group_name(&group)?);
    let inv = scripts::leave_group(&ini::keys()?, &uid, &group);
    Ok(repeatable("chat_leave_group", |con| inv.invoke::<u64>(con))? == 1)
}

/// The members of `$group`, sorted.
#[php_function]
pub fn chat_group_members(group: StrArg<'_>) -> PhpResult<Vec<String>> {
    let group = group_name(&group)?;
    let key = ini::keys()?.members(&group);
    let mut members: Vec<String> = repeatable("chat_group_members", |con| redis::cmd("SMEMBERS").arg(&key).query(con))?;
    members.sort();
    Ok(members)
}

/// Sends `$message` to every member of `$group` (durable and sequenced like an inbox);
/// `['from' => $uid]` names the sender. Returns the message id.
#[php_function]
#[php(defaults(options = ArrayArg::EMPTY))]
pub fn chat_send_to_group(group: StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> PhpResult<String> {
    Ok(send_to_group(&group, message, options)?)
}

fn send_to_group(group: &StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> Result<String> {
    let conv = Conversation::group(&group_name(group)?)?;
    let from = push_options(options)?;
    let data_json = message_json(message)?;
    accept("chat_send_to_group", from.as_deref(), None, &data_json, &[conv])
}

/// Sends `$message` live to every connected client (not stored, not resumable). Returns how
/// many users were online.
#[php_function]
pub fn chat_broadcast(message: &Zval) -> PhpResult<i64> {
    let data_json = message_json(message)?;
    let inv = scripts::broadcast(&ini::keys()?, &data_json);
    Ok(php_int(with_connection("chat_broadcast", |con| inv.invoke::<u64>(con))?))
}

/// A validated group name.
pub(crate) fn group_name(group: &StrArg<'_>) -> Result<String> {
    let group = group.lossy();
    ids::validate("group name", &group)?;
    Ok(group.into_owned())
}

/// `$uid`'s live connections: a list of `['id', 'node', 'device', 'transport', 'connected_at']`.
#[php_function]
pub fn chat_user_devices(uid: StrArg<'_>) -> PhpResult<ZBox<ZendHashTable>> {
    Ok(devices(&uid)?)
}

fn devices(uid: &StrArg<'_>) -> Result<ZBox<ZendHashTable>> {
    let uid = user_id(uid)?;
    let keys = ini::keys()?;
    let inv = scripts::devices(&keys, &uid);
    let flat = repeatable("chat_user_devices", |con| {
        inv.invoke::<Vec<Option<String>>>(con)
    })?;
    let internal = |e: ext_php_rs::error::Error| {
        ChatError::Other(format!("cannot build the result array: {e}"))
    };
    let mut list = ZendHashTable::new();
    for d in scripts::parse_devices(flat) {
        let mut row = ZendHashTable::with_capacity(5);
        row.insert("id", d.id).map_err(internal)?;
        row.insert("node", d.node).map_err(internal)?;
        row.insert("device", d.device).map_err(internal)?;
        row.insert("transport", d.transport).map_err(internal)?;
        row.insert("connected_at", php_int(d.connected_at))
            .map_err(internal)?;
        list.push(row).map_err(internal)?;
    }
    Ok(list)
}

/// Closes every live connection of `$uid` (close code 4004, `$reason` as the close reason);
/// returns how many there were. Clients are told not to reconnect by themselves. With
/// `$revoke_tokens`, every token of the user issued until now is refused from now on (a logout
/// everywhere, a banned account); tokens minted afterwards work.
#[php_function]
#[php(defaults(reason = None, revoke_tokens = false))]
pub fn chat_kick(uid: StrArg<'_>, reason: Option<StrArg<'_>>, revoke_tokens: bool) -> PhpResult<i64> {
    Ok(kick(&uid, reason.as_ref(), revoke_tokens)?)
}

fn kick(uid: &StrArg<'_>, reason: Option<&StrArg<'_>>, revoke_tokens: bool) -> Result<i64> {
    let uid = user_id(uid)?;
    let reason = match reason {
        None => "",
        Some(r) => {
            let text = r.utf8().ok_or_else(|| {
                ChatError::Invalid("the kick reason must be valid UTF-8".to_owned())
            })?;
            if r.len() > MAX_KICK_REASON {
                return Err(ChatError::Invalid(format!(
                    "the kick reason is {} bytes; a WebSocket close reason holds at most {MAX_KICK_REASON}",
                    r.len()
                )));
            }
            text
        }
    };
    let keys = ini::keys()?;
    if revoke_tokens {
        // Before the kick: a kicked client that reconnects at once must already be refused.
        // PHP's clock, like the iat chat_token() writes; kept as long as a token can live.
        let now = unix_now()?;
        let key = keys.revoked(&uid);
        let ttl = token::MAX_TTL_SECS + 24 * 3600;
        repeatable("chat_kick", |con| redis::cmd("SET").arg(&key).arg(now).arg("EX").arg(ttl).query::<()>(con))?;
    }
    let inv = scripts::kick(&keys, &uid, reason);
    let n = with_connection("chat_kick", |con| inv.invoke::<u64>(con))?;
    Ok(php_int(n))
}

/// Most messages `chat_history` returns per call.
const MAX_HISTORY: i64 = 1000;

/// Unread messages per conversation of `$uid`: messages after the user's read position that
/// the user did not send, e.g. `['u:bob' => 3]`. Conversations without messages are absent.
#[php_function]
pub fn chat_unread(uid: StrArg<'_>) -> PhpResult<ZBox<ZendHashTable>> {
    Ok(unread(&uid)?)
}

fn unread(uid: &StrArg<'_>) -> Result<ZBox<ZendHashTable>> {
    let uid = user_id(uid)?;
    let keys = ini::keys()?;
    let groups: Vec<(String, u64)> = repeatable("chat_unread", |con| {
        redis::cmd("HGETALL").arg(keys.groups(&uid)).query(con)
    })?;
    let mut convs = vec![(Conversation::Inbox(uid.clone()), 0)];
    convs.extend(groups.into_iter().filter_map(|(g, joined)| Some((Conversation::group(&g).ok()?, joined))));
    let inv = scripts::unread(&keys, &uid, &convs);
    let flat = repeatable("chat_unread", |con| inv.invoke::<Vec<redis::Value>>(con))?;
    let mut out = ZendHashTable::new();
    for pair in flat.chunks(2) {
        let (Some(conv), Some(count)) = (pair.first(), pair.get(1)) else { continue };
        let conv: String = redis::from_redis_value(conv.clone())
            .map_err(|e| ChatError::Other(format!("unexpected reply from Redis: {e}")))?;
        let count: u64 = redis::from_redis_value(count.clone())
            .map_err(|e| ChatError::Other(format!("unexpected reply from Redis: {e}")))?;
        out.insert(conv.as_str(), php_int(count))
            .map_err(|e| ChatError::Other(format!("cannot build the result array: {e}")))?;
    }
    Ok(out)
}

/// The latest `$limit` messages of `$conversation` (`u:<uid>` or `g:<group>`) before sequence
/// `$before` (all latest when null), oldest first, each decoded like a client receives it.
/// Covers what Redis still holds (`chat.retention` per conversation); older history is in
/// MySQL (docs/STORAGE.md).
#[php_function]
#[php(defaults(limit = 50, before = None))]
pub fn chat_history(conversation: StrArg<'_>, limit: i64, before: Option<i64>) -> PhpResult<ZBox<ZendHashTable>> {
    Ok(history(&conversation, limit, before)?)
}

fn history(conversation: &StrArg<'_>, limit: i64, before: Option<i64>) -> Result<ZBox<ZendHashTable>> {
    let conv = Conversation::parse(&conversation.lossy())?;
    if !(1..=MAX_HISTORY).contains(&limit) {
        return Err(ChatError::Invalid(format!("limit must be between 1 and {MAX_HISTORY}, got {limit}")));
    }
    let end = match before {
        None => "+".to_owned(),
        Some(b) if b >= 1 => format!("({b}-0"),
        Some(b) => return Err(ChatError::Invalid(format!("before must be a sequence number of at least 1, got {b}"))),
    };
    let keys = ini::keys()?;
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(keys.stream(&conv)).arg(end).arg("-").arg("COUNT").arg(limit);
    let entries = repeatable("chat_history", |con| {
        cmd.query::<Vec<(String, Vec<(String, String)>)>>(con)
    })?;
    let mut list = ZendHashTable::with_capacity(entries.len() as u32);
    for (entry, fields) in entries.into_iter().rev() {
        let Some((_, envelope)) = fields.into_iter().find(|(k, _)| k == "e") else { continue };
        // One unreadable message must not hide the rest of the page: it is left out, and said.
        let message = match json::decode(&envelope) {
            Ok(m) => m,
            Err(e) => {
                ext_php_rs::error::php_error(
                    &ext_php_rs::flags::ErrorType::Warning,
                    &format!("chat_history: message {entry} of {conv} left out: {e}"),
                );
                continue;
            }
        };
        list.push(message)
            .map_err(|e| ChatError::Other(format!("cannot build the result array: {e}")))?;
    }
    Ok(list)
}

fn unix_now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ChatError::Other("the system clock is before 1970".to_owned()))?
        .as_secs())
}

/// A validated user id (the protocol's definition: it becomes part of Redis keys).
pub(crate) fn user_id(uid: &StrArg<'_>) -> Result<String> {
    let uid = uid.lossy();
    ids::validate("user id", &uid)?;
    Ok(uid.into_owned())
}

pub(crate) fn php_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
