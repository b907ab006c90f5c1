//! Generator-driven throughput of rvsd against `dpdk-testpmd`, the whole
//! table in one run (see docs/bench.md; `./scripts/bench` runs it).
//!
//!   cargo bench --bench throughput                       (every row, 1 and 2 workers)
//!   cargo bench --bench throughput -- --secs 2 --workers 1 --only dr
//!
//! Topology (one machine, no NIC): a generator `dpdk-testpmd` replays pcap
//! captures written here (net_pcap, `infinite_rx`) into a `net_memif`
//! client; the device under test (rvsd, or `dpdk-testpmd` in io/macswap
//! mode as the ceiling) owns the memif server as its client-facing port and
//! sends what it forwards to a `net_null` server-facing port (transmit frees
//! the mbuf). What was forwarded is read from the device under test's own
//! counters (`rvsadm --counters` over the control socket; testpmd's port
//! statistics), never from the generator.
//!
//! The harness module (harness.rs) is shared with tests/throughput_quick.rs
//! (the quick correctness mode run by ./scripts/test).

#![allow(clippy::print_stdout)]

// Shared with the quick test, which uses parts the benchmark does not.
#[allow(dead_code)]
mod harness;
mod scaling;

use std::time::{Duration, Instant};

use harness::*;
use rvs::control::proto::WorkerLatency;
use serde_json::{json, Value};

struct Opts {
    secs: f64,
    workers: Vec<u16>,
    only: Option<String>,
    out: std::path::PathBuf,
    big_flows: u32,
    syn_flows: u32,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        secs: std::env::var("RVS_BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3.0),
        workers: vec![1, 2],
        only: None,
        out: std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/bench/results.json"
        )),
        big_flows: 1_000_000,
        syn_flows: 2_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => o.secs = it.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--workers" => {
                o.workers = it
                    .next()
                    .expect("--workers 1,2")
                    .split(',')
                    .map(|w| w.parse().expect("worker count"))
                    .collect()
            }
            "--only" => o.only = it.next(),
            "--out" => o.out = it.next().expect("--out FILE").into(),
            "--big-flows" => o.big_flows = it.next().and_then(|v| v.parse().ok()).unwrap(),
            "--syn-flows" => o.syn_flows = it.next().and_then(|v| v.parse().ok()).unwrap(),
            // cargo bench passes --bench
            _ => {}
        }
    }
    o
}

const NULL_DEV: &str = "net_null0,no-rx=1";

fn devices(dut: &str) -> String {
    format!("gen testpmd+net_pcap -> net_memif -> {dut} -> net_null")
}

/// The 1-minute load average when the row ended (2 of it is the generator
/// and the device under test busy-polling; more is other work).
fn with_load(mut r: Value) -> Value {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    r["load_average_1m"] = json!(l
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0));
    r
}

fn row_base(name: &str, dut: &str, workers: u16, flows: u64) -> Value {
    json!({
        "name": name,
        "dut": dut,
        "workers": workers,
        "devices": devices(dut),
        "lcores": format!("generator: 1 lcore on cpu 0; {dut}: main on cpu 0, {workers} forwarding lcore(s) on cpu 1 ({})", dut_lcores(workers)),
        "packet_bytes": 64,
        "flows": flows,
        "dut_memory": dut_pages(1024),
    })
}

/// testpmd forwarding from `rx_dev` to the null port on `workers` lcores
/// (`extra`: further application arguments); the ceiling rows' device
/// under test.
pub(crate) fn forwarder(
    mut eal: Vec<String>,
    rx_dev: String,
    workers: u16,
    extra: &[String],
) -> Testpmd {
    eal.extend(["--vdev".into(), rx_dev, "--vdev".into(), NULL_DEV.into()]);
    let mut app = vec![
        format!("--nb-cores={workers}"),
        format!("--rxq={workers}"),
        format!("--txq={workers}"),
    ];
    app.extend_from_slice(extra);
    Testpmd::spawn(&eal, &app)
}

