//! PHP-FPM reality: Debian's php-fpm, started here with a static pool of a few workers, serves
//! a page that calls chat_push(); requests arrive over FastCGI from concurrent clients, as
//! from nginx. Shows that
//! - each worker opens one Redis connection and reuses it for every request it serves;
//! - every accepted push lands in the stream, exactly once;
//! - after redis-server restarts, workers work again by themselves: at most the first request
//!   of each worker fails, with Chat\ConnectionException (never a fatal error or a crash).
//!
//! php-fpm comes from Debian's php-fpm package (`make deps`); set CHAT_PHP_FPM to use another.
//! The FastCGI client is in this file (below), so nothing else is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_e2e::sentinel::Sentinels;
use chat_e2e::{bin_dir, free_port, Redis, PATIENCE};

const WORKERS: usize = 4;
/// Concurrent FastCGI clients: more than workers, so requests queue as under real load.
const CLIENTS: usize = 8;

#[test]
fn one_redis_connection_per_worker_under_load_and_every_push_lands() {
    let redis = Redis::start();
    let fpm = Fpm::start(&redis, "load");
    let connections_before = total_connections(&redis);

    let outcomes = fpm.load(CLIENTS, 50, 0);
    assert_eq!(outcomes.len(), CLIENTS * 50);
    let failed: Vec<_> = outcomes.iter().filter(|o| o.kind != Kind::Ok).collect();
    assert!(
        failed.is_empty(),
        "requests failed: {failed:#?}\n{}",
        fpm.log()
    );

    // Every worker served requests, and each opened exactly one connection for all of them.
    let workers: BTreeSet<u32> = outcomes.iter().map(|o| o.pid).collect();
    assert_eq!(
        workers.len(),
        WORKERS,
        "the static pool's {WORKERS} workers all served requests"
    );
    let opened = total_connections(&redis) - connections_before - 1; // -1: this redis-cli itself
    assert_eq!(
        opened,
        WORKERS as u64,
        "{} requests over {WORKERS} workers opened {opened} Redis connections",
        outcomes.len()
    );
    assert_eq!(
        extension_connections(&redis),
        WORKERS,
        "each worker keeps its connection open"
    );

    // Every accepted push is in bob's inbox, once, with consecutive sequence numbers.
    let stream = fpm.stream_of("bob", &redis);
    assert_eq!(
        stream.len(),
        outcomes.len(),
        "stream length equals accepted pushes"
    );
    let numbers: BTreeSet<u64> = stream
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (0..outcomes.len() as u64).collect(),
        "each push landed exactly once"
    );
    let ids: BTreeSet<&str> = outcomes.iter().map(|o| o.detail.as_str()).collect();
    let stored: BTreeSet<&str> = stream.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids, stored,
        "the ids chat_push() returned are the stored ones"
    );
    assert_eq!(
        redis.cmd(&["GET", &fpm.key("bob", "seq")]).unwrap(),
        outcomes.len().to_string()
    );
    fpm.assert_no_crash();
    eprintln!(
        "{} requests from {CLIENTS} clients over {} php-fpm workers: {opened} Redis connections opened, {} open now; {} pushes accepted, {} in the stream",
        outcomes.len(),
        workers.len(),
        extension_connections(&redis),
        outcomes.len(),
        stream.len()
    );
}

