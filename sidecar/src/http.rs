//! HTTP surface: the three client transports (`/ws`, `/sse`, `/poll`), `POST /send`, the
//! JavaScript client (`/chat.js`, `/chat.d.ts`), and `/healthz`, `/readyz`, `/metrics`.
//!
//! The WebSocket upgrade is done by hand (hyper's `upgrade::on` + tokio-tungstenite's
//! `from_raw_socket`) rather than with axum's WebSocket type, so the connection is a plain
//! tokio-tungstenite stream with our buffer sizes and its own error types (which map to close
//! codes 1007/1009).
//!
//! Browser pages usually live on the PHP app's origin, not the sidecar's: the CORS layer here
//! answers preflights and labels responses for origins in `CHAT_ALLOWED_ORIGINS` (any origin
//! when it is empty), and every transport refuses other origins with 403.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chat_protocol::wire::{self, ClientFrame, ServerFrame};
use chat_protocol::Claims;
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::app::App;
use crate::edge::Unauthenticated;
use crate::metrics::Metrics;
use crate::session::actions::{Actor, Known};
use crate::session::{self, Handshake};
use crate::transport::poll::{Attach, PollTransport};
use crate::transport::sse::SseTransport;
use crate::transport::ws::WsTransport;
use crate::transport::{close_json, Exit, Transport};

/// The JavaScript client, built into the binary so any node serves the version it speaks.
const CHAT_JS: &str = include_str!("../../client/chat.js");
const CHAT_DTS: &str = include_str!("../../client/chat.d.ts");

pub fn router(app: Arc<App>) -> Router {
    let limit = app.settings.max_frame_bytes;
    Router::new()
        .route("/ws", get(upgrade))
        .route("/sse", get(sse))
        .route("/poll", get(poll))
        .route("/send", post(send).layer(DefaultBodyLimit::max(limit)))
        .route("/chat.js", get(|| async { script("text/javascript; charset=utf-8", CHAT_JS) }))
        .route("/chat.d.ts", get(|| async { script("application/typescript; charset=utf-8", CHAT_DTS) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), cors))
        .with_state(app)
}

fn script(content_type: &'static str, body: &'static str) -> Response {
    // Public code: any page may load it as a module.
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Answers CORS preflights and adds `Access-Control-Allow-Origin` for allowed origins.
async fn cors(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = origin.as_ref().filter(|o| app.origin_allowed(o.to_str().ok()));
    if req.method() == Method::OPTIONS {
        let Some(origin) = allowed else {
            return plain(StatusCode::FORBIDDEN, "origin not in CHAT_ALLOWED_ORIGINS\n".into());
        };
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
            .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS")
            .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type, last-event-id")
            .header(header::ACCESS_CONTROL_MAX_AGE, "600")
            .header(header::VARY, "Origin")
            .body(Body::empty())
            .expect("static response parts are valid");
    }
    let mut res = next.run(req).await;
    if let Some(origin) = allowed {
        let h = res.headers_mut();
        if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    res
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render())
}

/// From the health check's last result, at once: a load balancer asking a node whose Redis is
/// gone gets its answer in microseconds, not after a Redis timeout.
async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.health.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n").into_response()
    }
}

/// Query parameters every transport takes.
#[derive(Debug, Deserialize)]
struct ConnectQuery {
    token: Option<String>,
    device: Option<String>,
    /// JSON object of resume cursors, e.g. {"u:alice":41}.
    cursors: Option<String>,
    /// `client` when the client sends `ack` frames itself.
    ack: Option<String>,
    /// Long-poll: the session to attach to, from the last answer.
    conn: Option<String>,
    /// Long-poll: how long to hold the request, in ms.
    timeout: Option<u64>,
}

