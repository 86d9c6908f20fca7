//! The documented reverse proxies in front of two real sidecar nodes on one real Redis:
//! nginx with `deploy/nginx/chat-locations.conf` as it is, and the chat host of
//! `deploy/caddy/Caddyfile`. Through each, WebSocket, SSE, long-polling and `POST /send` work,
//! on either node, with messages pushed from PHP; a long-poll client whose polls alternate
//! between the nodes gets every message once; and what must stay private does. The TLS site
//! file `deploy/nginx/chat.conf` serves it all over HTTPS and HTTP/2.

use std::collections::BTreeSet;

use chat_e2e::caddy::Caddy;
use chat_e2e::http::{http_to_host, Answer};
use chat_e2e::nginx::{locations_file, Nginx};
use chat_e2e::{url_encode, Client, Php, Redis, Sidecar, Sse, PATIENCE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The proxies under test: the same scenarios run through each.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Nginx,
    Caddy,
}

enum Proxy {
    Nginx(Nginx),
    Caddy(Caddy),
}

impl Proxy {
    fn addr(&self) -> &str {
        match self {
            Proxy::Nginx(n) => &n.addr,
            Proxy::Caddy(c) => &c.addr,
        }
    }

    fn logs(&self) -> String {
        match self {
            Proxy::Nginx(n) => n.logs(),
            Proxy::Caddy(c) => c.logs(),
        }
    }
}

/// Two nodes with names of their own (the node a client reached is in its `welcome` and its
/// `conn`), and a proxy in front of them.
struct Stack {
    redis: Redis,
    nodes: Vec<Sidecar>,
    proxy: Proxy,
}

impl Stack {
    fn start(kind: Kind) -> Stack {
        let redis = Redis::start();
        let nodes: Vec<Sidecar> =
            ["node-a", "node-b"].iter().map(|id| Sidecar::start_with(&redis, &[("CHAT_NODE_ID", id)])).collect();
        let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
        let proxy = match kind {
            Kind::Nginx => Proxy::Nginx(Nginx::start(&addrs)),
            Kind::Caddy => Proxy::Caddy(Caddy::start(&addrs)),
        };
        Stack { redis, nodes, proxy }
    }

    fn php(&self) -> Php {
        Php::new(&self.redis)
    }

    fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws?{query}", self.proxy.addr())
    }
}

