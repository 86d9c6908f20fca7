//! No message lost: offline delivery, resume after reconnect (also across kill -9 of the
//! sidecar), history in MySQL through outages, Redis restarts.

use chat_e2e::{eventually, free_port, Client, MariaDb, Php, Redis, Sidecar};
use serde_json::json;

/// Receives `n` messages and checks they are `first..first+n` of `conv`, in order.
async fn expect_sequence(c: &mut Client, conv: &str, first: u64, n: u64) {
    for seq in first..first + n {
        let m = c.recv_message().await;
        assert_eq!((m["conv"].as_str(), m["seq"].as_u64()), (Some(conv), Some(seq)), "{m}");
    }
}

#[tokio::test]
async fn a_thousand_messages_to_an_offline_user_arrive_in_order_once() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    php.run(r#"for ($i = 1; $i <= 1000; $i++) { chat_push("olga", ["i" => $i]); }"#).await;

    // A plain client: no cursors, no acks of its own.
    let (mut c, welcome) = Client::login(&sidecar, &php, "olga").await;
    assert_eq!(welcome["cursors"]["u:olga"], 0, "starts after the last acknowledged message");
    for i in 1..=1000u64 {
        let m = c.recv_message().await;
        assert_eq!(m["seq"], i);
        assert_eq!(m["data"]["i"], i);
    }
    // Nothing twice: the next message is the next sequence number.
    php.push("olga", r#"{"after":true}"#, None).await;
    assert_eq!(c.recv_message().await["seq"], 1001);
    c.close().await;

    // Delivered means acknowledged: a new device gets nothing old.
    let (mut phone, welcome) = Client::login(&sidecar, &php, "olga").await;
    assert_eq!(welcome["cursors"]["u:olga"], 1001);
    php.push("olga", r#"{"new":1}"#, None).await;
    assert_eq!(phone.recv_message().await["seq"], 1002);
}

#[tokio::test]
async fn a_client_resumes_from_its_cursor_without_gap_or_overlap() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut c, _) = Client::resume(&sidecar, &php, "rita", None, true).await;
    php.run(r#"for ($i = 1; $i <= 5; $i++) { chat_push("rita", ["i" => $i]); }"#).await;
    expect_sequence(&mut c, "u:rita", 1, 5).await;
    c.close().await;
    php.run(r#"for ($i = 6; $i <= 10; $i++) { chat_push("rita", ["i" => $i]); }"#).await;

    // This device saw up to 5 but acknowledged nothing (ack=client, no ack frames).
    let (mut again, welcome) = Client::resume(&sidecar, &php, "rita", Some(&json!({"u:rita": 5})), true).await;
    assert_eq!(welcome["cursors"]["u:rita"], 5);
    expect_sequence(&mut again, "u:rita", 6, 5).await;
    php.push("rita", r#"{"live":true}"#, None).await;
    assert_eq!(again.recv_message().await["seq"], 11, "live delivery continues right after the replay");

    // Without cursors and without acks, everything is unacknowledged: all 11 again.
    let (mut fresh, welcome) = Client::resume(&sidecar, &php, "rita", None, true).await;
    assert_eq!(welcome["cursors"]["u:rita"], 0);
    expect_sequence(&mut fresh, "u:rita", 1, 11).await;

    // Cursors for someone else's inbox are refused, not honoured.
    let (mut nosy, _) = Client::resume(&sidecar, &php, "mallory", Some(&json!({"u:rita": 0})), false).await;
    let e = nosy.recv_type("error").await;
    assert_eq!(e["code"], "forbidden");
}

#[tokio::test]
async fn ten_thousand_messages_survive_a_kill_9_of_the_sidecar() {
    let redis = Redis::start();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut node = Sidecar::start_with(&redis, &[("CHAT_LISTEN", &listen)]);
    let php = Php::new(&redis);
    let (mut c, _) = Client::resume(&node, &php, "kim", None, true).await;

    let producer = {
        let php = Php::new(&redis);
        tokio::spawn(async move {
            php.run(r#"for ($i = 1; $i <= 10000; $i++) { chat_push("kim", ["i" => $i]); }"#).await;
        })
    };
    let mut last = 0u64;
    let mut got = Vec::with_capacity(10_000);
    while last < 2_000 {
        let m = c.recv_message().await;
        last = m["seq"].as_u64().unwrap();
        got.push(m["data"]["i"].as_u64().unwrap());
    }
    node.kill9();
    // The client notices the connection is gone (no close frame: the process died).
    while let Some(Ok(_)) = futures_util::StreamExt::next(&mut c.ws).await {}

    let node = Sidecar::start_with(&redis, &[("CHAT_LISTEN", &listen)]);
    let (mut c, welcome) = Client::resume(&node, &php, "kim", Some(&json!({ "u:kim": last })), true).await;
    assert_eq!(welcome["cursors"]["u:kim"], last);
    while got.len() < 10_000 {
        let m = c.recv_message().await;
        assert_eq!(m["seq"], last + 1, "no gap, no overlap");
        last += 1;
        got.push(m["data"]["i"].as_u64().unwrap());
    }
    producer.await.unwrap();
    assert_eq!(got, (1..=10_000).collect::<Vec<u64>>());
}

#[tokio::test]
async fn history_older_than_redis_retention_comes_from_mysql() {
    let redis = Redis::start();
    let db = MariaDb::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MYSQL_URL", &db.url())]);
    let php = Php::new(&redis).with_ini("chat.retention=100");
    php.run(r#"for ($i = 1; $i <= 1000; $i++) { chat_push("max", ["i" => $i]); }"#).await;
    let held: u64 = redis.cmd(&["XLEN", "chat:{u:max}:stream"]).unwrap().parse().unwrap();
    assert!(held < 1000, "retention trimmed the stream (holds {held})");

    let (mut c, _) = Client::login(&sidecar, &php, "max").await;
    for i in 1..=1000u64 {
        let m = c.recv_message().await;
        assert_eq!((m["seq"].as_u64(), m["data"]["i"].as_u64()), (Some(i), Some(i)));
    }
    assert!(sidecar.metric("messages_from_mysql_total").await >= 1000 - held);
    let row = db.sql("SELECT COUNT(*), MIN(seq), MAX(seq), MAX(recipient) FROM chat.chat_messages WHERE conv = 'u:max'");
    assert_eq!(row, "1000\t1\t1000\tmax");
}

#[tokio::test]
async fn every_message_reaches_mysql_exactly_once_across_a_mysql_outage() {
    let redis = Redis::start();
    let mut db = MariaDb::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MYSQL_URL", &db.url())]);
    let php = Php::new(&redis);
    php.run(r#"for ($i = 1; $i <= 200; $i++) { chat_push("nina", ["i" => $i], ["from" => "oscar"]); }"#).await;
    eventually("the first 200 messages in MySQL", async || {
        (db.try_sql("SELECT COUNT(*) FROM chat.chat_messages WHERE conv = 'u:nina'")? == "200").then_some(())
    })
    .await;

    db.stop();
    php.run(r#"for ($i = 201; $i <= 500; $i++) { chat_push("nina", ["i" => $i], ["from" => "oscar"]); }"#).await;
    eventually("the writer to notice MySQL is down", async || (sidecar.metric("mysql_errors_total").await > 0).then_some(())).await;
    let pending: u64 = redis.cmd(&["XLEN", "chat:log"]).unwrap().parse().unwrap();
    assert!(pending > 0, "entries wait in the Redis log while MySQL is down");
    db.restart();

    eventually("all 500 messages (and the sender copies) in MySQL", async || {
        let out = db.try_sql("SELECT COUNT(*) FROM chat.chat_messages")?;
        (out == "1000").then_some(())
    })
    .await;
    for conv in ["u:nina", "u:oscar"] {
        let row = db.sql(&format!("SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM chat.chat_messages WHERE conv = '{conv}'"));
        assert_eq!(row, "500\t500\t1\t500", "{conv}");
    }
    // The payload is stored as PHP encoded it.
    assert_eq!(db.sql("SELECT data FROM chat.chat_messages WHERE conv = 'u:nina' AND seq = 321"), r#"{"i":321}"#);
    assert_eq!(redis.cmd(&["XLEN", "chat:log"]).unwrap(), "0", "persisted entries leave the log");
}

/// A MySQL outage longer than the log's bound: the log is never trimmed (which would leave a
/// hole in history); once it holds CHAT_LOG_MAX_BACKLOG entries, pushes are refused with an
/// exception that says so, and every accepted one reaches MySQL when it is back.
#[tokio::test]
async fn pushes_are_refused_rather_than_lost_once_the_log_is_full() {
    let redis = Redis::start();
    let mut db = MariaDb::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MYSQL_URL", &db.url()), ("CHAT_LOG_MAX_BACKLOG", "100")]);
    let php = Php::new(&redis);
    db.stop();
    // Each one-to-one push is two log entries (the recipient's and the sender's copy).
    let out = php
        .run(r#"
            $ok = []; $refused = 0; $why = '';
            for ($i = 1; $i <= 80; $i++) {
                try { chat_push("vera", ["i" => $i], ["from" => "walt"]); $ok[] = $i; }
                catch (Chat\ConnectionException $e) { $refused++; $why = $e->getMessage(); }
            }
            echo json_encode(['ok' => $ok, 'refused' => $refused, 'why' => $why]);
        "#)
        .await;
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["ok"], json!((1..=50).collect::<Vec<u64>>()), "the first 100 log entries are accepted: {out}");
    assert_eq!(out["refused"], 30);
    assert!(out["why"].as_str().unwrap().contains("not yet stored in MySQL"), "{out}");
    assert_eq!(redis.cmd(&["XLEN", "chat:log"]).as_deref(), Some("100"), "nothing trimmed");
    assert!(sidecar.metric("mysql_errors_total").await > 0);

    db.restart();
    eventually("the backlog in MySQL", async || (db.try_sql("SELECT COUNT(*) FROM chat.chat_messages")? == "100").then_some(())).await;
    assert_eq!(db.sql("SELECT COUNT(*), MIN(seq), MAX(seq) FROM chat.chat_messages WHERE conv = 'u:vera'"), "50\t1\t50");
    eventually("the log to drain", async || (redis.cmd(&["XLEN", "chat:log"])? == "0").then_some(())).await;
    php.push("vera", r#"{"i":51}"#, Some("walt")).await;
    eventually("the next push in MySQL", async || (db.try_sql("SELECT MAX(seq) FROM chat.chat_messages WHERE conv = 'u:vera'")? == "51").then_some(())).await;
}

/// A log entry the writer cannot store is set aside in the dead-letter stream, never
/// acknowledged away, and the messages around it are stored.
#[tokio::test]
async fn a_log_entry_that_is_no_envelope_goes_to_the_dead_letter_stream() {
    let redis = Redis::start();
    let db = MariaDb::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MYSQL_URL", &db.url())]);
    let php = Php::new(&redis);
    php.push("xena", r#"{"i":1}"#, None).await;
    redis.cmd(&["XADD", "chat:log", "*", "e", r#"{"type":"message","conv":"u:xena""#]).unwrap();
    php.push("xena", r#"{"i":2}"#, None).await;
    eventually("both messages in MySQL", async || (db.try_sql("SELECT COUNT(*) FROM chat.chat_messages WHERE conv = 'u:xena'")? == "2").then_some(())).await;
    eventually("the bad entry dead-lettered", async || (redis.cmd(&["XLEN", "chat:log:dead"])? == "1").then_some(())).await;
    let dead = redis.cmd(&["XRANGE", "chat:log:dead", "-", "+"]).unwrap();
    assert!(dead.contains("not a message envelope") && dead.contains(r#""conv":"u:xena""#), "{dead}");
    eventually("the log to drain", async || (redis.cmd(&["XLEN", "chat:log"])? == "0").then_some(())).await;
    assert_eq!(sidecar.metric("log_dead_letters_total").await, 1);
}

#[tokio::test]
async fn sidecar_and_extension_reconnect_after_a_redis_restart() {
    let mut redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut c, _) = Client::resume(&sidecar, &php, "paul", None, true).await;
    php.push("paul", r#"{"n":1}"#, None).await;
    assert_eq!(c.recv_message().await["seq"], 1);

    redis.stop();
    // No silent socket: the node closes its connections with 1013 once Redis is gone.
    let started = std::time::Instant::now();
    let (code, _) = c.expect_close().await;
    assert_eq!(code, 1013);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "closed within seconds, not after a heartbeat: {:?}", started.elapsed());
    // New connections are refused at once while Redis is down.
    let token = php.token("paul").await;
    let mut early = Client::connect(&sidecar.ws_url(&format!("token={token}"))).await;
    assert_eq!(early.expect_close().await.0, 1013);
    // One PHP process across the whole outage, as a PHP-FPM worker would be. It marks the
    // first failed call in a file, so Redis comes back only after the worker saw it down.
    let marker = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&marker).unwrap();
    let php_during = Php::new(&redis);
    let code = format!(
        r#"
        $threw = 0; $ok = 0;
        $deadline = microtime(true) + 30;
        while (microtime(true) < $deadline) {{
            try {{ chat_push("paul", ["n" => "x"]); $ok++; if ($threw > 0 && $ok >= 3) break; }}
            catch (Chat\ConnectionException $e) {{
                if ($ok > 0) {{ echo "threw after success\n"; }}
                if ($threw++ === 0) {{ file_put_contents({:?}, "down"); }}
                usleep(20000);
            }}
        }}
        echo "$threw $ok";
    "#,
        marker.display().to_string()
    );
    let worker = tokio::spawn(async move { php_during.run(&code).await });
    eventually("the PHP worker to see Redis down", async || marker.exists().then_some(())).await;
    eventually("the sidecar to report Redis unavailable", async || (sidecar.get("/readyz").await.0 == 503).then_some(())).await;
    redis.restart();
    let out = worker.await.unwrap();
    let (threw, ok) = out.split_once(' ').unwrap();
    assert!(threw.parse::<u32>().unwrap() > 0, "calls during the outage threw: {out}");
    assert_eq!(ok, "3", "calls after the restart succeeded: {out}");
    eventually("the sidecar to be ready again", async || (sidecar.get("/readyz").await.0 == 200).then_some(())).await;

    // The client resumes from its cursor and gets what was pushed after the restart, in order.
    // A restarted Redis has a new replication id, so the conversation went on in a new epoch
    // whose numbers start far above the old ones: nothing was lost (the append-only file kept
    // seq 1), so no reset, and nothing new can be taken for a duplicate.
    let (mut c, welcome) = Client::resume(&sidecar, &php, "paul", Some(&serde_json::json!({"u:paul": 1})), true).await;
    let m = c.recv_message().await;
    assert!(m["seq"].as_u64().unwrap() > 1_000_000, "{m}");
    assert_eq!(m["epoch"].as_u64().unwrap() + 1, m["seq"].as_u64().unwrap(), "the first of its epoch: {m}");
    assert_eq!(welcome["epochs"]["u:paul"], m["epoch"], "the welcome names the epoch");
    let id = php.push("paul", r#"{"n":"after"}"#, None).await;
    let mut last = m;
    while last["id"] != id.as_str() {
        let next = c.recv_message().await;
        assert_eq!(next["seq"], last["seq"].as_u64().unwrap() + 1);
        last = next;
    }
}

#[tokio::test]
async fn a_killed_pubsub_connection_is_reopened_and_nothing_is_missed() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut c, _) = Client::resume(&sidecar, &php, "pia", None, true).await;
    php.push("pia", r#"{"n":1}"#, None).await;
    expect_sequence(&mut c, "u:pia", 1, 1).await;

    // Only the node's pub/sub link drops; messages pushed right after may be published before
    // it has resubscribed, and come from the stream instead.
    assert_eq!(redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).as_deref(), Some("1"));
    for n in 2..=4 {
        php.push("pia", &format!(r#"{{"n":{n}}}"#), None).await;
    }
    expect_sequence(&mut c, "u:pia", 2, 3).await;
    eventually("the node to count the reconnect", async || (sidecar.metric("pubsub_reconnects_total").await == 1).then_some(())).await;
    php.push("pia", r#"{"n":5}"#, None).await;
    expect_sequence(&mut c, "u:pia", 5, 1).await;
}

#[tokio::test]
async fn the_pubsub_connection_authenticates_as_the_url_says() {
    let redis = Redis::start();
    redis.cmd(&["ACL", "SETUSER", "chat", "on", ">s3cret", "~*", "&*", "+@all"]).unwrap();
    let url = format!("redis://chat:s3cret@127.0.0.1:{}", redis.port);
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_REDIS_URL", &url)]);
    let php = Php::new(&redis);
    let (mut c, _) = Client::login(&sidecar, &php, "quinn").await;
    php.push("quinn", r#"{"n":1}"#, None).await;
    expect_sequence(&mut c, "u:quinn", 1, 1).await;
    let links = redis.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]).unwrap();
    assert!(links.contains("user=chat"), "the pub/sub link logged in as `chat`: {links}");
}

/// Sends SIGCONT on drop, so a failing test does not leave a stopped Redis that no one can end.
struct Frozen(String);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        assert!(std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap().success());
        Frozen(pid.to_string())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

#[tokio::test]
async fn a_pubsub_link_that_redis_stopped_answering_is_replaced() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let (mut c, _) = Client::resume(&sidecar, &php, "rhea", None, true).await;
    php.push("rhea", r#"{"n":1}"#, None).await;
    expect_sequence(&mut c, "u:rhea", 1, 1).await;

    // A frozen Redis keeps the socket open: only the unanswered PING can tell (15 s, checked
    // every 5 s, so the node gives up on the link within about 25 s). The client does not wait
    // that long: the node's health check closes it with 1013 within seconds.
    let frozen = Frozen::stop(redis.pid().unwrap());
    assert_eq!(c.expect_close().await.0, 1013);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while sidecar.metric("pubsub_reconnects_total").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the node kept a pub/sub link that did not answer");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(sidecar.logs().contains("did not answer a PING"), "{}", sidecar.logs());
    drop(frozen);
    eventually("the node to be ready again", async || (sidecar.get("/readyz").await.0 == 200).then_some(())).await;
    let (mut c, _) = Client::resume(&sidecar, &php, "rhea", Some(&serde_json::json!({"u:rhea": 1})), true).await;
    php.push("rhea", r#"{"n":2}"#, None).await;
    expect_sequence(&mut c, "u:rhea", 2, 1).await;
}
