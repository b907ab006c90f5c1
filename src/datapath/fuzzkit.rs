//! The whole datapath under a fuzzer (feature `testkit`, and the library's
//! own tests).
//!
//! [`datapath`] is the one-worker datapath the unit tests drive.
//! [`fuzz_one`] decodes bytes into bursts of frames for two workers of a
//! richer configuration (below), plays the worker loop around
//! them (holds, hand-offs to the owner, ticks with time advancing) and the
//! control thread's part between bursts (neighbours learned from the
//! traffic published back, configuration swapped, connections listed), and
//! checks what must hold for any input:
//!
//! - no panic (overflow checks on, under `cargo fuzz`);
//! - every frame that leaves (forwarded, answered, released after a hold,
//!   or made by a worker) parses again and goes out of a port that exists;
//! - a TCP or UDP frame that leaves as an ICMP error (time exceeded, too
//!   big, port unreachable: one the worker made in its place) goes back to
//!   its sender, out of the port it came in on;
//! - a frame handed to its owner is not handed on again;
//! - every worker's tally balances, and the frames it says it holds are the
//!   frames it holds;
//! - when the input asks (bit 15 of the last record's length), half an
//!   hour after the last frame nothing is held, no connection is left, and no
//!   real server counts a connection or a template (off by default: the
//!   walk of the timing wheel costs milliseconds).
//!
//! Input: records `[ctl, len_hi, len_lo, frame...]`, the frame cut short
//! where the input ends. `ctl`:
//!
//! | bits | meaning |
//! | ---- | ------- |
//! | 0    | the port it arrives on (0 faces the clients, 1 the real servers) |
//! | 1    | the worker that receives it |
//! | 2    | in a buffer without headroom or tailroom |
//! | 3    | the burst ends after it (it also ends at [`BURST`] frames and at the end of the input) |
//! | 4-6  | after the burst: time advances by [`ADVANCE_MS`]`[k]` |
//! | 7    | after the burst: the control thread applies what the workers learned and publishes the neighbours |
//!
//! The top four bits of the length (frames are at most 4095 bytes) are
//! more control-thread actions after the burst: bit 12 swaps the
//! configuration (A <-> B), bit 13 lists every worker's connections, bit 14
//! makes the control thread expire its stale neighbours; bit 15, on the
//! last record, drains everything at the end (above).
//!
//! The configuration (`fuzz/seeds.py` builds frames for it):
//!
//! - port 0 faces the clients: 10.0.0.254/24, 2001:db8::fe/64 and a
//!   link-local address, default routes via 10.0.0.1 and 2001:db8::1;
//!   port 1 the real servers: 10.1.0.254/24, fd00:1::fe/64, and on its
//!   VLAN 7 (interface 2) 10.2.0.254/24;
//! - configuration A: TCP 10.0.0.100:80 wrr to 10.1.0.11:8080 and
//!   10.1.0.14:8080 (NAT), TCP :81 to 10.1.0.12 (DR), TCP :82 to 10.1.0.15
//!   (IPIP), TCP :83 to 10.1.0.16 (GUE with checksums, port 6080), TCP
//!   :443 wlc persistent 300 s to 10.1.0.11 (NAT) and 10.1.0.12 (DR), UDP
//!   :53 lc to 10.1.0.13 (NAT), UDP :54 to 10.2.0.13:53 (NAT, VLAN 7); TCP [2001:db8::100]:80 to
//!   [fd00:1::11]:8080 (NAT), UDP [2001:db8::100]:53 to [fd00:1::13] (NAT),
//!   TCP [2001:db8::100]:82 to fd00:1::15 (GRE); and two services no new
//!   connection gets into (answered with port unreachable): TCP :84 to
//!   10.1.0.17 (DR) at weight 0, UDP [2001:db8::100]:55 without real
//!   servers;
//! - configuration B, made from A by rvsadm's edits (and back): A without
//!   the :81 service, 10.1.0.14 at weight 0, and TCP 10.0.0.101:80 to
//!   10.1.0.11:8080 (NAT);
//! - only 10.1.0.11 and 10.0.0.1's MACs are known at the start;
//! - two workers, each with room for 256 connections; the owner of a
//!   connection comes from the default Toeplitz key and a round-robin
//!   table, client side on port 0, server side on port 1.
//!
//! Tooling: it allocates.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;

