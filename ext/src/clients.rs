//! Functions on single connections ("clients"), for the GatewayClient facade
//! (`php-examples/gateway-client`) and for apps that address a device rather than a user.
//!
//! A client id is the connection id the sidecar reports (`welcome.conn`, `chat_user_devices()`):
//! `<node id>-<n>`. Each function is one Redis round trip where GatewayWorker asks every
//! gateway process: the sidecar keeps a client index (connection -> user, all connections) and
//! per-connection sessions in Redis, both expiring with the connection's presence.
//!
//! Only PHP can name a client id here; the sidecar never takes one from a browser. An app
//! that lets a browser tell it its client id (GatewayWorker's bind flow) must treat that id
//! like any other user input: see docs/MIGRATING_FROM_GATEWAYWORKER.md.

use std::collections::BTreeMap;

use chat_protocol::live::split_client_id;
use chat_protocol::scripts::{self, ClientsMode};
use chat_protocol::{ids, Conversation};
use ext_php_rs::boxed::ZBox;
use ext_php_rs::convert::FromZval;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};

use crate::args::{entries, type_name, ArrayArg, Key, StrArg};
use crate::conn::{repeatable, with_connection};
use crate::errors::{ChatError, Result};
use crate::functions::{group_name, message_json, php_int, user_id};
use crate::{ini, json};

/// Most client ids, user ids or groups one call takes (bounds the script's run time and the
/// payload every node parses).
pub const MAX_LIST: usize = 10_000;

/// Largest session, in bytes of its `serialize()` form.
pub const MAX_SESSION_BYTES: usize = 65_536;

/// Most attempts of `chat_update_session`'s compare-and-set before giving up.
const UPDATE_ATTEMPTS: usize = 16;

/// WebSocket close reasons hold at most 123 bytes.
const MAX_CLOSE_REASON: usize = 123;

pub fn register(module: ModuleBuilder) -> ModuleBuilder {
    module
        .function(wrap_function!(chat_client))
        .function(wrap_function!(chat_clients))
        .function(wrap_function!(chat_client_count))
        .function(wrap_function!(chat_group_client_counts))
        .function(wrap_function!(chat_user_clients))
        .function(wrap_function!(chat_online_groups))
        .function(wrap_function!(chat_event))
        .function(wrap_function!(chat_client_close))
        .function(wrap_function!(chat_session))
        .function(wrap_function!(chat_sessions))
        .function(wrap_function!(chat_set_session))
        .function(wrap_function!(chat_update_session))
        .function(wrap_function!(chat_bind))
}

/// Binds live connection `$client_id` to user `$uid` (GatewayWorker's bindUid). An anonymous
/// connection (the sidecar runs with `CHAT_ANONYMOUS_CONNECT`) becomes `$uid`'s session: this
/// returns true only once it is subscribed to the user's conversations and counts as online,
/// so a `chat_push`/`chat_event` to `$uid` right after it reaches the connection. A connection
/// that already is `$uid`'s: true, nothing to do. Not live: false. Another user's: throws, a
/// connection's user never changes.
#[php_function]
pub fn chat_bind(client_id: StrArg<'_>, uid: StrArg<'_>) -> PhpResult<bool> {
    Ok(bind(&client_id_of(&client_id)?, &user_id(&uid)?)?)
}

/// How long `chat_bind` waits for the sidecar holding an anonymous connection to confirm.
const BIND_WAIT_SECS: u64 = 5;

