//! The GatewayClient facade (`php-examples/gateway-client`, class `GatewayClient\Gateway`)
//! against real servers: redis-server, two chat-sidecar nodes, php with the built extension,
//! WebSocket clients. Every public method of GatewayClient 3.1's `Gateway` is called and its
//! result checked against what the clients see, including delivery to one connection of a
//! user on another node, exclusions, raw (GatewayWorker-style) frames, sessions and closing.

use chat_e2e::{eventually, gateway_prelude, gw, Client, Php, Redis, Sidecar};
use serde_json::{json, Value};


/// Runs statements with the facade loaded.
async fn gw_do(php: &Php, code: &str) {
    php.run(&format!("{} {code}", gateway_prelude())).await;
}

/// The next frame an app would act on (membership and presence notices skipped).
async fn next(c: &mut Client) -> Value {
    loop {
        let f = c.recv().await;
        if !matches!(f["type"].as_str(), Some("member" | "presence")) {
            return f;
        }
    }
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        other => panic!("not a list or map: {other}"),
    };
    out.sort();
    out
}

/// `{id: id, …}`, as GatewayClient's *List methods return.
fn id_map(ids: &[&str]) -> Value {
    Value::Object(ids.iter().map(|i| (i.to_string(), json!(i))).collect())
}

#[tokio::test]
async fn every_gateway_method_against_two_nodes() {
    let redis = Redis::start();
    let a = Sidecar::start_with(&redis, &[("CHAT_NODE_ID", "na")]);
    let b = Sidecar::start_with(&redis, &[("CHAT_NODE_ID", "nb")]);
    let php = Php::new(&redis);

    // alice on both nodes, bob on a, carol on b.
    let (mut a1, w) = Client::login(&a, &php, "alice").await;
    let c1 = w["conn"].as_str().unwrap().to_owned();
    let (mut a2, w) = Client::login(&b, &php, "alice").await;
    let c2 = w["conn"].as_str().unwrap().to_owned();
    let (mut bob, w) = Client::login(&a, &php, "bob").await;
    let c3 = w["conn"].as_str().unwrap().to_owned();
    let (mut carol, w) = Client::login(&b, &php, "carol").await;
    let c4 = w["conn"].as_str().unwrap().to_owned();
    assert!(c1.starts_with("na-") && c2.starts_with("nb-") && c3.starts_with("na-"), "{c1} {c2} {c3}");

    // Static settings existing code sets are accepted.
    gw_do(&php, "Gateway::$registerAddress = ['10.0.0.1:1236']; Gateway::$secretKey = 's'; Gateway::$connectTimeout = 1; Gateway::$persistentConnection = true;").await;

    // -- online state and lookups
    assert_eq!(gw(&php, &format!("Gateway::isOnline({c1:?})")).await, 1);
    assert_eq!(gw(&php, "Gateway::isOnline('na-999')").await, 0);
    assert_eq!(gw(&php, "Gateway::isOnline('7f00000108fc00000008')").await, 0, "a GatewayWorker-style id is just not online");
    assert_eq!(gw(&php, &format!("Gateway::getUidByClientId({c3:?})")).await, "bob");
    assert_eq!(gw(&php, "Gateway::getUidByClientId('na-999')").await, Value::Null);
    assert_eq!(sorted(&gw(&php, "Gateway::getClientIdByUid('alice')").await), {
        let mut v = vec![c1.clone(), c2.clone()];
        v.sort();
        v
    });
    assert_eq!(gw(&php, "Gateway::getClientIdByUid('nobody')").await, json!([]));
    assert_eq!(gw(&php, "Gateway::isUidOnline('alice')").await, 1);
    assert_eq!(gw(&php, "Gateway::isUidOnline('nobody')").await, 0);
    let batch = gw(&php, "Gateway::batchGetClientIdByUid(['alice', 'nobody', 'bob'])").await;
    assert_eq!(sorted(&batch["alice"]).len(), 2);
    assert_eq!((&batch["nobody"], &batch["bob"]), (&json!([]), &json!([c3])));
    assert_eq!(gw(&php, "Gateway::isUidsOnline(['alice', 'nobody'])").await, json!({"alice": 1, "nobody": 0}));
    let all = id_map(&[&c1, &c2, &c3, &c4]);
    assert_eq!(gw(&php, "Gateway::getAllClientIdList()").await, all);
    assert_eq!(gw(&php, "Gateway::getAllClientIdCount()").await, 4);
    assert_eq!(gw(&php, "Gateway::getAllClientCount()").await, 4);
    assert_eq!(gw(&php, "Gateway::getAllUidList()").await, json!({"alice": "alice", "bob": "bob", "carol": "carol"}));
    assert_eq!(gw(&php, "Gateway::getAllUidCount()").await, 3);

    // -- groups: joining by client id puts the connection's user in the group
    assert_eq!(gw(&php, &format!("Gateway::joinGroup({c1:?}, 'room')")).await, true);
    assert_eq!(gw(&php, &format!("Gateway::joinGroup({c4:?}, 'room')")).await, true);
    assert_eq!(gw(&php, &format!("Gateway::joinGroup({c3:?}, 'ops')")).await, true);
    assert_eq!(gw(&php, "Gateway::joinGroup('na-999', 'room')").await, false);
    assert_eq!(gw(&php, "Gateway::getClientIdListByGroup('room')").await, id_map(&[&c1, &c2, &c4]), "alice's other connection is in too");
    assert_eq!(gw(&php, "Gateway::getClientIdListByGroup(['room', 'ops'])").await, all);
    assert_eq!(gw(&php, "Gateway::getClientIdCountByGroup('room')").await, 3);
    assert_eq!(gw(&php, "Gateway::getClientCountByGroup('room')").await, 3);
    assert_eq!(gw(&php, "Gateway::getClientIdCountByGroup()").await, 4, "'' counts every connection");
    assert_eq!(gw(&php, "Gateway::batchGetClientIdCountByGroup(['room', 'ops', 'empty'])").await, json!({"room": 3, "ops": 1, "empty": 0}));
    assert_eq!(gw(&php, "Gateway::getUidListByGroup('room')").await, json!({"alice": "alice", "carol": "carol"}));
    assert_eq!(gw(&php, "Gateway::getUidCountByGroup('room')").await, 2);
    assert_eq!(gw(&php, "Gateway::getAllGroupIdList()").await, json!({"ops": "ops", "room": "room"}));
    assert_eq!(gw(&php, "Gateway::getAllGroupUidCount()").await, json!({"ops": 1, "room": 2}));
    assert_eq!(gw(&php, "Gateway::getAllGroupUidList()").await, json!({"ops": {"bob": "bob"}, "room": {"alice": "alice", "carol": "carol"}}));
    assert_eq!(gw(&php, "Gateway::getAllGroupClientIdList()").await, json!({"ops": id_map(&[&c3]), "room": id_map(&[&c1, &c2, &c4])}));
    assert_eq!(gw(&php, "Gateway::getAllGroupClientIdCount()").await, json!({"ops": 1, "room": 3}));

    // -- sending. A frame a client must not get is proven absent by the marker that follows it.
    let marker = |php: &Php| {
        let php = Php { redis_url: php.redis_url.clone(), ini: php.ini.clone() };
        async move { gw_do(&php, "Gateway::sendToAll(['marker' => true]);").await }
    };
    let is_marker = |f: &Value| f == &json!({"type": "event", "data": {"marker": true}});

    assert_eq!(gw(&php, &format!("Gateway::sendToClient({c2:?}, ['hi' => 1])")).await, true);
    assert_eq!(next(&mut a2).await, json!({"type": "event", "data": {"hi": 1}}), "to one connection, on the other node");
    assert_eq!(gw(&php, &format!("Gateway::sendToClient({c2:?}, '{{\"legacy\":true}}', true)")).await, true);
    assert_eq!(next(&mut a2).await, json!({"legacy": true}), "raw: the frame is the message itself");
    assert_eq!(gw(&php, "Gateway::sendToClient('na-999', 'x')").await, false);
    marker(&php).await;
    for c in [&mut a1, &mut bob, &mut carol, &mut a2] {
        assert!(is_marker(&next(c).await), "only c2 got the sendToClient frames");
    }

    gw_do(&php, "Gateway::sendToUid('bob', 'stored');").await;
    let m = next(&mut bob).await;
    assert_eq!((m["type"].as_str(), m["conv"].as_str(), &m["data"]), (Some("message"), Some("u:bob"), &json!("stored")));
    gw_do(&php, "Gateway::sendToUid(['alice', 'carol'], '{\"x\":1}', true);").await;
    for c in [&mut a1, &mut a2, &mut carol] {
        assert_eq!(next(c).await, json!({"x": 1}));
    }

    gw_do(&php, "Gateway::sendToGroup('room', 'g1');").await;
    for c in [&mut a1, &mut a2, &mut carol] {
        let m = next(c).await;
        assert_eq!((m["type"].as_str(), m["conv"].as_str(), &m["data"]), (Some("message"), Some("g:room"), &json!("g1")));
    }
    gw_do(&php, &format!("Gateway::sendToGroup('room', '{{\"y\":1}}', {c1:?}, true);")).await;
    for c in [&mut a2, &mut carol] {
        assert_eq!(next(c).await, json!({"y": 1}));
    }
    assert_eq!(gw(&php, "Gateway::sendToGroup('', 'x')").await, false);
    marker(&php).await;
    assert!(is_marker(&next(&mut a1).await), "c1 was excluded");
    assert!(is_marker(&next(&mut bob).await), "bob is not in room");
    for c in [&mut a2, &mut carol] {
        assert!(is_marker(&next(c).await));
    }

    gw_do(&php, "Gateway::sendToAll('all1');").await;
    for c in [&mut a1, &mut a2, &mut bob, &mut carol] {
        assert_eq!(next(c).await, json!({"type": "event", "data": "all1"}));
    }
    gw_do(&php, &format!("Gateway::sendToAll('{{\"z\":1}}', [{c1:?}, {c4:?}], null, true);")).await;
    gw_do(&php, &format!("Gateway::sendToAll('ex', null, [{c3:?}]);")).await;
    gw_do(&php, "Gateway::sendToAll('nobody', []);").await;
    assert_eq!(next(&mut a1).await, json!({"z": 1}));
    assert_eq!(next(&mut carol).await, json!({"z": 1}));
    for c in [&mut a1, &mut a2, &mut carol] {
        assert_eq!(next(c).await, json!({"type": "event", "data": "ex"}));
    }
    gw_do(&php, &format!("Gateway::$verbatimFrames = true; Gateway::sendToClient({c3:?}, '{{\"v\":1}}');")).await;
    assert_eq!(next(&mut bob).await, json!({"v": 1}), "bob got neither the list send nor the one excluding him");
    marker(&php).await;
    for c in [&mut a1, &mut a2, &mut bob, &mut carol] {
        assert!(is_marker(&next(c).await), "nobody got sendToAll(.., [])");
    }
    let (ok, out, err) = php.try_run(&format!("{} Gateway::sendToClient({c3:?}, 'not json', true);", gateway_prelude())).await;
    let shown = out + &err; // php -r prints an uncaught exception on stdout
    assert!(!ok && shown.contains("Chat\\InvalidArgumentException") && shown.contains("JSON"), "{shown}");

    // -- sessions
    assert_eq!(gw(&php, &format!("Gateway::setSession({c1:?}, ['a' => 1, 'n' => ['x' => 1]])")).await, true);
    assert_eq!(gw(&php, &format!("Gateway::getSession({c1:?})")).await, json!({"a": 1, "n": {"x": 1}}));
    assert_eq!(gw(&php, &format!("Gateway::updateSession({c1:?}, ['n' => ['y' => 2], 'b' => 2.5])")).await, true);
    assert_eq!(gw(&php, &format!("Gateway::getSession({c1:?})")).await, json!({"a": 1, "n": {"x": 1, "y": 2}, "b": 2.5}), "merged recursively");
    assert_eq!(gw(&php, &format!("Gateway::updateSession({c4:?}, ['fresh' => true])")).await, true);
    assert_eq!(gw(&php, &format!("Gateway::getSession({c2:?})")).await, json!([]), "live, no session");
    assert_eq!(gw(&php, "Gateway::getSession('na-999')").await, Value::Null, "not live");
    assert_eq!(gw(&php, "Gateway::getSession('not a client id')").await, false);
    assert_eq!(gw(&php, "Gateway::setSession('na-999', ['a' => 1])").await, false);
    let sessions = gw(&php, "Gateway::getAllClientSessions()").await;
    assert_eq!(sessions[c1.as_str()], json!({"a": 1, "n": {"x": 1, "y": 2}, "b": 2.5}));
    assert_eq!((&sessions[c2.as_str()], &sessions[c3.as_str()], &sessions[c4.as_str()]), (&json!([]), &json!([]), &json!({"fresh": true})));
    assert_eq!(sorted(&gw(&php, "Gateway::getAllClientSessions('room')").await), sorted(&id_map(&[&c1, &c2, &c4])));
    assert_eq!(gw(&php, "Gateway::getClientSessionsByGroup('ops')").await, json!({c3.as_str(): []}));
    // Concurrent updates of one session lose nothing (compare-and-set, with backoff: without
    // it, eight workers starved one or two of them through every attempt in most runs).
    php.run(&format!(
        "{} $pids = []; for ($i = 0; $i < 8; $i++) {{ $pid = pcntl_fork(); if ($pid === 0) {{ for ($j = 0; $j < 25; $j++) {{ Gateway::updateSession({c2:?}, [\"k$i-$j\" => $j]); }} exit(0); }} $pids[] = $pid; }} foreach ($pids as $p) {{ pcntl_waitpid($p, $st); }}",
        gateway_prelude()
    ))
    .await;
    assert_eq!(gw(&php, &format!("count(Gateway::getSession({c2:?}))")).await, 200);

    // -- binding: token-authenticated connections already belong to their user
    assert_eq!(gw(&php, &format!("Gateway::bindUid({c1:?}, 'alice')")).await, true);
    assert_eq!(gw(&php, "Gateway::bindUid('na-999', 'alice')").await, false);
    let (ok, out, err) = php.try_run(&format!("{} Gateway::bindUid({c1:?}, 'mallory');", gateway_prelude())).await;
    let shown = out + &err;
    assert!(!ok && shown.contains("Chat\\ChatException") && shown.contains("cannot change"), "{shown}");

    // -- leaving and dissolving groups
    assert_eq!(gw(&php, &format!("Gateway::leaveGroup({c4:?}, 'room')")).await, true);
    assert_eq!(gw(&php, "Gateway::getUidListByGroup('room')").await, json!({"alice": "alice"}));
    assert_eq!(gw(&php, "Gateway::leaveGroup('na-999', 'room')").await, false);
    gw_do(&php, "Gateway::ungroup('ops');").await;
    assert_eq!(gw(&php, "Gateway::getAllGroupIdList()").await, json!({"room": "room"}));
    assert_eq!(php.json("chat_group_members('ops')").await, json!([]));

    // -- closing
    assert_eq!(gw(&php, &format!("Gateway::closeClient({c3:?}, 'bye')")).await, true);
    assert_eq!(next(&mut bob).await, json!({"type": "event", "data": "bye"}), "the message comes before the close");
    assert_eq!(bob.expect_close().await.0, 4004);
    eventually("bob's connection gone from every view", async || {
        let online = gw(&php, &format!("[Gateway::isOnline({c3:?}), Gateway::getSession({c3:?}), Gateway::getAllClientIdCount()]")).await;
        (online == json!([0, null, 3])).then_some(())
    })
    .await;
    assert_eq!(redis.cmd(&["EXISTS", &format!("chat:session:{c3}"), &format!("chat:client:{c3}")]).as_deref(), Some("0"));
    assert_eq!(gw(&php, &format!("Gateway::closeClient({c3:?})")).await, false, "no longer live");
    assert_eq!(gw(&php, &format!("Gateway::unbindUid({c4:?}, 'alice')")).await, false, "not alice's connection");
    assert_eq!(gw(&php, &format!("Gateway::unbindUid({c4:?}, 'carol')")).await, true);
    assert_eq!(carol.expect_close().await, (4004, "unbound".to_owned()));
    assert_eq!(gw(&php, &format!("Gateway::destoryClient({c2:?})")).await, true);
    assert_eq!(a2.expect_close().await.0, 4004);
    assert!(is_marker(&{ marker(&php).await; next(&mut a1).await }), "closing c2 left alice's c1 open");
}
