//! Benchmarks of the sans-IO load-balancer core (`rvs::lb::engine::Engine`),
//! one thread, no DPDK:
//!
//!   cargo bench --no-default-features --bench lb_core            (all rows)
//!   cargo bench --no-default-features --bench lb_core -- est/nat (rows whose name contains it)
//!   RVS_BENCH_QUICK=1 ...   (fewer packets and runs, e.g. under callgrind)
//!
//! Instructions per packet of a pipe row: run it under
//! `valgrind --tool=callgrind --toggle-collect='lb_core::run_pipe*'` with
//! RVS_BENCH_QUICK=1 and divide `Datapath::process_burst`'s inclusive cost by its
//! calls (400 000: the warm-up run and the measured one).
//!
//! Rows:
//! - `est/<fwd>/<dir>/<n>`: an established TCP flow's packet (ACK) through
//!   `Engine::process_burst` in bursts of 32, flows drawn uniformly at random
//!   among `n` established connections (1k or 1M); NAT, DR and TUN inbound,
//!   NAT outbound (the real server's reply). ns per packet: the mean over all
//!   packets (best and median of the runs' means), and p50/p99/p99.9 of
//!   per-burst time / 32 (hdrhistogram). The bursts are built outside the
//!   timed region; the clock is read around each `process_burst` call (that
//!   read is part of the figure, about 1 ns per packet).
//! - `pipe/<fwd>/<dir>/<n>`: the same established flows (1k or 1M, opened
//!   beforehand by a SYN and an ACK frame each through the pipeline), now
//!   as whole frames through `rvs::datapath::Datapath::process_burst`: parse,
//!   engine, route and neighbour lookup, rewrite (NAT; DR; TUN = IPIP
//!   encapsulation) with incremental checksums. Each frame is a TCP/IPv4
//!   ACK of 64 bytes on the wire (60 in the buffer: 54 + Ethernet padding)
//!   with valid checksums, in a `VecBuf` with the mbuf geometry (128 bytes
//!   of headroom); bursts of 32 frames of uniformly random flows, the 32
//!   `process` calls timed together, figures as for `est`. Frames are
//!   restored (`VecBuf::reset` from a freshly built template) before the
//!   clock starts, so that copy is *not* in the figures; `pipe/copy-only`
//!   times those 32 resets alone, for whoever wants to add it. The warm-up
//!   run checks the first 64 bursts' output frames in full (checksums,
//!   addresses, MACs, TTL).
//! - `new/<sched>`: connection set-up through `process_burst` (bursts of 32
//!   SYNs from distinct clients) for a NAT service with 8 real servers and
//!   each of the 14 schedulers, into an empty table sized for 512k; new
//!   connections per second (best and median run).
//! - `mem/floor/<n>`: the memory floor under the `est` rows: two dependent
//!   random cache lines per packet over a table-sized index and entry
//!   array, fetched a burst at a time; nothing else.
//! - `mem/1m`: bytes per connection at 1 000 000 NAT connections, from
//!   `Engine::memory_bytes`, cross-checked with the process RSS delta
//!   (/proc/self/statm) over creating the engine and filling it.
//!
//! Prints a Markdown table and writes target/bench/lb_core.json. Without
//! `--bench` on the command line (`cargo test --benches`) it returns at once.
//!
//! Huge pages: the engine's tables come from the heap here, on 4 KiB pages
//! unless the process starts with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
//! (THP in `madvise` mode; glibc then madvises its large mappings, though
//! not on every start with glibc 2.36); the notes column shows how many MiB
//! of transparent huge pages the rows' tables got.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant as Wall;

use hdrhistogram::Histogram;
use rvs::datapath::{Datapath, Forwarding, Outcome};
use rvs::ids::PortIndex;
use rvs::lb::dest::{DestConfig, FwdMethod, TunCsum, TunType};
use rvs::lb::engine::{Direction, DropReason, Engine, PacketMeta, Verdict};
use rvs::lb::persist::TemplateTable;
use rvs::lb::rules::Rules;
use rvs::lb::sched;
use rvs::lb::service::{Protocol, ServiceConfig};
use rvs::lb::tcp_state::TcpFlags;
use rvs::lb::time::Timestamp;
use rvs::net::{Iface, IpCidr, NeighConfig, NeighTable, NetConfig, RouteTable};
use rvs::wire::buf::{PacketBuf, VecBuf, DEFAULT_DATAROOM, DEFAULT_HEADROOM};
use rvs::wire::checksum;
use rvs::wire::parse::parse_frame;
use rvs::wire::{EthernetAddress, IpProtocol};

const BURST: usize = 32;
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);
const N_DESTS: u32 = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fwd {
    Nat,
    Dr,
    Tun,
}

impl Fwd {
    fn name(self) -> &'static str {
        match self {
            Fwd::Nat => "nat",
            Fwd::Dr => "dr",
            Fwd::Tun => "tun",
        }
    }
    fn method(self) -> FwdMethod {
        match self {
            Fwd::Nat => FwdMethod::Masq,
            Fwd::Dr => FwdMethod::Route,
            Fwd::Tun => FwdMethod::Tunnel {
                tun_type: TunType::Ipip,
                port: 0,
                csum: TunCsum::NoCsum,
            },
        }
    }
}

