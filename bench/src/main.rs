//! `chat-bench`: measures chat-sidecar and the chat PHP extension against a Node.js `ws` peer,
//! in the same run, on the same Redis and machine (issue 7).
//!
//! `chat-bench run [--smoke]` starts redis-server, sidecar nodes and the peer itself (free
//! ports, a temporary directory, everything stopped on exit or Ctrl-C), runs every scenario,
//! prints a table and writes `<out>/<date>.json` and `<out>/<date>.svg`.
//! `chat-bench clients ...` is one load-generator process; `run` starts several.
//! `chat-bench floor` is the minimal fan-out server scenario 2 measures as the floor.

mod clients;
mod floor;
mod procs;
mod report;
mod scenarios;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::clients::Kind;
use crate::report::{Machine, Results};
use crate::scenarios::Plan;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks chat-sidecar and the chat PHP extension against a Node.js ws peer")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs every scenario and prints the table.
    Run(RunArgs),
    /// One client process holding WebSocket connections (started by `run`).
    Clients(clients::ClientArgs),
    /// Prints the table and rewrites the chart of a recorded run: chart <date>.json
    Chart { json: PathBuf },
    /// The minimal fan-out server of scenario 2's floor (started by `run`).
    Floor,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Short sizes and durations (seconds, for `make test`); the default is the full run.
    #[arg(long)]
    smoke: bool,
    /// Repository root (for bench/php, bench/peer, protocol/lua).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where chat-sidecar and libchat.so are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Directory for <date>.json and <date>.svg; none = do not write.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these scenarios (comma-separated numbers 1-6); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// Override the length of scenario 6, seconds.
    #[arg(long)]
    memory_s: Option<f64>,
    /// Override the connection count of the multi-node idle scenario.
    #[arg(long)]
    multi_conns: Option<usize>,
    /// Keep the temporary directory (server and client logs) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Override the connection count of the one-node idle scenario and the storm.
    #[arg(long)]
    idle_conns: Option<usize>,
    /// Override the messages of scenario 2's burst (longer bursts, for profiling).
    #[arg(long)]
    group_burst: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Clients(args) => {
            // One thread: the client processes share two cores with what they measure.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            match rt.block_on(clients::main(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("chat-bench clients: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Floor => match floor::main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chat-bench floor: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::Chart { json } => match chart(&json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chat-bench chart: {e:#}");
                ExitCode::FAILURE
            }
        },
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(async {
                tokio::select! {
                    code = run(args) => code,
                    _ = interrupted() => {
                        eprintln!("chat-bench: interrupted; stopping every process it started");
                        ExitCode::from(130)
                    }
                }
            })
        }
    }
}

fn chart(json: &std::path::Path) -> anyhow::Result<()> {
    let r: Results = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    print!("{}", report::table(&r));
    let svg = json.with_extension("svg");
    std::fs::write(&svg, report::svg(&r))?;
    std::fs::write(json.with_extension("md"), report::table(&r))?;
    println!("wrote {}", svg.display());
    Ok(())
}

async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

