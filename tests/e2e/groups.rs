//! Groups and rooms: membership managed by PHP, durable sequenced group messages, membership
//! enforced on live connections, online members, typing, WebRTC signalling, broadcast.

use chat_e2e::{eventually, url_encode, Client, Php, Redis, Sidecar};
use serde_json::json;

/// Tokens for `uids`, minted by one php process.
async fn tokens(php: &Php, uids: &[String]) -> Vec<String> {
    let list = serde_json::to_string(uids).unwrap();
    let out = php.run(&format!("foreach (json_decode({list:?}) as $u) {{ echo chat_token($u), \"\\n\"; }}")).await;
    out.lines().map(str::to_owned).collect()
}

async fn connect_as(sidecar: &Sidecar, token: &str) -> Client {
    let mut c = Client::connect(&sidecar.ws_url(&format!("token={}", url_encode(token)))).await;
    assert_eq!(c.recv().await["type"], "welcome");
    c
}

#[tokio::test]
async fn a_group_of_200_gets_each_message_once_and_membership_is_enforced() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let members: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    php.run(r#"for ($i = 0; $i < 200; $i++) { chat_join_group("m$i", "town-hall"); }"#).await;
    assert_eq!(php.json(r#"count(chat_group_members("town-hall"))"#).await, 200);
    assert_eq!(php.json(r#"chat_join_group("m0", "town-hall")"#).await, false, "joining twice is a no-op");

    // 190 members online, 10 offline.
    let toks = tokens(&php, &members).await;
    let mut online = Vec::new();
    for t in &toks[..190] {
        online.push(connect_as(&sidecar, t).await);
    }
    assert_eq!(php.json(r#"chat_online_count("town-hall")"#).await, 190);

    let id = php.run(r#"echo chat_send_to_group("town-hall", ["text" => "meeting at 3"], ["from" => "m0"]);"#).await;
    for c in online.iter_mut() {
        let m = c.recv_message().await;
        assert_eq!((m["id"].as_str(), m["conv"].as_str(), m["seq"].as_u64()), (Some(id.as_str()), Some("g:town-hall"), Some(1)));
    }

    // An offline member gets it on connect.
    let mut late = connect_as(&sidecar, &toks[195]).await;
    assert_eq!(late.recv_message().await["id"], id.as_str());

    // A non-member's send is refused; a member's is accepted and reaches the others.
    let outsider_token = tokens(&php, &["outsider".to_owned()]).await.remove(0);
    let mut outsider = connect_as(&sidecar, &outsider_token).await;
    outsider.send_text(r#"{"type":"send","group":"town-hall","data":{"text":"let me in"},"ref":1}"#).await;
    let e = outsider.recv_type("error").await;
    assert_eq!((e["code"].as_str(), e["ref"].as_u64()), (Some("forbidden"), Some(1)));

    online[1].send_text(r#"{"type":"send","group":"town-hall","data":{"text":"from m1"},"ref":"x"}"#).await;
    let sent = online[1].recv_type("sent").await;
    assert_eq!((sent["conv"].as_str(), sent["seq"].as_u64()), (Some("g:town-hall"), Some(2)));
    for c in online.iter_mut().take(10) {
        let m = c.recv_message().await;
        assert_eq!((m["seq"].as_u64(), m["from"].as_str()), (Some(2), Some("m1")));
    }

    // A removed member stops receiving at once.
    assert_eq!(php.json(r#"chat_leave_group("m5", "town-hall")"#).await, true);
    let mut removed = online.remove(5); // m5 has received seq 1 and 2 above
    php.run(r#"chat_send_to_group("town-hall", ["text" => "after m5 left"]);"#).await;
    let direct = php.push("m5", r#"{"marker":true}"#, None).await;
    // Redis delivers in publish order: had the group message reached m5, it would come first.
    let next = removed.recv_message().await;
    assert_eq!(next["id"], direct.as_str(), "m5 got {next}");
    assert_eq!(online[0].recv_message().await["seq"], 3, "others still receive");
}

#[tokio::test]
async fn online_members_follow_connects_disconnects_and_node_crashes() {
    let redis = Redis::start();
    let one = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_TTL_MS", "3000")]);
    let mut two = Sidecar::start_with(&redis, &[("CHAT_PRESENCE_TTL_MS", "3000")]);
    let php = Php::new(&redis);
    php.run(r#"foreach (["ann", "ben", "cid", "dee"] as $u) { chat_join_group($u, "ops"); }"#).await;
    let t = tokens(&php, &["ann", "ben", "cid", "eve"].map(String::from)).await;
    let ann = connect_as(&one, &t[0]).await;
    let _ben = connect_as(&one, &t[1]).await;
    let _cid = connect_as(&two, &t[2]).await;
    let _eve = connect_as(&one, &t[3]).await; // online, but not a member
    assert_eq!(php.json(r#"chat_online_users("ops")"#).await, json!(["ann", "ben", "cid"]));
    assert_eq!(php.json(r#"chat_online_users()"#).await, json!(["ann", "ben", "cid", "eve"]));
    assert_eq!(php.json(r#"chat_online_count("ops")"#).await, 3);

    ann.close().await;
    assert_eq!(php.json(r#"chat_online_users("ops")"#).await, json!(["ben", "cid"]));

    two.kill9();
    eventually("cid's presence to expire with her node", async || {
        (php.json(r#"chat_online_users("ops")"#).await == json!(["ben"])).then_some(())
    })
    .await;
    assert_eq!(php.json(r#"chat_online_count("ops")"#).await, 1);
}

#[tokio::test]
async fn members_see_membership_events_in_order_and_typing() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("host", "class");"#).await;
    let t = tokens(&php, &["host", "pupil"].map(String::from)).await;
    let mut host = connect_as(&sidecar, &t[0]).await;
    php.run(r#"chat_join_group("pupil", "class"); chat_join_group("late", "class"); chat_leave_group("late", "class");"#).await;
    for (uid, event) in [("pupil", "join"), ("late", "join"), ("late", "leave")] {
        let e = host.recv_type("member").await;
        assert_eq!((e["group"].as_str(), e["uid"].as_str(), e["event"].as_str()), (Some("class"), Some(uid), Some(event)));
    }

    // pupil joined before connecting: typing reaches the host, not stored.
    let mut pupil = connect_as(&sidecar, &t[1]).await;
    pupil.send_text(r#"{"type":"typing","group":"class"}"#).await;
    let typing = host.recv_type("typing").await;
    assert_eq!((typing["from"].as_str(), typing["group"].as_str()), (Some("pupil"), Some("class")));
    pupil.send_text(r#"{"type":"typing","group":"staff-room"}"#).await;
    assert_eq!(pupil.recv_type("error").await["code"], "forbidden");
    assert_eq!(redis.cmd(&["EXISTS", "chat:{g:class}:stream"]).unwrap(), "0", "typing is never stored");
}

#[tokio::test]
async fn a_group_joined_while_connected_is_received_at_once() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"chat_send_to_group("news", ["old" => true]);"#).await;
    let t = tokens(&php, &["fay".to_owned()]).await;
    let mut fay = connect_as(&sidecar, &t[0]).await;
    php.run(r#"chat_join_group("fay", "news");"#).await;
    // Membership takes effect on the live connection without a reconnect. Even if this send
    // overtakes the session's new subscription, the session starts the group at the join
    // point and reads the stream, so the message is never missed.
    let id = php.run(r#"echo chat_send_to_group("news", ["new" => true]);"#).await;
    let m = fay.recv_message().await;
    assert_eq!((m["id"].as_str(), m["seq"].as_u64()), (Some(id.as_str()), Some(2)), "the pre-join message is not hers");
}

#[tokio::test]
async fn webrtc_signalling_is_relayed_between_room_members_only() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("ada", "call-7"); chat_join_group("bo", "call-7");"#).await;
    let t = tokens(&php, &["ada", "bo", "cy"].map(String::from)).await;
    let mut ada = connect_as(&sidecar, &t[0]).await;
    let mut bo = connect_as(&sidecar, &t[1]).await;
    let mut cy = connect_as(&sidecar, &t[2]).await;

    ada.send_text(r#"{"type":"signal","group":"call-7","to":"bo","data":{"sdp":"v=0 offer","kind":"offer"}}"#).await;
    let s = bo.recv_type("signal").await;
    assert_eq!((s["from"].as_str(), s["group"].as_str()), (Some("ada"), Some("call-7")));
    assert_eq!(s["data"], json!({"sdp": "v=0 offer", "kind": "offer"}));
    bo.send_text(r#"{"type":"signal","group":"call-7","to":"ada","data":{"kind":"answer"}}"#).await;
    assert_eq!(ada.recv_type("signal").await["data"]["kind"], "answer");

    ada.send_text(r#"{"type":"signal","group":"call-7","to":"cy","data":{}}"#).await;
    assert_eq!(ada.recv_type("error").await["code"], "forbidden", "cy is not in the room");
    cy.send_text(r#"{"type":"signal","group":"call-7","to":"ada","data":{}}"#).await;
    assert_eq!(cy.recv_type("error").await["code"], "forbidden", "nor can cy signal into it");
}

#[tokio::test]
async fn broadcast_reaches_every_connected_client() {
    let redis = Redis::start();
    let one = Sidecar::start(&redis);
    let two = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let t = tokens(&php, &["u1", "u2", "u3"].map(String::from)).await;
    let mut clients = vec![connect_as(&one, &t[0]).await, connect_as(&two, &t[1]).await, connect_as(&two, &t[2]).await];
    assert_eq!(php.json(r#"chat_broadcast(["notice" => "maintenance at 2am"])"#).await, 3);
    for c in clients.iter_mut() {
        let b = c.recv_type("broadcast").await;
        assert_eq!(b["data"]["notice"], "maintenance at 2am");
    }
}

#[tokio::test]
async fn a_new_device_starts_a_group_after_what_the_users_other_devices_received() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("gil", "crew"); for ($i = 1; $i <= 3; $i++) { chat_send_to_group("crew", ["i" => $i]); }"#).await;

    // Delivered counts as acknowledged; a closing connection writes its acknowledgements.
    let (mut laptop, welcome) = Client::login(&sidecar, &php, "gil").await;
    assert_eq!(welcome["cursors"]["g:crew"], 0, "starts at the join point");
    for i in 1..=3u64 {
        assert_eq!(laptop.recv_message().await["seq"], i);
    }
    laptop.close().await;
    assert_eq!(redis.cmd(&["HGET", "chat:{g:crew}:acked", "gil"]).as_deref(), Some("3"), "kept with the group, per member");
    let (mut phone, welcome) = Client::login(&sidecar, &php, "gil").await;
    assert_eq!(welcome["cursors"]["g:crew"], 3, "nothing old again on a new device");

    // While connected, the node writes acknowledgements in batches, never lowering them.
    php.run(r#"chat_send_to_group("crew", ["i" => 4]);"#).await;
    assert_eq!(phone.recv_message().await["seq"], 4);
    eventually("the group's acked position reaches 4", async || {
        (redis.cmd(&["HGET", "chat:{g:crew}:acked", "gil"]).as_deref() == Some("4")).then_some(())
    })
    .await;
    let (mut behind, _) = Client::resume(&sidecar, &php, "gil", Some(&json!({"g:crew": 1})), true).await;
    behind.send_text(r#"{"type":"ack","conv":"g:crew","seq":2}"#).await;
    assert_eq!(behind.recv_message().await["seq"], 2, "its own cursor still rules what it is sent");
    behind.close().await;
    assert_eq!(redis.cmd(&["HGET", "chat:{g:crew}:acked", "gil"]).as_deref(), Some("4"), "an older ack does not lower it");
}

#[tokio::test]
async fn acknowledgements_are_written_after_redis_lost_its_scripts() {
    // The node writes acknowledgements as pipelines of EVALSHA calls; after a Redis restart or
    // SCRIPT FLUSH those fail with NOSCRIPT, and the node must load the script again.
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"chat_join_group("hal", "deck");"#).await;
    let (mut client, _) = Client::login(&sidecar, &php, "hal").await;
    let acked = || redis.cmd(&["HGET", "chat:{g:deck}:acked", "hal"]);
    php.run(r#"chat_send_to_group("deck", ["i" => 1]);"#).await;
    assert_eq!(client.recv_message().await["seq"], 1);
    eventually("the first acknowledgement", async || (acked().as_deref() == Some("1")).then_some(())).await;
    redis.cmd(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
    php.run(r#"chat_send_to_group("deck", ["i" => 2]);"#).await;
    assert_eq!(client.recv_message().await["seq"], 2);
    eventually("the acknowledgement after SCRIPT FLUSH", async || (acked().as_deref() == Some("2")).then_some(())).await;
}