fn dest_addr(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, 1 + k as u8)
}

const DEST_PORT: u16 = 8080;

/// A service on VIP:80 with 8 real servers of weight 1 (ovf: 65535, since it
/// skips a server whose active connections exceed its weight).
fn rules(fwd: Fwd, scheduler: &str) -> Rules {
    let weight = if scheduler == "ovf" { 65535 } else { 1 };
    let mut r = Rules::new(1);
    let svc = ServiceConfig::new(Protocol::Tcp, IpAddr::V4(VIP), 80).with_scheduler(scheduler);
    let key = svc.key;
    r.add_service(svc).expect("service");
    for k in 0..N_DESTS {
        let d = DestConfig::new(IpAddr::V4(dest_addr(k)), DEST_PORT)
            .with_fwd(fwd.method())
            .with_weight(weight);
        r.add_dest(&key, d).expect("dest");
    }
    r
}

/// With the `dpdk` feature (the default) the engine gets the data plane's
/// prefetch instruction, as rvsd's workers do; `--no-default-features`
/// measures the portable load/store preloads.
fn engine(r: &Rules, cap: usize) -> Engine {
    #[allow(unused_mut)]
    let mut e = Engine::new(
        0,
        cap,
        r.snapshot(),
        Arc::new(TemplateTable::default()),
        Timestamp::ZERO,
    );
    #[cfg(feature = "dpdk")]
    e.set_prefetch(rvs::dataplane::prefetch);
    e
}

/// Client `i`: a distinct (address, port) for every i < 2^32.
fn client(i: u32) -> (IpAddr, u16) {
    (
        IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i >> 2))),
        20_000 + (i & 3) as u16,
    )
}

fn inbound(i: u32, flags: u8) -> PacketMeta {
    let (src, sport) = client(i);
    PacketMeta {
        proto: Protocol::Tcp,
        src,
        sport,
        dst: IpAddr::V4(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        dir: Direction::In,
        len: 64,
    }
}

fn outbound(i: u32, dest: u8, flags: u8) -> PacketMeta {
    let (dst, dport) = client(i);
    PacketMeta {
        proto: Protocol::Tcp,
        src: IpAddr::V4(dest_addr(dest as u32)),
        sport: DEST_PORT,
        dst,
        dport,
        tcp_flags: TcpFlags(flags),
        dir: Direction::Out,
        len: 1400,
    }
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn anon_huge_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let l = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

fn percentile_ns(h: &Histogram<u64>, q: f64) -> f64 {
    // Recorded in picoseconds.
    h.value_at_quantile(q) as f64 / 1000.0
}

fn best_median(v: &[f64], higher_is_better: bool) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let best = if higher_is_better {
        s[s.len() - 1]
    } else {
        s[0]
    };
    (best, s[s.len() / 2])
}

struct Row {
    name: String,
    what: String,
    unit: &'static str,
    best: f64,
    median: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    p999: Option<f64>,
    extra: String,
    json: serde_json::Value,
}

struct Cfg {
    quick: bool,
    filter: Vec<String>,
}

impl Cfg {
    fn wants(&self, name: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| name.contains(f.as_str()))
    }
}

/// Open `n` connections (SYN then ACK each, so they are ESTABLISHED).
/// Returns each flow's real server index (for replies).
fn establish(e: &mut Engine, n: u32, now: Timestamp) -> Vec<u8> {
    let mut dest = vec![0u8; n as usize];
    let mut out = [Verdict::Drop(DropReason::NoService); BURST];
    for flags in [TcpFlags::SYN, TcpFlags::ACK] {
        let mut i = 0u32;
        while i < n {
            let m = (n - i).min(BURST as u32);
            let pk: Vec<PacketMeta> = (i..i + m).map(|k| inbound(k, flags)).collect();
            e.process_burst(&pk, now, &mut out);
            for (k, v) in out[..m as usize].iter().enumerate() {
                match v {
                    Verdict::Forward(f) => {
                        if let IpAddr::V4(a) = f.daddr {
                            dest[(i as usize) + k] = a.octets()[3] - 1;
                        }
                    }
                    Verdict::Drop(r) => panic!("setup packet dropped: {r:?}"),
                    Verdict::Refuse => panic!("setup packet refused"),
                }
            }
            i += m;
        }
    }
    assert_eq!(e.conn_count(), n as usize);
    dest
}