use super::{Datapath, Forwarding, Links, Outcome, PortSide, WorkerCmd, BURST};
use crate::drops::Tally;
use crate::ids::{PortIndex, WorkerIndex};
use crate::lb::dest::{DestConfig, DestShared, FwdMethod, TunCsum, TunType};
use crate::lb::engine::Engine;
use crate::lb::persist::TemplateTable;
use crate::lb::rules::{Rules, Snapshot};
use crate::lb::service::{Protocol, ServiceConfig, ServiceKey};
use crate::lb::time::Timestamp;
use crate::net::{
    learn_channel, snapshot_channel, Iface, IpCidr, LearnRx, NeighConfig, NeighSnapshot,
    NeighTable, NetConfig, RouteTable, SnapshotTx,
};
use crate::rss::{OwnerMap, Reta, DEFAULT_KEY};
use crate::wire::buf::{PacketBuf, VecBuf};
use crate::wire::parse::parse_frame;
use crate::wire::{EthernetAddress, IpProtocol};

/// The client-facing port's MAC (port 0).
pub const CLI_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xfe]);
/// The server-facing port's MAC (port 1).
pub const SRV_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0xfe]);

/// The VIP of both configurations.
pub fn vip() -> IpAddr {
    "10.0.0.100".parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> IpCidr {
    s.parse().unwrap()
}

/// Client port 0 (10.0.0.254/24), server port 1 (10.1.0.254/24), a NAT
/// service on the VIP:80 to 10.1.0.11:8080 and a DR one on :81 to
/// 10.1.0.12; only 10.1.0.11's MAC is known. One worker, no control
/// thread: what the unit tests drive.
pub fn datapath() -> Datapath<VecBuf> {
    datapath_with_twin(false)
}

/// [`datapath`], with a kernel twin on the client port when `twin`.
pub fn datapath_with_twin(twin: bool) -> Datapath<VecBuf> {
    let mut rules = Rules::new(1);
    let tcp = Protocol::Tcp;
    rules
        .add_service(ServiceConfig::new(tcp, vip(), 80).with_scheduler("rr"))
        .unwrap();
    rules
        .add_dest(
            &ServiceKey::new(tcp, vip(), 80),
            DestConfig::new(ip("10.1.0.11"), 8080).masq(),
        )
        .unwrap();
    rules
        .add_service(ServiceConfig::new(tcp, vip(), 81).with_scheduler("rr"))
        .unwrap();
    rules
        .add_dest(
            &ServiceKey::new(tcp, vip(), 81),
            DestConfig::new(ip("10.1.0.12"), 81),
        )
        .unwrap();
    let mut net = NetConfig::new();
    let client = Iface::new(0, CLI_MAC).with_addr(cidr("10.0.0.254/24"));
    net.set(match twin {
        true => client
            .with_addr(cidr("2001:db8::254/64"))
            .with_link_local()
            .with_twin(),
        false => client,
    });
    net.set(Iface::new(1, SRV_MAC).with_addr(cidr("10.1.0.254/24")));
    let routes = RouteTable::from_config(&net);
    let mut neigh = NeighTable::new(NeighConfig::default());
    neigh.add_static(
        1,
        ip("10.1.0.11"),
        EthernetAddress([2, 0, 0, 0, 0x11, 0x11]),
    );
    datapath_of(&rules, net, routes, &mut neigh, vec![PortIndex(0)])
}

/// One worker with room for 4096 connections and no control thread, over
/// these rules, interfaces, routes and neighbours, answering ARP/ND for
/// the VIPs on `vip_ports`.
pub fn datapath_of(
    rules: &Rules,
    net: NetConfig,
    routes: RouteTable,
    neigh: &mut NeighTable,
    vip_ports: Vec<PortIndex>,
) -> Datapath<VecBuf> {
    let engine = Engine::new(
        0,
        4096,
        rules.snapshot(),
        Arc::new(TemplateTable::new(4)),
        Timestamp::ZERO,
    );
    Datapath::new(Forwarding {
        engine,
        net,
        vip_ports,
        routes: Arc::new(routes),
        neigh: neigh.snapshot(),
        ip_id_start: 1,
    })
}

/// Time advances between bursts, milliseconds, by `ctl` bits 4-6.
pub const ADVANCE_MS: [u64; 8] = [0, 1, 3, 10, 100, 1_000, 30_000, 600_000];

const WORKERS: usize = 2;
const CONNS: usize = 256;
/// The record header: `ctl`, length.
const HEADER: usize = 3;

fn tun(tun_type: TunType, csum: TunCsum, port: u16) -> FwdMethod {
    FwdMethod::Tunnel {
        tun_type,
        port,
        csum,
    }
}

fn add(r: &mut Rules, cfg: ServiceConfig, dests: &[DestConfig]) {
    let key = cfg.key;
    r.add_service(cfg).unwrap();
    for d in dests {
        r.add_dest(&key, *d).unwrap();
    }
}

/// Configuration A.
fn fuzz_rules() -> Rules {
    let mut r = Rules::new(WORKERS);
    let (tcp, udp) = (Protocol::Tcp, Protocol::Udp);
    let v4 = vip();
    let v6 = ip("2001:db8::100");
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 80).with_scheduler("wrr"),
        &[
            DestConfig::new(ip("10.1.0.11"), 8080).masq(),
            DestConfig::new(ip("10.1.0.14"), 8080).masq().with_weight(2),
        ],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 81).with_scheduler("rr"),
        &[DestConfig::new(ip("10.1.0.12"), 81)],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 82),
        &[DestConfig::new(ip("10.1.0.15"), 82).with_fwd(tun(TunType::Ipip, TunCsum::NoCsum, 0))],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 83),
        &[DestConfig::new(ip("10.1.0.16"), 83).with_fwd(tun(TunType::Gue, TunCsum::Csum, 6080))],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 443)
            .with_scheduler("wlc")
            .with_persistence(300, None),
        &[
            DestConfig::new(ip("10.1.0.11"), 443).masq(),
            DestConfig::new(ip("10.1.0.12"), 443),
        ],
    );
    add(
        &mut r,
        ServiceConfig::new(udp, v4, 53).with_scheduler("lc"),
        &[DestConfig::new(ip("10.1.0.13"), 53).masq()],
    );
    add(
        &mut r,
        ServiceConfig::new(udp, v4, 54),
        &[DestConfig::new(ip("10.2.0.13"), 53).masq()],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v6, 80),
        &[DestConfig::new(ip("fd00:1::11"), 8080).masq()],
    );
    add(
        &mut r,
        ServiceConfig::new(udp, v6, 53),
        &[DestConfig::new(ip("fd00:1::13"), 53).masq()],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v6, 82),
        &[DestConfig::new(ip("fd00:1::15"), 82).with_fwd(tun(TunType::Gre, TunCsum::NoCsum, 0))],
    );
    add(
        &mut r,
        ServiceConfig::new(tcp, v4, 84),
        &[DestConfig::new(ip("10.1.0.17"), 84).with_weight(0)],
    );
    add(&mut r, ServiceConfig::new(udp, v6, 55), &[]);
    r
}

