//! Plain HTTP requests written by hand on a TcpStream (HTTP/1.0, so a body ends with the
//! connection): the tests see the answer byte for byte, e.g. SSE ids, CORS and proxy headers.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::PATIENCE;

/// An HTTP answer: status, the head as text, the body (lossy UTF-8: a compressed body is
/// checked by its headers only).
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One request to `addr`, with `Host: <addr>`.
pub async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    http_to_host(addr, addr, method, path, headers, body).await
}

/// One request to `addr` naming `host` (a proxy's site).
pub async fn http_to_host(addr: &str, host: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(PATIENCE * 5, s.read_to_end(&mut buf)).await.expect("HTTP answer in time").unwrap();
    let buf = String::from_utf8_lossy(&buf);
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, headers: head.to_owned(), body: body.to_owned() }
}

/// `POST /send` with a bearer token and a JSON frame.
pub async fn post_send(addr: &str, token: &str, frame: &str) -> Answer {
    http(addr, "POST", "/send", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], frame).await
}