/// Established-flow packets: `runs` runs of `pkts` packets.
#[allow(clippy::too_many_arguments)]
fn run_established(
    e: &mut Engine,
    dests: &[u8],
    dir: Direction,
    runs: usize,
    pkts: usize,
    now: Timestamp,
    name: String,
    what: String,
) -> Row {
    let n = dests.len() as u32;
    let mut rng = Rng(0x1234_5678 ^ n as u64 ^ (dir == Direction::Out) as u64);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
    let mut means = Vec::new();
    let mut burst = [inbound(0, TcpFlags::ACK); BURST];
    let mut out = [Verdict::Drop(DropReason::NoService); BURST];
    let mut forwarded = 0u64;
    // Warm-up: one run's worth of bursts untimed.
    for r in 0..=runs {
        let mut total_ns = 0u128;
        let nb = pkts / BURST;
        for _ in 0..nb {
            for p in burst.iter_mut() {
                let i = rng.below(n);
                *p = match dir {
                    Direction::In => inbound(i, TcpFlags::ACK),
                    Direction::Out => outbound(i, dests[i as usize], TcpFlags::ACK),
                };
            }
            let t0 = Wall::now();
            e.process_burst(&burst, now, &mut out);
            let dt = t0.elapsed().as_nanos();
            black_box(&out);
            if r > 0 {
                total_ns += dt;
                hist.saturating_record((dt * 1000 / BURST as u128) as u64);
                forwarded += out
                    .iter()
                    .filter(|v| matches!(v, Verdict::Forward(_)))
                    .count() as u64;
            }
        }
        if r > 0 {
            means.push(total_ns as f64 / (nb * BURST) as f64);
        }
    }
    let measured = (runs * (pkts / BURST) * BURST) as u64;
    assert_eq!(
        forwarded, measured,
        "{name}: every packet must be forwarded"
    );
    let (best, median) = best_median(&means, false);
    let (p50, p99, p999) = (
        percentile_ns(&hist, 0.5),
        percentile_ns(&hist, 0.99),
        percentile_ns(&hist, 0.999),
    );
    Row {
        json: serde_json::json!({
            "name": name, "what": what, "unit": "ns/packet",
            "mean_best": best, "mean_median": median, "runs": runs,
            "packets_per_run": pkts, "connections": n,
            "p50": p50, "p99": p99, "p999": p999,
        }),
        name,
        what,
        unit: "ns/pkt",
        best,
        median,
        p50: Some(p50),
        p99: Some(p99),
        p999: Some(p999),
        extra: String::new(),
    }
}

fn established_rows(cfg: &Cfg, rows: &mut Vec<Row>) {
    let now = Timestamp::from_secs(1);
    for (n, label) in [(1_000u32, "1k"), (1_000_000u32, "1m")] {
        for fwd in [Fwd::Nat, Fwd::Dr, Fwd::Tun] {
            let prefix = format!("est/{}/", fwd.name());
            let names: Vec<(Direction, String)> = [Direction::In, Direction::Out]
                .into_iter()
                .filter(|d| *d == Direction::In || fwd == Fwd::Nat)
                .map(|d| {
                    let dn = if d == Direction::In { "in" } else { "out" };
                    (d, format!("{prefix}{dn}/{label}"))
                })
                .filter(|(_, nm)| cfg.wants(nm))
                .collect();
            if names.is_empty() {
                continue;
            }
            let r = rules(fwd, "rr");
            let huge0 = anon_huge_kb();
            let mut e = engine(&r, n as usize);
            let dests = establish(&mut e, n, now);
            let thp = match (huge0, anon_huge_kb()) {
                (Some(a), Some(b)) => format!("THP {} MiB", b.saturating_sub(a) / 1024),
                _ => String::new(),
            };
            let (runs, pkts) = match (cfg.quick, n > 100_000) {
                (true, _) => (1, 200_000),
                (false, false) => (5, 1 << 21),
                (false, true) => (5, 1 << 21),
            };
            for (dir, name) in names {
                let what = format!(
                    "{} {} ACK, {} ESTABLISHED conns, 8 real servers, uniform random flow, process_burst(32)",
                    fwd.name().to_uppercase(),
                    if dir == Direction::In {
                        "client->VIP"
                    } else {
                        "reply RS->client"
                    },
                    n
                );
                eprintln!("running {name}");
                let mut row = run_established(&mut e, &dests, dir, runs, pkts, now, name, what);
                row.extra = thp.clone();
                row.json["thp_mib"] = serde_json::json!(thp);
                rows.push(row);
            }
        }
    }
}

// ---- Full pipeline: parse -> engine -> route -> neighbour -> rewrite ----

/// Port 0 faces the clients (the VIP's network, default route via a
/// router), port 1 the real servers (10.1.0.0/24, on link).
const CLI_PORT: u16 = 0;
const SRV_PORT: u16 = 1;
const LB_MAC: [EthernetAddress; 2] = [
    EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]),
    EthernetAddress([0x02, 0, 0, 0, 1, 0xfe]),
];
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
/// Ethernet frame without FCS: 64 bytes on the wire, 60 in the mbuf (a
/// 54-byte TCP/IPv4 ACK padded to the Ethernet minimum).
const FRAME_LEN: usize = 60;

fn rs_mac(k: u32) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 1, 0, 1 + k as u8])
}

