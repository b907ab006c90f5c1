//! Shared harness for the rvsd end-to-end tests (tests/rvsd_*.rs), included
//! by each with `#[path = "rvsd_common.rs"] mod common;`. (Built alone as a
//! test target too, where it has no tests.)
//!
//! A [`Lab`] makes uniquely named veth pairs in the root namespace: rvsd
//! owns one end of each through `net_af_packet`, and the test injects and
//! captures frames on the other end through `tests/fixtures/inject.py`
//! (scapy, AF_PACKET). Everything — rvsd by pid, the helper, the links,
//! `/var/run/dpdk/<prefix>`, the socket — is removed in `Drop`, so failing
//! tests clean up too.
//!
//! The frames never reach another host: the veths have no addresses, no ARP
//! (`arp off`), no IPv6, and IPv4 forwarding is off on them.
#![cfg(feature = "dpdk")]
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
pub const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

/// Fail at once, saying what is missing, when the machine cannot run these
/// tests: they are opted into (`--ignored`), so a missing piece is an error,
/// never a pass.
pub fn require_root_and_scapy() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(root, "this test needs root (veths, AF_PACKET)");
    assert!(
        Path::new("/usr/bin/python3").exists()
            && Command::new("/usr/bin/python3")
                .args(["-c", "import scapy"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
        "this test needs /usr/bin/python3 with scapy (python3-scapy; scripts/deps installs it)"
    );
}

fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn must(cmd: &str, args: &[&str]) {
    let o = sh(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One veth pair: `dut` is rvsd's end, `tap` the test's.
pub struct Pair {
    pub dut: String,
    pub tap: String,
}

/// The test's world: veth pairs, rvsd, the injector.
pub struct Lab {
    pub id: String,
    pub pairs: Vec<Pair>,
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub prefix: String,
    rvsd: Option<Child>,
    inject: Option<Injector>,
}

pub struct Injector {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Lab {
    /// `n` veth pairs named after `tag` (a letter or two), the process id
    /// and a counter, so that concurrent runs never collide.
    pub fn new(tag: &str, n: usize) -> Lab {
        let id = format!(
            "{tag}{:x}{}",
            std::process::id() & 0xfffff,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("rvs-itest-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            sock: dir.join("rvsd.sock"),
            prefix: format!("rvsit{id}"),
            id: id.clone(),
            pairs: Vec::new(),
            dir,
            rvsd: None,
            inject: None,
        };
        for i in 0..n {
            let dut = format!("rv{id}d{i}");
            let tap = format!("rv{id}t{i}");
            assert!(dut.len() <= 15, "interface name {dut} too long");
            must(
                "ip",
                &["link", "add", &dut, "type", "veth", "peer", "name", &tap],
            );
            lab.pairs.push(Pair {
                dut: dut.clone(),
                tap: tap.clone(),
            });
            for ifc in [&dut, &tap] {
                let _ = sh(
                    "sysctl",
                    &["-qw", &format!("net.ipv6.conf.{ifc}.disable_ipv6=1")],
                );
                let _ = sh(
                    "sysctl",
                    &["-qw", &format!("net.ipv4.conf.{ifc}.forwarding=0")],
                );
                must("ip", &["link", "set", ifc, "arp", "off"]);
                must("ip", &["link", "set", ifc, "promisc", "on"]);
                must("ip", &["link", "set", ifc, "up"]);
                let _ = sh(
                    "ethtool",
                    &[
                        "-K", ifc, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                    ],
                );
            }
        }
        lab
    }

    pub fn mac(&self, ifc: &str) -> String {
        std::fs::read_to_string(format!("/sys/class/net/{ifc}/address"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Start rvsd with `config` (TOML) and extra EAL arguments (after the
    /// common `--no-huge --no-pci -m 512 --file-prefix`); wait until its
    /// socket answers. rvsd stops by itself after `max_secs`.
    pub fn start_rvsd(&mut self, config: &str, eal: &[&str], max_secs: u32) {
        let cfg = self.dir.join("rvsd.toml");
        std::fs::write(&cfg, config).unwrap();
        let out = std::fs::File::create(self.dir.join("rvsd.out")).unwrap();
        let err = std::fs::File::create(self.dir.join("rvsd.err")).unwrap();
        let mut args: Vec<String> = vec![
            "-c".into(),
            cfg.display().to_string(),
            "--sock".into(),
            self.sock.display().to_string(),
            "--duration".into(),
            max_secs.to_string(),
            "--".into(),
        ];
        args.extend(eal.iter().map(|s| s.to_string()));
        args.extend(
            [
                "--no-huge",
                "--no-pci",
                "-m",
                "512",
                "--file-prefix",
                &self.prefix,
                "--log-level",
                "*:warning",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let child = Command::new(RVSD)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn rvsd");
        self.rvsd = Some(child);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.rvsd.as_mut().unwrap().try_wait().unwrap() {
                panic!("rvsd exited early ({st}):\n{}", self.rvsd_log());
            }
            if self.sock.exists() && self.adm(&["-Ln"]).status.success() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "rvsd did not open its socket in 30 s:\n{}",
                self.rvsd_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn rvsd_pid(&self) -> Option<u32> {
        self.rvsd.as_ref().map(|c| c.id())
    }

    /// True while rvsd runs.
    pub fn rvsd_alive(&mut self) -> bool {
        matches!(self.rvsd.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn rvsd_log(&self) -> String {
        let r = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!("--- stdout\n{}--- stderr\n{}", r("rvsd.out"), r("rvsd.err"))
    }

    /// Run rvsadm against this lab's rvsd.
    pub fn adm(&self, args: &[&str]) -> Output {
        Command::new(RVSADM)
            .args(args)
            .env("RVS_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("run rvsadm")
    }

    /// rvsadm that must succeed; its stdout.
    pub fn adm_ok(&self, args: &[&str]) -> String {
        let o = self.adm(args);
        assert!(
            o.status.success(),
            "rvsadm {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run an ipvsadm-style command line given as one string.
    pub fn adm_line(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.adm_ok(&args)
    }

    /// `rvsadm --counters` as (name, value) pairs.
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let text = self.adm_ok(&["--counters"]);
        let mut m = std::collections::BTreeMap::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            if let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) {
                if let Ok(v) = v.parse() {
                    m.insert(k.trim_end_matches(':').to_string(), v);
                }
            }
        }
        m
    }

    /// Start the injector on the test ends of every pair.
    pub fn start_injector(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inject.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(self.pairs.iter().map(|p| p.tap.as_str()))
            .env("RVS_INJECT_TIMEOUT", "150")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn inject.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut inj = Injector {
            child,
            stdin,
            stdout,
        };
        let mut line = String::new();
        inj.stdout.read_line(&mut line).unwrap();
        assert!(line.contains("ready"), "inject.py did not start: {line:?}");
        self.inject = Some(inj);
    }

    /// One request to the injector.
    pub fn inj(&mut self, req: Value) -> Value {
        let inj = self.inject.as_mut().expect("injector not started");
        writeln!(inj.stdin, "{req}").unwrap();
        inj.stdin.flush().unwrap();
        let mut line = String::new();
        inj.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("inject.py answered {line:?}: {e}"));
        assert_eq!(v["ok"], true, "inject.py: {v}");
        v
    }

    /// Answer ARP who-has for these addresses on `iface`.
    pub fn arp_table(&mut self, iface: &str, table: &[(&str, &str)]) {
        let t: serde_json::Map<String, Value> = table
            .iter()
            .map(|(ip, mac)| (ip.to_string(), json!(mac)))
            .collect();
        self.inj(json!({"op": "arp", "iface": iface, "table": t}));
    }

    /// Send frames (specs, see inject.py); the IP lengths of what was sent.
    pub fn send(&mut self, iface: &str, frames: Vec<Value>) -> Vec<u64> {
        let v = self.inj(json!({"op": "send", "iface": iface, "frames": frames}));
        v["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ip_len"].as_u64().unwrap())
            .collect()
    }

    /// Wait for `ip` IPv4 frames on `ifaces` (at most `ms`), then `linger`
    /// ms more; every frame seen, per interface.
    pub fn collect(
        &mut self,
        ifaces: &[&str],
        ip: usize,
        ms: u64,
        linger: u64,
    ) -> std::collections::BTreeMap<String, Vec<Value>> {
        let v = self
            .inj(json!({"op": "collect", "ifaces": ifaces, "ms": ms, "ip": ip, "linger": linger}));
        v["frames"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_array().unwrap().clone()))
            .collect()
    }

    pub fn clear(&mut self) {
        self.inj(json!({"op": "clear"}));
    }

    /// Stop rvsd (SIGTERM, then SIGKILL after 10 s); its exit status.
    pub fn stop_rvsd(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.rvsd.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut inj) = self.inject.take() {
            let _ = writeln!(inj.stdin, "{}", json!({"op": "quit"}));
            drop(inj.stdin);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(2) {
                if let Ok(Some(_)) = inj.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = inj.child.kill();
            let _ = inj.child.wait();
        }
        self.stop_rvsd();
        for p in &self.pairs {
            let _ = sh("ip", &["link", "del", &p.dut]);
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
        let _ = std::fs::remove_file(&self.sock);
        if std::thread::panicking() {
            eprintln!("rvsd log ({}):\n{}", self.dir.display(), self.rvsd_log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP frame spec for inject.py.
// One argument per field of the segment: the call sites read as a packet.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    eth_src: &str,
    eth_dst: &str,
    src: (&str, u16),
    dst: (&str, u16),
    flags: &str,
    seq: u32,
    ack: u32,
    payload: &str,
) -> Value {
    json!({
        "eth": {"src": eth_src, "dst": eth_dst},
        "ip": {"src": src.0, "dst": dst.0, "ttl": 64},
        "tcp": {"sport": src.1, "dport": dst.1, "flags": flags, "seq": seq, "ack": ack},
        "payload": payload,
    })
}

/// A who-has ARP request spec.
pub fn arp_request(eth_src: &str, psrc: &str, pdst: &str) -> Value {
    json!({
        "eth": {"src": eth_src, "dst": "ff:ff:ff:ff:ff:ff"},
        "arp": {"op": 1, "hwsrc": eth_src, "psrc": psrc, "pdst": pdst},
    })
}

/// The IPv4 frames among `frames`.
pub fn ip_frames(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f.get("ip").is_some()).collect()
}

/// The TCP frames among `frames` (IPIP included through "inner").
pub fn tcp_of(f: &Value) -> &Value {
    let ip = &f["ip"];
    if ip.get("inner").is_some() {
        &ip["inner"]["tcp"]
    } else {
        &ip["tcp"]
    }
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(u64::MAX)
}
