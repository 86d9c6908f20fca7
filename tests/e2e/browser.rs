//! Browser tests: headless Chromium (Debian's `chromium`) driven by playwright-core runs the
//! demo pages and the customer-service pages, which use the sidecar's JavaScript client
//! (`client/chat.js`, served at `/chat.js`), against real redis-server, sidecar, php and (for
//! customer service) MariaDB.
//!
//! Each scenario is a Node script in `tests/browser/`; this file starts the servers, runs the
//! script with their URLs in its environment, and does what the script asks mid-way on its
//! stdout (`@stop-sidecar`, `@start-sidecar`), answering `ok` on its stdin. `make test`
//! installs playwright-core (`npm ci` in tests/browser) and chromium first.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_e2e::{bin_dir, free_port, MariaDb, Php, Redis, Sidecar, PATIENCE, SECRET};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One browser at a time: the machines running `make test` have few cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails with the command that installs what is missing, never skips.
fn check_tools() {
    let chromium = std::env::var("CHAT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install it with `sudo apt-get install -y chromium` (make test does, as root, via scripts/deps.sh)"
    );
    assert!(
        Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()),
        "node is missing: install it with `sudo apt-get install -y nodejs npm`"
    );
    assert!(
        repo().join("tests/browser/node_modules/playwright-core/package.json").exists(),
        "playwright-core is missing: run `make browser-deps` (that is `cd tests/browser && npm ci`)"
    );
}

/// `php -S` serving a folder with the built extension, in its own process group (it forks
/// workers), stopped when dropped.
struct PhpServer {
    url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl PhpServer {
    fn start(redis: &Redis, docroot: &str, extra_ini: &[&str], env: &[(&str, String)]) -> PhpServer {
        let ext = bin_dir().join("libchat.so");
        assert!(ext.exists(), "{} is missing: run `make build` first", ext.display());
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("php")
            .arg("-n")
            .args(["-d", &format!("extension={}", ext.display())])
            .args(["-d", &format!("chat.redis_url={}", redis.url())])
            .args(["-d", &format!("chat.jwt_secret={SECRET}")])
            .args(extra_ini.iter().flat_map(|s| ["-d", s]))
            .args(["-S", &addr, "-t"])
            .arg(repo().join(docroot))
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("php.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("php.err")).unwrap())
            .process_group(0)
            .spawn()
            .expect("php not found: run `make deps`");
        let mut server = PhpServer { url: format!("http://{addr}"), child, dir };
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("php -S exited with {status}:\n{}", server.logs());
            }
            assert!(Instant::now() < deadline, "php -S did not listen on {addr}:\n{}", server.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("php.log"), read("php.err"))
    }
}

impl Drop for PhpServer {
    fn drop(&mut self) {
        // The whole group: php -S and its workers.
        let _ = Command::new("kill").arg("--").arg(format!("-{}", self.child.id())).status();
        let _ = self.child.wait();
    }
}

/// Redis, a sidecar on a fixed port (so pages reach it again after a restart) and the demo pages.
struct Stack {
    redis: Redis,
    sidecar: Option<Sidecar>,
    port: u16,
    demo: PhpServer,
}

impl Stack {
    fn start() -> Stack {
        let redis = Redis::start();
        let port = free_port();
        let sidecar = Some(start_sidecar(&redis, port));
        let demo = PhpServer::start(&redis, "php-examples/demo", &[], &[("CHAT_URL", chat_url(port))]);
        Stack { redis, sidecar, port, demo }
    }