fn bind(id: &str, uid: &str) -> Result<bool> {
    let keys = ini::keys()?;
    let other = |other: &str| {
        ChatError::Other(format!(
            "{id} belongs to user {other:?}; a connection's user cannot change (close it with chat_client_close and let the client reconnect)"
        ))
    };
    let inv = scripts::client_bind(&keys, id, uid);
    let status: String = with_connection("chat_bind", |con| inv.invoke(con))?;
    match status.as_str() {
        "gone" => return Ok(false),
        "bound" => return Ok(true),
        "wait" => {}
        s => return Err(other(s.strip_prefix("other:").unwrap_or(s))),
    }
    // The connection's node answers once the binding is effective. BLPOP blocks longer than
    // chat.timeout_ms, so the socket's read timeout is raised for this one command.
    let reply_key = keys.bind_reply(id, uid);
    let timeout = ini::timeout()?;
    let reply: Option<(String, String)> = with_connection("chat_bind", |con| {
        con.set_read_timeout(Some(timeout + std::time::Duration::from_secs(BIND_WAIT_SECS)))?;
        let r = redis::cmd("BLPOP").arg(&reply_key).arg(BIND_WAIT_SECS).query(con);
        con.set_read_timeout(Some(timeout))?;
        r
    })?;
    match reply.as_ref().map(|(_, v)| v.as_str()) {
        Some("1") => Ok(true),
        Some(v) => Err(other(v.strip_prefix('0').unwrap_or(v))),
        None => {
            // No answer: the connection may have closed meanwhile (then false, as for any
            // connection that is not live), or its node stopped or lost Redis.
            let current: Option<String> = with_connection("chat_bind", |con| redis::cmd("GET").arg(keys.client(id)).query(con))?;
            match current.as_deref() {
                None => Ok(false),
                Some(u) if u == uid => Ok(true),
                _ => Err(ChatError::Other(format!(
                    "the sidecar holding {id} did not confirm binding it to {uid:?} within {BIND_WAIT_SECS} s; its node may be stopped or unable to reach Redis"
                ))),
            }
        }
    }
}

/// A live connection: `['id' => $client_id, 'uid' => user id, or null while it has none]`,
/// or null when it is not live.
#[php_function]
pub fn chat_client(client_id: StrArg<'_>) -> PhpResult<Option<ZBox<ZendHashTable>>> {
    let id = client_id_of(&client_id)?;
    let key = ini::keys()?.client(&id);
    let uid: Option<String> = repeatable("chat_client", |con| redis::cmd("GET").arg(&key).query(con))?;
    let Some(uid) = uid else { return Ok(None) };
    let mut row = ZendHashTable::with_capacity(2);
    row.insert("id", id).map_err(internal)?;
    match uid.as_str() {
        "" => row.insert("uid", ()).map_err(internal)?,
        _ => row.insert("uid", uid).map_err(internal)?,
    }
    Ok(Some(row))
}

/// Live connections, `[client id => user id or null]`: all of them, or with `$group` those of
/// its members' (groups are per user).
#[php_function]
pub fn chat_clients(group: Option<StrArg<'_>>) -> PhpResult<ZBox<ZendHashTable>> {
    let groups = optional_group(group.as_ref())?;
    let inv = scripts::clients(&ini::keys()?, ClientsMode::Users, &groups);
    let flat: Vec<String> = repeatable("chat_clients", |con| inv.invoke(con))?;
    let mut out = ZendHashTable::with_capacity((flat.len() / 2) as u32);
    for pair in flat.chunks(2) {
        let [id, uid] = pair else { continue };
        if uid.is_empty() {
            out.insert(id.as_str(), ()).map_err(internal)?;
        } else {
            out.insert(id.as_str(), uid.as_str()).map_err(internal)?;
        }
    }
    Ok(out)
}

/// How many live connections there are; with `$group`, how many its members have.
#[php_function]
pub fn chat_client_count(group: Option<StrArg<'_>>) -> PhpResult<i64> {
    let groups = optional_group(group.as_ref())?;
    let inv = scripts::clients(&ini::keys()?, ClientsMode::Count, &groups);
    let counts: Vec<u64> = repeatable("chat_client_count", |con| inv.invoke(con))?;
    Ok(php_int(counts.first().copied().unwrap_or(0)))
}

/// Live connections per group, `[group => count]`, for every group asked about.
#[php_function]
pub fn chat_group_client_counts(groups: ArrayArg<'_>) -> PhpResult<ZBox<ZendHashTable>> {
    let groups = id_list(groups, "group name", "$groups")?;
    let mut out = ZendHashTable::with_capacity(groups.len() as u32);
    if groups.is_empty() {
        return Ok(out);
    }
    let inv = scripts::clients(&ini::keys()?, ClientsMode::Count, &groups);
    let counts: Vec<u64> = repeatable("chat_group_client_counts", |con| inv.invoke(con))?;
    for (g, n) in groups.iter().zip(counts) {
        out.insert(g.as_str(), php_int(n)).map_err(internal)?;
    }
    Ok(out)
}