/// The edits between configurations A and B, as rvsadm makes them.
fn swap_config(r: &mut Rules, to_b: bool) {
    let tcp = Protocol::Tcp;
    let k80 = ServiceKey::new(tcp, vip(), 80);
    let k81 = ServiceKey::new(tcp, vip(), 81);
    let k101 = ServiceKey::new(tcp, ip("10.0.0.101"), 80);
    let w = if to_b { 0 } else { 2 };
    r.edit_dest(
        &k80,
        DestConfig::new(ip("10.1.0.14"), 8080).masq().with_weight(w),
    )
    .unwrap();
    if to_b {
        r.delete_service(&k81).unwrap();
        add(
            r,
            ServiceConfig::new(tcp, ip("10.0.0.101"), 80),
            &[DestConfig::new(ip("10.1.0.11"), 8080).masq()],
        );
    } else {
        r.delete_service(&k101).unwrap();
        add(
            r,
            ServiceConfig::new(tcp, vip(), 81).with_scheduler("rr"),
            &[DestConfig::new(ip("10.1.0.12"), 81)],
        );
    }
}

fn fuzz_net() -> (NetConfig, RouteTable) {
    let mut net = NetConfig::new();
    net.set(
        Iface::new(0, CLI_MAC)
            .with_addr(cidr("10.0.0.254/24"))
            .with_addr(cidr("2001:db8::fe/64"))
            .with_link_local(),
    );
    net.set(
        Iface::new(1, SRV_MAC)
            .with_addr(cidr("10.1.0.254/24"))
            .with_addr(cidr("fd00:1::fe/64"))
            .with_link_local(),
    );
    net.set(
        Iface::new(2, SRV_MAC)
            .on_vlan(1, 7)
            .with_addr(cidr("10.2.0.254/24")),
    );
    let mut routes = RouteTable::from_config(&net);
    routes.set_default(ip("10.0.0.1"), 0).unwrap();
    routes.set_default(ip("2001:db8::1"), 0).unwrap();
    (net, routes)
}

