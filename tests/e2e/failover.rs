//! No accepted message lost when Redis fails over or comes back empty: a PHP producer pushes
//! numbered messages (one-to-one, group, to an offline user) while the Redis master is killed
//! with SIGKILL and a replica promoted by Sentinel, or while a Redis without persistence restarts
//! empty. Every push that returned an id must reach every device exactly once and in order, and
//! MySQL exactly once; a push that threw may be absent or there once; no (conversation, seq)
//! ever names two messages; no device sits on a silent socket for longer than a heartbeat.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_e2e::device::Device;
use chat_e2e::sentinel::Sentinels;
use chat_e2e::{eventually, MariaDb, Php, Redis, Sidecar};
use tokio::io::AsyncBufReadExt;

/// These tests kill and start many servers and time Sentinel's failure detection: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HEARTBEAT_MS: u64 = 5000;

/// One push as the producer reported it.
#[derive(Debug, Clone)]
struct Pushed {
    kind: String,
    n: u64,
    /// The id it returned, or none when it threw.
    id: Option<String>,
    error: Option<String>,
}

/// A PHP process pushing numbered messages until told to stop, reporting each push as it goes.
struct Producer {
    pushed: Arc<Mutex<Vec<Pushed>>>,
    stop: PathBuf,
    pause: PathBuf,
    child: tokio::process::Child,
    reader: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Producer {
    /// `kinds`: `ana` (one-to-one from ben), `room` (group, from ben), `olga` (to a user who is
    /// offline until the end).
    fn start(php: &Php, kinds: &[&str]) -> Producer {
        let dir = tempfile::tempdir().unwrap();
        let (stop, pause) = (dir.path().join("stop"), dir.path().join("pause"));
        let calls: Vec<String> = kinds
            .iter()
            .map(|k| match *k {
                "ana" => r#"["ana", fn ($n) => chat_push("ana", ["n" => $n], ["from" => "ben"])]"#.to_owned(),
                "room" => r#"["room", fn ($n) => chat_send_to_group("room", ["n" => $n], ["from" => "ben"])]"#.to_owned(),
                "olga" => r#"["olga", fn ($n) => chat_push("olga", ["n" => $n])]"#.to_owned(),
                other => panic!("unknown kind {other}"),
            })
            .collect();
        let code = format!(
            r#"
            $calls = [{}];
            $n = 0;
            while (!file_exists({stop:?})) {{
                if (file_exists({pause:?})) {{ usleep(20000); continue; }}
                $n++;
                foreach ($calls as [$kind, $push]) {{
                    try {{ $id = $push($n); echo "$kind $n ok $id\n"; }}
                    catch (Chat\ChatException $e) {{ echo "$kind $n err ", str_replace("\n", " ", $e->getMessage()), "\n"; }}
                }}
                usleep(4000);
            }}
            echo "done\n";
        "#,
            calls.join(", "),
            stop = stop.display().to_string(),
            pause = pause.display().to_string(),
        );
        let mut child = php.command(&code).stdout(std::process::Stdio::piped()).kill_on_drop(true).spawn().expect("php");
        let stdout = child.stdout.take().unwrap();
        let pushed = Arc::new(Mutex::new(Vec::new()));
        let log = pushed.clone();
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.splitn(4, ' ');
                let (Some(kind), Some(n), Some(outcome), rest) = (parts.next(), parts.next(), parts.next(), parts.next()) else { continue };
                let n = n.parse().unwrap();
                let (id, error) = match outcome {
                    "ok" => (rest.map(str::to_owned), None),
                    _ => (None, rest.map(str::to_owned)),
                };
                log.lock().unwrap().push(Pushed { kind: kind.to_owned(), n, id, error });
            }
        });
        Producer { pushed, stop, pause, child, reader, _dir: dir }
    }

    fn accepted(&self) -> usize {
        self.pushed.lock().unwrap().iter().filter(|p| p.id.is_some()).count()
    }

    /// Waits until `more` further pushes were accepted.
    async fn accept_more(&self, more: usize) {
        let target = self.accepted() + more;
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while self.accepted() < target {
            assert!(std::time::Instant::now() < deadline, "the producer stalled: {:?}", self.pushed.lock().unwrap().iter().rev().take(5).collect::<Vec<_>>());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pause(&self, paused: bool) {
        if paused {
            std::fs::write(&self.pause, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.pause);
        }
    }

    async fn finish(mut self) -> Vec<Pushed> {
        std::fs::write(&self.stop, "").unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.expect("the producer stops").unwrap();
        assert!(status.success(), "the producer failed");
        (&mut self.reader).await.unwrap();
        std::mem::take(&mut *self.pushed.lock().unwrap())
    }
}

/// What the producer's pushes of one kind came to.
struct Outcome {
    accepted: BTreeMap<u64, String>,
    threw: BTreeSet<u64>,
}

fn outcome(pushed: &[Pushed], kind: &str) -> Outcome {
    let mut o = Outcome { accepted: BTreeMap::new(), threw: BTreeSet::new() };
    for p in pushed.iter().filter(|p| p.kind == kind) {
        match &p.id {
            Some(id) => {
                o.accepted.insert(p.n, id.clone());
            }
            None => {
                o.threw.insert(p.n);
            }
        }
    }
    o
}

/// Exactly once and in order: every accepted number, nothing but accepted numbers or numbers of
/// pushes that threw, strictly increasing.
fn check_once_in_order(seen: &[u64], o: &Outcome, who: &str) {
    for w in seen.windows(2) {
        assert!(w[0] < w[1], "{who}: {} came after {} (out of order or twice)", w[1], w[0]);
    }
    let got: BTreeSet<u64> = seen.iter().copied().collect();
    let missing: Vec<u64> = o.accepted.keys().filter(|n| !got.contains(n)).copied().collect();
    assert!(missing.is_empty(), "{who}: accepted messages never arrived: {missing:?}");
    let strange: Vec<u64> = got.iter().filter(|n| !o.accepted.contains_key(n) && !o.threw.contains(n)).copied().collect();
    assert!(strange.is_empty(), "{who}: messages nobody pushed: {strange:?}");
}

/// Waits until `device` has every accepted message of `conv`.
async fn complete(device: &Device, conv: &str, o: &Outcome, who: &str) {
    let want: BTreeSet<u64> = o.accepted.keys().copied().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<u64> = device.seen.lock().unwrap().numbers(conv).into_iter().collect();
        if want.is_subset(&got) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let missing: Vec<&u64> = want.difference(&got).take(20).collect();
            panic!("{who}: still missing {} of {conv}, e.g. {missing:?}", want.difference(&got).count());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No (conversation, seq) named two messages on any device.
fn check_no_reused_numbers(devices: &[(&str, &Device)]) {
    let mut ids: HashMap<(String, u64), String> = HashMap::new();
    for (who, d) in devices {
        let seen = d.seen.lock().unwrap();
        for m in seen.messages.iter().chain(&seen.duplicates) {
            let key = (m["conv"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap());
            let id = m["id"].as_str().unwrap().to_owned();
            if let Some(other) = ids.insert(key.clone(), id.clone()) {
                assert_eq!(other, id, "{who}: {key:?} named two messages");
            }
        }
    }
}

/// MySQL holds every accepted message once per conversation it landed in; rows that another
/// message replaced are only ever of pushes that threw.
async fn check_mysql(db: &MariaDb, expected: &[(&str, &Outcome)]) {
    for (conv, o) in expected {
        let want: BTreeSet<&str> = o.accepted.values().map(String::as_str).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let rows = db.sql(&format!("SELECT id FROM chat.chat_messages WHERE conv = '{conv}'"));
            let got: Vec<&str> = rows.lines().collect();
            let unique: BTreeSet<&str> = got.iter().copied().collect();
            assert_eq!(unique.len(), got.len(), "{conv}: a message stored twice");
            if want.is_subset(&unique) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{conv}: MySQL lacks {} accepted messages", want.difference(&unique).count());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let replaced = db.sql(&format!("SELECT id FROM chat.chat_messages_replaced WHERE conv = '{conv}'"));
        let accepted_ids: BTreeSet<&str> = o.accepted.values().map(String::as_str).collect();
        for id in replaced.lines() {
            assert!(!accepted_ids.contains(id), "{conv}: accepted message {id} was replaced in MySQL");
        }
    }
}

async fn sentinel_failover(empty: bool) {
    let _serial = SERIAL.lock().await;
    let mut group = tokio::task::block_in_place(|| Sentinels::start(2));
    let db = MariaDb::start();
    let url = group.url();
    let heartbeat = HEARTBEAT_MS.to_string();
    let env = [("CHAT_MYSQL_URL", db.url()), ("CHAT_HEARTBEAT_MS", heartbeat)];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let n1 = Sidecar::start_on(&url, &env);
    let n2 = Sidecar::start_on(&url, &env);
    // Repeatable calls wait out the switch-over (Sentinel notices within a second here).
    let php = Php { redis_url: url.clone(), ini: vec!["chat.failover_timeout_ms=15000".into()] };
    php.run(r#"chat_join_group("ana", "room"); chat_join_group("ben", "room");"#).await;
    let (ana, ben) = (php.token("ana").await, php.token("ben").await);
    let ana1 = Device::start(n1.addr.clone(), ana.clone());
    let ana2 = Device::start(n2.addr.clone(), ana);
    let ben2 = Device::start(n2.addr.clone(), ben);
    for d in [&ana1, &ana2, &ben2] {
        eventually("the devices to be welcomed", async || d.seen.lock().unwrap().cursors.contains_key("g:room").then_some(())).await;
    }

    let producer = Producer::start(&php, &["ana", "room", "olga"]);
    producer.accept_more(150).await;
    for d in [&ana1, &ana2, &ben2] {
        d.listen_from_now();
    }
    let killed_at = std::time::Instant::now();
    // The group's waits block; the devices and the producer's reader must go on meanwhile.
    let (old, new) = tokio::task::block_in_place(|| group.kill_master());
    eprintln!("master {} killed, {} promoted", group.nodes[old].port, group.nodes[new].port);
    producer.accept_more(150).await;
    tokio::task::block_in_place(|| group.bring_back(old, empty));
    producer.accept_more(150).await;
    let pushed = producer.finish().await;

    let (to_ana, to_room, to_olga) = (outcome(&pushed, "ana"), outcome(&pushed, "room"), outcome(&pushed, "olga"));
    for (who, d) in [("ana on node 1", &ana1), ("ana on node 2", &ana2)] {
        complete(d, "u:ana", &to_ana, who).await;
        complete(d, "g:room", &to_room, who).await;
    }
    complete(&ben2, "u:ben", &to_ana, "ben (his own copies)").await;
    complete(&ben2, "g:room", &to_room, "ben").await;
    // Olga comes online only now, on a device with no cursor.
    let olga = Device::start(n1.addr.clone(), php.token("olga").await);
    complete(&olga, "u:olga", &to_olga, "olga").await;

    for (who, d, conv, o) in [
        ("ana on node 1", &ana1, "u:ana", &to_ana),
        ("ana on node 1", &ana1, "g:room", &to_room),
        ("ana on node 2", &ana2, "u:ana", &to_ana),
        ("ana on node 2", &ana2, "g:room", &to_room),
        ("ben", &ben2, "u:ben", &to_ana),
        ("ben", &ben2, "g:room", &to_room),
        ("olga", &olga, "u:olga", &to_olga),
    ] {
        check_once_in_order(&d.seen.lock().unwrap().numbers(conv), o, &format!("{who} in {conv}"));
    }
    check_no_reused_numbers(&[("ana on node 1", &ana1), ("ana on node 2", &ana2), ("ben", &ben2), ("olga", &olga)]);
    for (who, d) in [("ana on node 1", &ana1), ("ana on node 2", &ana2), ("ben", &ben2)] {
        let seen = d.seen.lock().unwrap();
        let (silence, since) = (seen.longest_silence, seen.silent_since.map(|t| t.saturating_duration_since(killed_at)));
        if silence >= Duration::from_millis(HEARTBEAT_MS) {
            let trail: Vec<String> = seen.trail.iter().map(|(t, what)| format!("{:?} {what}", t.saturating_duration_since(killed_at))).collect();
            let text = n1.logs();
            let logs: Vec<&str> = text.lines().filter(|l| l.contains("TRACE") || l.contains("connected") || l.contains("reconnect") || l.contains("health")).collect::<Vec<_>>();
            panic!("{who} was silent for {silence:?}, from {since:?} after the kill; closes {:?}\n{}\n{}", seen.closes, trail.join("\n"), logs.join("\n"));
        }
    }
    check_mysql(&db, &[("u:ana", &to_ana), ("u:ben", &to_ana), ("g:room", &to_room), ("u:olga", &to_olga)]).await;
    let threw = to_ana.threw.len() + to_room.threw.len() + to_olga.threw.len();
    let accepted = to_ana.accepted.len() + to_room.accepted.len() + to_olga.accepted.len();
    eprintln!("{accepted} pushes accepted, {threw} threw; errors: {:?}", pushed.iter().filter_map(|p| p.error.as_deref()).take(3).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_nothing_when_the_old_master_comes_back_empty() {
    sentinel_failover(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_nothing_when_the_old_master_comes_back_with_its_aof() {
    sentinel_failover(false).await;
}

/// A Redis without persistence restarts empty under load: devices are told (reset), nothing new
/// is dropped as a duplicate (the conversation goes on in an epoch above every earlier number),
/// and MySQL keeps its history whole, the new messages after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_restarts_empty_resets_clients_and_keeps_history_whole() {
    let _serial = SERIAL.lock().await;
    let mut redis = Redis::start_volatile();
    let db = MariaDb::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_MYSQL_URL", &db.url())]);
    let php = Php::new(&redis);
    let ana = Device::start(sidecar.addr.clone(), php.token("ana").await);
    eventually("ana to be welcomed", async || ana.seen.lock().unwrap().cursors.contains_key("u:ana").then_some(())).await;

    let producer = Producer::start(&php, &["ana"]);
    producer.accept_more(200).await;
    // Everything accepted so far reaches MySQL before Redis goes: a Redis without persistence
    // takes what its log still held with it, and that is not what this test is about.
    producer.pause(true);
    eventually("the log to be written to MySQL", async || (redis.cmd(&["XLEN", "chat:log"])? == "0").then_some(())).await;
    let before = db.sql("SELECT conv, seq, id FROM chat.chat_messages ORDER BY conv, seq");
    redis.stop();
    producer.pause(false);
    // Pushes while Redis is away throw; once it is back, empty, they are refused until the
    // sidecar has declared the dataset lost, then accepted in a new epoch.
    tokio::task::block_in_place(|| redis.restart());
    producer.accept_more(200).await;
    let pushed = producer.finish().await;
    let to_ana = outcome(&pushed, "ana");
    assert!(!to_ana.threw.is_empty(), "pushes during the restart threw");

    complete(&ana, "u:ana", &to_ana, "ana").await;
    check_once_in_order(&ana.seen.lock().unwrap().numbers("u:ana"), &to_ana, "ana");
    check_no_reused_numbers(&[("ana", &ana)]);
    {
        let seen = ana.seen.lock().unwrap();
        let reset = seen.resets.first().unwrap_or_else(|| panic!("ana was not told that Redis lost her history: {:?}", seen.closes));
        assert_eq!(reset["conv"], "u:ana");
        assert_eq!(reset["seq"], 0, "nothing of the old epoch survived in Redis: {reset}");
    }
    assert!(redis.cmd(&["GET", "chat:dataset"]).unwrap().starts_with('l'), "declared lost");
    check_mysql(&db, &[("u:ana", &to_ana), ("u:ben", &to_ana)]).await;
    let after = db.sql("SELECT conv, seq, id FROM chat.chat_messages ORDER BY conv, seq");
    let after: BTreeSet<&str> = after.lines().collect();
    assert!(before.lines().all(|row| after.contains(row)), "the history before the restart is untouched");
    assert_eq!(db.sql("SELECT COUNT(*) FROM chat.chat_messages_replaced"), "0");
}

/// A Redis that no sidecar ever declared refuses pushes with a message that says what to do;
/// the first sidecar declares it whole, and numbering starts at 1.
#[tokio::test]
async fn pushes_wait_for_the_first_sidecar_to_declare_the_dataset() {
    let redis = Redis::start_bare();
    let php = Php::new(&redis);
    let (_, out, _) = php.try_run(r#"try { chat_push("zoe", 1); echo "accepted"; } catch (Chat\ConnectionException $e) { echo $e->getMessage(); }"#).await;
    assert!(out.contains("no chat dataset marker") && out.contains("start chat-sidecar"), "{out}");
    let _sidecar = Sidecar::start(&redis);
    assert!(redis.cmd(&["GET", "chat:dataset"]).unwrap().starts_with('g'), "a new Redis is whole");
    php.push("zoe", "1", None).await;
    assert_eq!(redis.cmd(&["GET", "chat:{u:zoe}:seq"]).as_deref(), Some("1"));
}
