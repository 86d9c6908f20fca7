//! SSE, long-polling and `POST /send`: the same authentication, order and resume as the
//! WebSocket, over plain HTTP, against the real sidecar and real Redis.
//!
//! The HTTP here is written by hand (`chat_e2e::http`): the test's view stays byte-exact,
//! e.g. SSE ids and CORS headers.

use chat_e2e::http::{http, Answer};
use chat_e2e::{eventually, url_encode, Client, Php, Redis, Sidecar, Sse, PATIENCE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn poll(sidecar: &Sidecar, query: &str) -> Value {
    let a = http(&sidecar.addr, "GET", &format!("/poll?{query}"), &[], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.header("content-type").unwrap_or_default().starts_with("application/json"));
    a.json()
}

fn messages(answer: &Value) -> Vec<Value> {
    answer["frames"].as_array().unwrap().iter().filter(|f| f["type"] == "message").cloned().collect()
}

async fn post_send(sidecar: &Sidecar, token: &str, frame: &str) -> Answer {
    chat_e2e::http::post_send(&sidecar.addr, token, frame).await
}

#[tokio::test]
async fn sse_delivers_backlog_and_live_messages_with_resume_ids() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    for i in 1..=3 {
        php.push("alice", &format!(r#"{{"i":{i}}}"#), None).await;
    }
    let token = php.token("alice").await;
    let mut sse = Sse::open(&sidecar, &format!("token={token}&device=web"), None).await;
    let welcome = sse.next().await;
    assert_eq!(welcome.data["type"], "welcome");
    assert_eq!(welcome.data["uid"], "alice");
    assert_eq!(serde_json::from_str::<Value>(welcome.id.as_deref().unwrap()).unwrap(), json!({"u:alice": 0}));
    let devices = php.json(r#"chat_user_devices("alice")"#).await;
    assert_eq!(devices[0]["transport"], "sse", "{devices}");

    let mut ids = Vec::new();
    for i in 1..=3 {
        let m = sse.next_message().await;
        assert_eq!((m.data["seq"].as_u64(), m.data["data"]["i"].as_u64()), (Some(i), Some(i)));
        assert_eq!(serde_json::from_str::<Value>(m.id.as_deref().unwrap()).unwrap(), json!({"u:alice": i}));
        ids.push(m.id.unwrap());
    }
    php.push("alice", r#"{"i":4}"#, None).await;
    assert_eq!(sse.next_message().await.data["seq"], 4);
    drop(sse);

    // The browser saw up to message 2 when the connection broke; it reconnects with the id.
    php.push("alice", r#"{"i":5}"#, None).await;
    let mut again = Sse::open(&sidecar, &format!("token={token}&cursors={}", url_encode(r#"{"u:alice":4}"#)), Some(&ids[1])).await;
    assert_eq!(again.next().await.data["cursors"], json!({"u:alice": 2}), "Last-Event-ID wins over ?cursors=");
    for i in 3..=5 {
        assert_eq!(again.next_message().await.data["seq"], i);
    }
}

#[tokio::test]
async fn sse_says_why_it_ends() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let mut bad = Sse::open(&sidecar, "token=not-a-token", None).await;
    let e = bad.next().await;
    assert_eq!((e.kind.as_str(), e.data["code"].as_u64()), ("close", Some(4001)), "{e:?}");
    assert!(bad.ended().await);

    let token = php.token("kim").await;
    let mut sse = Sse::open(&sidecar, &format!("token={token}"), None).await;
    assert_eq!(sse.next().await.data["type"], "welcome");
    assert!(php.is_online("kim").await);
    php.run(r#"chat_kick("kim", "logged out");"#).await;
    let e = sse.next().await;
    assert_eq!(e.kind, "close");
    assert_eq!(e.data, json!({"code": 4004, "reason": "logged out"}));
    assert!(sse.ended().await);
    assert!(!php.is_online("kim").await, "presence is gone once the close event is out");
}

#[tokio::test]
async fn long_poll_holds_until_a_message_and_keeps_the_session_between_polls() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_POLL_GRACE_MS", "1500")]);
    let php = Php::new(&redis);
    php.push("bob", r#"{"i":1}"#, None).await;
    let token = php.token("bob").await;

    let first = poll(&sidecar, &format!("token={token}&device=old-phone&timeout=5000")).await;
    assert_eq!(first["frames"][0]["type"], "welcome", "{first}");
    let conn = first["conn"].as_str().unwrap().to_owned();
    assert_eq!(first["frames"][0]["conn"], conn.as_str());
    assert_eq!(messages(&first).len(), 1);
    // Between polls the user stays online.
    assert!(php.is_online("bob").await);
    assert_eq!(php.json(r#"chat_user_devices("bob")"#).await[0]["transport"], "poll");

    // A poll with nothing to deliver is held; a push answers it.
    let cursors = url_encode(r#"{"u:bob":1}"#);
    let held = {
        let (sidecar_addr, q) = (sidecar.addr.clone(), format!("/poll?token={token}&conn={conn}&cursors={cursors}&timeout=30000"));
        tokio::spawn(async move { http(&sidecar_addr, "GET", &q, &[], "").await })
    };
    // Whether the push lands before or after the poll attaches, the session's answer carries
    // it (buffered or live), and without a welcome: the same session.
    php.push("bob", r#"{"i":2}"#, None).await;
    let second = held.await.unwrap().json();
    assert_eq!(second["conn"], conn.as_str());
    let got = messages(&second);
    assert_eq!(got.len(), 1, "{second}");
    assert_eq!(got[0]["seq"], 2);
    assert!(second["frames"].as_array().unwrap().iter().all(|f| f["type"] != "welcome"), "same session: {second}");

    // That answer was "lost": the client polls again with its old cursors and gets it again.
    let again = poll(&sidecar, &format!("token={token}&conn={conn}&cursors={cursors}&timeout=3000")).await;
    assert_eq!(messages(&again).iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2], "{again}");

    // Nothing new: an empty answer after the timeout.
    let cursors2 = url_encode(r#"{"u:bob":2}"#);
    let empty = poll(&sidecar, &format!("token={token}&conn={conn}&cursors={cursors2}&timeout=200")).await;
    assert_eq!(empty["frames"], json!([]), "{empty}");

    // No poll within the grace period: the session ends and bob goes offline.
    eventually("bob offline after the poll grace period", async || (!php.is_online("bob").await).then_some(())).await;
    // His next poll starts a new session from his cursors: nothing lost, nothing twice.
    php.push("bob", r#"{"i":3}"#, None).await;
    let fresh = poll(&sidecar, &format!("token={token}&conn={conn}&cursors={cursors2}&timeout=3000")).await;
    assert_eq!(fresh["frames"][0]["type"], "welcome");
    assert_ne!(fresh["conn"], conn.as_str());
    assert_eq!(messages(&fresh).iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3]);
}

#[tokio::test]
async fn long_poll_refusals_are_close_objects() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let bad = poll(&sidecar, "token=nope").await;
    assert_eq!(bad["close"]["code"], 4001, "{bad}");
    let none = poll(&sidecar, "").await;
    assert_eq!(none["close"]["code"], 4003, "{none}");
    let token = php.token("zed").await;
    let a = http(&sidecar.addr, "GET", &format!("/poll?token={token}&cursors=oops"), &[], "").await;
    assert_eq!(a.status, 400);

    let first = poll(&sidecar, &format!("token={token}&timeout=0")).await;
    let conn = first["conn"].as_str().unwrap().to_owned();
    let kick = {
        let php = Php::new(&redis);
        async move { php.run(r#"chat_kick("zed", "bye");"#).await }
    };
    let q = format!("token={token}&conn={conn}&timeout=10000");
    let (answer, _) = tokio::join!(poll(&sidecar, &q), kick);
    assert_eq!(answer["close"], json!({"code": 4004, "reason": "bye"}), "{answer}");
}

#[tokio::test]
async fn post_send_checks_like_a_websocket_and_needs_no_session() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut bob, _) = Client::login(&sidecar, &php, "bob").await;
    let token = php.token("ann").await;

    let sent = post_send(&sidecar, &token, r#"{"type":"send","to":"bob","data":{"text":"hi"},"ref":"c1"}"#).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let sent = sent.json();
    assert_eq!((sent["type"].as_str(), sent["ref"].as_str(), sent["conv"].as_str()), (Some("sent"), Some("c1"), Some("u:ann")));
    let m = bob.recv_message().await;
    assert_eq!((m["from"].as_str(), m["data"]["text"].as_str(), m["id"].as_str()), (Some("ann"), Some("hi"), sent["id"].as_str()));

    let pong = post_send(&sidecar, &token, r#"{"type":"ping","ref":9}"#).await;
    assert_eq!((pong.status, pong.json()), (200, json!({"type": "pong", "ref": 9})));
    let typing = post_send(&sidecar, &token, r#"{"type":"typing","to":"bob"}"#).await;
    assert_eq!(typing.status, 204);
    assert_eq!(bob.recv_type("typing").await["from"], "ann");

    for (frame, status, code) in [
        (r#"{"type":"send","group":"ops","data":1}"#, 403, "forbidden"),
        (r#"{"type":"typing","group":"ops"}"#, 403, "forbidden"),
        (r#"{"type":"read","conv":"u:bob","seq":1}"#, 403, "forbidden"),
        (r#"{"type":"ack","conv":"g:ops","seq":1}"#, 403, "forbidden"),
        ("nope", 400, "bad_json"),
        (r#"{"type":"zap"}"#, 400, "unknown_type"),
        (r#"{"type":"send","to":"bad id!","data":1}"#, 400, "bad_frame"),
    ] {
        let a = post_send(&sidecar, &token, frame).await;
        assert_eq!((a.status, a.json()["code"].as_str().map(str::to_owned)), (status, Some(code.to_owned())), "{frame}: {}", a.body);
    }
    let unauth = post_send(&sidecar, "garbage", r#"{"type":"ping"}"#).await;
    assert_eq!((unauth.status, unauth.json()["code"].clone()), (401, json!("bad_token")));
    let big = post_send(&sidecar, &token, &format!(r#"{{"type":"send","to":"bob","data":"{}"}}"#, "x".repeat(70_000))).await;
    assert_eq!(big.status, 413);

    // Members may; reads and acks are clamped to what exists.
    php.run(r#"chat_join_group("ann", "ops"); chat_send_to_group("ops", ["n" => 1]);"#).await;
    let g = post_send(&sidecar, &token, r#"{"type":"send","group":"ops","data":{"n":2}}"#).await;
    assert_eq!((g.status, g.json()["seq"].as_u64()), (200, Some(2)));
    let read = post_send(&sidecar, &token, r#"{"type":"read","conv":"g:ops","seq":99}"#).await;
    assert_eq!(read.status, 204);
    assert_eq!(php.json(r#"chat_unread("ann")"#).await["g:ops"], 0);
    let ack = post_send(&sidecar, &token, r#"{"type":"ack","conv":"u:ann","seq":99}"#).await;
    assert_eq!(ack.status, 204);
    assert_eq!(redis.cmd(&["HGET", "chat:{u:ann}:acked", "u:ann"]).as_deref(), Some("1"), "clamped to the inbox's last message");
}

#[tokio::test]
async fn post_send_is_rate_limited_per_user() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_RATE_LIMIT", "1"), ("CHAT_RATE_BURST", "2")]);
    let php = Php::new(&redis);
    let token = php.token("spam").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(post_send(&sidecar, &token, r#"{"type":"ping"}"#).await.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let other = php.token("calm").await;
    assert_eq!(post_send(&sidecar, &other, r#"{"type":"ping"}"#).await.status, 200);
}

#[tokio::test]
async fn an_sse_user_and_a_long_poll_user_chat() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (ta, tb) = (php.token("ada").await, php.token("bo").await);
    let mut ada = Sse::open(&sidecar, &format!("token={ta}"), None).await;
    assert_eq!(ada.next().await.data["type"], "welcome");
    let first = poll(&sidecar, &format!("token={tb}&timeout=0")).await;
    let conn = first["conn"].as_str().unwrap().to_owned();

    let mut bo_cursor = 0;
    for round in 1..=3 {
        let a = post_send(&sidecar, &ta, &format!(r#"{{"type":"send","to":"bo","data":{{"round":{round}}}}}"#)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        // bo's inbox also holds the copies of his own replies (for his other devices).
        let mut got = Vec::new();
        while got.is_empty() {
            let c = url_encode(&json!({"u:bo": bo_cursor}).to_string());
            let answer = poll(&sidecar, &format!("token={tb}&conn={conn}&cursors={c}&timeout=10000")).await;
            for m in messages(&answer) {
                assert_eq!(m["seq"].as_u64().unwrap(), bo_cursor + 1, "in order, no gaps: {answer}");
                bo_cursor += 1;
                if m["from"] == "ada" {
                    got.push(m);
                }
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["data"]["round"].as_u64(), Some(round));

        let b = post_send(&sidecar, &tb, &format!(r#"{{"type":"send","to":"ada","data":{{"reply":{round}}}}}"#)).await;
        assert_eq!(b.status, 200, "{}", b.body);
        // ada's own copy of her send comes first, then bo's reply.
        let mine = ada.next_message().await;
        assert_eq!(mine.data["from"], "ada");
        let reply = ada.next_message().await;
        assert_eq!((reply.data["from"].as_str(), reply.data["data"]["reply"].as_u64()), (Some("bo"), Some(round)));
    }
}

#[tokio::test]
async fn browsers_on_other_origins_get_cors_headers() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_ALLOWED_ORIGINS", "https://shop.example")]);
    let php = Php::new(&redis);
    let pre = http(
        &sidecar.addr,
        "OPTIONS",
        "/send",
        &[("Origin", "https://shop.example"), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization,content-type")],
        "",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin").as_deref(), Some("https://shop.example"));
    assert!(pre.header("access-control-allow-headers").unwrap().contains("authorization"));
    let evil = http(&sidecar.addr, "OPTIONS", "/send", &[("Origin", "https://evil.example")], "").await;
    assert_eq!(evil.status, 403);

    let token = php.token("ann").await;
    let ok = http(&sidecar.addr, "GET", &format!("/poll?token={token}&timeout=0"), &[("Origin", "https://shop.example")], "").await;
    assert_eq!((ok.status, ok.header("access-control-allow-origin")), (200, Some("https://shop.example".to_owned())));
    let refused = http(&sidecar.addr, "GET", &format!("/sse?token={token}"), &[("Origin", "https://evil.example")], "").await;
    assert_eq!(refused.status, 403);

    let js = http(&sidecar.addr, "GET", "/chat.js", &[], "").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(js.header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(js.body, std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../client/chat.js")).unwrap());
    let dts = http(&sidecar.addr, "GET", "/chat.d.ts", &[], "").await;
    assert_eq!(dts.status, 200);
}