/// Two workers and the control thread's side of their links.
struct Sim {
    workers: Vec<Datapath<VecBuf>>,
    tallies: Vec<Tally>,
    mailboxes: Vec<Sender<WorkerCmd>>,
    rules: Rules,
    config_b: bool,
    /// Every real server of every configuration published, by id.
    dests: Vec<Arc<DestShared>>,
    snaps: SnapshotTx<Snapshot>,
    neighs: SnapshotTx<NeighSnapshot>,
    neigh: NeighTable,
    learned: LearnRx,
    now: Timestamp,
    /// Made by the last tick, to be checked and sent.
    made: Vec<(PortIndex, VecBuf)>,
    ever_held: u64,
}

impl Sim {
    fn new() -> Sim {
        let rules = fuzz_rules();
        let first_config = rules.snapshot();
        let (net, routes) = fuzz_net();
        let routes = Arc::new(routes);
        let mut neigh = NeighTable::new(NeighConfig::default());
        neigh.add_static(
            1,
            ip("10.1.0.11"),
            EthernetAddress([2, 0, 0, 0, 0x11, 0x11]),
        );
        neigh.add_static(0, ip("10.0.0.1"), EthernetAddress([2, 0, 0, 0, 0, 1]));
        let (snaps, snap_rxs) = snapshot_channel::<Snapshot>(WORKERS);
        let (neighs, neigh_rxs) = snapshot_channel::<NeighSnapshot>(WORKERS);
        let (learn, learned) = learn_channel(64);
        let templates = Arc::new(TemplateTable::new(4));
        // Immutable, and costly to make (its Toeplitz tables): made once.
        static OWNERS: OnceLock<OwnerMap> = OnceLock::new();
        let owners = OWNERS
            .get_or_init(|| OwnerMap::new(DEFAULT_KEY, Reta::round_robin(128, WORKERS as u16)))
            .clone();
        let sides = vec![PortSide::Client, PortSide::Server, PortSide::Server];
        let now = Timestamp::from_millis(1);
        let first = neigh.snapshot();
        let mut mailboxes = Vec::new();
        let workers = snap_rxs
            .into_iter()
            .zip(neigh_rxs)
            .enumerate()
            .map(|(w, (snaps, neighs))| {
                let engine = Engine::new(w, CONNS, first_config.clone(), templates.clone(), now);
                let (tx, mailbox) = crossbeam_channel::bounded(1);
                mailboxes.push(tx);
                Datapath::new(Forwarding {
                    engine,
                    net: net.clone(),
                    vip_ports: vec![PortIndex(0)],
                    routes: routes.clone(),
                    neigh: first.clone(),
                    ip_id_start: (w as u16).wrapping_mul(0x4000),
                })
                .with_owners(WorkerIndex(w as u16), owners.clone(), sides.clone())
                .with_links(Links {
                    snaps,
                    neighs,
                    learn: learn.clone(),
                    mailbox,
                    gauges: Arc::default(),
                })
            })
            .collect();
        let mut sim = Sim {
            workers,
            tallies: vec![Tally::default(); WORKERS],
            mailboxes,
            rules,
            config_b: false,
            dests: Vec::new(),
            snaps,
            neighs,
            neigh,
            learned,
            now,
            made: Vec::new(),
            ever_held: 0,
        };
        sim.remember_dests(&first_config);
        sim
    }

