//! GatewayWorker's "connect anonymously, PHP binds the client_id to a uid" flow
//! (`CHAT_ANONYMOUS_CONNECT=true`), against real servers: redis-server, two chat-sidecar nodes,
//! php with the built extension and the GatewayClient facade, WebSocket and SSE clients.
//!
//! An anonymous connection gets a welcome with its client id and no user, receives what is
//! addressed to it by client id, can send nothing, and sees nothing of any user; once PHP
//! binds it (`Gateway::bindUid`, from any node) it is that user's session, and `bindUid`
//! returns only then, so a send to the user right after it is delivered.

use chat_e2e::{eventually, gateway_prelude, gw, Client, Php, Redis, Sidecar, Sse};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;


/// Runs statements with the facade loaded; returns (exited 0, stdout + stderr).
async fn gw_try(php: &Php, code: &str) -> (bool, String) {
    let (ok, out, err) = php.try_run(&format!("{} {code}", gateway_prelude())).await;
    (ok, out + &err)
}

const ANONYMOUS: (&str, &str) = ("CHAT_ANONYMOUS_CONNECT", "true");

/// Connects without a token and returns the client and its client id from the welcome.
async fn anonymous(node: &Sidecar) -> (Client, String) {
    let mut c = Client::connect(&node.ws_url("device=kiosk")).await;
    let w = c.recv().await;
    assert_eq!((&w["type"], &w["uid"], &w["cursors"]), (&json!("welcome"), &Value::Null, &json!({})), "{w}");
    (c, w["conn"].as_str().unwrap().to_owned())
}

/// Frames until `n` have been collected that are not presence/membership notices.
async fn frames(c: &mut Client, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = c.recv().await;
        if !matches!(f["type"].as_str(), Some("member" | "presence")) {
            out.push(f);
        }
    }
    out
}