#[test]
fn workers_survive_a_redis_restart() {
    let mut redis = Redis::start();
    let fpm = Fpm::start(&redis, "restart");

    // Until every worker holds a connection.
    let mut before = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while before
        .iter()
        .map(|o: &Outcome| o.pid)
        .collect::<BTreeSet<_>>()
        .len()
        < WORKERS
    {
        assert!(
            Instant::now() < deadline,
            "not all workers served a request:\n{}",
            fpm.log()
        );
        before.extend(fpm.load(CLIENTS, 5, before.len()));
    }
    assert!(before.iter().all(|o| o.kind == Kind::Ok), "{before:#?}");
    assert_eq!(extension_connections(&redis), WORKERS);

    // Every worker's connection is now dead; the workers do not know yet. (Redis::stop shuts
    // down gracefully, writing the append-only file, so the restart keeps the earlier pushes.)
    redis.stop();
    redis.restart();

    let after = fpm.load(CLIENTS, 25, before.len());
    let mut by_worker: BTreeMap<u32, Vec<&Outcome>> = BTreeMap::new();
    for o in &after {
        by_worker.entry(o.pid).or_default().push(o);
    }
    for (pid, outcomes) in &mut by_worker {
        outcomes.sort_by_key(|o| o.started_ns);
        for (i, o) in outcomes.iter().enumerate() {
            match (i, &o.kind) {
                (_, Kind::Ok) => {}
                // The first command over the dead connection finds out it is dead.
                (0, Kind::Connection) => assert!(
                    o.detail.contains("(chat.redis_url)"),
                    "the message names the setting: {o:?}"
                ),
                _ => panic!(
                    "worker {pid}, request {i} after the restart: {o:#?}\nonly a first request may fail, and only with Chat\\ConnectionException\n{}",
                    fpm.log()
                ),
            }
        }
    }
    let failures = after.iter().filter(|o| o.kind != Kind::Ok).count();
    assert!(failures <= WORKERS, "{failures} failures");

    // Reconnected once each, and the accepted pushes (the restart kept the old ones) all landed.
    assert_eq!(extension_connections(&redis), by_worker.len());
    let accepted = before.len() + after.len() - failures;
    let stored = fpm.stream_of("bob", &redis).len();
    assert_eq!(stored, accepted, "stream length equals accepted pushes");
    fpm.assert_no_crash();
    eprintln!(
        "redis-server restarted under {} workers: {} requests after it, {failures} failed (each the first of its worker, Chat\\ConnectionException), {} Redis connections now; {accepted} pushes accepted in all, {stored} in the stream",
        by_worker.len(),
        after.len(),
        extension_connections(&redis)
    );
}

/// The master Sentinel watches is killed with SIGKILL while php-fpm workers push: calls that
/// meet the switch-over wait for the promoted replica (chat.failover_timeout_ms) or, at worst,
/// throw Chat\ConnectionException; afterwards every worker works against the new master without
/// a restart, and every push that returned an id is stored in it exactly once.
#[test]
fn workers_follow_a_sentinel_failover() {
    let mut group = Sentinels::start(2);
    let master = group.index_of(group.master_port().expect("a master"));
    group.nodes[master].cmd(&["SET", "failover:dataset", "g1"]).expect("declare the dataset");
    let fpm = Fpm::start_on(&group.url(), "failover", "php_admin_value[chat.failover_timeout_ms] = 15000\n");

    let mut before = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while before.iter().map(|o: &Outcome| o.pid).collect::<BTreeSet<_>>().len() < WORKERS {
        assert!(Instant::now() < deadline, "not all workers served a request:\n{}", fpm.log());
        before.extend(fpm.load(CLIENTS, 5, before.len()));
    }
    assert!(before.iter().all(|o| o.kind == Kind::Ok), "{before:#?}");

    // The master dies while the workers are busy.
    let (during, new_master) = std::thread::scope(|s| {
        let load = s.spawn(|| fpm.load(CLIENTS, 150, before.len()));
        std::thread::sleep(Duration::from_millis(150));
        let (_, new) = group.kill_master();
        (load.join().unwrap(), new)
    });
    let after = fpm.load(CLIENTS, 5, before.len() + during.len());
    let odd: Vec<&Outcome> = during.iter().filter(|o| o.kind == Kind::Other).collect();
    assert!(odd.is_empty(), "only Chat\\ConnectionException may be thrown: {odd:#?}\n{}", fpm.log());
    let failed: Vec<&Outcome> = after.iter().filter(|o| o.kind != Kind::Ok).collect();
    assert!(failed.is_empty(), "every worker works against the new master: {failed:#?}");

    let accepted: BTreeSet<&str> = before.iter().chain(&during).chain(&after).filter(|o| o.kind == Kind::Ok).map(|o| o.detail.as_str()).collect();
    let stream = fpm.stream_of("bob", &group.nodes[new_master]);
    let ids: Vec<&str> = stream.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let stored: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(stored.len(), ids.len(), "no push stored twice (retries are recognised by their id)");
    let lost: Vec<&&str> = accepted.difference(&stored).collect();
    assert!(lost.is_empty(), "accepted pushes missing after the failover: {lost:?}");
    fpm.assert_no_crash();
    let threw = during.iter().filter(|o| o.kind == Kind::Connection).count();
    eprintln!("{} requests during a Sentinel failover: {threw} threw Chat\\ConnectionException, the rest waited for the new master; {} accepted in all, all stored once", during.len(), accepted.len());
}

