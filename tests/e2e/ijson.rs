//! I-JSON (RFC 7493) at every door: a payload some reader downstream could not read — a lone
//! surrogate, a number past a double, nesting 10,000 deep, a repeated member name — is refused
//! where it enters (a `send` or `signal` frame, `POST /send`, `chat_push`), nothing of it is
//! stored, and every other message still flows and stays readable.

use chat_e2e::{Client, Php, Redis, Sidecar};
use serde_json::Value;

/// Each poison shape, as JSON text, with the rule the refusal must name.
fn poisons() -> Vec<(&'static str, String)> {
    vec![
        ("lone surrogate", r#""\ud800""#.to_owned()),
        ("lone surrogate", r#"{"text":"ok \udc00"}"#.to_owned()),
        ("overflows an IEEE 754 double", "1e400".to_owned()),
        ("nested deeper than 64", "[".repeat(10_000) + &"]".repeat(10_000)),
        ("appears twice", r#"{"from":"mallory","from":"bob"}"#.to_owned()),
        ("noncharacter", r#""\uffff""#.to_owned()),
    ]
}

/// `POST /send` with a bearer token; returns (status, body).
async fn post_send(sidecar: &Sidecar, token: &str, body: &str) -> (u16, String) {
    let a = chat_e2e::http::post_send(&sidecar.addr, token, body).await;
    (a.status, a.body)
}

#[tokio::test]
async fn each_poison_shape_is_refused_at_every_door_and_everything_else_flows() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_RATE_LIMIT", "200"), ("CHAT_RATE_BURST", "200")]);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("alice", "call"); chat_join_group("bob", "call");"#).await;
    let (mut alice, _) = Client::login(&sidecar, &php, "alice").await;
    let (mut bob, _) = Client::login(&sidecar, &php, "bob").await;

    for (i, (rule, bad)) in poisons().into_iter().enumerate() {
        // A send frame, one-to-one and to a group.
        for target in [r#""to":"bob""#, r#""group":"call""#] {
            alice.send_text(&format!(r#"{{"type":"send",{target},"data":{bad},"ref":"p{i}"}}"#)).await;
            let e = alice.recv_type("error").await;
            assert_eq!((e["code"].as_str(), e["ref"].as_str()), (Some("bad_frame"), Some(format!("p{i}").as_str())), "{e}");
            let message = e["message"].as_str().unwrap();
            assert!(message.contains("I-JSON") && message.contains(rule), "{rule}: {message}");
        }
        // A signal frame.
        alice.send_text(&format!(r#"{{"type":"signal","group":"call","to":"bob","data":{bad}}}"#)).await;
        let e = alice.recv_type("error").await;
        assert_eq!(e["code"], "bad_frame", "{e}");
        assert!(e["message"].as_str().unwrap().contains(rule), "{e}");
        // POST /send.
        let token = php.token("alice").await;
        let (status, body) = post_send(&sidecar, &token, &format!(r#"{{"type":"send","to":"bob","data":{bad}}}"#)).await;
        assert_eq!(status, 400, "{body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["code"], "bad_frame");
        assert!(e["message"].as_str().unwrap().contains(rule), "{e}");
    }

    // Nothing of it was stored: the next messages are the first of each conversation, and they
    // (and a signal) arrive.
    alice.send_text(r#"{"type":"send","to":"bob","data":{"text":"still here"},"ref":"ok"}"#).await;
    let sent = alice.recv_type("sent").await;
    assert_eq!((sent["ref"].as_str(), sent["seq"].as_u64()), (Some("ok"), Some(1)), "{sent}");
    let m = bob.recv_message().await;
    assert_eq!((m["conv"].as_str(), m["seq"].as_u64(), m["data"]["text"].as_str()), (Some("u:bob"), Some(1), Some("still here")));
    alice.send_text(r#"{"type":"send","group":"call","data":"hello room"}"#).await;
    let m = bob.recv_message().await;
    assert_eq!((m["conv"].as_str(), m["seq"].as_u64()), (Some("g:call"), Some(1)), "{m}");
    alice.send_text(r#"{"type":"signal","group":"call","to":"bob","data":{"kind":"offer"}}"#).await;
    assert_eq!(bob.recv_type("signal").await["data"]["kind"], "offer");
    let (status, body) = post_send(&sidecar, &php.token("alice").await, r#"{"type":"send","to":"bob","data":[1,2.5,"é"]}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bob.recv_message().await["seq"], 2);

    // Every stored message is readable by PHP.
    let history = php.json(r#"array_map(fn ($m) => $m['seq'], chat_history('u:bob'))"#).await;
    assert_eq!(history, serde_json::json!([1, 2]));
    assert_eq!(php.json(r#"count(chat_history('g:call'))"#).await, 1);
    assert!(sidecar.metric("payloads_refused_total").await >= 4 * poisons().len() as u64);
}

#[tokio::test]
async fn php_refuses_what_json_encode_writes_but_a_reader_cannot_read() {
    let redis = Redis::start();
    let php = Php::new(&redis);
    let cases = [
        ("a 100-deep array", r#"$m = 1; for ($i = 0; $i < 100; $i++) { $m = [$m]; }"#, "nested deeper than 64"),
        ("a noncharacter", r#"$m = ["text" => "\u{FFFF}"];"#, "noncharacter U+FFFF"),
    ];
    for (what, build, rule) in cases {
        for call in ["chat_push('bob', $m)", "chat_send_to_group('ops', $m)", "chat_broadcast($m)"] {
            let (ok, out, err) = php
                .try_run(&format!(r#"{build} try {{ {call}; echo "accepted"; }} catch (Chat\InvalidArgumentException $e) {{ echo get_class($e), ": ", $e->getMessage(); }}"#))
                .await;
            assert!(ok, "{what}: {err}");
            assert!(out.starts_with("Chat\\InvalidArgumentException: ") && out.contains("I-JSON") && out.contains(rule), "{what} by {call}: {out}");
        }
    }
    // 64 deep is within the limit, and ordinary messages pass.
    php.run(r#"$m = 1; for ($i = 0; $i < 64; $i++) { $m = [$m]; } chat_push('bob', $m); chat_push('bob', ['text' => 'é 😀']);"#).await;
    assert_eq!(php.json(r#"count(chat_history('u:bob'))"#).await, 2);
}
