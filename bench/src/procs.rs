//! The processes a benchmark run starts: redis-server, chat-sidecar nodes, the Node.js peer,
//! client processes (this binary's `clients` mode) and php producers.
//!
//! Every child is killed when its handle is dropped (also when the run is interrupted) and, in
//! case this process itself is killed, by the kernel (PR_SET_PDEATHSIG). Each gets its own log
//! file in the run's temporary directory, shown when it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub const SECRET: &str = "bench-secret";

/// Where things are: the repository, the built binaries, the run's temporary directory.
pub struct Env {
    pub repo: PathBuf,
    pub bin_dir: PathBuf,
    pub tmp: tempfile::TempDir,
    /// This program, started again as `clients`.
    pub me: PathBuf,
}

impl Env {
    pub fn new(repo: PathBuf, bin_dir: PathBuf) -> anyhow::Result<Env> {
        for f in ["chat-sidecar", "libchat.so"] {
            let p = bin_dir.join(f);
            if !p.exists() {
                bail!("{} is missing: run `make build` first", p.display());
            }
        }
        Ok(Env { repo, bin_dir, tmp: tempfile::Builder::new().prefix("chat-bench.").tempdir()?, me: std::env::current_exe()? })
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.tmp.path().join(format!("{name}.log"))
    }
}

/// A command whose child dies with us.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.kill_on_drop(true).stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    c
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Redis {
    pub port: u16,
    pub child: Child,
}

impl Redis {
    pub async fn start(env: &Env) -> anyhow::Result<Redis> {
        Redis::launch(env, "redis", &["--maxclients", "10000"], "PONG", &["PING"]).await
    }

    /// A replica of `master`, in sync when this returns; stopped when dropped.
    pub async fn start_replica(env: &Env, master: &Redis) -> anyhow::Result<Redis> {
        let port = master.port.to_string();
        Redis::launch(env, "redis-replica", &["--replicaof", "127.0.0.1", &port], "master_link_status:up", &["INFO", "replication"]).await
    }

