//! Caddy from Debian's package in front of sidecar nodes, serving the chat host of
//! `deploy/caddy/Caddyfile` with local addresses: the same tests run through it as through
//! nginx (`tests/e2e/proxy.rs`).
//!
//! Caddy runs as a child of the test with its own address and port, no admin endpoint (tests
//! run in parallel, and each would claim :2019) and its data and config directories in a
//! temporary directory; its log is printed when a test fails while it runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{own_loopback, PATIENCE};

pub fn caddyfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/caddy/Caddyfile")
}

pub struct Caddy {
    /// `<loopback address>:<port>`, plain HTTP: Caddy's TLS is its own business, not the chat host's.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Caddy {
    /// The chat host of [`caddyfile`] on a free local port, with `nodes` (`host:port`) as its
    /// upstreams and without the app host; returns once a request through it reaches a node.
    pub fn start(nodes: &[&str]) -> Caddy {
        let dir = tempfile::tempdir().unwrap();
        // Caddy listens with SO_REUSEPORT: on 127.0.0.1, two instances that picked the same
        // port both listened and shared its requests (a poll once reached another test's nodes).
        let (ip, port) = own_loopback();
        let text = std::fs::read_to_string(caddyfile()).unwrap();
        let chat_host = text.find("\napp.example.com {").map_or(&text[..], |end| &text[..end]);
        let mut conf = chat_host.to_owned();
        for (from, to) in [
            ("\temail ops@example.com\n", "\tadmin off\n".to_owned()),
            // Any Host (the tests send chat.example.com), on this instance's own address.
            ("chat.example.com {", format!("http://:{port} {{\n\tbind {ip}")),
            ("10.0.0.11:9501 10.0.0.12:9501", nodes.join(" ")),
        ] {
            assert!(conf.contains(from), "deploy/caddy/Caddyfile no longer has {from:?}: adapt tests/src/caddy.rs");
            conf = conf.replace(from, &to);
        }
        let d = dir.path();
        std::fs::write(d.join("Caddyfile"), conf).unwrap();
        let child = Command::new(caddy_binary())
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(d.join("Caddyfile"))
            .env("HOME", d)
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("caddy.log")).unwrap())
            .spawn()
            .expect("start caddy");
        let mut caddy = Caddy { addr: format!("{ip}:{port}"), dir, child: Some(child) };
        let deadline = Instant::now() + PATIENCE;
        while !caddy.healthz_ok() {
            if let Some(status) = caddy.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("caddy exited with {status}:\n{}", caddy.logs());
            }
            assert!(Instant::now() < deadline, "caddy did not answer /healthz on {}:\n{}", caddy.addr, caddy.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        caddy
    }

    fn healthz_ok(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else { return false };
        let _ = s.set_read_timeout(Some(PATIENCE));
        let mut answer = String::new();
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n").is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.split(' ').nth(1) == Some("200")
    }

    pub fn logs(&self) -> String {
        format!("--- caddy log\n{}", std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default())
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn caddy_binary() -> PathBuf {
    let found = ["/usr/bin/caddy", "/usr/local/bin/caddy"].into_iter().map(PathBuf::from).find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("caddy is missing: install it with `sudo apt-get install -y caddy` (make test does, as root, via scripts/deps.sh)")
    })
}
