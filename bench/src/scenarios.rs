//! The scenarios of issue 7, each against chat-sidecar ("ours") and, where it applies, the
//! Node.js ws peer, in the same run on the same Redis.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clients::Kind;
use crate::procs::{Env, Load, Php, Redis, Server, Workers};

/// Key namespaces: ours and the peer's never see each other's messages.
pub const NS_CHAT: &str = "chat";
pub const NS_PEER: &str = "peer";

/// Sizes and durations of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub mode: String,
    /// Scenario 1: idle connections on one node (ours and the peer).
    pub idle_conns: usize,
    /// Scenario 1: idle connections across several sidecar nodes (ours).
    pub multi_nodes: usize,
    pub multi_conns: usize,
    /// Scenario 2: group size, single sends, messages per burst.
    pub group_members: usize,
    pub group_singles: usize,
    pub group_burst: usize,
    /// Scenario 3: connected users, PHP producer processes, warm-up and measured window.
    pub o2o_users: usize,
    pub o2o_producers: usize,
    pub o2o_warmup_s: f64,
    pub o2o_window_s: f64,
    /// Scenario 3, second phase: the same producers paced to this total rate (msg/s), for
    /// latency below saturation.
    pub o2o_paced_rate: u32,
    pub o2o_paced_s: f64,
    /// Scenario 1: seconds over which the idle server's CPU use is measured.
    pub idle_cpu_s: f64,
    /// Scenario 4: chat_push() calls per measurement, and how many alternating rounds.
    pub push_calls: usize,
    pub push_rounds: usize,
    /// Scenario 5: clients dropped at once, message rate during the storm, time after it.
    pub storm_clients: usize,
    pub storm_rate: u32,
    pub storm_after_s: f64,
    /// Scenario 6: length of the scenario-3 run whose RSS is sampled, and sampling interval.
    pub memory_s: f64,
    pub memory_sample_s: f64,
    /// Connections per client process (one process may hold at most 20,000 files).
    pub per_worker: usize,
    /// Scenario 2: members per client process; 0 = `per_worker`. Two processes for the 10,000
    /// members: in one, the client's frame parsing was the limit of the burst, for ours and the
    /// floor alike (see docs/BENCHMARKS.md).
    #[serde(default)]
    pub group_per_worker: usize,
}

impl Plan {
    pub fn smoke() -> Plan {
        Plan {
            mode: "smoke".into(),
            idle_conns: 400,
            multi_nodes: 2,
            multi_conns: 400,
            group_members: 200,
            group_singles: 5,
            group_burst: 20,
            o2o_users: 200,
            o2o_producers: 2,
            o2o_warmup_s: 1.0,
            o2o_window_s: 3.0,
            o2o_paced_rate: 2000,
            o2o_paced_s: 2.0,
            idle_cpu_s: 1.0,
            push_calls: 5000,
            push_rounds: 1,
            storm_clients: 300,
            storm_rate: 500,
            storm_after_s: 2.0,
            memory_s: 8.0,
            memory_sample_s: 0.5,
            per_worker: 10_000,
            group_per_worker: 0,
        }
    }