    /// Starts redis-server with `extra` arguments, logging to `name`, and waits until the
    /// answer to `probe` contains `ready`.
    async fn launch(env: &Env, name: &str, extra: &[&str], ready: &str, probe: &[&str]) -> anyhow::Result<Redis> {
        let port = free_port();
        let dir = env.tmp.path().join(format!("{name}-{port}"));
        std::fs::create_dir_all(&dir)?;
        let child = command("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .args(extra)
            .arg("--dir")
            .arg(&dir)
            .stdout(std::fs::File::create(env.log(name))?)
            .spawn()
            .context("redis-server not found: run `make deps`")?;
        let r = Redis { port, child };
        for _ in 0..500 {
            if r.cmd(probe).await.ok().is_some_and(|a| a.contains(ready)) {
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("{name} did not come up on port {port}:\n{}", tail(&env.log(name)))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command through redis-cli (raw output, trimmed).
    pub async fn cmd(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().await?;
        if !out.status.success() {
            bail!("redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

/// A server under test: a chat-sidecar node or the Node.js peer.
pub struct Server {
    pub name: String,
    pub addr: std::net::SocketAddr,
    pub child: Child,
    pub log: PathBuf,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub fn rss_kib(&self) -> u64 {
        crate::util::rss_kib(self.pid()).unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Fails when the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    pub async fn sidecar(env: &Env, redis: &Redis, name: &str, ns: &str) -> anyhow::Result<Server> {
        let log = env.log(name);
        let mut cmd = command(env.bin_dir.join("chat-sidecar"));
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        // Settings under test pass through (`CHAT_READ_BUFFER_BYTES=1024 make bench`, and
        // tokio's `TOKIO_WORKER_THREADS`); the ones below, which wire the run together, win.
        cmd.envs(std::env::vars().filter(|(k, _)| k.starts_with("CHAT_") || k == "TOKIO_WORKER_THREADS"));
        cmd.env("CHAT_LISTEN", "127.0.0.1:0")
            .env("CHAT_REDIS_URL", redis.url())
            .env("CHAT_NAMESPACE", ns)
            .env("CHAT_JWT_SECRET", SECRET)
            .env("CHAT_NODE_ID", name)
            .env("CHAT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        Self::start(cmd, name, log, "chat-sidecar listening on ").await
    }

    pub async fn peer(env: &Env, redis: &Redis, ns: &str) -> anyhow::Result<Server> {
        let dir = env.repo.join("bench/peer");
        if !dir.join("node_modules/ws").exists() {
            bail!("the peer's dependencies are missing: run `npm ci` in {} (make bench does)", dir.display());
        }
        let log = env.log("peer");
        let mut cmd = command("node");
        cmd.arg(dir.join("server.js"))
            .env("PEER_LISTEN", "127.0.0.1:0")
            .env("PEER_REDIS_URL", redis.url())
            .env("PEER_NAMESPACE", ns)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        Self::start(cmd, "peer", log, "peer listening on ").await
    }

    /// `chat-bench floor`, the minimal fan-out server (see `floor.rs`).
    pub async fn floor(env: &Env, redis: &Redis, ns: &str) -> anyhow::Result<Server> {
        let log = env.log("floor");
        let mut cmd = command(&env.me);
        cmd.arg("floor")
            .env("FLOOR_LISTEN", "127.0.0.1:0")
            .env("FLOOR_REDIS_URL", redis.url())
            .env("FLOOR_NAMESPACE", ns)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?);
        Self::start(cmd, "floor", log, "floor listening on ").await
    }

    async fn start(mut cmd: Command, name: &str, log: PathBuf, banner: &str) -> anyhow::Result<Server> {
        let mut child = cmd.spawn().with_context(|| format!("cannot start {name}"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix(banner) {
                    return Ok::<_, anyhow::Error>(Some(a.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let addr = match found {
            Ok(Ok(Some(a))) => a,
            _ => bail!("{name} did not start:\n{}", tail(&log)),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = addr.parse().with_context(|| format!("{name} printed a bad address {addr:?}"))?;
        Ok(Server { name: name.to_owned(), addr, child, log })
    }
}

/// One `chat-bench clients` process.
pub struct Worker {
    pub name: String,
    pub child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    log: PathBuf,
}

/// What a set of client processes should open.
#[derive(Debug, Clone)]
pub struct Load {
    pub kind: crate::clients::Kind,
    pub prefix: String,
    pub users: usize,
    pub group: String,
    pub redis: Option<String>,
    pub ns: String,
    pub per_worker: usize,
}

impl Worker {
    pub async fn spawn(env: &Env, name: &str, server: &Server, load: &Load, first: usize, count: usize) -> anyhow::Result<Worker> {
        let log = env.log(name);
        let kind = match load.kind {
            crate::clients::Kind::Chat => "chat",
            crate::clients::Kind::Peer => "peer",
            crate::clients::Kind::Floor => "floor",
        };
        let mut cmd = command(&env.me);
        cmd.arg("clients")
            .args(["--kind", kind, "--addr", &server.addr.to_string(), "--prefix", &load.prefix])
            .args(["--first", &first.to_string(), "--count", &count.to_string(), "--secret", SECRET])
            .args(["--ns", &load.ns]);
        if !load.group.is_empty() {
            cmd.args(["--group", &load.group]);
        }
        if let Some(r) = &load.redis {
            cmd.args(["--redis", r]);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(std::fs::File::create(&log)?);
        let mut child = cmd.spawn().context("cannot start a client process")?;
        let stdin = child.stdin.take().expect("piped");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        Ok(Worker { name: name.to_owned(), child, stdin, lines, log })
    }

    /// The next JSON line the process prints.
    pub async fn read(&mut self, limit: Duration) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(limit, self.lines.next_line())
            .await
            .map_err(|_| anyhow!("{} did not answer within {limit:?}", self.name))??;
        match line {
            Some(l) => serde_json::from_str(&l).with_context(|| format!("{} printed {l:?}", self.name)),
            None => bail!("{} exited:\n{}", self.name, tail(&self.log)),
        }
    }

    pub async fn send(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    pub async fn ask(&mut self, command: &str, limit: Duration) -> anyhow::Result<Value> {
        self.send(command).await?;
        let v = self.read(limit).await?;
        if let Some(e) = v.get("error") {
            bail!("{} answered {command}: {e}", self.name);
        }
        Ok(v)
    }
}

/// Client processes spread over one or more servers.
pub struct Workers {
    pub all: Vec<Worker>,
}

impl Workers {
    /// Starts enough processes for `load.users` users on `servers` (users split evenly over
    /// servers, each process at most `load.per_worker`), and waits until all are connected.
    pub async fn connect(env: &Env, servers: &[&Server], load: &Load) -> anyhow::Result<(Workers, f64, u64)> {
        let per_server = load.users.div_ceil(servers.len());
        let mut all = Vec::new();
        let mut first = 0;
        for (si, s) in servers.iter().enumerate() {
            let mine = per_server.min(load.users - first);
            let procs = mine.div_ceil(load.per_worker).max(1);
            let each = mine.div_ceil(procs);
            let end = first + mine;
            let mut w = 0;
            while first < end {
                let count = each.min(end - first);
                all.push(Worker::spawn(env, &format!("clients-{}-{si}-{w}", s.name), s, load, first, count).await?);
                first += count;
                w += 1;
            }
        }
        let t0 = std::time::Instant::now();
        let mut ws = Workers { all };
        let ready = ws.read_all(Duration::from_secs(330)).await?;
        let secs = t0.elapsed().as_secs_f64();
        let (mut live, mut failed, mut errors) = (0, 0, 0);
        let mut err = String::new();
        for r in &ready {
            live += r["live"].as_u64().unwrap_or(0);
            errors += r["connect_errors"].as_u64().unwrap_or(0);
            failed += r["failed"].as_u64().unwrap_or(0);
            if let Some(e) = r["last_error"].as_str().filter(|e| !e.is_empty()) {
                err = e.to_owned();
            }
        }
        if failed > 0 || live < load.users as u64 {
            bail!("only {live} of {} connections came up ({failed} gave up); last error: {err}", load.users);
        }
        if errors > 0 {
            eprintln!("chat-bench: {errors} connection attempts failed and were retried; last error: {err}");
        }
        Ok((ws, secs, errors))
    }

    /// The next line of every worker.
    pub async fn read_all(&mut self, limit: Duration) -> anyhow::Result<Vec<Value>> {
        let futs: Vec<_> = self.all.iter_mut().map(|w| w.read(limit)).collect();
        futures_util::future::join_all(futs).await.into_iter().collect()
    }

    pub async fn ask(&mut self, command: &str, limit: Duration) -> anyhow::Result<Vec<Value>> {
        let futs: Vec<_> = self.all.iter_mut().map(|w| w.ask(command, limit)).collect();
        futures_util::future::join_all(futs).await.into_iter().collect()
    }

    pub async fn quit(mut self) {
        for w in &mut self.all {
            let _ = w.send("quit").await;
        }
        for w in &mut self.all {
            let _ = tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await;
        }
    }
}

/// The php CLI with the built extension.
pub struct Php {
    pub ext: PathBuf,
    pub redis_url: String,
    pub ns: String,
    pub scripts: PathBuf,
}

impl Php {
    pub fn new(env: &Env, redis: &Redis, ns: &str) -> Php {
        Php {
            ext: env.bin_dir.join("libchat.so"),
            redis_url: redis.url(),
            ns: ns.to_owned(),
            scripts: env.repo.join("bench/php"),
        }
    }

    pub fn command(&self, script: &str, args: &[String]) -> Command {
        let mut c = command("php");
        c.arg("-n")
            .arg("-d")
            .arg(format!("extension={}", self.ext.display()))
            .arg("-d")
            // Quoted: an INI value with `=` or `&` (a URL with parameters) must be.
            .arg(format!("chat.redis_url=\"{}\"", self.redis_url))
            .arg("-d")
            .arg(format!("chat.namespace={}", self.ns))
            .arg("-d")
            .arg(format!("chat.jwt_secret={SECRET}"))
            .arg(self.scripts.join(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs a script to completion; returns its last stdout line as JSON.
    pub async fn run_json(&self, script: &str, args: &[String]) -> anyhow::Result<Value> {
        let out = self.command(script, args).output().await.context("php not found: run `make deps`")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("php {script} {args:?} failed ({}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        let last = stdout.lines().last().unwrap_or("");
        serde_json::from_str(last).with_context(|| format!("php {script} printed {stdout:?}"))
    }
}
