//! Bad input and bad behaviour: each gets a clear error frame or close code, the node stays up,
//! and other clients do not notice.

use chat_e2e::{eventually, Client, Php, Redis, Sidecar};
use chat_protocol::wire::close;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A bystander on the same node who must keep receiving.
async fn still_delivers(php: &Php, bystander: &mut Client, uid: &str) {
    let id = php.push(uid, r#"{"unaffected":true}"#, None).await;
    assert_eq!(bystander.recv_message().await["id"], id.as_str());
}

#[tokio::test]
async fn malformed_json_and_unknown_types_get_error_frames_and_the_connection_stays() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut c, _) = Client::login(&sidecar, &php, "alice").await;

    c.send_text("{not json").await;
    let e = c.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("bad_json")), "{e}");

    c.send_text(r#"{"type":"teleport"}"#).await;
    let e = c.recv().await;
    assert_eq!(e["code"], "unknown_type");
    assert!(e["message"].as_str().unwrap().contains("teleport"));

    c.send_text(r#"{"type":"auth","token":"x"}"#).await;
    assert_eq!(c.recv().await["code"], "already_authenticated");

    c.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(c.recv().await["code"], "binary_unsupported");

    c.send_text(r#"{"type":"ping","ref":42}"#).await;
    let pong = c.recv().await;
    assert_eq!((pong["type"].as_str(), pong["ref"].as_u64()), (Some("pong"), Some(42)));
    still_delivers(&php, &mut c, "alice").await;
    assert!(sidecar.metric("bad_frames_total").await >= 3);
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MAX_FRAME_BYTES", "4096")]);
    let php = Php::new(&redis);
    let (mut bystander, _) = Client::login(&sidecar, &php, "bob").await;
    let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
    c.send_text(&format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(5000))).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, close::TOO_BIG);
    assert!(reason.contains("4096"), "{reason}");
    still_delivers(&php, &mut bystander, "bob").await;
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut bystander, _) = Client::login(&sidecar, &php, "bob").await;
    let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    c.ws.send(Message::Frame(bad)).await.unwrap();
    assert_eq!(c.expect_close().await.0, close::INVALID_UTF8);
    still_delivers(&php, &mut bystander, "bob").await;
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed_with_1008() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_RATE_LIMIT", "5"), ("CHAT_RATE_BURST", "5")]);
    let php = Php::new(&redis);
    let (mut bystander, _) = Client::login(&sidecar, &php, "bob").await;
    let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
    for i in 0..40 {
        // The server may already have closed; later sends are allowed to fail.
        if c.ws.send(Message::text(format!(r#"{{"type":"ping","ref":{i}}}"#))).await.is_err() {
            break;
        }
    }
    let mut pongs = 0;
    let mut limited = false;
    let code = loop {
        match tokio::time::timeout(chat_e2e::PATIENCE, futures_util::StreamExt::next(&mut c.ws)).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("error") if v["code"] == "rate_limited" => limited = true,
                    _ => panic!("unexpected {v}"),
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert!(limited, "a rate_limited error frame comes before the close");
    assert!((10..=12).contains(&pongs), "rate 5 + burst 5 frames are served, got {pongs}");
    assert_eq!(code, close::POLICY);
    assert!(sidecar.metric("rate_limited_frames_total").await >= 6);
    still_delivers(&php, &mut bystander, "bob").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_OUTBOUND_QUEUE", "16"), ("CHAT_WRITE_TIMEOUT_MS", "1000")]);
    let php = Php::new(&redis);
    let (mut bystander, _) = Client::login(&sidecar, &php, "bob").await;
    let (_stalled, _) = Client::login(&sidecar, &php, "alice").await;

    // ~16 MiB towards a reader that never reads: far beyond socket buffers and the queue.
    php.run(r#"$big = str_repeat("x", 16000); for ($i = 0; $i < 1000; $i++) { chat_push("alice", ["i" => $i, "pad" => $big]); }"#).await;
    eventually("the stalled client to be dropped", async || {
        (sidecar.metric("slow_consumer_disconnects_total").await >= 1).then_some(())
    })
    .await;
    eventually("alice to be offline", async || (!php.is_online("alice").await).then_some(())).await;
    still_delivers(&php, &mut bystander, "bob").await;
    assert_eq!(sidecar.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_refused() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_ALLOWED_ORIGINS", "https://shop.example, https://admin.example")]);
    let php = Php::new(&redis);
    let token = php.token("alice").await;
    let url = sidecar.ws_url(&format!("token={token}"));
    let refused = Client::connect_with_headers(&url, &[("origin", "https://evil.example")]).await;
    assert_eq!(refused.err(), Some(403));
    let mut ok = Client::connect_with_headers(&url, &[("origin", "https://admin.example")]).await.expect("allowed origin");
    assert_eq!(ok.recv().await["type"], "welcome");
    // Non-browser clients send no Origin and authenticate by token alone.
    let mut app = Client::connect(&url).await;
    assert_eq!(app.recv().await["type"], "welcome");
    assert_eq!(sidecar.metric("origin_rejections_total").await, 1);
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    assert_eq!(sidecar.get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(sidecar.get("/readyz").await.0, 200);
    let (status, body) = sidecar.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE chat_connections gauge"), "{body}");
    let (status, _) = sidecar.get("/ws").await;
    assert_eq!(status, 426, "plain GET on /ws asks for an upgrade");
}

#[tokio::test]
async fn heartbeats_keep_a_live_client_and_close_a_silent_one() {
    use futures_util::StreamExt;
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_HEARTBEAT_MS", "200")]);
    let php = Php::new(&redis);
    let (mut live, _) = Client::login(&sidecar, &php, "liv").await;
    // Never read, so it never answers a ping: silent after 2.5 intervals.
    let (mut silent, _) = Client::login(&sidecar, &php, "sil").await;

    // Reading answers every ping (tungstenite sends the pong), so the live client stays.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    while let Ok(frame) = tokio::time::timeout_at(until, live.ws.next()).await {
        match frame.expect("connection ended").expect("read error") {
            Message::Ping(_) => pings += 1,
            Message::Close(c) => panic!("the live client was closed: {c:?}"),
            _ => {}
        }
    }
    assert!(pings >= 4, "one ping per 200 ms interval from the node's heartbeat, got {pings} in 1.5 s");
    assert_eq!(silent.expect_close().await.0, close::TIMEOUT);
    still_delivers(&php, &mut live, "liv").await;
}
