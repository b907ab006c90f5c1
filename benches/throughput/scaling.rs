//! The scaling section: one worker against two on a two-core machine.
//!
//! With a separate generator process the two cores are taken by the
//! generator and one worker. Here the device under test's client-facing
//! port is itself `net_pcap` with `infinite_rx=1` and one capture per queue:
//! the driver replays the capture inside each worker's `rx_burst` (a copy
//! from the stored frame into a fresh mbuf), so there is no generator core
//! and 1 worker (cpu 1) compares with 2 workers (cpu 0 and cpu 1; the main
//! lcore shares cpu 0 and mostly sleeps). The captures are split per queue
//! by RSS owner, as a NIC would spread them, so each worker sees only its
//! own flows; hand-offs are counted to show it. The server-facing port is
//! `net_null` (transmit frees). rvsd opens the connections first: the SYNs
//! come once, losslessly, through a second client-facing port (a memif
//! server fed by `rvsgen send --once`); until then the replayed ACKs find
//! no connection and are dropped, which is before the window.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::*;
use super::{attempt, flows_label, forwarder, window_latency, with_load, NULL_DEV};

/// Capture files, one per queue, with their frame counts.
type Pcaps = Vec<(PathBuf, u64)>;

/// EAL lcores: main on cpu 0, worker 1 on cpu 1, worker 2 on cpu 0.
fn lcores(workers: u16) -> String {
    match workers {
        1 => "0@0,1@1".into(),
        _ => "0@0,1@1,2@0".into(),
    }
}

fn cpus(workers: u16) -> &'static str {
    match workers {
        1 => "1 worker on cpu 1",
        _ => "workers on cpu 1 and cpu 0 (with the idle main lcore)",
    }
}

fn pcap_dev(pcaps: &[(PathBuf, u64)]) -> String {
    let mut d = String::from("net_pcap0");
    for (f, _) in pcaps {
        write!(d, ",rx_pcap={}", f.display()).unwrap();
    }
    d.push_str(",infinite_rx=1");
    d
}

fn base(name: &str, dut: &str, workers: u16, flows: u32, frames: u64, mem_mb: u64) -> Value {
    json!({
        "section": "scaling",
        "name": name,
        "dut": dut,
        "workers": workers,
        "devices": format!(
            "net_pcap (infinite_rx, in the worker) -> {dut} -> net_null; {}",
            dut_pages(mem_mb)
        ),
        "lcores": format!("{} ({})", lcores(workers), cpus(workers)),
        "packet_bytes": 64,
        "flows": flows,
        "capture_frames": frames,
        "dut_memory": dut_pages(mem_mb),
    })
}

/// EAL memory of a device under test whose pool holds the whole capture.
fn capture_mem(ack: &[(PathBuf, u64)]) -> u64 {
    let frames: u64 = ack.iter().map(|p| p.1).sum();
    mem_for_mbufs(frames + 65536)
}

/// testpmd macswap between the same two devices.
fn testpmd_row(s: &Scratch, workers: u16, flows: u32, ack: &[(PathBuf, u64)], secs: f64) -> Value {
    let frames: u64 = ack.iter().map(|p| p.1).sum();
    let mbufs = frames + 65536;
    let mem_mb = capture_mem(ack);
    let mut tp = forwarder(
        dut_eal(&lcores(workers), mem_mb, &s.prefix("scale-tp")),
        pcap_dev(ack),
        workers,
        &[
            format!("--total-num-mbufs={mbufs}"),
            // rvsd's data room: the copy the driver makes is the same.
            "--mbuf-size=2176".into(),
        ],
    );
    tp.cmd("set fwd macswap");
    tp.cmd("start");
    // Loading a large capture takes a while; the commands wait for it.
    assert!(
        tp.wait_output("packet forwarding - ports=", 120.0),
        "testpmd did not start forwarding"
    );
    std::thread::sleep(Duration::from_secs(2));
    tp.cmd("clear port stats all");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    tp.cmd("show port stats all");
    let dt = t0.elapsed().as_secs_f64();
    let out = tp.quit();
    let st = testpmd_port_stats(&out);
    assert!(
        st.contains_key(&1),
        "testpmd printed no port statistics:\n{out}"
    );
    let (_, tx) = st.get(&1).copied().unwrap_or_default();
    let mut r = base(
        &format!("testpmd macswap {}", flows_label(flows)),
        "testpmd",
        workers,
        flows,
        frames,
        mem_mb,
    );
    r["mpps"] = json!(tx as f64 / dt / 1e6);
    r["seconds"] = json!(dt);
    r
}