/// Each scenario, once through nginx and once through Caddy.
macro_rules! through_each_proxy {
    ($($scenario:ident),* $(,)?) => {
        mod nginx {
            $( #[tokio::test] async fn $scenario() { super::$scenario(super::Kind::Nginx).await } )*
        }
        mod caddy {
            $( #[tokio::test] async fn $scenario() { super::$scenario(super::Kind::Caddy).await } )*
        }
    };
}

through_each_proxy!(
    websocket_clients_on_both_nodes_get_what_php_pushes,
    sse_streams_arrive_uncompressed_as_they_happen_and_resume_on_the_other_node,
    a_long_poll_client_alternating_between_nodes_gets_every_message_once,
    chat_js_and_healthz_are_public_and_metrics_and_readyz_are_not,
);

/// One HTTP/1.0 request naming the proxies' site.
async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    http_to_host(addr, "chat.example.com", method, path, headers, body).await
}

/// The node part of a connection name `<node id>-<n>`.
fn node_of(conn: &str) -> &str {
    conn.rsplit_once('-').map(|(node, _)| node).unwrap_or_else(|| panic!("conn {conn:?} has no node"))
}

async fn websocket_clients_on_both_nodes_get_what_php_pushes(kind: Kind) {
    let stack = Stack::start(kind);
    let php = stack.php();
    let mut nodes = BTreeSet::new();
    let mut clients = Vec::new();
    for uid in ["alice", "bob"] {
        let token = php.token(uid).await;
        let mut c = Client::connect(&stack.ws_url(&format!("token={token}"))).await;
        let welcome = c.recv().await;
        assert_eq!((welcome["type"].as_str(), welcome["uid"].as_str()), (Some("welcome"), Some(uid)), "{welcome}");
        nodes.insert(welcome["node"].as_str().unwrap().to_owned());
        clients.push((uid, c));
    }
    // Round robin: one after the other, the two connections land on different nodes.
    assert_eq!(nodes, BTreeSet::from(["node-a".to_owned(), "node-b".to_owned()]), "{}", stack.proxy.logs());
    for (uid, c) in &mut clients {
        let id = php.push(uid, &format!(r#"{{"to":"{uid}"}}"#), None).await;
        let m = c.recv_message().await;
        assert_eq!((m["id"].as_str(), m["data"]["to"].as_str()), (Some(id.as_str()), Some(*uid)));
    }
    // Frames from the client pass too (the proxy relays both directions of the upgraded connection).
    let (_, alice) = &mut clients[0];
    alice.send_text(r#"{"type":"ping","ref":1}"#).await;
    assert_eq!(alice.recv_type("pong").await["ref"], 1);
}

async fn sse_streams_arrive_uncompressed_as_they_happen_and_resume_on_the_other_node(kind: Kind) {
    let stack = Stack::start(kind);
    let php = stack.php();
    let token = php.token("carol").await;
    let mut sse = Sse::open_at(stack.proxy.addr(), &format!("token={token}"), None).await;
    let welcome = sse.next().await;
    assert_eq!(welcome.data["type"], "welcome", "{:?}", welcome.data);
    let first_node = welcome.data["node"].as_str().unwrap().to_owned();
    // Each push must come through on its own: a buffering or compressing proxy would sit on
    // these few bytes, and the test would time out.
    let mut ids = Vec::new();
    for i in 1..=3 {
        php.push("carol", &format!(r#"{{"i":{i}}}"#), None).await;
        let m = sse.next_message().await;
        assert_eq!((m.data["seq"].as_u64(), m.data["data"]["i"].as_u64()), (Some(i), Some(i)));
        ids.push(m.id.unwrap());
    }
    drop(sse);

    // The browser's reconnect (Last-Event-ID after message 1) reaches the other node, which
    // resumes from it.
    php.push("carol", r#"{"i":4}"#, None).await;
    let mut again = Sse::open_at(stack.proxy.addr(), &format!("token={token}"), Some(&ids[0])).await;
    let welcome = again.next().await;
    assert_ne!(welcome.data["node"].as_str().unwrap(), first_node, "round robin: {}", stack.proxy.logs());
    assert_eq!(welcome.data["cursors"], json!({"u:carol": 1}));
    for i in 2..=4 {
        assert_eq!(again.next_message().await.data["seq"], i);
    }
    // What SSE clients send goes by POST /send; this one reaches the node the stream left.
    let frank = php.token("frank").await;
    let frame = r#"{"type":"send","to":"carol","data":{"i":"from frank"},"ref":"f1"}"#;
    let sent = http(stack.proxy.addr(), "POST", "/send", &[("Authorization", &format!("Bearer {frank}")), ("Content-Type", "application/json")], frame).await;
    assert_eq!((sent.status, sent.json()["ref"].as_str()), (200, Some("f1")), "{}", sent.body);
    let m = again.next_message().await;
    assert_eq!((m.data["from"].as_str(), m.data["seq"].as_u64()), (Some("frank"), Some(5)));
}

/// Polls through the proxy with the client's cursors, as chat.js does; returns the answer.
async fn poll(stack: &Stack, token: &str, conn: Option<&str>, cursor: u64, timeout_ms: u64) -> Value {
    let cursors = url_encode(&json!({"u:dan": cursor}).to_string());
    let conn = conn.map(|c| format!("&conn={c}")).unwrap_or_default();
    let a = http(stack.proxy.addr(), "GET", &format!("/poll?token={token}&cursors={cursors}{conn}&timeout={timeout_ms}"), &[], "").await;
    assert_eq!(a.status, 200, "{}\n{}", a.body, stack.proxy.logs());
    a.json()
}

async fn a_long_poll_client_alternating_between_nodes_gets_every_message_once(kind: Kind) {
    let stack = Stack::start(kind);
    let php = stack.php();
    let dan = php.token("dan").await;
    const N: u64 = 12;
    let (mut pushed, mut cursor, mut conn, mut answered_by) = (0u64, 0u64, None::<String>, Vec::new());
    let (mut got, mut history) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + PATIENCE * 2;
    for round in 0.. {
        // None, one or two new messages before each poll, until all are out.
        for _ in 0..round % 3 {
            if pushed < N {
                pushed += 1;
                php.push("dan", &format!(r#"{{"n":{pushed}}}"#), None).await;
            }
        }
        if pushed == N && cursor == N {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{cursor} of {N} messages; answers from {answered_by:?}");
        let answer = poll(&stack, &dan, conn.as_deref(), cursor, 3000).await;
        let this_conn = answer["conn"].as_str().unwrap().to_owned();
        answered_by.push(node_of(&this_conn).to_owned());
        history.push(format!("cursor {cursor}, conn {conn:?} -> {answer}"));
        let history = || format!("{}\n{}\n{}", history.join("\n"), stack.nodes.iter().map(Sidecar::logs).collect::<Vec<_>>().join("\n---\n"), stack.proxy.logs());
        for f in answer["frames"].as_array().unwrap() {
            match f["type"].as_str() {
                // The poll reached the other node, which started a session from our cursors.
                Some("welcome") => assert_eq!(f["cursors"]["u:dan"].as_u64(), Some(cursor), "{}", history()),
                Some("message") => {
                    assert_eq!(f["seq"].as_u64(), Some(cursor + 1), "once and in order: {}", history());
                    cursor += 1;
                    got.push(f["data"]["n"].as_u64().unwrap());
                }
                _ => {}
            }
        }
        conn = Some(this_conn);
    }
    assert_eq!(got, (1..=N).collect::<Vec<_>>());
    // Nothing else goes through this proxy meanwhile, so round robin sends each poll to the
    // node the previous one did not reach.
    assert!(answered_by.len() > 2 && answered_by.windows(2).all(|w| w[0] != w[1]), "answers from {answered_by:?}\n{}", stack.proxy.logs());
}

async fn chat_js_and_healthz_are_public_and_metrics_and_readyz_are_not(kind: Kind) {
    let stack = Stack::start(kind);
    let js = http(stack.proxy.addr(), "GET", "/chat.js", &[], "").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(js.body, std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../client/chat.js")).unwrap());
    if kind == Kind::Nginx {
        let gz = http(stack.proxy.addr(), "GET", "/chat.js", &[("Accept-Encoding", "gzip")], "").await;
        assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"), "the client script is compressed");
    }
    assert_eq!(http(stack.proxy.addr(), "GET", "/chat.d.ts", &[], "").await.status, 200);
    assert_eq!(http(stack.proxy.addr(), "GET", "/healthz", &[], "").await.status, 200);
    for private in ["/metrics", "/readyz"] {
        assert_eq!(http(stack.proxy.addr(), "GET", private, &[], "").await.status, 404, "{private}");
        // Each node still answers it on its own address.
        assert_eq!(stack.nodes[0].get(private).await.0, 200, "{private}");
    }
    // A browser page on another origin: the node's CORS answers pass through the proxy.
    let pre = http(stack.proxy.addr(), "OPTIONS", "/send", &[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")], "").await;
    assert_eq!((pre.status, pre.header("access-control-allow-origin").as_deref()), (204, Some("https://app.example.com")));
}

/// nginx cuts a proxied connection whose node sent nothing for `proxy_read_timeout`: on every
/// long-lived path it must outlast the heartbeat (25 s) and the longest poll (60 s, plus up
/// to 15 s for a session to start). Too slow to wait out here, so read from the file.
#[test]
fn read_timeouts_outlast_the_heartbeat_and_the_longest_poll() {
    let conf = std::fs::read_to_string(locations_file()).unwrap();
    for path in ["/ws", "/sse", "/poll"] {
        let block = conf
            .split("location ")
            .find(|b| b.starts_with(&format!("= {path} ")))
            .unwrap_or_else(|| panic!("no `location = {path}` in {}", locations_file().display()));
        let block = &block[..block.find('}').unwrap()];
        let secs: u64 = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("proxy_read_timeout "))
            .and_then(|v| v.trim_end_matches(';').strip_suffix('s')?.parse().ok())
            .unwrap_or_else(|| panic!("{path}: no proxy_read_timeout in seconds (nginx's default, 60 s, is too short)"));
        assert!(secs > 60 + 15, "{path}: proxy_read_timeout {secs}s");
    }
}

/// `deploy/nginx/chat.conf` itself, with a certificate of our own where certbot's would be and
/// local addresses for the nodes and ports: HTTPS (HTTP/2) to the chat host, HTTP redirected.
#[tokio::test]
async fn the_tls_site_serves_the_chat_host_over_https() {
    let redis = Redis::start();
    let nodes: Vec<Sidecar> = ["node-a", "node-b"].iter().map(|id| Sidecar::start_with(&redis, &[("CHAT_NODE_ID", id)])).collect();
    let tls = tempfile::tempdir().unwrap();
    let (cert, key) = (tls.path().join("fullchain.pem"), tls.path().join("privkey.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=chat.example.com", "-addext", "subjectAltName=DNS:chat.example.com"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is missing: run `make deps`");
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));

    let (ip, https) = chat_e2e::own_loopback();
    let http_port = std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
    let mut site = std::fs::read_to_string(locations_file().with_file_name("chat.conf")).unwrap();
    for (from, to) in [
        ("server 10.0.0.11:9501;", format!("server {};", nodes[0].addr)),
        ("server 10.0.0.12:9501;", format!("server {};", nodes[1].addr)),
        ("listen 80;", format!("listen {ip}:{http_port};")),
        ("listen [::]:80;", String::new()),
        ("listen 443 ssl http2;", format!("listen {ip}:{https} ssl http2;")),
        ("listen [::]:443 ssl http2;", String::new()),
        ("/etc/letsencrypt/live/chat.example.com/", format!("{}/", tls.path().display())),
    ] {
        assert!(site.contains(from), "deploy/nginx/chat.conf no longer has {from:?}: adapt this test");
        site = site.replace(from, &to);
    }
    let nginx = Nginx::start_site(&site, &format!("{ip}:{https}"));

    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "15", "--cacert"])
            .arg(&cert)
            .arg("--resolve")
            .arg(format!("chat.example.com:{https}:{ip}"))
            .arg("--resolve")
            .arg(format!("chat.example.com:{http_port}:{ip}"))
            .args(args)
            .output()
            .expect("curl is missing: run `make deps`");
        assert!(out.status.success(), "curl {args:?}: {}\n{}", String::from_utf8_lossy(&out.stderr), nginx.logs());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = format!("https://chat.example.com:{https}");
    assert_eq!(curl(&["--http2", "-w", " %{http_version}", &format!("{base}/healthz")]), "ok\n 2");
    let php = Php::new(&redis);
    let token = php.token("gus").await;
    let answer: Value = serde_json::from_str(&curl(&[&format!("{base}/poll?token={token}&timeout=0")])).unwrap();
    assert_eq!(answer["frames"][0]["type"], "welcome", "{answer}");
    assert_eq!(curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("{base}/metrics")]), "404");
    let redirect = curl(&["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", &format!("http://chat.example.com:{http_port}/chat.js")]);
    assert_eq!(redirect, "301 https://chat.example.com/chat.js");
}
