//! The per-process Redis connection: found through `chat.redis_url` (one Redis, or the master
//! Sentinel names), checked to be a master, and replaced when it may no longer be usable.
//!
//! PHP-FPM workers are long-lived processes serving one request at a time, so each keeps one
//! blocking connection open across requests: no connect per `chat_push()`. It lives in a
//! thread-local, which on NTS PHP is one per process and on ZTS PHP one per request thread, so
//! it is never shared between concurrent requests and needs no lock.
//!
//! Opening a connection resolves the master (asking the Sentinels, for a `redis+sentinel://`
//! URL) and reads `INFO replication`: the server must be a master, and its replication id goes
//! with every push (a conversation last written under another one starts a new epoch, see
//! `protocol/lua/push.lua`). The connection is replaced when
//! - the process id changed: a `pcntl_fork()`ed child must never talk over its parent's socket;
//! - `chat.redis_url` or `chat.timeout_ms` changed since it was opened;
//! - the previous command failed with anything but an ordinary Redis error reply (the stream
//!   may hold a late reply), or with one saying the server is no master right now (`READONLY`,
//!   `MASTERDOWN`, `LOADING`): the next call finds the master again;
//! - it sat idle for [`IDLE_CHECK`] and does not answer a `PING`.
//!
//! Calls that are safe to repeat ([`idempotent`]) are tried again on a fresh connection while a
//! Sentinel-managed master is being switched over, for up to `chat.failover_timeout_ms`. A push
//! is safe to repeat because its id makes it idempotent: a repeated push finds its id among the
//! conversation's latest messages and is not stored twice. Other calls ([`with_connection`])
//! are never repeated: the caller gets a `Chat\ConnectionException` and decides.

use std::cell::Cell;
use std::time::{Duration, Instant};

use chat_protocol::topology::{self, Replication, Topology};
use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError, ServerErrorKind};

use crate::errors::{ChatError, Result};
use crate::ini;

/// How long a connection may sit unused before it is checked with a `PING` ahead of the next
/// command. A worker that is busy never pays for the check; one that was idle pays one round
/// trip, which is small next to the idle time.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// The first pause between two tries during a failover; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// The open connection and what was learnt when it was opened.
pub struct Link {
    pub con: Connection,
    /// The master's replication id when this connection was opened.
    pub replid: String,
    /// The parsed `chat.redis_url`: where the master is, how many replicas confirm a write.
    pub topology: Topology,
    /// `chat.timeout_ms`.
    pub timeout: Duration,
    pid: u32,
    url: String,
    last_used: Instant,
}

impl Link {
    /// The pid is compared first: a forked child must not even `PING` over its parent's socket.
    fn reusable(&mut self, pid: u32, url: &str, timeout: Duration) -> bool {
        self.pid == pid
            && self.url == url
            && self.timeout == timeout
            && self.con.is_open()
            && (self.last_used.elapsed() < IDLE_CHECK || self.con.check_connection())
    }
}

thread_local! {
    static LINK: Cell<Option<Link>> = const { Cell::new(None) };
}

/// One try of an [`idempotent`] call.
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
}

