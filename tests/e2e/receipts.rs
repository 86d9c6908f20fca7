//! Read receipts, multi-device sync, client sends and unread counts.

use chat_e2e::{Client, Php, Redis, Sidecar};

#[tokio::test]
async fn sends_sync_across_devices_and_reads_produce_receipts() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut alice_phone, _) = Client::resume(&sidecar, &php, "alice", None, true).await;
    let (mut alice_laptop, _) = Client::resume(&sidecar, &php, "alice", None, true).await;
    let (mut bob, _) = Client::resume(&sidecar, &php, "bob", None, true).await;
    let (mut bob_tablet, _) = Client::resume(&sidecar, &php, "bob", None, true).await;

    // bob sends from one device.
    bob.send_text(r#"{"type":"send","to":"alice","data":{"text":"lunch?"},"ref":"c1"}"#).await;
    let sent = bob.recv_type("sent").await;
    assert_eq!((sent["ref"].as_str(), sent["conv"].as_str(), sent["seq"].as_u64()), (Some("c1"), Some("u:bob"), Some(1)));
    let id = sent["id"].as_str().unwrap().to_owned();

    // Both of alice's devices get it; bob's other device gets his copy.
    for device in [&mut alice_phone, &mut alice_laptop] {
        let m = device.recv_message().await;
        assert_eq!((m["id"].as_str(), m["conv"].as_str(), m["from"].as_str()), (Some(id.as_str()), Some("u:alice"), Some("bob")));
        assert_eq!(m["data"]["text"], "lunch?");
    }
    let copy = bob_tablet.recv_message().await;
    assert_eq!((copy["id"].as_str(), copy["conv"].as_str(), copy["to"].as_str()), (Some(id.as_str()), Some("u:bob"), Some("alice")));

    assert_eq!(php.json(r#"chat_unread("alice")"#).await, serde_json::json!({"u:alice": 1}));
    assert_eq!(php.json(r#"chat_unread("bob")"#).await, serde_json::json!({"u:bob": 0}), "own messages are not unread");

    // alice reads on her phone: her laptop syncs, bob's devices get a receipt.
    alice_phone.send_text(r#"{"type":"read","conv":"u:alice","seq":1}"#).await;
    let sync = alice_laptop.recv_type("read").await;
    assert_eq!((sync["conv"].as_str(), sync["seq"].as_u64()), (Some("u:alice"), Some(1)));
    for device in [&mut bob, &mut bob_tablet] {
        let r = device.recv_type("receipt").await;
        assert_eq!(r["reader"], "alice");
        assert_eq!(r["conv"], "u:alice");
        assert_eq!(r["id"], id.as_str());
    }
    assert_eq!(php.json(r#"chat_unread("alice")"#).await, serde_json::json!({"u:alice": 0}));

    // Reading someone else's inbox is refused.
    bob.send_text(r#"{"type":"read","conv":"u:alice","seq":1}"#).await;
    assert_eq!(bob.recv_type("error").await["code"], "forbidden");
}

#[tokio::test]
async fn history_returns_the_latest_messages_oldest_first() {
    let redis = Redis::start();
    let php = Php::new(&redis);
    php.run(r#"for ($i = 1; $i <= 30; $i++) { chat_push("hank", ["i" => $i], ["from" => "ivy"]); }"#).await;
    let h = php.json(r#"chat_history("u:hank", 5)"#).await;
    let seqs: Vec<u64> = h.as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![26, 27, 28, 29, 30]);
    assert_eq!(h[0]["data"]["i"], 26);
    assert_eq!(h[0]["from"], "ivy");
    let page = php.json(r#"chat_history("u:hank", 3, 26)"#).await;
    let seqs: Vec<u64> = page.as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![23, 24, 25]);
    let refused = |code: &'static str| {
        let php = &php;
        async move {
            let out = php.run(&format!("try {{ {code}; echo 'returned'; }} catch (Chat\\InvalidArgumentException $e) {{ echo $e->getMessage(); }}")).await;
            out
        }
    };
    assert!(refused(r#"chat_history("bob", 5)"#).await.contains("u:<user id>"));
    assert!(refused(r#"chat_history("u:hank", 0)"#).await.contains("limit"));
}

/// Receipts go to the sender the push script stored, never to whoever a payload names: an app
/// message (no sender) whose data holds `"from":"mallory"` sends mallory nothing when read.
#[tokio::test]
async fn receipts_are_routed_by_the_stored_sender_not_by_the_payload() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut mallory, _) = Client::resume(&sidecar, &php, "mallory", None, true).await;
    let (mut ivy, _) = Client::resume(&sidecar, &php, "ivy", None, true).await;
    let (mut olaf, _) = Client::resume(&sidecar, &php, "olaf", None, true).await;
    php.push("olaf", r#"{"text":"x","from":"mallory","a":{"from":"mallory"}}"#, None).await;
    php.push("olaf", r#"{"text":"from ivy"}"#, Some("ivy")).await;
    assert_eq!(olaf.recv_message().await["seq"], 1);
    assert_eq!(olaf.recv_message().await["seq"], 2);
    olaf.send_text(r#"{"type":"read","conv":"u:olaf","seq":2}"#).await;
    let r = ivy.recv_type("receipt").await;
    assert_eq!((r["reader"].as_str(), r["seq"].as_u64()), (Some("olaf"), Some(2)));
    // mallory hears nothing: a ping answered proves nothing came before it.
    mallory.send_text(r#"{"type":"ping","ref":"p"}"#).await;
    let next = mallory.recv().await;
    assert_eq!(next["type"], "pong", "mallory got {next}");
    assert_eq!(php.json(r#"chat_unread("ivy")"#).await, serde_json::json!({"u:ivy": 0}), "ivy's own message is not unread for her");
}
