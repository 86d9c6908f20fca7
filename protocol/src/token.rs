//! The connect token: a JWT signed with HS256.
//!
//! PHP mints it with `chat_token()` (or any JWT library), the sidecar verifies it on connect.
//! Only HS256 is accepted — the header's `alg` is checked, so `none` or an RSA/HMAC confusion
//! cannot slip through. Claims: `sub` (user id, required), `exp` (required), `iat`, plus any
//! app claims, which the sidecar keeps (later issues use them for roles).
//!
//! Hand-written on `hmac` + `sha2` rather than `jsonwebtoken`: that crate's v10 requires a full
//! crypto backend (aws-lc needs cmake; rust_crypto pulls RSA and elliptic curves) and all of it
//! would be linked into every PHP worker for one HMAC.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids;

type HmacSha256 = Hmac<Sha256>;

/// Longest lifetime `chat_token()` mints (30 days): a token cannot be taken back once handed
/// out except by revoking every token of its user (`chat_kick(..., revoke_tokens: true)`), so
/// one that lives for years is a credential nobody controls.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// Whether a token issued at `iat` was revoked by a revocation at `revoked_at` (unix seconds):
/// tokens issued in an earlier second are. A token from the revocation's own second passes, so
/// that an app can revoke and at once mint the current device a new token (`iat` has whole
/// seconds only); a stolen token would have to be minted in that same second. A token without
/// `iat` (minted by another JWT library) is refused once its user has any revocation, since
/// when it was issued is unknown.
pub fn is_revoked(iat: Option<u64>, revoked_at: Option<u64>) -> bool {
    match revoked_at {
        None => false,
        Some(at) => iat.is_none_or(|iat| iat < at),
    }
}

/// Longest token accepted, so a hostile client cannot make us decode megabytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Claims carried by a connect token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Any further claims the app added.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the JWT secret is empty; set chat.jwt_secret (PHP) and CHAT_JWT_SECRET (sidecar) to the same value")]
    NoSecret,
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token is not a JWT (expected three base64url parts: header.payload.signature)")]
    Malformed,
    #[error("token algorithm must be HS256")]
    UnsupportedAlgorithm,
    #[error("token signature does not match (signed with another secret, or altered)")]
    BadSignature,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("token is not valid before {nbf} (now {now})")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("token subject: {0}")]
    BadSubject(#[from] ids::IdError),
    #[error("ttl is {0} seconds; the longest is {MAX_TTL_SECS} (30 days)")]
    TtlTooLong(u64),
    #[error("claim {0:?} is set by chat_token itself and cannot be passed in $claims")]
    ReservedClaim(String),
}

/// Signs `claims` with `secret`.
pub fn sign(claims: &Claims, secret: &[u8]) -> Result<String, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    ids::validate("user id", &claims.sub)?;
    let payload = serde_json::to_vec(claims).map_err(|e| TokenError::BadClaims(e.to_string()))?;
    let mut token = String::with_capacity(256);
    token.push_str(&B64.encode(HEADER));
    token.push('.');
    token.push_str(&B64.encode(payload));
    let sig = mac(secret, token.as_bytes()).finalize().into_bytes();
    token.push('.');
    token.push_str(&B64.encode(sig));
    Ok(token)
}

/// Builds the claims `chat_token($uid, $ttl, $claims)` signs: `sub`, `iat`, `exp` plus extras.
pub fn claims_for(
    uid: &str,
    now: u64,
    ttl_secs: u64,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<Claims, TokenError> {
    if let Some(k) = ["sub", "exp", "iat"].into_iter().find(|k| extra.contains_key(*k)) {
        return Err(TokenError::ReservedClaim(k.to_owned()));
    }
    ids::validate("user id", uid)?;
    if ttl_secs > MAX_TTL_SECS {
        return Err(TokenError::TtlTooLong(ttl_secs));
    }
    Ok(Claims { sub: uid.to_owned(), exp: now + ttl_secs, iat: Some(now), nbf: None, extra })
}

/// Verifies signature, algorithm, expiry (with `leeway_secs` of clock skew) and subject.
pub fn verify(token: &str, secret: &[u8], now: u64, leeway_secs: u64) -> Result<Claims, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    let header = B64.decode(header).map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    mac(secret, signed.as_bytes()).verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|e| TokenError::BadClaims(e.to_string()))?;
    if claims.exp.saturating_add(leeway_secs) <= now {
        return Err(TokenError::Expired { exp: claims.exp, now });
    }
    if let Some(nbf) = claims.nbf {
        if nbf > now.saturating_add(leeway_secs) {
            return Err(TokenError::NotYetValid { nbf, now });
        }
    }
    ids::validate("user id", &claims.sub)?;
    Ok(claims)
}