/// The testpmd ceiling: io or macswap between the memif server and null.
fn testpmd_row(
    s: &Scratch,
    name: &str,
    mode: &str,
    workers: u16,
    secs: f64,
    ack: &[(std::path::PathBuf, u64)],
) -> Value {
    let sock = s.path(&format!("tp-{mode}-{workers}.memif"));
    let mut fwd = forwarder(
        dut_eal(&dut_lcores(workers), 1024, &s.prefix("fwd")),
        memif("server", &sock),
        workers,
        &["--total-num-mbufs=65536".into()],
    );
    fwd.cmd(&format!("set fwd {mode}"));
    assert!(wait_for(30.0, || sock.exists()), "testpmd memif server");
    let gen = generator(s, ack, &sock, true, false);
    // Forwarding starts once the generator is connected: a memif server
    // reading its rings while a peer connects (or leaves) may crash.
    std::thread::sleep(Duration::from_millis(1500));
    fwd.cmd("start");
    std::thread::sleep(Duration::from_secs(2));
    // Sub-windows, each from a clear to a report, as for the rvsd rows.
    let k = sub_windows(secs);
    let mut spans = Vec::with_capacity(k);
    for _ in 0..k {
        fwd.cmd("clear port stats all");
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs / k as f64));
        fwd.cmd("show port stats all");
        spans.push(t0.elapsed().as_secs_f64());
    }
    let dt: f64 = spans.iter().sum();
    // The forwarder stops polling before the generator leaves: a memif
    // server reading its rings while the peer disconnects may crash.
    fwd.cmd("stop");
    std::thread::sleep(Duration::from_millis(200));
    let gout = gen.quit();
    let out = fwd.quit();
    if std::env::var_os("RVS_BENCH_DEBUG").is_some() {
        eprintln!("---- testpmd {mode} output\n{out}\n---- generator\n{gout}\n----");
    }
    let reports = testpmd_port_stats_each(&out);
    assert!(
        reports.len() == k && reports.iter().all(|st| st.contains_key(&1)),
        "testpmd printed {} of {k} port statistics reports:\n{out}",
        reports.len()
    );
    let rate = |port: u16, tx: bool| -> Vec<f64> {
        reports
            .iter()
            .zip(&spans)
            .map(|(st, t)| {
                let (r, x) = st.get(&port).copied().unwrap_or_default();
                (if tx { x } else { r }) as f64 / t / 1e6
            })
            .collect()
    };
    let (tx, rx) = (rate(1, true), rate(0, false));
    let mut r = row_base(name, "testpmd", workers, 1000);
    r["mpps"] = json!(median(&tx));
    r["mpps_subwindows"] = json!(tx);
    r["rx_mpps"] = json!(median(&rx));
    r["seconds"] = json!(dt);
    r["gen_tx_dropped"] = json!(testpmd_tx_dropped(&gout));
    r
}

/// Run a row, once more if it fails (a panic: a process that died, a
/// timeout). memif servers can crash when their peer disconnects while a
/// worker reads the rings (the driver unmaps them under it), which a
/// worker time-sliced with another on one cpu makes likely enough to
/// matter; the harness avoids it where it can (see `Rvsgen`), not when one
/// generator hands over to the next. After two failures the row is
/// `base` with the error.
fn attempt(base: Value, f: impl Fn() -> Value) -> Value {
    let mut errors = Vec::new();
    for _ in 0..2 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f)) {
            Ok(mut r) => {
                if !errors.is_empty() {
                    r["failed_attempts"] = json!(errors);
                }
                return r;
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                eprintln!(
                    "throughput: {} ({} worker(s)) failed: {}",
                    base["name"].as_str().unwrap_or(""),
                    base["workers"],
                    msg.lines().next().unwrap_or("")
                );
                errors.push(msg);
            }
        }
    }
    let mut r = base;
    r["error"] = json!(errors.last());
    r["failed_attempts"] = json!(errors);
    r
}

/// `1k`, `1M`: flow counts in row names.
fn flows_label(flows: u32) -> String {
    if flows >= 1_000_000 && flows.is_multiple_of(1_000_000) {
        format!("{}M", flows / 1_000_000)
    } else if flows >= 1000 && flows.is_multiple_of(1000) {
        format!("{}k", flows / 1000)
    } else {
        flows.to_string()
    }
}

