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
//! The harness module is shared with tests/throughput_quick.rs (the quick
//! correctness mode run by ./scripts/test).

#![allow(clippy::print_stdout)]

pub mod harness {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    use std::io::{BufRead, BufReader, BufWriter, Read, Write};
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use rvs::control::client::Client;
    use rvs::control::proto::{Request, Response};
    use rvs::gen::{tcp_frame, FlowSpec, PcapWriter};
    use rvs::rss::{OwnerMap, Reta};
    use rvs::wire::fuzz::XorShift;

    pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    pub const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
    pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    /// rvsd's client-facing (memif) MAC.
    pub const LB_MAC: &str = "02:00:00:00:00:fe";
    pub const LB_MAC_BYTES: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
    pub const LB_SERVER_ADDR: &str = "10.0.1.1";
    pub const RS_IP: &str = "10.0.1.11";
    pub const RS_MAC: &str = "02:00:00:00:01:11";
    /// The real server's port (NAT rewrites 80 to it).
    pub const RS_PORT: u16 = 8080;
    /// The redirection table size rvsd uses when a port reports none (memif).
    pub const RETA_SIZE: usize = 128;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Method {
        Nat,
        Dr,
        Tun,
    }

    impl Method {
        pub fn name(self) -> &'static str {
            match self {
                Method::Nat => "NAT",
                Method::Dr => "DR",
                Method::Tun => "TUN",
            }
        }
        fn flag(self) -> &'static str {
            match self {
                Method::Nat => "-m",
                Method::Dr => "-g",
                Method::Tun => "-i",
            }
        }
        /// ipvsadm-save rules: one TCP service, one real server.
        pub fn rules(self) -> String {
            format!(
                "-A -t {VIP}:80 -s rr\n-a -t {VIP}:80 -r {RS_IP}:{} {} -w 1\n",
                if self == Method::Nat { RS_PORT } else { 80 },
                self.flag()
            )
        }
    }

    /// A scratch directory with a unique name; removed (with the EAL
    /// runtime directories registered in it) on drop.
    pub struct Scratch {
        pub dir: PathBuf,
        pub uid: String,
        prefixes: Mutex<Vec<String>>,
        seq: Mutex<u32>,
    }

    impl Scratch {
        pub fn new(tag: &str) -> Scratch {
            // scripts/bench names the run (RVS_BENCH_TAG) so that it can
            // clean up after an interrupted run.
            let uid = match std::env::var("RVS_BENCH_TAG") {
                Ok(t) if !t.is_empty() => format!("{tag}-{t}"),
                _ => format!("{tag}-{}", std::process::id()),
            };
            let dir = std::env::temp_dir().join(format!("rvs-{uid}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch directory");
            Scratch {
                dir,
                uid,
                prefixes: Mutex::new(Vec::new()),
                seq: Mutex::new(0),
            }
        }
        pub fn path(&self, name: &str) -> PathBuf {
            self.dir.join(name)
        }
        /// A fresh EAL file prefix, cleaned up with the scratch directory.
        pub fn prefix(&self, what: &str) -> String {
            let mut s = self.seq.lock().unwrap();
            *s += 1;
            let p = format!("rvs-{}-{what}{}", self.uid, *s);
            self.prefixes.lock().unwrap().push(p.clone());
            p
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            for p in self.prefixes.lock().unwrap().iter() {
                let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub fn spec(flows: u32) -> FlowSpec {
        FlowSpec {
            flows,
            ports_per_client: 1,
            client_base: CLIENT_BASE,
            vip: VIP,
            vport: 80,
            src_mac: CLIENT_MAC,
            dst_mac: LB_MAC_BYTES,
            frame_len: 60,
            seed: 1,
        }
    }

    /// Which of `queues` workers owns flow `k` (as a NIC's RSS on the
    /// client's address and port would spread it, mirrored by rvsd).
    pub struct Split {
        owner: Option<OwnerMap>,
    }

    impl Split {
        pub fn new(queues: u16) -> Split {
            Split {
                owner: (queues > 1).then(|| {
                    OwnerMap::new(rvs::rss::DEFAULT_KEY, Reta::round_robin(RETA_SIZE, queues))
                }),
            }
        }
        pub fn queue(&self, spec: &FlowSpec, k: u32) -> usize {
            match &self.owner {
                None => 0,
                Some(o) => {
                    let (ip, port) = spec.client(k);
                    o.owner(IpAddr::V4(ip), port) as usize
                }
            }
        }
    }

    /// Traffic to write: SYNs (one per flow, flow order) or ACK rounds
    /// (every flow once per round, a fresh random order each round).
    #[derive(Clone, Copy, Debug)]
    pub enum Traffic {
        Syn,
        Ack {
            rounds: u32,
        },
        /// SYN per flow then `rounds` ACK rounds (the quick mode, played once).
        SynThenAck {
            rounds: u32,
        },
    }

    /// Writes `traffic` of `flows` flows as one pcap per queue
    /// (`{name}.q{i}.pcap`); returns the files and frames per file.
    pub fn write_pcaps(
        s: &Scratch,
        name: &str,
        flows: u32,
        traffic: Traffic,
        queues: u16,
    ) -> Vec<(PathBuf, u64)> {
        let spec = spec(flows);
        let split = Split::new(queues);
        let owner: Vec<u8> = (0..flows).map(|k| split.queue(&spec, k) as u8).collect();
        let files: Vec<PathBuf> = (0..queues)
            .map(|q| s.path(&format!("{name}.q{q}.pcap")))
            .collect();
        let mut w: Vec<PcapWriter<BufWriter<std::fs::File>>> = files
            .iter()
            .map(|f| {
                PcapWriter::new(BufWriter::new(std::fs::File::create(f).expect("pcap")))
                    .expect("pcap header")
            })
            .collect();
        let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut order: Vec<u32> = (0..flows).collect();
        let syn = |w: &mut Vec<PcapWriter<_>>| {
            for k in 0..flows {
                w[owner[k as usize] as usize]
                    .write(&tcp_frame(&spec, k, 0x02, 1000, 0, 0))
                    .expect("pcap write");
            }
        };
        let mut acks = |w: &mut Vec<PcapWriter<_>>, rounds: u32| {
            for r in 0..rounds {
                for i in (1..order.len()).rev() {
                    let j = rng.below(i + 1);
                    order.swap(i, j);
                }
                for &k in &order {
                    w[owner[k as usize] as usize]
                        .write(&tcp_frame(&spec, k, 0x10, 1001 + r, 5001, 0))
                        .expect("pcap write");
                }
            }
        };
        match traffic {
            Traffic::Syn => syn(&mut w),
            Traffic::Ack { rounds } => acks(&mut w, rounds),
            Traffic::SynThenAck { rounds } => {
                syn(&mut w);
                acks(&mut w, rounds);
            }
        }
        files
            .into_iter()
            .zip(w)
            .map(|(f, w)| (f, w.finish().expect("pcap flush")))
            .collect()
    }

    /// Reads a child's output in the background.
    fn collect(mut r: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
        let out = Arc::new(Mutex::new(String::new()));
        let o = out.clone();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (out, h)
    }

    fn interrupt(pid: u32) {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }

    /// Waits for `child` at most `grace`, then kills it.
    fn reap(child: &mut Child, grace: Duration) {
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn wait_for(secs: f64, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            if f() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `dpdk-testpmd` in interactive mode, driven through its stdin.
    pub struct Testpmd {
        child: Child,
        stdin: Option<ChildStdin>,
        out: Arc<Mutex<String>>,
        reader: Option<JoinHandle<()>>,
    }

    pub fn testpmd_available() -> bool {
        Command::new("sh")
            .args(["-c", "command -v dpdk-testpmd"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    impl Testpmd {
        pub fn spawn(eal: &[String], app: &[String]) -> Testpmd {
            let mut child = Command::new("dpdk-testpmd")
                .args(eal)
                .arg("--")
                .arg("-i")
                .args(app)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("dpdk-testpmd runs");
            let stdin = child.stdin.take();
            let (out, reader) = collect(child.stdout.take().unwrap());
            let err = child.stderr.take().unwrap();
            let o2 = out.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(err).lines().map_while(Result::ok) {
                    o2.lock().unwrap().push_str(&format!("{l}\n"));
                }
            });
            Testpmd {
                child,
                stdin,
                out,
                reader: Some(reader),
            }
        }

        pub fn cmd(&mut self, line: &str) {
            if let Some(s) = self.stdin.as_mut() {
                let _ = writeln!(s, "{line}");
                let _ = s.flush();
            }
        }

        pub fn alive(&mut self) -> bool {
            matches!(self.child.try_wait(), Ok(None))
        }

        /// `stop` and `quit`; everything it printed.
        pub fn quit(mut self) -> String {
            self.finish()
        }

        fn finish(&mut self) -> String {
            self.cmd("stop");
            self.cmd("quit");
            self.stdin.take();
            reap(&mut self.child, Duration::from_secs(15));
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
            self.out.lock().unwrap().clone()
        }
    }

    impl Drop for Testpmd {
        fn drop(&mut self) {
            if self.stdin.is_some() {
                self.finish();
            }
        }
    }

    /// Per-port counters from testpmd's `show port stats all` (the last
    /// report), by port index: (RX-packets, TX-packets).
    pub fn testpmd_port_stats(out: &str) -> BTreeMap<u16, (u64, u64)> {
        let mut m = BTreeMap::new();
        let mut port = None;
        for line in out.lines() {
            let l = line.trim();
            if let Some(rest) = l.strip_prefix("######################## NIC statistics for port") {
                port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
            } else if let Some(p) = port {
                let num = |key: &str| -> Option<u64> {
                    let i = l.find(key)?;
                    l[i + key.len()..].split_whitespace().next()?.parse().ok()
                };
                let e = m.entry(p).or_insert((0, 0));
                if let Some(v) = num("RX-packets:") {
                    e.0 = v;
                }
                if let Some(v) = num("TX-packets:") {
                    e.1 = v;
                }
            }
        }
        m
    }

    /// TX-dropped summed over the generator's "Forward statistics" blocks
    /// (the accumulated block excluded): packets the ring refused.
    pub fn testpmd_tx_dropped(out: &str) -> u64 {
        let mut total = 0;
        let mut in_port_block = false;
        for l in out.lines() {
            if l.contains("Forward statistics for port") {
                in_port_block = true;
            } else if l.contains("Accumulated forward statistics") {
                in_port_block = false;
            }
            if in_port_block {
                if let Some(i) = l.find("TX-dropped:") {
                    total += l[i + 11..]
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        total
    }

    pub fn memif(role: &str, sock: &Path) -> String {
        format!(
            "net_memif0,role={role},socket={},socket-abstract=no,id=0{}",
            sock.display(),
            if role == "server" {
                format!(",mac={LB_MAC}")
            } else {
                String::new()
            }
        )
    }

    /// EAL arguments of a device under test (rvsd or testpmd forwarding):
    /// on hugepages when scripts/bench mounted them (RVS_BENCH_HUGE_DIR),
    /// as a deployment runs; else as [`eal`].
    pub fn dut_eal(lcores: &str, mem_mb: u64, prefix: &str) -> Vec<String> {
        let mut e = eal(lcores, mem_mb, prefix);
        if let Some(dir) = huge_dir() {
            if let Some(i) = e.iter().position(|a| a == "--no-huge") {
                e.splice(i..i + 1, ["--huge-dir".to_string(), dir]);
            }
        }
        e
    }

    /// The hugetlbfs mount scripts/bench set up for the devices under test.
    pub fn huge_dir() -> Option<String> {
        std::env::var("RVS_BENCH_HUGE_DIR")
            .ok()
            .filter(|d| !d.is_empty())
    }

    pub fn eal(lcores: &str, mem_mb: u64, prefix: &str) -> Vec<String> {
        [
            "--lcores",
            lcores,
            "--no-huge",
            "--no-pci",
            "-m",
            &mem_mb.to_string(),
            "--file-prefix",
            prefix,
            "--log-level",
            "*:warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The generator: net_pcap replaying `pcaps` (one per queue) into the
    /// memif client at `sock`, one forwarding lcore on cpu 0. `retry`: wait
    /// for room in the ring instead of dropping (lossless, for SYN phases).
    pub fn generator(
        s: &Scratch,
        pcaps: &[(PathBuf, u64)],
        sock: &Path,
        infinite: bool,
        retry: bool,
    ) -> Testpmd {
        let frames: u64 = pcaps.iter().map(|p| p.1).sum();
        let queues = pcaps.len();
        let mut pcap = String::from("net_pcap0");
        for (f, _) in pcaps {
            write!(pcap, ",rx_pcap={}", f.display()).unwrap();
        }
        if infinite {
            pcap.push_str(",infinite_rx=1");
        }
        // Every frame of an infinite capture sits in an mbuf of the pool.
        let mbufs = if infinite { frames + 65536 } else { 65536 };
        let mem = 512 + mbufs * 640 / (1 << 20);
        let mut e = eal("0@0,1@0", mem, &s.prefix("gen"));
        e.extend([
            "--vdev".into(),
            pcap,
            "--vdev".into(),
            memif("client", sock),
        ]);
        let app: Vec<String> = vec![
            "--nb-cores=1".into(),
            format!("--rxq={queues}"),
            format!("--txq={queues}"),
            format!("--total-num-mbufs={mbufs}"),
            "--mbuf-size=256".into(),
            // testpmd empties its RX queues at `start`: that would eat a
            // capture played once.
            "--no-flush-rx".into(),
        ];
        let mut g = Testpmd::spawn(&e, &app);
        if retry {
            // Wait for room in 1 µs steps, up to 200 ms per burst: nothing
            // is lost even behind a slow (debug) rvsd, and a fast one is
            // not left idle by a coarse back-off.
            g.cmd("set burst tx delay 1 retry 200000");
            g.cmd("set fwd io retry");
        } else {
            g.cmd("set fwd io");
        }
        g.cmd("start");
        g
    }

    /// rvsd's worker cpus: worker `i` on cpu 1 (all of them: the machine
    /// this was written on has two cores and the generator owns cpu 0).
    pub fn dut_lcores(workers: u16) -> String {
        let mut l = String::from("0@0");
        for w in 1..=workers {
            write!(l, ",{w}@1").unwrap();
        }
        l
    }

    pub struct RvsdOpts<'a> {
        pub method: Method,
        pub workers: u16,
        pub connections: u64,
        pub server_device: &'a str,
    }

    pub struct Rvsd {
        child: Child,
        pub sock: PathBuf,
        pub memif: PathBuf,
        out: Arc<Mutex<String>>,
        err: Arc<Mutex<String>>,
        readers: Vec<JoinHandle<()>>,
        stopped: bool,
    }

    impl Rvsd {
        pub fn start(s: &Scratch, o: &RvsdOpts) -> Rvsd {
            let tag = s.prefix("rvsd");
            let sock = s.path(&format!("{tag}.sock"));
            let memif_sock = s.path(&format!("{tag}.memif"));
            let lcores: Vec<String> = (1..=o.workers).map(|w| w.to_string()).collect();
            let cfg = format!(
                r#"[workers]
lcores = [{lc}]
mbufs = 65535

[lb]
connections = {conns}

[[port]]
name = "client"
device = "{client}"
role = "client"
addresses = ["10.0.0.1/24"]

[[port]]
name = "server"
device = "{server}"
role = "server"
addresses = ["{LB_SERVER_ADDR}/24"]

[[neighbor]]
address = "{RS_IP}"
mac = "{RS_MAC}"
port = "server"
"#,
                lc = lcores.join(", "),
                conns = o.connections,
                client = memif("server", &memif_sock),
                server = o.server_device,
            );
            let cfg_path = s.path(&format!("{tag}.toml"));
            std::fs::write(&cfg_path, cfg).unwrap();
            let rules = s.path(&format!("{tag}.rules"));
            std::fs::write(&rules, o.method.rules()).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_rvsd"))
                .arg("-c")
                .arg(&cfg_path)
                .arg("--sock")
                .arg(&sock)
                .arg("--restore")
                .arg(&rules)
                .args(["--latency", "--json", "--"])
                .args(dut_eal(&dut_lcores(o.workers), 1024, &tag))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("rvsd runs");
            let (out, r1) = collect(child.stdout.take().unwrap());
            let (err, r2) = collect(child.stderr.take().unwrap());
            let mut r = Rvsd {
                child,
                sock,
                memif: memif_sock,
                out,
                err,
                readers: vec![r1, r2],
                stopped: false,
            };
            let up = wait_for(60.0, || {
                r.sock.exists() && r.memif.exists() || !matches!(r.child.try_wait(), Ok(None))
            });
            assert!(
                up && matches!(r.child.try_wait(), Ok(None)),
                "rvsd did not come up: {}",
                r.err.lock().unwrap()
            );
            r
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        pub fn counters(&self) -> BTreeMap<String, u64> {
            let mut c = Client::connect(&self.sock).unwrap_or_else(|e| {
                panic!("rvsd control socket: {e}\n{}", self.err.lock().unwrap())
            });
            match c.request(&Request::Counters).expect("counters") {
                Response::Counters { counters } => counters,
                other => panic!("unexpected answer to counters: {other:?}"),
            }
        }

        /// Resident memory (kB) of rvsd.
        pub fn rss_kb(&self) -> u64 {
            std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        }

        /// SIGINT; the JSON exit report.
        pub fn stop(mut self) -> serde_json::Value {
            self.stopped = true;
            interrupt(self.pid());
            reap(&mut self.child, Duration::from_secs(20));
            for r in self.readers.drain(..) {
                let _ = r.join();
            }
            let out = self.out.lock().unwrap().clone();
            serde_json::from_str(out.trim()).unwrap_or_else(|e| {
                panic!(
                    "rvsd's report is not JSON ({e}): {out}\n{}",
                    self.err.lock().unwrap()
                )
            })
        }
    }

    impl Drop for Rvsd {
        fn drop(&mut self) {
            if !self.stopped {
                interrupt(self.pid());
                reap(&mut self.child, Duration::from_secs(10));
            }
        }
    }

    pub fn get(c: &BTreeMap<String, u64>, k: &str) -> u64 {
        c.get(k).copied().unwrap_or(0)
    }
}

use std::time::{Duration, Instant};

use harness::*;
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
        "dut_memory": if huge_dir().is_some() { "2 MiB hugepages" } else { "4 KiB pages (--no-huge)" },
    })
}

/// The testpmd ceiling: io or macswap between the memif server and null.
fn testpmd_row(
    s: &Scratch,
    mode: &str,
    workers: u16,
    secs: f64,
    ack: &[(std::path::PathBuf, u64)],
) -> Value {
    let sock = s.path(&format!("tp-{mode}-{workers}.memif"));
    let mut e = dut_eal(&dut_lcores(workers), 1024, &s.prefix("fwd"));
    e.extend([
        "--vdev".into(),
        memif("server", &sock),
        "--vdev".into(),
        NULL_DEV.into(),
    ]);
    let app = vec![
        format!("--nb-cores={workers}"),
        format!("--rxq={workers}"),
        format!("--txq={workers}"),
        "--total-num-mbufs=65536".into(),
    ];
    let mut fwd = Testpmd::spawn(&e, &app);
    fwd.cmd(&format!("set fwd {mode}"));
    fwd.cmd("start");
    assert!(wait_for(30.0, || sock.exists()), "testpmd memif server");
    let gen = generator(s, ack, &sock, true, false);
    std::thread::sleep(Duration::from_secs(2));
    fwd.cmd("clear port stats all");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    fwd.cmd("show port stats all");
    let dt = t0.elapsed().as_secs_f64();
    let gout = gen.quit();
    let out = fwd.quit();
    let st = testpmd_port_stats(&out);
    let (rx, _) = st.get(&0).copied().unwrap_or_default();
    let (_, tx) = st.get(&1).copied().unwrap_or_default();
    let mut r = row_base(&format!("testpmd {mode}"), "testpmd", workers, 1000);
    r["mpps"] = json!(tx as f64 / dt / 1e6);
    r["rx_mpps"] = json!(rx as f64 / dt / 1e6);
    r["seconds"] = json!(dt);
    r["gen_tx_dropped"] = json!(testpmd_tx_dropped(&gout));
    r
}

fn latency(rep: &Value) -> Value {
    // The worst worker's percentiles.
    let mut best = json!(null);
    let mut worst = -1.0;
    for l in rep["burst_latency"].as_array().into_iter().flatten() {
        let p = l["p99_ns"].as_f64().unwrap_or(0.0);
        if p > worst {
            worst = p;
            best = json!({"p50_ns": l["p50_ns"], "p99_ns": l["p99_ns"], "p999_ns": l["p999_ns"], "max_ns": l["max_ns"], "bursts": l["bursts"]});
        }
    }
    best
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
fn established_row(s: &Scratch, method: Method, workers: u16, flows: u32, secs: f64) -> Value {
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
        &format!("ack{flows}w{workers}"),
        flows,
        Traffic::Ack { rounds },
        workers,
    );
    let conns = (flows as u64 / workers as u64 + 1)
        .next_power_of_two()
        .max(1 << 16);
    let d = Rvsd::start(
        s,
        &RvsdOpts {
            method,
            workers,
            connections: conns,
            server_device: NULL_DEV,
        },
    );
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
    let c0 = d.counters();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let c1 = d.counters();
    let dt = t0.elapsed().as_secs_f64();
    let gout = g2.quit();
    let rep = d.stop();
    let delta = |k: &str| get(&c1, k).saturating_sub(get(&c0, k));
    let drops: u64 = c1
        .iter()
        .filter(|(k, _)| k.starts_with("lb.drop.") || k.starts_with("worker.drop."))
        .map(|(k, _)| delta(k))
        .sum();
    let flows_label = if flows >= 1_000_000 {
        format!("{}M", flows / 1_000_000)
    } else {
        format!("{}k", flows / 1000)
    };
    let mut r = row_base(
        &format!("{} established {flows_label}", method.name()),
        "rvsd",
        workers,
        flows as u64,
    );
    r["method"] = json!(method.name());
    r["mpps"] = json!(delta("worker.tx") as f64 / dt / 1e6);
    r["rx_mpps"] = json!(delta("worker.rx") as f64 / dt / 1e6);
    r["seconds"] = json!(dt);
    r["drops_in_window"] = json!(drops);
    r["handoffs_in_window"] = json!(delta("worker.handoff_out"));
    r["connections"] = json!(get(&c1, "lb.connections"));
    r["all_opened"] = json!(opened);
    r["open_seconds"] = json!(open_s);
    r["burst_latency"] = latency(&rep);
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
    });
    r
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
    let d = Rvsd::start(
        s,
        &RvsdOpts {
            method,
            workers,
            connections: conns,
            server_device: NULL_DEV,
        },
    );
    let g = generator(s, &syn, &d.memif, true, true);
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
    let gout = g.quit();
    let rep = d.stop();
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

fn fmt_lat(r: &Value) -> String {
    let l = &r["burst_latency"];
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
    s.push_str("| row | workers | devices | lcores | bytes | flows | rate (DUT's own counters) | vs testpmd macswap | burst p50 / p99 / p99.9 µs | generator TX refused | load 1m |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
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
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
            r["name"].as_str().unwrap_or(""),
            r["workers"],
            r["devices"].as_str().unwrap_or(""),
            dut_lcores(r["workers"].as_u64().unwrap_or(1) as u16),
            r["packet_bytes"],
            r["flows"],
            rate,
            ratio,
            fmt_lat(r),
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
                    "\nmemory per connection at {} connections ({} worker(s)): {:.1} bytes of connection table per connection ({:.1} per slot of {} slots), resident memory growth {:.1} bytes per connection\n",
                    m["connections"].as_f64().unwrap_or(0.0) as u64, r["workers"],
                    m["table_bytes_per_connection"].as_f64().unwrap_or(0.0),
                    m["table_bytes_per_slot"].as_f64().unwrap_or(0.0),
                    m["table_capacity"].as_f64().unwrap_or(0.0) as u64,
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
            std::env::var("TPF")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
            Traffic::Ack {
                rounds: std::env::var("TPR")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(256),
            },
            w,
        );
        let mut macswap = None;
        for mode in ["io", "macswap"] {
            if want(&format!("testpmd {mode}")) {
                eprintln!("throughput: testpmd {mode}, {w} worker(s)");
                let r = with_load(testpmd_row(&s, mode, w, o.secs, &ack1k));
                if mode == "macswap" {
                    macswap = r["mpps"].as_f64();
                }
                rows.push(r);
            }
        }
        let mut rvs_rows = Vec::new();
        for m in [Method::Nat, Method::Dr, Method::Tun] {
            for flows in [1000, o.big_flows] {
                if want(&format!("{} established {flows}", m.name())) {
                    eprintln!(
                        "throughput: {} established, {flows} flows, {w} worker(s)",
                        m.name()
                    );
                    rvs_rows.push(with_load(established_row(&s, m, w, flows, o.secs)));
                }
            }
            if want(&format!("{} new", m.name())) {
                eprintln!("throughput: {} new connections, {w} worker(s)", m.name());
                rvs_rows.push(with_load(new_conn_row(&s, m, w, o.syn_flows)));
            }
        }
        for mut r in rvs_rows {
            if let Some(ms) = macswap.filter(|m| *m > 0.0) {
                if r.get("conn_per_s").is_none() {
                    r["ratio_to_macswap"] = json!(r["mpps"].as_f64().unwrap_or(0.0) / ms);
                }
            }
            rows.push(r);
        }
    }
    let md = markdown(&rows, &load);
    println!("{md}");
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