// ---- php-fpm --------------------------------------------------------------------------------

struct Fpm {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    namespace: String,
    script: PathBuf,
}

impl Fpm {
    /// A php-fpm master with a static pool of [`WORKERS`] workers that never recycle (so any
    /// connection reuse is the extension's doing), configured like a production pool.
    fn start(redis: &Redis, namespace: &str) -> Fpm {
        // Played here what the first sidecar does: the namespace's dataset is declared whole.
        redis.cmd(&["SET", &format!("{namespace}:dataset"), "g1", "NX"]).expect("declare the dataset");
        Fpm::start_on(&redis.url(), namespace, "")
    }

    /// The pool on the Redis `url` names; `extra`: more pool settings (lines).
    fn start_on(url: &str, namespace: &str, extra: &str) -> Fpm {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = dir.path().join("push.php");
        std::fs::write(&script, PUSH_PHP).unwrap();
        // As root php-fpm needs -R and an explicit user (CI containers run tests as root).
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let conf = dir.path().join("php-fpm.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\nerror_log = {log}\ndaemonize = no\npid = {pid}\n\n\
                 [app]\n{user}listen = 127.0.0.1:{port}\nlisten.backlog = 128\n\
                 pm = static\npm.max_children = {WORKERS}\npm.max_requests = 0\n\
                 catch_workers_output = yes\ndecorate_workers_output = no\n\
                 php_admin_value[chat.redis_url] = {url}\nphp_admin_value[chat.namespace] = {namespace}\n\
                 php_admin_value[chat.timeout_ms] = 2000\nphp_admin_flag[display_errors] = on\n{extra}",
                log = dir.path().join("fpm.log").display(),
                pid = dir.path().join("fpm.pid").display(),
                user = if root { "user = root\ngroup = root\n" } else { "" },
            ),
        )
        .unwrap();
        let ext = bin_dir().join("libchat.so");
        assert!(
            ext.exists(),
            "{} is missing: run `make build` first",
            ext.display()
        );
        let mut cmd = Command::new(php_fpm());
        cmd.arg("-n") // no php.ini: an installed chat.so must not load twice
            .arg("-y")
            .arg(&conf)
            .arg("-d")
            .arg(format!("extension={}", ext.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if root {
            cmd.arg("-R");
        }
        let child = cmd.spawn().expect("start php-fpm");
        let mut fpm = Fpm {
            child: Some(child),
            port,
            dir,
            namespace: namespace.to_owned(),
            script,
        };

        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = fpm.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("php-fpm exited with {status}:\n{}", fpm.log());
            }
            assert!(
                Instant::now() < deadline,
                "php-fpm did not listen on {port}:\n{}",
                fpm.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        fpm
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fpm.log")).unwrap_or_default()
    }

    fn key(&self, uid: &str, what: &str) -> String {
        format!("{}:{{u:{uid}}}:{what}", self.namespace)
    }

    /// `clients` threads each send `per_client` requests, one at a time; push numbers start at
    /// `first`. Returns every outcome.
    fn load(&self, clients: usize, per_client: usize, first: usize) -> Vec<Outcome> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    s.spawn(move || {
                        (0..per_client)
                            .map(|i| self.request(first + c * per_client + i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    }

    fn request(&self, n: usize) -> Outcome {
        let query = format!("n={n}");
        let script = self.script.to_str().unwrap();
        let params = [
            ("GATEWAY_INTERFACE", "FastCGI/1.0"),
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_FILENAME", script),
            ("SCRIPT_NAME", "/push.php"),
            ("REQUEST_URI", &format!("/push.php?{query}")),
            ("QUERY_STRING", &query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("CONTENT_LENGTH", "0"),
        ];
        let (status, body) = fastcgi::get(("127.0.0.1", self.port), &params)
            .unwrap_or_else(|e| panic!("FastCGI request {n} failed: {e}\n{}", self.log()));
        Outcome::parse(status, &body)
    }

    /// The envelopes in `uid`'s inbox stream, read with redis-cli.
    fn stream_of(&self, uid: &str, redis: &Redis) -> Vec<serde_json::Value> {
        let raw = redis
            .cmd(&["XRANGE", &self.key(uid, "stream"), "-", "+"])
            .unwrap();
        raw.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// No worker died on a signal (a crash in the extension would show here).
    fn assert_no_crash(&self) {
        let log = self.log();
        assert!(
            !log.contains("exited on signal"),
            "a worker crashed:\n{log}"
        );
        assert!(!log.contains("PHP Fatal error"), "a fatal error:\n{log}");
    }
}

impl Drop for Fpm {
    /// SIGTERM, after which the master stops its workers; SIGKILL if it does not exit.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// php-fpm of the PHP the extension was built for.
fn php_fpm() -> PathBuf {
    if let Some(p) = std::env::var_os("CHAT_PHP_FPM") {
        return PathBuf::from(p);
    }
    let version = Command::new("php")
        .args([
            "-n",
            "-r",
            "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut candidates = vec![PathBuf::from(format!("/usr/sbin/php-fpm{version}"))];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("php-fpm")));
    }
    candidates.push(PathBuf::from("/usr/sbin/php-fpm"));
    candidates.push(PathBuf::from("/usr/local/sbin/php-fpm"));
    candidates.into_iter().find(|p| p.is_file()).expect(
        "php-fpm not found: run `make deps` (Debian: apt-get install php-fpm), or set CHAT_PHP_FPM",
    )
}

/// The page under load: one push per request; reports which worker served it, when (a
/// monotonic clock shared by all processes, to order each worker's requests), and how it went.
/// Anything but Chat\ConnectionException is left uncaught, so a fatal error shows as such.
const PUSH_PHP: &str = r#"<?php
declare(strict_types=1);
$pid = getmypid();
$at = hrtime(true);
try {
    $id = chat_push('bob', ['n' => (int) $_GET['n'], 'worker' => $pid]);
    echo "ok $pid $at $id";
} catch (Chat\ConnectionException $e) {
    http_response_code(503);
    echo "connection $pid $at ", $e->getMessage();
}
"#;

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Ok,
    Connection,
    /// Anything else: a fatal error, another exception, a crash.
    Other,
}

#[derive(Debug)]
struct Outcome {
    kind: Kind,
    pid: u32,
    started_ns: u64,
    /// The message id, or the exception message, or the whole body.
    detail: String,
}

impl Outcome {
    fn parse(status: u16, body: &str) -> Outcome {
        let mut parts = body.splitn(4, ' ');
        let (kind, pid, at, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
        let kind = match (status, kind) {
            (200, Some("ok")) => Kind::Ok,
            (503, Some("connection")) => Kind::Connection,
            _ => Kind::Other,
        };
        if kind == Kind::Other {
            return Outcome {
                kind,
                pid: 0,
                started_ns: 0,
                detail: format!("HTTP {status}: {body}"),
            };
        }
        Outcome {
            kind,
            pid: pid.and_then(|p| p.parse().ok()).unwrap_or(0),
            started_ns: at.and_then(|t| t.parse().ok()).unwrap_or(0),
            detail: rest.unwrap_or_default().to_owned(),
        }
    }
}

/// Connections Redis has from the extension: all but redis-cli's own (which runs CLIENT LIST).
fn extension_connections(redis: &Redis) -> usize {
    let list = redis.cmd(&["CLIENT", "LIST"]).expect("redis answers");
    list.lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .count()
}

/// `total_connections_received` of INFO, counting the redis-cli that asks.
fn total_connections(redis: &Redis) -> u64 {
    let info = redis.cmd(&["INFO", "stats"]).expect("redis answers");
    info.lines()
        .find_map(|l| l.trim().strip_prefix("total_connections_received:"))
        .and_then(|v| v.parse().ok())
        .expect("total_connections_received in INFO stats")
}

/// A FastCGI client for one request at a time (the part of the protocol a web server uses).
mod fastcgi {
    use super::*;

    const VERSION: u8 = 1;
    const BEGIN_REQUEST: u8 = 1;
    const END_REQUEST: u8 = 3;
    const PARAMS: u8 = 4;
    const STDIN: u8 = 5;
    const STDOUT: u8 = 6;
    const STDERR: u8 = 7;
    const RESPONDER: u16 = 1;
    const REQUEST_ID: u16 = 1;

    /// Sends a request without body; returns the HTTP status (from the `Status:` header, 200 if
    /// none) and the body.
    pub fn get(addr: (&str, u16), params: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(PATIENCE))?;
        let mut out = Vec::new();
        // flags 0: php-fpm closes the connection after the response.
        let mut begin = RESPONDER.to_be_bytes().to_vec();
        begin.extend([0u8; 6]);
        record(&mut out, BEGIN_REQUEST, &begin);
        let mut encoded = Vec::new();
        for (k, v) in params {
            length(&mut encoded, k.len());
            length(&mut encoded, v.len());
            encoded.extend(k.as_bytes());
            encoded.extend(v.as_bytes());
        }
        for chunk in encoded.chunks(65535) {
            record(&mut out, PARAMS, chunk);
        }
        record(&mut out, PARAMS, &[]);
        record(&mut out, STDIN, &[]);
        s.write_all(&out)?;

        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        loop {
            let mut header = [0u8; 8];
            s.read_exact(&mut header)?;
            let len = u16::from_be_bytes([header[4], header[5]]) as usize;
            let mut content = vec![0u8; len + header[6] as usize];
            s.read_exact(&mut content)?;
            content.truncate(len);
            match header[1] {
                STDOUT => stdout.extend(content),
                STDERR => stderr.extend(content),
                END_REQUEST => break,
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", &text));
        let status = head
            .lines()
            .find_map(|l| l.strip_prefix("Status: "))
            .and_then(|s| s.get(..3)?.parse().ok())
            .unwrap_or(200);
        let mut body = body.to_owned();
        if !stderr.is_empty() {
            body.push_str(&format!(" [stderr: {}]", String::from_utf8_lossy(&stderr)));
        }
        Ok((status, body))
    }

    fn record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
        out.extend([VERSION, kind]);
        out.extend(REQUEST_ID.to_be_bytes());
        out.extend((content.len() as u16).to_be_bytes());
        out.extend([0, 0]); // no padding, reserved
        out.extend(content);
    }

    fn length(out: &mut Vec<u8>, n: usize) {
        if n < 128 {
            out.push(n as u8);
        } else {
            out.extend((n as u32 | 0x8000_0000).to_be_bytes());
        }
    }
}
