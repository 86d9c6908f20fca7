//! Harness for the end-to-end tests: starts a real `redis-server`, the real `chat-sidecar`
//! binary and the real `php` CLI with the built extension, each on free ports in a temporary
//! directory, and stops them when dropped.
//!
//! The binaries are taken from `target/release` (built by `make build`); set `CHAT_BIN_DIR`
//! to use others. Waiting is always for a condition (a log line, a reply, a frame), with a
//! deadline, never a fixed sleep.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod caddy;
pub mod device;
pub mod http;
pub mod nginx;
pub mod sentinel;

pub const SECRET: &str = "e2e-secret";
/// Upper bound for anything the tests wait on.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn bin_dir() -> PathBuf {
    match std::env::var_os("CHAT_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"),
    }
}

fn require(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run `make build` first", path.display());
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback address of the caller's own (all of 127.0.0.0/8 is loopback on Linux) and a port
/// free on it, for a server that tests running in parallel must not share: two that picked the
/// same port on 127.0.0.1 would collide, and Caddy (SO_REUSEPORT) would even share it silently.
pub fn own_loopback() -> (std::net::Ipv4Addr, u16) {
    use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let pid = std::process::id();
    let ip = std::net::Ipv4Addr::new(127, (pid >> 8) as u8, pid as u8, NEXT.fetch_add(1, Relaxed) % 250 + 2);
    let port = TcpListener::bind((ip, 0)).expect("bind a loopback address").local_addr().unwrap().port();
    (ip, port)
}

/// Polls `check` until it returns `Some`, or panics after [`PATIENCE`] naming `what`.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A redis-server of our own.
pub struct Redis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Arguments that replace the default persistence (append-only file, fsync every second).
    persistence: Vec<String>,
    /// Further arguments (`--replicaof …`).
    pub extra: Vec<String>,
}

impl Redis {
    /// A new Redis whose `chat` namespace is declared whole, as the first sidecar started on it
    /// would (`chat:dataset` = `g1`): tests may push before any sidecar runs. Pushes to a Redis
    /// without the marker are refused (see [`Redis::start_bare`]).
    pub fn start() -> Redis {
        let r = Redis::start_bare();
        r.cmd(&["SET", "chat:dataset", "g1", "NX"]).expect("declare the dataset");
        r
    }

    /// A new, empty Redis, as an operator hands it over.
    pub fn start_bare() -> Redis {
        Redis::start_configured(&["--appendonly", "yes", "--appendfsync", "everysec"], &[])
    }

    /// A Redis with the `chat` dataset declared, without persistence: a restart comes back empty.
    pub fn start_volatile() -> Redis {
        let r = Redis::start_configured(&["--appendonly", "no"], &[]);
        r.cmd(&["SET", "chat:dataset", "g1", "NX"]).expect("declare the dataset");
        r
    }

    /// A Redis with these persistence arguments and further ones, nothing declared.
    pub fn start_configured(persistence: &[&str], extra: &[&str]) -> Redis {
        let own = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        let mut r = Redis { port: free_port(), dir: tempfile::tempdir().unwrap(), child: None, persistence: own(persistence), extra: own(extra) };
        r.restart();
        r
    }

