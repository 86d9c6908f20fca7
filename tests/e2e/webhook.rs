//! The offline-message webhook: once per offline batch, signed, retried until the app accepts.

use chat_e2e::{eventually, webhook_receiver, Client, Php, Redis, Sidecar, WebhookRequest as Request};

const HOOK_SECRET: &str = "hook-secret";

#[tokio::test]
async fn offline_messages_are_announced_once_signed_and_retried() {
    let redis = Redis::start();
    let (url, seen) = webhook_receiver(2, "message.offline").await;
    let sidecar = Sidecar::start_with(
        &redis,
        &[("CHAT_WEBHOOK_URL", &url), ("CHAT_WEBHOOK_SECRET", HOOK_SECRET), ("CHAT_WEBHOOK_RETRIES", "6")],
    );
    let php = Php::new(&redis);
    let (mut bob, _) = Client::login(&sidecar, &php, "bob").await;
    php.push("bob", r#"{"online":true}"#, Some("yan")).await;
    bob.recv_message().await;

    let ids = php
        .run(r#"for ($i = 1; $i <= 3; $i++) { echo chat_push("zoe", ["text" => "ping $i"], ["from" => "yan"]), "\n"; }"#)
        .await;
    let ids: Vec<&str> = ids.lines().collect();

    let accepted = eventually("the app to accept webhooks covering zoe's 3 messages", async || {
        let accepted: Vec<Request> =
            seen.lock().unwrap().iter().filter(|r| r.answered == 200 && r.body.contains(r#""event":"message.offline""#)).cloned().collect();
        let count: u64 = accepted.iter().map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["count"].as_u64().unwrap()).sum();
        (count >= 3).then_some(accepted)
    })
    .await;
    let all = seen.lock().unwrap().clone();

    let mut announced = Vec::new();
    for r in &accepted {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["event"], "message.offline");
        assert_eq!(v["user"], "zoe", "only the offline recipient is announced: {v}");
        assert_eq!(v["delivery"], r.delivery.as_str());
        for m in v["messages"].as_array().unwrap() {
            assert_eq!((m["conv"].as_str(), m["from"].as_str()), (Some("u:zoe"), Some("yan")));
            announced.push((m["seq"].as_u64().unwrap(), m["id"].as_str().unwrap().to_owned()));
        }
    }
    // Deliveries may complete out of order (one is retried while the next succeeds), so
    // compare by sequence: each message is announced exactly once.
    announced.sort();
    let announced: Vec<&str> = announced.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(announced, ids, "each message announced once");
    // The failed attempts were retried with the same delivery id.
    assert_eq!(all.iter().filter(|r| r.answered == 500).count(), 2);
    assert!(all.iter().filter(|r| r.answered == 500).all(|f| accepted.iter().any(|a| a.delivery == f.delivery && a.body == f.body)));

    // Every request carries a valid, fresh signature, checked the way a PHP app checks it
    // (Chat\Webhook from the chat-php package); replayed later than the tolerance, or with its
    // timestamp moved, the same request is refused.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for r in &all {
        let t = r.signed_at().unwrap_or_else(|| panic!("no timestamp in {:?}", r.signature));
        assert!(t.abs_diff(now) < 120, "signed at {t}, now {now}");
        let body = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(body.path(), &r.body).unwrap();
        let verdicts = php
            .run(&format!(
                r#"{prelude} $body = file_get_contents({path:?}); $sig = {sig:?}; $t = {t};
                $moved = preg_replace('/t=\d+/', 't=' . ($t + 3600), $sig);
                echo json_encode([
                    Webhook::verify($body, $sig, {HOOK_SECRET:?}),
                    Webhook::verify($body, $sig, {HOOK_SECRET:?}, now: $t + 300),
                    Webhook::verify($body, $sig, {HOOK_SECRET:?}, now: $t + 301),
                    Webhook::verify($body, $sig, {HOOK_SECRET:?}, tolerance: 60, now: $t + 61),
                    Webhook::verify($body, $moved, {HOOK_SECRET:?}, now: $t + 3600),
                    Webhook::verify($body . ' ', $sig, {HOOK_SECRET:?}),
                ]);"#,
                prelude = chat_e2e::webhook_prelude(),
                path = body.path().display().to_string(),
                sig = r.signature,
            ))
            .await;
        assert_eq!(verdicts, "[true,true,false,false,false,false]", "fresh, within 5 min; replayed after 5 min, after a 60 s tolerance, with its timestamp moved, with the body changed");
    }
    assert!(sidecar.metric("webhook_retries_total").await >= 2);
}