/// rvsd established: connections opened through the memif port, then the
/// ACK capture replayed by net_pcap in each worker.
fn rvsd_row(
    s: &Scratch,
    method: Method,
    workers: u16,
    flows: u32,
    syn: &[(PathBuf, u64)],
    ack: &[(PathBuf, u64)],
    secs: f64,
) -> Value {
    let frames: u64 = ack.iter().map(|p| p.1).sum();
    let client = pcap_dev(ack);
    let conns = (flows as u64 / workers as u64 + 1)
        .next_power_of_two()
        .max(1 << 16);
    // Every frame of the capture lives in an mbuf of rvsd's pool.
    let mbufs = frames + 65536;
    let mut o = RvsdOpts::new(method, workers, conns, NULL_DEV);
    o.client_device = Some(&client);
    o.mbufs = mbufs;
    o.mem_mb = capture_mem(ack);
    o.lcores = Some(lcores(workers));
    let d = Rvsd::start(s, &o);
    let pace = Pace {
        pps: 0,
        once: true,
        secs: 120.0,
    };
    let t_open = Instant::now();
    let opener = Rvsgen::spawn(s, syn, &d.memif, pace);
    let opened = wait_for(60.0, || {
        get(&d.counters(), "lb.connections") >= flows as u64
    });
    let open_s = t_open.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    d.latency(true);
    let (l0, c0) = (d.lcores(), d.counters());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (l1, c1) = (d.lcores(), d.counters());
    let dt = t0.elapsed().as_secs_f64();
    let lat = d.latency(true);
    // The opener lingers, connected and idle, after its last SYN: rvsd
    // goes first, so its memif port never loses the peer mid-read.
    let rep = d.stop();
    let gen = opener.stop();
    let delta = |k: &str| get(&c1, k).saturating_sub(get(&c0, k));
    let drops: u64 = c1
        .iter()
        .filter(|(k, _)| k.starts_with("drop."))
        .map(|(k, _)| delta(k))
        .sum();
    let per_worker: Vec<Value> = l0
        .iter()
        .zip(&l1)
        .map(|(a, b)| {
            json!({
                "lcore": b.lcore,
                "rx_mpps": (b.rx_packets - a.rx_packets) as f64 / dt / 1e6,
                "tx_mpps": (b.tx_packets - a.tx_packets) as f64 / dt / 1e6,
                "handoffs": b.handoffs - a.handoffs,
            })
        })
        .collect();
    let mut r = base(
        &format!("{} established {}", method.name(), flows_label(flows)),
        "rvsd",
        workers,
        flows,
        frames,
        o.mem_mb,
    );
    r["method"] = json!(method.name());
    r["mpps"] = json!(delta("worker.tx") as f64 / dt / 1e6);
    r["rx_mpps"] = json!(delta("worker.rx") as f64 / dt / 1e6);
    r["seconds"] = json!(dt);
    // Each queue's capture holds only the flows its worker owns: every
    // worker receives, nothing is handed off.
    r["split_ok"] = json!(
        per_worker.len() == workers as usize
            && per_worker.iter().all(|w| {
                w["rx_mpps"].as_f64().unwrap_or(0.0) > 0.0 && w["handoffs"].as_u64() == Some(0)
            })
    );
    r["per_worker"] = json!(per_worker);
    r["drops_in_window"] = json!(drops);
    r["handoffs_in_window"] = json!(delta("worker.handoff_out"));
    r["connections"] = json!(get(&c1, "lb.connections"));
    r["all_opened"] = json!(opened);
    r["open_seconds"] = json!(open_s);
    r["opener"] = gen;
    r["burst_latency"] = window_latency(&lat);
    r["exit_report_lcores"] = rep["lcores"].clone();
    r
}