/// A balancer for `rules(fwd, "rr")` with its own addresses, a default
/// route toward the clients and every next hop's MAC known.
fn balancer(fwd: Fwd, cap: usize) -> Datapath<VecBuf> {
    let r = rules(fwd, "rr");
    let mut net = NetConfig::new();
    net.set(
        Iface::new(CLI_PORT, LB_MAC[0]).with_addr("192.168.1.254/24".parse::<IpCidr>().unwrap()),
    );
    net.set(Iface::new(SRV_PORT, LB_MAC[1]).with_addr("10.1.0.254/24".parse::<IpCidr>().unwrap()));
    let mut routes = RouteTable::from_config(&net);
    routes
        .set_default(IpAddr::V4(ROUTER), CLI_PORT)
        .expect("default route");
    let mut neigh = NeighTable::new(NeighConfig::default());
    neigh.add_static(CLI_PORT, IpAddr::V4(ROUTER), ROUTER_MAC);
    for k in 0..N_DESTS {
        neigh.add_static(SRV_PORT, IpAddr::V4(dest_addr(k)), rs_mac(k));
    }
    Datapath::new(Forwarding {
        engine: engine(&r, cap),
        net,
        vip_ports: vec![PortIndex(CLI_PORT)],
        routes: Arc::new(routes),
        neigh: neigh.snapshot(),
        ip_id_start: 1,
    })
}

fn client_v4(i: u32) -> (Ipv4Addr, u16) {
    match client(i) {
        (IpAddr::V4(a), p) => (a, p),
        _ => unreachable!(),
    }
}

/// Writes a TCP/IPv4 segment without payload (correct checksums, DF,
/// TTL 64, per-flow sequence numbers, zero padding) into `f`.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    f: &mut [u8; FRAME_LEN],
    dst_mac: EthernetAddress,
    src_mac: EthernetAddress,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: u8,
    seq: u32,
    ack: u32,
) {
    *f = [0; FRAME_LEN];
    f[0..6].copy_from_slice(&dst_mac.0);
    f[6..12].copy_from_slice(&src_mac.0);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = IpProtocol::TCP.0;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..54];
    t[0..2].copy_from_slice(&src.1.to_be_bytes());
    t[2..4].copy_from_slice(&dst.1.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&502u16.to_be_bytes());
    let ph = checksum::pseudo_header_v4(&src.0, &dst.0, IpProtocol::TCP, 20);
    let c = !checksum::combine(&[ph, checksum::data(t)]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Flow `i`'s client->VIP segment as it arrives on the client port.
fn inbound_frame(f: &mut [u8; FRAME_LEN], i: u32, flags: u8) {
    let seq = i.wrapping_mul(0x9e37_79b1);
    let ack = i.wrapping_mul(0x85eb_ca6b);
    tcp_frame(
        f,
        LB_MAC[CLI_PORT as usize],
        ROUTER_MAC,
        client_v4(i),
        (VIP, 80),
        flags,
        seq,
        ack,
    );
}

/// Flow `i`'s reply from real server `k` as it arrives on the server port.
fn outbound_frame(f: &mut [u8; FRAME_LEN], i: u32, k: u8, flags: u8) {
    let seq = i.wrapping_mul(0x85eb_ca6b);
    let ack = i.wrapping_mul(0x9e37_79b1);
    tcp_frame(
        f,
        LB_MAC[SRV_PORT as usize],
        rs_mac(k as u32),
        (dest_addr(k as u32), DEST_PORT),
        client_v4(i),
        flags,
        seq,
        ack,
    );
}

/// Open `n` connections through the pipeline (a SYN then an ACK frame
/// each). Returns each flow's real server index, read from the rewritten
/// frame's destination MAC (every method sends to the server's MAC).
// Not inlined, so that callgrind tells the set-up's calls of
// `Datapath::process_burst` from the measured ones (`run_pipe`).
#[inline(never)]
fn establish_pipe(b: &mut Datapath<VecBuf>, n: u32, now: Timestamp) -> Vec<u8> {
    let mut dest = vec![0u8; n as usize];
    let mut f = [0u8; FRAME_LEN];
    let mut buf = VecBuf::new(DEFAULT_DATAROOM, DEFAULT_HEADROOM);
    for flags in [TcpFlags::SYN, TcpFlags::ACK] {
        for i in 0..n {
            inbound_frame(&mut f, i, flags);
            buf.reset(&f, DEFAULT_HEADROOM);
            let a = b.process_one(PortIndex(CLI_PORT), &mut buf, now);
            assert_eq!(a, Outcome::Tx(PortIndex(SRV_PORT)), "set-up frame {i}");
            let k = buf.data()[5].wrapping_sub(1);
            if flags == TcpFlags::SYN {
                dest[i as usize] = k;
            } else {
                assert_eq!(dest[i as usize], k, "flow {i} changed server");
            }
        }
    }
    assert_eq!(b.engine().conn_count(), n as usize);
    dest
}

/// Full checks of one rewritten frame (the warm-up run's first bursts).
fn check_output(fwd: Fwd, dir: Direction, out: &[u8], i: u32, k: u8) {
    rvs::lb::forward::verify::verify_frame(out, None)
        .unwrap_or_else(|e| panic!("flow {i}: bad {e} checksum"));
    let h = parse_frame(out).expect("output parses");
    let (cli, cport) = client_v4(i);
    let rs = IpAddr::V4(dest_addr(k as u32));
    match dir {
        Direction::In => {
            assert_eq!(&out[..6], &rs_mac(k as u32).0);
            assert_eq!(&out[6..12], &LB_MAC[SRV_PORT as usize].0);
            assert_eq!((h.src, h.src_port), (IpAddr::V4(cli), cport));
            match fwd {
                Fwd::Nat => {
                    assert_eq!((h.dst, h.dst_port), (rs, DEST_PORT));
                    assert_eq!(h.ttl, 63);
                }
                Fwd::Dr => {
                    assert_eq!((h.dst, h.dst_port), (IpAddr::V4(VIP), 80));
                    assert_eq!(h.ttl, 63);
                }
                Fwd::Tun => unreachable!("outer header checked by the caller"),
            }
        }
        Direction::Out => {
            assert_eq!(&out[..6], &ROUTER_MAC.0);
            assert_eq!(&out[6..12], &LB_MAC[CLI_PORT as usize].0);
            assert_eq!((h.src, h.src_port), (IpAddr::V4(VIP), 80));
            assert_eq!((h.dst, h.dst_port), (IpAddr::V4(cli), cport));
            assert_eq!(h.ttl, 63);
        }
    }
}

fn check_tunnel(out: &[u8], i: u32, k: u8) {
    rvs::lb::forward::verify::verify_frame(out, None)
        .unwrap_or_else(|e| panic!("flow {i}: bad {e} checksum"));
    let h = parse_frame(out).expect("output parses");
    assert_eq!(&out[..6], &rs_mac(k as u32).0);
    assert_eq!(h.protocol, IpProtocol::IPIP);
    assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 254)));
    assert_eq!(h.dst, IpAddr::V4(dest_addr(k as u32)));
    // The inner packet, unchanged but for the TTL.
    let inner = &out[h.l4_offset as usize..h.l3_end()];
    let mut f = vec![0u8; 14];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(inner);
    let ih = parse_frame(&f).expect("inner parses");
    let (cli, cport) = client_v4(i);
    assert_eq!((ih.src, ih.src_port), (IpAddr::V4(cli), cport));
    assert_eq!((ih.dst, ih.dst_port), (IpAddr::V4(VIP), 80));
    assert_eq!(ih.ttl, 63);
}