    pub fn full() -> Plan {
        Plan {
            mode: "full".into(),
            idle_conns: 19_000,
            multi_nodes: 6,
            multi_conns: 100_000,
            group_members: 10_000,
            group_singles: 20,
            group_burst: 100,
            o2o_users: 10_000,
            o2o_producers: 4,
            o2o_warmup_s: 5.0,
            o2o_window_s: 30.0,
            o2o_paced_rate: 10_000,
            o2o_paced_s: 20.0,
            idle_cpu_s: 10.0,
            push_calls: 50_000,
            push_rounds: 5,
            storm_clients: 19_000,
            storm_rate: 3000,
            storm_after_s: 10.0,
            memory_s: 600.0,
            memory_sample_s: 5.0,
            per_worker: 10_000,
            group_per_worker: 5_000,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Idle {
    pub target: String,
    pub nodes: usize,
    pub conns: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_conn: f64,
    pub connect_s: f64,
    pub conns_per_s: f64,
    /// Connection attempts that failed and were retried.
    pub connect_errors: u64,
    /// CPU the server(s) used while the connections sat idle, in cores (1.0 = one core busy).
    pub idle_cpu: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneToOne {
    pub target: String,
    pub users: usize,
    pub producers: usize,
    pub window_s: f64,
    pub delivered: u64,
    pub msg_per_s: f64,
    pub latency: Latency,
    /// chat_push() calls per second of all producers over their whole run.
    pub pushed_per_s: f64,
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
    /// CPU seconds the server used per second of the window (1.0 = one core busy).
    pub server_cpu: f64,
    /// The same for redis-server (it runs the push script and the pub/sub fan-in).
    pub redis_cpu: f64,
    pub holes: u64,
    pub lost_conns: u64,
    /// Second phase: producers paced to `paced_rate` msg/s in total.
    pub paced_rate: u32,
    pub paced_msg_per_s: f64,
    pub paced_latency: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushRate {
    pub calls: usize,
    pub rounds: usize,
    pub php_per_s: Vec<f64>,
    pub floor_per_s: Vec<f64>,
    pub php_median: f64,
    pub floor_median: f64,
    pub ratio: f64,
    /// The EVALSHA chat_push sent, as replayed by redis-benchmark.
    pub command: Vec<String>,
    /// Whether protocol/lua/push.lua (SCRIPT LOAD) has the SHA the extension called.
    pub same_script: bool,
    /// The same EVALSHA from four redis-benchmark clients at once, calls/s: what Redis on this
    /// machine takes from four producers with nothing delivering — the ceiling of scenario 3.
    #[serde(default)]
    pub ceiling_4_clients: f64,
    /// The same pushes with a replica attached: without asking it to confirm (`replicas=0`) and
    /// with (`?replicas=1`: push + WAIT in one round trip), medians of calls/s.
    #[serde(default)]
    pub with_replica_per_s: f64,
    #[serde(default)]
    pub replica_ack_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Storm {
    pub clients: usize,
    pub all_back: bool,
    pub storm_ms: f64,
    pub pushed_after: u64,
    pub lost_after: u64,
    /// Messages the server skipped when a client reconnected (its welcome cursor was ahead
    /// of the last message the client had): lost unless resume works.
    pub skipped_by_reconnect: u64,
    /// Sequence gaps while connected, and duplicates, over the whole run.
    pub holes: u64,
    pub dups: u64,
    pub resume: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    pub target: String,
    pub duration_s: f64,
    /// (seconds since the start, RSS KiB).
    pub samples: Vec<(f64, u64)>,
    pub baseline_kib: u64,
    pub min_kib: u64,
    pub max_kib: u64,
    /// Largest deviation from the baseline (median of the samples after the first 10%), %.
    pub max_dev_pct: f64,
    pub delivered: u64,
    pub msg_per_s: f64,
    pub latency: Latency,
    pub holes: u64,
    pub lost_conns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub target: String,
    pub members: usize,
    pub skipped: Option<String>,
    pub single_sends: usize,
    /// Time from one send to its last recipient, ms (median and worst of the single sends).
    pub single_median_ms: f64,
    pub single_max_ms: f64,
    /// Every single send's time to its last recipient, ms, in order.
    #[serde(default)]
    pub single_ms: Vec<f64>,
    pub burst_msgs: usize,
    pub burst_deliveries: u64,
    pub burst_deliveries_per_s: f64,
    /// Connecting the members: seconds until all had their welcome, then frames of other
    /// kinds (presence events: each member coming online is announced to the online members)
    /// the clients received until the node went quiet, and how long that took.
    #[serde(default)]
    pub connect_s: f64,
    #[serde(default)]
    pub settle_frames: u64,
    #[serde(default)]
    pub settle_s: f64,
    /// The server's CPU time (user + system) per delivery, µs: over the single sends, and over
    /// the burst. Steadier than the rates on a shared machine, where the clients and the
    /// server contend for the same two cores.
    #[serde(default)]
    pub single_cpu_us: f64,
    #[serde(default)]
    pub burst_cpu_us: f64,
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

/// Sums the `stats` answers of all client processes.
struct Merged {
    delivered: u64,
    first_ns: u64,
    last_ns: u64,
    hist: Histogram<u64>,
    holes: u64,
    lost: u64,
    unparsed: u64,
    other: u64,
    group: Vec<(u64, u64, u64, u64, u64)>,
}

fn merge(stats: &[Value]) -> Merged {
    let mut m = Merged { delivered: 0, first_ns: u64::MAX, last_ns: 0, hist: new_hist(), holes: 0, lost: 0, unparsed: 0, other: 0, group: Vec::new() };
    for s in stats {
        m.delivered += s["delivered"].as_u64().unwrap_or(0);
        let f = s["first_ns"].as_u64().unwrap_or(0);
        if f > 0 {
            m.first_ns = m.first_ns.min(f);
        }
        m.last_ns = m.last_ns.max(s["last_ns"].as_u64().unwrap_or(0));
        for pair in s["hist_us"].as_array().into_iter().flatten() {
            let (v, c) = (pair[0].as_u64().unwrap_or(1), pair[1].as_u64().unwrap_or(0));
            m.hist.saturating_record_n(v, c);
        }
        m.holes += s["holes"].as_u64().unwrap_or(0);
        m.lost += s["lost"].as_u64().unwrap_or(0);
        m.unparsed += s["unparsed"].as_u64().unwrap_or(0);
        m.other += s["other"].as_u64().unwrap_or(0);
        for g in s["group"].as_array().into_iter().flatten() {
            let f = |i: usize| g[i].as_u64().unwrap_or(0);
            m.group.push((f(0), f(1), f(2), f(3), f(4)));
        }
    }
    m
}

fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Latency { count: h.len(), p50_ms: ms(0.50), p99_ms: ms(0.99), p999_ms: ms(0.999), max_ms: h.max() as f64 / 1000.0 }
}

/// An empty Redis whose namespaces are declared whole, as the first sidecar on a new Redis
/// does: the peer's namespace has no sidecar, and pushes are refused without the marker.
async fn flush(redis: &Redis) -> anyhow::Result<()> {
    redis.cmd(&["FLUSHALL"]).await?;
    for ns in [NS_CHAT, NS_PEER] {
        redis.cmd(&["SET", &format!("{ns}:dataset"), "g1"]).await?;
    }
    Ok(())
}

/// The Redis namespace each side uses, so both can share one Redis.
fn namespace(kind: Kind) -> &'static str {
    match kind {
        Kind::Chat => NS_CHAT,
        Kind::Peer | Kind::Floor => NS_PEER,
    }
}

/// An empty Redis and one server of `kind` (our node0, or the peer) on it.
async fn fresh_server(env: &Env, redis: &Redis, kind: Kind) -> anyhow::Result<(&'static str, Server)> {
    flush(redis).await?;
    let ns = namespace(kind);
    let server = match kind {
        Kind::Chat => Server::sidecar(env, redis, "node0", ns).await?,
        Kind::Peer => Server::peer(env, redis, ns).await?,
        Kind::Floor => Server::floor(env, redis, ns).await?,
    };
    Ok((ns, server))
}

async fn settle(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

fn load(kind: Kind, prefix: &str, users: usize, plan: &Plan, redis: &Redis) -> Load {
    Load {
        kind,
        prefix: prefix.to_owned(),
        users,
        group: String::new(),
        redis: Some(redis.url()),
        ns: namespace(kind).into(),
        per_worker: plan.per_worker,
    }
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Chat => "chat",
        Kind::Peer => "peer",
        Kind::Floor => "floor",
    }
}

/// RSS once it stopped moving (allocators return memory lazily): waits up to `secs`.
async fn settled_rss(servers: &[&Server], secs: f64) -> u64 {
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        settle(1.0).await;
        let now: u64 = servers.iter().map(|s| s.rss_kib()).sum();
        if (now as i64 - last as i64).unsigned_abs() * 200 < now.max(1) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 1 (and 5 on the same connections): idle connections

pub async fn idle(env: &Env, redis: &Redis, plan: &Plan, kind: Kind, nodes: usize, conns: usize, storm: bool) -> anyhow::Result<(Idle, Option<Storm>)> {
    flush(redis).await?;
    let mut servers = Vec::new();
    for n in 0..nodes {
        servers.push(match kind {
            Kind::Chat => Server::sidecar(env, redis, &format!("node{n}"), NS_CHAT).await?,
            Kind::Peer => Server::peer(env, redis, NS_PEER).await?,
            Kind::Floor => Server::floor(env, redis, NS_PEER).await?,
        });
    }
    let refs: Vec<&Server> = servers.iter().collect();
    let before = settled_rss(&refs, 3.0).await;
    let connected = Workers::connect(env, &refs, &load(kind, "i", conns, plan, redis)).await;
    let (mut workers, connect_s, connect_errors) = match connected {
        Ok(w) => w,
        Err(e) => {
            // Say whether a server died meanwhile (and how), not only what the clients saw.
            let dead: Vec<String> = servers.iter_mut().filter_map(|s| s.check_alive().err()).map(|d| format!("{d:#}")).collect();
            if dead.is_empty() {
                return Err(e);
            }
            return Err(e.context(dead.join("\n")));
        }
    };
    let after = settled_rss(&refs, 10.0).await;
    let cpu = |refs: &[&Server]| refs.iter().filter_map(|s| crate::util::cpu_secs(s.pid())).sum::<f64>();
    let (c0, t0) = (cpu(&refs), Instant::now());
    settle(plan.idle_cpu_s).await;
    let idle_cpu = (cpu(&refs) - c0) / t0.elapsed().as_secs_f64();
    for s in &mut servers {
        s.check_alive()?;
    }
    let idle = Idle {
        target: name(kind).into(),
        nodes,
        conns,
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_conn: (after as f64 - before as f64) / conns as f64,
        connect_s,
        conns_per_s: conns as f64 / connect_s,
        connect_errors,
        idle_cpu,
    };
    let storm = if storm { Some(reconnect_storm(env, redis, plan, &mut workers, conns).await?) } else { None };
    for s in &mut servers {
        s.check_alive()?;
    }
    workers.quit().await;
    Ok((idle, storm))
}

// ---------------------------------------------------------------------------------------------
// Scenario 5: reconnect storm

async fn reconnect_storm(env: &Env, redis: &Redis, plan: &Plan, workers: &mut Workers, users: usize) -> anyhow::Result<Storm> {
    let php = Php::new(env, redis, NS_CHAT);
    let args: Vec<String> = ["i".to_owned(), users.to_string(), "0".into(), "1".into(), "600".into(), plan.storm_rate.to_string()].into();
    let mut producer = php.command("producer.php", &args).spawn().context("php not found")?;
    settle(1.0).await;
    let long = Duration::from_secs(330);
    let answers = workers.ask("drop", long).await?;
    let storm_ms = answers.iter().filter_map(|a| a["storm_ms"].as_f64()).fold(0.0, f64::max);
    let all_back = answers.iter().all(|a| a["all_back"].as_bool() == Some(true));
    workers.ask("mark", long).await?;
    settle(plan.storm_after_s).await;
    if let Ok(Some(status)) = producer.try_wait() {
        let out = producer.wait_with_output().await?;
        bail!("the storm's php producer exited early ({status}): {}", String::from_utf8_lossy(&out.stderr));
    }
    producer.kill().await?;
    // Let the last messages arrive: until an interval delivers nothing.
    for _ in 0..50 {
        settle(0.2).await;
        let s = workers.ask("stats", long).await?;
        if merge(&s).delivered == 0 {
            break;
        }
    }
    let checks = workers.ask("check", long).await?;
    let sum = |k: &str| checks.iter().filter_map(|c| c[k].as_u64()).sum::<u64>();
    Ok(Storm {
        clients: users,
        all_back,
        storm_ms,
        pushed_after: sum("pushed_after_mark"),
        lost_after: sum("lost_after_mark"),
        skipped_by_reconnect: sum("skipped_by_reconnect"),
        holes: sum("holes"),
        dups: sum("dups"),
        resume: true,
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios 3 and 6: one-to-one from PHP producers

pub async fn one_to_one(env: &Env, redis: &Redis, plan: &Plan, kind: Kind, memory_s: Option<f64>) -> anyhow::Result<(OneToOne, Option<Memory>)> {
    let (ns, mut server) = fresh_server(env, redis, kind).await?;
    let users = plan.o2o_users;
    let (mut workers, _, _) = Workers::connect(env, &[&server], &load(kind, "o", users, plan, redis)).await?;
    let rss_before = server.rss_kib();
    let total = memory_s.unwrap_or(0.0).max(plan.o2o_warmup_s + plan.o2o_window_s + 0.5);
    let php = Php::new(env, redis, ns);
    let p = plan.o2o_producers;
    let mut producers = Vec::new();
    for i in 0..p {
        let args = vec!["o".to_owned(), users.to_string(), i.to_string(), p.to_string(), total.to_string(), "0".into()];
        producers.push(php.command("producer.php", &args).spawn().context("php not found")?);
    }
    let started = Instant::now();
    let long = Duration::from_secs(60);
    let mut samples = vec![(0.0, server.rss_kib())];
    let mut peak = rss_before;
    let sample = |server: &Server, samples: &mut Vec<(f64, u64)>, peak: &mut u64| {
        let r = server.rss_kib();
        *peak = (*peak).max(r);
        samples.push((started.elapsed().as_secs_f64(), r));
    };
    // Warm-up, then the measured window.
    settle(plan.o2o_warmup_s).await;
    workers.ask("stats", long).await?;
    let w0 = Instant::now();
    let cpu0 = crate::util::cpu_secs(server.pid()).unwrap_or(0.0);
    let rcpu0 = crate::util::cpu_secs(redis.pid()).unwrap_or(0.0);
    let step = plan.memory_sample_s.min(plan.o2o_window_s);
    while w0.elapsed().as_secs_f64() < plan.o2o_window_s {
        settle(step.min(plan.o2o_window_s - w0.elapsed().as_secs_f64()).max(0.01)).await;
        sample(&server, &mut samples, &mut peak);
    }
    let window = merge(&workers.ask("stats", long).await?);
    let window_s = w0.elapsed().as_secs_f64();
    let cpu = (crate::util::cpu_secs(server.pid()).unwrap_or(0.0) - cpu0) / window_s;
    let redis_cpu = (crate::util::cpu_secs(redis.pid()).unwrap_or(0.0) - rcpu0) / window_s;
    server.check_alive()?;
    // Scenario 6: keep going, sampling RSS, until the producers' time is up.
    let mut rest = None;
    if let Some(m) = memory_s {
        let mut next = started.elapsed().as_secs_f64();
        while started.elapsed().as_secs_f64() < m {
            next += plan.memory_sample_s;
            settle((next - started.elapsed().as_secs_f64()).max(0.0)).await;
            sample(&server, &mut samples, &mut peak);
            server.check_alive()?;
        }
        rest = Some(merge(&workers.ask("stats", long).await?));
    }
    let (pushed, push_ns) = finish_producers(producers).await?;
    // Remaining deliveries, then the final sequence-hole count.
    settle(1.0).await;
    let tail = merge(&workers.ask("stats", long).await?);
    server.check_alive()?;
    // Second phase: paced producers, latency below saturation.
    let rate = plan.o2o_paced_rate as f64 / p as f64;
    let warm = 1.0;
    let mut producers = Vec::new();
    for i in 0..p {
        let args = vec!["o".to_owned(), users.to_string(), i.to_string(), p.to_string(), (warm + plan.o2o_paced_s + 0.3).to_string(), rate.to_string()];
        producers.push(php.command("producer.php", &args).spawn().context("php not found")?);
    }
    settle(warm).await;
    workers.ask("stats", long).await?;
    let t = Instant::now();
    settle(plan.o2o_paced_s).await;
    let paced = merge(&workers.ask("stats", long).await?);
    let paced_s = t.elapsed().as_secs_f64();
    finish_producers(producers).await?;
    server.check_alive()?;
    if window.delivered == 0 {
        bail!("no message reached a client during the measured window");
    }
    if window.unparsed > 0 {
        bail!("clients received {} frames they could not parse", window.unparsed);
    }
    let o2o = OneToOne {
        target: name(kind).into(),
        users,
        producers: p,
        window_s,
        delivered: window.delivered,
        msg_per_s: window.delivered as f64 / window_s,
        latency: latency(&window.hist),
        pushed_per_s: pushed as f64 / (push_ns as f64 / 1e9),
        rss_before_kib: rss_before,
        rss_peak_kib: peak,
        server_cpu: cpu,
        redis_cpu,
        holes: tail.holes,
        lost_conns: tail.lost,
        paced_rate: plan.o2o_paced_rate,
        paced_msg_per_s: paced.delivered as f64 / paced_s,
        paced_latency: latency(&paced.hist),
    };
    let memory = rest.map(|r| {
        let mut hist = window.hist.clone();
        hist.add(&r.hist).ok();
        let skip = samples.len() / 10;
        let mut steady: Vec<u64> = samples[skip..].iter().map(|s| s.1).collect();
        steady.sort_unstable();
        let baseline = steady[steady.len() / 2];
        let (min, max) = (*steady.first().unwrap(), *steady.last().unwrap());
        let dev = |v: u64| (v as f64 - baseline as f64).abs() * 100.0 / baseline as f64;
        let duration = started.elapsed().as_secs_f64();
        Memory {
            target: name(kind).into(),
            duration_s: duration,
            baseline_kib: baseline,
            min_kib: min,
            max_kib: max,
            max_dev_pct: dev(min).max(dev(max)),
            delivered: window.delivered + r.delivered,
            msg_per_s: (window.delivered + r.delivered) as f64 / (duration - plan.o2o_warmup_s),
            latency: latency(&hist),
            holes: tail.holes,
            lost_conns: tail.lost,
            samples,
        }
    });
    workers.quit().await;
    Ok((o2o, memory))
}

/// Waits for producer processes; returns (calls, longest run in ns).
async fn finish_producers(producers: Vec<tokio::process::Child>) -> anyhow::Result<(u64, u64)> {
    let (mut pushed, mut push_ns) = (0u64, 1u64);
    for pr in producers {
        let out = tokio::time::timeout(Duration::from_secs(60), pr.wait_with_output()).await.context("php producer did not finish")??;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("php producer failed ({}): {text}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        let v: Value = serde_json::from_str(text.lines().last().unwrap_or("")).with_context(|| format!("producer printed {text:?}"))?;
        pushed += v["calls"].as_u64().unwrap_or(0);
        push_ns = push_ns.max(v["ns"].as_u64().unwrap_or(1));
    }
    Ok((pushed, push_ns))
}

// ---------------------------------------------------------------------------------------------
// Scenario 4: chat_push() from one PHP process vs redis-benchmark of the same EVALSHA

/// Unquotes one MONITOR argument (Redis writes them with sdscatrepr).
fn unrepr(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'x' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The arguments of a MONITOR line: `123.456 [0 127.0.0.1:5555] "EVALSHA" "..." ...`.
fn monitor_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let Some(start) = line.find("] ") else { return args };
    let b = &line.as_bytes()[start + 2..];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            args.push(unrepr(&line[start + 2 + i + 1..start + 2 + j.min(b.len())]));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    args
}

/// Records the EVALSHA that one chat_push() sends, with MONITOR.
async fn capture_push(env: &Env, redis: &Redis, php: &Php, uid: &str) -> anyhow::Result<Vec<String>> {
    use tokio::io::AsyncBufReadExt;
    let mut mon = crate::procs::command("redis-cli")
        .args(["-p", &redis.port.to_string(), "MONITOR"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(mon.stdout.take().expect("piped")).lines();
    // MONITOR answers OK once it is on.
    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.context("MONITOR did not start")??;
    php.run_json("push_rate.php", &[uid.to_owned(), "1".into()]).await?;
    let _ = env;
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        let mut last = None;
        while let Some(l) = lines.next_line().await? {
            let args = monitor_args(&l);
            if args.first().is_some_and(|c| c.eq_ignore_ascii_case("EVALSHA")) && args.iter().any(|a| a.contains(&format!("u:{uid}"))) {
                if last.is_some() {
                    return Ok::<_, anyhow::Error>(args);
                }
                last = Some(args);
            }
        }
        last.context("MONITOR ended")
    })
    .await;
    let _ = mon.kill().await;
    match found {
        Ok(r) => r,
        Err(_) => bail!("did not see chat_push's EVALSHA in MONITOR"),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

/// Calls/s of `command` from `clients` redis-benchmark clients without pipelining.
async fn redis_benchmark(redis: &Redis, clients: usize, calls: usize, command: &[String]) -> anyhow::Result<f64> {
    let out = crate::procs::command("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &redis.port.to_string(), "-c", &clients.to_string(), "-P", "1", "-n", &calls.to_string(), "-q"])
        .args(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .context("redis-benchmark not found: run `make deps` (package redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .rsplit(['\r', '\n'])
        .find_map(|l| l.find(" requests per second").map(|i| l[..i].rsplit(' ').next().unwrap_or("").to_owned()))
        .and_then(|n| n.parse::<f64>().ok());
    match rate {
        Some(r) if out.status.success() => Ok(r),
        _ => bail!("redis-benchmark printed no rate ({}): {text} {}", out.status, String::from_utf8_lossy(&out.stderr)),
    }
}

pub async fn push_rate(env: &Env, redis: &Redis, plan: &Plan) -> anyhow::Result<PushRate> {
    flush(redis).await?;
    let php = Php::new(env, redis, NS_CHAT);
    let command = capture_push(env, redis, &php, "rb").await?;
    let script = std::fs::read_to_string(env.repo.join("protocol/lua/push.lua"))?;
    let sha = redis.cmd(&["SCRIPT", "LOAD", &script]).await?;
    let same_script = command.get(1).is_some_and(|s| s.eq_ignore_ascii_case(&sha));
    let (mut php_rates, mut floor_rates) = (Vec::new(), Vec::new());
    for _ in 0..plan.push_rounds {
        let v = php.run_json("push_rate.php", &["rb".into(), plan.push_calls.to_string()]).await?;
        php_rates.push(v["calls"].as_f64().unwrap_or(0.0) / (v["ns"].as_f64().unwrap_or(1.0) / 1e9));
        floor_rates.push(redis_benchmark(redis, 1, plan.push_calls, &command).await?);
    }
    let ceiling_4_clients = redis_benchmark(redis, 4, plan.push_calls * 4, &command).await?;
    let (with_replica_per_s, replica_ack_per_s) = replica_ack(env, redis, plan).await?;
    let (pm, fm) = (median(&php_rates), median(&floor_rates));
    Ok(PushRate {
        calls: plan.push_calls,
        rounds: plan.push_rounds,
        php_per_s: php_rates,
        floor_per_s: floor_rates,
        php_median: pm,
        floor_median: fm,
        ratio: pm / fm,
        command,
        ceiling_4_clients,
        same_script,
        with_replica_per_s,
        replica_ack_per_s,
    })
}

/// What asking a replica to confirm each push costs: a replica of the run's Redis is started,
/// then the same pushes run with `replicas=0` and with `?replicas=1` (push and WAIT in one round
/// trip), alternating rounds. Returns both medians, calls/s.
async fn replica_ack(env: &Env, redis: &Redis, plan: &Plan) -> anyhow::Result<(f64, f64)> {
    let replica = Redis::start_replica(env, redis).await?;
    let mut php = Php::new(env, redis, NS_CHAT);
    let base = redis.url();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..plan.push_rounds {
        for (url, rates) in [(format!("{base}?replicas=0"), &mut without), (format!("{base}?replicas=1"), &mut with)] {
            php.redis_url = url;
            let v = php.run_json("push_rate.php", &["ra".into(), plan.push_calls.to_string()]).await?;
            rates.push(v["calls"].as_f64().unwrap_or(0.0) / (v["ns"].as_f64().unwrap_or(1.0) / 1e9));
        }
    }
    drop(replica);
    Ok((median(&without), median(&with)))
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: group fan-out

/// Both sides get their group messages the same way: PHP's `chat_send_to_group()` runs
/// push.lua, which publishes `m<seq> <envelope>` on `<ns>:{g:<gid>}:live`. Our members join
/// with `chat_join_group()` before connecting; the peer's clients name the group in the URL.
pub async fn group(env: &Env, redis: &Redis, plan: &Plan, kind: Kind) -> anyhow::Result<Group> {
    let (ns, mut server) = fresh_server(env, redis, kind).await?;
    let php = Php::new(env, redis, ns);
    let gid = "g1";
    let members = plan.group_members;
    if kind == Kind::Chat {
        php.run_json("group_join.php", &[gid.into(), "g".into(), members.to_string()]).await?;
    }
    let mut l = load(kind, "g", members, plan, redis);
    l.group = gid.into();
    if plan.group_per_worker > 0 {
        l.per_worker = plan.group_per_worker;
    }
    let (mut workers, connect_s, _) = Workers::connect(env, &[&server], &l).await?;
    let members = members as u64;
    let long = Duration::from_secs(60);
    // Measure sends only once the node is quiet: no frame at all for a second.
    let t = Instant::now();
    let mut settle_frames = 0;
    let mut quiet = 0;
    while quiet < 2 && t.elapsed() < Duration::from_secs(180) {
        settle(0.5).await;
        let m = merge(&workers.ask("stats", long).await?);
        let n = m.other + m.delivered + m.group.iter().map(|g| g.2).sum::<u64>();
        settle_frames += n;
        quiet = if n == 0 { quiet + 1 } else { 0 };
    }
    let settle_s = t.elapsed().as_secs_f64();
    if quiet < 2 {
        bail!("clients still received frames {settle_s:.0} s after connecting ({settle_frames} so far)");
    }

    // Waits until every member got messages first..=last; returns (sent, count, first, last).
    async fn collect(workers: &mut Workers, first: u64, last: u64, members: u64) -> anyhow::Result<Vec<(u64, u64, u64, u64)>> {
        let mut acc: std::collections::HashMap<u64, (u64, u64, u64, u64)> = Default::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = merge(&workers.ask("group", Duration::from_secs(60)).await?);
            for (seq, sent, count, f, l) in m.group {
                let e = acc.entry(seq).or_insert((sent, 0, u64::MAX, 0));
                e.0 = e.0.min(sent);
                e.1 += count;
                e.2 = e.2.min(f);
                e.3 = e.3.max(l);
            }
            let done = (first..=last).all(|s| acc.get(&s).is_some_and(|e| e.1 >= members));
            if done {
                return Ok((first..=last).map(|s| acc[&s]).collect());
            }
            if Instant::now() > deadline {
                let got: u64 = acc.values().map(|e| e.1).sum();
                bail!("group messages {first}..={last}: {got} of {} deliveries arrived", members * (last - first + 1));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let cpu = || crate::util::cpu_secs(server.pid()).unwrap_or(0.0);
    let cpu0 = cpu();
    let mut singles = Vec::new();
    for seq in 1..=plan.group_singles as u64 {
        php.run_json("group_send.php", &[gid.into(), "1".into()]).await?;
        let r = collect(&mut workers, seq, seq, members).await?;
        singles.push((r[0].3.saturating_sub(r[0].0)) as f64 / 1e6);
    }
    let cpu1 = cpu();
    let first = plan.group_singles as u64 + 1;
    let last = first + plan.group_burst as u64 - 1;
    php.run_json("group_send.php", &[gid.into(), plan.group_burst.to_string()]).await?;
    let r = collect(&mut workers, first, last, members).await?;
    let cpu2 = cpu();
    let per_delivery_us = |secs: f64, deliveries: u64| secs * 1e6 / deliveries.max(1) as f64;
    let t0 = r.iter().map(|e| e.0).min().unwrap_or(0);
    let end = r.iter().map(|e| e.3).max().unwrap_or(t0);
    let deliveries: u64 = r.iter().map(|e| e.1).sum();
    server.check_alive()?;
    workers.quit().await;
    Ok(Group {
        target: name(kind).into(),
        members: plan.group_members,
        skipped: None,
        single_sends: singles.len(),
        single_median_ms: median(&singles),
        single_max_ms: singles.iter().cloned().fold(0.0, f64::max),
        single_ms: singles.clone(),
        burst_msgs: plan.group_burst,
        burst_deliveries: deliveries,
        burst_deliveries_per_s: deliveries as f64 / ((end.saturating_sub(t0)).max(1) as f64 / 1e9),
        connect_s,
        settle_frames,
        settle_s,
        single_cpu_us: per_delivery_us(cpu1 - cpu0, members * plan.group_singles as u64),
        burst_cpu_us: per_delivery_us(cpu2 - cpu1, deliveries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_monitor_lines() {
        let l = r#"1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "abc" "2" "chat:{u:rb}:seq" "null" "\"rb\"" "{\"t\":1}" "a\\b""#;
        assert_eq!(monitor_args(l), vec!["EVALSHA", "abc", "2", "chat:{u:rb}:seq", "null", "\"rb\"", "{\"t\":1}", "a\\b"]);
    }
}