    fn sidecar_logs(&self) -> String {
        self.sidecar.as_ref().map(Sidecar::logs).unwrap_or_default()
    }
}

fn chat_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn start_sidecar(redis: &Redis, port: u16) -> Sidecar {
    Sidecar::start_with(redis, &[("CHAT_LISTEN", &format!("127.0.0.1:{port}"))])
}

/// Runs `node tests/browser/<script> <args>` and serves its requests; panics with its output
/// (and the servers' logs) when it does not print PASS and exit 0 in time.
async fn scenario(stack: &mut Stack, script: &str, args: &[&str], env: &[(&str, String)]) {
    check_tools();
    let _one_at_a_time = BROWSER.lock().await;
    let artifacts = repo().join("target/browser-artifacts");
    let mut child = tokio::process::Command::new("node")
        .arg(repo().join("tests/browser").join(script))
        .args(args)
        .env("DEMO_URL", &stack.demo.url)
        .env("CHAT_URL", chat_url(stack.port))
        .env("ARTIFACTS", &artifacts)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is missing: install it with `sudo apt-get install -y nodejs npm`");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut s).await;
        s
    });
    let run = async {
        let mut passed = false;
        while let Some(line) = out.next_line().await.unwrap() {
            match line.as_str() {
                "@stop-sidecar" => stack.sidecar = None, // dropped: SIGKILL, like a crash
                "@start-sidecar" => stack.sidecar = Some(start_sidecar(&stack.redis, stack.port)),
                "PASS" => passed = true,
                other => match other.strip_prefix("@php ") {
                    // PHP code with the extension, as the app would run it (chat_push, chat_kick …).
                    Some(code) => {
                        Php::new(&stack.redis).run(code).await;
                    }
                    None => panic!("{script}: unexpected line on stdout: {other}"),
                },
            }
            if line.starts_with('@') {
                stdin.write_all(b"ok\n").await.unwrap();
            }
        }
        (passed, child.wait().await.unwrap())
    };
    // The scenario bounds each of its waits; this only catches a hung browser.
    let outcome = tokio::time::timeout(Duration::from_secs(240), run).await;
    let log = stderr.await.unwrap_or_default();
    match outcome {
        Ok((true, status)) if status.success() => {}
        Ok((_, status)) => panic!(
            "{script} {args:?} failed ({status}):\n{log}\n--- sidecar log (tail) ---\n{}\n--- php ---\n{}",
            tail(&stack.sidecar_logs(), 40),
            tail(&stack.demo.logs(), 20)
        ),
        Err(_) => panic!("{script} {args:?} did not finish in 240 s:\n{log}"),
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test]
async fn two_pages_chat_over_websocket() {
    let mut stack = Stack::start();
    scenario(&mut stack, "chat.mjs", &["websocket", "websocket"], &[]).await;
}

#[tokio::test]
async fn a_page_on_sse_chats_with_a_page_on_long_polling() {
    let mut stack = Stack::start();
    scenario(&mut stack, "chat.mjs", &["sse", "poll"], &[]).await;
}

/// chat.js on its own: transport fallback, token refresh, refused sends, kick.
#[tokio::test]
async fn the_client_falls_back_refreshes_tokens_reports_refusals_and_stays_kicked() {
    let mut stack = Stack::start();
    scenario(&mut stack, "client.mjs", &[], &[]).await;
}

#[tokio::test]
async fn a_page_recovers_from_a_sidecar_restart_over_websocket() {
    let mut stack = Stack::start();
    scenario(&mut stack, "restart.mjs", &["websocket"], &[]).await;
}

#[tokio::test]
async fn a_page_recovers_from_a_sidecar_restart_over_sse() {
    let mut stack = Stack::start();
    scenario(&mut stack, "restart.mjs", &["sse"], &[]).await;
}

#[tokio::test]
async fn a_page_recovers_from_a_sidecar_restart_over_long_polling() {
    let mut stack = Stack::start();
    scenario(&mut stack, "restart.mjs", &["poll"], &[]).await;
}

/// The demo pages and the customer-service pages in use, as screenshots under
/// target/browser-artifacts/ (one-to-one, group, call, visitor widget, agent console).
#[tokio::test]
async fn screenshots_of_the_demo_pages() {
    let mut stack = Stack::start();
    let db = MariaDb::start();
    let cs = PhpServer::start(
        &stack.redis,
        "php-examples/customer-service/public",
        &["extension=pdo", "extension=mysqlnd", "extension=pdo_mysql"],
        &[
            ("CHAT_WS_URL", format!("ws://127.0.0.1:{}/ws", stack.port)),
            ("CS_DB_DSN", format!("mysql:host=127.0.0.1;port={};dbname=chat;charset=utf8mb4", db.port)),
            ("CS_DB_USER", "root".into()),
            ("CS_AGENTS", "ann:Ann Lee,ben:Ben Ode".into()),
        ],
    );
    scenario(&mut stack, "screenshots.mjs", &[], &[("CS_URL", cs.url.clone())]).await;
    drop(cs);
}