/// Established-flow frames through `Datapath::process_burst`: `runs` runs of
/// `pkts` frames, in bursts of 32 whose frames are written into their
/// buffers before the clock starts.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn run_pipe(
    b: &mut Datapath<VecBuf>,
    fwd: Fwd,
    dests: &[u8],
    dir: Direction,
    runs: usize,
    pkts: usize,
    now: Timestamp,
    name: String,
    what: String,
) -> Row {
    let n = dests.len() as u32;
    let mut rng = Rng(0x1234_5678 ^ n as u64 ^ (dir == Direction::Out) as u64);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
    let mut means = Vec::new();
    let mut bufs: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::new(DEFAULT_DATAROOM, DEFAULT_HEADROOM))
        .collect();
    let mut flows = [0u32; BURST];
    let mut acts = [Outcome::Tx(PortIndex(u16::MAX)); BURST];
    let mut f = [0u8; FRAME_LEN];
    let (in_port, out_port) = match dir {
        Direction::In => (CLI_PORT, SRV_PORT),
        Direction::Out => (SRV_PORT, CLI_PORT),
    };
    let mut forwarded = 0u64;
    let checked_bursts = 64;
    for r in 0..=runs {
        let mut total_ns = 0u128;
        let nb = pkts / BURST;
        for bi in 0..nb {
            for (buf, fl) in bufs.iter_mut().zip(flows.iter_mut()) {
                let i = rng.below(n);
                *fl = i;
                match dir {
                    Direction::In => inbound_frame(&mut f, i, TcpFlags::ACK),
                    Direction::Out => outbound_frame(&mut f, i, dests[i as usize], TcpFlags::ACK),
                }
                buf.reset(&f, DEFAULT_HEADROOM);
            }
            // As the worker does: the whole burst at once (parsed, then
            // decided together: the engine overlaps its table misses).
            let t0 = Wall::now();
            b.process_burst(PortIndex(in_port), &mut bufs, now, &mut acts);
            let dt = t0.elapsed().as_nanos();
            black_box(&acts);
            if r > 0 {
                total_ns += dt;
                hist.saturating_record((dt * 1000 / BURST as u128) as u64);
                forwarded += acts
                    .iter()
                    .filter(|a| **a == Outcome::Tx(PortIndex(out_port)))
                    .count() as u64;
            } else if bi < checked_bursts {
                for ((buf, a), &i) in bufs.iter().zip(&acts).zip(&flows) {
                    assert_eq!(*a, Outcome::Tx(PortIndex(out_port)), "{name}: flow {i}");
                    let k = dests[i as usize];
                    if fwd == Fwd::Tun {
                        check_tunnel(buf.data(), i, k);
                    } else {
                        check_output(fwd, dir, buf.data(), i, k);
                    }
                }
            }
        }
        if r > 0 {
            means.push(total_ns as f64 / (nb * BURST) as f64);
        }
    }
    let measured = (runs * (pkts / BURST) * BURST) as u64;
    assert_eq!(forwarded, measured, "{name}: every frame must be forwarded");
    let (best, median) = best_median(&means, false);
    let (p50, p99, p999) = (
        percentile_ns(&hist, 0.5),
        percentile_ns(&hist, 0.99),
        percentile_ns(&hist, 0.999),
    );
    Row {
        json: serde_json::json!({
            "name": name, "what": what, "unit": "ns/packet",
            "mean_best": best, "mean_median": median, "runs": runs,
            "packets_per_run": pkts, "connections": n, "frame_bytes": FRAME_LEN,
            "frame_copy": "excluded: frames are written into the buffers before the clock starts (see pipe/copy-only)",
            "p50": p50, "p99": p99, "p999": p999,
        }),
        name,
        what,
        unit: "ns/pkt",
        best,
        median,
        p50: Some(p50),
        p99: Some(p99),
        p999: Some(p999),
        extra: String::new(),
    }
}

