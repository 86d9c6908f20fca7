//! Online customer service (php-examples/customer-service) end to end: the real app served by
//! `php -S` (with worker processes, so requests really run at the same time) with the built
//! extension and pdo_mysql, against a real MariaDB, redis-server and sidecar, with WebSocket
//! clients as the visitors' and agents' browsers.
//!
//! Shows: 50 concurrent visitors over 3 online agents each get exactly one agent and the load
//! is even; a transfer moves the conversation and its history; a visitor who writes while no
//! agent is online is answered when one connects; the API's errors.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_e2e::{bin_dir, free_port, url_encode, Client, MariaDb, Php, Redis, Sidecar, PATIENCE, SECRET};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The customer-service app under `php -S`, in its own process group (the server forks workers).
struct App {
    addr: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    /// Starts the app for these services with `CS_AGENTS=agents`; waits until its health
    /// action answers 200 (database reachable, schema created), with a deadline.
    async fn start(redis: &Redis, db: &MariaDb, sidecar: &Sidecar, agents: &str) -> App {
        Self::start_with(redis, db, sidecar, agents, &[]).await
    }

    async fn start_with(redis: &Redis, db: &MariaDb, sidecar: &Sidecar, agents: &str, env: &[(&str, &str)]) -> App {
        let ext = bin_dir().join("libchat.so");
        assert!(ext.exists(), "{} is missing: run `make build` first", ext.display());
        let docroot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../php-examples/customer-service/public");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("php.log");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new("php");
        cmd.arg("-n")
            .args(["-d", &format!("extension={}", ext.display())])
            .args(["-d", &format!("chat.redis_url={}", redis.url())])
            .args(["-d", &format!("chat.jwt_secret={SECRET}")])
            .args(["-d", "extension=pdo", "-d", "extension=mysqlnd", "-d", "extension=pdo_mysql"])
            .args(["-S", &addr, "-t"])
            .arg(&docroot)
            .env("PHP_CLI_SERVER_WORKERS", "8")
            .env("CS_DB_DSN", format!("mysql:host=127.0.0.1;port={};dbname=chat;charset=utf8mb4", db.port))
            .env("CS_DB_USER", "root")
            .env("CHAT_WS_URL", format!("ws://{}/ws", sidecar.addr))
            .env("CS_AGENTS", agents)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("php.err")).unwrap())
            .process_group(0);
        let child = cmd.spawn().expect("php not found: run `make deps`");
        let mut app = App { addr, child, log, _dir: dir };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = app.child.try_wait().unwrap() {
                panic!("php -S exited with {status}:\n{}", app.logs());
            }
            if let Some((200, body)) = app.try_call("GET", "health", None, None).await {
                assert_eq!(body["ok"], true, "{body}");
                return app;
            }
            assert!(Instant::now() < deadline, "the app did not answer its health check in time:\n{}", app.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("php.err");
        format!("{}{}", std::fs::read_to_string(&self.log).unwrap_or_default(), std::fs::read_to_string(err).unwrap_or_default())
    }

    /// `api.php?action=<action>` over HTTP/1.0; (status, JSON body). `action` may carry more
    /// query parameters (`"conversation.history&visitor=v…"`).
    async fn call(&self, method: &str, action: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let raw = body.map(Value::to_string);
        self.call_raw(method, action, token, raw.as_deref()).await
    }

    async fn call_raw(&self, method: &str, action: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let (status, text) = tokio::time::timeout(PATIENCE, self.http(method, action, token, body))
            .await
            .unwrap_or_else(|_| panic!("{method} {action} timed out"))
            .unwrap_or_else(|e| panic!("{method} {action}: {e}"));
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {action} answered {status} with non-JSON ({e}): {text}\n{}", self.logs()));
        (status, json)
    }

    async fn try_call(&self, method: &str, action: &str, token: Option<&str>, body: Option<&Value>) -> Option<(u16, Value)> {
        let (status, text) = self.http(method, action, token, body.map(Value::to_string).as_deref()).await.ok()?;
        Some((status, serde_json::from_str(&text).ok()?))
    }

    /// Expects 200 and returns the body.
    async fn ok(&self, method: &str, action: &str, token: Option<&str>, body: Option<&Value>) -> Value {
        let (status, json) = self.call(method, action, token, body).await;
        assert_eq!(status, 200, "{method} {action}: {json}");
        json
    }

    async fn http(&self, method: &str, action: &str, token: Option<&str>, body: Option<&str>) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(&self.addr).await?;
        let body = body.unwrap_or("");
        let mut req = format!("{method} /api.php?action={action} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n", self.addr, body.len());
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_owned()))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- php -S log ---\n{}", self.logs());
        }
        // The whole process group: php -S and its workers (`--`: a negative id is a group).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-s", "TERM", "--", &group]).status();
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-s", "KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Connects to the sidecar the way the app's pages do: the app's `ws_url` and token.
async fn connect(ws_url: &Value, token: &Value) -> Client {
    let url = format!("{}?token={}", ws_url.as_str().unwrap(), url_encode(token.as_str().unwrap()));
    let mut c = Client::connect(&url).await;
    assert_eq!(c.recv().await["type"], "welcome");
    c
}