/// A connect request that passed the checks every transport shares.
struct Connect {
    token: Option<String>,
    hs: Handshake,
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

/// Origin, device, cursors and ack mode: refused with plain HTTP before any session exists.
// The error is the HTTP answer itself, built once per refused connect: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn check_connect(app: &App, headers: &HeaderMap, q: ConnectQuery) -> Result<Connect, Response> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !app.origin_allowed(origin) {
        Metrics::inc(&app.metrics.origin_rejections_total);
        return Err(plain(StatusCode::FORBIDDEN, format!("origin {} is not in CHAT_ALLOWED_ORIGINS\n", origin.unwrap_or(""))));
    }
    let device = q.device.unwrap_or_else(|| "unknown".into());
    if let Err(e) = chat_protocol::ids::validate("device", &device) {
        return Err(plain(StatusCode::BAD_REQUEST, format!("{e}\n")));
    }
    let cursors = q.cursors.as_deref().map(wire::parse_cursors).transpose().map_err(|e| plain(StatusCode::BAD_REQUEST, format!("{e}\n")))?;
    let client_acks = match q.ack.as_deref() {
        None | Some("auto") => false,
        Some("client") => true,
        Some(other) => return Err(plain(StatusCode::BAD_REQUEST, format!("ack={other:?}: use ack=client or ack=auto\n"))),
    };
    Ok(Connect { token: q.token.or_else(|| bearer(headers)), hs: Handshake { device, cursors, client_acks } })
}

