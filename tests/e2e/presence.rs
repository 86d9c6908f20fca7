//! Presence as PHP sees it: chat_is_online, chat_online_count, chat_user_devices, chat_kick.

use chat_e2e::{eventually, Client, Php, Redis, Sidecar};
use chat_protocol::wire::close;

#[tokio::test]
async fn is_online_flips_on_connect_and_after_disconnect() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    assert!(!php.is_online("alice").await);
    assert_eq!(php.json("chat_online_count()").await, 0);

    let (alice, _) = Client::login(&sidecar, &php, "alice").await;
    assert!(php.is_online("alice").await, "online once the welcome frame arrived");
    assert_eq!(php.json("chat_online_count()").await, 1);

    // The node removes presence before answering the close handshake.
    alice.close().await;
    assert!(!php.is_online("alice").await);
    assert_eq!(php.json("chat_online_count()").await, 0);
}

#[tokio::test]
async fn dropped_tcp_connection_goes_offline() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (alice, _) = Client::login(&sidecar, &php, "alice").await;
    drop(alice); // no close handshake: the socket just goes away
    eventually("alice offline after her socket vanished", async || (!php.is_online("alice").await).then_some(())).await;
}

#[tokio::test]
async fn user_devices_lists_each_live_connection() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let token = php.token("bob").await;
    let mut phone = Client::connect(&sidecar.ws_url(&format!("token={token}&device=phone"))).await;
    let w1 = phone.recv().await;
    let (_laptop, w2) = Client::login(&sidecar, &php, "bob").await;

    let devices = php.json(r#"chat_user_devices("bob")"#).await;
    let list = devices.as_array().expect("a list");
    assert_eq!(list.len(), 2, "{devices}");
    let by_id = |id: &serde_json::Value| list.iter().find(|d| &d["id"] == id).unwrap_or_else(|| panic!("{id} missing in {devices}")).clone();
    let d1 = by_id(&w1["conn"]);
    assert_eq!(d1["device"], "phone");
    assert_eq!(d1["node"], w1["node"]);
    assert_eq!(d1["transport"], "websocket");
    assert!(d1["connected_at"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(by_id(&w2["conn"])["device"], "unknown");
    assert_eq!(php.json(r#"chat_user_devices("nobody")"#).await, serde_json::json!([]));
}

#[tokio::test]
async fn kick_closes_every_connection_of_the_user_only() {
    let redis = Redis::start();
    let one = Sidecar::start(&redis);
    let two = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut a, _) = Client::login(&one, &php, "carol").await;
    let (mut b, _) = Client::login(&two, &php, "carol").await;
    let (mut other, _) = Client::login(&one, &php, "dave").await;

    assert_eq!(php.json(r#"chat_kick("carol", "account suspended")"#).await, 2);
    for c in [&mut a, &mut b] {
        let (code, reason) = c.expect_close().await;
        assert_eq!(code, close::KICKED);
        assert_eq!(reason, "account suspended");
    }
    assert!(!php.is_online("carol").await);
    assert_eq!(php.json(r#"chat_kick("carol")"#).await, 0);

    // dave did not notice.
    let id = php.push("dave", r#"{"still":"here"}"#, None).await;
    assert_eq!(other.recv_message().await["id"], id.as_str());
}

#[tokio::test]
async fn a_crashed_nodes_users_go_offline_when_presence_expires() {
    let redis = Redis::start();
    let mut node = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_TTL_MS", "3000")]);
    let php = Php::new(&redis);
    let (_c, _) = Client::login(&node, &php, "erin").await;
    assert!(php.is_online("erin").await);
    node.kill9();
    eventually("erin's presence to expire after kill -9", async || (!php.is_online("erin").await).then_some(())).await;
    assert_eq!(php.json("chat_online_count()").await, 0);
}

#[tokio::test]
async fn presence_is_refreshed_while_connected() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_TTL_MS", "3000")]);
    let php = Php::new(&redis);
    let (_c, _) = Client::login(&sidecar, &php, "frank").await;
    let expiry = || conn_expiry(&redis, "frank");
    let first = expiry().expect("registered");
    // Past the first expiry on Redis's clock, the entry must have been pushed forward.
    past_on_redis_clock(&redis, first + 500).await;
    assert!(expiry().unwrap() > first);
    assert!(php.is_online("frank").await);
}

#[tokio::test]
async fn presence_refresh_survives_redis_losing_its_scripts() {
    // The refresh is a pipeline of EVALSHA calls; after a Redis restart or SCRIPT FLUSH they
    // fail with NOSCRIPT, and the node must load the script again rather than let every
    // connection's presence expire.
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_TTL_MS", "3000")]);
    let php = Php::new(&redis);
    let (_c, _) = Client::login(&sidecar, &php, "gwen").await;
    let expiry = || conn_expiry(&redis, "gwen");
    let first = expiry().expect("registered");
    redis.cmd(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    past_on_redis_clock(&redis, first + 500).await;
    assert!(expiry().unwrap() > first, "refreshed although Redis had forgotten the script");
    assert!(php.is_online("gwen").await);
}

/// When the user's earliest connection entry expires (ms on Redis's clock).
fn conn_expiry(redis: &Redis, uid: &str) -> Option<u64> {
    let out = redis.cmd(&["ZRANGE", &format!("chat:{{u:{uid}}}:conns"), "0", "0", "WITHSCORES"])?;
    Some(out.lines().nth(1)?.parse::<f64>().ok()? as u64)
}

/// Waits until Redis's clock is past `ms`.
async fn past_on_redis_clock(redis: &Redis, ms: u64) {
    eventually("Redis's clock to pass the first expiry", async || {
        let now_ms: u64 = redis.cmd(&["TIME"])?.lines().next()?.parse::<u64>().ok()? * 1000;
        (now_ms > ms).then_some(())
    })
    .await;
}
