//! nginx from Debian's package in front of sidecar nodes: the proxy an operator puts there,
//! with the chat host's paths taken verbatim from `deploy/nginx/chat-locations.conf`, in a
//! server block of the test's own or in a site file of `deploy/nginx/`.
//!
//! nginx runs in the foreground (`daemon off`) as a child of the test, with its own prefix,
//! configuration, temp directories and logs in a temporary directory and a free port. Its
//! error and access logs are printed when a test fails while it runs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{own_loopback, PATIENCE};

/// The documented locations of the chat host, included as they are.
pub fn locations_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/chat-locations.conf")
}

pub struct Nginx {
    /// `<loopback address>:<port>`.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nginx {
    /// nginx with `nodes` (`host:port`) as the members of upstream `chat_sidecar`, serving
    /// [`locations_file`] on plain HTTP; returns once a request through it reaches a node.
    pub fn start(nodes: &[&str]) -> Nginx {
        let (ip, port) = own_loopback();
        let servers: String = nodes.iter().map(|n| format!("    server {n};\n")).collect();
        let site = format!(
            "upstream chat_sidecar {{\n{servers}    keepalive 32;\n}}\n\
             server {{\n    listen {ip}:{port};\n    include snippets/chat-locations.conf;\n    location / {{ return 404; }}\n}}\n"
        );
        let nginx = Nginx::start_site(&site, &format!("{ip}:{port}"));
        let deadline = Instant::now() + PATIENCE;
        while !nginx.healthz_ok() {
            assert!(Instant::now() < deadline, "nginx did not answer /healthz on {}:\n{}", nginx.addr, nginx.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// nginx serving `site` (the inside of an `http` block: a site file of deploy/nginx with
    /// its addresses adapted), of which `addr` is one listening address (from
    /// [`own_loopback`]); returns once it accepts connections there. `include snippets/chat-locations.conf` finds [`locations_file`], and
    /// Debian's FastCGI includes are where a site expects them in /etc/nginx.
    pub fn start_site(site: &str, addr: &str) -> Nginx {
        let dir = prepare(site);
        let d = dir.path();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            // Errors before the configuration is read would go to /var/log/nginx otherwise.
            .arg("-e")
            .arg(d.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { addr: addr.to_owned(), dir, child: Some(child) };
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(&nginx.addr).is_err() {
            if let Some(status) = nginx.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited with {status}:\n{}", nginx.logs());
            }
            assert!(Instant::now() < deadline, "nginx did not listen on {}:\n{}", nginx.addr, nginx.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
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

    /// stderr, the error log and the access log (one line per request, with the node that answered).
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- nginx stderr\n{}--- nginx error.log\n{}--- nginx access.log\n{}",
            read("stderr.log"),
            read("error.log"),
            read("access.log")
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM, not SIGKILL: the master then stops its workers, which a killed master
            // would leave behind, listening.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + PATIENCE;
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// A prefix directory for nginx with `site` in the test's http block (see [`Nginx::start_site`]).
fn prepare(site: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("snippets")).unwrap();
    std::os::unix::fs::symlink(locations_file(), d.join("snippets/chat-locations.conf")).unwrap();
    for debian in ["fastcgi_params", "fastcgi.conf", "snippets/fastcgi-php.conf"] {
        let _ = std::os::unix::fs::symlink(Path::new("/etc/nginx").join(debian), d.join(debian));
    }
    // Workers of a master started as root run as `nobody`, which could not write to this
    // temporary directory (mode 0700); as anyone else the directive is ignored with a warning.
    let user = if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) { "user root;" } else { "" };
    let conf = format!(
        r#"daemon off;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$request_method $uri $status upstream=$upstream_addr';
    access_log {d}/access.log upstream;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # As an operator's http block may have it: compression for what compresses well, which
    # the locations must keep away from the event stream.
    gzip on;
    gzip_types text/event-stream application/json text/javascript;
    # The tests speak HTTP/1.0 (a body ends with the connection); nginx compresses only for
    # 1.1 by default, which would let a compressed event stream pass unnoticed.
    gzip_http_version 1.0;
{site}
}}
"#,
        d = d.display(),
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    dir
}

/// `nginx -t` on `site` (as [`Nginx::start_site`] would serve it): the error text if invalid.
pub fn check_site(site: &str) -> Result<(), String> {
    let dir = prepare(site);
    let d = dir.path();
    let out = Command::new(nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-e")
        .arg(d.join("error.log"))
        .output()
        .expect("run nginx -t");
    out.status.success().then_some(()).ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Debian's nginx lives in /usr/sbin, which is not on every user's PATH.
fn nginx_binary() -> PathBuf {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("nginx is missing: install it with `sudo apt-get install -y nginx` (make test does, as root, via scripts/deps.sh)")
    })
}
