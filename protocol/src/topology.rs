//! What a Redis URL (`chat.redis_url`, `CHAT_REDIS_URL`) names: one Redis, or a master found
//! through Sentinel, and how many replicas must hold a write before it counts as accepted.
//!
//! Both sides parse the same URL here, so the extension and the sidecar always agree on where
//! the master is and on the acknowledgement rule:
//!
//! ```text
//! redis://[[user]:password@]host[:port][/db][?replicas=N&replicas_timeout_ms=T]
//! redis+unix:///path/to/redis.sock[?db=N&pass=…&replicas=N&replicas_timeout_ms=T]
//! redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<master name>[/db]
//!     [?sentinel_username=…&sentinel_password=…&replicas=N&replicas_timeout_ms=T]
//! ```
//!
//! The user and password of a Sentinel URL are the master's; the Sentinels' own credentials,
//! if they have any, are the `sentinel_*` parameters. `replicas` defaults to 1 for a Sentinel
//! URL (a Sentinel deployment has replicas, and a failover must not lose what PHP was told was
//! accepted) and to 0 otherwise.
//!
//! Resolution follows the Sentinel client guidelines: ask each Sentinel in turn for the master's
//! address, take the first answer, and let the caller check with `INFO replication` that the
//! address really is a master (a Sentinel may still name a demoted one during a switch). It is
//! written once, blocking, for both sides: the extension is blocking anyway, and the sidecar
//! resolves only when it (re)connects, on a blocking thread.

use std::fmt;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

/// Default port of a Sentinel.
pub const SENTINEL_PORT: u16 = 26379;

/// Default time a write waits for its replicas' confirmation (`replicas_timeout_ms`).
pub const DEFAULT_REPLICAS_TIMEOUT_MS: u64 = 500;

/// Where the master is.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// One Redis, reached at this URL (our parameters removed).
    Direct(String),
    /// A master that Sentinels know by name.
    Sentinel(SentinelSpec),
}

/// The Sentinels to ask and the master to ask for.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelSpec {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

/// How durable a write must be before it counts as accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Replicas that must confirm a write (`WAIT`); 0: the master's answer is enough.
    pub replicas: u32,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Topology {
    pub location: Location,
    pub durability: Durability,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("{0}")]
    BadUrl(String),
    #[error("no Sentinel knows a master named {master:?}: {detail}")]
    NoMaster { master: String, detail: String },
}

impl Topology {
    pub fn parse(url: &str) -> Result<Topology, TopologyError> {
        let bad = |why: &str| TopologyError::BadUrl(format!("{:?} is not a usable Redis URL: {why}", redact(url)));
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ours = Params::default();
        let mut rest: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| bad("bad percent-encoding in a parameter"))?;
            match k {
                "replicas" => ours.replicas = Some(v.parse().map_err(|_| bad("replicas must be a whole number"))?),
                "replicas_timeout_ms" => {
                    let ms: u64 = v.parse().map_err(|_| bad("replicas_timeout_ms must be a whole number"))?;
                    if ms == 0 {
                        return Err(bad("replicas_timeout_ms must be at least 1"));
                    }
                    ours.timeout_ms = Some(ms);
                }
                "sentinel_username" => ours.sentinel_username = Some(v),
                "sentinel_password" => ours.sentinel_password = Some(v),
                _ => rest.push(pair),
            }
        }
        let location = match base.split_once("://") {
            Some(("redis+sentinel", after)) => Location::Sentinel(sentinel_spec(after, &mut ours).map_err(|e| bad(&e))?),
            Some((_, _)) => {
                if ours.sentinel_username.is_some() || ours.sentinel_password.is_some() {
                    return Err(bad("sentinel_username and sentinel_password belong to redis+sentinel:// URLs"));
                }
                let direct = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
                direct.as_str().into_connection_info().map_err(|e| bad(&e.to_string()))?;
                Location::Direct(direct)
            }
            None => return Err(bad("expected redis://, redis+unix:// or redis+sentinel://")),
        };
        if matches!(location, Location::Sentinel(_)) && !rest.is_empty() {
            return Err(bad(&format!("unknown parameter {:?}", rest[0])));
        }
        let default_replicas = u32::from(matches!(location, Location::Sentinel(_)));
        Ok(Topology {
            location,
            durability: Durability {
                replicas: ours.replicas.unwrap_or(default_replicas),
                timeout: Duration::from_millis(ours.timeout_ms.unwrap_or(DEFAULT_REPLICAS_TIMEOUT_MS)),
            },
        })
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self.location, Location::Sentinel(_))
    }

    /// Where to connect now: the URL's address, or the master the Sentinels name. Blocking
    /// (at most `timeout` per Sentinel asked).
    pub fn resolve(&self, timeout: Duration) -> Result<ConnectionInfo, TopologyError> {
        match &self.location {
            Location::Direct(url) => url
                .as_str()
                .into_connection_info()
                .map_err(|e| TopologyError::BadUrl(format!("{:?}: {e}", redact(url)))),
            Location::Sentinel(spec) => spec.resolve(timeout),
        }
    }
}