/// Every scaling row for the given worker counts and flow counts. Each row
/// runs with one worker and then at once with two, so that a change in
/// the machine's other load between them is less likely.
pub fn rows(
    s: &Scratch,
    workers: &[u16],
    flow_counts: &[u32],
    secs: f64,
    want: &dyn Fn(&str) -> bool,
) -> Vec<Value> {
    let mut rows = Vec::new();
    for &flows in flow_counts {
        let label = flows_label(flows);
        // `--only` sees the section's name in front of the row's.
        let tp = want(&format!("scaling testpmd macswap {label}"));
        let methods: Vec<Method> = [Method::Nat, Method::Dr, Method::Tun]
            .into_iter()
            .filter(|m| want(&format!("scaling {} established {label}", m.name())))
            .collect();
        if !tp && methods.is_empty() {
            continue;
        }
        // 1k flows: 64 rounds in fresh random orders; 1M: one round.
        let rounds = (65_536 / flows).max(1);
        let captures: Vec<(u16, Pcaps, Pcaps)> = workers
            .iter()
            .map(|&w| {
                let ack = write_pcaps(
                    s,
                    &format!("scale-ack{flows}w{w}"),
                    flows,
                    Traffic::Ack { rounds },
                    w,
                );
                let syn = write_pcaps(s, &format!("scale-syn{flows}w{w}"), flows, Traffic::Syn, w);
                (w, syn, ack)
            })
            .collect();
        if tp {
            for (w, _, ack) in &captures {
                eprintln!("throughput: scaling, testpmd macswap, {label} flows, {w} worker(s)");
                let b = base(
                    &format!("testpmd macswap {label}"),
                    "testpmd",
                    *w,
                    flows,
                    0,
                    capture_mem(ack),
                );
                rows.push(with_load(attempt(b, || {
                    testpmd_row(s, *w, flows, ack, secs)
                })));
            }
        }
        for m in methods {
            for (w, syn, ack) in &captures {
                eprintln!(
                    "throughput: scaling, {} established, {label} flows, {w} worker(s)",
                    m.name()
                );
                let b = base(
                    &format!("{} established {label}", m.name()),
                    "rvsd",
                    *w,
                    flows,
                    0,
                    capture_mem(ack),
                );
                rows.push(with_load(attempt(b, || {
                    rvsd_row(s, m, *w, flows, syn, ack, secs)
                })));
            }
        }
    }
    rows
}

/// One line per row name: 1 and 2 workers side by side.
pub fn markdown(rows: &[Value]) -> String {
    let mut s = String::new();
    s.push_str("\nScaling (the device under test replays the capture itself: net_pcap infinite_rx in each worker's rx, no generator core; 1 worker on cpu 1, 2 workers on cpu 1 and cpu 0):\n\n");
    s.push_str("| row | devices | bytes | flows | 1 worker Mpps | 2 workers Mpps | per worker (2) | scaling 2/1 | per-worker rx Mpps (2) | hand-offs (2) | vs testpmd macswap (1 / 2) | burst p50 / p99 / p99.9 µs (1 worker; 2 workers, worst) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        let n = r["name"].as_str().unwrap_or("");
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let find = |name: &str, w: u64| {
        rows.iter()
            .find(|r| r["name"] == name && r["workers"].as_u64() == Some(w))
    };
    let mpps = |r: Option<&Value>| r.and_then(|r| r["mpps"].as_f64());
    let f3 = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    for name in names {
        let (one, two) = (find(name, 1), find(name, 2));
        let any = one.or(two).unwrap();
        let flows = any["flows"].as_u64().unwrap_or(0) as u32;
        let tp = format!("testpmd macswap {}", flows_label(flows));
        let ratio = |r: Option<&Value>, w| match (mpps(r), mpps(find(&tp, w))) {
            (Some(a), Some(b)) if b > 0.01 && any["dut"] == "rvsd" => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        let split = two
            .and_then(|r| r["per_worker"].as_array())
            .map(|ws| {
                ws.iter()
                    .map(|w| format!("{:.2}", w["rx_mpps"].as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .unwrap_or("-".into());
        let lat = |r: Option<&Value>| r.map_or("-".into(), |r| super::fmt_lat(&r["burst_latency"]));
        let lats = format!("1: {}; 2: {}", lat(one), lat(two));
        writeln!(
            s,
            "| {} | {} | 64 | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            name,
            any["devices"].as_str().unwrap_or(""),
            flows,
            f3(mpps(one)),
            f3(mpps(two)),
            f3(mpps(two).map(|m| m / 2.0)),
            match (mpps(one), mpps(two)) {
                (Some(a), Some(b)) if a > 0.01 => format!("{:.2}", b / a),
                _ => "-".into(),
            },
            split,
            two.and_then(|r| r["handoffs_in_window"].as_u64())
                .map_or("-".into(), |h| h.to_string()),
            ratio(one, 1),
            ratio(two, 2),
            lats,
        )
        .unwrap();
    }
    s
}
