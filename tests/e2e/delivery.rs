//! chat_push() from PHP reaches connected WebSocket clients: once, in order, on every device.

use chat_e2e::{Client, Php, Redis, Sidecar};

#[tokio::test]
async fn pushed_message_reaches_a_connected_client() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut alice, welcome) = Client::login(&sidecar, &php, "alice").await;
    assert_eq!(welcome["cursors"]["u:alice"], 0);

    let id = php.push("alice", r#"{"text":"hi","n":[]}"#, None).await;
    assert_eq!(id.len(), 26, "message id should be a ULID, got {id:?}");

    let m = alice.recv_message().await;
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["conv"], "u:alice");
    assert_eq!(m["seq"], 1);
    assert_eq!(m["from"], serde_json::Value::Null);
    assert_eq!(m["to"], "alice");
    // PHP's encoding arrives verbatim: an empty list stays a list.
    assert_eq!(m["data"], serde_json::json!({"text": "hi", "n": []}));
    assert!(m["ts"].as_u64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn both_connections_of_a_user_receive_each_message() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut phone, _) = Client::login(&sidecar, &php, "bob").await;
    let (mut laptop, _) = Client::login(&sidecar, &php, "bob").await;

    let id = php.push("bob", r#"{"text":"to both"}"#, None).await;
    for device in [&mut phone, &mut laptop] {
        let m = device.recv_message().await;
        assert_eq!(m["id"], id.as_str());
        assert_eq!(m["data"]["text"], "to both");
    }
}

#[tokio::test]
async fn messages_arrive_in_order_without_gaps_or_duplicates() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut carol, _) = Client::login(&sidecar, &php, "carol").await;

    let n = 300;
    php.run(&format!(r#"for ($i = 1; $i <= {n}; $i++) {{ chat_push("carol", ["i" => $i]); }}"#)).await;
    for i in 1..=n {
        let m = carol.recv_message().await;
        assert_eq!(m["seq"], i, "sequence");
        assert_eq!(m["data"]["i"], i, "payload order");
    }
}

#[tokio::test]
async fn sender_devices_get_a_copy_in_their_own_inbox() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut alice, _) = Client::login(&sidecar, &php, "alice").await;
    let (mut bob, _) = Client::login(&sidecar, &php, "bob").await;

    let id = php.push("bob", r#"{"text":"hello bob"}"#, Some("alice")).await;
    let to_bob = bob.recv_message().await;
    let copy = alice.recv_message().await;
    for m in [&to_bob, &copy] {
        assert_eq!(m["id"], id.as_str());
        assert_eq!(m["from"], "alice");
        assert_eq!(m["to"], "bob");
    }
    assert_eq!(to_bob["conv"], "u:bob");
    assert_eq!(copy["conv"], "u:alice");
}

#[tokio::test]
async fn a_client_that_connects_later_gets_the_backlog_then_live_messages() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.push("dave", r#"{"old":1}"#, None).await;
    php.push("dave", r#"{"old":2}"#, None).await;
    let (mut dave, welcome) = Client::login(&sidecar, &php, "dave").await;
    assert_eq!(welcome["cursors"]["u:dave"], 0, "nothing acknowledged yet");
    php.push("dave", r#"{"new":true}"#, None).await;
    for (seq, key) in [(1, "old"), (2, "old"), (3, "new")] {
        let m = dave.recv_message().await;
        assert_eq!(m["seq"], seq);
        assert!(m["data"].get(key).is_some(), "{m}");
    }
}

#[tokio::test]
async fn a_second_node_delivers_to_its_own_clients() {
    let redis = Redis::start();
    let one = Sidecar::start(&redis);
    let two = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut a, w1) = Client::login(&one, &php, "erin").await;
    let (mut b, w2) = Client::login(&two, &php, "erin").await;
    assert_ne!(w1["node"], w2["node"]);
    let id = php.push("erin", r#"{"x":1}"#, None).await;
    assert_eq!(a.recv_message().await["id"], id.as_str());
    assert_eq!(b.recv_message().await["id"], id.as_str());
}

#[tokio::test]
async fn chat_push_throws_when_redis_is_down_and_recovers_after() {
    let mut redis = Redis::start();
    let php = Php::new(&redis);
    // One PHP process across the outage: its persistent connection must be re-established.
    redis.stop();
    let code = r#"
        try { chat_push("frank", ["a" => 1]); echo "returned"; }
        catch (Chat\ConnectionException $e) { echo get_class($e), "|", $e->getMessage(); }
    "#;
    let out = php.run(code).await;
    let (class, message) = out.split_once('|').unwrap_or_else(|| panic!("no exception: {out}"));
    assert_eq!(class, "Chat\\ConnectionException");
    assert!(message.contains(&php.redis_url), "message should name the URL: {message}");
    assert!(php.run("echo (new Chat\\ConnectionException('x')) instanceof Chat\\ChatException ? 'y' : 'n';").await == "y");

    redis.restart();
    let id = php.push("frank", r#"{"a":2}"#, None).await;
    assert_eq!(id.len(), 26);
}

/// Messages are written from their shared pre-encoded frames, events through the WebSocket
/// library: a mix of the two reaches the client in the order sent. The client reads only once
/// everything is pushed, so the session, blocked on a full socket meanwhile, finds the mix
/// queued and writes it in batches.
#[tokio::test]
async fn messages_and_events_mixed_arrive_in_the_order_sent() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_OUTBOUND_QUEUE", "20000")]);
    let php = Php::new(&redis);
    let (mut dora, _) = Client::login(&sidecar, &php, "dora").await;

    let n = 3000;
    php.run(&format!(
        r#"$pad = str_repeat("x", 1000); for ($i = 1; $i <= {n}; $i++) {{ chat_push("dora", ["i" => $i, "pad" => $pad]); if ($i % 3 == 0) {{ chat_event("u:dora", ["after" => $i]); }} }}"#
    ))
    .await;
    let mut expected = Vec::new();
    for i in 1..=n {
        expected.push(format!("m{i}"));
        if i % 3 == 0 {
            expected.push(format!("e{i}"));
        }
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let v = dora.recv().await;
        match v["type"].as_str() {
            Some("message") => got.push(format!("m{}", v["data"]["i"])),
            Some("event") => got.push(format!("e{}", v["data"]["after"])),
            _ => {}
        }
    }
    let first_wrong = got.iter().zip(&expected).position(|(g, e)| g != e);
    assert_eq!(first_wrong, None, "out of order from {first_wrong:?}: got {:?}", first_wrong.map(|at| &got[at..(at + 6).min(got.len())]));
}