#[tokio::test]
async fn php_binds_an_anonymous_connection_on_any_node() {
    let redis = Redis::start();
    let a = Sidecar::start_with(&redis, &[("CHAT_NODE_ID", "na"), ANONYMOUS]);
    let b = Sidecar::start_with(&redis, &[("CHAT_NODE_ID", "nb"), ANONYMOUS]);
    let php = Php::new(&redis);

    let (mut anon, cid) = anonymous(&a).await;
    assert!(cid.starts_with("na-"), "{cid}");
    let (mut bob, _) = Client::login(&b, &php, "bob").await;

    // -- before binding: a live connection of nobody
    assert_eq!(gw(&php, &format!("[Gateway::isOnline({cid:?}), Gateway::getUidByClientId({cid:?})]")).await, json!([1, null]));
    assert_eq!(gw(&php, "Gateway::getAllClientIdCount()").await, 2);
    assert_eq!(gw(&php, "Gateway::isUidOnline('dave')").await, 0, "an anonymous connection is nobody's presence");
    assert_eq!(gw(&php, &format!("Gateway::sendToClient({cid:?}, ['hi' => 1])")).await, true);
    assert_eq!(anon.recv().await, json!({"type": "event", "data": {"hi": 1}}));
    assert_eq!(gw(&php, &format!("Gateway::setSession({cid:?}, ['cart' => 3])")).await, true);

    // It can ping, and nothing else: every other frame would act as a user.
    anon.send_text(r#"{"type":"ping","ref":1}"#).await;
    assert_eq!(anon.recv().await, json!({"type": "pong", "ref": 1}));
    for frame in [
        r#"{"type":"send","to":"bob","data":"x","ref":"r1"}"#,
        r#"{"type":"typing","to":"bob"}"#,
        r#"{"type":"read","conv":"u:dave","seq":1}"#,
        r#"{"type":"ack","conv":"u:dave","seq":1}"#,
    ] {
        anon.send_text(frame).await;
        let e = anon.recv().await;
        assert_eq!(e["code"], "forbidden", "{frame}: {e}");
        assert!(e["message"].as_str().unwrap().contains("not bound"), "{e}");
    }

    // dave's inbox and group get messages the anonymous connection must not see.
    php.run("chat_join_group('dave', 'room'); chat_push('dave', 'early'); chat_send_to_group('room', 'g-early');").await;
    gw(&php, "Gateway::sendToUid('dave', '{\"raw\":0}', true)").await;
    gw(&php, &format!("Gateway::sendToClient({cid:?}, 'marker')")).await;
    assert_eq!(anon.recv().await, json!({"type": "event", "data": "marker"}), "nothing of dave's before the bind");

    // -- bind, then send at once: bindUid returns once the binding is effective.
    let out = php
        .run(&format!(
            "{} echo json_encode(Gateway::bindUid({cid:?}, 'dave')); Gateway::sendToUid('dave', '{{\"raw\":1}}', true); Gateway::sendToUid('dave', 'stored');",
            gateway_prelude()
        ))
        .await;
    assert_eq!(out, "true");
    let w = anon.recv().await;
    assert_eq!((&w["type"], &w["uid"], &w["conn"]), (&json!("welcome"), &json!("dave"), &json!(cid)), "{w}");
    assert_eq!(w["cursors"], json!({"u:dave": 0, "g:room": 0}), "a new device of dave: from dave's acknowledged positions");
    // The backlog (replayed) and what came after the bind, in any interleaving of the two
    // conversations, each conversation in order.
    let got = frames(&mut anon, 4).await;
    let data: Vec<(&str, &Value)> = got.iter().map(|f| (f["conv"].as_str().unwrap_or("live"), if f["type"] == "message" { &f["data"] } else { f })).collect();
    let of = |conv: &str| data.iter().filter(|(c, _)| *c == conv).map(|(_, d)| (*d).clone()).collect::<Vec<_>>();
    assert_eq!(of("u:dave"), [json!("early"), json!("stored")], "{got:?}");
    assert_eq!(of("g:room"), [json!("g-early")], "{got:?}");
    assert_eq!(of("live"), [json!({"raw": 1})], "the raw send right after bindUid arrived: {got:?}");

    // Now exactly like a token session of dave.
    assert_eq!(
        gw(&php, &format!("[Gateway::getUidByClientId({cid:?}), Gateway::isUidOnline('dave'), Gateway::getClientIdByUid('dave'), Gateway::getSession({cid:?})]")).await,
        json!(["dave", 1, [cid], {"cart": 3}]),
        "the PHP session set before the bind is kept"
    );
    assert_eq!(php.json("chat_user_devices('dave')[0]['device']").await, "kiosk");
    anon.send_text(r#"{"type":"send","to":"bob","data":"hello bob","ref":"r2"}"#).await;
    // The answer, and the copy in dave's own inbox (multi-device sync), in either order.
    let mut got = frames(&mut anon, 2).await;
    got.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!((&got[0]["type"], &got[0]["data"]), (&json!("message"), &json!("hello bob")), "{got:?}");
    assert_eq!((&got[1]["type"], &got[1]["ref"]), (&json!("sent"), &json!("r2")), "{got:?}");
    let m = bob.recv_message().await;
    assert_eq!((&m["from"], &m["data"]), (&json!("dave"), &json!("hello bob")));
    assert_eq!(gw(&php, &format!("Gateway::bindUid({cid:?}, 'dave')")).await, true, "binding again to the same user changes nothing");
    let (ok, shown) = gw_try(&php, &format!("Gateway::bindUid({cid:?}, 'mallory');")).await;
    assert!(!ok && shown.contains("Chat\\ChatException") && shown.contains("cannot change"), "{shown}");

    // -- on the other node: a second anonymous connection, bound to a user with a connection
    // on node a. The bind travels through Redis like everything else.
    let (mut anon2, cid2) = anonymous(&b).await;
    assert!(cid2.starts_with("nb-"), "{cid2}");
    assert_eq!(gw(&php, &format!("Gateway::bindUid({cid2:?}, 'dave')")).await, true);
    let w = anon2.recv().await;
    assert_eq!((&w["type"], &w["uid"]), (&json!("welcome"), &json!("dave")), "{w}");
    gw(&php, "Gateway::sendToUid('dave', '{\"both\":1}', true)").await;
    assert_eq!(frames(&mut anon, 1).await[0], json!({"both": 1}));
    // anon2 starts after what dave's devices acknowledged, so its backlog (if any) comes first.
    loop {
        let f = frames(&mut anon2, 1).await.remove(0);
        if f == json!({"both": 1}) {
            break;
        }
        assert_eq!(f["type"], "message", "only the backlog may come first: {f}");
    }
    assert_eq!(sorted(gw(&php, "Gateway::getClientIdByUid('dave')").await), {
        let mut v = vec![cid.clone(), cid2.clone()];
        v.sort();
        v
    });

    // -- closing an anonymous connection, and binding one that is gone
    let (mut anon3, cid3) = anonymous(&b).await;
    assert_eq!(gw(&php, &format!("Gateway::closeClient({cid3:?}, 'bye')")).await, true);
    assert_eq!(anon3.recv().await, json!({"type": "event", "data": "bye"}));
    assert_eq!(anon3.expect_close().await.0, 4004);
    eventually("the closed anonymous connection leaves the client index", async || {
        (gw(&php, &format!("Gateway::isOnline({cid3:?})")).await == 0).then_some(())
    })
    .await;
    assert_eq!(gw(&php, &format!("Gateway::bindUid({cid3:?}, 'dave')")).await, false);
}

fn sorted(v: Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn anonymous_connections_are_refused_unless_enabled() {
    let redis = Redis::start();
    let node = Sidecar::start(&redis);
    let php = Php::new(&redis);
    // Without a token the first frame must be the token.
    let mut c = Client::connect(&node.ws_url("")).await;
    c.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(c.expect_close().await.0, 4003);
    let mut sse = Sse::open(&node, "", None).await;
    let e = sse.next().await;
    assert_eq!((e.kind.as_str(), &e.data["code"]), ("close", &json!(4003)), "{e:?}");
    assert_eq!(php.json("chat_client_count()").await, 0);
}

#[tokio::test]
async fn sse_binds_long_poll_needs_a_token_and_unbound_connections_can_time_out() {
    let redis = Redis::start();
    let node = Sidecar::start_with(&redis, &[ANONYMOUS, ("CHAT_ANONYMOUS_TIMEOUT_MS", "3000")]);
    let php = Php::new(&redis);

    let mut sse = Sse::open(&node, "device=web", None).await;
    let w = sse.next().await.data;
    assert_eq!((&w["type"], &w["uid"]), (&json!("welcome"), &Value::Null), "{w}");
    let cid = w["conn"].as_str().unwrap().to_owned();
    assert_eq!(gw(&php, &format!("Gateway::sendToClient({cid:?}, 'to-sse')")).await, true);
    assert_eq!(sse.next().await.data, json!({"type": "event", "data": "to-sse"}));
    assert_eq!(gw(&php, &format!("Gateway::bindUid({cid:?}, 'erin')")).await, true);
    let w = sse.next().await.data;
    assert_eq!((&w["type"], &w["uid"]), (&json!("welcome"), &json!("erin")), "{w}");
    php.push("erin", r#"{"n":1}"#, None).await;
    assert_eq!(sse.next().await.data["data"], json!({"n": 1}));
    assert_eq!(php.json("chat_user_devices('erin')[0]['transport']").await, "sse");

    // Long-polling keeps its session between requests by client id: token only.
    let mut s = TcpStream::connect(&node.addr).await.unwrap();
    s.write_all(b"GET /poll HTTP/1.0\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut answer).await.unwrap();
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["close"]["code"], 4003, "{body}");

    // Never bound: closed after CHAT_ANONYMOUS_TIMEOUT_MS. The bound SSE session above outlived it.
    let (mut idle, idle_id) = anonymous(&node).await;
    let (code, reason) = idle.expect_close().await;
    assert_eq!(code, 4003, "{reason}");
    assert!(reason.contains("not bound"), "{reason}");
    eventually("the timed-out connection leaves the client index", async || {
        (gw(&php, &format!("Gateway::isOnline({idle_id:?})")).await == 0).then_some(())
    })
    .await;
    php.push("erin", r#"{"n":2}"#, None).await;
    assert_eq!(sse.next().await.data["data"], json!({"n": 2}));
}


#[tokio::test]
async fn client_ids_are_short_and_no_neighbour_of_one_is_another_connection() {
    use chat_protocol::live::{client_id, split_client_id};
    let redis = Redis::start();
    let node = Sidecar::start_with(&redis, &[ANONYMOUS]);
    let php = Php::new(&redis);
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (c, id) = anonymous(&node).await;
        held.push(c);
        ids.push(id);
    }
    // What an attacker who saw some ids would try: the numbers next to them, as a counter
    // would have handed out.
    let mut guesses = Vec::new();
    for id in &ids {
        let (node_id, n) = split_client_id(id).unwrap_or_else(|| panic!("{id} is <node>-<base 36>"));
        assert!(id.len() - node_id.len() - 1 <= 13, "{id}: at most 13 digits");
        guesses.extend([n.wrapping_sub(1), n.wrapping_add(1), n.wrapping_add(2)].map(|g| client_id(node_id, g)));
    }
    let lookup = |list: &[String]| format!("array_map(fn ($id) => chat_client($id) !== null, json_decode({:?}))", json!(list).to_string());
    assert_eq!(php.json(&lookup(&ids)).await, json!(vec![true; ids.len()]), "every id is live and addressable");
    assert_eq!(php.json(&lookup(&guesses)).await, json!(vec![false; guesses.len()]), "no neighbour of an id is a connection");
    // The ids spread over the whole range rather than counting up from where the node started.
    let mut numbers: Vec<u64> = ids.iter().map(|id| split_client_id(id).unwrap().1).collect();
    numbers.sort_unstable();
    assert!(numbers.windows(2).all(|w| w[1] - w[0] > 1 << 20), "{ids:?}");
    assert!(numbers[numbers.len() - 1] > 1 << 50, "{ids:?}");
}
