//! A client cannot connect with a forged, tampered, expired or missing token.

use chat_e2e::{Client, Php, Redis, Sidecar, SECRET};
use chat_protocol::token;
use chat_protocol::wire::close;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn mint(uid: &str, exp: u64, secret: &str) -> String {
    let claims = token::Claims { sub: uid.into(), exp, iat: None, nbf: None, extra: Default::default() };
    token::sign(&claims, secret.as_bytes()).unwrap()
}

#[tokio::test]
async fn token_minted_by_php_is_accepted_in_url_header_or_first_frame() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let t = php.token("alice").await;

    let mut by_header = Client::connect_with_headers(&sidecar.ws_url(""), &[("authorization", &format!("Bearer {t}"))])
        .await
        .expect("upgrade");
    assert_eq!(by_header.recv().await["uid"], "alice");

    let mut by_frame = Client::connect(&sidecar.ws_url("")).await;
    by_frame.send_text(&format!(r#"{{"type":"auth","token":"{t}"}}"#)).await;
    assert_eq!(by_frame.recv().await["uid"], "alice");

    // App claims ride along and do not break verification.
    let with_claims = php.run(r#"echo chat_token("alice", 60, ["role" => "agent"]);"#).await;
    let mut c = Client::connect(&sidecar.ws_url(&format!("token={with_claims}"))).await;
    assert_eq!(c.recv().await["type"], "welcome");
}

#[tokio::test]
async fn forged_and_tampered_tokens_are_refused_with_4001() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);

    let forged = mint("alice", now() + 3600, "not-the-secret");
    let mut c = Client::connect(&sidecar.ws_url(&format!("token={forged}"))).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, close::BAD_TOKEN);
    assert!(reason.contains("signature"), "{reason}");

    // Take a valid token for mallory and swap in alice as subject, keeping the signature.
    let valid = php.token("mallory").await;
    let parts: Vec<&str> = valid.split('.').collect();
    use base64_like::encode;
    let payload = encode(format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 3600).as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    let mut c = Client::connect(&sidecar.ws_url(&format!("token={tampered}"))).await;
    assert_eq!(c.expect_close().await.0, close::BAD_TOKEN);

    let mut c = Client::connect(&sidecar.ws_url("token=garbage")).await;
    assert_eq!(c.expect_close().await.0, close::BAD_TOKEN);
    assert!(sidecar.metric("auth_failures_total").await >= 3);
    assert!(!php.is_online("alice").await);
}

#[tokio::test]
async fn expired_token_is_refused_with_4002() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let expired = mint("alice", now() - 3600, SECRET);
    let mut c = Client::connect(&sidecar.ws_url(&format!("token={expired}"))).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, close::TOKEN_EXPIRED);
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn missing_token_times_out_with_4003() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_AUTH_TIMEOUT_MS", "300")]);
    let mut c = Client::connect(&sidecar.ws_url("")).await;
    assert_eq!(c.expect_close().await.0, close::AUTH_TIMEOUT);

    let mut c = Client::connect(&sidecar.ws_url("")).await;
    c.send_text(r#"{"type":"ping"}"#).await;
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, close::AUTH_TIMEOUT);
    assert!(reason.contains("auth"), "{reason}");
}

/// Minimal base64url without padding, so the test does not depend on the code it checks.
mod base64_like {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pub fn encode(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test]
async fn kick_with_revoke_tokens_refuses_earlier_tokens_everywhere_and_new_ones_work() {
    let redis = Redis::start();
    let sidecar = Sidecar::start(&redis);
    let php = Php::new(&redis);
    let old = php.token("mallory").await;
    let iat = token::verify(&old, SECRET.as_bytes(), now(), 0).unwrap().iat.expect("chat_token writes iat");
    let mut live = Client::connect(&sidecar.ws_url(&format!("token={old}"))).await;
    assert_eq!(live.recv().await["type"], "welcome");
    // Tokens from the revocation's own second pass (revoke, then mint the device a new one):
    // wait for the clock to leave the old token's second.
    chat_e2e::eventually("the clock to pass the old token's second", async || (now() > iat).then_some(())).await;

    assert_eq!(php.json(r#"chat_kick("mallory", "banned", revoke_tokens: true)"#).await, 1);
    assert_eq!(live.expect_close().await, (close::KICKED, "banned".to_owned()));

    // The old token is refused in the URL, in an auth frame and by POST /send.
    let mut again = Client::connect(&sidecar.ws_url(&format!("token={old}"))).await;
    let (code, reason) = again.expect_close().await;
    assert_eq!(code, close::BAD_TOKEN);
    assert!(reason.contains("revoked"), "{reason}");
    let mut by_frame = Client::connect(&sidecar.ws_url("")).await;
    by_frame.send_text(&format!(r#"{{"type":"auth","token":"{old}"}}"#)).await;
    assert_eq!(by_frame.expect_close().await.0, close::BAD_TOKEN);
    let sent = chat_e2e::http::post_send(&sidecar.addr, &old, r#"{"type":"send","to":"bob","data":1}"#).await;
    assert_eq!(sent.status, 401, "{}", sent.body);
    assert!(!php.is_online("mallory").await);

    // A token minted after the revocation connects and sends.
    let new = php.token("mallory").await;
    let mut fresh = Client::connect(&sidecar.ws_url(&format!("token={new}"))).await;
    assert_eq!(fresh.recv().await["uid"], "mallory");
    let sent = chat_e2e::http::post_send(&sidecar.addr, &new, r#"{"type":"send","to":"bob","data":1}"#).await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    // A kick without revoke_tokens leaves tokens alone.
    assert_eq!(php.json(r#"chat_kick("mallory")"#).await, 1);
    let mut back = Client::connect(&sidecar.ws_url(&format!("token={new}"))).await;
    assert_eq!(back.recv().await["type"], "welcome");
}
