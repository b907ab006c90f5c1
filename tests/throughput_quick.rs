//! The throughput benchmark's quick mode (`#[ignore]`d: it needs root,
//! dpdk-testpmd and scapy; ./scripts/test runs it with `--ignored`): the same
//! generator -> memif -> rvsd path as `benches/throughput/`, a few hundred
//! frames played once, losslessly, for NAT, DR and TUN; the server-facing
//! port captures what rvsd sent. Checks counts (rvsd's counters, the
//! capture) and a sample of frames with scapy. Then `rvsgen send`, paced,
//! into two workers: every frame it says it sent arrives, each on the
//! worker its queue belongs to. No speed assertion.
#![cfg(feature = "dpdk")]

#[allow(dead_code)]
#[path = "../benches/throughput/harness.rs"]
mod harness;

use std::process::Command;
use std::sync::Mutex;

use harness::*;

const FLOWS: u32 = 200;
const ROUNDS: u32 = 2;

/// scapy's view of what came out, against what went in.
const CHECK: &str = r#"
import sys
from scapy.all import rdpcap, Ether, IP, TCP, ARP
inp, out, method, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rs_ip, rs_mac, rs_port, lb_src = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
sent = {}
for p in rdpcap(inp):
    ip = p[IP]
    sent[(ip.src, ip[TCP].sport, ip[TCP].seq, int(ip[TCP].flags))] = bytes(ip)[:ip.len]
frames = [p for p in rdpcap(out) if IP in p]
others = [p for p in rdpcap(out) if IP not in p]
errors = []
if len(frames) != expected:
    errors.append(f"{len(frames)} IPv4 frames out, expected {expected}")
if any(ARP not in p for p in others):
    errors.append("non-ARP, non-IPv4 frames out")

def valid(ip):
    c = IP(bytes(ip)); c.chksum = None
    if IP(bytes(c)).chksum != ip.chksum: return "IPv4 checksum"
    if TCP in ip:
        t = IP(bytes(ip)); t[TCP].chksum = None
        if IP(bytes(t))[TCP].chksum != ip[TCP].chksum: return "TCP checksum"
    return None

