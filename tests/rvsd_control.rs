//! Bad control input against a running rvsd: invalid JSON, an unknown op, a
//! 20 MB line without a newline, a client that never sends, 100 clients at
//! once and more than the limit. Each gets a clear error or is dropped,
//! other clients are answered at once, forwarding goes on, and
//! `rvsadm --counters` shows what the listener refused. Also: rvsadm when
//! rvsd is not running (a stale socket; rvsadm_cli.rs covers a missing one).
//!
//! Needs root and /usr/bin/python3 with scapy: `#[ignore]`d, run with
//! `cargo test --test rvsd_control -- --ignored` (scripts/test does).
#![cfg(feature = "dpdk")]

#[path = "rvsd_common.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const V1: &str = "198.18.3.100";
const C1: &str = "198.18.3.2";
const R1: &str = "198.18.4.11";
const C1_MAC: &str = "02:00:00:00:03:02";
const R1_MAC: &str = "02:00:00:00:04:0b";

fn request(stream: &mut UnixStream, line: &[u8]) -> Value {
    stream.write_all(line).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut resp = String::new();
    r.read_line(&mut resp).unwrap();
    serde_json::from_str(&resp).unwrap_or_else(|e| panic!("bad response {resp:?}: {e}"))
}

fn connect(lab: &Lab) -> UnixStream {
    let s = UnixStream::connect(&lab.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// SYNs from `ports` reach R1 (NAT-rewritten); retried once.
fn flows(lab: &mut Lab, cmac: &str, ports: std::ops::RangeInclusive<u16>) {
    let (ct, st) = (lab.pairs[0].tap.clone(), lab.pairs[1].tap.clone());
    let frames: Vec<Value> = ports
        .clone()
        .map(|p| tcp(C1_MAC, cmac, (C1, p), (V1, 80), "S", 1, 0, ""))
        .collect();
    let n = frames.len();
    lab.send(&ct, frames);
    let got = lab.collect(&[&st], n, 5000, 200);
    let out = ip_frames(&got[&st]);
    assert_eq!(out.len(), n, "forwarding stopped: {out:?}");
    for f in out {
        assert_eq!(s(&f["ip"]["dst"]), R1, "{f}");
        assert_eq!(u(&f["ip"]["tcp"]["dport"]), 8080, "{f}");
        assert!(ports.contains(&(u(&f["ip"]["tcp"]["sport"]) as u16)), "{f}");
    }
}

#[test]
#[ignore = "needs root (veths, AF_PACKET) and python3-scapy; scripts/test runs it"]
fn rvsd_control_bad_input() {
    require_root_and_scapy();
    let t0 = Instant::now();
    let mut lab = Lab::new("c", 2);
    let (cd, sd) = (lab.pairs[0].dut.clone(), lab.pairs[1].dut.clone());
    let (ct, st) = (lab.pairs[0].tap.clone(), lab.pairs[1].tap.clone());
    let config = format!(
        r#"
[workers]
lcores = [1]
mbufs = 4096
[lb]
connections = 16384
[[port]]
name = "client"
device = "net_af_packet0,iface={cd}"
role = "client"
addresses = ["198.18.3.1/24"]
[[port]]
name = "server"
device = "net_af_packet1,iface={sd}"
role = "server"
addresses = ["198.18.4.1/24"]
"#
    );
    lab.start_injector();
    lab.start_rvsd(&config, &["-l", "0,1"], 90);
    let cmac = lab.mac(&cd);
    lab.arp_table(&ct, &[(C1, C1_MAC)]);
    lab.arp_table(&st, &[(R1, R1_MAC)]);
    lab.adm_line(&format!("-A -t {V1}:80 -s rr"));
    lab.adm_line(&format!("-a -t {V1}:80 -r {R1}:8080 -m"));
    flows(&mut lab, &cmac, 50001..=50004);

    // A client that connects and never sends.
    let mut idle = connect(&lab);
    let idle_since = Instant::now();

    // Others are still answered at once.
    let t = Instant::now();
    let ln = lab.adm_ok(&["-Ln"]);
    assert!(ln.contains(V1), "{ln}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Invalid JSON: an error, and the connection still serves.
    let mut c = connect(&lab);
    let r = request(&mut c, b"{this is not json\n");
    assert_eq!(r["result"], "error", "{r}");
    assert!(s(&r["message"]).starts_with("rvsd: "), "{r}");
    let r = request(&mut c, b"{\"v\":1,\"op\":\"version\"}\n");
    assert_eq!(r["result"], "version", "{r}");
    // Not UTF-8.
    let r = request(&mut c, b"\xff\xfe\n");
    assert_eq!(r["result"], "error", "{r}");
    // An unknown op.
    let r = request(&mut c, b"{\"v\":1,\"op\":\"frobnicate\"}\n");
    assert_eq!(r["result"], "error", "{r}");
    assert!(s(&r["message"]).contains("frobnicate"), "{r}");
    // A future protocol version.
    let r = request(&mut c, b"{\"v\":99,\"op\":\"version\"}\n");
    assert_eq!(r["result"], "error", "{r}");
    drop(c);

    // A 20 MB line without a newline: an error, then the connection closes.
    let c = connect(&lab);
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..20 {
            if w.write_all(&chunk).is_err() {
                return; // the daemon closed: expected
            }
        }
    });
    let mut r = BufReader::new(c);
    let mut resp = String::new();
    r.read_line(&mut resp).unwrap();
    let v: Value = serde_json::from_str(&resp).unwrap();
    assert_eq!(v["result"], "error", "{v}");
    assert!(s(&v["message"]).contains("longer than"), "{v}");
    let mut rest = Vec::new();
    let n = r.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "connection not closed after a too-long line");
    writer.join().unwrap();

    // 100 clients at once, each answered.
    let sock = lab.sock.clone();
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                request(&mut s, b"{\"v\":1,\"op\":\"list-services\"}\n")
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_ne!(r["result"], "error", "{r}");
    }

    // More silent clients than the limit (128): the extra ones are told.
    let crowd: Vec<UnixStream> = (0..140).map(|_| connect(&lab)).collect();
    std::thread::sleep(Duration::from_millis(1000));
    let mut refused = 0;
    for c in &crowd {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match (&*c).read(&mut buf) {
            Ok(n) if n > 0 => {
                let v: Value = serde_json::from_slice(buf[..n].trim_ascii()).unwrap();
                assert_eq!(v["result"], "error", "{v}");
                assert!(s(&v["message"]).contains("too many control clients"), "{v}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert!(
        refused >= 10,
        "refused {refused} of 140 over a limit of 128"
    );
    drop(crowd);
    // Served again once they are gone.
    let t = Instant::now();
    loop {
        let o = lab.adm(&["-Ln"]);
        if o.status.success() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{o:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Forwarding went on all along.
    flows(&mut lab, &cmac, 50011..=50014);

    // The silent client is dropped after the idle timeout (30 s).
    let left = Duration::from_secs(32).saturating_sub(idle_since.elapsed());
    std::thread::sleep(left);
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle client not dropped");

    let k = lab.counters();
    assert!(k["control.idle_closed"] >= 1, "{k:?}");
    assert!(k["control.too_long"] >= 1, "{k:?}");
    assert!(k["control.refused_busy"] >= refused, "{k:?}");
    assert!(k["control.accepted"] >= 100 + 140, "{k:?}");
    flows(&mut lab, &cmac, 50021..=50022);
    assert!(lab.rvsd_alive(), "{}", lab.rvsd_log());

    // rvsd stopped: rvsadm says so and fails.
    let st = lab.stop_rvsd().unwrap();
    assert!(st.success(), "rvsd exit {st}");
    let o = lab.adm(&["-Ln"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is rvsd running?"), "{err}");
    eprintln!("rvsd_control_bad_input: {:.1?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(60));
}

/// A socket file with nobody listening (rvsd killed): rvsadm fails clearly.
#[test]
fn rvsadm_stale_socket() {
    let dir = std::env::temp_dir().join(format!("rvs-itest-stale-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let p = dir.join("rvsd.sock");
    let _ = std::fs::remove_file(&p);
    drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
    assert!(p.exists());
    let o = std::process::Command::new(RVSADM)
        .args(["-Ln"])
        .env("RVS_SOCK", &p)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "rvsadm: cannot connect to rvsd at {}: is rvsd running?\n",
            p.display()
        )
    );
    assert!(o.stdout.is_empty());
}

/// A control socket rvsd cannot bind (a path under /proc) stops it at
/// start with the reason, before any worker runs; it used to hang with the
/// workers spinning.
#[test]
fn rvsd_unbindable_socket_exits() {
    let dir = std::env::temp_dir().join(format!("rvs-badsock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("rvsd.toml");
    std::fs::write(
        &cfg,
        "[control]\nsocket = '/proc/rvs-no-such.sock'\n\
         [[port]]\nname = 'a'\ndevice = 'net_null0'\n[[port]]\nname = 'b'\ndevice = 'net_null1'\n",
    )
    .unwrap();
    let prefix = format!("rvs-badsock-{}", std::process::id());
    let mut child = std::process::Command::new(RVSD)
        .arg("-c")
        .arg(&cfg)
        .args([
            "--",
            "-l",
            "0,1",
            "--no-huge",
            "-m",
            "256",
            "--file-prefix",
            &prefix,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            panic!("rvsd did not exit in 30 s with an unbindable control socket");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("control socket /proc/rvs-no-such.sock"),
        "{err}"
    );
}
