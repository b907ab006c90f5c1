//! Forwarding rate of rvsd against `dpdk-testpmd --forward-mode=io` on the
//! same virtual devices, one forwarding lcore each, in the same run.
//!
//!   cargo bench --bench forward              (10 s per run, 3 runs each)
//!   RVS_BENCH_SECS=5 RVS_BENCH_RUNS=1 cargo bench --bench forward
//!
//! Devices: two net_null ports (rx allocates 64-byte mbufs, tx frees them),
//! so the figure is the per-packet cost of the forwarding loop itself.
//! Prints Mpps for both, the ratio, and writes target/bench/forward.json.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn eal(prefix: &str) -> Vec<String> {
    [
        "-l",
        "0,1",
        "--no-huge",
        "--no-pci",
        "-m",
        "1024",
        "--file-prefix",
        prefix,
        "--log-level",
        "*:warning",
        "--vdev",
        "net_null0",
        "--vdev",
        "net_null1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn cleanup(prefix: &str) {
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}

/// rvsd for `secs`: packets its worker forwarded per second.
fn run_rvsd(secs: u64, run: u64) -> f64 {
    let prefix = format!("rvs-bench-rvsd-{}-{run}", std::process::id());
    let mut args: Vec<String> = vec![
        "--port".into(),
        "a=net_null0".into(),
        "--port".into(),
        "b=net_null1".into(),
        "--mode".into(),
        "l2fwd".into(),
        "--duration".into(),
        secs.to_string(),
        "--json".into(),
        "--".into(),
    ];
    let mut e = eal(&prefix);
    // rvsd names its ports itself (from --port); drop the --vdev pairs.
    e.truncate(e.len() - 4);
    args.extend(e);
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(&args)
        .stderr(Stdio::null())
        .output()
        .expect("rvsd runs");
    cleanup(&prefix);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!("rvsd report is not JSON ({e}): {text}");
    });
    let rx: f64 = v["lcores"]
        .as_array()
        .expect("lcores")
        .iter()
        .map(|l| l["tx"].as_f64().unwrap_or(0.0))
        .sum();
    rx / v["elapsed_s"].as_f64().expect("elapsed")
}

/// testpmd io forwarding for `secs`: the mean of its per-second Tx-pps
/// (summed over both ports), skipping the first sample (start-up).
fn run_testpmd(secs: u64, run: u64, mode: &str) -> f64 {
    let prefix = format!("rvs-bench-tp-{}-{run}", std::process::id());
    let mut args = eal(&prefix);
    args.extend(
        [
            "--",
            "--forward-mode",
            mode,
            "--auto-start",
            "--stats-period",
            "1",
            "--nb-cores",
            "1",
            "--total-num-mbufs",
            "16384",
            "--rxq",
            "1",
            "--txq",
            "1",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut child = Command::new("dpdk-testpmd")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dpdk-testpmd runs (install it with ./scripts/deps)");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Each stats block lists both ports; sum their Tx-pps per block.
        let mut block = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.trim().strip_prefix("Tx-pps:") {
                let pps: f64 = rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0.0);
                block.push(pps);
                if block.len() == 2 {
                    let _ = tx.send(block.iter().sum::<f64>());
                    block.clear();
                }
            }
        }
    });
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(secs + 1) {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(200)) {
            samples.push(s);
        }
    }
    // SIGINT lets testpmd stop its ports and release its memory.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    cleanup(&prefix);
    let useful: Vec<f64> = samples
        .iter()
        .skip(1)
        .copied()
        .filter(|&s| s > 0.0)
        .collect();
    assert!(!useful.is_empty(), "testpmd printed no rate samples");
    useful.iter().sum::<f64>() / useful.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this too; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs = env_num("RVS_BENCH_SECS", 10);
    let runs = env_num("RVS_BENCH_RUNS", 3).max(1);
    let mut tp = Vec::new();
    let mut rv = Vec::new();
    // Interleave the two so drift on a shared machine hits both alike.
    for run in 0..runs {
        tp.push(run_testpmd(secs, run, "io"));
        rv.push(run_rvsd(secs, run));
    }
    let (tp_m, rv_m) = (median(tp.clone()), median(rv.clone()));
    // On a shared machine other load only ever slows a run down, so the best
    // run is the better estimate of capability; medians are shown too.
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (tp_b, rv_b) = (best(&tp), best(&rv));
    let ratio = rv_b / tp_b;
    println!("\nL2 forwarding, net_null0 <-> net_null1, 1 forwarding lcore, 64-byte mbufs, {runs} x {secs} s");
    println!("| forwarder | Mpps (best) | Mpps (median) | runs |");
    println!("|---|---|---|---|");
    println!(
        "| dpdk-testpmd --forward-mode=io | {:.2} | {:.2} | {} |",
        tp_b / 1e6,
        tp_m / 1e6,
        fmt_runs(&tp)
    );
    println!(
        "| rvsd (L2 forward) | {:.2} | {:.2} | {} |",
        rv_b / 1e6,
        rv_m / 1e6,
        fmt_runs(&rv)
    );
    println!(
        "ratio rvsd / testpmd io (best runs): {ratio:.3} (goal >= 0.9); medians: {:.3}",
        rv_m / tp_m
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let json = serde_json::json!({
        "devices": "net_null0,net_null1", "lcores": 1, "packet_bytes": 64,
        "seconds": secs, "runs": runs,
        "testpmd_io_mpps": tp.iter().map(|x| x / 1e6).collect::<Vec<_>>(),
        "rvsd_mpps": rv.iter().map(|x| x / 1e6).collect::<Vec<_>>(),
        "ratio_best": ratio,
        "ratio_median": rv_m / tp_m,
    });
    let _ = std::fs::write(dir.join("forward.json"), format!("{json:#}\n"));
}

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{:.2}", x / 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}