/// The worst worker's percentiles (highest p99) of rvsd's exit report.
fn latency(rep: &Value) -> Value {
    worst(
        rep["burst_latency"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned(),
    )
}

/// The worst worker's percentiles of a `latency` answer.
fn window_latency(ws: &[WorkerLatency]) -> Value {
    worst(ws.iter().map(|w| serde_json::to_value(w).unwrap()))
}

fn worst(workers: impl Iterator<Item = Value>) -> Value {
    let mut best = json!(null);
    let mut worst = -1.0;
    for l in workers {
        let p = l["p99_ns"].as_f64().unwrap_or(0.0);
        if p > worst {
            worst = p;
            best = json!({"p50_ns": l["p50_ns"], "p99_ns": l["p99_ns"], "p999_ns": l["p999_ns"], "max_ns": l["max_ns"], "bursts": l["bursts"]});
        }
    }
    best
}

fn established_name(method: Method, flows: u32, flood: bool) -> String {
    let flood = if flood { " under SYN flood" } else { "" };
    format!(
        "{} established {}{flood}",
        method.name(),
        flows_label(flows)
    )
}

fn idle_share(rep: &Value) -> f64 {
    let (mut idle, mut loops) = (0.0, 0.0);
    for l in rep["lcores"].as_array().into_iter().flatten() {
        idle += l["idle_loops"].as_f64().unwrap_or(0.0);
        loops += l["loops"].as_f64().unwrap_or(0.0);
    }
    if loops > 0.0 {
        idle / loops
    } else {
        0.0
    }
}

/// Established flows: open every connection first (a lossless SYN pass),
/// then replay ACK-only traffic and measure rvsd's forwarded rate.
///
/// With `flood`, every ACK of the measured traffic is followed by a
/// spoofed SYN from a new source (half the frames): the table fills within
/// a fraction of a second and stays full, new SYNs evicting the oldest
/// embryonic connections; the row shows what legitimate flows keep.
fn established_row(
    s: &Scratch,
    method: Method,
    workers: u16,
    flows: u32,
    secs: f64,
    flood: bool,
) -> Value {
    let rounds = (262_144 / flows).max(1);
    let syn = write_pcaps(
        s,
        &format!("syn{flows}w{workers}"),
        flows,
        Traffic::Syn,
        workers,
    );
    let ack = write_pcaps(
        s,
        &format!("ack{flows}w{workers}{}", if flood { "flood" } else { "" }),
        flows,
        if flood {
            Traffic::AckUnderFlood { rounds }
        } else {
            Traffic::Ack { rounds }
        },
        workers,
    );
    let conns = (flows as u64 / workers as u64 + 1)
        .next_power_of_two()
        .max(1 << 16);
    let d = Rvsd::start(s, &RvsdOpts::new(method, workers, conns, NULL_DEV));
    let rss0 = d.rss_kb();
    let g1 = generator(s, &syn, &d.memif, true, true);
    let t_open = Instant::now();
    let opened = wait_for(120.0, || {
        get(&d.counters(), "lb.connections") >= flows as u64
    });
    let open_s = t_open.elapsed().as_secs_f64();
    drop(g1.quit());
    let c_open = d.counters();
    let rss1 = d.rss_kb();
    let g2 = generator(s, &ack, &d.memif, true, false);
    let base = get(&c_open, "worker.rx");
    wait_for(60.0, || get(&d.counters(), "worker.rx") > base + 1000);
    std::thread::sleep(Duration::from_secs(1));
    d.latency(true);
    let c0 = d.counters();
    let t0 = Instant::now();
    // The rate is the median over sub-windows (see `median`).
    let k = sub_windows(secs);
    let mut subs = Vec::with_capacity(k);
    let (mut prev, mut t_prev) = (get(&c0, "worker.tx"), Instant::now());
    let mut c1 = c0.clone();
    for j in 0..k {
        let until = secs * (j + 1) as f64 / k as f64;
        std::thread::sleep(Duration::from_secs_f64(
            (until - t0.elapsed().as_secs_f64()).max(0.0),
        ));
        c1 = d.counters();
        let now = Instant::now();
        let tx = get(&c1, "worker.tx");
        subs.push(tx.saturating_sub(prev) as f64 / (now - t_prev).as_secs_f64() / 1e6);
        (prev, t_prev) = (tx, now);
    }
    let dt = t0.elapsed().as_secs_f64();
    let lat_max = window_latency(&d.latency(true));
    let gout = g2.quit();
    let delta = |k: &str| get(&c1, k).saturating_sub(get(&c0, k));
    let mpps = median(&subs);
    let mpps_whole = delta("worker.tx") as f64 / dt / 1e6;
    let (mut load80, paced) = paced_window(s, &d, &ack, 0.8 * mpps * 1e6, secs);
    let rep = d.stop();
    load80["generator"] = paced.stop();
    let drops: u64 = c1
        .iter()
        .filter(|(k, _)| k.starts_with("drop."))
        .map(|(k, _)| delta(k))
        .sum();
    let mut r = row_base(
        &established_name(method, flows, flood),
        "rvsd",
        workers,
        flows as u64,
    );
    if flood {
        r["embryonic_evicted_in_window"] = json!(delta("lb.embryonic_evicted"));
        r["table_full_in_window"] = json!(delta("drop.table_full"));
        // Half the frames are legitimate; with no drop, all of them left.
        r["legit_mpps"] = json!(if drops == 0 { mpps / 2.0 } else { 0.0 });
    }
    r["method"] = json!(method.name());
    r["mpps"] = json!(mpps);
    r["mpps_subwindows"] = json!(subs);
    r["mpps_whole_window"] = json!(mpps_whole);
    r["rx_mpps"] = json!(delta("worker.rx") as f64 / dt / 1e6);
    r["seconds"] = json!(dt);
    r["drops_in_window"] = json!(drops);
    r["handoffs_in_window"] = json!(delta("worker.handoff_out"));
    r["connections"] = json!(get(&c1, "lb.connections"));
    r["all_opened"] = json!(opened);
    r["open_seconds"] = json!(open_s);
    r["burst_latency"] = load80["burst_latency"].clone();
    r["burst_latency_max_load"] = lat_max;
    r["load80"] = load80;
    r["idle_loop_share"] = json!(idle_share(&rep));
    r["gen_tx_dropped"] = json!(testpmd_tx_dropped(&gout));
    let mem: f64 = rep["conn_memory"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["bytes"].as_f64().unwrap_or(0.0))
        .sum();
    let cap: f64 = rep["conn_memory"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["capacity"].as_f64().unwrap_or(0.0))
        .sum();
    let live = get(&c_open, "lb.connections") as f64;
    r["conn_memory"] = json!({
        "table_bytes": mem,
        "table_capacity": cap,
        "connections": live,
        "table_bytes_per_connection": if live > 0.0 { mem / live } else { 0.0 },
        "table_bytes_per_slot": if cap > 0.0 { mem / cap } else { 0.0 },
        "rss_growth_bytes_per_connection": if live > 0.0 { (rss1.saturating_sub(rss0) * 1024) as f64 / live } else { 0.0 },
        "placement": rep["conn_memory"].as_array().and_then(|a| a.first()).map(|m| m["placement"].clone()).unwrap_or(Value::Null),
    });
    r
}

/// rvsd under a fixed offered load: `rvsgen send` paced at `pps` on the
/// same captures (the previous generator gone), and over a window of
/// `secs` once it runs: the per-burst latency (a window of its own, reset
/// at the start) and what rvsd received and forwarded. The generator is
/// returned paused (connected, not sending).
fn paced_window(
    s: &Scratch,
    d: &Rvsd,
    pcaps: &[(std::path::PathBuf, u64)],
    pps: f64,
    secs: f64,
) -> (Value, Rvsgen) {
    let before = get(&d.counters(), "worker.rx");
    let pace = Pace {
        pps: pps as u64,
        once: false,
        secs: secs + 30.0,
    };
    let mut g = Rvsgen::spawn(s, pcaps, &d.memif, pace);
    let mut up = false;
    wait_for(30.0, || {
        up = get(&d.counters(), "worker.rx") > before + 1000;
        up || !g.running()
    });
    if !up {
        return (json!({"error": "rvsgen did not start"}), g);
    }
    std::thread::sleep(Duration::from_millis(500));
    d.latency(true);
    let c0 = d.counters();
    let t0 = Instant::now();
    // The rate is the median over sub-windows (see `median`).
    let k = sub_windows(secs);
    let mut subs = Vec::with_capacity(k);
    let (mut prev, mut t_prev) = (get(&c0, "worker.tx"), Instant::now());
    let mut c1 = c0.clone();
    for j in 0..k {
        let until = secs * (j + 1) as f64 / k as f64;
        std::thread::sleep(Duration::from_secs_f64(
            (until - t0.elapsed().as_secs_f64()).max(0.0),
        ));
        c1 = d.counters();
        let now = Instant::now();
        let tx = get(&c1, "worker.tx");
        subs.push(tx.saturating_sub(prev) as f64 / (now - t_prev).as_secs_f64() / 1e6);
        (prev, t_prev) = (tx, now);
    }
    let dt = t0.elapsed().as_secs_f64();
    let lat = d.latency(true);
    // Sending stops; the caller stops rvsd, then the generator.
    g.pause();
    let delta = |k: &str| get(&c1, k).saturating_sub(get(&c0, k));
    let drops: u64 = c1
        .iter()
        .filter(|(k, _)| k.starts_with("drop."))
        .map(|(k, _)| delta(k))
        .sum();
    let window = json!({
        "target_pps": pps,
        "rx_mpps": delta("worker.rx") as f64 / dt / 1e6,
        "mpps": delta("worker.tx") as f64 / dt / 1e6,
        "seconds": dt,
        "drops_in_window": drops,
        "burst_latency": window_latency(&lat),
    });
    (window, g)
}

/// New connections: every packet a SYN from a new client, played once
/// (losslessly); the rate is the growth of rvsd's connection count.
fn new_conn_row(s: &Scratch, method: Method, workers: u16, flows: u32) -> Value {
    let syn = write_pcaps(
        s,
        &format!("new{flows}w{workers}"),
        flows,
        Traffic::Syn,
        workers,
    );
    let conns = (flows as u64 / workers as u64 + 1).next_power_of_two();
    let d = Rvsd::start(s, &RvsdOpts::new(method, workers, conns, NULL_DEV));
    let mut g = generator(s, &syn, &d.memif, true, true);
    let total = flows as u64;
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let t0 = Instant::now();
    loop {
        let c = get(&d.counters(), "lb.connections");
        samples.push((t0.elapsed().as_secs_f64(), c));
        if c >= total || t0.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The generator stops polling, rvsd goes, then the generator: no memif
    // side loses its peer while reading the rings.
    g.cmd("stop");
    let rep = d.stop();
    let gout = g.quit();
    // The slope between 10 % and 90 % of the flows.
    let lo = samples.iter().find(|x| x.1 >= total / 10).copied();
    let hi = samples.iter().find(|x| x.1 >= total * 9 / 10).copied();
    let cps = match (lo, hi) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0),
        _ => 0.0,
    };
    let mut r = row_base(
        &format!("{} new connections", method.name()),
        "rvsd",
        workers,
        flows as u64,
    );
    r["method"] = json!(method.name());
    r["conn_per_s"] = json!(cps);
    r["mpps"] = json!(cps / 1e6);
    r["seconds"] = json!(match (lo, hi) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    });
    r["connections"] = json!(samples.last().map(|x| x.1).unwrap_or(0));
    r["burst_latency"] = latency(&rep);
    r["idle_loop_share"] = json!(idle_share(&rep));
    r["gen_tx_dropped"] = json!(testpmd_tx_dropped(&gout));
    r
}

