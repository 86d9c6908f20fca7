//! Settings: built-in defaults, overridden by a TOML file, then `CHAT_*` environment
//! variables, then command-line flags (the last one given wins).
//!
//! Each setting is declared once in [`settings!`], which generates the clap flag, the
//! environment variable, the TOML key, the default and the `--help` text together, so the
//! three sources cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use serde::Deserialize;

macro_rules! settings {
    ($( #[doc = $doc:literal] $name:ident : $ty:ty = $default:literal, env $env:literal; )*) => {
        /// Values given on the command line or in the environment; `None` = not given.
        #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Overrides {
            $(
                #[arg(long, env = $env, help = concat!($doc, " [default: ", $default, "]"))]
                pub $name: Option<$ty>,
            )*
        }

        /// The effective settings of this node.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( #[doc = $doc] pub $name: $ty, )*
        }

        impl Overrides {
            /// Fills what `self` lacks from `lower`.
            fn or(self, lower: Overrides) -> Overrides {
                Overrides { $( $name: self.$name.or(lower.$name), )* }
            }

            fn resolve(self) -> Settings {
                Settings {
                    $( $name: self.$name.unwrap_or_else(|| $default.parse().expect("built-in default parses")), )*
                }
            }
        }
    };
}

settings! {
    /// Address to listen on for WebSocket and HTTP; port 0 picks a free port.
    listen: SocketAddr = "127.0.0.1:9501", env "CHAT_LISTEN";
    /// Redis URL, the same as the extension's chat.redis_url: redis://[:password@]host:port[/db] or redis+sentinel://[:password@]sentinel1:26379,sentinel2:26379/<master name>[/db]; add ?replicas=N&replicas_timeout_ms=T to require N replicas to confirm each write (default 1 with Sentinel, 0 otherwise).
    redis_url: String = "redis://127.0.0.1:6379", env "CHAT_REDIS_URL";
    /// Key namespace in Redis; must equal the extension's chat.namespace.
    namespace: String = "chat", env "CHAT_NAMESPACE";
    /// Shared secret for HS256 connect tokens; must equal the extension's chat.jwt_secret.
    jwt_secret: String = "", env "CHAT_JWT_SECRET";
    /// Clock skew tolerated when checking token expiry, in seconds.
    token_leeway_secs: u64 = "30", env "CHAT_TOKEN_LEEWAY_SECS";
    /// This node's id in presence records; empty = a random id per start.
    node_id: String = "", env "CHAT_NODE_ID";
    /// Browser origins allowed to connect, comma-separated (e.g. https://shop.example); empty = any.
    allowed_origins: String = "", env "CHAT_ALLOWED_ORIGINS";
    /// Time a client has to send a complete HTTP request line and headers, from the connection's start or the first byte of a later request, in ms; then the socket is closed.
    header_timeout_ms: u64 = "10000", env "CHAT_HEADER_TIMEOUT_MS";
    /// A kept-alive HTTP connection with no request in flight is closed after this, in ms (held long-polls and SSE streams are in flight).
    idle_timeout_ms: u64 = "60000", env "CHAT_IDLE_TIMEOUT_MS";
    /// Largest HTTP request line and headers, in bytes; larger ones get 431 and the connection is closed. Tokens (up to 8 KiB) and resume cursors travel in the URL.
    max_header_bytes: usize = "16384", env "CHAT_MAX_HEADER_BYTES";
    /// Connections that have not authenticated yet (sockets without a complete request, WebSockets waiting for their auth frame); one more closes the oldest of them.
    max_unauthenticated: usize = "4096", env "CHAT_MAX_UNAUTHENTICATED";
    /// Largest frame or message a client may send, in bytes; larger ones close with 1009.
    max_frame_bytes: usize = "65536", env "CHAT_MAX_FRAME_BYTES";
    /// Frames a client may send per second, sustained.
    rate_limit: u32 = "20", env "CHAT_RATE_LIMIT";
    /// Frames a client may send in a burst above the sustained rate.
    rate_burst: u32 = "40", env "CHAT_RATE_BURST";
    /// Frames queued for one connection before it counts as too slow and is closed (4009).
    outbound_queue: usize = "1024", env "CHAT_OUTBOUND_QUEUE";
    /// Bytes of frames queued for one connection before it counts as too slow and is closed (4009), whichever of this and CHAT_OUTBOUND_QUEUE is passed first.
    outbound_queue_bytes: usize = "1048576", env "CHAT_OUTBOUND_QUEUE_BYTES";
    /// A write to a client that takes longer than this closes the connection (4009), in ms.
    write_timeout_ms: u64 = "10000", env "CHAT_WRITE_TIMEOUT_MS";
    /// Per-connection WebSocket read buffer, bytes: allocated for every connection, so small keeps idle ones cheap; larger frames take more reads.
    read_buffer_bytes: usize = "512", env "CHAT_READ_BUFFER_BYTES";
    /// Per-connection WebSocket write buffer, bytes; frames already queued are batched up to it.
    write_buffer_bytes: usize = "4096", env "CHAT_WRITE_BUFFER_BYTES";
    /// How long a long-poll session waits for the client's next poll before it ends, in ms.
    poll_grace_ms: u64 = "15000", env "CHAT_POLL_GRACE_MS";
    /// Time a client has to send its token when it is not in the URL or a header, in ms.
    auth_timeout_ms: u64 = "10000", env "CHAT_AUTH_TIMEOUT_MS";
    /// Accept WebSocket and SSE connections without a token (GatewayWorker's flow): they get a welcome with their client id and no user until the app binds them (chat_bind / Gateway::bindUid).
    anonymous_connect: bool = "false", env "CHAT_ANONYMOUS_CONNECT";
    /// How long an anonymous connection may stay unbound before it is closed (4003), in ms; 0 = no limit (the heartbeat still applies; for apps whose guests stay connected without a user).
    anonymous_timeout_ms: u64 = "60000", env "CHAT_ANONYMOUS_TIMEOUT_MS";
    /// Interval of server pings, in ms; a client silent for 2.5 intervals is closed (4010).
    heartbeat_ms: u64 = "25000", env "CHAT_HEARTBEAT_MS";
    /// Lifetime of a presence entry, in ms; the node refreshes it every third of that.
    presence_ttl_ms: u64 = "30000", env "CHAT_PRESENCE_TTL_MS";
    /// How long a user must stay without connections before being announced offline, in ms.
    presence_debounce_ms: u64 = "5000", env "CHAT_PRESENCE_DEBOUNCE_MS";
    /// Delivery acknowledgements (where a device connecting without cursors starts) are gathered for this long, in ms, then written in one pass: one Redis call per group and per inbox that moved. Longer = fewer Redis calls for busy users; a node that crashes loses at most this much (those devices get the messages again, nothing is lost).
    ack_flush_ms: u64 = "1000", env "CHAT_ACK_FLUSH_MS";
    /// Presence frames (member online/offline) go to a group's members only while it has at most this many online members: each one costs a frame per online member, so big rooms would spend N²/2 frames coming online; 0 = never. chat_online_users($group) always answers.
    group_presence_limit: u64 = "500", env "CHAT_GROUP_PRESENCE_LIMIT";
    /// Messages fetched from a Redis stream per round trip when filling a gap.
    replay_batch: usize = "500", env "CHAT_REPLAY_BATCH";
    /// Messages a conversation's Redis stream keeps for client sends; equals chat.retention.
    retention: u64 = "10000", env "CHAT_RETENTION";
    /// Whether clients may send one-to-one messages with `send` frames.
    client_send: bool = "true", env "CHAT_CLIENT_SEND";
    /// MySQL/MariaDB URL (mysql://user:pass@host:3306/db) for history; empty = Redis retention only.
    mysql_url: String = "", env "CHAT_MYSQL_URL";
    /// Most messages the persistence log may hold that are not in MySQL yet (MySQL unreachable); beyond it pushes are refused with an error (never trimmed into a hole in history).
    log_max_backlog: u64 = "1000000", env "CHAT_LOG_MAX_BACKLOG";
    /// Log entries written to MySQL per batch.
    persist_batch: usize = "500", env "CHAT_PERSIST_BATCH";
    /// Idle time after which another node's pending log entries are taken over, in ms.
    persist_claim_idle_ms: u64 = "30000", env "CHAT_PERSIST_CLAIM_IDLE_MS";
    /// URL that receives signed webhooks (message.offline); empty = none.
    webhook_url: String = "", env "CHAT_WEBHOOK_URL";
    /// HMAC-SHA256 key for the X-Chat-Signature header of webhooks.
    webhook_secret: String = "", env "CHAT_WEBHOOK_SECRET";
    /// Retries of a failed webhook (exponential backoff from 0.5 s, at most 60 s apart).
    webhook_retries: u32 = "8", env "CHAT_WEBHOOK_RETRIES";
}