/// What restoring a burst's frames would add if it were timed: 32
/// `VecBuf::reset` copies of a 60-byte frame from 32 templates.
fn copy_only_row(cfg: &Cfg, rows: &mut Vec<Row>) {
    let name = "pipe/copy-only".to_string();
    if !cfg.wants(&name) {
        return;
    }
    eprintln!("running {name}");
    let (runs, pkts) = if cfg.quick {
        (1, 200_000)
    } else {
        (5, 1 << 21)
    };
    let mut tmpl = vec![[0u8; FRAME_LEN]; BURST];
    for (i, t) in tmpl.iter_mut().enumerate() {
        inbound_frame(t, i as u32, TcpFlags::ACK);
    }
    let mut bufs: Vec<VecBuf> = (0..BURST)
        .map(|_| VecBuf::new(DEFAULT_DATAROOM, DEFAULT_HEADROOM))
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
    let mut means = Vec::new();
    for r in 0..=runs {
        let mut total_ns = 0u128;
        let nb = pkts / BURST;
        for _ in 0..nb {
            let t0 = Wall::now();
            for (b, t) in bufs.iter_mut().zip(black_box(&tmpl)) {
                b.reset(t, DEFAULT_HEADROOM);
            }
            let dt = t0.elapsed().as_nanos();
            black_box(&mut bufs);
            if r > 0 {
                total_ns += dt;
                hist.saturating_record((dt * 1000 / BURST as u128) as u64);
            }
        }
        if r > 0 {
            means.push(total_ns as f64 / (nb * BURST) as f64);
        }
    }
    let (best, median) = best_median(&means, false);
    let (p50, p99, p999) = (
        percentile_ns(&hist, 0.5),
        percentile_ns(&hist, 0.99),
        percentile_ns(&hist, 0.999),
    );
    let what = format!(
        "VecBuf::reset from a {FRAME_LEN}-byte template, 32 per burst (not included in the pipe rows)"
    );
    rows.push(Row {
        json: serde_json::json!({
            "name": name, "what": what, "unit": "ns/packet",
            "mean_best": best, "mean_median": median, "runs": runs,
            "packets_per_run": pkts, "p50": p50, "p99": p99, "p999": p999,
        }),
        name,
        what,
        unit: "ns/pkt",
        best,
        median,
        p50: Some(p50),
        p99: Some(p99),
        p999: Some(p999),
        extra: String::new(),
    });
}

fn pipeline_rows(cfg: &Cfg, rows: &mut Vec<Row>) {
    let now = Timestamp::from_secs(1);
    copy_only_row(cfg, rows);
    for (n, label) in [(1_000u32, "1k"), (1_000_000u32, "1m")] {
        for fwd in [Fwd::Nat, Fwd::Dr, Fwd::Tun] {
            let names: Vec<(Direction, String)> = [Direction::In, Direction::Out]
                .into_iter()
                .filter(|d| *d == Direction::In || fwd == Fwd::Nat)
                .map(|d| {
                    let dn = if d == Direction::In { "in" } else { "out" };
                    (d, format!("pipe/{}/{dn}/{label}", fwd.name()))
                })
                .filter(|(_, nm)| cfg.wants(nm))
                .collect();
            if names.is_empty() {
                continue;
            }
            let huge0 = anon_huge_kb();
            let mut b = balancer(fwd, n as usize);
            let dests = establish_pipe(&mut b, n, now);
            let thp = match (huge0, anon_huge_kb()) {
                (Some(a), Some(b)) => format!("THP {} MiB", b.saturating_sub(a) / 1024),
                _ => String::new(),
            };
            // More, shorter runs than `est`: the best run is more likely to
            // find the machine quiet.
            let (runs, pkts) = if cfg.quick {
                (1, 200_000)
            } else {
                (9, 1 << 19)
            };
            for (dir, name) in names {
                let what = format!(
                    "{} {} {FRAME_LEN}-byte TCP ACK frame, {} ESTABLISHED conns, 8 real servers, uniform random flow, Datapath::process_burst (parse x32, engine burst, route, neighbour, rewrite{})",
                    if fwd == Fwd::Tun { "TUN (IPIP)".to_string() } else { fwd.name().to_uppercase() },
                    if dir == Direction::In {
                        "client->VIP"
                    } else {
                        "reply RS->client"
                    },
                    n,
                    if fwd == Fwd::Tun { ", encapsulation" } else { "" },
                );
                eprintln!("running {name}");
                let mut row = run_pipe(&mut b, fwd, &dests, dir, runs, pkts, now, name, what);
                row.extra = thp.clone();
                row.json["thp_mib"] = serde_json::json!(thp);
                rows.push(row);
            }
        }
    }
}

