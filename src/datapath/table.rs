//! The datapath's table test, Katran style: each step is a description, an
//! input frame (or a tick of the clock, or a new configuration or
//! neighbour snapshot from the control thread), the outcome expected, and
//! the output frames expected, built independently of the rewrite (full
//! checksums from `wire`'s emitters, not rvs's incremental updates).
//!
//! It drives two workers' [`Datapath`]s the way the worker loop does, with
//! no EAL: owner routing and hand-off between them, a neighbour hold, its
//! request and its release, snapshot pickup, and every drop reason the
//! datapath decides. Afterwards each worker's [`Tally`] balances exactly.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::drops::DropCounts;
use crate::lb::dest::{DestConfig, FwdMethod, TunCsum, TunType};
use crate::lb::forward::testutil::{framed, icmp_error, ip_datagram, Pkt};
use crate::lb::persist::TemplateTable;
use crate::lb::rules::Rules;
use crate::lb::service::{Protocol, ServiceConfig, ServiceKey};
use crate::net::testutil::{arp_frame, echo4_frame, icmp6_frame, ns_frame, OUR_MAC, PEER_MAC};
use crate::net::{
    snapshot_channel, Iface, IpCidr, NeighConfig, NeighTable, NetConfig, PendingConfig, SnapshotTx,
};
use crate::rss::{OwnerMap, Reta, DEFAULT_KEY};
use crate::wire::buf::{VecBuf, DEFAULT_DATAROOM, DEFAULT_HEADROOM};
use crate::wire::{tcp, EthernetAddress, IpProtocol};