    fn remember_dests(&mut self, snap: &Snapshot) {
        for d in snap.services.iter().flat_map(|s| s.dests.iter()) {
            if !self.dests.iter().any(|x| x.id == d.shared.id) {
                self.dests.push(d.shared.clone());
            }
        }
    }

    /// A frame leaving worker `w` on `port`.
    fn send(&mut self, w: usize, port: PortIndex, b: &VecBuf) {
        assert!(port.get() < 2, "worker {w} sent a frame on port {port:?}");
        if let Err(e) = parse_frame(b.data()) {
            panic!(
                "worker {w} sent an unparsable frame on port {port:?} ({e:?}): {:02x?}",
                b.data()
            );
        }
        self.tallies[w].tx += 1;
    }

    /// One worker decides frames that arrived on (or were handed in from)
    /// `port`; returns what it hands to the other worker.
    fn decide(
        &mut self,
        w: usize,
        port: PortIndex,
        mut bufs: Vec<VecBuf>,
        handed_in: bool,
    ) -> Vec<(usize, PortIndex, VecBuf)> {
        let mut away = Vec::new();
        let mut out = [Outcome::Drop(crate::drops::DropReason::Malformed); BURST];
        let n = bufs.len();
        debug_assert!(n <= BURST);
        if handed_in {
            self.tallies[w].handoff_in += n as u64;
        } else {
            self.tallies[w].rx += n as u64;
        }
        let now = self.now;
        // Each TCP/UDP frame's sender, to check the errors made in its place.
        let senders: Vec<Option<IpAddr>> = bufs
            .iter()
            .map(|b| {
                parse_frame(b.data())
                    .ok()
                    .filter(|h| matches!(h.protocol, IpProtocol::TCP | IpProtocol::UDP))
                    .map(|h| h.src)
            })
            .collect();
        self.workers[w].process_burst(port, &mut bufs, now, &mut out[..n]);
        for (i, b) in bufs.into_iter().enumerate() {
            match out[i] {
                Outcome::Tx(p) => {
                    if let (Some(src), Ok(h)) = (senders[i], parse_frame(b.data())) {
                        if h.is_icmp_error() {
                            assert_eq!(
                                (p, h.dst),
                                (port, src),
                                "worker {w}: an error made for a frame from {src} on {port:?}"
                            );
                        }
                    }
                    self.send(w, p, &b)
                }
                Outcome::Hold => {
                    if let Err(e) = parse_frame(b.data()) {
                        panic!(
                            "worker {w} held an unparsable frame ({e:?}): {:02x?}",
                            b.data()
                        );
                    }
                    self.ever_held += 1;
                    let t = &mut self.tallies[w];
                    self.workers[w].hold(i, b, now, t);
                }
                Outcome::Handoff(to) => {
                    assert!(!handed_in, "worker {w} handed on a frame handed to it");
                    assert!(
                        to.get() < WORKERS && to.get() != w,
                        "worker {w} handed a frame to {to:?}"
                    );
                    self.tallies[w].handoff_out += 1;
                    away.push((to.get(), port, b));
                }
                Outcome::Drop(r) => self.tallies[w].drops.bump(r),
                Outcome::Kernel => self.tallies[w].to_kernel += 1,
            }
        }
        away
    }