fn new_conn_rows(cfg: &Cfg, rows: &mut Vec<Row>) {
    let now = Timestamp::from_secs(1);
    let (runs, conns) = if cfg.quick { (1, 50_000) } else { (3, 400_000) };
    let cap = 1 << 19;
    for s in sched::NAMES {
        let name = format!("new/{s}");
        if !cfg.wants(&name) {
            continue;
        }
        eprintln!("running {name}");
        let r = rules(Fwd::Nat, s);
        let mut rates = Vec::new();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
        let mut out = [Verdict::Drop(DropReason::NoService); BURST];
        for run in 0..runs {
            let mut e = engine(&r, cap);
            let base = run as u32 * 0x0100_0000;
            let mut burst = [inbound(0, TcpFlags::SYN); BURST];
            let mut total_ns = 0u128;
            let mut i = 0u32;
            while i + BURST as u32 <= conns {
                for (k, p) in burst.iter_mut().enumerate() {
                    *p = inbound(base + i + k as u32, TcpFlags::SYN);
                }
                let t0 = Wall::now();
                e.process_burst(&burst, now, &mut out);
                let dt = t0.elapsed().as_nanos();
                black_box(&out);
                total_ns += dt;
                hist.saturating_record((dt * 1000 / BURST as u128) as u64);
                i += BURST as u32;
            }
            assert_eq!(e.conn_count(), i as usize, "{name}: every SYN opens one");
            rates.push(i as f64 / (total_ns as f64 / 1e9));
            // Release the shared per-server counts for the next run.
            e.flush();
        }
        let (best, median) = best_median(&rates, true);
        let what = format!(
            "TCP SYN from a new client -> {s} schedules among 8 NAT real servers + insert (both keys), process_burst(32), {conns} into an empty 512k table"
        );
        let (p50, p99, p999) = (
            percentile_ns(&hist, 0.5),
            percentile_ns(&hist, 0.99),
            percentile_ns(&hist, 0.999),
        );
        rows.push(Row {
            json: serde_json::json!({
                "name": name, "what": what, "unit": "conns/s",
                "best": best, "median": median, "runs": runs, "conns_per_run": conns,
                "ns_per_conn_p50": p50, "ns_per_conn_p99": p99, "ns_per_conn_p999": p999,
            }),
            name,
            what,
            unit: "conns/s",
            best,
            median,
            p50: Some(p50),
            p99: Some(p99),
            p999: Some(p999),
            extra: format!("{:.0} ns/conn (median)", 1e9 / median),
        });
    }
}

fn memory_row(cfg: &Cfg, rows: &mut Vec<Row>) {
    let name = "mem/1m".to_string();
    if !cfg.wants(&name) {
        return;
    }
    eprintln!("running {name}");
    let n = if cfg.quick { 100_000u32 } else { 1_000_000 };
    let now = Timestamp::from_secs(1);
    let r = rules(Fwd::Nat, "rr");
    let rss0 = resident_bytes();
    let huge0 = anon_huge_kb();
    let mut e = engine(&r, n as usize);
    let mut out = [Verdict::Drop(DropReason::NoService); BURST];
    let mut burst = [inbound(0, TcpFlags::SYN); BURST];
    let mut i = 0u32;
    while i < n {
        let m = (n - i).min(BURST as u32) as usize;
        for (k, p) in burst[..m].iter_mut().enumerate() {
            *p = inbound(i + k as u32, TcpFlags::SYN);
        }
        e.process_burst(&burst[..m], now, &mut out);
        i += m as u32;
    }
    assert_eq!(e.conn_count(), n as usize);
    let rss1 = resident_bytes();
    let huge1 = anon_huge_kb();
    let acct = e.memory_bytes() as f64 / n as f64;
    let rss = match (rss0, rss1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / n as f64),
        _ => None,
    };
    let huge = match (huge0, huge1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let what = format!(
        "Engine::memory_bytes / conns with {n} NAT conns in a table of capacity {n} (RSS delta over create+fill in extra)"
    );
    rows.push(Row {
        json: serde_json::json!({
            "name": name, "what": what, "unit": "bytes/conn",
            "accounted": acct, "rss_delta": rss, "anon_huge_kb_delta": huge,
            "connections": n,
        }),
        name,
        what,
        unit: "B/conn",
        best: acct,
        median: acct,
        p50: None,
        p99: None,
        p999: None,
        extra: format!(
            "RSS delta {} B/conn; THP {} MiB",
            rss.map(|v| format!("{v:.1}")).unwrap_or("?".into()),
            huge.map(|v| (v / 1024).to_string()).unwrap_or("?".into())
        ),
    });
    drop(e);
}