/// chat-sidecar: holds the live WebSocket connections of a PHP app's users and delivers what
/// PHP pushes through Redis.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// TOML file with any of the settings below (keys as the flags, with _ for -).
    #[arg(long, env = "CHAT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

impl Settings {
    /// Reads flags, environment and the optional TOML file, and checks the result.
    pub fn load() -> anyhow::Result<Settings> {
        let cli = Cli::parse();
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Overrides::default(),
        };
        let mut settings = cli.overrides.or(file).resolve();
        if settings.node_id.is_empty() {
            settings.node_id = format!("n{}", &ulid::Ulid::new().to_string().to_lowercase()[16..]);
        }
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.jwt_secret.is_empty() {
            bail!("no JWT secret: set CHAT_JWT_SECRET (or --jwt-secret) to the value of chat.jwt_secret in php.ini");
        }
        chat_protocol::ids::validate("namespace", &self.namespace)
            .context("CHAT_NAMESPACE")?;
        chat_protocol::ids::validate("node id", &self.node_id).context("CHAT_NODE_ID")?;
        if self.max_frame_bytes < 1024 {
            bail!("CHAT_MAX_FRAME_BYTES must be at least 1024");
        }
        if !(1024..=1 << 20).contains(&self.max_header_bytes) {
            bail!("CHAT_MAX_HEADER_BYTES must be between 1024 and 1048576");
        }
        if self.header_timeout_ms == 0 || self.idle_timeout_ms == 0 || self.max_unauthenticated == 0 {
            bail!("CHAT_HEADER_TIMEOUT_MS, CHAT_IDLE_TIMEOUT_MS and CHAT_MAX_UNAUTHENTICATED must be positive");
        }
        if self.rate_limit == 0 || self.outbound_queue == 0 || self.outbound_queue_bytes == 0 || self.presence_ttl_ms < 3000 {
            bail!("CHAT_RATE_LIMIT, CHAT_OUTBOUND_QUEUE and CHAT_OUTBOUND_QUEUE_BYTES must be positive, CHAT_PRESENCE_TTL_MS at least 3000");
        }
        chat_protocol::topology::Topology::parse(&self.redis_url).context("CHAT_REDIS_URL")?;
        Ok(())
    }

    /// The origin allow-list; empty means any origin.
    pub fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// The Redis URL with any password replaced, for logs.
    pub fn redis_url_for_logs(&self) -> String {
        chat_protocol::topology::redact(&self.redis_url)
    }

    /// The MySQL URL with any password replaced, for logs.
    pub fn mysql_url_for_logs(&self) -> String {
        mask_password(&self.mysql_url)
    }
}