    /// A burst: each worker's frames by port, then what they handed to
    /// each other (the owner takes them in runs of one port, like the
    /// worker loop), then a tick of each.
    fn burst(&mut self, frames: &mut Vec<(usize, PortIndex, VecBuf)>) {
        let mut handed: Vec<(usize, PortIndex, VecBuf)> = Vec::new();
        for w in 0..WORKERS {
            for p in 0..2u16 {
                let mine: Vec<VecBuf> = extract(frames, |&(fw, fp, _)| fw == w && fp.0 == p);
                if !mine.is_empty() {
                    handed.extend(self.decide(w, PortIndex(p), mine, false));
                }
            }
        }
        frames.clear();
        for w in 0..WORKERS {
            for p in 0..2u16 {
                let mine: Vec<VecBuf> = extract(&mut handed, |&(hw, hp, _)| hw == w && hp.0 == p);
                for chunk in chunks(mine) {
                    let back = self.decide(w, PortIndex(p), chunk, true);
                    assert!(back.is_empty());
                }
            }
        }
        self.tick();
    }

    fn tick(&mut self) {
        let now = self.now;
        for w in 0..WORKERS {
            let mut made = std::mem::take(&mut self.made);
            let t = &mut self.tallies[w];
            self.workers[w].tick(
                now,
                |n| Some(VecBuf::new(n.max(1920) + 128, 128)),
                &mut made,
                t,
            );
            for (p, b) in made.drain(..) {
                self.send(w, p, &b);
            }
            self.made = made;
            // Reassembled datagrams the other worker owns: handed over
            // and decided there.
            let away: Vec<_> = self.workers[w].take_handoffs().collect();
            for (to, port, b) in away {
                self.tallies[w].handoff_out += 1;
                let back = self.decide(to.get(), port, vec![b], true);
                assert!(back.is_empty(), "handed off twice");
            }
        }
    }

    /// The control thread's turn, as `ctl` bit 7 and the length's top
    /// bits ask.
    fn control(&mut self, learn: bool, ops: u16) {
        if ops & 0x1000 != 0 {
            self.config_b = !self.config_b;
            swap_config(&mut self.rules, self.config_b);
            let snap = self.rules.snapshot();
            self.remember_dests(&snap);
            self.snaps.publish(&snap);
        }
        if ops & 0x4000 != 0 {
            self.neigh.expire(self.now);
        }
        if learn {
            self.neigh.apply(&self.learned, 256, self.now);
        }
        if (learn || ops & 0x4000 != 0) && self.neigh.is_dirty() {
            let s = self.neigh.snapshot();
            self.neighs.publish(&s);
        }
        if ops & 0x2000 != 0 {
            let mut replies = Vec::new();
            for m in &self.mailboxes {
                let (tx, rx) = crossbeam_channel::bounded(1);
                m.send(WorkerCmd::ListConns {
                    from: 0,
                    max: usize::MAX,
                    reply: tx,
                })
                .unwrap();
                replies.push(rx);
            }
            // Answered at the next housekeeping: a millisecond on.
            self.now = Timestamp(self.now.0 + 1);
            self.tick();
            for (w, rx) in replies.iter().enumerate() {
                let list = rx.try_recv().expect("worker answered the listing").conns;
                let conns = self.workers[w].engine().conn_count();
                assert!(
                    list.len() >= conns,
                    "worker {w} listed {} of {conns}",
                    list.len()
                );
            }
        }
    }

