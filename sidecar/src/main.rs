//! `chat-sidecar`: entry point. Loads settings, connects to Redis, serves until SIGINT/SIGTERM,
//! then closes every connection with 1001 and removes its presence before exiting.

mod acks;
mod app;
mod background;
mod config;
mod conn_id;
mod edge;
mod engine;
mod http;
mod hub;
mod listener;
mod mailbox;
mod memory;
mod metrics;
mod presence;
mod ratelimit;
mod session;
mod store;
mod streams;
mod transport;
mod webhook;

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHAT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // reqwest is built without a default TLS backend; ring is the one we ship.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = match config::Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat-sidecar: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: config::Settings) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let listener = listen(settings.listen).map_err(|e| anyhow::anyhow!("cannot listen on {} (CHAT_LISTEN): {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        node = %settings.node_id,
        redis = %settings.redis_url_for_logs(),
        namespace = %settings.namespace,
        "starting"
    );
    let app = app::App::start(settings, shutdown.clone()).await?;
    memory::spawn_trimmer(app.metrics.clone(), shutdown.clone());
    // Tests and scripts wait for this exact line; it carries the real port when 0 was asked.
    println!("chat-sidecar listening on {addr}");
    tracing::info!(%addr, "listening");
    let limits = listener::Limits {
        header_timeout: Duration::from_millis(app.settings.header_timeout_ms),
        idle_timeout: Duration::from_millis(app.settings.idle_timeout_ms),
        max_header_bytes: app.settings.max_header_bytes,
    };
    let admission = edge::Admission::new(app.settings.max_unauthenticated, app.metrics.clone());
    listener::serve(listener, http::router(app.clone()), limits, admission, app.metrics.clone(), shutdown.clone(), Duration::from_secs(10)).await;
    app.tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), app.tasks.wait()).await.is_err() {
        tracing::warn!("connections did not close within 10s");
    }
    app.presence.unregister_all().await;
    app.acks.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// A listener with a deep accept queue: after a node restart or a network blip thousands of
/// clients reconnect at once, and the default backlog (128) would drop their SYNs into
/// retransmission delays. The kernel caps it at `net.core.somaxconn`.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn signal_shutdown(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    token.cancel();
}