/// p50 / p99 / p99.9 in µs, or `-`.
fn fmt_lat(l: &Value) -> String {
    if l.is_null() {
        return "-".into();
    }
    let us = |k: &str| l[k].as_f64().unwrap_or(0.0) / 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1}",
        us("p50_ns"),
        us("p99_ns"),
        us("p999_ns")
    )
}

fn markdown(rows: &[Value], load: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("load average at start: {load}\n\n"));
    s.push_str("Rates: the median over sub-windows of the measuring window. Ratios: against the higher of the two testpmd macswap measurements (before and after the rvsd rows).\n\n");
    s.push_str("| row | workers | devices | lcores | bytes | flows | rate (DUT's own counters) | vs testpmd macswap | burst p50 / p99 / p99.9 µs at max | 80 % load: offered -> forwarded Mpps | burst p50 / p99 / p99.9 µs at 80 % | generator TX refused | load 1m |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        if let Some(e) = r["error"].as_str() {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | failed twice: {} | | | | | | |\n",
                r["name"].as_str().unwrap_or(""),
                r["workers"],
                r["devices"].as_str().unwrap_or(""),
                dut_lcores(r["workers"].as_u64().unwrap_or(1) as u16),
                r["packet_bytes"],
                r["flows"],
                e.lines().next().unwrap_or("").replace('|', "/"),
            ));
            continue;
        }
        let rate = if let Some(c) = r["conn_per_s"].as_f64() {
            format!("{:.3} M conn/s", c / 1e6)
        } else {
            format!("{:.3} Mpps", r["mpps"].as_f64().unwrap_or(0.0))
        };
        let ratio = r["ratio_to_macswap"]
            .as_f64()
            .map(|x| format!("{x:.2}"))
            .unwrap_or("-".into());
        let refused = r["gen_tx_dropped"].as_u64().unwrap_or(0);
        let l80 = &r["load80"];
        let (at_max, offered, at80) = if l80.is_null() {
            // New connections: the whole run is at full load.
            (fmt_lat(&r["burst_latency"]), "-".into(), "-".into())
        } else if let Some(e) = l80["error"].as_str() {
            (
                fmt_lat(&r["burst_latency_max_load"]),
                e.to_string(),
                "-".into(),
            )
        } else {
            (
                fmt_lat(&r["burst_latency_max_load"]),
                format!(
                    "{:.3} -> {:.3}",
                    l80["rx_mpps"].as_f64().unwrap_or(0.0),
                    l80["mpps"].as_f64().unwrap_or(0.0)
                ),
                fmt_lat(&l80["burst_latency"]),
            )
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            r["name"].as_str().unwrap_or(""),
            r["workers"],
            r["devices"].as_str().unwrap_or(""),
            dut_lcores(r["workers"].as_u64().unwrap_or(1) as u16),
            r["packet_bytes"],
            r["flows"],
            rate,
            ratio,
            at_max,
            offered,
            at80,
            if refused > 0 {
                format!("{:.1} M", refused as f64 / 1e6)
            } else {
                "0".into()
            },
            r["load_average_1m"].as_f64().unwrap_or(0.0),
        ));
    }
    for r in rows {
        if let Some(m) = r.get("conn_memory") {
            if r["flows"].as_u64() == Some(1_000_000) && r["method"] == "DR" {
                s.push_str(&format!(
                    "\nmemory per connection at {} connections ({} worker(s)): {:.1} bytes of connection table per connection ({:.1} per slot of {} slots; table in {}), resident memory growth {:.1} bytes per connection\n",
                    m["connections"].as_f64().unwrap_or(0.0) as u64, r["workers"],
                    m["table_bytes_per_connection"].as_f64().unwrap_or(0.0),
                    m["table_bytes_per_slot"].as_f64().unwrap_or(0.0),
                    m["table_capacity"].as_f64().unwrap_or(0.0) as u64,
                    m["placement"].as_str().unwrap_or("?"),
                    m["rss_growth_bytes_per_connection"].as_f64().unwrap_or(0.0),
                ));
            }
        }
    }
    s
}