    /// Half an hour on (the longest timeout is 900 s, persistence 300 s),
    /// in steps the connection table's timing wheel keeps up with: nothing
    /// is held any more, no connection is left, and no real server counts
    /// a connection or a template.
    fn drain(&mut self) {
        for _ in 0..30 {
            self.now = Timestamp(self.now.0 + 60_000);
            self.tick();
        }
        for (w, d) in self.workers.iter().enumerate() {
            assert_eq!(d.held(), 0, "worker {w} still holds frames");
            assert_eq!(
                d.engine().conn_count(),
                0,
                "worker {w} still has connections"
            );
        }
        for d in &self.dests {
            assert_eq!(
                (d.active(), d.inactive(), d.persistent()),
                (0, 0, 0),
                "{}:{} still counts connections",
                d.addr,
                d.port
            );
        }
    }

    /// Everything balances; frames held are the frames counted as held.
    fn check_tallies(&self) {
        for (w, t) in self.tallies.iter().enumerate() {
            assert!(t.balanced(), "worker {w} unbalanced: {t:?}");
            assert_eq!(
                t.held,
                self.workers[w].held() as u64,
                "worker {w} holds other frames than it counts"
            );
        }
    }
}

/// Takes the frames `f` selects out of `v`, in order.
fn extract<T>(
    v: &mut Vec<(usize, PortIndex, T)>,
    f: impl Fn(&(usize, PortIndex, T)) -> bool,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut rest = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if f(&x) {
            out.push(x.2);
        } else {
            rest.push(x);
        }
    }
    *v = rest;
    out
}

fn chunks(mut v: Vec<VecBuf>) -> Vec<Vec<VecBuf>> {
    let mut out = Vec::new();
    while v.len() > BURST {
        let rest = v.split_off(BURST);
        out.push(v);
        v = rest;
    }
    if !v.is_empty() {
        out.push(v);
    }
    out
}

/// What became of an input's frames, summed over the workers (for tests
/// that check a seed reaches what it is meant to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rx: u64,
    /// Sent out, made frames and released ones included.
    pub tx: u64,
    pub handed_off: u64,
    /// Held at some point.
    pub held: u64,
    pub originated: u64,
    /// New connections refused: answered with port unreachable, or not
    /// for the rate limits.
    pub refused: u64,
}

/// Runs one input (see the module's documentation); panics on a broken
/// rule.
pub fn fuzz_one(data: &[u8]) -> Summary {
    let mut sim = Sim::new();
    let mut frames: Vec<(usize, PortIndex, VecBuf)> = Vec::new();
    let mut rest = data;
    let mut last_ops = 0;
    while rest.len() >= HEADER {
        let ctl = rest[0];
        let word = u16::from_be_bytes([rest[1], rest[2]]);
        last_ops = word;
        let len = ((word & 0x0fff) as usize).min(rest.len() - HEADER);
        let frame = &rest[HEADER..HEADER + len];
        rest = &rest[HEADER + len..];
        let buf = if ctl & 4 != 0 {
            VecBuf::with_frame(frame, 0, 0)
        } else {
            VecBuf::from_frame(frame)
        };
        frames.push(((ctl >> 1 & 1) as usize, PortIndex((ctl & 1) as u16), buf));
        let end = ctl & 8 != 0 || rest.len() < HEADER;
        // One worker's frames of one port are one call at most.
        if !end && frames.len() < BURST {
            continue;
        }
        sim.burst(&mut frames);
        if end {
            sim.control(ctl & 0x80 != 0, word);
            sim.now = Timestamp(sim.now.0 + ADVANCE_MS[(ctl >> 4 & 7) as usize]);
        }
        sim.check_tallies();
    }
    let drain = last_ops & 0x8000 != 0;
    if drain {
        sim.drain();
    }
    sim.check_tallies();
    let mut sum = Summary::default();
    for t in &sim.tallies {
        sum.rx += t.rx;
        sum.tx += t.tx;
        sum.handed_off += t.handoff_out;
        sum.originated += t.originated;
    }
    sum.held = sim.ever_held;
    for d in &sim.workers {
        let r = d.refusals();
        sum.refused += r.answered + r.rate_limited;
    }
    sum
}

