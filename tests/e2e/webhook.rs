//! The offline-message webhook: once per offline batch, signed, retried until the app accepts.

use std::sync::{Arc, Mutex};

use chat_e2e::{eventually, Client, Php, Redis, Sidecar};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const HOOK_SECRET: &str = "hook-secret";

#[derive(Debug, Clone)]
struct Request {
    signature: String,
    delivery: String,
    body: String,
    answered: u16,
}

/// An HTTP endpoint that answers 500 to the first `failures` requests, then 200.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/chat-hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let (mut signature, mut delivery, mut length) = (String::new(), String::new(), 0usize);
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "x-chat-signature" => signature = value,
                    "x-chat-delivery" => delivery = value,
                    "content-length" => length = value.parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            let answered = if log.lock().unwrap().len() < failures { 500 } else { 200 };
            log.lock().unwrap().push(Request { signature, delivery, body: String::from_utf8(body).unwrap(), answered });
            let reply = format!("HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

#[tokio::test]
async fn offline_messages_are_announced_once_signed_and_retried() {
    let redis = Redis::start();
    let (url, seen) = receiver(2).await;
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
        let accepted: Vec<Request> = seen.lock().unwrap().iter().filter(|r| r.answered == 200).cloned().collect();
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

    // Every request carries a valid signature, checked the way a PHP app checks it.
    for r in &all {
        let body = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(body.path(), &r.body).unwrap();
        let verdict = php
            .run(&format!(
                r#"$body = file_get_contents({:?}); echo hash_equals('sha256=' . hash_hmac('sha256', $body, {HOOK_SECRET:?}), {:?}) ? 'valid' : 'forged';"#,
                body.path().display().to_string(),
                r.signature
            ))
            .await;
        assert_eq!(verdict, "valid");
    }
    assert!(sidecar.metric("webhook_retries_total").await >= 2);
}
