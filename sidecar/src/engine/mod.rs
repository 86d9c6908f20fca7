//! Redis commands for the node, on one Redis or on the master that Sentinel names.
//!
//! [`Redis`] is the command handle everyone else uses (presence, acknowledgements, stream
//! reads, the persister, client sends): a multiplexed connection that is opened on first use,
//! found anew whenever it fails in a way that says the server is gone or no longer the master
//! (a connection error, `READONLY`, `MASTERDOWN`, `LOADING`), and checked to be a master when
//! opened. Opening it reads `INFO replication`, so the handle knows the master's replication id,
//! which pushes carry (a conversation last written under another one starts a new epoch, see
//! `protocol/lua/push.lua`).
//!
//! While Redis cannot be reached, calls fail at once for a short while after each failed
//! connect ([`RETRY_CONNECT_AFTER`]) instead of each waiting for a connect timeout: a node whose
//! Redis is down answers in milliseconds (1013 for a new connection, 503 on `/readyz`) rather
//! than queueing thousands of connect attempts.
//!
//! The pub/sub link (`hub/link.rs`) has its own connection and asks [`resolve`] for the address
//! each time it connects. [`health`] watches Redis and tells the node when it goes and comes back.

pub mod health;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_protocol::topology::{Replication, Topology};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value};

/// After a failed connect, calls fail at once for this long before the next connect is tried.
pub const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(250);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the master is now (asking the Sentinels if the URL names them). Blocking work, done on
/// a blocking thread.
pub async fn resolve(topology: &Arc<Topology>) -> RedisResult<ConnectionInfo> {
    let t = topology.clone();
    tokio::task::spawn_blocking(move || t.resolve(CONNECT_TIMEOUT))
        .await
        .map_err(|e| RedisError::from((ErrorKind::Client, "resolving the master failed", e.to_string())))?
        .map_err(|e| RedisError::from((ErrorKind::Io, "cannot find the Redis master", e.to_string())))
}

/// A connection that is open, with what was learnt when it was opened.
#[derive(Clone)]
struct Current {
    conn: MultiplexedConnection,
    replid: Arc<str>,
    generation: u64,
}

struct Inner {
    topology: Arc<Topology>,
    current: Mutex<Option<Current>>,
    /// Only one task connects at a time; the others wait for its result.
    connecting: tokio::sync::Mutex<()>,
    /// When the last connect failed, and why.
    failed: Mutex<Option<(Instant, RedisError)>>,
    generation: AtomicU64,
    db: i64,
}

/// A command handle: cheap to clone, all clones share one connection.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl Redis {
    /// A handle with a connection of its own (opened on first use).
    pub fn new(topology: Arc<Topology>) -> Redis {
        let db = match &topology.location {
            chat_protocol::topology::Location::Sentinel(s) => s.db,
            chat_protocol::topology::Location::Direct(_) => 0,
        };
        Redis {
            inner: Arc::new(Inner {
                topology,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                failed: Mutex::new(None),
                generation: AtomicU64::new(0),
                db,
            }),
        }
    }

    /// Another handle on the same Redis with a connection of its own: for blocking commands
    /// (XREADGROUP BLOCK) and for writes followed by `WAIT`, which would hold up every other
    /// command on a shared connection.
    pub fn dedicated(&self) -> Redis {
        Redis::new(self.inner.topology.clone())
    }

    /// The connection, opened if needed, pinned: commands on it go to the server whose
    /// replication id it carries (for pushes, which pass that id on).
    pub async fn pin(&self) -> RedisResult<Pinned> {
        let current = self.current().await?;
        Ok(Pinned { redis: self.clone(), current })
    }

    async fn current(&self) -> RedisResult<Current> {
        if let Some(c) = self.inner.current.lock().unwrap().clone() {
            return Ok(c);
        }
        let _one = self.inner.connecting.lock().await;
        if let Some(c) = self.inner.current.lock().unwrap().clone() {
            return Ok(c);
        }
        if let Some((at, e)) = &*self.inner.failed.lock().unwrap() {
            if at.elapsed() < RETRY_CONNECT_AFTER {
                return Err(e.clone());
            }
        }
        match self.connect().await {
            Ok(c) => {
                *self.inner.failed.lock().unwrap() = None;
                *self.inner.current.lock().unwrap() = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                *self.inner.failed.lock().unwrap() = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    async fn connect(&self) -> RedisResult<Current> {
        let info = resolve(&self.inner.topology).await?;
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        let text: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await?;
        let replication = Replication::parse(&text);
        if !replication.is_master {
            return Err(RedisError::from((
                ErrorKind::Server(ServerErrorKind::ReadOnly),
                "not the master",
                format!("{} answers as a replica (a failover may be under way)", self.inner.topology),
            )));
        }
        let generation = self.inner.generation.fetch_add(1, Relaxed) + 1;
        tracing::info!(redis = %self.inner.topology, replid = %replication.replid, replicas = replication.replicas, "connected to the Redis master");
        Ok(Current { conn, replid: Arc::from(replication.replid), generation })
    }

    /// After a failed command: a connection that may be broken, or a server that is no master,
    /// is dropped, so the next command finds the master again.
    fn failed(&self, e: &RedisError, generation: u64) {
        if drops_connection(e) {
            let mut current = self.inner.current.lock().unwrap();
            if current.as_ref().is_some_and(|c| c.generation == generation) {
                tracing::warn!(error = %e, "Redis connection dropped; the next command reconnects");
                *current = None;
            }
        }
    }
}

/// Whether an error means the connection (or the server behind it) can no longer be used.
pub fn drops_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading))
}

/// A handle tied to one open connection (see [`Redis::pin`]).
pub struct Pinned {
    redis: Redis,
    current: Current,
}

impl Pinned {
    /// The replication id of the server this connection talks to.
    pub fn replid(&self) -> &str {
        &self.current.replid
    }
}

impl ConnectionLike for Pinned {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = self.current.conn.req_packed_command(cmd).await;
            if let Err(e) = &r {
                self.redis.failed(e, self.current.generation);
            }
            r
        })
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self.current.conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &r {
                self.redis.failed(e, self.current.generation);
            }
            r
        })
    }

    fn get_db(&self) -> i64 {
        self.redis.inner.db
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut pinned = self.pin().await?;
            pinned.req_packed_command(cmd).await
        })
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut pinned = self.pin().await?;
            pinned.req_packed_commands(pipeline, offset, count).await
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.db
    }
}