/// Live client ids of each user, `[uid => [client id, …]]`, for every user asked about
/// (`[]` for a user without a live connection).
#[php_function]
pub fn chat_user_clients(uids: ArrayArg<'_>) -> PhpResult<ZBox<ZendHashTable>> {
    let uids = id_list(uids, "user id", "$uids")?;
    let mut out = ZendHashTable::with_capacity(uids.len() as u32);
    if uids.is_empty() {
        return Ok(out);
    }
    let inv = scripts::user_clients(&ini::keys()?, &uids);
    let lists: Vec<Vec<String>> = repeatable("chat_user_clients", |con| inv.invoke(con))?;
    for (u, ids) in uids.iter().zip(lists) {
        out.insert(u.as_str(), ids).map_err(internal)?;
    }
    Ok(out)
}

/// Groups with at least one online member: `[group => [uid => [client id, …]]]`, only online
/// members, each with their live connections.
#[php_function]
pub fn chat_online_groups() -> PhpResult<ZBox<ZendHashTable>> {
    let inv = scripts::online_groups(&ini::keys()?);
    let rows: Vec<(String, Vec<String>, Vec<String>)> = repeatable("chat_online_groups", |con| inv.invoke(con))?;
    // group -> uid -> client ids, sorted by both.
    let mut by_group: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (uid, groups, clients) in rows {
        for g in groups {
            by_group.entry(g).or_default().insert(uid.clone(), clients.clone());
        }
    }
    let mut out = ZendHashTable::with_capacity(by_group.len() as u32);
    for (g, members) in by_group {
        let mut inner = ZendHashTable::with_capacity(members.len() as u32);
        for (uid, clients) in members {
            inner.insert(uid.as_str(), clients).map_err(internal)?;
        }
        out.insert(g.as_str(), inner).map_err(internal)?;
    }
    Ok(out)
}

