//! Bad control input against a running rvsd: invalid JSON, an unknown op, a
//! 20 MB line without a newline, a client that never sends, 100 clients at
//! once and more than the limit. Each gets a clear error or is dropped,
//! other clients are answered at once, forwarding goes on, and
//! `rvsadm --counters` shows what the listener refused. Also: rvsadm when
//! rvsd is not running (a stale socket; rvsadm_cli.rs covers a missing one).
//!
//! The front door (issue 15): clients that trickle a byte now and then, and
//! a connect/close loop, while rvsadm keeps working; `-R` racing `-A`
//! (the acknowledged `-A` survives); a control socket rvsd cannot have (a
//! path under /proc, a regular file, a parent that is a file, another
//! rvsd's live socket): it exits non-zero within seconds and removes
//! nothing; and `-Lnc` of a long listing in bounded memory.
//!
//! rvsd needs root (the EAL's runtime directory) and the first test also
//! python3 with scapy: those are `#[ignore]`d, run with
//! `cargo test --test rvsd_control -- --ignored` (scripts/test does).
#![cfg(feature = "dpdk")]

#[path = "rvsd_common.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
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

    // The silent client is dropped after the idle deadline (10 s).
    let left = Duration::from_secs(11).saturating_sub(idle_since.elapsed());
    std::thread::sleep(left);
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle client not dropped");
    drop(idle);

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

    // More silent clients than the places (128): the ones idle longest
    // make room for the newest and are told so; nobody is refused, and
    // rvsadm, newer still, is served at once.
    let crowd: Vec<UnixStream> = (0..140).map(|_| connect(&lab)).collect();
    let t = Instant::now();
    let ln = lab.adm_ok(&["-Ln"]);
    assert!(ln.contains(V1), "{ln}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let mut told = 0;
    for c in &crowd {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match (&*c).read(&mut buf) {
            Ok(n) if n > 0 => {
                let v: Value = serde_json::from_slice(buf[..n].trim_ascii()).unwrap();
                assert_eq!(v["result"], "error", "{v}");
                assert!(s(&v["message"]).contains("to make room"), "{v}");
                told += 1;
            }
            _ => {}
        }
    }
    assert!(told >= 12, "{told} of 140 made room over 128 places");
    drop(crowd);

    // Forwarding went on all along.
    flows(&mut lab, &cmac, 50011..=50014);

    let k = lab.counters();
    assert!(k["control.idle_closed"] >= 1, "{k:?}");
    assert!(k["control.too_long"] >= 1, "{k:?}");
    assert!(k["control.evicted"] >= told, "{k:?}");
    assert_eq!(k["control.refused_busy"], 0, "{k:?}");
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

// ---- the front door (issue 15): rvsd on null devices, no veths needed

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A scratch directory and an EAL file prefix no other run uses.
fn scratch(tag: &str) -> (PathBuf, String) {
    let id = format!(
        "{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(format!("rvs-door-{id}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (dir, format!("rvsdoor{id}"))
}

/// rvsd on two `net_null` ports with its control socket at `sock`; stops
/// by itself after `max_secs`. Killed (by pid) and cleaned up in `Drop`.
struct NullRvsd {
    child: Option<Child>,
    dir: PathBuf,
    prefix: String,
    sock: PathBuf,
}

impl NullRvsd {
    fn spawn(tag: &str, sock: Option<&Path>, max_secs: u32) -> NullRvsd {
        let (dir, prefix) = scratch(tag);
        let sock = sock.map(Path::to_path_buf).unwrap_or(dir.join("rvsd.sock"));
        let cfg = dir.join("rvsd.toml");
        std::fs::write(
            &cfg,
            "[[port]]\nname = 'a'\ndevice = 'net_null0'\n[[port]]\nname = 'b'\ndevice = 'net_null1'\n",
        )
        .unwrap();
        let child = Command::new(RVSD)
            .arg("-c")
            .arg(&cfg)
            .arg("--sock")
            .arg(&sock)
            .args(["--duration", &max_secs.to_string(), "--"])
            .args([
                "-l",
                "0,1",
                "--no-huge",
                "-m",
                "256",
                "--file-prefix",
                &prefix,
            ])
            .args(["--log-level", "*:warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rvsd.err")).unwrap())
            .spawn()
            .expect("spawn rvsd");
        NullRvsd {
            child: Some(child),
            dir,
            prefix,
            sock,
        }
    }

    /// Started, and answering on its socket.
    fn start(tag: &str) -> NullRvsd {
        let mut r = NullRvsd::spawn(tag, None, 120);
        let t0 = Instant::now();
        loop {
            if let Some(st) = r.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rvsd exited early ({st}): {}", r.stderr());
            }
            if r.sock.exists() && r.adm(&["-Ln"], "").status.success() {
                return r;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "rvsd did not answer in 30 s: {}",
                r.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("rvsd.err")).unwrap_or_default()
    }

    fn adm(&self, args: &[&str], stdin: &str) -> std::process::Output {
        adm_at(&self.sock, args, stdin)
    }

    fn adm_ok(&self, args: &[&str], stdin: &str) -> String {
        let o = self.adm(args, stdin);
        assert!(
            o.status.success(),
            "rvsadm {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Its exit status, once it exits by itself within `limit`.
    fn exits_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(st) = c.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for NullRvsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("rvsd stderr:\n{}", self.stderr());
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// rvsadm against `sock`, with `stdin`, killed if it takes over 20 s.
fn adm_at(sock: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = Command::new(RVSADM)
        .args(args)
        .env("RVS_SOCK", sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvsadm");
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = c.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    c.wait_with_output().unwrap()
}

/// Clients that send a byte every two seconds hold more than every place
/// (160 over 128), coming back whenever they are dropped, and a loop
/// connects and closes as fast as it can; meanwhile rvsadm lists and
/// changes rules, every time and promptly.
#[test]
#[ignore = "needs root (DPDK EAL)"]
fn tricklers_and_churn_do_not_lock_rvsadm_out() {
    let t0 = Instant::now();
    let rvsd = NullRvsd::start("trickle");
    let done = Arc::new(AtomicBool::new(false));
    let trickler = {
        let (sock, done) = (rvsd.sock.clone(), done.clone());
        std::thread::spawn(move || {
            let mut clients: Vec<Option<UnixStream>> = (0..160).map(|_| None).collect();
            let mut reconnects = 0u32;
            while !done.load(Ordering::Relaxed) {
                for c in clients.iter_mut() {
                    if c.is_none() {
                        *c = UnixStream::connect(&sock).ok();
                        reconnects += 1;
                    }
                    if let Some(s) = c {
                        s.set_write_timeout(Some(Duration::from_millis(100)))
                            .unwrap();
                        if s.write_all(b"{").is_err() {
                            *c = None;
                        }
                    }
                    // One byte per client every ~2 s, spread out.
                    std::thread::sleep(Duration::from_micros(12_500));
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
            reconnects
        })
    };
    let churn = {
        let (sock, done) = (rvsd.sock.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                drop(UnixStream::connect(&sock));
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let mut worst = Duration::ZERO;
    let mut rounds = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(12) {
        let started = Instant::now();
        let out = rvsd.adm_ok(
            &["-A", "-t", &format!("10.9.0.{}:80", rounds + 1), "-s", "rr"],
            "",
        );
        assert!(out.is_empty(), "{out}");
        let ln = rvsd.adm_ok(&["-Ln"], "");
        assert!(ln.contains(&format!("10.9.0.{}:80", rounds + 1)), "{ln}");
        worst = worst.max(started.elapsed());
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::Relaxed);
    let reconnects = trickler.join().unwrap();
    let churned = churn.join().unwrap();
    let k = counters_at(&rvsd.sock);
    eprintln!(
        "{rounds} rounds, slowest {worst:?}; tricklers reconnected {reconnects} times, \
         {churned} connect/close; {k:?}"
    );
    assert!(rounds >= 20, "{rounds}");
    assert!(
        worst < Duration::from_secs(3),
        "slowest -A + -Ln: {worst:?}"
    );
    assert_eq!(k["control.refused_busy"], 0, "{k:?}");
    assert!(k["control.slow_closed"] > 0, "tricklers dropped: {k:?}");
    assert!(k["control.evicted"] > 0, "{k:?}");
    assert!(t0.elapsed() < Duration::from_secs(60));
}

fn counters_at(sock: &Path) -> std::collections::BTreeMap<String, u64> {
    let o = adm_at(sock, &["--counters"], "");
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `-R` used to read the rules, edit them and send the whole set back: an
/// `-A` acknowledged in between was silently undone. Now every restore is
/// applied to the rules as they are when it arrives.
#[test]
#[ignore = "needs root (DPDK EAL)"]
fn restore_racing_add_keeps_every_acknowledged_change() {
    let t0 = Instant::now();
    let rvsd = NullRvsd::start("race");
    rvsd.adm_ok(&["-A", "-t", "10.0.0.1:80", "-s", "rr"], "");
    let sock = rvsd.sock.clone();
    let restorer = std::thread::spawn(move || {
        for i in 1..=25 {
            let input = format!(
                "# round {i}\n-a -t 10.0.0.1:80 -r 10.1.0.{i}:80 -m -w {i}\n\
                 -E -t 10.0.0.1:80 -s wrr\n"
            );
            let o = adm_at(&sock, &["-R"], &input);
            assert!(o.status.success(), "-R {i}: {o:?}");
        }
    });
    let sock = rvsd.sock.clone();
    let adder = std::thread::spawn(move || {
        for i in 1..=25 {
            let vip = format!("10.0.2.{i}:80");
            let o = adm_at(&sock, &["-A", "-t", &vip, "-s", "rr"], "");
            assert!(o.status.success(), "-A {i}: {o:?}");
        }
    });
    restorer.join().unwrap();
    adder.join().unwrap();
    let saved = rvsd.adm_ok(&["-Sn"], "");
    for i in 1..=25 {
        assert!(
            saved.contains(&format!("-A -t 10.0.2.{i}:80 -s rr")),
            "acknowledged -A {i} lost:\n{saved}"
        );
        assert!(
            saved.contains(&format!("-a -t 10.0.0.1:80 -r 10.1.0.{i}:80 -m -w {i}")),
            "restored real server {i} lost:\n{saved}"
        );
    }
    // A restore whose line rvsd refuses changes nothing and names the line.
    let o = rvsd.adm(
        &["-R"],
        "-A -t 10.0.3.1:80 -s rr\n\n-A -t 10.0.2.7:80 -s rr\n",
    );
    assert_eq!(o.status.code(), Some(255), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Service already exists\nrvsadm: restore aborted at line 3; nothing was changed\n"
    );
    assert_eq!(rvsd.adm_ok(&["-Sn"], ""), saved);
    assert!(t0.elapsed() < Duration::from_secs(60));
}

/// rvsd that cannot have its control socket stops within seconds, non-zero,
/// saying why, with its workers stopped (it used to hang, deaf to SIGTERM).
fn refused_socket(tag: &str, sock: &Path) -> String {
    let mut rvsd = NullRvsd::spawn(tag, Some(sock), 60);
    let t0 = Instant::now();
    let status = rvsd.exits_within(Duration::from_secs(20));
    let err = rvsd.stderr();
    let status = status.unwrap_or_else(|| panic!("rvsd still runs after 20 s: {err}"));
    assert!(!status.success(), "{status}: {err}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(
        err.contains(&format!("rvsd: control socket {}: ", sock.display())),
        "{err}"
    );
    err
}

#[test]
#[ignore = "needs root (DPDK EAL)"]
fn rvsd_unbindable_socket_exits() {
    // Nothing can be created under /proc.
    refused_socket("proc", Path::new("/proc/rvs-no-such.sock"));
    // A parent that is a regular file.
    let (dir, _) = scratch("parent");
    let file = dir.join("file");
    std::fs::write(&file, "keep").unwrap();
    let err = refused_socket("parent", &file.join("rvsd.sock"));
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket path that names a regular file: rvsd refuses, the file stays.
#[test]
#[ignore = "needs root (DPDK EAL)"]
fn rvsd_keeps_a_regular_file_at_the_socket_path() {
    let (dir, _) = scratch("regular");
    let file = dir.join("rvsd.sock");
    std::fs::write(&file, "not a socket\n").unwrap();
    let err = refused_socket("regular", &file);
    assert!(
        err.contains(
            "the path exists and is a regular file, not a socket; rvsd does not remove it"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second rvsd on the socket of a running one: it does not take the
/// socket over; it exits, and the first one goes on serving.
#[test]
#[ignore = "needs root (DPDK EAL)"]
fn rvsd_does_not_take_over_a_live_socket() {
    let first = NullRvsd::start("live1");
    first.adm_ok(&["-A", "-t", "10.0.0.1:80", "-s", "rr"], "");
    let err = refused_socket("live2", &first.sock);
    assert!(err.contains("listens on it"), "{err}");
    let ln = first.adm_ok(&["-Ln"], "");
    assert!(ln.contains("10.0.0.1:80"), "{ln}");
    // And its socket goes with it when it stops.
    let sock = first.sock.clone();
    drop(first);
    assert!(!sock.exists());
}

/// `-Lnc` of 300 000 connections: the listing is streamed by the daemon
/// side and printed as it arrives, so rvsadm runs in a 64 MiB address
/// space (the whole answer alone is about 45 MB; decoded at once it took
/// over 600 MB).
#[test]
fn a_long_connection_listing_in_bounded_memory() {
    use rvs::control::listener::{serve, Limits};
    use rvs::control::proto::{ConnEntry, Protocol, Request, Response};
    use rvs::control::server::{bind, ConnIter, Handler};
    use std::sync::Mutex;

    const N: u32 = 300_000;
    struct Many;
    impl Handler for Many {
        fn handle(&mut self, _r: Request) -> Response {
            Response::error("only listings here")
        }
        fn connections(&mut self) -> Result<ConnIter, Response> {
            Ok(Box::new((0..N).map(|i| ConnEntry {
                protocol: Protocol::Tcp.into(),
                expire: 900,
                state: "ESTABLISHED".into(),
                client: std::net::SocketAddr::new(
                    [10, (i >> 16) as u8, (i >> 8) as u8, i as u8].into(),
                    40000,
                ),
                virtual_addr: "192.0.2.1:80".parse().unwrap(),
                destination: "198.51.100.1:80".parse().unwrap(),
                template: false,
            })))
        }
    }
    let (dir, _) = scratch("listing");
    let sock = dir.join("rvsd.sock");
    let (listener, file) = bind(&sock).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _file = file;
            let h = Arc::new(Mutex::new(Many));
            serve(listener, h, Limits::default(), stop, Arc::default()).unwrap();
        })
    };
    let t0 = Instant::now();
    let o = Command::new("prlimit")
        .arg(format!("--as={}", 64 << 20))
        .arg(RVSADM)
        .arg("-Lnc")
        .env("RVS_SOCK", &sock)
        .stdin(Stdio::null())
        .output()
        .expect("prlimit (util-linux)");
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("IPVS connection entries"));
    assert!(lines.next().unwrap().starts_with("pro expire state"));
    assert_eq!(lines.clone().count(), N as usize);
    assert_eq!(
        lines.next(),
        Some("TCP 15:00  ESTABLISHED 10.0.0.0:40000     192.0.2.1:80       198.51.100.1:80")
    );
    eprintln!("-Lnc of {N} connections in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}
