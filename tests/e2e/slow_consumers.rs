//! Outbound queues bounded in bytes as well as frames: a client that never reads is closed
//! (4009) once it is `CHAT_OUTBOUND_QUEUE_BYTES` behind, long before the frame bound, and the
//! node's memory comes back once such clients are gone.

use std::time::Duration;

use chat_e2e::{eventually, Client, Php, Redis, Sidecar, PATIENCE};
use chat_protocol::wire::close;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// Pushes `count` messages of about `kib` KiB to `uid`, from one PHP process.
async fn burst(php: &Php, uid: &str, count: usize, kib: usize) {
    php.run(&format!(r#"$pad = str_repeat("x", {kib} * 1000); for ($i = 0; $i < {count}; $i++) {{ chat_push({uid:?}, ["i" => $i, "pad" => $pad]); }}"#))
        .await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_by_bytes_before_frames() {
    let redis = Redis::start();
    // A long write timeout: the node must not give up on the socket before we read again.
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_WRITE_TIMEOUT_MS", "60000")]);
    let php = Php::new(&redis);
    let (mut bystander, _) = Client::login(&sidecar, &php, "bob").await;
    let (mut stalled, _) = Client::login(&sidecar, &php, "alice").await;

    // 200 frames of 60 KB: a fifth of the frame bound (1024), twelve times the byte bound (1 MiB),
    // and more than the sockets' buffers take.
    burst(&php, "alice", 200, 60).await;
    eventually("alice's queue to overflow by bytes", async || (sidecar.metric("outbound_overflow_bytes_total").await >= 1).then_some(())).await;
    assert_eq!(sidecar.metric("outbound_overflow_frames_total").await, 0);

    // Reading again, alice gets what was written before the overflow, then 4009.
    let mut received = 0;
    let code = loop {
        match tokio::time::timeout(PATIENCE, stalled.ws.next()).await.expect("frames, then a close") {
            Some(Ok(Message::Text(t))) if t.contains(r#""type":"message""#) => received += 1,
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("expected frames and a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, close::TOO_SLOW);
    assert!(received < 200, "closed before the burst was through: {received} of 200");
    let id = php.push("bob", r#"{"unaffected":true}"#, None).await;
    assert_eq!(bystander.recv_message().await["id"], id.as_str());
}

/// The issue's shape: three clients that never read, 1,000 × 60 KB pushed to each. Returns the node's RSS before the burst and at its peak, in KiB, once the three
/// are disconnected and a bystander still receives.
async fn three_stalled_clients(redis: &Redis, sidecar: &Sidecar) -> (u64, u64) {
    let php = Php::new(redis);
    let (mut bystander, _) = Client::login(sidecar, &php, "bob").await;
    let mut stalled = Vec::new();
    for uid in ["s1", "s2", "s3"] {
        stalled.push(Client::login(sidecar, &php, uid).await.0);
    }
    let before = sidecar.rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let (pid, peak) = (sidecar.pid(), peak.clone());
        tokio::spawn(async move {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                peak.fetch_max(rss.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    futures_util::future::join_all(["s1", "s2", "s3"].map(|uid| burst(&php, uid, 1000, 60))).await;
    for uid in ["s1", "s2", "s3"] {
        eventually(&format!("{uid} to be disconnected"), async || (!php.is_online(uid).await).then_some(())).await;
    }
    drop(stalled);
    let id = php.push("bob", r#"{"after":"the burst"}"#, None).await;
    assert_eq!(bystander.recv_message().await["id"], id.as_str());
    sampler.abort();
    (before, peak.load(std::sync::atomic::Ordering::Relaxed))
}

/// Waits until the node's RSS is back within `margin_kib` of `before`; returns it.
async fn memory_back(sidecar: &Sidecar, before: u64, margin_kib: u64) -> u64 {
    eventually(&format!("the node's RSS to come back below {} KiB", before + margin_kib), async || {
        let rss = sidecar.rss_kib();
        (rss < before + margin_kib).then_some(rss)
    })
    .await
}

#[tokio::test]
async fn the_byte_bound_keeps_three_stalled_clients_from_taking_memory() {
    let redis = Redis::start();
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_WRITE_TIMEOUT_MS", "2000")]);
    let (before, peak) = three_stalled_clients(&redis, &sidecar).await;
    let after = memory_back(&sidecar, before, 16 * 1024).await;
    eprintln!("byte bound 1 MiB: RSS {before} KiB before, {peak} KiB at the peak, {after} KiB after");
    assert!(sidecar.metric("outbound_overflow_bytes_total").await >= 3);
    // Each stalled client holds at most its byte bound (1 MiB) and a write buffer: a few MiB
    // in all, where the frame bound alone let them take 165 MiB.
    assert!(peak < before + 48 * 1024, "peak {peak} KiB, {before} KiB before");
}

#[tokio::test]
async fn memory_comes_back_after_a_burst_held_by_slow_consumers() {
    let redis = Redis::start();
    // Frames only (the byte bound out of the way), as before: the burst takes ~165 MiB.
    let sidecar = Sidecar::start_with(&redis, &[("CHAT_WRITE_TIMEOUT_MS", "2000"), ("CHAT_OUTBOUND_QUEUE_BYTES", "1000000000")]);
    let (before, peak) = three_stalled_clients(&redis, &sidecar).await;
    assert!(peak > before + 64 * 1024, "the burst was held: peak {peak} KiB, {before} KiB before");
    // glibc kept all of it after the clients were gone; the node trims once they are.
    let after = memory_back(&sidecar, before, 32 * 1024).await;
    eprintln!("frame bound only: RSS {before} KiB before, {peak} KiB at the peak, {after} KiB after");
    // Counted once the trim returned, which may be just after the RSS dropped.
    eventually("the trim to be counted", async || (sidecar.metric("memory_trims_total").await >= 1).then_some(())).await;
}