async fn upgrade(State(app): State<Arc<App>>, Query(q): Query<ConnectQuery>, mut req: Request) -> Response {
    let headers = req.headers();
    if !is_websocket_upgrade(headers) {
        return plain(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket (RFC 6455, version 13)\n".into());
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n".into());
    };
    let accept = derive_accept_key(key.as_bytes());
    let Connect { token, mut hs } = match check_connect(&app, headers, q) {
        Ok(c) => c,
        Err(res) => return res,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Held until the connection is authenticated (its token checked, or its auth frame read);
    // a newer unauthenticated connection may take its place meanwhile (edge::Admission).
    let unauthenticated = req.extensions_mut().remove::<Unauthenticated>();
    let task_app = app.clone();
    let fut = async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        // The plain socket: a session keeps neither hyper's boxed stream nor the listener's
        // wrapper (whose bytes already read, the client's first frames, are handed over).
        let Some((tcp, read)) = crate::edge::upgraded_socket(upgraded) else {
            return tracing::error!("an upgraded connection is not the listener's socket");
        };
        let ws = WebSocketStream::from_partially_read(tcp, read, Role::Server, Some(task_app.ws_config)).await;
        let mut t = WsTransport::new(&task_app, ws);
        let authenticated = {
            let evicted = async {
                match &unauthenticated {
                    Some(Unauthenticated(slot)) => slot.evicted().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                a = Box::pin(t.authenticate(&task_app, token, &mut hs.cursors)) => a,
                _ = evicted => Err(crate::transport::close_with(wire::close::AUTH_TIMEOUT, "too many connections waiting to authenticate; reconnect and authenticate at once")),
            }
        };
        drop(unauthenticated);
        match authenticated {
            Ok(claims) => {
                // A task of its own, so a live connection keeps only the session's state and
                // not this handshake's (which the compiler would keep beside it).
                let conn = task_app.next_conn_id();
                task_app.tasks.spawn(session::run(task_app.clone(), t, conn, claims, hs));
            }
            Err(exit) => t.finish(exit).await,
        }
    };
    app.tasks.spawn(fut);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("static response parts are valid")
}

fn token_claims(app: &App, token: Option<&str>) -> Result<Claims, Exit> {
    match token {
        Some(t) => session::verify_token(app, t),
        None => {
            Metrics::inc(&app.metrics.auth_failures_total);
            Err(crate::transport::close_with(wire::close::AUTH_TIMEOUT, "no token: pass ?token= or an Authorization: Bearer header"))
        }
    }
}

async fn sse(State(app): State<Arc<App>>, Query(q): Query<ConnectQuery>, headers: HeaderMap) -> Response {
    let Connect { token, mut hs } = match check_connect(&app, &headers, q) {
        Ok(c) => c,
        Err(res) => return res,
    };
    // The browser's own reconnect carries the id of the last event it saw: newer than the URL.
    if let Some(id) = headers.get("last-event-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        match wire::parse_cursors(id) {
            Ok(c) => hs.cursors = Some(c),
            Err(e) => return plain(StatusCode::BAD_REQUEST, format!("Last-Event-ID: {e}\n")),
        }
    }
    let (t, body) = SseTransport::new(&app);
    // Without a token and with CHAT_ANONYMOUS_CONNECT: anonymous until the app binds it.
    let claims = match token {
        None if app.settings.anonymous_connect => Ok(None),
        token => token_claims(&app, token.as_deref()).map(Some),
    };
    match claims {
        Ok(claims) => {
            let conn = app.next_conn_id();
            app.tasks.spawn(session::run(app.clone(), t, conn, claims, hs));
        }
        Err(exit) => {
            app.tasks.spawn(t.finish(exit));
        }
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        // nginx would otherwise buffer the stream.
        .header("x-accel-buffering", "no")
        .body(body)
        .expect("static response parts are valid")
}

/// The longest a poll may be held; proxies commonly cut idle requests at 60 s.
const MAX_POLL_MS: u64 = 60_000;
const DEFAULT_POLL_MS: u64 = 25_000;

async fn poll(State(app): State<Arc<App>>, Query(mut q): Query<ConnectQuery>, headers: HeaderMap) -> Response {
    let wait = Duration::from_millis(q.timeout.unwrap_or(DEFAULT_POLL_MS).min(MAX_POLL_MS));
    let conn = q.conn.take();
    let Connect { token, mut hs } = match check_connect(&app, &headers, q) {
        Ok(c) => c,
        Err(res) => return res,
    };
    let json = |body: String| ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response();
    if token.is_none() && app.settings.anonymous_connect {
        // A session kept between polls is found by its client id and user; an anonymous one
        // would be anyone's who learns its id, so long-polling stays token-only.
        Metrics::inc(&app.metrics.auth_failures_total);
        let close = close_json(wire::close::AUTH_TIMEOUT, "long-polling needs a token; anonymous connections use /ws or /sse".into());
        return json(format!(r#"{{"frames":[],"close":{close}}}"#));
    }
    let claims = match token_claims(&app, token.as_deref()) {
        Ok(c) => c,
        Err(Exit::Close(code, reason)) => return json(format!(r#"{{"frames":[],"close":{}}}"#, close_json(code, reason))),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request\n".into()),
    };
    let (reply, answer) = oneshot::channel();
    let mut attach = Attach { cursors: hs.cursors.clone(), wait, reply };
    if let Some(name) = conn.as_deref() {
        match app.polls.attach(name, &claims.sub, attach) {
            Ok(()) => return await_answer(answer, wait).await.map_or_else(|| json(r#"{"frames":[]}"#.into()), json),
            Err(back) => attach = back,
        }
    }
    // A new session: the client's cursors are where it resumes, and its later polls are its
    // acknowledgements, so writes never count as received.
    hs.client_acks = true;
    let id = app.next_conn_id();
    let t = PollTransport::new(
        app.polls.clone(),
        session::conn_name(&app, id),
        claims.sub.as_str().into(),
        attach,
        Duration::from_millis(app.settings.poll_grace_ms),
        app.settings.outbound_queue,
        app.settings.outbound_queue_bytes,
    );
    app.tasks.spawn(session::run(app.clone(), t, id, Some(claims), hs));
    await_answer(answer, wait).await.map_or_else(|| json(r#"{"frames":[]}"#.into()), json)
}

/// The session answers within `wait` (plus the time a start takes); a session that ended
/// without answering yields an empty answer and the client simply polls again.
async fn await_answer(answer: oneshot::Receiver<String>, wait: Duration) -> Option<String> {
    tokio::time::timeout(wait + Duration::from_secs(15), answer).await.ok()?.ok()
}

/// `POST /send`: one client frame over plain HTTP, for SSE and long-poll clients. Needs no
/// session, so any node takes it.
async fn send(State(app): State<Arc<App>>, Query(q): Query<SendQuery>, headers: HeaderMap, body: Body) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !app.origin_allowed(origin) {
        Metrics::inc(&app.metrics.origin_rejections_total);
        return plain(StatusCode::FORBIDDEN, format!("origin {} is not in CHAT_ALLOWED_ORIGINS\n", origin.unwrap_or("")));
    }
    let reply = |status: StatusCode, frame: ServerFrame| (status, [(header::CONTENT_TYPE, "application/json")], frame.to_json()).into_response();
    let token = q.token.or_else(|| bearer(&headers));
    let claims = match token_claims(&app, token.as_deref()) {
        Ok(c) => c,
        Err(Exit::Close(code, reason)) => {
            let code = if code == wire::close::TOKEN_EXPIRED { wire::error::TOKEN_EXPIRED } else { wire::error::BAD_TOKEN };
            return reply(StatusCode::UNAUTHORIZED, ServerFrame::error(code, reason));
        }
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request\n".into()),
    };
    let revoked: redis::RedisResult<Option<u64>> = redis::cmd("GET").arg(app.keys.revoked(&claims.sub)).query_async(&mut app.redis.clone()).await;
    match revoked {
        Ok(at) if chat_protocol::token::is_revoked(claims.iat, at) => {
            Metrics::inc(&app.metrics.auth_failures_total);
            return reply(StatusCode::UNAUTHORIZED, ServerFrame::error(wire::error::BAD_TOKEN, "token revoked (chat_kick): get a new one from the app"));
        }
        Ok(_) => {}
        Err(e) => {
            Metrics::inc(&app.metrics.redis_errors_total);
            tracing::warn!(error = %e, "cannot check token revocation");
            return reply(StatusCode::SERVICE_UNAVAILABLE, ServerFrame::error(wire::error::UNAVAILABLE, "chat backend unavailable; retry"));
        }
    }
    if !app.send_limits.take(&claims.sub) {
        Metrics::inc(&app.metrics.rate_limited_frames_total);
        let limit = app.settings.rate_limit;
        return reply(StatusCode::TOO_MANY_REQUESTS, ServerFrame::error(wire::error::RATE_LIMITED, format!("more than {limit} frames per second; frame dropped")));
    }
    let body = match read_body(&app, &headers, body).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        Metrics::inc(&app.metrics.bad_frames_total);
        return reply(StatusCode::BAD_REQUEST, ServerFrame::error(wire::error::BAD_JSON, "body is not UTF-8"));
    };
    let actor = Actor { app: &app, uid: &claims.sub };
    let answer = match wire::parse_client(text) {
        Ok(ClientFrame::Ping { r#ref }) => Some(ServerFrame::Pong { r#ref }),
        Ok(ClientFrame::Auth { .. }) => Some(ServerFrame::error(wire::error::BAD_FRAME, "auth frames belong on a WebSocket; POST /send takes the token in the Authorization header")),
        Ok(ClientFrame::Send { target, data, r#ref }) => Some(actor.send(target, data.get(), r#ref).await),
        Ok(ClientFrame::Typing { target }) => actor.typing(target, Known::Ask).await,
        Ok(ClientFrame::Signal { group, to, data }) => actor.signal(&group, &to, data.get(), Known::Ask).await,
        Ok(ClientFrame::Read { conv, seq }) => match actor.own(&conv, Known::Ask).await {
            Ok((conversation, latest)) => actor.read(&conversation, seq.min(latest)).await,
            Err(frame) => Some(frame),
        },
        Ok(ClientFrame::Ack { conv, seq }) => match actor.own(&conv, Known::Ask).await {
            Ok((conversation, latest)) => actor.ack(&conversation, seq.min(latest)).await.err(),
            Err(frame) => Some(frame),
        },
        Err(e) => {
            Metrics::inc(&app.metrics.bad_frames_total);
            Some(ServerFrame::error(e.code(), e.to_string()))
        }
    };
    match answer {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(frame) => {
            let status = match &frame {
                ServerFrame::Error { code, .. } => error_status(code),
                _ => StatusCode::OK,
            };
            reply(status, frame)
        }
    }
}

/// The body of `POST /send`, read only once its token passed, at most `max_frame_bytes`, and
/// within `CHAT_HEADER_TIMEOUT_MS`: the listener's timeouts end where a request is complete, and
/// a client trickling its body would otherwise hold the connection for ever.
// The error is the HTTP answer itself, as in check_connect.
#[allow(clippy::result_large_err)]
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let limit = app.settings.max_frame_bytes;
    let too_big = || plain(StatusCode::PAYLOAD_TOO_LARGE, format!("the frame is over {limit} bytes (max_frame_bytes)\n"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_big());
    }
    let wait = Duration::from_millis(app.settings.header_timeout_ms);
    match tokio::time::timeout(wait, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        // Over the limit as it arrived (chunked), or the client went away.
        Ok(Err(_)) => Err(too_big()),
        Err(_) => {
            Metrics::inc(&app.metrics.header_timeouts_total);
            Err(plain(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time (CHAT_HEADER_TIMEOUT_MS)\n".into()))
        }
    }
}

#[derive(Debug, Deserialize)]
struct SendQuery {
    token: Option<String>,
}

fn error_status(code: &str) -> StatusCode {
    match code {
        wire::error::FORBIDDEN | wire::error::SEND_DISABLED => StatusCode::FORBIDDEN,
        wire::error::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        wire::error::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        wire::error::BAD_TOKEN | wire::error::TOKEN_EXPIRED => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
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