/// Reads frames until one matches; frames before it are returned too (to check what was skipped).
async fn recv_until(c: &mut Client, what: &str, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; got {skipped:?}");
        let f = c.recv().await;
        if pred(&f) {
            return (f, skipped);
        }
        skipped.push(f);
    }
}

fn is_text(f: &Value, conv: &str, text: &str) -> bool {
    f["type"] == "message" && f["conv"] == conv && f["data"]["text"] == text
}

/// `text` from every message in a history answer, in order.
fn texts(history: &Value) -> Vec<String> {
    history["messages"].as_array().unwrap().iter().filter_map(|m| m["data"]["text"].as_str().map(str::to_owned)).collect()
}

/// Group members of each visitor's group, in one php run.
async fn members(php: &Php, visitors: &[String]) -> BTreeMap<String, Vec<String>> {
    let list = serde_json::to_string(visitors).unwrap();
    let out = php
        .run(&format!(r#"$m = []; foreach (json_decode({list:?}) as $v) {{ $m[$v] = chat_group_members("cs-$v"); }} echo json_encode($m);"#))
        .await;
    serde_json::from_str(&out).unwrap()
}

/// agent id => conversations assigned in the database, and the same from cs_agents' counter.
fn loads(db: &MariaDb) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let parse = |out: String| -> BTreeMap<String, u64> {
        out.lines().filter_map(|l| l.split_once('\t')).map(|(a, n)| (a.to_owned(), n.parse().unwrap())).collect()
    };
    let counted = parse(db.sql(
        "SELECT a.agent_id, COUNT(c.conversation_id) FROM chat.cs_agents a LEFT JOIN chat.cs_conversations c
         ON c.agent_id = a.agent_id AND c.status = 'assigned' GROUP BY a.agent_id",
    ));
    let recorded = parse(db.sql("SELECT agent_id, active_conversations FROM chat.cs_agents"));
    (counted, recorded)
}

#[tokio::test]
async fn fifty_concurrent_visitors_get_one_agent_each_evenly_and_a_transfer_moves_the_history() {
    let redis = Redis::start();
    let db = MariaDb::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    // Each assignment holds its locks 20 ms after choosing the agent: without the row locks,
    // the 8 workers would choose from the same counts and pile onto one agent.
    let app = App::start_with(&redis, &db, &sidecar, "a1:Ann,a2:Bea,a3:Cal,a4:Dov", &[("CS_ASSIGN_PAUSE_MS", "20")]).await;

    // Three agents sign in and open the console (their WebSocket: online); a4 signs in but
    // stays offline, so must get nobody.
    let mut agents = BTreeMap::new();
    for id in ["a1", "a2", "a3", "a4"] {
        let login = app.ok("POST", "agent.login", None, Some(&json!({"agent": id}))).await;
        assert_eq!(login["agent"]["id"], id);
        let client = if id == "a4" { None } else { Some(connect(&login["ws_url"], &login["token"]).await) };
        agents.insert(id, (login["token"].as_str().unwrap().to_owned(), client));
    }
    assert_eq!(app.ok("GET", "health", None, None).await["agents_online"], 3);

    // 50 visitors open the widget at the same moment.
    let bodies: Vec<Value> = (0..50).map(|i| json!({"name": format!("Visitor {i}")})).collect();
    let answers = futures_util::future::join_all(bodies.iter().map(|b| app.call("POST", "visitor.start", None, Some(b)))).await;
    let mut assigned: BTreeMap<String, String> = BTreeMap::new(); // visitor => agent, as the API said
    let mut visitor_tokens = BTreeMap::new();
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["status"], "assigned", "3 agents are online: {v}");
        assert!(v["notice"].is_null(), "{v}");
        let (visitor, agent) = (v["visitor"]["id"].as_str().unwrap(), v["agent"]["id"].as_str().unwrap());
        assert_eq!(v["group"], format!("cs-{visitor}"));
        assert!(["a1", "a2", "a3"].contains(&agent), "assigned to {agent}, who is not online");
        assert!(assigned.insert(visitor.to_owned(), agent.to_owned()).is_none(), "visitor id {visitor} handed out twice");
        visitor_tokens.insert(visitor.to_owned(), v["token"].as_str().unwrap().to_owned());
    }
    assert_eq!(assigned.len(), 50);

    // Exactly one agent each: one conversation row per visitor, as the API said, one
    // "assigned" event per conversation, and the chat group is the visitor and that agent.
    let rows = db.sql("SELECT visitor_id, status, agent_id FROM chat.cs_conversations ORDER BY visitor_id");
    let in_db: BTreeMap<String, String> = rows
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[1], "assigned", "{l}");
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect();
    assert_eq!(rows.lines().count(), 50, "one conversation row per visitor");
    assert_eq!(in_db, assigned, "the database agrees with what the API answered");
    assert_eq!(
        db.sql("SELECT COUNT(*), COUNT(DISTINCT conversation_id) FROM chat.cs_assignments WHERE event = 'assigned'"),
        "50\t50",
        "each conversation was assigned exactly once"
    );
    let visitors: Vec<String> = assigned.keys().cloned().collect();
    for (visitor, group) in members(&php, &visitors).await {
        let mut expected = vec![visitor.clone(), assigned[&visitor].clone()];
        expected.sort();
        assert_eq!(group, expected, "members of cs-{visitor}");
    }

    // The load is spread: 17/17/16, and the app's counters agree with the rows.
    let (counted, recorded) = loads(&db);
    assert_eq!(counted, recorded, "cs_agents.active_conversations matches the conversations");
    assert_eq!(counted["a4"], 0, "a4 is offline");
    // The lock order (conversation, then agents by id) means concurrent assignments queue up
    // rather than deadlock (the app would retry a deadlock, which could hide a broken order).
    assert_eq!(db.sql("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'"), "Innodb_deadlocks\t0");
    let online_loads: Vec<u64> = ["a1", "a2", "a3"].iter().map(|a| counted[*a]).collect();
    assert_eq!(online_loads.iter().sum::<u64>(), 50);
    assert!(online_loads.iter().max().unwrap() - online_loads.iter().min().unwrap() <= 1, "uneven: {online_loads:?}");

    // Each agent's console was told about each of its visitors on its live connection.
    for (id, (_, client)) in agents.iter_mut() {
        let Some(client) = client else { continue };
        let mut expected: BTreeSet<&str> = assigned.iter().filter(|(_, a)| a.as_str() == *id).map(|(v, _)| v.as_str()).collect();
        while !expected.is_empty() {
            let m = client.recv_message().await;
            if m["conv"] == format!("u:{id}") {
                assert_eq!(m["data"]["kind"], "cs.assigned", "{m}");
                assert!(expected.remove(m["data"]["visitor"].as_str().unwrap()), "{id} told about {m}");
            }
        }
    }

    // --- transfer: a visitor talks to agent `old`, who hands over to `new`.
    let visitor = visitors[0].clone();
    let conv = format!("g:cs-{visitor}");
    let group = format!("cs-{visitor}");
    let old = assigned[&visitor].clone();
    let new = ["a1", "a2", "a3"].into_iter().find(|a| *a != old).unwrap().to_owned();
    let ws_url = answers[0].1["ws_url"].clone();
    let mut guest = connect(&ws_url, &json!(visitor_tokens[&visitor])).await;
    guest.send_text(&json!({"type": "send", "group": group, "data": {"text": "where is my order #1234?"}, "ref": 1}).to_string()).await;
    assert_eq!(guest.recv_type("sent").await["conv"], conv.as_str());
    {
        let old_client = agents.get_mut(old.as_str()).unwrap().1.as_mut().unwrap();
        recv_until(old_client, "the question at the old agent", |f| is_text(f, &conv, "where is my order #1234?")).await;
        old_client.send_text(&json!({"type": "send", "group": group, "data": {"text": "let me check with the warehouse"}}).to_string()).await;
        recv_until(old_client, "the old agent's own reply", |f| is_text(f, &conv, "let me check with the warehouse")).await;
    }
    recv_until(&mut guest, "the old agent's reply at the visitor", |f| is_text(f, &conv, "let me check with the warehouse")).await;

    // a4 is registered but offline: refused. Only the conversation's agent may transfer it.
    let old_token = agents[old.as_str()].0.clone();
    let new_token = agents[new.as_str()].0.clone();
    let (status, e) = app.call("POST", "conversation.transfer", Some(&old_token), Some(&json!({"visitor": visitor, "to": "a4"}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("agent_offline")), "{e}");
    let (status, e) = app.call("POST", "conversation.transfer", Some(&new_token), Some(&json!({"visitor": visitor, "to": new}))).await;
    assert_eq!(status, 400, "{e}");
    let third = ["a1", "a2", "a3"].into_iter().find(|a| *a != old && *a != new).unwrap();
    let (status, e) = app.call("POST", "conversation.transfer", Some(&new_token), Some(&json!({"visitor": visitor, "to": third}))).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("not_your_conversation")), "{e}");

    let moved = app.ok("POST", "conversation.transfer", Some(&old_token), Some(&json!({"visitor": visitor, "to": new}))).await;
    assert_eq!(moved["conversation"]["agent"]["id"], new.as_str());
    let mut expected = vec![visitor.clone(), new.clone()];
    expected.sort();
    assert_eq!(members(&php, std::slice::from_ref(&visitor)).await[&visitor], expected, "new agent in, old agent out");
    assert_eq!(db.sql(&format!("SELECT agent_id FROM chat.cs_conversations WHERE visitor_id = '{visitor}'")), new);
    assert_eq!(
        db.sql("SELECT from_agent_id, to_agent_id FROM chat.cs_assignments WHERE event = 'transferred'"),
        format!("{old}\t{new}")
    );
    let (counted, recorded) = loads(&db);
    assert_eq!(counted, recorded);
    assert_eq!(counted.values().sum::<u64>(), 50);

    // The new agent's console loads the earlier messages; the old agent may no longer read them.
    let history = app.ok("GET", &format!("conversation.history&visitor={visitor}"), Some(&new_token), None).await;
    let said = texts(&history);
    let q = said.iter().position(|t| t == "where is my order #1234?").expect("the question is in the history");
    let a = said.iter().position(|t| t == "let me check with the warehouse").expect("the answer is in the history");
    assert!(q < a, "{said:?}");
    let seqs: Vec<u64> = history["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "history in order without gaps: {seqs:?}");
    let (status, e) = app.call("GET", &format!("conversation.history&visitor={visitor}"), Some(&old_token), None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (403, Some("forbidden")), "{e}");

    // The new agent is told, live; the visitor sees the hand-over and reaches the new agent.
    {
        let new_client = agents.get_mut(new.as_str()).unwrap().1.as_mut().unwrap();
        let (note, _) = recv_until(new_client, "the transfer notice", |f| f["conv"] == format!("u:{new}") && f["data"]["visitor"] == visitor.as_str()).await;
        assert_eq!(note["data"]["transferred_from"], old.as_str());
    }
    let (handover, _) = recv_until(&mut guest, "the hand-over notice", |f| f["type"] == "message" && f["data"]["event"] == "transferred").await;
    assert_eq!(handover["data"]["agent"], new.as_str());
    guest.send_text(&json!({"type": "send", "group": group, "data": {"text": "ok, still there?"}}).to_string()).await;
    let new_client = agents.get_mut(new.as_str()).unwrap().1.as_mut().unwrap();
    recv_until(new_client, "the visitor's next message at the new agent", |f| is_text(f, &conv, "ok, still there?")).await;

    // The old agent's live connection no longer receives the group: a marker pushed to its
    // inbox after the visitor's message arrives with nothing of the group before it (Redis
    // delivers in publish order), and its sends to the group are refused.
    let marker = php.push(&old, r#"{"marker":true}"#, None).await;
    let old_client = agents.get_mut(old.as_str()).unwrap().1.as_mut().unwrap();
    let (_, before) = recv_until(old_client, "the marker", |f| f["type"] == "message" && f["id"] == marker.as_str()).await;
    let leaked: Vec<&Value> = before.iter().filter(|f| f["type"] == "message" && f["conv"] == conv.as_str()).collect();
    assert!(leaked.is_empty(), "the old agent still got the group: {leaked:?}");
    old_client.send_text(&json!({"type": "send", "group": group, "data": {"text": "me again"}, "ref": "late"}).to_string()).await;
    let refused = old_client.recv_type("error").await;
    assert_eq!((refused["code"].as_str(), refused["ref"].as_str()), (Some("forbidden"), Some("late")));
}

#[tokio::test]
async fn a_visitor_who_writes_while_no_agent_is_online_is_answered_when_one_connects() {
    let redis = Redis::start();
    let db = MariaDb::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let app = App::start(&redis, &db, &sidecar, "solo:Sam").await;
    let login = app.ok("POST", "agent.login", None, Some(&json!({"agent": "solo"}))).await;
    let agent_token = login["token"].as_str().unwrap().to_owned();

    // Nobody online: the visitor is told so, and waits in the queue.
    let start = app.ok("POST", "visitor.start", None, Some(&json!({"name": "Night Owl"}))).await;
    assert_eq!((start["status"].as_str(), start["agents_online"].as_u64()), (Some("waiting"), Some(0)), "{start}");
    assert!(start["agent"].is_null());
    assert!(start["notice"].as_str().unwrap().starts_with("No agent is online"), "{start}");
    let visitor = start["visitor"]["id"].as_str().unwrap().to_owned();
    let (group, conv) = (format!("cs-{visitor}"), format!("g:cs-{visitor}"));
    assert_eq!(db.sql(&format!("SELECT status, agent_id IS NULL FROM chat.cs_conversations WHERE visitor_id = '{visitor}'")), "waiting\t1");

    // The visitor writes over the WebSocket to their group; the message waits in it.
    let mut guest = connect(&start["ws_url"], &start["token"]).await;
    let (notice, _) = recv_until(&mut guest, "the no-agent notice", |f| f["type"] == "message").await;
    assert_eq!(notice["data"]["event"], "waiting", "the notice is in the conversation too: {notice}");
    guest.send_text(&json!({"type": "send", "group": group, "data": {"text": "hello? I need help with a refund"}, "ref": 1}).to_string()).await;
    let sent = guest.recv_type("sent").await;
    assert_eq!((sent["ref"].as_u64(), sent["conv"].as_str()), (Some(1), Some(conv.as_str())), "{sent}");

    // The agent's console before its WebSocket is up: not online, so nothing is assigned;
    // the queue shows the visitor, online, with one message.
    let dash = app.ok("POST", "agent.sync", Some(&agent_token), None).await;
    assert_eq!((dash["me"]["online"].as_bool(), dash["assigned_now"].as_u64()), (Some(false), Some(0)), "{dash}");
    assert_eq!(dash["conversations"], json!([]));
    let queued = &dash["queue"][0];
    assert_eq!((queued["visitor"]["id"].as_str(), queued["visitor"]["online"].as_bool(), queued["messages"].as_u64()), (Some(visitor.as_str()), Some(true), Some(1)), "{dash}");
    // Any agent may look at a waiting conversation.
    assert_eq!(texts(&app.ok("GET", &format!("conversation.history&visitor={visitor}"), Some(&agent_token), None).await).last().unwrap(), "hello? I need help with a refund");

    // The agent comes online; the console's sync assigns the waiting visitor to them.
    let mut agent = connect(&login["ws_url"], &login["token"]).await;
    let dash = app.ok("POST", "agent.sync", Some(&agent_token), None).await;
    assert_eq!((dash["me"]["online"].as_bool(), dash["assigned_now"].as_u64()), (Some(true), Some(1)), "{dash}");
    assert_eq!(dash["queue"], json!([]));
    assert_eq!(dash["conversations"][0]["visitor"]["id"], visitor.as_str());
    assert_eq!(db.sql(&format!("SELECT status, agent_id FROM chat.cs_conversations WHERE visitor_id = '{visitor}'")), "assigned\tsolo");
    let (note, _) = recv_until(&mut agent, "the assignment notice", |f| f["type"] == "message" && f["conv"] == "u:solo").await;
    assert_eq!(note["data"]["visitor"], visitor.as_str());

    // The agent reads the waiting message (the console loads the history) and answers.
    let history = app.ok("GET", &format!("conversation.history&visitor={visitor}"), Some(&agent_token), None).await;
    assert!(texts(&history).contains(&"hello? I need help with a refund".to_owned()), "{history}");
    agent.send_text(&json!({"type": "send", "group": group, "data": {"text": "Hi, Sam here. Which order?"}, "ref": "a1"}).to_string()).await;
    assert_eq!(agent.recv_type("sent").await["ref"], "a1");

    // The visitor's WebSocket: told an agent joined, then the answer.
    let (joined, _) = recv_until(&mut guest, "the joined notice", |f| f["type"] == "message" && f["data"]["event"] == "assigned").await;
    assert_eq!(joined["data"]["agent"], "solo");
    let (answer, _) = recv_until(&mut guest, "the answer", |f| f["type"] == "message" && f["conv"] == conv.as_str() && f["from"] == "solo" && f["data"]["kind"].is_null()).await;
    assert_eq!(answer["data"]["text"], "Hi, Sam here. Which order?");

    // Unread counts on the console follow chat_unread: one new message, then read.
    guest.send_text(&json!({"type": "send", "group": group, "data": {"text": "order 881"}}).to_string()).await;
    let (m, _) = recv_until(&mut agent, "the visitor's reply", |f| is_text(f, &conv, "order 881")).await;
    let dash = app.ok("POST", "agent.sync", Some(&agent_token), None).await;
    assert_eq!(dash["conversations"][0]["unread"], 1, "{dash}");
    agent.send_text(&json!({"type": "read", "conv": conv, "seq": m["seq"]}).to_string()).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let dash = app.ok("POST", "agent.sync", Some(&agent_token), None).await;
        if dash["conversations"][0]["unread"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "unread count did not drop after the read: {dash}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Closing hands the agent's slot back; the visitor's next start reopens and reassigns.
    let closed = app.ok("POST", "conversation.close", Some(&agent_token), Some(&json!({"visitor": visitor}))).await;
    assert_eq!(closed["conversation"]["status"], "closed");
    assert_eq!(php.json(&format!("chat_group_members({group:?})")).await, json!([visitor]));
    assert_eq!(db.sql("SELECT active_conversations FROM chat.cs_agents WHERE agent_id = 'solo'"), "0");
    let again = app.ok("POST", "visitor.start", Some(start["token"].as_str().unwrap()), Some(&json!({}))).await;
    assert_eq!((again["visitor"]["id"].as_str(), again["status"].as_str(), again["agent"]["id"].as_str()), (Some(visitor.as_str()), Some("assigned"), Some("solo")), "{again}");
    let said: Vec<&str> = again["history"].as_array().unwrap().iter().filter_map(|m| m["data"]["text"].as_str()).collect();
    assert!(said.contains(&"hello? I need help with a refund") && said.contains(&"order 881"), "the history comes back: {said:?}");
}

#[tokio::test]
async fn the_api_refuses_bad_requests_with_clear_json_errors() {
    let redis = Redis::start();
    let db = MariaDb::start();
    let sidecar = Sidecar::start(&redis);
    let app = App::start(&redis, &db, &sidecar, "ops").await;
    let agent = app.ok("POST", "agent.login", None, Some(&json!({"agent": "ops"}))).await["token"].as_str().unwrap().to_owned();
    let visitor = app.ok("POST", "visitor.start", None, None).await["token"].as_str().unwrap().to_owned();
    let forged = {
        let (head_body, _) = agent.rsplit_once('.').unwrap();
        format!("{head_body}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    };
    // (method, action, token, body, status, error code)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "nope", None, None, 404, "unknown_action"),
        ("GET", "agent.sync", Some(&agent), None, 405, "method_not_allowed"),
        ("POST", "agent.sync", None, None, 401, "no_token"),
        ("POST", "agent.sync", Some(&forged), None, 401, "bad_token"),
        ("POST", "agent.sync", Some(&visitor), None, 403, "wrong_role"),
        ("POST", "agent.login", None, Some(r#"{"agent":"mallory"}"#), 403, "unknown_agent"),
        ("POST", "agent.login", None, Some(r#"{"agent":["ops"]}"#), 400, "bad_parameter"),
        ("POST", "agent.login", None, Some("{not json"), 400, "bad_json"),
        ("POST", "agent.login", None, Some("[1,2]"), 400, "bad_json"),
        ("POST", "conversation.transfer", Some(&agent), Some(r#"{"to":"ops"}"#), 400, "missing_parameter"),
        ("POST", "conversation.transfer", Some(&agent), Some(r#"{"visitor":"../etc","to":"ops"}"#), 400, "bad_parameter"),
        ("POST", "conversation.close", Some(&agent), Some(r#"{"visitor":"v0000000000000000"}"#), 404, "unknown_visitor"),
        ("POST", "visitor.start", None, Some("{\"name\":\"bad\\u0007name\"}"), 400, "bad_parameter"),
        ("GET", "conversation.history&visitor=v0000000000000000&limit=0", Some(&agent), None, 400, "bad_parameter"),
    ];
    for (method, action, token, body, status, code) in cases {
        let (got, e) = app.call_raw(method, action, token, body).await;
        assert_eq!((got, e["error"]["code"].as_str()), (status, Some(code)), "{method} {action} {body:?}: {e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
}
