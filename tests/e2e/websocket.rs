//! RFC 6455 at the edge of `/ws`: the close handshake (the client's code echoed, 1002 for a
//! code the RFC does not allow, on an open session and while the node waits for the auth
//! frame), the first frame that is not `auth` (4003, with a close frame, never a dropped
//! TCP connection), and a conformance check of the framing rules (fragmentation, UTF-8 across
//! fragments, control frames, reserved bits and opcodes).

use chat_e2e::{Client, Php, Redis, Sidecar, PATIENCE};
use chat_protocol::wire::close;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// What the server answered to our close: `Some(code)` (1005 for a close frame without a code),
/// or `None` when the connection ended without a close frame.
async fn answer_to_close(c: &mut Client, code: Option<u16>) -> Option<u16> {
    let frame = code.map(|code| CloseFrame { code: CloseCode::from(code), reason: "bye".into() });
    c.ws.send(Message::Close(frame)).await.unwrap();
    loop {
        match tokio::time::timeout(PATIENCE, c.ws.next()).await.expect("an answer to our close in time") {
            Some(Ok(Message::Close(Some(f)))) => return Some(f.code.into()),
            Some(Ok(Message::Close(None))) => return Some(1005),
            // Frames the server sent before it saw our close (the welcome, say).
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// Valid codes (RFC 6455 §7.4): the close is echoed with the same code.
const VALID: [u16; 9] = [1000, 1001, 1002, 1003, 1007, 1008, 1011, 3000, 4999];
/// Codes a close frame may not carry (§7.4.1/§7.4.2): answered with 1002.
const INVALID: [u16; 11] = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000];

#[tokio::test]
async fn a_clients_close_is_answered_with_its_code_on_an_open_session() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    for code in VALID {
        let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
        assert_eq!(answer_to_close(&mut c, Some(code)).await, Some(code), "close {code} is echoed");
    }
    let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
    assert_eq!(answer_to_close(&mut c, None).await, Some(1005), "a close without a code gets one without a code");
    for code in INVALID {
        let (mut c, _) = Client::login(&sidecar, &php, "alice").await;
        assert_eq!(answer_to_close(&mut c, Some(code)).await, Some(1002), "close {code} is a protocol error");
    }
    // The node is fine, and its presence bookkeeping followed every close.
    let (mut c, _) = Client::login(&sidecar, &php, "bob").await;
    let id = php.push("bob", r#"{"after":"closes"}"#, None).await;
    assert_eq!(c.recv_message().await["id"], id.as_str());
    assert!(!php.is_online("alice").await);
}

#[tokio::test]
async fn a_clients_close_is_answered_while_the_node_waits_for_the_auth_frame() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    for code in [1000, 1001, 3000, 4999] {
        let mut c = Client::connect(&sidecar.ws_url("")).await;
        assert_eq!(answer_to_close(&mut c, Some(code)).await, Some(code), "close {code} before auth is echoed");
    }
    let mut c = Client::connect(&sidecar.ws_url("")).await;
    assert_eq!(answer_to_close(&mut c, None).await, Some(1005));
    for code in [0, 999, 1005, 1006, 5000] {
        let mut c = Client::connect(&sidecar.ws_url("")).await;
        assert_eq!(answer_to_close(&mut c, Some(code)).await, Some(1002), "close {code} before auth is a protocol error");
    }
}

#[tokio::test]
async fn a_first_frame_that_is_a_ping_or_binary_closes_with_4003() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    for first in [Message::Ping(Bytes::from_static(b"hi")), Message::binary(vec![1, 2, 3]), Message::text(r#"{"type":"ping"}"#)] {
        let mut c = Client::connect(&sidecar.ws_url("")).await;
        c.ws.send(first.clone()).await.unwrap();
        let (code, reason) = c.expect_close().await;
        assert_eq!(code, close::AUTH_TIMEOUT, "first frame {first:?}: {reason}");
        assert!(reason.contains("auth"), "{reason}");
    }
    // An unsolicited pong is a heartbeat, not a first frame: the auth frame after it works.
    let token = php.token("carol").await;
    let mut c = Client::connect(&sidecar.ws_url("")).await;
    c.ws.send(Message::Pong(Bytes::new())).await.unwrap();
    c.send_text(&format!(r#"{{"type":"auth","token":"{token}"}}"#)).await;
    let welcome = c.recv().await;
    assert_eq!((welcome["type"].as_str(), welcome["uid"].as_str()), (Some("welcome"), Some("carol")), "{welcome}");
}

/// What the server does after `frames`, sent raw on an authenticated connection: the first text
/// frame it answers with (`Ok`), or the close code it ends with (`Err`).
async fn after_raw(sidecar: &Sidecar, php: &Php, frames: Vec<Frame>) -> Result<serde_json::Value, u16> {
    let (mut c, _) = Client::login(sidecar, php, "conf").await;
    for f in frames {
        c.ws.send(Message::Frame(f)).await.unwrap();
    }
    loop {
        match tokio::time::timeout(PATIENCE, c.ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(Some(f)))) => return Err(f.code.into()),
            Some(Ok(Message::Close(None))) => return Err(1005),
            Some(Ok(_)) => continue,
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

fn text(payload: &[u8], fin: bool) -> Frame {
    Frame::message(payload.to_vec(), OpCode::Data(Data::Text), fin)
}

fn continuation(payload: &[u8], fin: bool) -> Frame {
    Frame::message(payload.to_vec(), OpCode::Data(Data::Continue), fin)
}

/// The RFC 6455 rules a server must keep whatever the client sends, checked frame by frame
/// (what the Autobahn|Testsuite cases 1–7 check, without its echo-server expectations).
/// docs/PROTOCOL.md records the result.
#[tokio::test]
async fn the_websocket_rules_of_rfc_6455_hold() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let pong = |v: Result<serde_json::Value, u16>| v.map(|v| (v["type"].as_str().unwrap_or("").to_owned(), v["ref"].clone()));

    // Fragmentation: a message in three fragments, with a ping between two of them.
    let ping = br#"{"type":"ping","ref":"frag"}"#;
    let (a, rest) = ping.split_at(5);
    let (b, c) = rest.split_at(9);
    let got = after_raw(&sidecar, &php, vec![text(a, false), continuation(b, false), Frame::ping(&b"in between"[..]), continuation(c, true)]).await;
    assert_eq!(pong(got), Ok(("pong".to_owned(), serde_json::json!("frag"))));

    // UTF-8 split across fragments: valid when whole, 1007 when not.
    let snow = r#"{"type":"ping","ref":"☃"}"#.as_bytes();
    let at = snow.iter().position(|&b| b == 0xE2).unwrap() + 1;
    let got = after_raw(&sidecar, &php, vec![text(&snow[..at], false), continuation(&snow[at..], true)]).await;
    assert_eq!(pong(got), Ok(("pong".to_owned(), serde_json::json!("☃"))));
    assert_eq!(after_raw(&sidecar, &php, vec![text(b"{\"a\":\"\xE2\x98", false), continuation(b"\x28\"}", true)]).await, Err(1007));
    assert_eq!(after_raw(&sidecar, &php, vec![text(b"\xED\xA0\x80", true)]).await, Err(1007), "an encoded surrogate is not UTF-8");

    // Framing errors: 1002.
    let mut rsv = text(br#"{"type":"ping"}"#, true);
    rsv.header_mut().rsv1 = true;
    let big_ping = Frame::ping(vec![b'p'; 126]);
    let fragmented_ping = Frame::message(b"half".to_vec(), OpCode::Control(Control::Ping), false);
    let reserved_opcode = Frame::message(b"x".to_vec(), OpCode::Data(Data::Reserved(3)), true);
    let reserved_control = Frame::message(Vec::new(), OpCode::Control(Control::Reserved(0xB)), true);
    let one_byte_close = Frame::message(vec![0x03], OpCode::Control(Control::Close), true);
    for (what, frames) in [
        ("a continuation without a start", vec![continuation(b"{}", true)]),
        ("a new message inside a fragmented one", vec![text(b"{", false), text(b"}", true)]),
        ("a reserved bit", vec![rsv]),
        ("a ping over 125 bytes", vec![big_ping]),
        ("a fragmented ping", vec![fragmented_ping]),
        ("a reserved data opcode", vec![reserved_opcode]),
        ("a reserved control opcode", vec![reserved_control]),
        ("a close with a 1-byte payload", vec![one_byte_close]),
    ] {
        assert_eq!(after_raw(&sidecar, &php, frames).await, Err(1002), "{what}");
    }
    // A close whose reason is not UTF-8.
    let bad_reason = Frame::message(vec![0x03, 0xE8, 0xFF, 0xFE], OpCode::Control(Control::Close), true);
    assert_eq!(after_raw(&sidecar, &php, vec![bad_reason]).await, Err(1007));

    // Pings get their payload back (up to the 125 bytes a control frame holds).
    let (mut c, _) = Client::login(&sidecar, &php, "conf").await;
    let payload: Vec<u8> = (0..125u8).collect();
    c.ws.send(Message::Ping(payload.clone().into())).await.unwrap();
    loop {
        match tokio::time::timeout(PATIENCE, c.ws.next()).await.unwrap().unwrap().unwrap() {
            Message::Pong(p) => break assert_eq!(p.as_ref(), &payload[..]),
            _ => continue,
        }
    }
    // The node is fine after all of it.
    let id = php.push("conf", r#"{"still":"here"}"#, None).await;
    assert_eq!(c.recv_message().await["id"], id.as_str());
}