step = max(1, len(frames) // 50)
sample = frames[::step] + frames[-1:]
for p in sample:
    if p[Ether].dst.lower() != rs_mac:
        errors.append(f"dst MAC {p[Ether].dst}"); continue
    outer = p[IP]
    if method == "TUN":
        if outer.proto != 4 or outer.src != lb_src or outer.dst != rs_ip:
            errors.append(f"TUN outer {outer.src}->{outer.dst} proto {outer.proto}"); continue
        if len(p) != 14 + 20 + outer.payload.len:
            errors.append(f"TUN frame length {len(p)}")
        e = valid(outer)
        if e: errors.append("outer " + e)
        inner = IP(bytes(outer.payload))
    else:
        inner = outer
    t = inner[TCP]
    key = (inner.src, t.sport, t.seq, int(t.flags))
    orig = sent.get(key)
    if orig is None:
        errors.append(f"frame not sent: {key}"); continue
    o = IP(orig)
    if method in ("DR", "TUN"):
        # Unchanged but for the TTL (rvs forwards like a router: TTL - 1,
        # header checksum updated).
        dec = IP(orig); dec.ttl -= 1; dec.chksum = None
        got = bytes(inner)[:inner.len]
        if got != orig and got != bytes(dec):
            errors.append(f"{method}: IP packet changed for {key}: {orig.hex()} -> {got.hex()}")
    else:
        if inner.dst != rs_ip or t.dport != rs_port or inner.src != o.src:
            errors.append(f"NAT: {inner.src}:{t.sport}->{inner.dst}:{t.dport}")
        e = valid(inner)
        if e: errors.append("NAT " + e)
if errors:
    print("\n".join(errors[:20])); sys.exit(1)
print(f"{method}: {len(frames)} frames out, {len(sample)} sampled and checked")
"#;

/// One DPDK process set at a time: the tests below run in parallel threads.
static DPDK: Mutex<()> = Mutex::new(());

/// Fail at once, saying what is missing: these tests are opted into
/// (`--ignored`), so a missing piece is an error, never a pass.
fn require_root_testpmd_scapy() {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    assert!(root, "throughput_quick needs root (DPDK, memif)");
    assert!(
        Command::new("/usr/bin/python3")
            .args(["-c", "import scapy.all"])
            .status()
            .is_ok_and(|s| s.success()),
        "throughput_quick needs /usr/bin/python3 with scapy (python3-scapy; scripts/deps installs it)"
    );
    assert!(
        testpmd_available(),
        "throughput_quick needs dpdk-testpmd (package dpdk; scripts/deps installs it)"
    );
}

#[test]
#[ignore = "needs root, dpdk-testpmd and python3-scapy; scripts/test runs it"]
fn generator_traffic_through_rvsd() {
    let _one_at_a_time = DPDK.lock().unwrap_or_else(|e| e.into_inner());
    require_root_testpmd_scapy();
    let s = Scratch::new("quick");
    // An empty capture: the server port's receive side (nothing to read).
    let empty = s.path("empty.pcap");
    rvs::traffic::PcapWriter::new(std::fs::File::create(&empty).unwrap())
        .unwrap()
        .finish()
        .unwrap();
    let check = s.path("check.py");
    std::fs::write(&check, CHECK).unwrap();
    let frames = (FLOWS * (1 + ROUNDS)) as u64;
    for method in [Method::Dr, Method::Nat, Method::Tun] {
        let name = method.name().to_lowercase();
        let inp = write_pcaps(
            &s,
            &format!("in-{name}"),
            FLOWS,
            Traffic::SynThenAck { rounds: ROUNDS },
            1,
        );
        assert_eq!(inp[0].1, frames);
        let out = s.path(&format!("out-{name}.pcap"));
        let server = format!(
            "net_pcap1,rx_pcap={},tx_pcap={}",
            empty.display(),
            out.display()
        );
        let d = Rvsd::start(&s, &RvsdOpts::new(method, 1, 65536, &server));
        let mut g = generator(&s, &inp, &d.memif, false, true);
        let done = wait_for(40.0, || get(&d.counters(), "worker.rx") >= frames);
        // Let the last burst leave.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let c = d.counters();
        // The generator stops polling, rvsd goes, then the generator: no
        // memif side loses its peer while reading the rings.
        g.cmd("stop");
        let rep = d.stop();
        let gout = g.quit();
        assert!(
            done,
            "{}: rvsd received {} of {frames} frames\n{gout}",
            method.name(),
            get(&c, "worker.rx")
        );
        assert_eq!(get(&c, "worker.rx"), frames, "{}: {c:?}", method.name());
        assert_eq!(
            get(&c, "lb.connections"),
            FLOWS as u64,
            "{}: {c:?}",
            method.name()
        );
        // rvsd's gratuitous ARPs at start may meet a memif nobody is
        // connected to yet (tx_full, at most one per port); nothing else
        // may be dropped.
        let dropped: u64 = c
            .iter()
            .filter(|(k, _)| k.starts_with("drop."))
            .filter(|(k, _)| *k != "drop.tx_full")
            .map(|(_, v)| *v)
            .sum();
        assert_eq!(dropped, 0, "{}: drops {c:?}", method.name());
        assert!(get(&c, "drop.tx_full") <= 2, "{}: {c:?}", method.name());
        assert!(get(&c, "worker.tx") >= frames, "{}: {c:?}", method.name());
        let server_out = rep["ports"][1]["opackets"].as_u64().unwrap_or(0);
        assert!(server_out >= frames, "{}: {rep}", method.name());
        let res = Command::new("/usr/bin/python3")
            .arg(&check)
            .arg(&inp[0].0)
            .arg(&out)
            .arg(method.name())
            .arg(frames.to_string())
            .arg(RS_IP)
            .arg(RS_MAC)
            .arg(if method == Method::Nat { RS_PORT } else { 80 }.to_string())
            .arg(LB_SERVER_ADDR)
            .output()
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&res.stdout).to_string()
            + &String::from_utf8_lossy(&res.stderr);
        assert!(
            res.status.success(),
            "{}: scapy check\n{text}",
            method.name()
        );
        eprintln!("throughput_quick: {}", text.trim());
    }
}