const SRV_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0xfe]);
const RS1_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0x11, 0x11]);
const RS2_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0x12, 0x12]);
const CLIENT: &str = "10.0.0.1";
const VIP: &str = "10.0.0.100";
const RS1: &str = "10.1.0.11";
const RS2: &str = "10.1.0.12";
const RS3: &str = "10.1.0.13";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The world: port 0 faces the clients (10.0.0.2/24, 2001:db8::2/64, the
/// VIP 10.0.0.100), port 1 the real servers (10.1.0.254/24). Services on
/// the VIP: :80 NAT to RS1:8080, :81 DR to RS2, :82 IPIP to RS1, :83 with
/// no real server, :85 DR to RS3, :86 DR round robin over 65 servers that
/// never answer (10.1.0.100 to .164). MACs known: the client's and RS1's.
fn rules() -> Rules {
    let mut r = Rules::new(2);
    let tcp = Protocol::Tcp;
    let svc = |port| ServiceKey::new(tcp, ip(VIP), port);
    for port in [80, 81, 82, 83, 85, 86] {
        r.add_service(ServiceConfig::new(tcp, ip(VIP), port).with_scheduler("rr"))
            .unwrap();
    }
    r.add_dest(&svc(80), DestConfig::new(ip(RS1), 8080).masq())
        .unwrap();
    r.add_dest(&svc(81), DestConfig::new(ip(RS2), 81)).unwrap();
    let ipip = FwdMethod::Tunnel {
        tun_type: TunType::Ipip,
        port: 0,
        csum: TunCsum::NoCsum,
    };
    r.add_dest(&svc(82), DestConfig::new(ip(RS1), 82).with_fwd(ipip))
        .unwrap();
    r.add_dest(&svc(85), DestConfig::new(ip(RS3), 85)).unwrap();
    for host in 0..hold_addrs() {
        r.add_dest(
            &svc(86),
            DestConfig::new(ip(&format!("10.1.0.{}", 100 + host)), 86),
        )
        .unwrap();
    }
    r
}

/// One more next hop than the hold waits for at a time.
fn hold_addrs() -> usize {
    PendingConfig::default().max_addrs + 1
}

struct Lab {
    workers: Vec<Datapath<VecBuf>>,
    /// The control thread's rules.
    rules: Rules,
    tallies: Vec<Tally>,
    snaps: SnapshotTx<Snapshot>,
    neighs: SnapshotTx<NeighSnapshot>,
    neigh: NeighTable,
    now: Timestamp,
    /// Frames transmitted by ticks since the last look: (worker, port, frame).
    ticked: Vec<(usize, PortIndex, Vec<u8>)>,
}

/// Each worker's connection table.
const CONNS: usize = 1024;

fn lab() -> Lab {
    let r = rules();
    let mut net = NetConfig::new();
    net.set(
        Iface::new(0, OUR_MAC)
            .with_addr("10.0.0.2/24".parse::<IpCidr>().unwrap())
            .with_addr("2001:db8::2/64".parse::<IpCidr>().unwrap())
            .with_link_local(),
    );
    net.set(Iface::new(1, SRV_MAC).with_addr("10.1.0.254/24".parse::<IpCidr>().unwrap()));
    let routes = Arc::new(RouteTable::from_config(&net));
    let mut neigh = NeighTable::new(NeighConfig::default());
    neigh.add_static(0, ip(CLIENT), PEER_MAC);
    neigh.add_static(1, ip(RS1), RS1_MAC);
    let (snaps, snap_rxs) = snapshot_channel::<Snapshot>(2);
    let (neighs, neigh_rxs) = snapshot_channel::<NeighSnapshot>(2);
    let (learn, _learned) = crate::net::learn_channel(64);
    let templates = Arc::new(TemplateTable::new(4));
    let owners = OwnerMap::new(DEFAULT_KEY, Reta::round_robin(128, 2));
    let sides = vec![PortSide::Client, PortSide::Server];
    let workers = snap_rxs
        .into_iter()
        .zip(neigh_rxs)
        .enumerate()
        .map(|(w, (snaps, neighs))| {
            let engine = Engine::new(w, CONNS, r.snapshot(), templates.clone(), Timestamp::ZERO);
            let (_, mailbox) = crossbeam_channel::bounded(1);
            Datapath::new(Forwarding {
                engine,
                net: net.clone(),
                vip_ports: vec![PortIndex(0)],
                routes: routes.clone(),
                neigh: neigh.snapshot(),
                ip_id_start: 7,
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
    Lab {
        workers,
        rules: r,
        tallies: vec![Tally::default(), Tally::default()],
        snaps,
        neighs,
        neigh,
        now: Timestamp::from_millis(1),
        ticked: Vec::new(),
    }
}

/// A client source port whose connection worker `w` owns.
fn sport_owned_by(w: u16, from: u16) -> u16 {
    let owners = OwnerMap::new(DEFAULT_KEY, Reta::round_robin(128, 2));
    (from..)
        .find(|p| owners.owner(ip(CLIENT), *p) == w)
        .unwrap()
}

/// A TCP/IPv4 frame with full checksums.
#[allow(clippy::too_many_arguments)]
/// An IPv4 fragment from the client to the VIP: flags and offset
/// `flg_off`, IP id `id`, `len` bytes of data.
fn frag4(flg_off: u16, id: u16, len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&OUR_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((20 + len) as u16).to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flg_off.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 100]);
    f.extend(std::iter::repeat_n(0x33, len));
    let c = crate::wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn tcp4(
    macs: (EthernetAddress, EthernetAddress),
    src: (&str, u16),
    dst: (&str, u16),
    flags: tcp::Flags,
    ttl: u8,
    payload: usize,
    df: bool,
) -> Vec<u8> {
    let p = Pkt::tcp(ip(src.0), src.1, ip(dst.0), dst.1).with(|p| {
        p.dst_mac = macs.0;
        p.src_mac = macs.1;
        p.ttl = ttl;
        p.df = df;
        p.payload = vec![0x5a; payload];
    });
    let mut l4 = vec![0u8; 20 + payload];
    l4[20..].fill(0x5a);
    tcp::Repr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: 1000,
        ack_number: if flags.0 & 0x10 != 0 { 1 } else { 0 },
        flags,
        window_len: 8192,
        urgent_at: 0,
        payload_len: payload,
    }
    .emit(&mut tcp::Packet::new_unchecked(&mut l4[..]), &p.src, &p.dst)
    .unwrap();
    framed(
        p.dst_mac,
        p.src_mac,
        None,
        &ip_datagram(&p, IpProtocol::TCP, &l4),
    )
}

const SYN: tcp::Flags = tcp::Flags::SYN;
const ACK: tcp::Flags = tcp::Flags::ACK;

/// A client's segment to the VIP.
fn to_vip(sport: u16, vport: u16, flags: tcp::Flags) -> Vec<u8> {
    tcp4(
        (OUR_MAC, PEER_MAC),
        (CLIENT, sport),
        (VIP, vport),
        flags,
        64,
        0,
        true,
    )
}

/// `frame` (IPv4, no options) with `opts` (a multiple of 4 bytes) added
/// to its header, lengths and checksum made right.
fn with_ipv4_options(frame: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut f = [&frame[..34], opts, &frame[34..]].concat();
    f[14] += (opts.len() / 4) as u8;
    let tl = u16::from_be_bytes([f[16], f[17]]) + opts.len() as u16;
    f[16..18].copy_from_slice(&tl.to_be_bytes());
    f[24..26].fill(0);
    let c = crate::wire::checksum::checksum(&f[14..34 + opts.len()]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// Whether an output frame is right.
type Check = fn(&[u8]) -> bool;

/// What the steps expect of a frame.
#[derive(Debug)]
enum Want {
    /// Transmitted on this port, exactly these bytes.
    Tx(u16, Vec<u8>),
    /// Transmitted on this port; the check says whether it is right.
    TxWhere(u16, Check),
    /// Handed to this worker, which then decides as the inner `Want`.
    Handoff(u16, Box<Want>),
    /// Held for its next hop (and refused by the hold with the reason, if
    /// one is given).
    Hold(Option<DropReason>),
    Drop(DropReason),
}

enum Step {
    /// A frame into `worker` on `port`; `room` is the buffer's
    /// (headroom, tailroom).
    Frame {
        desc: &'static str,
        worker: usize,
        port: PortIndex,
        input: Vec<u8>,
        room: (usize, usize),
        want: Want,
    },
    /// The clock moves by `ms` and every worker ticks; the frames they
    /// send, in order, are checked with `want` (port and check).
    Tick {
        desc: &'static str,
        ms: u64,
        want: Vec<(u16, Check)>,
    },
    /// The control thread learns a neighbour and publishes a snapshot.
    Learn(u16, &'static str, EthernetAddress),
    /// The control thread publishes a new rule set.
    /// The control thread deletes a real server (service port, address,
    /// port) and publishes the rules.
    DeleteDest(u16, &'static str, u16),
}

/// Into the worker that owns the frame (no hand-off).
const OWNER: usize = usize::MAX;

fn frame(desc: &'static str, port: PortIndex, input: Vec<u8>, want: Want) -> Step {
    Step::Frame {
        desc,
        worker: OWNER,
        port,
        input,
        room: (DEFAULT_HEADROOM, DEFAULT_DATAROOM - DEFAULT_HEADROOM - 1600),
        want,
    }
}

/// The same step, into worker `w` whoever owns the frame.
fn on_worker(w: usize, mut step: Step) -> Step {
    if let Step::Frame { worker, .. } = &mut step {
        *worker = w;
    }
    step
}

impl Lab {
    /// One frame through worker `w` as the worker loop moves it.
    fn run(
        &mut self,
        w: usize,
        port: PortIndex,
        mut buf: VecBuf,
    ) -> (Outcome, Option<Outcome>, VecBuf, DropCounts) {
        let before = self
            .tallies
            .iter()
            .map(|t| t.drops.clone())
            .collect::<Vec<_>>();
        let o = self.workers[w].process_one(port, &mut buf, self.now);
        let mut next = None;
        let mut fin = o;
        let mut at = w;
        if let Outcome::Handoff(to) = o {
            self.tallies[w].handoff_out += 1;
            at = to.get();
            self.tallies[at].handoff_in += 1;
            fin = self.workers[at].process_one(port, &mut buf, self.now);
            next = Some(fin);
        }
        let kept = buf.clone();
        match fin {
            Outcome::Tx(_) => self.tallies[at].tx += 1,
            Outcome::Hold => self.workers[at].hold(0, buf, self.now, &mut self.tallies[at]),
            Outcome::Drop(r) => self.tallies[at].drops.bump(r),
            Outcome::Handoff(_) => panic!("handed off twice"),
            Outcome::Kernel => self.tallies[at].to_kernel += 1,
        }
        let mut diff = DropCounts::default();
        for (t, b) in self.tallies.iter().zip(&before) {
            for (i, (x, y)) in t.drops.0.iter().zip(b.0.iter()).enumerate() {
                diff.0[i] += x - y;
            }
        }
        (o, next, kept, diff)
    }

    /// Runs one step and checks what it wants.
    fn step(&mut self, step: Step) {
        match step {
            Step::Frame {
                desc,
                worker,
                port,
                input,
                room,
                want,
            } => {
                let worker = if worker == OWNER {
                    let mut h = crate::wire::parse::Headers::EMPTY;
                    let owner = match crate::wire::parse::parse_frame_into(&input, &mut h) {
                        Ok(()) => self.workers[0].foreign_owner(port, &h),
                        Err(_) => None,
                    };
                    owner.map_or(0, |w| w.get())
                } else {
                    worker
                };
                self.tallies[worker].rx += 1;
                let buf = VecBuf::with_frame(&input, room.0, room.1);
                let (o, next, out, refused) = self.run(worker, port, buf);
                check(desc, &want, o, next, out.data(), &refused);
            }
            Step::Tick { desc, ms, want } => {
                self.ticked.clear();
                self.tick(ms);
                let got: Vec<_> = self
                    .ticked
                    .iter()
                    .map(|(_, p, f)| (*p, f.clone()))
                    .collect();
                assert_eq!(got.len(), want.len(), "{desc}: {got:02x?}");
                for ((p, f), (wp, ok)) in got.iter().zip(&want) {
                    assert_eq!(*p, PortIndex(*wp), "{desc}");
                    assert!(ok(f), "{desc}: {f:02x?}");
                }
            }
            Step::Learn(port, addr, mac) => {
                self.neigh.add_static(port, ip(addr), mac);
                self.neighs.publish(&self.neigh.snapshot());
            }
            Step::DeleteDest(vport, addr, port) => {
                let key = ServiceKey::new(Protocol::Tcp, ip(VIP), vport);
                self.rules.delete_dest(&key, ip(addr), port).unwrap();
                self.snaps.publish(&self.rules.snapshot());
            }
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now = Timestamp(self.now.0 + ms);
        for w in 0..self.workers.len() {
            let mut out = Vec::new();
            self.workers[w].tick(
                self.now,
                |n: usize| {
                    Some(VecBuf::new(
                        n.max(DEFAULT_DATAROOM) + DEFAULT_HEADROOM,
                        DEFAULT_HEADROOM,
                    ))
                },
                &mut out,
                &mut self.tallies[w],
            );
            for (p, b) in out {
                self.tallies[w].tx += 1;
                self.ticked.push((w, p, b.to_vec()));
            }
        }
    }
}

fn check(
    desc: &str,
    want: &Want,
    got: Outcome,
    next: Option<Outcome>,
    out: &[u8],
    refused: &DropCounts,
) {
    match want {
        Want::Tx(p, bytes) => {
            assert_eq!(got, Outcome::Tx(PortIndex(*p)), "{desc}");
            assert_eq!(out, bytes.as_slice(), "{desc}: output frame");
        }
        Want::TxWhere(p, ok) => {
            assert_eq!(got, Outcome::Tx(PortIndex(*p)), "{desc}");
            assert!(ok(out), "{desc}: output frame {out:02x?}");
        }
        Want::Handoff(w, then) => {
            assert_eq!(got, Outcome::Handoff(WorkerIndex(*w)), "{desc}");
            check(
                desc,
                then,
                next.expect("the owner decided"),
                None,
                out,
                refused,
            );
        }
        Want::Hold(why) => {
            assert_eq!(got, Outcome::Hold, "{desc}");
            match why {
                Some(r) => assert!(refused.get(*r) >= 1, "{desc}: refused by the hold"),
                None => assert_eq!(refused.total(), 0, "{desc}: held"),
            }
        }
        Want::Drop(r) => assert_eq!(got, Outcome::Drop(*r), "{desc}"),
    }
}

/// Reasons no frame into the datapath can produce, and why.
const NOT_FROM_A_FRAME: &[(DropReason, &str)] = &[
    (
        DropReason::Direction,
        "the engine matches replies to NAT connections only",
    ),
    (
        DropReason::FragEvicted,
        "needs more datagrams than the table's steps: net::reassembly's tests",
    ),
    (
        DropReason::FragNoBuffer,
        "a tick without buffers: datapath::tests::fragments_without_buffers",
    ),
    (
        DropReason::NoPort,
        "the worker loop's: a port index or worker it does not have",
    ),
    (DropReason::TxFull, "the worker loop's: its transmit queue"),
    (
        DropReason::HandoffFull,
        "the worker loop's: its hand-off ring",
    ),
    (
        DropReason::TwinFull,
        "the worker loop's: its ring to the kernel twin",
    ),
    (
        DropReason::NoScheduler,
        "the rules refuse an unknown scheduler before a snapshot has it",
    ),
    (
        DropReason::BadHeaders,
        "the parser rejects it first (malformed)",
    ),
    (DropReason::Family, "the rules refuse mixed-family NAT"),
    (
        DropReason::NoDest,
        "what the input checks admit may be answered (port unreachable); lb::forward tests",
    ),
    (
        DropReason::RewriteFragment,
        "fragments are dropped before the rewrite (fragment)",
    ),
    (
        DropReason::RewriteUnsupported,
        "the datapath sends only TCP/UDP and their ICMP errors to the rewrite",
    ),
    (
        DropReason::NoLocalAddr,
        "needs a port without an address of the real server's family; lb::forward tests",
    ),
];

#[test]
fn datapath_table() {
    let mut lab = lab();
    let s0 = sport_owned_by(0, 40000);
    let s0b = sport_owned_by(0, s0 + 1);
    let s1 = sport_owned_by(1, 40000);
    let s_far = sport_owned_by(0, s0b + 1);
    let far = |sport| {
        tcp4(
            (OUR_MAC, PEER_MAC),
            ("198.51.100.7", sport),
            (VIP, 80),
            SYN,
            64,
            0,
            true,
        )
    };
    let far_sport = (41000u16..)
        .find(|p| {
            OwnerMap::new(DEFAULT_KEY, Reta::round_robin(128, 2)).owner(ip("198.51.100.7"), *p) == 0
        })
        .unwrap();
    let nat_in = |sport, flags| {
        tcp4(
            (RS1_MAC, SRV_MAC),
            (CLIENT, sport),
            (RS1, 8080),
            flags,
            63,
            0,
            true,
        )
    };
    let nat_out_in = |sport| {
        tcp4(
            (SRV_MAC, RS1_MAC),
            (RS1, 8080),
            (CLIENT, sport),
            ACK,
            64,
            0,
            true,
        )
    };
    let nat_out = |sport| {
        tcp4(
            (PEER_MAC, OUR_MAC),
            (VIP, 80),
            (CLIENT, sport),
            ACK,
            63,
            0,
            true,
        )
    };
    let dr_in = |sport| {
        tcp4(
            (OUR_MAC, PEER_MAC),
            (CLIENT, sport),
            (VIP, 81),
            SYN,
            64,
            0,
            true,
        )
    };
    let held_to = |sport| {
        tcp4(
            (OUR_MAC, PEER_MAC),
            (CLIENT, sport),
            (VIP, 85),
            SYN,
            64,
            0,
            true,
        )
    };
    let _ = s_far;

    let mut steps = vec![
        // Forwarding, on the owner.
        frame(
            "NAT in: a SYN to VIP:80 goes to RS1:8080",
            PortIndex(0),
            to_vip(s0, 80, SYN),
            Want::Tx(1, nat_in(s0, SYN)),
        ),
        frame(
            "NAT in: the connection's ACK follows it",
            PortIndex(0),
            to_vip(s0, 80, ACK),
            Want::Tx(1, nat_in(s0, ACK)),
        ),
        frame(
            "NAT out: RS1's reply leaves from the VIP",
            PortIndex(1),
            nat_out_in(s0),
            Want::Tx(0, nat_out(s0)),
        ),
        // Owner routing between two workers.
        on_worker(
            0,
            frame(
                "owner routing: worker 1's client endpoint is handed to it, which forwards",
                PortIndex(0),
                to_vip(s1, 80, SYN),
                Want::Handoff(1, Box::new(Want::Tx(1, nat_in(s1, SYN)))),
            ),
        ),
        on_worker(
            0,
            frame(
                "owner routing: the reply to worker 1's client reaches worker 1 too",
                PortIndex(1),
                nat_out_in(s1),
                Want::Handoff(1, Box::new(Want::Tx(0, nat_out(s1)))),
            ),
        ),
        // The neighbour hold: RS2's MAC is not known.
        frame(
            "DR to RS2, whose MAC is unknown: held",
            PortIndex(0),
            dr_in(s0b),
            Want::Hold(None),
        ),
        Step::Tick {
            desc: "the hold asks for RS2 (an ARP request on the server port)",
            ms: 1,
            want: vec![(1, |f| {
                f[12..14] == [8, 6] && f[20..22] == [0, 1] && f[38..42] == [10, 1, 0, 12]
            })],
        },
        Step::Learn(1, RS2, RS2_MAC),
        Step::Tick {
            desc: "RS2 answered: the held frame leaves with its MAC",
            ms: 1,
            want: vec![(1, |f| f == dr_out_frame().as_slice())],
        },
        // Local traffic.
        frame(
            "ARP for the VIP on the client port is answered from the port's MAC",
            PortIndex(0),
            arp_frame(1, PEER_MAC, CLIENT, VIP),
            Want::TxWhere(0, |f| {
                f[20..22] == [0, 2] && f[22..28] == OUR_MAC.0 && f[28..32] == [10, 0, 0, 100]
            }),
        ),
        frame(
            "ARP for someone else",
            PortIndex(0),
            arp_frame(1, PEER_MAC, CLIENT, "10.0.0.77"),
            Want::Drop(DropReason::ArpNotOurs),
        ),
        frame(
            "an ARP reply to us is learned, nothing sent",
            PortIndex(0),
            arp_frame(2, PEER_MAC, CLIENT, "10.0.0.2"),
            Want::Drop(DropReason::ArpHandled),
        ),
        frame(
            "someone else claims our address",
            PortIndex(0),
            arp_frame(
                2,
                EthernetAddress([2, 9, 9, 9, 9, 9]),
                "10.0.0.2",
                "10.0.0.2",
            ),
            Want::Drop(DropReason::ArpConflict),
        ),
        frame(
            "ARP that is not Ethernet/IPv4",
            PortIndex(0),
            {
                let mut f = arp_frame(1, PEER_MAC, CLIENT, VIP);
                f[15] = 6;
                f
            },
            Want::Drop(DropReason::ArpInvalid),
        ),
        frame(
            "ping to the port's address is answered",
            PortIndex(0),
            echo4_frame(CLIENT, "10.0.0.2", b"ping"),
            Want::TxWhere(0, |f| f[34] == 0 && f[26..30] == [10, 0, 0, 2]),
        ),
        frame(
            "ping with a bad checksum",
            PortIndex(0),
            {
                let mut f = echo4_frame(CLIENT, "10.0.0.2", b"ping");
                f[36] ^= 0xff;
                f
            },
            Want::Drop(DropReason::EchoInvalid),
        ),
        frame(
            "TCP to the port's own address",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, s0),
                ("10.0.0.2", 22),
                SYN,
                64,
                0,
                true,
            ),
            Want::Drop(DropReason::Local),
        ),
        frame(
            "a neighbour solicitation for the port's IPv6 address is answered",
            PortIndex(0),
            ns_frame("2001:db8::1", "2001:db8::2", true),
            Want::TxWhere(0, |f| f[54] == 136),
        ),
        frame(
            "a solicitation for someone else",
            PortIndex(0),
            ns_frame("2001:db8::1", "2001:db8::77", true),
            Want::Drop(DropReason::NdNotOurs),
        ),
        frame(
            "a solicitation with a hop limit below 255",
            PortIndex(0),
            {
                let mut f = ns_frame("2001:db8::1", "2001:db8::2", true);
                f[21] = 64;
                f
            },
            Want::Drop(DropReason::NdInvalid),
        ),
        Step::Frame {
            desc: "a solicitation without room for the answer's option",
            worker: OWNER,
            port: PortIndex(0),
            input: ns_frame("2001:db8::1", "2001:db8::2", false),
            room: (0, 0),
            want: Want::Drop(DropReason::NdNoRoom),
        },
        frame(
            "an advertisement to us is learned, nothing sent",
            PortIndex(0),
            crate::net::testutil::na_frame(
                "2001:db8::1",
                "2001:db8::2",
                "2001:db8::1",
                crate::wire::icmpv6::NdFlags::SOLICITED,
            ),
            Want::Drop(DropReason::NdHandled),
        ),
        frame(
            "router solicitation",
            PortIndex(0),
            icmp6_frame(133, "2001:db8::1", "2001:db8::2"),
            Want::Drop(DropReason::Icmpv6Control),
        ),
        // What the frame is.
        frame(
            "ten bytes",
            PortIndex(0),
            vec![0xff; 10],
            Want::Drop(DropReason::Malformed),
        ),
        frame(
            "IPX",
            PortIndex(0),
            {
                let mut f = vec![0u8; 60];
                f[..6].copy_from_slice(&OUR_MAC.0);
                f[12] = 0x81;
                f[13] = 0x37;
                f
            },
            Want::Drop(DropReason::NotIp),
        ),
        // The input checks.
        frame(
            "to another host's MAC (the port is promiscuous)",
            PortIndex(0),
            {
                let mut f = to_vip(s0, 80, SYN);
                f[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
                f
            },
            Want::Drop(DropReason::NotForUs),
        ),
        frame(
            "a SYN to the VIP sent to the broadcast MAC",
            PortIndex(0),
            {
                let mut f = to_vip(s0, 80, SYN);
                f[..6].fill(0xff);
                f
            },
            Want::Drop(DropReason::NotForUs),
        ),
        frame(
            "tagged with VLAN 7 on the untagged client port",
            PortIndex(0),
            {
                let f = to_vip(s0, 80, SYN);
                [&f[..12], &[0x81, 0, 0, 7], &f[12..]].concat()
            },
            Want::Drop(DropReason::VlanUnknown),
        ),
        frame(
            "an IPv4 header checksum one bit off",
            PortIndex(0),
            {
                let mut f = to_vip(s0, 80, SYN);
                f[24] ^= 1;
                f
            },
            Want::Drop(DropReason::BadIpChecksum),
        ),
        frame(
            "land: from the VIP to the VIP, UDP 53 to 53",
            PortIndex(0),
            {
                let p = Pkt::udp(ip(VIP), 53, ip(VIP), 53).with(|p| {
                    p.dst_mac = OUR_MAC;
                    p.src_mac = PEER_MAC;
                });
                p.frame()
            },
            Want::Drop(DropReason::MartianSource),
        ),
        frame(
            "from loopback",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                ("127.0.0.1", 4000),
                (VIP, 80),
                SYN,
                64,
                0,
                true,
            ),
            Want::Drop(DropReason::MartianSource),
        ),
        frame(
            "to a multicast group, at our MAC",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, 4000),
                ("239.1.1.1", 80),
                SYN,
                64,
                0,
                true,
            ),
            Want::Drop(DropReason::MartianDestination),
        ),
        frame(
            "a loose source route option",
            PortIndex(0),
            with_ipv4_options(&to_vip(s0, 80, SYN), &[131, 7, 4, 10, 1, 0, 11, 1]),
            Want::Drop(DropReason::SourceRoute),
        ),
        frame(
            "an IPv6 routing header with a segment left",
            PortIndex(0),
            {
                let p = Pkt::tcp(ip("2001:db8::1"), 4000, ip("2001:db8::2"), 80);
                let rh = [6, 0, 4, 1, 0, 0, 0, 0];
                let mut tcp = [0u8; 20];
                tcp[12] = 0x50;
                framed(
                    OUR_MAC,
                    PEER_MAC,
                    None,
                    &ip_datagram(&p, IpProtocol::IPV6_ROUTE, &[&rh[..], &tcp].concat()),
                )
            },
            Want::Drop(DropReason::SourceRoute),
        ),
        frame(
            "a fragment to the VIP of 20 bytes with more to come: not a multiple of 8",
            PortIndex(0),
            {
                let mut f = to_vip(s0, 80, SYN);
                f[20] |= 0x20; // more fragments
                let c = crate::wire::checksum::checksum(&{
                    let mut h = f[14..34].to_vec();
                    h[10] = 0;
                    h[11] = 0;
                    h
                });
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f
            },
            Want::Hold(Some(DropReason::Fragment)),
        ),
        frame(
            "a fragment of 7 bytes that is not the last: refused by the reassembly",
            PortIndex(0),
            frag4(0x2001, 0x0101, 7),
            Want::Hold(Some(DropReason::Fragment)),
        ),
        frame(
            "the first fragment of another datagram",
            PortIndex(0),
            frag4(0x2000, 0x0202, 16),
            Want::Hold(None),
        ),
        frame(
            "the same again: it overlaps, and the datagram is dropped",
            PortIndex(0),
            frag4(0x2000, 0x0202, 16),
            Want::Hold(Some(DropReason::FragOverlap)),
        ),
        frame(
            "the first fragment of a datagram whose rest never comes (it times out)",
            PortIndex(0),
            frag4(0x2000, 0x0303, 16),
            Want::Hold(None),
        ),
        frame(
            "GRE to the VIP",
            PortIndex(0),
            {
                let p = Pkt::tcp(ip(CLIENT), 1, ip(VIP), 1).with(|p| {
                    p.dst_mac = OUR_MAC;
                    p.src_mac = PEER_MAC;
                });
                framed(
                    OUR_MAC,
                    PEER_MAC,
                    None,
                    &ip_datagram(&p, IpProtocol(47), &[0; 8]),
                )
            },
            Want::Drop(DropReason::UnsupportedProtocol),
        ),
        // The engine's decisions.
        frame(
            "a SYN to a port without a service",
            PortIndex(0),
            to_vip(s0, 9999, SYN),
            Want::Drop(DropReason::NoService),
        ),
        frame(
            "a reply without a connection",
            PortIndex(1),
            nat_out_in(s0b + 7),
            Want::Drop(DropReason::NoConnection),
        ),
        frame(
            "an ACK without a connection",
            PortIndex(0),
            to_vip(s0b, 80, ACK),
            Want::Drop(DropReason::NotSyn),
        ),
        frame(
            "a service without real servers: port unreachable from the VIP, back to the client",
            PortIndex(0),
            to_vip(s0, 83, SYN),
            Want::TxWhere(0, refused_from_vip),
        ),
        // The rewrite.
        frame(
            "from a multicast source",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                ("224.0.0.5", 4000),
                (VIP, 80),
                SYN,
                1,
                0,
                true,
            ),
            Want::Drop(DropReason::MartianSource),
        ),
        frame(
            "TTL 1 on the client's ICMP error about its connection: no error about an error",
            PortIndex(0),
            {
                let outer = Pkt::tcp(ip(CLIENT), 0, ip(VIP), 0).with(|p| {
                    p.dst_mac = OUR_MAC;
                    p.src_mac = PEER_MAC;
                    p.ttl = 1;
                });
                let quoted = Pkt::tcp(ip(VIP), 80, ip(CLIENT), s0);
                icmp_error(&outer, 3, 3, 0, &quoted.datagram()[..28])
            },
            Want::Drop(DropReason::TtlExceeded),
        ),
        frame(
            "IPIP: too big once encapsulated, DF clear: held to be fragmented",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, s0),
                (VIP, 82),
                SYN,
                64,
                1470,
                false,
            ),
            Want::Hold(None),
        ),
        Step::Tick {
            desc: "the outer packet leaves in two fragments of at most the MTU",
            ms: 0,
            want: vec![
                (1, |f| {
                    f.len() == 14 + 1500 && f[16..18] == [0x05, 0xdc] && f[20..22] == [0x20, 0] && f[23] == 4
                }),
                (1, |f| f.len() == 14 + 50 && f[20..22] == [0, 185] && f[23] == 4),
            ],
        },
        frame(
            "NAT: larger than the server port's MTU, DF clear: held to be fragmented",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, 41000),
                (VIP, 80),
                SYN,
                64,
                1480,
                false,
            ),
            Want::Hold(None),
        ),
        Step::Tick {
            desc: "it leaves NATed in two fragments, the first with the ports",
            ms: 0,
            want: vec![
                (1, |f| {
                    f.len() == 14 + 1500
                        && f[20..22] == [0x20, 0]
                        && f[30..34] == [10, 1, 0, 11]
                        && f[36..38] == [0x1f, 0x90]
                }),
                (1, |f| {
                    f.len() == 14 + 40 && f[20..22] == [0, 185] && f[30..34] == [10, 1, 0, 11]
                }),
            ],
        },
        frame(
            "NAT: the client's ICMP error about its connection, over the MTU with DF: no error about an error",
            PortIndex(0),
            {
                let outer = Pkt::tcp(ip(CLIENT), 0, ip(VIP), 0).with(|p| {
                    p.dst_mac = OUR_MAC;
                    p.src_mac = PEER_MAC;
                    p.df = true;
                });
                let quoted = Pkt::tcp(ip(VIP), 80, ip(CLIENT), 41000).with(|p| p.payload = vec![0; 1500]);
                icmp_error(&outer, 3, 3, 0, &quoted.datagram())
            },
            Want::Drop(DropReason::TooBig),
        ),
        frame(
            "NAT: larger than the MTU with DF: fragmentation needed back to the client",
            PortIndex(0),
            tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, 41001),
                (VIP, 80),
                SYN,
                64,
                1480,
                true,
            ),
            Want::TxWhere(0, |f| {
                f[23] == 1 && f[34..36] == [3, 4] && f[40..42] == [0x05, 0xdc] && f[30..34] == [10, 0, 0, 1]
            }),
        ),
        Step::Frame {
            desc: "IPIP: no headroom nor tailroom for the outer header",
            worker: OWNER,
            port: PortIndex(0),
            input: tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, s0b),
                (VIP, 82),
                SYN,
                64,
                0,
                true,
            ),
            room: (0, 0),
            want: Want::Drop(DropReason::NoRoom),
        },
        frame(
            "a new client off every route: in, then its reply has no way back",
            PortIndex(0),
            far(far_sport),
            Want::TxWhere(1, |f| f[30..34] == [10, 1, 0, 11]),
        ),
        frame(
            "the reply to the client off every route",
            PortIndex(1),
            tcp4(
                (SRV_MAC, RS1_MAC),
                (RS1, 8080),
                ("198.51.100.7", far_sport),
                ACK,
                64,
                0,
                true,
            ),
            Want::Drop(DropReason::NoRoute),
        ),
    ];
    // The hold's limits and expiry: RS3 never answers.
    let mut sport = 45000u16;
    let mut next_owned = || {
        sport = sport_owned_by(0, sport + 1);
        sport
    };
    for _ in 0..16 {
        steps.push(frame(
            "DR to RS3, never answering: held",
            PortIndex(0),
            held_to(next_owned()),
            Want::Hold(None),
        ));
    }
    steps.push(frame(
        "a 17th frame for RS3: the hold refuses it",
        PortIndex(0),
        held_to(next_owned()),
        Want::Hold(Some(DropReason::HoldAddrFull)),
    ));
    // A new configuration from the control thread: RS1 leaves :80.
    steps.push(Step::DeleteDest(80, RS1, 8080));
    steps.push(frame(
        "after RS1 left :80, its connection's packets are dropped (expire_nodest_conn off)",
        PortIndex(0),
        to_vip(s0, 80, ACK),
        Want::Drop(DropReason::DestRemoved),
    ));
    steps.push(frame(
        "after RS1 left :80, a new client finds no real server: port unreachable",
        PortIndex(0),
        to_vip(s0b + 1000, 80, SYN),
        Want::TxWhere(0, refused_from_vip),
    ));

    for step in steps {
        lab.step(step);
    }
    // 16 frames for RS3, and a fragment waiting for the rest of its datagram.
    assert_eq!(lab.workers[0].held(), 17);
    // RS3 never answers: the 16 frames expire (3 s), after the requests;
    // the fragment goes too (5 s).
    lab.tick(4000);
    assert_eq!(lab.workers[0].held(), 1);
    lab.tick(2000);
    assert_eq!(lab.workers[0].held(), 0);
    assert!(
        lab.ticked
            .iter()
            .any(|(_, p, f)| *p == PortIndex(1) && f[38..42] == [10, 1, 0, 13]),
        "RS3 was asked for"
    );
    assert_eq!(lab.tallies[0].drops.get(DropReason::HoldExpired), 16);

    // The hold's other limits: :86's servers never answer, and round robin
    // sends each new connection to the next. Per cycle of them, all but the
    // last are held; the last is one next hop too many. Once the hold is
    // full, whatever comes is refused.
    let limits = PendingConfig::default();
    let mut held = 0;
    for i in 0..limits.max_total + limits.max_total / limits.max_addrs + 2 {
        let want = if held == limits.max_total {
            Want::Hold(Some(DropReason::HoldFull))
        } else if i % hold_addrs() == hold_addrs() - 1 {
            Want::Hold(Some(DropReason::HoldTooManyAddrs))
        } else {
            held += 1;
            Want::Hold(None)
        };
        lab.step(frame(
            "DR round robin over :86's silent servers",
            PortIndex(0),
            to_vip(next_owned(), 86, SYN),
            want,
        ));
    }
    assert_eq!(lab.workers[0].held(), limits.max_total);
    lab.tick(4000);
    assert_eq!(lab.workers[0].held(), 0);
    assert_eq!(
        lab.tallies[0].drops.get(DropReason::HoldExpired),
        16 + limits.max_total as u64
    );

    // ICMP errors are rate limited per destination: TTL 1 from one client
    // gets six time-exceeded at once, then none until a second passes.
    for k in 0..7u16 {
        let sport = sport_owned_by(0, 30000 + 16 * k);
        let f = tcp4(
            (OUR_MAC, PEER_MAC),
            ("10.0.0.9", sport),
            (VIP, 81),
            SYN,
            1,
            0,
            true,
        );
        let want = if k < 6 {
            Want::TxWhere(0, |f| f[34] == 11 && f[30..34] == [10, 0, 0, 9])
        } else {
            Want::Drop(DropReason::IcmpRateLimited)
        };
        lab.step(on_worker(
            0,
            frame(
                "TTL 1 to the VIP: time exceeded, six at most",
                PortIndex(0),
                f,
                want,
            ),
        ));
    }

    // Port unreachables share those limits: a client knocking at :83 (no
    // real server) gets six, then none until a second passes; the frames
    // held back are dropped unanswered, and counted.
    let before = lab.workers[0].refusals();
    let owners = OwnerMap::new(DEFAULT_KEY, Reta::round_robin(128, 2));
    let knocks = (31000u16..).filter(|p| owners.owner(ip("10.0.0.8"), *p) == 0);
    for (k, sport) in knocks.take(7).enumerate() {
        let f = tcp4(
            (OUR_MAC, PEER_MAC),
            ("10.0.0.8", sport),
            (VIP, 83),
            SYN,
            64,
            0,
            true,
        );
        let want = if k < 6 {
            Want::TxWhere(0, |f| f[34..36] == [3, 3] && f[30..34] == [10, 0, 0, 8])
        } else {
            Want::Drop(DropReason::IcmpRateLimited)
        };
        lab.step(on_worker(
            0,
            frame(
                "SYNs to a service without real servers: port unreachable, six at most",
                PortIndex(0),
                f,
                want,
            ),
        ));
    }
    let after = lab.workers[0].refusals();
    assert_eq!(
        (
            after.answered - before.answered,
            after.rate_limited - before.rate_limited
        ),
        (6, 1)
    );

    // The connection table fills: new clients to :81 (RS2, known) open
    // and finish their handshakes. Those that never finished (the held
    // ones above) give their places up first; once every place holds an
    // established connection, a new client is refused.
    let mut sports = (1024u16..).filter(|p| owners.owner(ip(CLIENT), *p) == 0);
    let refused = (0..=CONNS).find(|_| {
        let sport = sports.next().unwrap();
        let mut send = |flags| {
            let f = tcp4(
                (OUR_MAC, PEER_MAC),
                (CLIENT, sport),
                (VIP, 81),
                flags,
                64,
                0,
                true,
            );
            lab.tallies[0].rx += 1;
            let buf = VecBuf::with_frame(&f, DEFAULT_HEADROOM, 400);
            lab.run(0, PortIndex(0), buf).0
        };
        match send(SYN) {
            Outcome::Tx(PortIndex(1)) => {
                assert_eq!(send(ACK), Outcome::Tx(PortIndex(1)));
                false
            }
            Outcome::Drop(DropReason::TableFull) => true,
            o => panic!("a new client to :81: {o:?}"),
        }
    });
    assert!(refused.is_some(), "the table never filled");
    assert!(lab.workers[0].engine().counters().embryonic_evicted() > 0);

    // Every frame is accounted for, on each worker.
    for (w, t) in lab.tallies.iter().enumerate() {
        assert!(t.balanced(), "worker {w}: {t:?}");
        assert_eq!(t.held, lab.workers[w].held() as u64);
    }
    // And every reason is reached, or said why not.
    let reached: BTreeSet<DropReason> = Tally::sum(&lab.tallies)
        .drops
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, _)| r)
        .collect();
    let excused: BTreeSet<DropReason> = NOT_FROM_A_FRAME.iter().map(|(r, _)| *r).collect();
    assert!(
        reached.is_disjoint(&excused),
        "{:?}",
        reached.intersection(&excused).collect::<Vec<_>>()
    );
    let all: BTreeSet<DropReason> = DropReason::ALL.iter().copied().collect();
    let missing: Vec<_> = all
        .difference(&reached)
        .filter(|r| !excused.contains(r))
        .collect();
    assert!(missing.is_empty(), "no step reaches {missing:?}");
}

/// ICMP port unreachable (3/3) from the VIP to the client, back the way
/// the SYN came (the MACs swapped), quoting its IP header and ports, every
/// checksum right.
fn refused_from_vip(f: &[u8]) -> bool {
    let (vip, client) = ([10, 0, 0, 100], [10, 0, 0, 1]);
    f[..6] == PEER_MAC.0
        && f[6..12] == OUR_MAC.0
        && f[23] == IpProtocol::ICMP.0
        && f[26..30] == vip
        && f[30..34] == client
        && f[34..36] == [3, 3]
        && f.len() == 14 + 20 + 8 + 28
        && f[42 + 12..42 + 16] == client
        && f[42 + 16..42 + 20] == vip
        && crate::lb::forward::verify::verify_frame(f, None).is_ok()
}

fn dr_out_frame() -> Vec<u8> {
    let sport = sport_owned_by(0, sport_owned_by(0, 40000) + 1);
    tcp4(
        (RS2_MAC, SRV_MAC),
        (CLIENT, sport),
        (VIP, 81),
        SYN,
        63,
        0,
        true,
    )
}