/// Sends `$message` live (not stored, not resumable) to `$target`: `'all'` (every connection),
/// `'u:<uid>'` (the user's connections), `'g:<group>'` (its members' connections) or
/// `'c:<client id>'` (one connection). Options: `'raw' => true` sends `$message` itself as the
/// frame (a JSON string, or an array that is encoded); otherwise clients get
/// `{"type":"event","data":$message}`. `'only'` / `'except'` (lists of client ids) narrow
/// the audience. Returns 1/0 for `c:` (was the connection live), else how many sidecar nodes
/// received it.
#[php_function]
#[php(defaults(options = ArrayArg::EMPTY))]
pub fn chat_event(target: StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> PhpResult<i64> {
    Ok(event(&target, message, options)?)
}

enum Target {
    All,
    Conv(Conversation),
    Client(String),
}

fn event(target: &StrArg<'_>, message: &Zval, options: ArrayArg<'_>) -> Result<i64> {
    let text = target.lossy();
    let target = match text.split_once(':') {
        None if text == "all" => Target::All,
        Some(("c", id)) => Target::Client(client_id_str(id)?),
        Some(("u" | "g", _)) => Target::Conv(Conversation::parse(&text)?),
        _ => {
            return Err(ChatError::Invalid(format!(
                "target {text:?} must be 'all', 'u:<user id>', 'g:<group name>' or 'c:<client id>'"
            )))
        }
    };
    let opts = event_options(options)?;
    let frame = event_frame(message, opts.raw)?;
    let keys = ini::keys()?;
    let mut payload = String::with_capacity(frame.len() + 64);
    if let Some((only, ids)) = &opts.audience {
        if matches!(target, Target::Client(_)) {
            return Err(ChatError::Invalid("options 'only' and 'except' do not apply to a 'c:' target".to_owned()));
        }
        if *only && ids.is_empty() {
            return Ok(0);
        }
        payload.push(if *only { '@' } else { '!' });
        payload.push_str(&ids.join(","));
        payload.push(' ');
    }
    payload.push('e');
    payload.push_str(&frame);
    let channel = match target {
        Target::All => keys.broadcast(),
        Target::Conv(conv) => keys.live(&conv),
        Target::Client(id) => {
            let inv = scripts::client_event(&keys, &id, &[payload]);
            return Ok(php_int(with_connection("chat_event", |con| inv.invoke::<u64>(con))?));
        }
    };
    let nodes: u64 = with_connection("chat_event", |con| redis::cmd("PUBLISH").arg(&channel).arg(&payload).query(con))?;
    Ok(php_int(nodes))
}

struct EventOptions {
    raw: bool,
    /// (only = true / except = false, client ids)
    audience: Option<(bool, Vec<String>)>,
}

fn event_options(options: ArrayArg<'_>) -> Result<EventOptions> {
    let mut opts = EventOptions { raw: false, audience: None };
    for (key, value) in options.iter() {
        let name = match &key {
            Key::Str(n) => n.as_str(),
            _ => "",
        };
        match name {
            "raw" => {
                opts.raw = value.dereference().bool().ok_or_else(|| {
                    ChatError::Invalid(format!("option 'raw' must be a bool, got {}", type_name(value)))
                })?
            }
            "only" | "except" => {
                if opts.audience.is_some() {
                    return Err(ChatError::Invalid("give only one of the options 'only' and 'except'".to_owned()));
                }
                let list = value.dereference().array().ok_or_else(|| {
                    ChatError::Invalid(format!("option '{name}' must be a list of client ids, got {}", type_name(value)))
                })?;
                let mut ids = Vec::new();
                for (_, v) in entries(list) {
                    ids.push(client_id_value(v, name)?);
                    if ids.len() > MAX_LIST {
                        return Err(ChatError::Invalid(format!("option '{name}' lists more than {MAX_LIST} client ids")));
                    }
                }
                opts.audience = Some((name == "only", ids));
            }
            _ => {
                return Err(ChatError::Invalid(format!(
                    "unknown chat_event option {key}; the options are 'raw', 'only' and 'except'"
                )))
            }
        }
    }
    Ok(opts)
}

/// The frame clients receive. Raw frames must be JSON (long-poll answers splice frames into
/// a JSON array, SSE writes each on one `data:` line), so a raw string is checked, and line
/// breaks, which valid JSON can only hold as whitespace, become spaces.
fn event_frame(message: &Zval, raw: bool) -> Result<String> {
    if !raw {
        return Ok(format!(r#"{{"type":"event","data":{}}}"#, message_json(message)?));
    }
    let Some(s) = message.dereference().zend_str() else {
        return message_json(message);
    };
    let text = std::str::from_utf8(s.as_bytes())
        .map_err(|_| ChatError::Invalid("a raw message must be valid UTF-8 (it becomes a WebSocket text frame)".to_owned()))?;
    let limit = ini::max_message_bytes()?;
    if text.len() > limit {
        return Err(ChatError::Invalid(format!(
            "the message is {} bytes; the limit is {limit} ({})",
            text.len(),
            ini::MAX_MESSAGE_BYTES
        )));
    }
    serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
        ChatError::Invalid(format!(
            "a raw message must be JSON text (SSE and long-poll clients receive frames inside JSON): {e}"
        ))
    })?;
    crate::json::check_ijson(text, limit)?;
    Ok(text.replace(['\n', '\r'], " "))
}

/// Closes live connection `$client_id` (close code 4004, `$reason`). Returns false when it
/// is not live.
#[php_function]
pub fn chat_client_close(client_id: StrArg<'_>, reason: Option<StrArg<'_>>) -> PhpResult<bool> {
    let id = client_id_of(&client_id)?;
    let reason = match &reason {
        None => String::new(),
        Some(r) => {
            let text = r.utf8().ok_or_else(|| ChatError::Invalid("the close reason must be valid UTF-8".to_owned()))?;
            if text.len() > MAX_CLOSE_REASON {
                return Err(ChatError::Invalid(format!(
                    "the close reason is {} bytes; a WebSocket close reason holds at most {MAX_CLOSE_REASON}",
                    text.len()
                ))
                .into());
            }
            text.to_owned()
        }
    };
    let inv = scripts::client_event(&ini::keys()?, &id, &[format!("k{reason}")]);
    Ok(with_connection("chat_client_close", |con| inv.invoke::<u64>(con))? == 1)
}

/// The session PHP stored for live connection `$client_id` (`[]` if none), or null when the
/// connection is not live.
#[php_function]
pub fn chat_session(client_id: StrArg<'_>) -> PhpResult<Option<ZBox<ZendHashTable>>> {
    let id = client_id_of(&client_id)?;
    Ok(read_session(&id)?.map(|(_, session)| session))
}

/// Sessions of live connections, `[client id => session array]`: all, or those of `$group`'s
/// members.
#[php_function]
pub fn chat_sessions(group: Option<StrArg<'_>>) -> PhpResult<ZBox<ZendHashTable>> {
    let groups = optional_group(group.as_ref())?;
    let inv = scripts::clients(&ini::keys()?, ClientsMode::Sessions, &groups);
    let flat: Vec<Option<String>> = repeatable("chat_sessions", |con| inv.invoke(con))?;
    let mut out = ZendHashTable::with_capacity((flat.len() / 2) as u32);
    for pair in flat.chunks(2) {
        let [Some(id), session] = pair else { continue };
        out.insert(id.as_str(), decode_session(session.as_deref())?).map_err(internal)?;
    }
    Ok(out)
}

/// Replaces the session of live connection `$client_id`. False when it is not live.
#[php_function]
pub fn chat_set_session(client_id: StrArg<'_>, session: &ZendHashTable) -> PhpResult<bool> {
    let id = client_id_of(&client_id)?;
    let encoded = encode_session(session)?;
    let inv = scripts::session_set(&ini::keys()?, &id, &encoded, None);
    Ok(with_connection("chat_set_session", |con| inv.invoke::<i64>(con))? == 1)
}

/// Merges `$session` into the session of live connection `$client_id`, as
/// `array_replace_recursive($old, $session)`, atomically. False when it is not live.
#[php_function]
pub fn chat_update_session(client_id: StrArg<'_>, session: &ZendHashTable) -> PhpResult<bool> {
    let id = client_id_of(&client_id)?;
    let update = session.to_owned();
    let keys = ini::keys()?;
    // Optimistic: read, merge in PHP, write only if nobody wrote meanwhile; else again.
    for attempt in 0..UPDATE_ATTEMPTS {
        let Some((old_raw, old)) = read_session(&id)? else { return Ok(false) };
        let merged = json::call("array_replace_recursive", vec![&old, &update])?;
        let merged = merged.array().ok_or_else(|| ChatError::Other("array_replace_recursive() did not return an array".to_owned()))?;
        let encoded = encode_session(merged)?;
        let inv = scripts::session_set(&keys, &id, &encoded, Some(&old_raw));
        match with_connection("chat_update_session", |con| inv.invoke::<i64>(con))? {
            1 => return Ok(true),
            -1 => return Ok(false),
            _ => back_off(attempt),
        }
    }
    Err(ChatError::Other(format!(
        "the session of {id} changed under {UPDATE_ATTEMPTS} attempts in a row to update it; try again"
    ))
    .into())
}

/// Waits a random while before the next compare-and-set, up to 0.1 ms doubled per attempt (at
/// most 51 ms). Retrying at once let writers that collided collide again: four PHP workers
/// updating one session ten times each starved one of them through all sixteen attempts.
fn back_off(attempt: usize) {
    use std::hash::BuildHasher;
    let cap_us = 100u64 << attempt.min(9);
    // Forked PHP workers share RandomState's keys; the pid and the clock tell them apart.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let noise = std::hash::RandomState::new().hash_one((std::process::id(), now.as_nanos(), attempt));
    std::thread::sleep(std::time::Duration::from_micros(1 + noise % cap_us));
}

/// `Some((stored text or "", decoded session))` for a live connection, `None` when not live.
fn read_session(id: &str) -> Result<Option<(String, ZBox<ZendHashTable>)>> {
    let keys = ini::keys()?;
    let (client, session): (Option<String>, Option<String>) = repeatable("chat_session", |con| {
        redis::cmd("MGET").arg(keys.client(id)).arg(keys.session(id)).query(con)
    })?;
    if client.is_none() {
        return Ok(None);
    }
    let decoded = decode_session(session.as_deref())?;
    Ok(Some((session.unwrap_or_default(), decoded)))
}

fn encode_session(session: &ZendHashTable) -> Result<String> {
    let z = json::call("serialize", vec![&session.to_owned()])?;
    let text = z.zend_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| ChatError::Other("serialize() did not return a string".to_owned()))?;
    if text.len() > MAX_SESSION_BYTES {
        return Err(ChatError::Invalid(format!(
            "the session is {} bytes once serialize()d; the limit is {MAX_SESSION_BYTES}",
            text.len()
        )));
    }
    // serialize() output holds raw bytes of strings; Redis stores bytes, but the redis crate
    // argument here is text, so non-UTF-8 sessions are refused rather than mangled.
    String::from_utf8(text).map_err(|_| ChatError::Invalid("the session holds a string that is not valid UTF-8".to_owned()))
}