/// `mem/floor/<n>`: the least the memory of an n-connection table costs
/// per packet, whatever the code: a random index line (of as many buckets
/// as the table has) then the entry line it names (of n), 64 bytes each,
/// fetched for 32 packets at a time as the burst path does (prefetch all
/// index lines, read them, prefetch all entries, read them). No hashing,
/// no key compare, no state; the random draw is included (about 2 ns). The
/// floor under the `est/*/<n>` rows, on the same kind of pages.
fn floor_rows(cfg: &Cfg, rows: &mut Vec<Row>) {
    for (label, n) in [("1k", 1_000usize), ("1m", 1_000_000)] {
        let name = format!("mem/floor/{label}");
        if !cfg.wants(&name) {
            continue;
        }
        eprintln!("running {name}");
        let l = rvs::lb::conntable::ConnTable::layout(n);
        let mut rng = Rng(0x51ee_d000 ^ n as u64);
        let buckets: Vec<[u64; 8]> = (0..l.buckets)
            .map(|_| [rng.below(l.conns as u32) as u64; 8])
            .collect();
        let entries: Vec<[u64; 8]> = vec![[1; 8]; l.conns];
        let pkts = if cfg.quick { 200_000 } else { 4_000_000 };
        let runs = if cfg.quick { 1 } else { 5 };
        let mut means = Vec::new();
        let mut acc = 0u64;
        for r in 0..=runs {
            let t0 = Wall::now();
            for _ in 0..pkts / BURST {
                let mut b = [0usize; BURST];
                for x in b.iter_mut() {
                    *x = rng.below(l.buckets as u32) as usize;
                    fetch(&buckets[*x]);
                }
                let mut e = [0usize; BURST];
                for (x, bi) in e.iter_mut().zip(&b) {
                    *x = buckets[*bi][0] as usize;
                    fetch(&entries[*x]);
                }
                for x in &e {
                    acc = acc.wrapping_add(entries[*x][1]);
                }
            }
            if r > 0 {
                means.push(t0.elapsed().as_nanos() as f64 / pkts as f64);
            }
        }
        black_box(acc);
        means.sort_by(f64::total_cmp);
        let (best, median) = (means[0], means[means.len() / 2]);
        let what = format!(
            "2 dependent random 64-byte lines per packet (index of {} buckets, then entry of {}), bursts of 32, prefetched",
            l.buckets, l.conns
        );
        rows.push(Row {
            json: serde_json::json!({
                "name": name, "what": what, "unit": "ns/pkt",
                "best": best, "median": median, "runs": means,
                "buckets": l.buckets, "entries": l.conns,
            }),
            name,
            what,
            unit: "ns/pkt",
            best,
            median,
            p50: None,
            p99: None,
            p999: None,
            extra: String::new(),
        });
    }
}

/// Start fetching a line: the data plane's prefetch instruction with DPDK,
/// else nothing (the read loop's loads then overlap on their own, as far
/// as the reorder window lets them).
#[inline(always)]
fn fetch(line: &[u64; 8]) {
    #[cfg(feature = "dpdk")]
    rvs::dataplane::prefetch(line.as_ptr().cast());
    #[cfg(not(feature = "dpdk"))]
    let _ = line;
}

fn fmt(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}", v)
    } else if v >= 100.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.2}", v)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let cfg = Cfg {
        quick: std::env::var_os("RVS_BENCH_QUICK").is_some(),
        filter: args
            .iter()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .collect(),
    };
    let t = Wall::now();
    let mut rows = Vec::new();
    // First, so that the RSS delta is not blurred by memory earlier rows
    // freed into the allocator.
    memory_row(&cfg, &mut rows);
    floor_rows(&cfg, &mut rows);
    established_rows(&cfg, &mut rows);
    pipeline_rows(&cfg, &mut rows);
    new_conn_rows(&cfg, &mut rows);
    let secs = t.elapsed().as_secs_f64();

    println!();
    println!("| row | unit | best | median | p50 | p99 | p99.9 | notes | measures |");
    println!("|---|---|---:|---:|---:|---:|---:|---|---|");
    let o = |v: Option<f64>| v.map(fmt).unwrap_or_default();
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.unit,
            fmt(r.best),
            fmt(r.median),
            o(r.p50),
            o(r.p99),
            o(r.p999),
            r.extra,
            r.what
        );
    }
    println!();
    println!("(est, pipe, new: p50/p99/p99.9 are per-burst time / 32 in ns; {secs:.1} s total)");

    let json = serde_json::json!({
        "bench": "lb_core",
        "quick": cfg.quick,
        "seconds": secs,
        "rows": rows.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
    });
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.ancestors().nth(3).map(|d| d.join("bench")))
        .unwrap_or_else(|| "target/bench".into());
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("lb_core.json");
        match std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
    }
}