async fn run(args: RunArgs) -> ExitCode {
    match run_all(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chat-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenarios; Ok(false) when any failed (the table shows which).
async fn run_all(args: RunArgs) -> anyhow::Result<bool> {
    let (soft, hard) = util::raise_nofile();
    let mut plan = if args.smoke { Plan::smoke() } else { Plan::full() };
    if let Some(m) = args.memory_s {
        plan.memory_s = m;
    }
    if let Some(c) = args.multi_conns {
        plan.multi_conns = c;
    }
    if let Some(c) = args.idle_conns {
        plan.idle_conns = c;
        plan.storm_clients = c;
    }
    if let Some(b) = args.group_burst {
        plan.group_burst = b;
    }
    let want = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let repo = std::fs::canonicalize(&args.repo)?;
    let bin_dir = std::fs::canonicalize(&args.bin_dir).unwrap_or(args.bin_dir.clone());
    let env = procs::Env::new(repo, bin_dir)?;
    let started = Instant::now();
    let date = date_stamp();
    if args.keep {
        eprintln!("chat-bench: keeping {} (--keep)", env.tmp.path().display());
    }
    eprintln!("chat-bench: {} run, open-file limit {soft} (hard {hard}), temp dir {}", plan.mode, env.tmp.path().display());
    let redis = procs::Redis::start(&env).await?;
    let mut r = Results {
        date: date.clone(),
        mode: plan.mode.clone(),
        machine: machine().await,
        plan: plan.clone(),
        idle: Vec::new(),
        group: Vec::new(),
        one_to_one: Vec::new(),
        push_rate: None,
        storm: None,
        memory: None,
        failures: Vec::new(),
        total_s: 0.0,
    };
    macro_rules! step {
        ($name:expr, $e:expr) => {{
            let t = Instant::now();
            eprintln!("chat-bench: {} ...", $name);
            match $e.await {
                Ok(v) => {
                    eprintln!("chat-bench: {} done in {:.1} s", $name, t.elapsed().as_secs_f64());
                    Some(v)
                }
                Err(e) => {
                    eprintln!("chat-bench: {} FAILED: {e:#}", $name);
                    r.failures.push(($name.to_string(), format!("{e:#}")));
                    None
                }
            }
        }};
    }

    if want(4) {
        r.push_rate = step!("4 chat_push rate", scenarios::push_rate(&env, &redis, &plan));
    }
    if want(1) || want(5) {
        let n = if want(1) { plan.idle_conns } else { plan.storm_clients };
        if let Some((idle, storm)) = step!(format!("1 idle ours, {n} conns, then 5 reconnect storm"), scenarios::idle(&env, &redis, &plan, Kind::Chat, 1, n, want(5))) {
            if want(1) {
                r.idle.push(idle);
            }
            r.storm = storm;
        }
    }
    if want(1) {
        if let Some((idle, _)) = step!(format!("1 idle peer, {} conns", plan.idle_conns), scenarios::idle(&env, &redis, &plan, Kind::Peer, 1, plan.idle_conns, false)) {
            r.idle.push(idle);
        }
        let (nodes, conns) = (plan.multi_nodes, plan.multi_conns);
        if let Some((idle, _)) = step!(format!("1 idle ours, {conns} conns on {nodes} nodes"), scenarios::idle(&env, &redis, &plan, Kind::Chat, nodes, conns, false)) {
            r.idle.push(idle);
        }
    }
    if want(3) {
        if let Some((o, _)) = step!("3 one-to-one peer", scenarios::one_to_one(&env, &redis, &plan, Kind::Peer, None)) {
            r.one_to_one.push(o);
        }
    }
    if want(3) || want(6) {
        let memory = want(6).then_some(plan.memory_s);
        if let Some((o, m)) = step!("3 one-to-one ours (and 6 memory under load)", scenarios::one_to_one(&env, &redis, &plan, Kind::Chat, memory)) {
            r.one_to_one.insert(0, o);
            r.memory = m;
        }
    }
    if want(2) {
        if let Some(g) = step!("2 group fan-out ours", scenarios::group(&env, &redis, &plan, Kind::Chat)) {
            r.group.push(g);
        }
        if let Some(g) = step!("2 group fan-out peer", scenarios::group(&env, &redis, &plan, Kind::Peer)) {
            r.group.push(g);
        }
        if let Some(g) = step!("2 group fan-out floor", scenarios::group(&env, &redis, &plan, Kind::Floor)) {
            r.group.push(g);
        }
    }
    r.total_s = started.elapsed().as_secs_f64();

    let table = report::table(&r);
    println!("\nchat-bench {} run, {date}, {:.0} s\n", plan.mode, r.total_s);
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let json = out.join(format!("{date}.json"));
        let svg = out.join(format!("{date}.svg"));
        std::fs::write(&json, serde_json::to_string_pretty(&r)?)?;
        std::fs::write(&svg, report::svg(&r))?;
        std::fs::write(out.join(format!("{date}.md")), &table)?;
        println!("wrote {} and {}", json.display(), svg.display());
    }
    if args.keep {
        let _ = env.tmp.keep();
    }
    if !r.failures.is_empty() {
        eprintln!("chat-bench: {} scenario(s) FAILED:", r.failures.len());
        for (s, e) in &r.failures {
            eprintln!("  {s}: {e}");
        }
    }
    Ok(r.failures.is_empty())
}

fn date_stamp() -> String {
    // UTC, from the epoch: no date crate needed.
    let secs = util::unix_now() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

async fn version(cmd: &str, args: &[&str]) -> String {
    match tokio::process::Command::new(cmd).args(args).output().await {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or("").trim().to_owned()
        }
        Err(_) => "not found".into(),
    }
}

async fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let ws = std::fs::read_to_string("bench/peer/node_modules/ws/package.json")
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let mut versions = Vec::new();
    for (name, cmd, args) in [
        ("redis-server", "redis-server", &["--version"][..]),
        ("php", "php", &["-v"][..]),
        ("node", "node", &["--version"][..]),
        ("rustc", "rustc", &["--version"][..]),
    ] {
        versions.push((name.to_owned(), version(cmd, args).await));
    }
    versions.push(("ws (npm)".into(), ws));
    let git = version("git", &["describe", "--always", "--dirty"]).await;
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        mem_total_gib: mem_kib / 1024.0 / 1024.0,
        kernel: version("uname", &["-r"]).await,
        versions,
        git,
    }
}