/// `unserialize()` without classes: a session written by anyone with Redis access must not
/// be able to instantiate objects in PHP (objects come back as `__PHP_Incomplete_Class`).
fn decode_session(stored: Option<&str>) -> Result<ZBox<ZendHashTable>> {
    let Some(stored) = stored.filter(|s| !s.is_empty()) else { return Ok(ZendHashTable::new()) };
    let mut opts = ZendHashTable::new();
    opts.insert("allowed_classes", false).map_err(internal)?;
    let z = json::call("unserialize", vec![&stored.to_owned(), &opts])?;
    Ok(z.array().map(|a| a.to_owned()).unwrap_or_else(ZendHashTable::new))
}

/// `[group]` for a given group, `[]` for null.
fn optional_group(group: Option<&StrArg<'_>>) -> Result<Vec<String>> {
    Ok(match group {
        None => Vec::new(),
        Some(g) => vec![group_name(g)?],
    })
}

/// A validated list of user ids or group names (ints accepted), duplicates dropped.
fn id_list(list: ArrayArg<'_>, what: &'static str, param: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (_, v) in list.iter() {
        let s = <StrArg<'_> as FromZval>::from_zval(v.dereference()).ok_or_else(|| {
            ChatError::Invalid(format!("{param} must hold {what}s (strings or ints), got {}", type_name(v)))
        })?;
        let s = if what == "user id" { user_id(&s)? } else { group_name(&s)? };
        if !out.contains(&s) {
            out.push(s);
        }
        if out.len() > MAX_LIST {
            return Err(ChatError::Invalid(format!("{param} holds more than {MAX_LIST} entries")));
        }
    }
    Ok(out)
}

fn client_id_of(arg: &StrArg<'_>) -> Result<String> {
    client_id_str(&arg.lossy())
}

fn client_id_value(v: &Zval, option: &str) -> Result<String> {
    let s = <StrArg<'_> as FromZval>::from_zval(v.dereference())
        .ok_or_else(|| ChatError::Invalid(format!("option '{option}' must hold client ids (strings), got {}", type_name(v))))?;
    client_id_of(&s)
}

/// A client id: `<node id>-<n>`, in the id charset.
pub fn client_id_str(id: &str) -> Result<String> {
    ids::validate("client id", id)?;
    if split_client_id(id).is_none() {
        return Err(ChatError::Invalid(format!(
            "client id {id:?} is not a connection id: expected <node id>-<number>, as in the welcome frame's conn"
        )));
    }
    Ok(id.to_owned())
}

fn internal(e: ext_php_rs::error::Error) -> ChatError {
    ChatError::Other(format!("cannot build the result array: {e}"))
}