/// `rvsgen send` at a low paced rate, each capture once, into rvsd with two
/// workers: it reports every frame sent, rvsd received exactly those, each
/// queue's frames on that queue's worker (the captures are split by RSS
/// owner as a NIC would spread them, so nothing is handed off), and the
/// latency control request reads and resets the workers' windows.
#[test]
#[ignore = "needs root, dpdk-testpmd and python3-scapy; scripts/test runs it"]
fn paced_rvsgen_through_rvsd() {
    let _one_at_a_time = DPDK.lock().unwrap_or_else(|e| e.into_inner());
    require_root_testpmd_scapy();
    const PPS: u64 = 20_000;
    let s = Scratch::new("quick-gen");
    let inp = write_pcaps(
        &s,
        "paced",
        FLOWS,
        Traffic::SynThenAck { rounds: ROUNDS },
        2,
    );
    let frames: u64 = inp.iter().map(|p| p.1).sum();
    assert_eq!(frames, (FLOWS * (1 + ROUNDS)) as u64);
    assert!(inp.iter().all(|p| p.1 > 0), "both queues have flows");
    let d = Rvsd::start(
        &s,
        &RvsdOpts::new(Method::Dr, 2, 65536, "net_null0,no-rx=1"),
    );
    let pace = Pace {
        pps: PPS,
        once: true,
        secs: 30.0,
    };
    let g = Rvsgen::spawn(&s, &inp, &d.memif, pace);
    let done = wait_for(30.0, || get(&d.counters(), "worker.rx") >= frames);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let c = d.counters();
    let lcores = d.lcores();
    // Latency windows: the traffic's bursts, then (reset, no traffic) none.
    let w1 = d.latency(true);
    let w2 = d.latency(false);
    // rvsd first: rvsgen lingers, connected and idle, until stopped.
    let rep = d.stop();
    let sum = g.stop();
    assert!(
        done,
        "rvsd received {} of {frames}: {sum}",
        get(&c, "worker.rx")
    );
    // What rvsgen says it sent.
    assert_eq!(sum["sent"].as_u64(), Some(frames), "{sum}");
    assert_eq!(sum["complete"].as_bool(), Some(true), "{sum}");
    for (q, (_, n)) in inp.iter().enumerate() {
        assert_eq!(sum["queues"][q]["sent"].as_u64(), Some(*n), "{sum}");
    }
    // Paced: no faster than asked (10 % slack), so it took at least
    // frames / PPS seconds.
    let secs = sum["seconds"].as_f64().unwrap_or(0.0);
    assert!(
        secs >= frames as f64 / PPS as f64 / 1.1,
        "{frames} frames in {secs} s at {PPS} pps: {sum}"
    );
    // What rvsd received: all of it, each queue on its own worker.
    assert_eq!(get(&c, "worker.rx"), frames, "{c:?}");
    assert_eq!(get(&c, "lb.connections"), FLOWS as u64, "{c:?}");
    assert_eq!(get(&c, "worker.handoff_out"), 0, "{c:?}");
    let dropped: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("drop."))
        .filter(|(k, _)| *k != "drop.tx_full")
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(dropped, 0, "{c:?}");
    assert!(get(&c, "drop.tx_full") <= 2, "{c:?}");
    assert!(get(&c, "worker.tx") >= frames, "{c:?}");
    assert_eq!(lcores.len(), 2);
    for (l, (_, n)) in lcores.iter().zip(&inp) {
        assert_eq!(l.rx_packets, *n, "lcore {}: {lcores:?}", l.lcore);
        assert_eq!(l.handoffs, 0, "{lcores:?}");
    }
    assert_eq!(w1.len(), 2);
    assert!(w1.iter().all(|l| l.bursts > 0 && l.p50_ns > 0), "{w1:?}");
    assert!(w2.iter().all(|l| l.bursts == 0), "{w2:?}");
    let server_out = rep["ports"][1]["opackets"].as_u64().unwrap_or(0);
    assert!(server_out >= frames, "{rep}");
    eprintln!(
        "throughput_quick: rvsgen sent {frames} frames at {PPS} pps in {secs:.3} s; rvsd received them all, {} + {} on its two workers",
        inp[0].1, inp[1].1
    );
}

// The harness's own parsing, without DPDK.
#[test]
fn median_and_sub_windows() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&[]), 0.0);
    assert_eq!(sub_windows(3.0), 4);
    assert_eq!(sub_windows(1.0), 2);
    assert_eq!(sub_windows(0.2), 1);
}

/// Two `show port stats all` reports as testpmd prints them: each
/// report's numbers, in order.
#[test]
fn port_stats_per_report() {
    let report = |rx0: u64, tx1: u64| {
        format!(
            "\n  ######################## NIC statistics for port 0  ########################\n  \
             RX-packets: {rx0}          RX-missed: 0          RX-bytes:  0\n  \
             TX-packets: 0          TX-errors: 0          TX-bytes:  0\n  \
             ######################## NIC statistics for port 1  ########################\n  \
             RX-packets: 0          RX-missed: 0          RX-bytes:  0\n  \
             TX-packets: {tx1}          TX-errors: 0          TX-bytes:  0\n  \
             ############################################################################\n"
        )
    };
    let out = format!(
        "testpmd> {}testpmd> {}testpmd> ",
        report(10, 9),
        report(20, 19)
    );
    let each = testpmd_port_stats_each(&out);
    assert_eq!(each.len(), 2);
    assert_eq!(each[0][&0].0, 10);
    assert_eq!(each[0][&1].1, 9);
    assert_eq!(each[1][&0].0, 20);
    assert_eq!(each[1][&1].1, 19);
    // The last report, as before.
    assert_eq!(testpmd_port_stats(&out)[&1].1, 19);
    assert!(testpmd_port_stats_each("no statistics").is_empty());
}
