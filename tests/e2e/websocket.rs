//! RFC 6455 at the edge of `/ws`: the close handshake (the client's code echoed, 1002 for a
//! code the RFC does not allow, on an open session and while the node waits for the auth
//! frame), and the first frame that is not `auth` (4003, with a close frame, never a dropped
//! TCP connection).

use chat_e2e::{Client, Php, Redis, Sidecar, PATIENCE};
use chat_protocol::wire::close;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
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
