//! The per-process Redis connection.
//!
//! PHP-FPM workers are long-lived processes serving one request at a time, so each keeps one
//! blocking connection open across requests: no connect per `chat_push()`. It lives in a
//! thread-local, which on NTS PHP is one per process and on ZTS PHP one per request thread, so
//! it is never shared between concurrent requests and needs no lock.
//!
//! The connection is replaced when
//! - the process id changed: a `pcntl_fork()`ed child must never talk over its parent's socket
//!   (replies would go to whichever process reads first);
//! - `chat.redis_url` or `chat.timeout_ms` changed since it was opened;
//! - the previous command failed with anything but a Redis error reply, since the stream may
//!   then hold a late reply or be half-closed;
//! - it sat idle for [`IDLE_CHECK`] and does not answer a `PING`. Redis's `timeout` setting,
//!   a restart or a NAT box may have closed it meanwhile; finding that out from the failed
//!   `chat_push` itself would be too late, as a push that fails mid-flight cannot be retried.
//!
//! Nothing is retried: a `chat_push` that timed out may have been applied, and retrying could
//! deliver the message twice. The caller gets a `Chat\ConnectionException` and decides.

use std::cell::Cell;
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike, ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind};

use crate::errors::{ChatError, Result};
use crate::ini;

/// How long a connection may sit unused before it is checked with a `PING` ahead of the next
/// command. A worker that is busy never pays for the check; one that was idle pays one round
/// trip, which is small next to the idle time.
const IDLE_CHECK: Duration = Duration::from_secs(5);

struct Conn {
    con: Connection,
    pid: u32,
    url: String,
    timeout: Duration,
    last_used: Instant,
}

impl Conn {
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
    static CONN: Cell<Option<Conn>> = const { Cell::new(None) };
}

/// Runs `op` (named in error messages, e.g. `"chat_push"`) on this process's connection,
/// connecting first if needed.
pub fn with_connection<T>(
    op: &str,
    f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
) -> Result<T> {
    let url = ini::redis_url();
    let timeout = ini::timeout()?;
    let pid = std::process::id();

    // Taken out of the cell while in use, so a failure simply leaves the cell empty. Dropping a
    // connection inherited across fork() only closes this process's copy of the descriptor.
    let reused = CONN
        .take()
        .and_then(|mut c| c.reusable(pid, &url, timeout).then_some(c));
    let mut conn = match reused {
        Some(c) => c,
        None => connect(&url, timeout, pid)?,
    };
    match f(&mut conn.con) {
        Ok(v) => {
            conn.last_used = Instant::now();
            CONN.set(Some(conn));
            Ok(v)
        }
        Err(e) => {
            // An error reply leaves the connection in step; anything else may not.
            if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
                CONN.set(Some(conn));
            }
            Err(command_error(&e, op, &url, timeout))
        }
    }
}

fn connect(url: &str, timeout: Duration, pid: u32) -> Result<Conn> {
    let shown = ini::redact_url(url);
    let bad_url = |e: RedisError| {
        ChatError::Other(format!(
            "{} = {shown:?} is not a usable Redis URL: {e}",
            ini::REDIS_URL
        ))
    };
    let info = url.into_connection_info().map_err(bad_url)?;
    // No `CLIENT SETINFO` at connect: it is a pipelined round trip whose replies are each read
    // with the full timeout, so a frozen Redis would hold PHP for twice chat.timeout_ms.
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let client = Client::open(info.set_redis_settings(settings)).map_err(bad_url)?;
    let unreachable = |e: RedisError| {
        ChatError::Connection(format!(
            "cannot reach Redis at {shown} ({}): {}",
            ini::REDIS_URL,
            describe(&e, timeout)
        ))
    };
    let con = client
        .get_connection_with_timeout(timeout)
        .map_err(unreachable)?;
    con.set_read_timeout(Some(timeout)).map_err(unreachable)?;
    con.set_write_timeout(Some(timeout)).map_err(unreachable)?;
    Ok(Conn {
        con,
        pid,
        url: url.to_owned(),
        timeout,
        last_used: Instant::now(),
    })
}

fn command_error(e: &RedisError, op: &str, url: &str, timeout: Duration) -> ChatError {
    let shown = ini::redact_url(url);
    let setting = ini::REDIS_URL;
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
        // Redis is there but cannot take writes yet (loading its data after a restart, a
        // failover in progress): as unavailable as a refused connection, and as retryable.
        // These are refused before the script runs, so nothing was carried out.
        ChatError::Connection(format!(
            "Redis at {shown} ({setting}) is not ready for {op}: {e}; retry shortly"
        ))
    } else if e.kind() == ErrorKind::Parse {
        ChatError::Other(format!(
            "the server at {shown} ({setting}) did not answer {op} in the Redis protocol; is it a Redis server?"
        ))
    } else {
        ChatError::Other(format!("Redis at {shown} ({setting}) failed {op}: {e}"))
    }
}

/// The error text for PHP devs: timeouts in our settings' terms, OS errors without Rust's
/// `(os error 111)` suffix.
fn describe(e: &RedisError, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} ms ({})",
            timeout.as_millis(),
            ini::TIMEOUT_MS
        );
    }
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}
