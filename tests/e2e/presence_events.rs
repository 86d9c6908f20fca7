//! Presence events: group members see online/offline (debounced), the app gets signed
//! user.online / user.offline / group.occupied / group.vacated webhooks, also for the users
//! of a node that crashed.

use chat_e2e::{eventually, webhook_receiver, Client, Php, Redis, Sidecar};

async fn login(sidecar: &Sidecar, php: &Php, uid: &str) -> Client {
    Client::login(sidecar, php, uid).await.0
}

/// The next presence event about `uid`, skipping everything else.
async fn presence_of(c: &mut Client, uid: &str) -> String {
    loop {
        let e = c.recv_type("presence").await;
        if e["uid"] == uid {
            assert_eq!(e["group"], "ops");
            return e["status"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test]
async fn members_see_online_and_a_debounced_offline() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_DEBOUNCE_MS", "1000")]);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("ann", "ops"); chat_join_group("ben", "ops");"#).await;
    let mut ben = login(&sidecar, &php, "ben").await;

    let ann = login(&sidecar, &php, "ann").await;
    assert_eq!(presence_of(&mut ben, "ann").await, "online");
    // A quick reconnect is not a leave + join storm...
    ann.close().await;
    let ann = login(&sidecar, &php, "ann").await;
    ann.close().await;
    // ...only the final disconnect is announced, once, after the debounce.
    assert_eq!(presence_of(&mut ben, "ann").await, "offline");
    let marker = php.run(r#"echo chat_send_to_group("ops", ["marker" => 1]);"#).await;
    loop {
        let f = ben.recv().await;
        assert_ne!(f["type"], "presence", "no further presence events before the marker: {f}");
        if f["id"] == marker.as_str() {
            break;
        }
    }
}

#[tokio::test]
async fn presence_webhooks_cover_debounce_groups_and_crashed_nodes() {
    let redis = Redis::start();
    let (url, seen) = webhook_receiver(0, "").await;
    let settings = [
        ("CHAT_WEBHOOK_URL", url.as_str()),
        ("CHAT_WEBHOOK_SECRET", "s"),
        ("CHAT_PRESENCE_DEBOUNCE_MS", "300"),
        ("CHAT_PRESENCE_TTL_MS", "3000"),
    ];
    let a = Sidecar::start_with(&redis, &settings);
    let mut b = Sidecar::start_with(&redis, &settings);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("ann", "ops"); chat_join_group("ben", "ops");"#).await;

    let events = || -> Vec<(String, String)> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                let subject = v.get("group").or(v.get("user")).unwrap().as_str().unwrap().to_owned();
                (v["event"].as_str().unwrap().to_owned(), subject)
            })
            .collect()
    };
    let wait_for = |event: &'static str, subject: &'static str| {
        let events = &events;
        async move {
            eventually(&format!("webhook {event} {subject}"), async || {
                events().contains(&(event.to_owned(), subject.to_owned())).then_some(())
            })
            .await
        }
    };

    let ann = login(&a, &php, "ann").await;
    wait_for("user.online", "ann").await;
    wait_for("group.occupied", "ops").await;
    let _ben = login(&b, &php, "ben").await;
    wait_for("user.online", "ben").await;
    ann.close().await;
    wait_for("user.offline", "ann").await;

    // ben's node dies: nobody closes his connection; node a's sweeper finds it expired.
    b.kill9();
    wait_for("user.offline", "ben").await;
    wait_for("group.vacated", "ops").await;

    let mut got = events();
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("group.occupied", "ops"),
        ("group.vacated", "ops"),
        ("user.offline", "ann"),
        ("user.offline", "ben"),
        ("user.online", "ann"),
        ("user.online", "ben"),
    ]
    .iter()
    .map(|(e, s)| (e.to_string(), s.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want, "each transition announced exactly once");
}

#[tokio::test]
async fn a_group_with_more_online_members_than_the_limit_gets_no_presence_frames() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_GROUP_PRESENCE_LIMIT", "2"), ("CHAT_PRESENCE_DEBOUNCE_MS", "200")]);
    let php = Php::new(&redis);
    php.run(r#"foreach (["ann", "ben", "cid"] as $u) { chat_join_group($u, "ops"); }"#).await;
    let mut ann = login(&sidecar, &php, "ann").await;
    // Two online: still announced.
    let _ben = login(&sidecar, &php, "ben").await;
    assert_eq!(presence_of(&mut ann, "ben").await, "online");
    // A third would make three online: over the limit, so not announced, but still counted.
    let cid = login(&sidecar, &php, "cid").await;
    // Its announcement has run once the group counts it online (the same script decides
    // whether to publish, so anything it published is on the channel before the marker below).
    eventually("cid counted among the group's online members", async || {
        (redis.cmd(&["SCARD", "chat:{g:ops}:present"]).as_deref() == Some("3")).then_some(())
    })
    .await;
    // cid leaving brings the group back to two online: announced again.
    cid.close().await;
    let marker = php.run(r#"echo chat_send_to_group("ops", ["marker" => 1]);"#).await;
    let mut before_marker = Vec::new();
    loop {
        let f = ann.recv().await;
        if f["id"] == marker.as_str() {
            break;
        }
        before_marker.push(f);
    }
    assert!(before_marker.iter().all(|f| f["type"] != "presence" || f["status"] != "online"), "cid's online was not announced: {before_marker:?}");
    assert_eq!(presence_of(&mut ann, "cid").await, "offline");
}
