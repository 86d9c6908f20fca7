//! HTTP surface: `/ws` (WebSocket upgrade), `/healthz`, `/readyz`, `/metrics`.
//!
//! The upgrade is done by hand (hyper's `upgrade::on` + tokio-tungstenite's
//! `from_raw_socket`) rather than with axum's WebSocket type, so the connection is a plain
//! tokio-tungstenite stream with our buffer sizes and its own error types (which map to close
//! codes 1007/1009).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::metrics::Metrics;
use crate::session::{self, Handshake};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render())
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut app.redis.clone()).await;
    match pong {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("redis unavailable: {e}\n")).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    token: Option<String>,
    device: Option<String>,
    /// JSON object of resume cursors, e.g. {"u:alice":41}.
    cursors: Option<String>,
    /// `client` when the client sends `ack` frames itself.
    ack: Option<String>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

async fn upgrade(State(app): State<Arc<App>>, Query(q): Query<WsQuery>, mut req: Request) -> Response {
    let headers = req.headers();
    if !is_websocket_upgrade(headers) {
        return plain(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket (RFC 6455, version 13)\n".into());
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n".into());
    };
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !app.origin_allowed(origin) {
        Metrics::inc(&app.metrics.origin_rejections_total);
        return plain(StatusCode::FORBIDDEN, format!("origin {} is not in CHAT_ALLOWED_ORIGINS\n", origin.unwrap_or("")));
    }
    let device = q.device.unwrap_or_else(|| "unknown".into());
    if let Err(e) = chat_protocol::ids::validate("device", &device) {
        return plain(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let cursors = match q.cursors.as_deref().map(chat_protocol::wire::parse_cursors).transpose() {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let client_acks = match q.ack.as_deref() {
        None | Some("auto") => false,
        Some("client") => true,
        Some(other) => return plain(StatusCode::BAD_REQUEST, format!("ack={other:?}: use ack=client or ack=auto\n")),
    };
    let token = q.token.or_else(|| bearer(headers));
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_app = app.clone();
    app.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(task_app.ws_config)).await;
                session::run(task_app, ws, Handshake { token, device, cursors, client_acks }).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("static response parts are valid")
}

fn is_websocket_upgrade(h: &HeaderMap) -> bool {
    let has = |name, want: &str| {
        h.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket") && has(header::SEC_WEBSOCKET_VERSION, "13")
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}