impl SentinelSpec {
    fn resolve(&self, timeout: Duration) -> Result<ConnectionInfo, TopologyError> {
        let mut detail = Vec::new();
        for (host, port) in &self.sentinels {
            match self.ask(host, *port, timeout) {
                Ok(Some((mhost, mport))) => return self.master_info(mhost, mport),
                Ok(None) => detail.push(format!("{host}:{port} does not monitor it")),
                Err(e) => detail.push(format!("{host}:{port}: {}", describe(&e))),
            }
        }
        Err(TopologyError::NoMaster { master: self.master.clone(), detail: detail.join("; ") })
    }

    fn ask(&self, host: &str, port: u16, timeout: Duration) -> redis::RedisResult<Option<(String, u16)>> {
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(u) = &self.sentinel_username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.sentinel_password {
            settings = settings.set_password(p);
        }
        let info = (host, port).into_connection_info()?.set_redis_settings(settings);
        let mut con = redis::Client::open(info)?.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        let addr: Option<(String, u16)> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.master).query(&mut con)?;
        Ok(addr)
    }

    fn master_info(&self, host: String, port: u16) -> Result<ConnectionInfo, TopologyError> {
        let mut settings = RedisConnectionInfo::default().set_db(self.db);
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let addr = ConnectionAddr::Tcp(host, port);
        let info = addr.clone().into_connection_info().map_err(|e| TopologyError::BadUrl(format!("the Sentinels name the master {addr}: {e}")))?;
        Ok(info.set_redis_settings(settings))
    }
}

#[derive(Default)]
struct Params {
    replicas: Option<u32>,
    timeout_ms: Option<u64>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
}

/// `[[user]:password@]host[:port][,host[:port]…]/<master>[/db]`
fn sentinel_spec(after_scheme: &str, params: &mut Params) -> Result<SentinelSpec, String> {
    let (authority, path) = after_scheme.split_once('/').ok_or("name the master: redis+sentinel://host:26379/mymaster")?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let dec = |s: &str| percent_decode(s).ok_or("bad percent-encoding in the credentials");
            let user = Some(dec(user)?).filter(|s| !s.is_empty());
            let pass = Some(dec(pass)?).filter(|s| !s.is_empty());
            (user, pass)
        }
    };
    let sentinels = hosts.split(',').map(host_port).collect::<Result<Vec<_>, _>>()?;
    if sentinels.is_empty() {
        return Err("name at least one Sentinel".into());
    }
    let mut parts = path.split('/');
    let master = parts.next().unwrap_or_default().to_owned();
    if master.is_empty() {
        return Err("name the master: redis+sentinel://host:26379/mymaster".into());
    }
    let db = match parts.next() {
        None | Some("") => 0,
        Some(d) => d.parse().map_err(|_| format!("database {d:?} is not a number"))?,
    };
    if parts.next().is_some() {
        return Err("the path is /<master name>[/<db>]".into());
    }
    Ok(SentinelSpec {
        sentinels,
        master,
        db,
        username,
        password,
        sentinel_username: params.sentinel_username.take(),
        sentinel_password: params.sentinel_password.take(),
    })
}

fn host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an empty Sentinel address".into());
    }
    // [::1]:26379 or host:26379 or host
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(|| format!("unclosed [ in {s:?}"))?;
        (h, tail.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => SENTINEL_PORT,
        Some(p) => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `url` with any password (userinfo or `pass=`/`password=`/`sentinel_password=` parameter)
/// replaced by `***`, for logs and error messages.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.split_once("://"), base.rfind('@')) {
        (Some((scheme, after)), Some(_)) => {
            let (userinfo, rest) = after.rsplit_once('@').expect("has @");
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{rest}"),
                None => format!("{scheme}://{userinfo}@{rest}"),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let q: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if matches!(k, "pass" | "password" | "sentinel_password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

/// An error for people: OS errors without Rust's `(os error 111)` suffix.
pub fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

/// What `INFO replication` says of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub is_master: bool,
    /// The replication id: it changes when a replica is promoted and when a master restarts,
    /// i.e. whenever what this server holds may not be everything the previous master held.
    pub replid: String,
    /// Replicas connected to this master.
    pub replicas: u32,
}

impl Replication {
    pub fn parse(info: &str) -> Replication {
        let field = |name: &str| info.lines().find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':').map(str::to_owned));
        Replication {
            is_master: field("role").as_deref() == Some("master"),
            replid: field("master_replid").unwrap_or_default(),
            replicas: field("connected_slaves").and_then(|n| n.parse().ok()).unwrap_or(0),
        }
    }
}