    /// Removes everything the server persisted (while it is stopped): it comes back empty.
    pub fn wipe(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { std::fs::remove_dir_all(&path).unwrap() } else { std::fs::remove_file(&path).unwrap() }
        }
    }

    /// Stops with SIGKILL (a crash: nothing written on the way out).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts on the same port with append-only persistence, so data survives a restart.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(&self.persistence)
            .args(&self.extra)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server not found: run `make deps` (or apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while self.cmd(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < deadline, "redis-server did not come up on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops gracefully (SIGTERM: Redis writes its append-only file first), as a restart would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs one command through redis-cli; `None` when Redis does not answer.
    pub fn cmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MariaDB server of our own (mariadb-install-db into a temp dir, then mariadbd).
pub struct MariaDb {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl MariaDb {
    pub fn start() -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        // Its own tmpdir: parallel installs sharing /tmp collide on temporary table names.
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--tmpdir={}", dir.path().join("tmp").display()))
            .output()
            .expect("mariadb-install-db not found: run `make deps` (or apt-get install mariadb-server)");
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut db = MariaDb { port: free_port(), dir, child: None };
        db.restart();
        db.sql("CREATE DATABASE chat");
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/chat", self.port)
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let d = self.dir.path();
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("server.log")).unwrap())
            .spawn()
            .expect("mariadbd not found: run `make deps`");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE * 2;
        while self.try_sql("SELECT 1").is_none() {
            assert!(Instant::now() < deadline, "mariadbd did not come up:\n{}", std::fs::read_to_string(d.join("server.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs SQL with the mariadb client; returns tab-separated rows without headers.
    pub fn try_sql(&self, sql: &str) -> Option<String> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "-h127.0.0.1", "-N", "-B"])
            .arg(format!("-P{}", self.port))
            .args(["-e", sql])
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|| panic!("SQL failed: {sql}"))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running chat-sidecar.
pub struct Sidecar {
    pub addr: String,
    child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    pub fn start(redis: &Redis) -> Sidecar {
        Self::start_with(redis, &[])
    }

    /// Starts with extra `CHAT_*` settings; waits for its "listening on" line.
    pub fn start_with(redis: &Redis, env: &[(&str, &str)]) -> Sidecar {
        Sidecar::start_on(&redis.url(), env)
    }

    /// Starts on the Redis `redis_url` names (a `redis+sentinel://` URL, say).
    pub fn start_on(redis_url: &str, env: &[(&str, &str)]) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sidecar.log");
        let mut cmd = Command::new(require(bin_dir().join("chat-sidecar")));
        cmd.env_clear()
            .env("CHAT_LISTEN", "127.0.0.1:0")
            .env("CHAT_REDIS_URL", redis_url)
            .env("CHAT_JWT_SECRET", SECRET)
            .env("CHAT_LOG", "info,chat_sidecar=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start chat-sidecar");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("chat-sidecar listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("sidecar did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        Sidecar { addr, child, log, _dir: dir }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws?{}", self.addr, query)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path over plain HTTP/1.0; returns (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(&self.addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let status = buf.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// One counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("chat_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found in:\n{body}"))
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the node is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Stops with SIGKILL (a crash), not a graceful shutdown.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The php CLI with the built extension, configured for one Redis.
pub struct Php {
    pub redis_url: String,
    /// Extra `-d` INI settings.
    pub ini: Vec<String>,
}

impl Php {
    pub fn new(redis: &Redis) -> Php {
        Php { redis_url: redis.url(), ini: Vec::new() }
    }

    /// The same, with an extra INI setting (`"chat.retention=100"`).
    pub fn with_ini(mut self, setting: &str) -> Php {
        self.ini.push(setting.to_owned());
        self
    }

    /// Runs PHP code; returns stdout, or panics with stderr when php exits non-zero.
    pub async fn run(&self, code: &str) -> String {
        let (ok, out, err) = self.try_run(code).await;
        assert!(ok, "php failed:\n{code}\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Runs PHP code; returns (exited 0, stdout, stderr).
    pub async fn try_run(&self, code: &str) -> (bool, String, String) {
        let out = self.command(code).output().await.expect("php not found: run `make deps`");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The php command that runs `code`, for a caller that reads its output as it comes.
    pub fn command(&self, code: &str) -> tokio::process::Command {
        let ext = require(bin_dir().join("libchat.so"));
        let mut cmd = tokio::process::Command::new("php");
        cmd
            .arg("-n")
            .arg("-d")
            .arg(format!("extension={}", ext.display()))
            .arg("-d")
            // Quoted: an INI value with `=` or `&` (a URL with parameters) must be.
            .arg(format!("chat.redis_url=\"{}\"", self.redis_url))
            .arg("-d")
            .arg(format!("chat.jwt_secret={SECRET}"))
            .args(self.ini.iter().flat_map(|s| ["-d", s.as_str()]))
            .arg("-r")
            .arg(code);
        cmd
    }

    pub async fn token(&self, uid: &str) -> String {
        self.run(&format!("echo chat_token({uid:?});")).await
    }

    /// `chat_push($uid, $json_decoded_message, $options)`; returns the message id.
    pub async fn push(&self, uid: &str, message_json: &str, from: Option<&str>) -> String {
        let opts = from.map(|f| format!("['from' => {f:?}]")).unwrap_or_else(|| "[]".into());
        self.run(&format!("echo chat_push({uid:?}, json_decode({message_json:?}, true), {opts});")).await
    }

    pub async fn is_online(&self, uid: &str) -> bool {
        match self.run(&format!("echo json_encode(chat_is_online({uid:?}));")).await.as_str() {
            "true" => true,
            "false" => false,
            other => panic!("chat_is_online printed {other:?}"),
        }
    }

    pub async fn json(&self, expr: &str) -> Value {
        let out = self.run(&format!("echo json_encode({expr});")).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{expr} gave non-JSON {out:?}: {e}"))
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client as a browser or app would be.
pub struct Client {
    pub ws: Socket,
}

impl Client {
    /// Connects to `url`; panics if the handshake fails.
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Client { ws }
    }

    /// Connects with extra request headers; returns the HTTP error status if refused.
    pub async fn connect_with_headers(url: &str, headers: &[(&'static str, &str)]) -> Result<Client, u16> {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(*k, v.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect {url}: {e}"),
        }
    }

    /// Connects as `uid` with a token minted by PHP and waits for the welcome frame.
    pub async fn login(sidecar: &Sidecar, php: &Php, uid: &str) -> (Client, Value) {
        let token = php.token(uid).await;
        let mut c = Client::connect(&sidecar.ws_url(&format!("token={token}"))).await;
        let welcome = c.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["uid"], uid);
        (c, welcome)
    }

    /// Connects as `uid` with resume cursors (JSON object) and client-driven acks when asked.
    pub async fn resume(sidecar: &Sidecar, php: &Php, uid: &str, cursors: Option<&serde_json::Value>, client_acks: bool) -> (Client, Value) {
        let token = php.token(uid).await;
        let mut query = format!("token={token}");
        if let Some(c) = cursors {
            query.push_str("&cursors=");
            query.push_str(&url_encode(&c.to_string()));
        }
        if client_acks {
            query.push_str("&ack=client");
        }
        let mut c = Client::connect(&sidecar.ws_url(&query)).await;
        let welcome = c.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (c, welcome)
    }

    /// Next frame of the given type, skipping others.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Next text frame as JSON (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("read error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("server sent non-JSON text"),
                Message::Close(c) => panic!("closed while waiting for a frame: {c:?}"),
                _ => continue,
            }
        }
    }

    /// Next `message` frame, skipping other frame types.
    pub async fn recv_message(&mut self) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == "message" {
                return v;
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Reads until the server's close frame; returns (code, reason). Frames before it are skipped.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("timed out waiting for close");
            match next {
                Some(Ok(Message::Close(Some(f)))) => return (f.code.into(), f.reason.to_string()),
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Performs a clean close handshake initiated by the client.
    pub async fn close(mut self) {
        self.ws.close(None).await.unwrap();
        while let Some(Ok(_)) = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("close handshake timed out") {}
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A webhook we received, and what we answered.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// `X-Chat-Signature`: `t=<unix seconds>,v1=<hex>`.
    pub signature: String,
    pub delivery: String,
    pub body: String,
    pub answered: u16,
}

impl WebhookRequest {
    /// The signature's timestamp (`t=`), when it has one.
    pub fn signed_at(&self) -> Option<u64> {
        self.signature.split(',').find_map(|item| item.trim().strip_prefix("t=")?.parse().ok())
    }
}

/// PHP code loading `Chat\Webhook` from the chat-php package (php-examples/chat-php).
pub fn webhook_prelude() -> String {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../php-examples/chat-php/src/Webhook.php");
    format!("require {src:?}; use Chat\\Webhook;")
}

/// An HTTP endpoint that answers 500 to the first `failures` webhooks of event
/// `failing_event`, and 200 to everything else.
pub async fn webhook_receiver(failures: usize, failing_event: &'static str) -> (String, Arc<Mutex<Vec<WebhookRequest>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/chat-hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = tokio::io::BufReader::new(stream);
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
            let body = String::from_utf8(body).unwrap();
            let event_matches = body.contains(&format!(r#""event":"{failing_event}""#));
            let failed_so_far = log.lock().unwrap().iter().filter(|r: &&WebhookRequest| r.answered == 500).count();
            let answered = if event_matches && failed_so_far < failures { 500 } else { 200 };
            log.lock().unwrap().push(WebhookRequest { signature, delivery, body, answered });
            let reply = format!("HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}


/// An open `GET /sse` response, read event by event.
pub struct Sse {
    lines: tokio::io::BufReader<TcpStream>,
}

#[derive(Debug)]
pub struct SseEvent {
    pub kind: String,
    pub id: Option<String>,
    pub data: Value,
}

impl Sse {
    pub async fn open(sidecar: &Sidecar, query: &str, last_event_id: Option<&str>) -> Sse {
        Self::open_at(&sidecar.addr, query, last_event_id).await
    }

    /// The same at any address (a proxy in front of nodes). It asks for compression as
    /// browsers do, and fails if the stream comes compressed: a compressor holds events back.
    pub async fn open_at(addr: &str, query: &str, last_event_id: Option<&str>) -> Sse {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req = format!("GET /sse?{query} HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip\r\n");
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut lines = tokio::io::BufReader::new(s);
        let mut status = String::new();
        lines.read_line(&mut status).await.unwrap();
        assert!(status.contains(" 200 "), "SSE answer: {status}");
        loop {
            let mut h = String::new();
            lines.read_line(&mut h).await.unwrap();
            if h.trim().is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("content-type:") {
                assert!(h.contains("text/event-stream"), "{h}");
            }
            assert!(!h.to_ascii_lowercase().starts_with("content-encoding:"), "the event stream must not be compressed: {h}");
        }
        Sse { lines }
    }

    /// The next event (comments skipped).
    pub async fn next(&mut self) -> SseEvent {
        let (mut kind, mut id, mut data) = ("message".to_owned(), None, Vec::new());
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(PATIENCE, self.lines.read_line(&mut line)).await.expect("SSE event in time").unwrap();
            assert!(n > 0, "SSE stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data.join("\n")).expect("SSE data is JSON");
                return SseEvent { kind, id, data };
            }
            match line.split_once(": ").unwrap_or((line, "")) {
                ("event", v) => kind = v.to_owned(),
                ("id", v) => id = Some(v.to_owned()),
                ("data", v) => data.push(v.to_owned()),
                _ => {} // a comment (heartbeat)
            }
        }
    }

    pub async fn next_message(&mut self) -> SseEvent {
        loop {
            let e = self.next().await;
            assert_ne!(e.kind, "close", "closed while waiting for a message: {:?}", e.data);
            if e.data["type"] == "message" {
                return e;
            }
        }
    }

    /// Whether the server ended the response (read to the end).
    pub async fn ended(&mut self) -> bool {
        let mut rest = String::new();
        matches!(tokio::time::timeout(PATIENCE, self.lines.read_to_string(&mut rest)).await, Ok(Ok(_)))
    }
}

/// PHP code loading the GatewayClient facade (php-examples/gateway-client).
pub fn gateway_prelude() -> String {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../php-examples/gateway-client/src/Gateway.php");
    format!("require {src:?}; use GatewayClient\\Gateway;")
}

/// `json_encode(<expr>)` run in php with the facade loaded.
pub async fn gw(php: &Php, expr: &str) -> Value {
    let out = php.run(&format!("{} echo json_encode({expr});", gateway_prelude())).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{expr} printed {out:?}: {e}"))
}