/// Runs `op` (named in error messages, e.g. `"chat_kick"`) once on this process's connection,
/// connecting first if needed. Never repeated: use it for calls that must not run twice.
pub fn with_connection<T>(op: &str, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> Result<T> {
    let mut f = Some(f);
    run(op, false, |link, _| (f.take().expect("called once"))(&mut link.con))
}

/// Runs `op` on this process's connection; with a Sentinel-managed master, tries again on a
/// fresh connection (the master found anew) while the failure says Redis is unreachable or not
/// a master yet, until `chat.failover_timeout_ms` has passed. `f` must be safe to repeat.
pub fn idempotent<T>(op: &str, f: impl FnMut(&mut Link, &Attempt) -> redis::RedisResult<T>) -> Result<T> {
    run(op, true, f)
}

fn run<T>(op: &str, repeat: bool, mut f: impl FnMut(&mut Link, &Attempt) -> redis::RedisResult<T>) -> Result<T> {
    let url = ini::redis_url();
    let timeout = ini::timeout()?;
    let pid = std::process::id();
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut number = 0;
    loop {
        number += 1;
        let outcome = once(op, &url, timeout, pid, &mut f, &Attempt { number });
        let (err, topology) = match outcome {
            Ok(v) => return Ok(v),
            Err(failure) => failure,
        };
        // Only a switch-over is worth waiting for: with one Redis, unreachable means down.
        let budget = match (&topology, repeat) {
            (Some(t), true) if t.is_sentinel() => ini::failover_timeout()?,
            _ => Duration::ZERO,
        };
        if !matches!(err, ChatError::Connection(_)) || started.elapsed() + pause > budget {
            return Err(err);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One try; on failure, the error and (when it got that far) the parsed URL.
fn once<T>(
    op: &str,
    url: &str,
    timeout: Duration,
    pid: u32,
    f: &mut impl FnMut(&mut Link, &Attempt) -> redis::RedisResult<T>,
    attempt: &Attempt,
) -> std::result::Result<T, (ChatError, Option<Topology>)> {
    // Taken out of the cell while in use, so a failure simply leaves the cell empty. Dropping a
    // connection inherited across fork() only closes this process's copy of the descriptor.
    let reused = LINK.take().and_then(|mut l| l.reusable(pid, url, timeout).then_some(l));
    let mut link = match reused {
        Some(l) => l,
        None => connect(url, timeout, pid)?,
    };
    match f(&mut link, attempt) {
        Ok(v) => {
            link.last_used = Instant::now();
            LINK.set(Some(link));
            Ok(v)
        }
        Err(e) => {
            let topology = link.topology.clone();
            let err = command_error(&e, op, &topology.to_string(), timeout);
            if keeps_connection(&e) {
                LINK.set(Some(link));
            }
            Err((err, Some(topology)))
        }
    }
}

/// An error reply leaves the connection in step; anything else may not, and a server that says
/// it is no master (any more, or yet) must be found anew.
fn keeps_connection(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(k) => !matches!(k, ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading),
        ErrorKind::Extension => true,
        _ => false,
    }
}

fn connect(url: &str, timeout: Duration, pid: u32) -> std::result::Result<Link, (ChatError, Option<Topology>)> {
    let topology = Topology::parse(url).map_err(|e| (ChatError::Other(format!("{} = {e}", ini::REDIS_URL)), None))?;
    let shown = topology.to_string();
    let unreachable = |why: String| ChatError::Connection(format!("cannot reach Redis at {shown} ({}): {why}", ini::REDIS_URL));
    let fail = |e: ChatError| (e, Some(topology.clone()));
    let info = topology.resolve(timeout).map_err(|e| {
        fail(match e {
            topology::TopologyError::BadUrl(m) => ChatError::Other(m),
            other => unreachable(other.to_string()),
        })
    })?;
    // No `CLIENT SETINFO` at connect: it is a pipelined round trip whose replies are each read
    // with the full timeout, so a frozen Redis would hold PHP for twice chat.timeout_ms.
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let client = Client::open(info.set_redis_settings(settings)).map_err(|e| fail(ChatError::Other(format!("{shown}: {e}"))))?;
    let io = |e: RedisError| fail(unreachable(describe(&e, timeout)));
    let mut con = client.get_connection_with_timeout(timeout).map_err(io)?;
    con.set_read_timeout(Some(timeout)).map_err(io)?;
    con.set_write_timeout(Some(timeout)).map_err(io)?;
    let text: String = redis::cmd("INFO").arg("replication").query(&mut con).map_err(|e| {
        if matches!(e.kind(), ErrorKind::Server(_)) {
            fail(ChatError::Connection(format!("Redis at {shown} ({}) is not ready: {e}", ini::REDIS_URL)))
        } else {
            io(e)
        }
    })?;
    let replication = Replication::parse(&text);
    if !replication.is_master {
        let hint = if topology.is_sentinel() {
            "the Sentinels still name a replica; a failover is probably under way"
        } else {
            "point chat.redis_url at the master, or at the Sentinels with redis+sentinel://"
        };
        return Err(fail(ChatError::Connection(format!("Redis at {shown} is a replica, not the master: {hint}"))));
    }
    Ok(Link { con, replid: replication.replid, topology, timeout, pid, url: url.to_owned(), last_used: Instant::now() })
}

fn command_error(e: &RedisError, op: &str, shown: &str, timeout: Duration) -> ChatError {
    let setting = ini::REDIS_URL;
    if chat_protocol::scripts::is_backlog_full(e) {
        return ChatError::Connection(format!(
            "Redis at {shown} refused {op}: {}; nothing was stored — retry once the sidecars have written the backlog to MySQL",
            e.detail().unwrap_or("the history backlog is full")
        ));
    }
    if chat_protocol::scripts::is_not_ready(e) {
        return ChatError::Connection(format!(
            "Redis at {shown} refused {op}: it has no chat dataset marker (new, restarted empty or flushed) and no chat-sidecar has set it yet; nothing was stored — start chat-sidecar, or retry shortly"
        ));
    }
    if e.is_timeout() {
        ChatError::Connection(format!(
            "Redis at {shown} ({setting}) did not answer {op} within {} ms ({}); it may still have been carried out",
            timeout.as_millis(),
            ini::TIMEOUT_MS
        ))
    } else if e.is_io_error() || e.is_connection_dropped() {
        ChatError::Connection(format!(
            "lost the connection to Redis at {shown} ({setting}) during {op}: {}; it may still have been carried out",
            describe(e, timeout)
        ))
    } else if matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        )
    ) {
        // Redis is there but cannot take writes (loading its data after a restart, a failover in
        // progress, a master demoted to a replica): as unavailable as a refused connection, and
        // as retryable. These are refused before the script runs, so nothing was carried out.
        ChatError::Connection(format!("Redis at {shown} ({setting}) is not ready for {op}: {e}; retry shortly"))
    } else if e.kind() == ErrorKind::Parse {
        ChatError::Other(format!("the server at {shown} ({setting}) did not answer {op} in the Redis protocol; is it a Redis server?"))
    } else {
        ChatError::Other(format!("Redis at {shown} ({setting}) failed {op}: {e}"))
    }
}

/// The error text for PHP devs: timeouts in our settings' terms, OS errors without Rust's
/// `(os error 111)` suffix.
fn describe(e: &RedisError, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} ms ({})", timeout.as_millis(), ini::TIMEOUT_MS);
    }
    topology::describe(e)
}

/// [`idempotent`] for a call that only reads, or writes what it would write again the same
/// way (joining a group).
pub fn repeatable<T>(op: &str, mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>) -> Result<T> {
    idempotent(op, |link, _| f(&mut link.con))
}