fn main() {
    let o = parse_args();
    if !testpmd_available() {
        eprintln!("throughput: dpdk-testpmd not found (scripts/deps installs it)");
        std::process::exit(1);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let started = Instant::now();
    let s = Scratch::new("bench");
    let want = |name: &str| {
        o.only
            .as_ref()
            .is_none_or(|f| name.to_lowercase().contains(&f.to_lowercase()))
    };
    let mut rows: Vec<Value> = Vec::new();
    for &w in &o.workers {
        let ack1k = write_pcaps(
            &s,
            &format!("tpack-w{w}"),
            1000,
            Traffic::Ack { rounds: 256 },
            w,
        );
        let mut macswap: Option<f64> = None;
        let mut ceiling = |rows: &mut Vec<Value>, name: &str, mode: &str| {
            if want(name) {
                eprintln!("throughput: {name}, {w} worker(s)");
                let base = row_base(name, "testpmd", w, 1000);
                let r = with_load(attempt(base, || {
                    testpmd_row(&s, name, mode, w, o.secs, &ack1k)
                }));
                if mode == "macswap" {
                    if let Some(m) = r["mpps"].as_f64() {
                        macswap = Some(macswap.map_or(m, |x| x.max(m)));
                    }
                }
                rows.push(r);
            }
        };
        ceiling(&mut rows, "testpmd io", "io");
        ceiling(&mut rows, "testpmd macswap", "macswap");
        let mut rvs_rows = Vec::new();
        for m in [Method::Nat, Method::Dr, Method::Tun] {
            // Under a SYN flood: NAT and DR, 1k flows.
            let floods = [(1000, false), (o.big_flows, false), (1000, true)];
            for (flows, flood) in floods {
                let name = established_name(m, flows, flood);
                if want(&name) && !(flood && m == Method::Tun) {
                    eprintln!("throughput: {name}, {w} worker(s)");
                    let base = row_base(&name, "rvsd", w, flows as u64);
                    rvs_rows.push(with_load(attempt(base, || {
                        established_row(&s, m, w, flows, o.secs, flood)
                    })));
                }
            }
            if want(&format!("{} new", m.name())) {
                eprintln!("throughput: {} new connections, {w} worker(s)", m.name());
                let base = row_base(
                    &format!("{} new connections", m.name()),
                    "rvsd",
                    w,
                    o.syn_flows as u64,
                );
                rvs_rows.push(with_load(attempt(base, || {
                    new_conn_row(&s, m, w, o.syn_flows)
                })));
            }
        }
        // The ceiling again after the rvsd rows, the higher of the two
        // taken: a ceiling measured low during interference from outside
        // would flatter every ratio.
        let mut again = Vec::new();
        if !rvs_rows.is_empty() {
            ceiling(&mut again, "testpmd macswap, again", "macswap");
        }
        for mut r in rvs_rows {
            if let Some(ms) = macswap.filter(|m| *m > 0.0) {
                if r.get("conn_per_s").is_none() && r["mpps"].is_number() {
                    r["ratio_to_macswap"] = json!(r["mpps"].as_f64().unwrap_or(0.0) / ms);
                }
            }
            rows.push(r);
        }
        rows.extend(again);
    }
    let scaling_rows = scaling::rows(&s, &o.workers, &[1000, o.big_flows], o.secs, &want);
    let mut md = if rows.is_empty() {
        format!("load average at start: {load}\n")
    } else {
        markdown(&rows, &load)
    };
    if !scaling_rows.is_empty() {
        md.push_str(&scaling::markdown(&scaling_rows));
    }
    println!("{md}");
    rows.extend(scaling_rows);
    let result = json!({
        "load_average_at_start": load,
        "load_average_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "seconds_per_row": o.secs,
        "total_seconds": started.elapsed().as_secs_f64(),
        "rows": rows,
    });
    if let Some(dir) = o.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&o.out, serde_json::to_string_pretty(&result).unwrap()).expect("write results");
    eprintln!(
        "throughput: wrote {} in {:.0} s",
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
}
