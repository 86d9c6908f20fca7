//! The table printed at the end of a run, the JSON record and the SVG chart.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scenarios::{Group, Idle, Memory, OneToOne, Plan, PushRate, Storm};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_gib: f64,
    pub kernel: String,
    pub versions: Vec<(String, String)>,
    pub git: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub date: String,
    pub mode: String,
    pub machine: Machine,
    pub plan: Plan,
    pub idle: Vec<Idle>,
    pub group: Vec<Group>,
    pub one_to_one: Vec<OneToOne>,
    pub push_rate: Option<PushRate>,
    pub storm: Option<Storm>,
    pub memory: Option<Memory>,
    /// Scenarios that failed, with the error.
    pub failures: Vec<(String, String)>,
    pub total_s: f64,
}

struct Row {
    scenario: String,
    metric: String,
    ours: String,
    peer: String,
    ratio: String,
    target: String,
    met: String,
}

fn row(scenario: impl Into<String>, metric: &str, ours: String, peer: String, ratio: String, target: &str, met: &str) -> Row {
    Row {
        scenario: scenario.into(),
        metric: metric.into(),
        ours,
        peer,
        ratio,
        target: target.into(),
        met: met.into(),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn f(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn k(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn ratio(ours: f64, peer: f64) -> String {
    if peer > 0.0 { format!("{:.2}x", ours / peer) } else { "-".into() }
}

fn rows(r: &Results) -> Vec<Row> {
    let mut out = Vec::new();
    let dash = || "-".to_owned();
    // 1. idle
    let peer_idle = r.idle.iter().find(|i| i.target == "peer");
    for i in r.idle.iter().filter(|i| i.target == "chat") {
        let scen = format!("1 idle, {} node{}, {} conns", i.nodes, if i.nodes > 1 { "s" } else { "" }, i.conns);
        let (peer, rat, met) = match peer_idle.filter(|_| i.nodes == 1) {
            Some(p) => (f(p.kib_per_conn, 2), ratio(i.kib_per_conn, p.kib_per_conn), yes(i.kib_per_conn <= 5.0 && i.kib_per_conn < p.kib_per_conn)),
            None => (dash(), dash(), yes(i.kib_per_conn <= 5.0)),
        };
        out.push(row(scen.clone(), "KiB/conn", f(i.kib_per_conn, 2), peer, rat, "<=5, < peer", met));
        let target = if i.nodes == 1 { "19k on 1 node" } else { "100k on 6 nodes" };
        let want = if i.nodes == 1 { 19_000 } else { 100_000 };
        out.push(row(scen.clone(), "conns held (connect/s)", format!("{} ({})", i.conns, k(i.conns_per_s)),
            peer_idle.filter(|_| i.nodes == 1).map(|p| format!("{} ({})", p.conns, k(p.conns_per_s))).unwrap_or_else(dash),
            dash(), target, if i.conns >= want { "yes" } else { "-" }));
        out.push(row(scen, "server CPU while idle (cores)", f(i.idle_cpu, 3),
            peer_idle.filter(|_| i.nodes == 1).map(|p| f(p.idle_cpu, 3)).unwrap_or_else(dash), dash(), "-", "-"));
    }
    if let Some(p) = peer_idle.filter(|_| !r.idle.iter().any(|i| i.target == "chat")) {
        out.push(row(format!("1 idle, 1 node, {} conns", p.conns), "KiB/conn", dash(), f(p.kib_per_conn, 2), dash(), "<=5, < peer", "-"));
    }
    // 2. group fan-out
    let ours = r.group.iter().find(|g| g.target == "chat");
    let peer = r.group.iter().find(|g| g.target == "peer");
    if ours.is_some() || peer.is_some() {
        let members = ours.or(peer).map(|g| g.members).unwrap_or(0);
        let scen = format!("2 group fan-out, {members} members");
        let show = |g: Option<&Group>, v: &dyn Fn(&Group) -> String| match g {
            Some(g) if g.skipped.is_none() => v(g),
            Some(g) => g.skipped.clone().unwrap_or_default(),
            None => dash(),
        };
        let o = ours.filter(|g| g.skipped.is_none());
        let p = peer.filter(|g| g.skipped.is_none());
        let met_d = match (o, p) {
            (Some(o), Some(p)) => yes(o.burst_deliveries_per_s >= 2e6 && o.burst_deliveries_per_s >= 10.0 * p.burst_deliveries_per_s).to_owned(),
            _ => "pending".into(),
        };
        out.push(row(scen.clone(), "deliveries/s (burst)", show(ours, &|g| k(g.burst_deliveries_per_s)), show(peer, &|g| k(g.burst_deliveries_per_s)),
            match (o, p) { (Some(o), Some(p)) => ratio(o.burst_deliveries_per_s, p.burst_deliveries_per_s), _ => dash() },
            ">=2M/s, >=10x peer", &met_d));
        let met_s = match (o, p) {
            (Some(o), Some(p)) => yes(o.single_median_ms <= p.single_median_ms / 2.0).to_owned(),
            _ => "pending".into(),
        };
        out.push(row(scen.clone(), "one send -> last recipient ms", show(ours, &|g| f(g.single_median_ms, 2)), show(peer, &|g| f(g.single_median_ms, 2)),
            match (o, p) { (Some(o), Some(p)) => ratio(o.single_median_ms, p.single_median_ms), _ => dash() },
            "<= peer/2", &met_s));
        let cpu_row = |what: &str, v: fn(&Group) -> f64| {
            row(scen.clone(), what, show(ours, &|g| f(v(g), 3)), show(peer, &|g| f(v(g), 3)),
                match (o, p) { (Some(o), Some(p)) => ratio(v(o), v(p)), _ => dash() }, "-", "-")
        };
        out.push(cpu_row("server CPU us per delivery, burst", |g| g.burst_cpu_us));
        out.push(cpu_row("server CPU us per delivery, one send", |g| g.single_cpu_us));
        // The floor (floor.rs): what one write per recipient costs here, whoever makes it.
        if let (Some(o), Some(fl)) = (o, r.group.iter().find(|g| g.target == "floor" && g.skipped.is_none())) {
            let floor_row = |what: &str, v: fn(&Group) -> f64, show: &dyn Fn(f64) -> String| {
                row(scen.clone(), what, show(v(o)), format!("floor {}", show(v(fl))), ratio(v(o), v(fl)), "-", "-")
            };
            out.push(floor_row("burst vs the floor server (minimal Rust)", |g| g.burst_deliveries_per_s, &k));
            out.push(floor_row("one send vs the floor server, ms", |g| g.single_median_ms, &|x| f(x, 2)));
            out.push(floor_row("CPU us per delivery vs the floor, burst", |g| g.burst_cpu_us, &|x| f(x, 3)));
            out.push(floor_row("CPU us per delivery vs the floor, one send", |g| g.single_cpu_us, &|x| f(x, 3)));
            if let Some(p) = p {
                out.push(row(scen.clone(), "one send: floor / peer", "-".into(), "-".into(), ratio(fl.single_median_ms, p.single_median_ms), "-", "-"));
            }
        }
        out.push(row(scen, "connect: other frames until quiet (s)",
            show(ours, &|g| format!("{} ({:.1})", k(g.settle_frames as f64), g.settle_s)),
            show(peer, &|g| format!("{} ({:.1})", k(g.settle_frames as f64), g.settle_s)), dash(), "-", "-"));
    }
    // 3. one-to-one
    let ours = r.one_to_one.iter().find(|o| o.target == "chat");
    let peer = r.one_to_one.iter().find(|o| o.target == "peer");
    if let Some(any) = ours.or(peer) {
        let scen = format!("3 one-to-one, {} users, {} php", any.users, any.producers);
        let v = |o: Option<&OneToOne>, g: &dyn Fn(&OneToOne) -> String| o.map(g).unwrap_or_else(dash);
        let rat = |g: &dyn Fn(&OneToOne) -> f64| match (ours, peer) { (Some(o), Some(p)) => ratio(g(o), g(p)), _ => dash() };
        out.push(row(scen.clone(), "max rate: delivered msg/s", v(ours, &|o| k(o.msg_per_s)), v(peer, &|o| k(o.msg_per_s)), rat(&|o| o.msg_per_s), ">=50k", ours.map(|o| yes(o.msg_per_s >= 50_000.0)).unwrap_or("-")));
        out.push(row(scen.clone(), "max rate: latency p50 ms", v(ours, &|o| f(o.latency.p50_ms, 3)), v(peer, &|o| f(o.latency.p50_ms, 3)), rat(&|o| o.latency.p50_ms), "<=0.5", ours.map(|o| yes(o.latency.p50_ms <= 0.5)).unwrap_or("-")));
        out.push(row(scen.clone(), "max rate: latency p99 ms", v(ours, &|o| f(o.latency.p99_ms, 3)), v(peer, &|o| f(o.latency.p99_ms, 3)), rat(&|o| o.latency.p99_ms), "<=5", ours.map(|o| yes(o.latency.p99_ms <= 5.0)).unwrap_or("-")));
        out.push(row(scen.clone(), "max rate: latency p999 ms", v(ours, &|o| f(o.latency.p999_ms, 3)), v(peer, &|o| f(o.latency.p999_ms, 3)), rat(&|o| o.latency.p999_ms), "-", "-"));
        out.push(row(scen.clone(), "chat_push calls/s (all php)", v(ours, &|o| k(o.pushed_per_s)), v(peer, &|o| k(o.pushed_per_s)), rat(&|o| o.pushed_per_s), "-", "-"));
        out.push(row(scen.clone(), "server CPU (cores)", v(ours, &|o| f(o.server_cpu, 2)), v(peer, &|o| f(o.server_cpu, 2)), rat(&|o| o.server_cpu), "-", "-"));
        out.push(row(scen.clone(), "redis-server CPU (cores)", v(ours, &|o| f(o.redis_cpu, 2)), v(peer, &|o| f(o.redis_cpu, 2)), rat(&|o| o.redis_cpu), "-", "-"));
        let paced = format!("paced {} msg/s: delivered msg/s", any.paced_rate);
        out.push(row(scen.clone(), &paced, v(ours, &|o| k(o.paced_msg_per_s)), v(peer, &|o| k(o.paced_msg_per_s)), rat(&|o| o.paced_msg_per_s), "-", "-"));
        out.push(row(scen.clone(), "paced: latency p50 ms", v(ours, &|o| f(o.paced_latency.p50_ms, 3)), v(peer, &|o| f(o.paced_latency.p50_ms, 3)), rat(&|o| o.paced_latency.p50_ms), "<=0.5", ours.map(|o| yes(o.paced_latency.p50_ms <= 0.5)).unwrap_or("-")));
        out.push(row(scen.clone(), "paced: latency p99 ms", v(ours, &|o| f(o.paced_latency.p99_ms, 3)), v(peer, &|o| f(o.paced_latency.p99_ms, 3)), rat(&|o| o.paced_latency.p99_ms), "<=5", ours.map(|o| yes(o.paced_latency.p99_ms <= 5.0)).unwrap_or("-")));
        out.push(row(scen.clone(), "paced: latency p999 ms", v(ours, &|o| f(o.paced_latency.p999_ms, 3)), v(peer, &|o| f(o.paced_latency.p999_ms, 3)), rat(&|o| o.paced_latency.p999_ms), "-", "-"));
        out.push(row(scen, "server peak RSS MiB", v(ours, &|o| f(o.rss_peak_kib as f64 / 1024.0, 1)), v(peer, &|o| f(o.rss_peak_kib as f64 / 1024.0, 1)), rat(&|o| o.rss_peak_kib as f64), "-", "-"));
    }
    // 4. chat_push rate
    if let Some(p) = &r.push_rate {
        let scen = "4 chat_push, 1 php process".to_owned();
        out.push(row(scen.clone(), "calls/s, median of rounds", k(p.php_median), format!("floor {}", k(p.floor_median)), format!("{:.0}%", p.ratio * 100.0), ">=80% of floor", yes(p.ratio >= 0.8)));
        let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        let (pb, fb) = (best(&p.php_per_s), best(&p.floor_per_s));
        out.push(row(scen.clone(), "calls/s, best round", k(pb), format!("floor {}", k(fb)), format!("{:.0}%", pb / fb.max(1e-9) * 100.0), ">=80% of floor", yes(pb >= 0.8 * fb)));
        if p.ceiling_4_clients > 0.0 {
            out.push(row(scen.clone(), "same script, 4 redis-benchmark clients (ceiling of 3)", format!("{}/s", k(p.ceiling_4_clients)), dash(), dash(), "-", "-"));
        }
        if p.replica_ack_per_s > 0.0 {
            let us = |rate: f64| 1e6 / rate.max(1e-9);
            let cost = format!("+{:.1} µs/push", us(p.replica_ack_per_s) - us(p.with_replica_per_s));
            out.push(row(scen.clone(), "calls/s with a replica confirming each (?replicas=1)", k(p.replica_ack_per_s), format!("without {}", k(p.with_replica_per_s)), format!("{:.2}x, {cost}", p.replica_ack_per_s / p.with_replica_per_s.max(1e-9)), "(measure)", "-"));
        }
        if !p.same_script {
            out.push(row(scen, "same script as push.lua", "NO: rebuild the extension".into(), dash(), dash(), "-", "-"));
        }
    }
    // 5. reconnect storm
    if let Some(s) = &r.storm {
        let scen = format!("5 reconnect storm, {} clients", s.clients);
        out.push(row(scen.clone(), "all live again after s", if s.all_back { f(s.storm_ms / 1000.0, 2) } else { format!("not all back after {:.0}", s.storm_ms / 1000.0) }, dash(), dash(), "(measure)", yes(s.all_back)));
        out.push(row(scen.clone(), "lost, pushed after all were back", format!("{} of {}", s.lost_after, s.pushed_after), dash(), dash(), "0", yes(s.lost_after == 0)));
        let during = s.skipped_by_reconnect + s.holes;
        out.push(row(scen, "lost during the storm (resume with cursors)", format!("{during} ({} dups)", s.dups), dash(), dash(), "0", yes(during == 0)));
    }
    // 6. memory under load
    if let Some(m) = &r.memory {
        let scen = format!("6 memory under load, {:.0} s", m.duration_s);
        out.push(row(scen.clone(), "RSS MiB min/base/max", format!("{:.1}/{:.1}/{:.1}", m.min_kib as f64 / 1024.0, m.baseline_kib as f64 / 1024.0, m.max_kib as f64 / 1024.0), dash(), dash(), "flat +-10%", yes(m.max_dev_pct <= 10.0)));
        out.push(row(scen, "max deviation %, msg/s", format!("{:.1}%, {}", m.max_dev_pct, k(m.msg_per_s)), dash(), dash(), "-", "-"));
    }
    for (s, e) in &r.failures {
        let short: String = e.lines().next().unwrap_or("").chars().take(90).collect();
        out.push(row(s.clone(), "FAILED", short, dash(), dash(), "-", "NO"));
    }
    out
}

/// The table as plain text (also valid Markdown).
pub fn table(r: &Results) -> String {
    let rows = rows(r);
    let head = ["scenario", "metric", "ours (chat-sidecar)", "peer (node ws)", "ours/peer", "target", "met"];
    let cells: Vec<[String; 7]> = rows
        .into_iter()
        .map(|r| [r.scenario, r.metric, r.ours, r.peer, r.ratio, r.target, r.met])
        .collect();
    let mut w = head.map(|h| h.len());
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: &[String]| {
        out.push('|');
        for (i, s) in c.iter().enumerate() {
            let _ = write!(out, " {s:<width$} |", width = w[i]);
        }
        out.push('\n');
    };
    line(&mut out, &head.map(String::from));
    line(&mut out, &w.map(|n| "-".repeat(n)));
    for c in &cells {
        line(&mut out, c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SVG chart: one panel per comparison, ours vs the peer, plus RSS over time.

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

struct Bars<'a> {
    title: String,
    unit: &'a str,
    /// (label, value, colour); None = not measured, with the reason.
    bars: Vec<(String, Result<f64, String>, &'a str)>,
}

const OURS: &str = "#2f6fb0";
const PEER: &str = "#d9822b";
const FLOOR: &str = "#7a7a7a";

fn panel(svg: &mut String, x: f64, y: f64, w: f64, p: &Bars<'_>) -> f64 {
    let h_bar = 22.0;
    let _ = writeln!(svg, r#"<text x="{x}" y="{}" font-size="14" font-weight="bold">{}</text>"#, y + 14.0, esc(&p.title));
    let max = p.bars.iter().filter_map(|b| b.1.as_ref().ok()).cloned().fold(0.0, f64::max).max(1e-9);
    let label_w = 120.0;
    let avail = w - label_w - 110.0;
    let mut yy = y + 26.0;
    for (label, v, colour) in &p.bars {
        let _ = writeln!(svg, r#"<text x="{x}" y="{}" font-size="12">{}</text>"#, yy + 15.0, esc(label));
        match v {
            Ok(v) => {
                let bw = (v / max * avail).max(1.0);
                let _ = writeln!(svg, r#"<rect x="{}" y="{yy}" width="{bw:.1}" height="{}" fill="{colour}"/>"#, x + label_w, h_bar - 4.0);
                let shown = if *v >= 1e4 { k(*v) } else if *v >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") };
                let _ = writeln!(svg, r#"<text x="{:.1}" y="{}" font-size="12">{} {}</text>"#, x + label_w + bw + 6.0, yy + 15.0, shown, esc(p.unit));
            }
            Err(why) => {
                let _ = writeln!(svg, r##"<text x="{}" y="{}" font-size="12" fill="#a00">{}</text>"##, x + label_w, yy + 15.0, esc(why));
            }
        }
        yy += h_bar;
    }
    yy - y + 14.0
}

/// One scenario-2 bar per server (ours, the peer, the floor), of the figure `value` picks.
fn group_bars(r: &Results, value: fn(&Group) -> f64) -> Vec<(String, Result<f64, String>, &'static str)> {
    r.group
        .iter()
        .map(|g| {
            let (who, colour) = match g.target.as_str() {
                "chat" => ("ours", OURS),
                "floor" => ("floor (minimal Rust)", FLOOR),
                _ => ("peer", PEER),
            };
            let v = match &g.skipped {
                Some(s) => Err(s.clone()),
                None => Ok(value(g)),
            };
            (who.to_owned(), v, colour)
        })
        .collect()
}

pub fn svg(r: &Results) -> String {
    let mut panels: Vec<Bars<'_>> = Vec::new();
    let idle1: Vec<&Idle> = r.idle.iter().filter(|i| i.nodes == 1).collect();
    if !idle1.is_empty() {
        panels.push(Bars {
            title: "1. Idle connection, KiB per connection (lower is better)".into(),
            unit: "KiB",
            bars: idle1.iter().map(|i| (format!("{} ({} conns)", if i.target == "chat" { "ours" } else { "peer" }, i.conns), Ok(i.kib_per_conn), if i.target == "chat" { OURS } else { PEER })).collect(),
        });
    }
    if !r.group.is_empty() {
        panels.push(Bars {
            title: "2. Group fan-out, deliveries per second in a burst (higher is better)".into(),
            unit: "/s",
            bars: group_bars(r, |g| g.burst_deliveries_per_s),
        });
        panels.push(Bars {
            title: "2. Group fan-out, one send to its last recipient, ms, median (lower is better)".into(),
            unit: "ms",
            bars: group_bars(r, |g| g.single_median_ms),
        });
    }
    if !r.one_to_one.is_empty() {
        let who = |o: &OneToOne| if o.target == "chat" { "ours" } else { "peer" };
        let col = |o: &OneToOne| if o.target == "chat" { OURS } else { PEER };
        panels.push(Bars {
            title: "3. One-to-one from PHP, delivered messages per second (higher is better)".into(),
            unit: "msg/s",
            bars: r.one_to_one.iter().map(|o| (who(o).to_owned(), Ok(o.msg_per_s), col(o))).collect(),
        });
        let title = format!("3. One-to-one end-to-end latency at {} msg/s (below saturation), ms (lower is better)", r.one_to_one[0].paced_rate);
        panels.push(Bars {
            title,
            unit: "ms",
            bars: r.one_to_one.iter().flat_map(|o| {
                [("p50", o.paced_latency.p50_ms), ("p99", o.paced_latency.p99_ms), ("p99.9", o.paced_latency.p999_ms)]
                    .map(|(q, v)| (format!("{} {q}", who(o)), Ok(v), col(o)))
            }).collect(),
        });
    }
    if let Some(p) = &r.push_rate {
        panels.push(Bars {
            title: "4. chat_push() calls per second, one PHP process (higher is better)".into(),
            unit: "/s",
            bars: vec![("chat_push()".into(), Ok(p.php_median), OURS), ("redis-benchmark".into(), Ok(p.floor_median), FLOOR)],
        });
    }
    let width = 760.0;
    let mut body = String::new();
    let mut y = 50.0;
    for p in &panels {
        y += panel(&mut body, 20.0, y, width - 40.0, p) + 10.0;
    }
    if let Some(m) = r.memory.as_ref().filter(|m| m.samples.len() > 1) {
        y += memory_panel(&mut body, 20.0, y, width - 40.0, m);
    }
    let mut svg = String::new();
    let _ = writeln!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{:.0}" font-family="sans-serif">"#, y + 10.0);
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="20" y="24" font-size="16" font-weight="bold">chat-bench {} run, {}</text><text x="20" y="42" font-size="12">{} × {}, {:.0} GiB · ours = chat-sidecar + chat extension, peer = Node.js ws</text>"#,
        r.mode,
        esc(&r.date),
        r.machine.nproc,
        esc(&r.machine.cpu_model),
        r.machine.mem_total_gib
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

fn memory_panel(svg: &mut String, x: f64, y: f64, w: f64, m: &Memory) -> f64 {
    let h = 140.0;
    let _ = writeln!(svg, r#"<text x="{x}" y="{}" font-size="14" font-weight="bold">6. chat-sidecar RSS under one-to-one load, MiB, {:.0} s (flat is better; band: ±10%)</text>"#, y + 14.0, m.duration_s);
    let (top, left) = (y + 26.0, x + 50.0);
    let pw = w - 60.0;
    let tmax = m.samples.last().map(|s| s.0).unwrap_or(1.0).max(1e-9);
    let vmax = (m.max_kib.max(m.baseline_kib * 11 / 10) as f64 / 1024.0) * 1.05;
    let sx = |t: f64| left + t / tmax * pw;
    let sy = |v: f64| top + h - v / vmax * h;
    let base = m.baseline_kib as f64 / 1024.0;
    let _ = writeln!(svg, r##"<rect x="{left}" y="{:.1}" width="{pw}" height="{:.1}" fill="#e6f0fa"/>"##, sy(base * 1.1), sy(base * 0.9) - sy(base * 1.1));
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##, sy(base), left + pw, sy(base));
    let pts: Vec<String> = m.samples.iter().map(|(t, v)| format!("{:.1},{:.1}", sx(*t), sy(*v as f64 / 1024.0))).collect();
    let _ = writeln!(svg, r#"<polyline fill="none" stroke="{OURS}" stroke-width="2" points="{}"/>"#, pts.join(" "));
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{}" x2="{left}" y2="{}" stroke="#333"/><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##, top, top + h, top + h, left + pw, top + h);
    let _ = writeln!(svg, r#"<text x="{x}" y="{:.1}" font-size="11">{:.0}</text><text x="{x}" y="{:.1}" font-size="11">0</text>"#, top + 10.0, vmax, top + h);
    let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" font-size="11">{:.0} s</text>"#, left + pw - 30.0, top + h + 14.0, tmax);
    h + 50.0
}
