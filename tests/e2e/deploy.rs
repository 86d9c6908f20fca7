//! The deployment files of `deploy/` and `docs/DEPLOYMENT.md`, checked by the tools that will
//! read them:
//! - the demo stack's nginx and php-fpm settings (`deploy/docker/`) serve the demo page and the
//!   chat paths on one origin, with Debian's nginx and php-fpm and two real nodes, and chat.js
//!   in headless Chromium chats through them on WebSocket, SSE and long-polling;
//! - the PHP app's nginx site passes `nginx -t`; the Caddyfile passes `caddy validate`;
//! - the systemd unit passes `systemd-analyze verify` and its offline security review;
//! - every `CHAT_*` setting the node has is in DEPLOYMENT.md with its real default, and the
//!   deployment files name no setting the node does not have;
//! - the Grafana dashboard charts exactly the metrics a node exports;
//! - the Dockerfile builds and its image serves, and compose.yaml is valid — where Docker
//!   works. Where it does not (no engine here), those two say so and pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_e2e::nginx::{check_site, Nginx};
use chat_e2e::{bin_dir, free_port, own_loopback, Client, Php, Redis, Sidecar, PATIENCE, SECRET};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` with each `from` replaced, failing when one is gone (the file changed: adapt the test).
fn adapt(file: &str, text: &str, swaps: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in swaps {
        assert!(out.contains(from), "{file} no longer has {from:?}: adapt tests/e2e/deploy.rs");
        out = out.replace(from, to);
    }
    out
}

fn sidecar_binary() -> PathBuf {
    let bin = bin_dir().join("chat-sidecar");
    assert!(bin.exists(), "{} is missing: run `make build` first", bin.display());
    bin
}

/// Whether `tool args…` runs and succeeds; the reason when it does not.
fn works(tool: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            Err(format!("`{tool} {}` failed: {}", args.join(" "), err.lines().next().unwrap_or("").trim()))
        }
        Err(e) => Err(format!("`{tool}` cannot run: {e}")),
    }
}

// ---- the demo stack without Docker -----------------------------------------------------------

/// Debian's php-fpm with deploy/docker/php-chat.ini (its extension path pointed at the built
/// one) and a pool listening where nginx expects it.
struct Fpm {
    child: Child,
    dir: tempfile::TempDir,
}

impl Fpm {
    fn start(redis: &Redis, addr: &str) -> Fpm {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ext = bin_dir().join("libchat.so");
        assert!(ext.exists(), "{} is missing: run `make build` first", ext.display());
        let ini = adapt(
            "deploy/docker/php-chat.ini",
            &read("deploy/docker/php-chat.ini"),
            &[("/usr/local/lib/php/chat.so", ext.display().to_string())],
        );
        std::fs::write(d.join("php.ini"), ini).unwrap();
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
        std::fs::write(
            d.join("php-fpm.conf"),
            format!(
                "[global]\nerror_log = {d}/fpm.log\ndaemonize = no\npid = {d}/fpm.pid\n\n\
                 [www]\n{user}listen = {addr}\npm = static\npm.max_children = 2\ncatch_workers_output = yes\n",
                d = d.display(),
                user = if root { "user = root\ngroup = root\n" } else { "" },
            ),
        )
        .unwrap();
        let mut cmd = Command::new(php_fpm());
        cmd.arg("-c").arg(d.join("php.ini")).arg("-y").arg(d.join("php-fpm.conf"));
        if root {
            cmd.arg("-R");
        }
        // What compose.yaml gives the container, which the ini reads as ${…}.
        let child = cmd
            .env("CHAT_REDIS_URL", redis.url())
            .env("CHAT_JWT_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start php-fpm");
        let mut fpm = Fpm { child, dir };
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = fpm.child.try_wait().unwrap() {
                panic!("php-fpm exited with {status}:\n{}", fpm.log());
            }
            assert!(Instant::now() < deadline, "php-fpm did not listen on {addr}:\n{}", fpm.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        fpm
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fpm.log")).unwrap_or_default()
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would leave them behind).
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- php-fpm log\n{}", self.log());
        }
    }
}

fn php_fpm() -> PathBuf {
    let found = std::fs::read_dir("/usr/sbin")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("php-fpm")));
    found.expect("php-fpm not found: run `make deps` (Debian: apt-get install php-fpm)")
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await.expect("answer in time").unwrap();
    let buf = String::from_utf8_lossy(&buf).into_owned();
    let status = buf.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// compose.yaml's nginx and php containers, run here: Debian's nginx with
/// deploy/docker/nginx-demo.conf (its container addresses made local) and php-fpm with
/// deploy/docker/php-chat.ini, in front of two nodes.
struct Demo {
    redis: Redis,
    _nodes: Vec<Sidecar>,
    _fpm: Fpm,
    nginx: Nginx,
}

impl Demo {
    fn start() -> Demo {
        let redis = Redis::start();
        let nodes: Vec<Sidecar> = ["a", "b"].iter().map(|id| Sidecar::start_with(&redis, &[("CHAT_NODE_ID", id)])).collect();
        let (fpm_ip, fpm_port) = own_loopback();
        let fpm_addr = format!("{fpm_ip}:{fpm_port}");
        let fpm = Fpm::start(&redis, &fpm_addr);
        let (ip, port) = own_loopback();
        let site = adapt(
            "deploy/docker/nginx-demo.conf",
            &read("deploy/docker/nginx-demo.conf"),
            &[
                ("server sidecar-a:9501;", format!("server {};", nodes[0].addr)),
                ("server sidecar-b:9501;", format!("server {};", nodes[1].addr)),
                ("listen 80;", format!("listen {ip}:{port};")),
                ("root /var/www/demo;", format!("root {};", repo().join("php-examples/demo").display())),
                ("/etc/nginx/snippets/chat-locations.conf", "snippets/chat-locations.conf".into()),
                ("fastcgi_pass php:9000;", format!("fastcgi_pass {fpm_addr};")),
            ],
        );
        let nginx = Nginx::start_site(&site, &format!("{ip}:{port}"));
        Demo { redis, _nodes: nodes, _fpm: fpm, nginx }
    }

    fn url(&self) -> String {
        format!("http://{}", self.nginx.addr)
    }
}

/// The demo page through php-fpm with the extension configured from the environment, and a
/// chat client on the page's own origin, with the token the page minted.
#[tokio::test]
async fn the_demo_stack_serves_the_page_and_the_chat_on_one_origin() {
    let demo = Demo::start();
    let (status, page) = get(&demo.nginx.addr, "/index.php?user=alice").await;
    assert_eq!(status, 200, "{page}\n{}", demo.nginx.logs());
    // The page points the browser at its own origin (fastcgi_param CHAT_URL) …
    let script = format!("{}/chat.js", demo.url()).replace('/', "\\/"); // as json_encode writes it
    assert!(page.contains(&script), "the page loads chat.js from its own origin ({script}):\n{page}");
    // … where chat.js and the transports are.
    assert_eq!(get(&demo.nginx.addr, "/chat.js").await.0, 200);
    let token = page
        .split('"')
        .find(|s| s.starts_with("eyJ") && s.matches('.').count() == 2)
        .unwrap_or_else(|| panic!("no token in the page:\n{page}"));
    let mut alice = Client::connect(&format!("ws://{}/ws?token={token}", demo.nginx.addr)).await;
    let welcome = alice.recv().await;
    assert_eq!(welcome["uid"], "alice", "{welcome}");
    let id = Php::new(&demo.redis).push("alice", r#"{"text":"hi"}"#, Some("bob")).await;
    assert_eq!(alice.recv_message().await["id"], id.as_str());
}

/// chat.js itself, in headless Chromium, on every transport through nginx to the two nodes:
/// the one-to-one demo scenario of tests/browser/chat.mjs (both ways, read receipt, no
/// duplicate) with the pages on the demo stack's origin. Long-polling pages land on either
/// node with each poll.
///
/// The page that waits for the read receipt (the first) holds a WebSocket or an event stream:
/// a receipt is not stored, and one that reaches a long-poll session just before the page's
/// next poll goes to the other node is lost with that session (docs/DEPLOYMENT.md, "No sticky
/// sessions"); two long-polling pages here missed it now and then.
#[tokio::test]
async fn chat_js_chats_through_nginx_on_every_transport() {
    let repo = repo();
    assert!(Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHAT_CHROMIUM").is_some(), "chromium is missing: `sudo apt-get install -y chromium` (make test does, as root)");
    assert!(
        repo.join("tests/browser/node_modules/playwright-core/package.json").exists(),
        "playwright-core is missing: run `make browser-deps` (that is `cd tests/browser && npm ci`)"
    );
    for (a, b) in [("websocket", "poll"), ("sse", "poll")] {
        // A fresh stack: the scenario starts from an empty conversation.
        let demo = Demo::start();
        let run = tokio::process::Command::new("node")
            .arg(repo.join("tests/browser/chat.mjs"))
            .args([a, b])
            .env("DEMO_URL", demo.url())
            .env("CHAT_URL", demo.url())
            .env("ARTIFACTS", repo.join("target/browser-artifacts"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(240), run)
            .await
            .unwrap_or_else(|_| panic!("chat.mjs {a} {b} did not finish in 240 s"))
            .expect("node is missing: `sudo apt-get install -y nodejs`");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|l| l == "PASS"),
            "chat.mjs {a} {b} through nginx failed:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            demo.nginx.logs()
        );
    }
}

// ---- site files --------------------------------------------------------------------------------

#[test]
fn the_app_site_passes_nginx_t() {
    let tls = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=app.example.com"])
        .arg("-keyout")
        .arg(tls.path().join("privkey.pem"))
        .arg("-out")
        .arg(tls.path().join("fullchain.pem"))
        .output()
        .expect("openssl is missing: run `make deps`");
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
    let site = adapt(
        "deploy/nginx/app.conf",
        &read("deploy/nginx/app.conf"),
        &[("/etc/letsencrypt/live/app.example.com/", format!("{}/", tls.path().display()))],
    );
    if let Err(e) = check_site(&site) {
        panic!("nginx -t refuses deploy/nginx/app.conf:\n{e}");
    }
}

#[test]
fn the_caddyfile_is_valid_and_formatted() {
    let home = tempfile::tempdir().unwrap();
    let file = repo().join("deploy/caddy/Caddyfile");
    let caddy = |args: &[&str]| {
        Command::new("caddy")
            .args(args)
            .arg(&file)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .output()
            .expect("caddy is missing: run `make deps` (Debian: apt-get install caddy)")
    };
    let valid = caddy(&["validate", "--adapter", "caddyfile", "--config"]);
    assert!(valid.status.success(), "caddy validate: {}", String::from_utf8_lossy(&valid.stderr));
    let formatted = caddy(&["fmt"]);
    assert_eq!(String::from_utf8_lossy(&formatted.stdout), read("deploy/caddy/Caddyfile"), "run `caddy fmt --overwrite deploy/caddy/Caddyfile`");
}

// ---- systemd -----------------------------------------------------------------------------------

/// The template unit as instance `a`, with ExecStart pointed at the built binary (verify
/// checks that it is executable).
#[test]
fn the_systemd_unit_verifies_and_is_locked_down() {
    if let Err(why) = works("systemd-analyze", &["--version"]) {
        eprintln!("skipped: systemd-analyze is not available here ({why}); deploy/systemd/chat-sidecar@.service was not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = adapt(
        "deploy/systemd/chat-sidecar@.service",
        &read("deploy/systemd/chat-sidecar@.service"),
        &[("ExecStart=/usr/local/bin/chat-sidecar", format!("ExecStart={}", sidecar_binary().display()))],
    );
    let path = dir.path().join("chat-sidecar@a.service");
    std::fs::write(&path, unit).unwrap();
    // verify only warns about unknown keys and bad values, on stderr, and exits 0.
    let verify = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && complaints.trim().is_empty(), "systemd-analyze verify:\n{complaints}");
    // Exposure on systemd's scale of 0 to 10, in tenths: at most 2.0 ("OK").
    let security = Command::new("systemd-analyze").args(["security", "--offline=true", "--threshold=20"]).arg(&path).output().unwrap();
    assert!(security.status.success(), "systemd-analyze security:\n{}", String::from_utf8_lossy(&security.stdout));
}

// ---- settings ----------------------------------------------------------------------------------

/// Every setting of `chat-sidecar --help`: environment variable → default.
fn settings() -> BTreeMap<String, String> {
    let out = Command::new(sidecar_binary()).arg("--help").env_clear().output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut all = BTreeMap::new();
    for (i, _) in help.match_indices("[env: CHAT_") {
        let env = &help[i + "[env: ".len()..];
        let env = &env[..env.find('=').unwrap()];
        let default = help[..i].rfind("[default: ").map(|d| &help[d + "[default: ".len()..i]).and_then(|d| d.split_once(']'));
        // Only a default of the same option (--config has none).
        let default = default.filter(|(_, rest)| rest.trim().is_empty()).map(|(d, _)| d.to_owned());
        all.insert(env.to_owned(), default.unwrap_or_default());
    }
    assert!(all.len() > 20, "could not read the settings from --help:\n{help}");
    all
}

/// DEPLOYMENT.md has a row `| `CHAT_X` | `default` | …` for every setting (`(empty)` for an empty
/// default), and nothing in it or in deploy/ names a setting that does not exist.
#[test]
fn the_settings_in_the_docs_and_deploy_files_are_the_nodes() {
    let settings = settings();
    let doc = read("docs/DEPLOYMENT.md");
    for (env, default) in &settings {
        let shown = if default.is_empty() { "(empty)".to_owned() } else { format!("`{default}`") };
        let row = format!("| `{env}` | {shown} |");
        assert!(doc.contains(&row), "docs/DEPLOYMENT.md's settings table lacks the row starting {row:?} (from chat-sidecar --help)");
    }
    // CHAT_LOG is read by the node's logger, not a setting; CHAT_URL is the demo pages' own.
    let known = |name: &str| settings.contains_key(name) || name == "CHAT_LOG" || name == "CHAT_URL";
    let mut files = vec![("docs/DEPLOYMENT.md".to_owned(), doc)];
    for dir in ["deploy/systemd", "deploy/docker", "deploy/nginx", "deploy/caddy"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap().flatten() {
            let name = format!("{dir}/{}", entry.file_name().to_string_lossy());
            files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
    for (file, text) in files {
        for (i, _) in text.match_indices("CHAT_") {
            let name: String = text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            assert!(known(&name), "{file} names {name}, which chat-sidecar does not have");
        }
    }
}

// ---- Docker (where it works) -------------------------------------------------------------------

#[tokio::test]
async fn the_dockerfile_builds_a_small_non_root_image_that_serves() {
    if let Err(why) = works("docker", &["info"]) {
        eprintln!("skipped: Docker does not work here ({why}); deploy/docker/Dockerfile was not built");
        return;
    }
    let tag = format!("chat-sidecar-e2e:{}", std::process::id());
    let build = Command::new("docker")
        .args(["build", "-f", "deploy/docker/Dockerfile", "-t", &tag, "."])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(build.success(), "docker build -f deploy/docker/Dockerfile failed");
    let inspect = |format: &str| {
        let out = Command::new("docker").args(["image", "inspect", "-f", format, &tag]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(inspect("{{.Config.User}}"), "nonroot");
    let size: u64 = inspect("{{.Size}}").parse().unwrap();
    assert!(size < 64 << 20, "the image is {} MiB", size >> 20);

    // Host networking: the container reaches this test's redis-server on 127.0.0.1.
    let redis = Redis::start();
    let port = free_port();
    let name = format!("chat-sidecar-e2e-{}", std::process::id());
    let run = Command::new("docker")
        .args(["run", "-d", "--rm", "--name", &name, "--network", "host"])
        .args(["-e", &format!("CHAT_LISTEN=127.0.0.1:{port}"), "-e", &format!("CHAT_REDIS_URL={}", redis.url())])
        .args(["-e", &format!("CHAT_JWT_SECRET={SECRET}"), &tag])
        .output()
        .unwrap();
    assert!(run.status.success(), "docker run: {}", String::from_utf8_lossy(&run.stderr));
    struct Stop(String, String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
            let _ = Command::new("docker").args(["image", "rm", "-f", &self.1]).output();
        }
    }
    let _stop = Stop(name.clone(), tag.clone());
    let addr = format!("127.0.0.1:{port}");
    chat_e2e::eventually("the container answers /healthz", async || {
        let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.ok()?;
        answer.contains(" 200 ").then_some(())
    })
    .await;
    let php = Php::new(&redis);
    let token = php.token("ida").await;
    let mut ida = Client::connect(&format!("ws://{addr}/ws?token={token}")).await;
    assert_eq!(ida.recv().await["type"], "welcome");
    let id = php.push("ida", r#"{"from":"php"}"#, None).await;
    assert_eq!(ida.recv_message().await["id"], id.as_str());
}

#[test]
fn the_compose_file_is_valid() {
    if let Err(why) = works("docker", &["compose", "version"]) {
        eprintln!("skipped: docker compose does not work here ({why}); deploy/docker/compose.yaml was not checked");
        return;
    }
    let out = Command::new("docker").args(["compose", "-f", "deploy/docker/compose.yaml", "config", "-q"]).current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "docker compose config: {}", String::from_utf8_lossy(&out.stderr));
}

// ---- Grafana ---------------------------------------------------------------------------------

/// The dashboard charts what a node exports at /metrics: no name it does not have, and none
/// of its metrics left out.
#[tokio::test]
async fn the_grafana_dashboard_charts_every_metric_the_node_exports() {
    let redis = Redis::start();
    let node = Sidecar::start(&redis);
    let (status, text) = node.get("/metrics").await;
    assert_eq!(status, 200);
    let exported: std::collections::BTreeSet<String> =
        text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    assert!(exported.len() > 10, "{text}");

    let dashboard: serde_json::Value = serde_json::from_str(&read("docs/grafana/chat-sidecar.json")).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let mut charted = std::collections::BTreeSet::new();
    for expr in &exprs {
        for (i, _) in expr.match_indices("chat_") {
            let name: String = expr[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            assert!(exported.contains(&name), "the dashboard queries {name}, which /metrics does not have: {expr}");
            charted.insert(name);
        }
    }
    let missing: Vec<_> = exported.difference(&charted).collect();
    assert!(missing.is_empty(), "docs/grafana/chat-sidecar.json charts none of {missing:?}");
}