fn mask_password(url: &str) -> String {
    {
        match url.split_once('@') {
            Some((creds, host)) => match creds.rsplit_once(':') {
                Some((scheme_user, _)) if scheme_user.contains("//") => format!("{scheme_user}:***@{host}"),
                _ => format!("***@{host}"),
            },
            None => url.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sources_win_and_defaults_fill_the_rest() {
        let file: Overrides = toml::from_str("namespace = \"fromfile\"\nrate_limit = 5\n").unwrap();
        let cli = Overrides { rate_limit: Some(7), ..Default::default() };
        let s = cli.or(file).resolve();
        assert_eq!(s.rate_limit, 7);
        assert_eq!(s.namespace, "fromfile");
        assert_eq!(s.listen.port(), 9501);
        assert_eq!(s.outbound_queue, 1024);
        assert_eq!(s.anonymous_timeout_ms, 60_000, "unbound anonymous connections do not stay for ever by default");
        assert_eq!((s.header_timeout_ms, s.idle_timeout_ms, s.max_header_bytes, s.max_unauthenticated), (10_000, 60_000, 16_384, 4096));
        assert_eq!(s.outbound_queue_bytes, 1 << 20);
    }

    #[test]
    fn unknown_toml_keys_are_errors() {
        assert!(toml::from_str::<Overrides>("nmespace = \"x\"").is_err());
    }

    #[test]
    fn redis_password_is_masked() {
        let s = Overrides { redis_url: Some("redis://:hunter2@h:6379".into()), ..Default::default() }.resolve();
        assert_eq!(s.redis_url_for_logs(), "redis://:***@h:6379");
        assert_eq!(mask_password("mysql://chat:pw@db:3306/chat"), "mysql://chat:***@db:3306/chat");
    }
}
