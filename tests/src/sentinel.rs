//! A Redis master with replicas and three Sentinels, all real processes on loopback, for the
//! failover tests: kill the master with SIGKILL, wait for the Sentinels to promote a replica,
//! bring the old master back (empty, or with its append-only file) and wait until it follows.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, Redis, PATIENCE};

/// The master's name in the Sentinels' configuration.
pub const MASTER: &str = "mymaster";

/// Sentinel's down-after-milliseconds here: a dead master is noticed within a second.
pub const DOWN_AFTER_MS: u64 = 1000;

pub struct Sentinels {
    /// Index 0 starts as the master, the others as its replicas.
    pub nodes: Vec<Redis>,
    sentinels: Vec<(u16, Child, tempfile::TempDir)>,
}

impl Sentinels {
    /// A master, `replicas` replicas of it, and three Sentinels that know all of them; returns
    /// once every Sentinel sees every replica and the other Sentinels (a failover needs both).
    pub fn start(replicas: usize) -> Sentinels {
        let persistence = ["--appendonly", "yes", "--appendfsync", "everysec"];
        let master = Redis::start_configured(&persistence, &[]);
        let mport = master.port.to_string();
        let mut nodes = vec![master];
        for _ in 0..replicas {
            nodes.push(Redis::start_configured(&persistence, &["--replicaof", "127.0.0.1", &mport]));
        }
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let dir = tempfile::tempdir().unwrap();
                let conf = dir.path().join("sentinel.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {MASTER} 127.0.0.1 {mport} 2\n\
                         sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\nsentinel failover-timeout {MASTER} 10000\n\
                         sentinel parallel-syncs {MASTER} 2\n",
                        dir.path().display()
                    ),
                )
                .unwrap();
                let child = Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(std::fs::File::create(dir.path().join("sentinel.log")).unwrap())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server (as Sentinel) not found: run `make deps`");
                (port, child, dir)
            })
            .collect();
        let group = Sentinels { nodes, sentinels };
        let wanted = (replicas.to_string(), "2".to_owned());
        group.wait("every Sentinel to know the replicas and the other Sentinels", || {
            group.sentinels.iter().all(|(port, _, _)| {
                let count = |what: &str| sentinel_cmd(*port, &["SENTINEL", what, MASTER]).map(|out| out.lines().filter(|l| *l == "ip").count().to_string());
                (count("replicas"), count("sentinels")) == (Some(wanted.0.clone()), Some(wanted.1.clone()))
            })
        });
        group.wait("the replicas to be in sync", || group.nodes[1..].iter().all(|r| info_field(r, "master_link_status").as_deref() == Some("up")));
        group
    }

    /// The URL both the extension and the sidecar take.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|(p, _, _)| format!("127.0.0.1:{p}")).collect();
        format!("redis+sentinel://{}/{MASTER}", hosts.join(","))
    }

    /// The master's port, as the first Sentinel that answers names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|(p, _, _)| {
            let out = sentinel_cmd(*p, &["SENTINEL", "get-master-addr-by-name", MASTER])?;
            out.lines().nth(1)?.parse().ok()
        })
    }

    /// Index of the node listening on `port`.
    pub fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).expect("a node of the group")
    }

    /// Kills the master with SIGKILL and waits until the Sentinels have promoted a replica and
    /// it answers as a master. Returns (index of the old master, index of the new one).
    pub fn kill_master(&mut self) -> (usize, usize) {
        let old = self.index_of(self.master_port().expect("a master"));
        self.nodes[old].kill9();
        let old_port = self.nodes[old].port;
        let mut new = 0;
        self.wait("the Sentinels to promote a replica", || match self.master_port() {
            Some(p) if p != old_port => {
                new = self.index_of(p);
                info_field(&self.nodes[new], "role").as_deref() == Some("master")
            }
            _ => false,
        });
        (old, new)
    }

    /// Starts node `i` again (as it was started, a master by its own configuration), `empty`:
    /// without what it had persisted; then waits until the Sentinels made it a replica of the
    /// current master and it is in sync.
    pub fn bring_back(&mut self, i: usize, empty: bool) {
        if empty {
            self.nodes[i].wipe();
        }
        self.nodes[i].restart();
        let node = &self.nodes[i];
        self.wait("the returning node to follow the new master", || {
            info_field(node, "role").as_deref() == Some("slave") && info_field(node, "master_link_status").as_deref() == Some("up")
        });
    }

    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE * 4;
        while !done() {
            if Instant::now() > deadline {
                let logs: Vec<String> =
                    self.sentinels.iter().map(|(_, _, d)| std::fs::read_to_string(d.path().join("sentinel.log")).unwrap_or_default()).collect();
                panic!("timed out waiting for {what}; Sentinel logs:\n{}", logs.join("\n----\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sentinel_cmd(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A field of `INFO replication`.
pub fn info_field(node: &Redis, name: &str) -> Option<String> {
    let info = node.cmd(&["INFO", "replication"])?;
    info.lines().find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':').map(str::to_owned))
}
