//! Processes and files of the throughput benchmark: scratch space,
//! generated captures, `dpdk-testpmd`, `rvsd` and `rvsgen send` as children.
//! Shared with tests/throughput_quick.rs (through `#[path]`).

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
use rvs::control::proto::{LcoreInfo, Request, Response, WorkerLatency};
use rvs::rng::XorShift;
use rvs::rss::{OwnerMap, Reta};
use rvs::traffic::{tcp_frame, FlowSpec, PcapWriter};

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
    /// `rounds` ACK rounds as `Ack`, each ACK followed by a spoofed SYN
    /// from a source never seen before (flows `flows..`): a SYN flood at
    /// the rate of the legitimate traffic.
    AckUnderFlood {
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
    let mut spoofed = flows;
    let mut acks = |w: &mut Vec<PcapWriter<_>>, rounds: u32, flood: bool| {
        for r in 0..rounds {
            for i in (1..order.len()).rev() {
                let j = rng.below(i + 1);
                order.swap(i, j);
            }
            for &k in &order {
                w[owner[k as usize] as usize]
                    .write(&tcp_frame(&spec, k, 0x10, 1001 + r, 5001, 0))
                    .expect("pcap write");
                if flood {
                    w[split.queue(&spec, spoofed)]
                        .write(&tcp_frame(&spec, spoofed, 0x02, 1000, 0, 0))
                        .expect("pcap write");
                    spoofed += 1;
                }
            }
        }
    };
    match traffic {
        Traffic::Syn => syn(&mut w),
        Traffic::Ack { rounds } => acks(&mut w, rounds, false),
        Traffic::AckUnderFlood { rounds } => acks(&mut w, rounds, true),
        Traffic::SynThenAck { rounds } => {
            syn(&mut w);
            acks(&mut w, rounds, false);
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
        // Line-buffered output (stdbuf execs testpmd, same pid): its stdout
        // is a pipe, and what it printed is waited for (`wait_output`).
        let mut cmd = if Path::new("/usr/bin/stdbuf").exists() {
            let mut c = Command::new("/usr/bin/stdbuf");
            c.args(["-oL", "dpdk-testpmd"]);
            c
        } else {
            Command::new("dpdk-testpmd")
        };
        let mut child = cmd
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

    /// Wait until testpmd has printed `text` (e.g. after a command whose
    /// effect must have happened before going on); false after `secs`.
    pub fn wait_output(&mut self, text: &str, secs: f64) -> bool {
        let out = self.out.clone();
        wait_for(secs, || out.lock().unwrap().contains(text) || !self.alive())
            && out.lock().unwrap().contains(text)
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

/// [`testpmd_port_stats`] for each `show port stats all` report in
/// `out`, in order (a report starts at port 0's block).
pub fn testpmd_port_stats_each(out: &str) -> Vec<BTreeMap<u16, (u64, u64)>> {
    const START: &str = "######################## NIC statistics for port 0 ";
    let mut reports = Vec::new();
    let mut rest = out;
    while let Some(i) = rest.find(START) {
        let tail = &rest[i + START.len()..];
        let end = tail.find(START).map_or(rest.len(), |j| i + START.len() + j);
        reports.push(testpmd_port_stats(&rest[i..end]));
        rest = &rest[end..];
    }
    reports
}

/// The median of `v` (the mean of the middle two for an even count); 0
/// for none. For throughput over sub-windows: one stretch of
/// interference from outside (this machine is a shared VM) moves it less
/// than the mean.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Sub-windows a measuring window of `secs` is cut into (at least half a
/// second each, at most four).
pub fn sub_windows(secs: f64) -> usize {
    ((secs / 0.5) as usize).clamp(1, 4)
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
/// on hugepages when scripts/bench mounted them (RVS_BENCH_HUGE_DIR), as a
/// deployment runs, if it needs no more than the pages reserved for it
/// (RVS_BENCH_HUGE_MB); else as [`eal`], on 4 KiB pages.
pub fn dut_eal(lcores: &str, mem_mb: u64, prefix: &str) -> Vec<String> {
    let mut e = eal(lcores, mem_mb, prefix);
    if let (Some(dir), true) = (huge_dir(), on_huge(mem_mb)) {
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

/// MiB of hugepages scripts/bench reserved for one device under test at a
/// time (1024 if it did not say).
fn huge_budget_mb() -> u64 {
    std::env::var("RVS_BENCH_HUGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Whether a device under test needing `mem_mb` runs on hugepages.
pub fn on_huge(mem_mb: u64) -> bool {
    huge_dir().is_some() && mem_mb <= huge_budget_mb()
}

/// What the device under test's memory is on, for the rows.
pub fn dut_pages(mem_mb: u64) -> &'static str {
    if on_huge(mem_mb) {
        "2 MiB hugepages"
    } else {
        "4 KiB pages (--no-huge)"
    }
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
    /// The client-facing device; `None`: the memif server ([`Rvsd::memif`]).
    /// With another device, the memif server is still there, as a second
    /// client-facing port (e.g. to open connections through it).
    pub client_device: Option<&'a str>,
    /// Mbufs in rvsd's pool, and EAL memory (MiB).
    pub mbufs: u64,
    pub mem_mb: u64,
    /// EAL `--lcores`; default [`dut_lcores`].
    pub lcores: Option<String>,
}

impl<'a> RvsdOpts<'a> {
    pub fn new(method: Method, workers: u16, connections: u64, server_device: &'a str) -> Self {
        RvsdOpts {
            method,
            workers,
            connections,
            server_device,
            client_device: None,
            mbufs: 65535,
            mem_mb: 1024,
            lcores: None,
        }
    }
}

/// EAL memory (MiB) for a device under test with a pool of `mbufs`
/// buffers of rvsd's size (2176 bytes of data room) plus everything else.
/// On hugepages the buffers pack at about 2.5 KiB each; without them a
/// buffer takes a whole 4 KiB page (DPDK keeps each mempool object within
/// one page, and two of these, 2.3 KiB with headers, do not fit in one).
pub fn mem_for_mbufs(mbufs: u64) -> u64 {
    let huge = 512 + mbufs * 2560 / (1 << 20);
    if on_huge(huge) {
        huge
    } else {
        512 + mbufs * 4096 / (1 << 20)
    }
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
        let memif_dev = memif("server", &memif_sock);
        let mut cfg = format!(
            r#"[workers]
lcores = [{lc}]
mbufs = {mbufs}

[lb]
connections = {conns}

[[port]]
name = "client"
device = "{client}"
role = "client"
mac = "{lb_mac}"
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
            mbufs = o.mbufs,
            conns = o.connections,
            client = o.client_device.unwrap_or(&memif_dev),
            // The generators' frames go to this MAC, whatever the
            // device's own (net_pcap has a fixed one).
            lb_mac = LB_MAC_BYTES.map(|b| format!("{b:02x}")).join(":"),
            server = o.server_device,
        );
        if o.client_device.is_some() {
            write!(
                cfg,
                "\n[[port]]\nname = \"opener\"\ndevice = \"{memif_dev}\"\nrole = \"client\"\n"
            )
            .unwrap();
        }
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
            .args(dut_eal(
                o.lcores.as_deref().unwrap_or(&dut_lcores(o.workers)),
                o.mem_mb,
                &tag,
            ))
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
        match self.request(&Request::Counters) {
            Response::Counters { counters } => counters,
            other => panic!("unexpected answer to counters: {other:?}"),
        }
    }

    fn request(&self, req: &Request) -> Response {
        let mut c = Client::connect(&self.sock)
            .unwrap_or_else(|e| panic!("rvsd control socket: {e}\n{}", self.err.lock().unwrap()));
        c.request(req)
            .unwrap_or_else(|e| panic!("rvsd: {req:?}: {e}"))
    }

    /// Per-worker counters (`rvsadm --lcores`).
    pub fn lcores(&self) -> Vec<LcoreInfo> {
        match self.request(&Request::Lcores) {
            Response::Lcores { lcores } => lcores,
            other => panic!("unexpected answer to lcores: {other:?}"),
        }
    }

    /// Each worker's per-burst latency since the last reset; `reset`
    /// starts a new window.
    pub fn latency(&self, reset: bool) -> Vec<WorkerLatency> {
        match self.request(&Request::Latency { reset }) {
            Response::Latency { latency } => latency,
            other => panic!("unexpected answer to latency: {other:?}"),
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

/// `rvsgen send`: the paced generator, replaying `pcaps` (one per queue)
/// into the memif client at `sock`, on cpu 0 (where the testpmd generator
/// runs too).
pub struct Rvsgen {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    done: bool,
}

/// How `rvsgen send` plays its captures.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Packets per second over all queues; 0: as fast as the ring takes them.
    pub pps: u64,
    /// Each capture once (lossless), else in a loop.
    pub once: bool,
    /// At most this long.
    pub secs: f64,
}

impl Rvsgen {
    pub fn spawn(s: &Scratch, pcaps: &[(PathBuf, u64)], sock: &Path, pace: Pace) -> Rvsgen {
        let frames: u64 = pcaps.iter().map(|p| p.1).sum();
        // Every frame in one small mbuf (64-byte frames: ~450 bytes each
        // with headers), plus the receive rings.
        let mbufs = frames + pcaps.len() as u64 * 4096 + 2048;
        let mem = 256 + mbufs * 512 / (1 << 20);
        let mut e = eal("0@0", mem, &s.prefix("rvsgen"));
        e.extend(["--vdev".into(), memif("client", sock)]);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsgen"));
        cmd.arg("send");
        for (f, _) in pcaps {
            cmd.arg("--pcap").arg(f);
        }
        // It lingers, connected and idle, after sending until told to go
        // (stop): rvsd can be stopped first, with nothing in flight, so its
        // memif port never loses the peer while a worker reads its rings.
        cmd.args(["--pps", &pace.pps.to_string()])
            .args(["--secs", &pace.secs.to_string()])
            .args(["--linger", "600"]);
        if pace.once {
            cmd.arg("--once");
        }
        let mut child = cmd
            .arg("--")
            .args(&e)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rvsgen runs");
        let (out, r1) = collect(child.stdout.take().unwrap());
        let (err, r2) = collect(child.stderr.take().unwrap());
        Rvsgen {
            child,
            out,
            err,
            readers: vec![r1, r2],
            done: false,
        }
    }

    /// Still sending.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGINT (a no-op once it is done), then its JSON summary.
    pub fn stop(mut self) -> serde_json::Value {
        interrupt(self.child.id());
        self.report()
    }

    /// SIGUSR1: stop sending, stay connected (until [`Rvsgen::stop`]).
    pub fn pause(&self) {
        let _ = Command::new("kill")
            .args(["-USR1", &self.child.id().to_string()])
            .status();
    }

    fn report(&mut self) -> serde_json::Value {
        self.done = true;
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.out.lock().unwrap().clone();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!(
                "rvsgen's summary is not JSON ({e}): {out}\n{}",
                self.err.lock().unwrap()
            )
        })
    }
}

impl Drop for Rvsgen {
    fn drop(&mut self) {
        if !self.done {
            interrupt(self.child.id());
            reap(&mut self.child, Duration::from_secs(10));
        }
    }
}

pub fn get(c: &BTreeMap<String, u64>, k: &str) -> u64 {
    c.get(k).copied().unwrap_or(0)
}