/// One record of an input: `frame` arriving on `port` of `worker`, the
/// burst ending after it when `end`, with `after` (the `ctl` bits 4-7 and
/// the length's top bits, as in the module's documentation).
pub fn record(
    out: &mut Vec<u8>,
    port: u8,
    worker: u8,
    end: bool,
    after: u8,
    ops: u16,
    frame: &[u8],
) {
    let ctl = (port & 1) | (worker & 1) << 1 | (end as u8) << 3 | (after & 0xf) << 4;
    out.push(ctl);
    let word = (frame.len().min(0x0fff) as u16) | (ops & 0xf000);
    out.extend_from_slice(&word.to_be_bytes());
    out.extend_from_slice(&frame[..frame.len().min(0x0fff)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seeds (`fuzz/seeds.py`) reach what they are for:
    /// forwarding, holds and their release, hand-offs, frames made; each
    /// one alone sends something.
    #[test]
    fn seeds_reach_the_datapath() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/datapath");
        let mut total = Summary::default();
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let s = fuzz_one(&std::fs::read(&path).unwrap());
            assert!(s.tx > 0, "{} sends nothing: {s:?}", path.display());
            total.tx += s.tx;
            total.held += s.held;
            total.handed_off += s.handed_off;
            total.originated += s.originated;
            n += 1;
        }
        assert!(n >= 5, "{n} seeds in {dir}");
        assert!(
            total.held > 0 && total.handed_off > 0 && total.originated > 0,
            "{total:?}"
        );
    }

    /// Every reproducer kept under `fuzz/regressions/<target>/` passes
    /// its target (`scripts/fuzz` runs them too, as a corpus).
    #[test]
    fn regressions_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 4] = [
            ("wire", crate::wire::fuzz::fuzz_one),
            ("forward", crate::lb::forward::fuzz_one),
            ("classify", crate::net::fuzzkit::fuzz_one),
            ("datapath", |d| {
                fuzz_one(d);
            }),
        ];
        for (target, run) in targets {
            let Ok(dir) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for e in dir {
                let path = e.unwrap().path();
                eprintln!("{target}: {}", path.display());
                run(&std::fs::read(&path).unwrap());
            }
        }
    }

    /// New connections to the services that take none: SYNs to TCP :84
    /// (its real server at weight 0) from one client on both workers, a
    /// UDP datagram to [2001:db8::100]:55 (none): answered (the rules
    /// above hold: back to the sender, by the port they came in on), then
    /// held back by the rate limits; each counted once.
    #[test]
    fn refusals_go_back_to_the_sender() {
        use crate::lb::forward::testutil::Pkt;
        let peer = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let on_port0 = |p: Pkt| {
            p.with(|p| {
                p.dst_mac = CLI_MAC;
                p.src_mac = peer;
            })
            .frame()
        };
        let mut input = Vec::new();
        for k in 0..10u16 {
            let mut f = on_port0(Pkt::tcp(ip("192.0.2.7"), 3000 + k, vip(), 84));
            let mut t = crate::wire::tcp::Packet::new_unchecked(&mut f[14 + 20..]);
            t.set_flags(crate::wire::tcp::Flags::SYN);
            t.fill_checksum(&ip("192.0.2.7"), &vip());
            record(&mut input, 0, (k & 1) as u8, false, 0, 0, &f);
        }
        let f = on_port0(Pkt::udp(ip("2001:db8:7::7"), 5353, ip("2001:db8::100"), 55));
        record(&mut input, 0, 0, true, 0, 0, &f);
        let s = fuzz_one(&input);
        assert_eq!(s.refused, 11, "{s:?}");
        // Six per worker for 192.0.2.7, one for the IPv6 client; the SYNs
        // owned by the other worker are handed to it first.
        assert!(s.tx >= 7 && s.tx <= 11, "{s:?}");
    }

    /// The empty input, garbage, and the configuration builds.
    #[test]
    fn small_inputs() {
        fuzz_one(&[]);
        for n in 0..64 {
            fuzz_one(&vec![0xffu8; n]);
            fuzz_one(&vec![0x08u8; n]);
        }
    }
}
