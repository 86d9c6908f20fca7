//! The node's shared state, built once at start and handed to every connection.

use std::sync::Arc;
use std::time::Duration;

use chat_protocol::Keys;
use chat_protocol::topology::Topology;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acks::Acks;
use crate::config::Settings;
use crate::engine::health::{self, Health};
use crate::engine::Redis;
use crate::conn_id::ConnIds;
use crate::hub::{ConnId, Hub};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::ratelimit::PerUser;
use crate::transport::poll::Polls;
use crate::store::persister::Persister;
use crate::store::History;
use crate::webhook::Webhook;

pub struct App {
    pub settings: Settings,
    pub keys: Keys,
    /// What CHAT_REDIS_URL names: one Redis or a Sentinel-managed master, and how many
    /// replicas confirm a write.
    pub topology: Arc<Topology>,
    /// Multiplexed connection for commands; finds the master again when it fails.
    pub redis: Redis,
    /// A connection of its own for the writes that must be confirmed by replicas (client
    /// sends, acknowledgements, read state): `WAIT` holds up the connection it is sent on.
    pub confirmed: Redis,
    /// Whether Redis answers (readiness; connections are closed with 1013 while it does not).
    pub health: Arc<Health>,
    pub hub: Arc<Hub>,
    pub presence: Arc<Presence>,
    /// Delivery acknowledgements, written node-wide in batches.
    pub acks: Arc<Acks>,
    pub metrics: Arc<Metrics>,
    /// MySQL history, when `CHAT_MYSQL_URL` is set.
    pub history: Option<History>,
    pub origins: Vec<String>,
    pub ws_config: WebSocketConfig,
    /// Cancelled when the node shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them to deregister.
    pub tasks: TaskTracker,
    /// Long-poll sessions waiting for their client's next poll.
    pub polls: Arc<Polls>,
    /// Rate limits of `POST /send`, per user.
    pub send_limits: PerUser,
    /// Unguessable connection ids (`conn_id`).
    conn_ids: ConnIds,
}

impl App {
    /// Connects to Redis (retrying until it answers or shutdown) and starts background tasks.
    pub async fn start(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Arc<App>> {
        let topology = Arc::new(Topology::parse(&settings.redis_url)?);
        let redis = Redis::new(topology.clone());
        let mut delay = Duration::from_millis(200);
        loop {
            match redis::cmd("PING").query_async::<String>(&mut redis.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(redis = %topology, error = %e, "waiting for Redis");
                    tokio::select! {
                        _ = shutdown.cancelled() => anyhow::bail!("shut down while waiting for Redis"),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        let metrics = Arc::new(Metrics::default());
        let keys = Keys::new(settings.namespace.clone());
        let history = match settings.mysql_url.as_str() {
            "" => {
                tracing::warn!("CHAT_MYSQL_URL is not set: history lives only in Redis (last {} messages per conversation)", settings.retention);
                None
            }
            url => {
                let h = History::open(url).await?;
                tracing::info!(mysql = %settings.mysql_url_for_logs(), "history in MySQL; schema up to date");
                Some(h)
            }
        };
        let webhook = match settings.webhook_url.as_str() {
            "" => None,
            url => Some(Webhook::new(url.to_owned(), settings.webhook_secret.clone(), settings.webhook_retries, metrics.clone())?),
        };
        let presence = Presence::new(
            keys.clone(),
            settings.presence_ttl_ms,
            settings.presence_debounce_ms,
            settings.group_presence_limit,
            redis.clone(),
            metrics.clone(),
            webhook.clone(),
        );
        // Nodes that persist or notify keep the persistence log on; its bound refuses pushes
        // rather than trimming what MySQL has not stored.
        let log_bound = (history.is_some() || webhook.is_some()).then_some(settings.log_max_backlog);
        crate::store::dataset::declare(&redis, &keys, history.as_ref(), log_bound).await?;
        crate::store::dataset::watch(redis.clone(), keys.clone(), log_bound, shutdown.clone());
        if let Some(log_bound) = log_bound {
            Persister {
                log_bound,
                durability: topology.durability,
                keys: keys.clone(),
                redis: redis.dedicated(),
                history: history.clone(),
                webhook,
                consumer: settings.node_id.clone(),
                batch: settings.persist_batch,
                claim_idle_ms: settings.persist_claim_idle_ms,
                metrics: metrics.clone(),
            }
            .start(shutdown.clone())
            .await?;
        }
        let hub = Hub::start(topology.clone(), metrics.clone(), settings.node_id.clone(), shutdown.clone());
        let unreachable = hub.clone();
        let health = health::watch(redis.clone(), shutdown.clone(), move || unreachable.backend_down());
        presence.spawn_refresher(shutdown.clone());
        let confirmed = redis.dedicated();
        let acks = Acks::start(keys.clone(), confirmed.clone(), topology.durability, metrics.clone(), Duration::from_millis(settings.ack_flush_ms));
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(settings.read_buffer_bytes)
            .write_buffer_size(settings.write_buffer_bytes)
            .max_write_buffer_size(settings.write_buffer_bytes + 2 * settings.max_frame_bytes.max(64 * 1024))
            .max_message_size(Some(settings.max_frame_bytes))
            .max_frame_size(Some(settings.max_frame_bytes));
        let app = Arc::new(App {
            origins: settings.origins(),
            keys,
            topology,
            redis,
            confirmed,
            health,
            hub,
            presence,
            acks,
            metrics,
            history,
            ws_config,
            shutdown,
            tasks: TaskTracker::new(),
            polls: Arc::new(Polls::default()),
            send_limits: PerUser::new(settings.rate_limit, settings.rate_burst),
            conn_ids: ConnIds::new(),
            settings,
        });
        crate::session::spawn_heartbeats(&app);
        Ok(app)
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.conn_ids.next()
    }

    /// Whether a browser page from `origin` may connect.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            // Non-browser clients send no Origin; the token is their credential.
            None => true,
            Some(o) => self.origins.is_empty() || self.origins.iter().any(|a| a == o.trim_end_matches('/')),
        }
    }
}