fn mac(secret: &[u8], data: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(data);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        claims_for("alice", exp - 60, 60, serde_json::Map::new()).unwrap()
    }

    #[test]
    fn round_trip() {
        let t = sign(&claims(1_000), b"s3cret").unwrap();
        let c = verify(&t, b"s3cret", 990, 0).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.exp, 1_000);
    }

    #[test]
    fn matches_the_rfc7519_style_reference_signature() {
        // Independent reference: HS256 of the jwt.io example with secret "your-256-bit-secret".
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiZXhwIjoxNTE2MjM5MDIyfQ.";
        let (signed, _) = t.rsplit_once('.').unwrap();
        let sig = mac(b"your-256-bit-secret", signed.as_bytes()).finalize().into_bytes();
        let good = format!("{signed}.{}", B64.encode(sig));
        let c = verify(&good, b"your-256-bit-secret", 1_516_239_000, 0).unwrap();
        assert_eq!(c.sub, "1234567890");
        assert_eq!(c.extra["name"], "John Doe");
    }

    #[test]
    fn refuses_wrong_secret_expiry_and_tampering() {
        let t = sign(&claims(1_000), b"s3cret").unwrap();
        assert_eq!(verify(&t, b"other", 990, 0), Err(TokenError::BadSignature));
        assert_eq!(verify(&t, b"s3cret", 1_000, 0), Err(TokenError::Expired { exp: 1_000, now: 1_000 }));
        assert!(verify(&t, b"s3cret", 1_000, 5).is_ok());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(r#"{"sub":"mallory","exp":99999}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), b"s3cret", 990, 0), Err(TokenError::BadSignature));
        assert_eq!(verify("abc", b"s3cret", 0, 0), Err(TokenError::Malformed));
        assert_eq!(verify(&"a".repeat(MAX_TOKEN_LEN + 1), b"s", 0, 0), Err(TokenError::TooLong));
    }

    #[test]
    fn refuses_alg_none() {
        let header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = B64.encode(r#"{"sub":"alice","exp":99999}"#);
        let t = format!("{header}.{payload}.");
        assert_eq!(verify(&t, b"s3cret", 0, 0), Err(TokenError::UnsupportedAlgorithm));
    }

    #[test]
    fn refuses_reserved_claims_and_empty_secret() {
        let mut extra = serde_json::Map::new();
        extra.insert("exp".into(), 5.into());
        assert_eq!(claims_for("a", 0, 1, extra), Err(TokenError::ReservedClaim("exp".into())));
        assert_eq!(sign(&claims(100), b""), Err(TokenError::NoSecret));
        assert_eq!(claims_for("a", 0, MAX_TTL_SECS + 1, serde_json::Map::new()), Err(TokenError::TtlTooLong(MAX_TTL_SECS + 1)));
        assert!(claims_for("a", 0, MAX_TTL_SECS, serde_json::Map::new()).is_ok());
        let t = sign(&claims(100), b"x").unwrap();
        assert_eq!(verify(&t, b"", 0, 0), Err(TokenError::NoSecret));
    }

    #[test]
    fn tokens_issued_up_to_a_revocation_are_revoked() {
        assert!(!is_revoked(Some(500), None));
        assert!(!is_revoked(Some(500), Some(500)), "the same second passes: revoke, then mint anew");
        assert!(is_revoked(Some(499), Some(500)));
        assert!(!is_revoked(Some(501), Some(500)));
        assert!(is_revoked(None, Some(1)), "no iat: unknown, so refused");
    }
}