impl fmt::Debug for Location {
    /// Without secrets: these end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Direct(url) => write!(f, "Direct({})", redact(url)),
            Location::Sentinel(s) => write!(f, "Sentinel({:?} via {:?}, db {})", s.master, s.sentinels, s.db),
        }
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Topology {
    /// For logs: the master or Sentinels, without secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Direct(url) => write!(f, "{}", redact(url))?,
            Location::Sentinel(s) => {
                let hosts: Vec<String> = s.sentinels.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                write!(f, "master {:?} via Sentinel {}", s.master, hosts.join(","))?;
            }
        }
        if self.durability.replicas > 0 {
            write!(f, " (writes confirmed by {} replica(s) within {:?})", self.durability.replicas, self.durability.timeout)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_urls_keep_their_own_parameters_and_lose_ours() {
        let t = Topology::parse("redis://:pw@h:6380/2?replicas=1&replicas_timeout_ms=250").unwrap();
        assert_eq!(t.location, Location::Direct("redis://:pw@h:6380/2".into()));
        assert_eq!(t.durability, Durability { replicas: 1, timeout: Duration::from_millis(250) });
        let t = Topology::parse("redis+unix:///tmp/r.sock?db=3").unwrap();
        assert_eq!(t.location, Location::Direct("redis+unix:///tmp/r.sock?db=3".into()));
        assert_eq!(t.durability.replicas, 0, "one Redis: no replicas unless asked");
        assert!(Topology::parse("redis://h?replicas=x").is_err());
        assert!(Topology::parse("redis://h?sentinel_password=x").is_err());
        assert!(Topology::parse("http://h").is_err());
        assert!(Topology::parse("h:6379").is_err());
    }

    #[test]
    fn sentinel_urls_name_several_sentinels_and_the_master() {
        let t = Topology::parse("redis+sentinel://u:p%40ss@10.0.0.1,10.0.0.2:26380,[::1]:5/mymaster/4?sentinel_password=s").unwrap();
        let Location::Sentinel(s) = &t.location else { panic!() };
        assert_eq!(s.sentinels, vec![("10.0.0.1".into(), 26379), ("10.0.0.2".into(), 26380), ("::1".into(), 5)]);
        assert_eq!((s.master.as_str(), s.db), ("mymaster", 4));
        assert_eq!((s.username.as_deref(), s.password.as_deref()), (Some("u"), Some("p@ss")));
        assert_eq!(s.sentinel_password.as_deref(), Some("s"));
        assert_eq!(t.durability.replicas, 1, "Sentinel: one replica confirms by default");
        assert_eq!(Topology::parse("redis+sentinel://h/m?replicas=0").unwrap().durability.replicas, 0);
        for bad in ["redis+sentinel://h", "redis+sentinel://h/", "redis+sentinel://h:x/m", "redis+sentinel://h/m/x", "redis+sentinel://h/m?zzz=1"] {
            assert!(Topology::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("redis://:hunter2@h:6379"), "redis://:***@h:6379");
        assert_eq!(redact("redis+sentinel://u:pw@a,b/m?sentinel_password=x&replicas=1"), "redis+sentinel://u:***@a,b/m?sentinel_password=***&replicas=1");
        assert_eq!(redact("redis+unix:///s?pass=x"), "redis+unix:///s?pass=***");
        let shown = format!("{}", Topology::parse("redis+sentinel://u:pw@a/m").unwrap());
        assert!(!shown.contains("pw"), "{shown}");
    }

    #[test]
    fn replication_info_is_read() {
        let r = Replication::parse("# Replication\r\nrole:master\r\nconnected_slaves:2\r\nmaster_replid:abc123\r\nmaster_replid2:0000\r\n");
        assert_eq!(r, Replication { is_master: true, replid: "abc123".into(), replicas: 2 });
        assert!(!Replication::parse("role:slave\r\nmaster_replid:x\r\n").is_master);
    }
}
