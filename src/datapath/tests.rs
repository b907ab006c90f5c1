//! Datapath behaviour beyond the golden fixtures (tests/golden_packets.rs)
//! and the table (table.rs): local traffic, unresolved next hops,
//! fragments, and a fuzz loop over the whole datapath.

use std::net::IpAddr;

use super::fuzzkit::{datapath, vip, CLI_MAC, SRV_MAC};
use super::*;
use crate::lb::rules::Rules;
use crate::lb::service::ServiceConfig;
use crate::wire::buf::VecBuf;
use crate::wire::fuzz::{mutate, XorShift};
use crate::wire::parse::parse_frame;

pub(super) const PEER: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// An Ethernet frame from `PEER`.
pub(super) fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(src: [u8; 4], dst: IpAddr, proto: u8, l4: &[u8], frag: u16) -> Vec<u8> {
    let IpAddr::V4(d) = dst else { unreachable!() };
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1];
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&d.octets());
    let c = crate::wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 0x50;
    t[13] = 0x02;
    t
}

#[test]
fn arp_for_a_vip_is_answered_on_the_client_port_only() {
    let mut b = datapath();
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&PEER);
    arp.extend_from_slice(&[10, 0, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 0, 100]);
    let frame = eth([0xff; 6], 0x0806, &arp);
    let mut buf = VecBuf::from_frame(&frame);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Tx(PortIndex(0))
    );
    assert_eq!(
        &buf.data()[6..12],
        &CLI_MAC.0,
        "the reply comes from the client port"
    );
    assert_eq!(&buf.data()[22..28], &CLI_MAC.0, "the VIP is at our MAC");
    assert_eq!(b.learned.len(), 1, "the asker was learned");
    let mut buf = VecBuf::from_frame(&frame);
    assert!(matches!(
        b.process_one(PortIndex(1), &mut buf, Timestamp::ZERO),
        Outcome::Drop(_)
    ));
}

#[test]
fn unknown_next_hop_holds_the_rewritten_packet() {
    let mut b = datapath();
    let f = eth(
        CLI_MAC.0,
        0x0800,
        &ipv4([192, 0, 2, 10], vip(), 6, &syn(4000, 81), 0),
    );
    let mut buf = VecBuf::from_frame(&f);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Hold
    );
    assert_eq!(
        b.hold_target(0),
        Some((PortIndex(1), "10.1.0.12".parse().unwrap()))
    );
    assert_eq!(
        &buf.data()[6..12],
        &SRV_MAC.0,
        "rewritten for the server port"
    );
}

#[test]
fn fragments_held_and_other_protocols_counted_drops() {
    let mut b = datapath();
    let frag = eth(
        CLI_MAC.0,
        0x0800,
        &ipv4([192, 0, 2, 10], vip(), 6, &syn(4000, 80), 0x2000),
    );
    let mut buf = VecBuf::from_frame(&frag);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Hold,
        "held for reassembly"
    );
    let gre = eth(
        CLI_MAC.0,
        0x0800,
        &ipv4([192, 0, 2, 10], vip(), 47, &[0; 8], 0),
    );
    let mut buf = VecBuf::from_frame(&gre);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Drop(DropReason::UnsupportedProtocol)
    );
    let ipx = eth(CLI_MAC.0, 0x8137, &[0; 30]);
    let mut buf = VecBuf::from_frame(&ipx);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Drop(DropReason::NotIp)
    );
}

#[test]
fn vips_follow_the_snapshot() {
    let mut b = datapath();
    assert!(b.net().port(PortIndex(0)).unwrap().is_vip(&vip()));
    b.set_snapshot(Rules::new(1).snapshot());
    assert!(!b.net().port(PortIndex(0)).unwrap().is_vip(&vip()));
}

/// Many new VIPs at once (one `rvsadm -R`) are announced a few per
/// millisecond, each once, and not again while they stay.
#[test]
fn announcements_are_paced() {
    let mut b = datapath();
    let mut rules = Rules::new(1);
    let tcp = crate::lb::service::Protocol::Tcp;
    for i in 0..20u8 {
        rules
            .add_service(ServiceConfig::new(
                tcp,
                IpAddr::from([10, 0, 0, 100 + i]),
                80,
            ))
            .unwrap();
    }
    b.set_snapshot(rules.snapshot());
    let mut tally = Tally::default();
    let mut sent = Vec::new();
    for ms in [0, 0, 1, 2, 3, 4] {
        let mut out = Vec::new();
        b.tick(
            Timestamp(ms),
            |_| Some(VecBuf::new(2048, 128)),
            &mut out,
            &mut tally,
        );
        let garps = out
            .iter()
            .filter(|(_, f)| f.data()[12..14] == [8, 6])
            .count();
        sent.push(garps);
    }
    let per_ms = housekeeping::ANNOUNCE_PER_MS;
    assert_eq!(sent, vec![per_ms, 0, per_ms, 20 - 2 * per_ms, 0, 0]);
    assert_eq!(tally.originated, 20);
}

/// The whole datapath on mutated frames: never a panic, and every frame it
/// sends out parses again. Bounded by RVS_FUZZ_SECS (default 2 s).
#[test]
fn fuzz_datapath() {
    let secs: u64 = std::env::var("RVS_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let start = std::time::Instant::now();
    let half = std::time::Duration::from_secs(secs) / 2;
    // The first half without a kernel twin, the second with one on the
    // client port.
    let mut b = datapath();
    let mut twin = false;
    let seeds = [
        eth(
            CLI_MAC.0,
            0x0800,
            &ipv4([192, 0, 2, 10], vip(), 6, &syn(4000, 80), 0),
        ),
        eth(
            CLI_MAC.0,
            0x0800,
            &ipv4([192, 0, 2, 10], vip(), 6, &syn(4001, 81), 0),
        ),
        eth(
            CLI_MAC.0,
            0x0800,
            &ipv4(
                [10, 1, 0, 11],
                "192.0.2.10".parse().unwrap(),
                6,
                &syn(8080, 4000),
                0,
            ),
        ),
        eth(
            CLI_MAC.0,
            0x0800,
            &ipv4(
                [192, 0, 2, 10],
                vip(),
                17,
                &[0x0f, 0xa0, 0, 80, 0, 12, 0, 0, 1, 2, 3, 4],
                0,
            ),
        ),
        eth(
            CLI_MAC.0,
            0x0800,
            &ipv4(
                [192, 0, 2, 10],
                vip(),
                1,
                &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
                0,
            ),
        ),
    ];
    let mut rng = XorShift::new(0x5eed);
    let (mut runs, mut sent) = (0u64, 0u64);
    while start.elapsed() < 2 * half {
        if !twin && start.elapsed() >= half {
            twin = true;
            b = super::fuzzkit::datapath_with_twin(true);
        }
        for _ in 0..256 {
            let mut f = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut f);
            }
            let port = PortIndex(rng.below(2) as u16);
            let mut buf = VecBuf::from_frame(&f);
            let now = Timestamp::from_millis(runs);
            match b.process_one(port, &mut buf, now) {
                Outcome::Tx(_) | Outcome::Hold => {
                    sent += 1;
                    assert!(
                        parse_frame(buf.data()).is_ok(),
                        "rvs emitted an unparsable frame"
                    );
                }
                // The kernel gets the frame as it came.
                Outcome::Kernel => assert_eq!(buf.data(), &f[..], "a frame for the kernel changed"),
                Outcome::Drop(_) | Outcome::Handoff(_) => {}
            }
            runs += 1;
        }
        b.engine_mut().expire(Timestamp::from_millis(runs), 1024);
    }
    eprintln!("datapath fuzz: {runs} frames, {sent} sent out");
    assert!(runs > 0);
}

/// A burst decides exactly as its frames one at a time (where the engine
/// batches its table lookups): same outcomes, same bytes, on a mix of new
/// and established flows, ARP, ping and garbage.
#[test]
fn burst_path_matches_single_path() {
    let (mut one, mut many) = (datapath(), datapath());
    let mut frames = Vec::new();
    for k in 0..96u16 {
        let dport = if k % 3 == 0 { 81 } else { 80 };
        frames.push(eth(
            CLI_MAC.0,
            0x0800,
            &ipv4(
                [192, 0, 2, (k % 7) as u8 + 1],
                vip(),
                6,
                &syn(2000 + k, dport),
                0,
            ),
        ));
    }
    for k in 0..96u16 {
        let mut t = syn(2000 + k, if k % 3 == 0 { 81 } else { 80 });
        t[13] = 0x10;
        frames.push(eth(
            CLI_MAC.0,
            0x0800,
            &ipv4([192, 0, 2, (k % 7) as u8 + 1], vip(), 6, &t, 0),
        ));
    }
    frames.push(eth(
        CLI_MAC.0,
        0x0800,
        &ipv4([192, 0, 2, 9], vip(), 1, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0], 0),
    ));
    frames.push(vec![0xff; 20]);
    for chunk in frames.chunks(32) {
        let now = Timestamp::from_millis(5);
        let mut a: Vec<VecBuf> = chunk.iter().map(|f| VecBuf::from_frame(f)).collect();
        let mut b = a.clone();
        let mut acts = vec![Outcome::Drop(DropReason::NoPort); b.len()];
        many.process_burst(PortIndex(0), &mut b, now, &mut acts);
        for (i, x) in a.iter_mut().enumerate() {
            let single = one.process_one(PortIndex(0), x, now);
            assert_eq!(single, acts[i], "frame {i}");
            assert_eq!(x.data(), b[i].data(), "frame {i} bytes");
        }
    }
}

/// A NAT frame over the server port's MTU with DF clear is held, then
/// split at the next tick; without buffers it is dropped whole, and a
/// backlog beyond a burst's worth is refused. Every frame stays counted.
#[test]
fn fragments_without_buffers() {
    let mut b = datapath();
    let mut tally = Tally::default();
    let big = |sport: u16| {
        let mut l4 = syn(sport, 80);
        l4.extend_from_slice(&[0x5a; 1480]);
        eth(CLI_MAC.0, 0x0800, &ipv4([192, 0, 2, 10], vip(), 6, &l4, 0))
    };
    let now = Timestamp::ZERO;
    let hold = |b: &mut Datapath<VecBuf>, tally: &mut Tally, sport| {
        let mut buf = VecBuf::with_frame(&big(sport), 128, 0);
        tally.rx += 1;
        assert_eq!(b.process_one(PortIndex(0), &mut buf, now), Outcome::Hold);
        b.hold(0, buf, now, tally);
    };
    hold(&mut b, &mut tally, 5000);
    assert_eq!(tally.held, 1);
    let mut out = Vec::new();
    b.tick(now, |_| None, &mut out, &mut tally);
    assert!(out.is_empty());
    assert_eq!(tally.drops.get(DropReason::FragNoBuffer), 1);
    assert_eq!(tally.held, 0);

    for i in 0..super::fragments::BACKLOG as u16 + 1 {
        hold(&mut b, &mut tally, 6000 + i);
    }
    assert_eq!(tally.drops.get(DropReason::FragNoBuffer), 2);
    b.tick(now, |_| Some(VecBuf::new(2048, 128)), &mut out, &mut tally);
    assert_eq!(out.len(), 2 * super::fragments::BACKLOG);
    tally.tx += out.len() as u64;
    assert!(out
        .iter()
        .all(|(p, f)| *p == PortIndex(1) && f.len() <= 14 + 1500));
    assert!(tally.balanced(), "{tally:?}");
}

/// A TCP segment to the NAT service in fragments, in reverse order:
/// held, reassembled at the tick, NATed, and fragmented again for the
/// server port's MTU; every frame counted.
#[test]
fn fragments_reassembled_then_forwarded() {
    let mut b = datapath();
    let mut tally = Tally::default();
    let mut l4 = syn(4000, 80);
    l4.extend((0..3000 - 20).map(|i| i as u8));
    let whole = eth(CLI_MAC.0, 0x0800, &ipv4([192, 0, 2, 10], vip(), 6, &l4, 0));
    let plan = crate::net::fragment::Plan::new(&whole, 14, 1000).unwrap();
    let mut frags: Vec<Vec<u8>> = (1..plan.count())
        .map(|k| {
            let mut f = vec![0; plan.frame_len(k)];
            plan.write(&whole, k, &mut f);
            f
        })
        .collect();
    let mut first = whole.clone();
    let n = plan.truncate_to_first(&mut first);
    first.truncate(n);
    frags.insert(0, first);
    frags.reverse();
    let now = Timestamp::ZERO;
    for f in &frags {
        let mut buf = VecBuf::from_frame(f);
        tally.rx += 1;
        assert_eq!(b.process_one(PortIndex(0), &mut buf, now), Outcome::Hold);
        b.hold(0, buf, now, &mut tally);
    }
    assert_eq!(tally.held, frags.len() as u64);
    let mut out = Vec::new();
    b.tick(
        now,
        |n| Some(VecBuf::new(n + 256, 128)),
        &mut out,
        &mut tally,
    );
    // Fragmented again at the next tick (the datagram was held for it).
    b.tick(
        now,
        |n| Some(VecBuf::new(n + 256, 128)),
        &mut out,
        &mut tally,
    );
    tally.tx += out.len() as u64;
    assert_eq!(out.len(), 3, "3028 bytes in fragments of 1500: {out:?}");
    let mut data = Vec::new();
    for (p, f) in &out {
        assert_eq!(*p, PortIndex(1));
        let f = f.data();
        assert_eq!(f[30..34], [10, 1, 0, 11], "NATed to the real server");
        data.extend_from_slice(&f[34..]);
    }
    assert_eq!(data[2..4], [0x1f, 0x90], "the port too");
    assert_eq!(data[20..], l4[20..]);
    assert_eq!(tally.reassembled, frags.len() as u64);
    assert!(tally.balanced(), "{tally:?}");
    assert_eq!(b.held(), 0);
}

/// Port 0 carries the clients on VLAN 10 only (interface 2, 10.0.0.254/24);
/// port 1 the real servers untagged (10.1.0.254/24) and on VLAN 20
/// (interface 3, 10.2.0.254/24). TCP VIP:80 goes to 10.1.0.11 (untagged,
/// MAC known), UDP VIP:53 to 10.2.0.13 (VLAN 20, MAC known), UDP VIP:54 to
/// 10.2.0.14 (VLAN 20, MAC unknown); all NAT.
fn vlan_datapath() -> Datapath<VecBuf> {
    use crate::lb::dest::DestConfig;
    use crate::lb::service::{Protocol, ServiceKey};
    use crate::net::{Iface, NeighConfig, NeighTable};
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut rules = Rules::new(1);
    for (proto, port, rs) in [
        (Protocol::Tcp, 80, "10.1.0.11"),
        (Protocol::Udp, 53, "10.2.0.13"),
        (Protocol::Udp, 54, "10.2.0.14"),
    ] {
        rules
            .add_service(ServiceConfig::new(proto, vip(), port))
            .unwrap();
        rules
            .add_dest(
                &ServiceKey::new(proto, vip(), port),
                DestConfig::new(ip(rs), port).masq(),
            )
            .unwrap();
    }
    let mut net = NetConfig::new();
    net.set(Iface::new(0, CLI_MAC));
    net.set(Iface::new(1, SRV_MAC).with_addr("10.1.0.254/24".parse().unwrap()));
    net.set(
        Iface::new(2, CLI_MAC)
            .on_vlan(0, 10)
            .with_addr("10.0.0.254/24".parse().unwrap()),
    );
    net.set(
        Iface::new(3, SRV_MAC)
            .on_vlan(1, 20)
            .with_addr("10.2.0.254/24".parse().unwrap()),
    );
    let mut routes = RouteTable::from_config(&net);
    routes.set_default(ip("10.0.0.1"), 2).unwrap();
    let mut neigh = NeighTable::new(NeighConfig::default());
    neigh.add_static(
        1,
        ip("10.1.0.11"),
        crate::wire::EthernetAddress([2, 0, 0, 0, 0x11, 0x11]),
    );
    neigh.add_static(
        3,
        ip("10.2.0.13"),
        crate::wire::EthernetAddress([2, 0, 0, 0, 0x13, 0x13]),
    );
    neigh.add_static(2, ip("10.0.0.1"), crate::wire::EthernetAddress(PEER));
    // And UDP VIP:55 without a real server.
    rules
        .add_service(ServiceConfig::new(Protocol::Udp, vip(), 55))
        .unwrap();
    super::fuzzkit::datapath_of(&rules, net, routes, &mut neigh, vec![PortIndex(2)])
}

/// `frame` with an 802.1Q tag `tci` after the MACs.
fn tagged(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let mut t = vec![0x81, 0];
    t.extend_from_slice(&tci.to_be_bytes());
    f.splice(12..12, t);
    f
}

/// The outer VLAN id of a frame, `None` untagged.
fn vlan_of(frame: &[u8]) -> Option<u16> {
    parse_frame(frame).unwrap().vlan_id()
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = vec![0u8; 12];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&12u16.to_be_bytes());
    u
}

#[test]
fn vlans_in_and_out() {
    let mut b = vlan_datapath();
    let t0 = Timestamp::ZERO;
    let cl = [192, 0, 2, 10];
    let decide = |b: &mut Datapath<VecBuf>, port: u16, f: Vec<u8>| {
        let mut buf = VecBuf::from_frame(&f);
        let o = b.process_one(PortIndex(port), &mut buf, t0);
        (o, buf.to_vec())
    };
    // Client on VLAN 10 to an untagged real server, and back.
    let syn_in = eth(CLI_MAC.0, 0x0800, &ipv4(cl, vip(), 6, &syn(4000, 80), 0));
    let (o, f) = decide(&mut b, 0, tagged(&syn_in, 10));
    assert_eq!(o, Outcome::Tx(PortIndex(1)));
    assert_eq!(vlan_of(&f), None, "the server port is untagged");
    assert_eq!(
        &f[..12],
        &[[2, 0, 0, 0, 0x11, 0x11], SRV_MAC.0].concat()[..]
    );
    let mut sa = syn(80, 4000);
    sa[13] = 0x12;
    let reply = eth(
        SRV_MAC.0,
        0x0800,
        &ipv4([10, 1, 0, 11], IpAddr::from(cl), 6, &sa, 0),
    );
    let (o, f) = decide(&mut b, 1, reply);
    assert_eq!(o, Outcome::Tx(PortIndex(0)));
    assert_eq!(vlan_of(&f), Some(10), "back to the client in its VLAN");
    assert_eq!(parse_frame(&f).unwrap().src, vip());
    // VLAN 10 to VLAN 20, and back; a priority tag of the client's VLAN.
    let q = eth(CLI_MAC.0, 0x0800, &ipv4(cl, vip(), 17, &udp(3333, 53), 0));
    let (o, f) = decide(&mut b, 0, tagged(&q, 0xa00a));
    assert_eq!((o, vlan_of(&f)), (Outcome::Tx(PortIndex(1)), Some(20)));
    assert_eq!(
        u16::from_be_bytes([f[14], f[15]]),
        20,
        "priority 0 on the way out"
    );
    let a = eth(
        SRV_MAC.0,
        0x0800,
        &ipv4([10, 2, 0, 13], IpAddr::from(cl), 17, &udp(53, 3333), 0),
    );
    let (o, f) = decide(&mut b, 1, tagged(&a, 20));
    assert_eq!((o, vlan_of(&f)), (Outcome::Tx(PortIndex(0)), Some(10)));
    // A service without real servers: port unreachable, back in VLAN 10.
    let q55 = eth(CLI_MAC.0, 0x0800, &ipv4(cl, vip(), 17, &udp(3333, 55), 0));
    let (o, f) = decide(&mut b, 0, tagged(&q55, 10));
    assert_eq!((o, vlan_of(&f)), (Outcome::Tx(PortIndex(0)), Some(10)));
    let h = parse_frame(&f).unwrap();
    assert_eq!((h.src, h.icmp_type, &f[18 + 20 + 1]), (vip(), 3, &3));
    // Untagged (or priority-tagged) on the VLAN-only port, another VLAN,
    // the real servers' VLAN on the client port: refused.
    for (port, f) in [
        (0, q.clone()),
        (0, tagged(&q, 0x2000)),
        (0, tagged(&q, 30)),
        (0, tagged(&q, 20)),
        (1, tagged(&a, 10)),
    ] {
        let (o, _) = decide(&mut b, port, f);
        assert_eq!(o, Outcome::Drop(DropReason::VlanUnknown));
    }
    // ARP for the VIP: answered in VLAN 10, not untagged.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&PEER);
    arp.extend_from_slice(&[10, 0, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 0, 100]);
    let who_has = eth([0xff; 6], 0x0806, &arp);
    let (o, f) = decide(&mut b, 0, tagged(&who_has, 10));
    assert_eq!((o, vlan_of(&f)), (Outcome::Tx(PortIndex(0)), Some(10)));
    assert_eq!(&f[6..12], &CLI_MAC.0);
    let (o, _) = decide(&mut b, 0, who_has);
    assert_eq!(o, Outcome::Drop(DropReason::VlanUnknown));
}

#[test]
fn vlans_mixed_in_one_burst_and_held_frames_leave_tagged() {
    let mut b = vlan_datapath();
    let t0 = Timestamp::ZERO;
    let cl = [192, 0, 2, 10];
    let syn_in = eth(CLI_MAC.0, 0x0800, &ipv4(cl, vip(), 6, &syn(4000, 80), 0));
    let q54 = eth(CLI_MAC.0, 0x0800, &ipv4(cl, vip(), 17, &udp(3333, 54), 0));
    let frames = [
        tagged(&syn_in, 10),
        tagged(&syn_in, 11),
        syn_in.clone(),
        tagged(&q54, 10),
    ];
    let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::from_frame(f)).collect();
    let mut out = [Outcome::Hold; 4];
    b.process_burst(PortIndex(0), &mut bufs, t0, &mut out);
    assert_eq!(
        out,
        [
            Outcome::Tx(PortIndex(1)),
            Outcome::Drop(DropReason::VlanUnknown),
            Outcome::Drop(DropReason::VlanUnknown),
            Outcome::Hold,
        ]
    );
    assert_eq!(
        b.hold_target(3),
        Some((PortIndex(3), "10.2.0.14".parse().unwrap()))
    );
    let mut tally = Tally::default();
    b.hold(3, bufs.pop().unwrap(), t0, &mut tally);
    // The request for 10.2.0.14 goes out of port 1 in VLAN 20.
    let mut sent = Vec::new();
    b.tick(t0, |_| Some(VecBuf::new(2048, 128)), &mut sent, &mut tally);
    assert_eq!(sent.len(), 1);
    let (port, req) = &sent[0];
    assert_eq!(*port, PortIndex(1));
    let h = parse_frame(req.data()).unwrap();
    assert_eq!((h.vlan_id(), h.l3), (Some(20), crate::wire::parse::L3::Arp));
    // Its answer, tagged, releases the frame tagged too.
    let mut neigh = crate::net::NeighTable::new(crate::net::NeighConfig::default());
    neigh.add_static(
        3,
        "10.2.0.14".parse().unwrap(),
        crate::wire::EthernetAddress([2, 0, 0, 0, 0x14, 0x14]),
    );
    let mut sent = Vec::new();
    // What a tick does with a new snapshot from the control thread.
    b.set_neighbours(neigh.snapshot(), &mut sent, &mut tally);
    b.tick_to_links(&mut sent, 0, &mut tally);
    let released: Vec<_> = sent
        .iter()
        .filter(|(_, f)| parse_frame(f.data()).unwrap().protocol == crate::wire::IpProtocol::UDP)
        .collect();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].0, PortIndex(1));
    assert_eq!(vlan_of(released[0].1.data()), Some(20));
}

/// A marked network is the fwmark service's: any address in it is a VIP
/// (routed to us, not announced), a marked single address is announced.
#[test]
fn marked_addresses_and_networks_reach_the_fwmark_service() {
    use crate::lb::dest::DestConfig;
    use crate::lb::marks::MarkRule;
    use crate::lb::service::{Protocol, ServiceKey};
    let mut b = datapath();
    let mut rules = Rules::new(1);
    let fwm = ServiceKey::fwmark(5, false);
    rules
        .add_service(ServiceConfig::for_key(fwm).with_scheduler("rr"))
        .unwrap();
    rules
        .add_dest(&fwm, DestConfig::new("10.1.0.12".parse().unwrap(), 0))
        .unwrap();
    for (addr, prefix) in [("198.51.100.0", 24), ("203.0.113.5", 32)] {
        let rule = MarkRule::new(Protocol::Tcp, addr.parse().unwrap(), prefix, (80, 80), 5);
        rules.add_mark(rule).unwrap();
    }
    b.set_snapshot(rules.snapshot());
    let iface = b.net().port(PortIndex(0)).unwrap();
    assert!(iface.is_vip(&"203.0.113.5".parse().unwrap()));
    assert!(
        !iface.is_vip(&"198.51.100.7".parse().unwrap()),
        "a network is not announced"
    );
    for dst in ["198.51.100.7", "198.51.100.200", "203.0.113.5"] {
        let f = eth(
            CLI_MAC.0,
            0x0800,
            &ipv4([192, 0, 2, 10], dst.parse().unwrap(), 6, &syn(4000, 80), 0),
        );
        let mut buf = VecBuf::from_frame(&f);
        assert_eq!(
            b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
            Outcome::Tx(PortIndex(1)),
            "{dst}: scheduled to the real server"
        );
        // Direct routing: addresses and ports as they came.
        assert_eq!(&buf.data()[26..], &f[26..]);
    }
    // Not a marked port: no service there.
    let f = eth(
        CLI_MAC.0,
        0x0800,
        &ipv4(
            [192, 0, 2, 10],
            "198.51.100.7".parse().unwrap(),
            6,
            &syn(4000, 81),
            0,
        ),
    );
    let mut buf = VecBuf::from_frame(&f);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Drop(DropReason::NoService)
    );
}

/// Port 0 faces the clients (10.0.0.254/24, 2001:db8::fe/64), port 1 the
/// real servers (10.1.0.254/24, fd00:1::fe/64). TCP and UDP services on
/// 10.0.0.100 (:80, :53) and on 2001:db8::100 (:80, :53) whose one real
/// server, 10.1.0.11 or fd00:1::11 (NAT, MACs known), is at weight 0.
fn quiescent_datapath() -> (Datapath<VecBuf>, Rules) {
    use crate::lb::dest::DestConfig;
    use crate::lb::service::{Protocol, ServiceKey};
    use crate::net::{Iface, IpCidr, NeighConfig, NeighTable, NetConfig, RouteTable};
    let mut rules = Rules::new(1);
    for (vip, rs) in [("10.0.0.100", "10.1.0.11"), ("2001:db8::100", "fd00:1::11")] {
        for (proto, port) in [(Protocol::Tcp, 80), (Protocol::Udp, 53)] {
            let vip: IpAddr = vip.parse().unwrap();
            rules
                .add_service(ServiceConfig::new(proto, vip, port).with_scheduler("wlc"))
                .unwrap();
            rules
                .add_dest(
                    &ServiceKey::new(proto, vip, port),
                    DestConfig::new(rs.parse().unwrap(), port)
                        .masq()
                        .with_weight(0),
                )
                .unwrap();
        }
    }
    let cidr = |s: &str| s.parse::<IpCidr>().unwrap();
    let mut net = NetConfig::new();
    net.set(
        Iface::new(0, CLI_MAC)
            .with_addr(cidr("10.0.0.254/24"))
            .with_addr(cidr("2001:db8::fe/64")),
    );
    net.set(
        Iface::new(1, SRV_MAC)
            .with_addr(cidr("10.1.0.254/24"))
            .with_addr(cidr("fd00:1::fe/64")),
    );
    let routes = RouteTable::from_config(&net);
    let mut neigh = NeighTable::new(NeighConfig::default());
    let rs_mac = crate::wire::EthernetAddress([2, 0, 0, 0, 0x11, 0x11]);
    neigh.add_static(1, "10.1.0.11".parse().unwrap(), rs_mac);
    neigh.add_static(1, "fd00:1::11".parse().unwrap(), rs_mac);
    let d = super::fuzzkit::datapath_of(&rules, net, routes, &mut neigh, vec![PortIndex(0)]);
    (d, rules)
}

/// A client's first packet to `vip:vport` from `src:sport`, on the wire
/// to port 0: a TCP SYN or a UDP datagram, checksums right.
fn first_packet(
    tcp: bool,
    src: &str,
    sport: u16,
    vip: &str,
    vport: u16,
) -> (crate::lb::forward::testutil::Pkt, Vec<u8>) {
    use crate::lb::forward::testutil::Pkt;
    use crate::wire::tcp;
    let (src, vip) = (src.parse().unwrap(), vip.parse().unwrap());
    let p = if tcp {
        Pkt::tcp(src, sport, vip, vport).with(|p| p.payload.clear())
    } else {
        Pkt::udp(src, sport, vip, vport)
    }
    .with(|p| {
        p.dst_mac = CLI_MAC;
        p.src_mac = crate::wire::EthernetAddress(PEER);
    });
    let mut f = p.frame();
    if tcp {
        let l4 = if p.src.is_ipv4() { 14 + 20 } else { 14 + 40 };
        let mut t = tcp::Packet::new_unchecked(&mut f[l4..]);
        t.set_flags(tcp::Flags::SYN);
        t.set_ack_number(0);
        t.fill_checksum(&p.src, &p.dst);
    }
    (p, f)
}

/// Every real server of a service at weight 0: a client's SYN or UDP
/// datagram is answered with port unreachable from the VIP, back out the
/// port it came in on, byte for byte (IPv4 and IPv6: what the kernel's
/// icmp_send builds, bar the longer IPv4 quote it allows); a TCP segment
/// other than a SYN is dropped unanswered; the answers are rate limited
/// per client (six at once, then one a second) and counted; a weight
/// above 0 makes the service take connections again.
#[test]
fn refused_connections_get_port_unreachable() {
    use crate::lb::dest::DestConfig;
    use crate::lb::forward::testutil::{icmp_error, Pkt};
    use crate::lb::service::{Protocol, ServiceKey};
    let (mut b, mut rules) = quiescent_datapath();
    let now = Timestamp::from_secs(10);
    // IPv4 ids: the datapath's counter starts at 1.
    let mut ip_id = 1;
    for (tcp, client, vip, vport) in [
        (true, "192.0.2.10", "10.0.0.100", 80),
        (false, "192.0.2.10", "10.0.0.100", 53),
        (true, "2001:db8:1::10", "2001:db8::100", 80),
        (false, "2001:db8:1::10", "2001:db8::100", 53),
    ] {
        let (input, frame) = first_packet(tcp, client, 40000, vip, vport);
        let v4 = input.src.is_ipv4();
        let (ty, code, quoted) = if v4 {
            (3, 3, 20 + 8)
        } else {
            (1, 4, frame.len() - 14)
        };
        let outer = Pkt::tcp(input.dst, 0, input.src, 0).with(|p| {
            p.dst_mac = input.src_mac;
            p.src_mac = CLI_MAC;
            p.tos = if v4 { 0xc0 } else { 0 };
            p.df = false;
            p.ident = ip_id;
        });
        ip_id += v4 as u16;
        let want = icmp_error(&outer, ty, code, 0, &frame[14..14 + quoted]);
        let mut buf = VecBuf::from_frame(&frame);
        assert_eq!(
            b.process_one(PortIndex(0), &mut buf, now),
            Outcome::Tx(PortIndex(0)),
            "{input:?}"
        );
        assert_eq!(buf.data(), &want[..], "{input:?}");
    }
    assert_eq!(
        b.refusals(),
        Refusals {
            answered: 4,
            rate_limited: 0
        }
    );
    assert_eq!(b.engine().conn_count(), 0);

    // Not a SYN: no connection, no answer.
    let (ack, _) = first_packet(true, "192.0.2.10", 40001, "10.0.0.100", 80);
    let mut buf = VecBuf::from_frame(&ack.frame());
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, now),
        Outcome::Drop(DropReason::NotSyn)
    );

    // A burst from one client: six answers, then the limits.
    let from =
        |sport| VecBuf::from_frame(&first_packet(false, "192.0.2.20", sport, "10.0.0.100", 53).1);
    let mut bufs: Vec<VecBuf> = (1000..1010).map(from).collect();
    let mut out = vec![Outcome::Drop(DropReason::NoPort); bufs.len()];
    b.process_burst(PortIndex(0), &mut bufs, now, &mut out);
    let mut want = vec![Outcome::Tx(PortIndex(0)); 6];
    want.extend([Outcome::Drop(DropReason::IcmpRateLimited); 4]);
    assert_eq!(out, want);
    assert_eq!(
        b.refusals(),
        Refusals {
            answered: 10,
            rate_limited: 4
        }
    );
    // A second on, one more.
    let later = Timestamp(now.0 + 1000);
    let mut two = [from(2000), from(2001)];
    let mut out = [Outcome::Drop(DropReason::NoPort); 2];
    b.process_burst(PortIndex(0), &mut two, later, &mut out);
    assert_eq!(
        out,
        [
            Outcome::Tx(PortIndex(0)),
            Outcome::Drop(DropReason::IcmpRateLimited)
        ]
    );

    // Weight 1: the services take connections again.
    for (vip, rs) in [("10.0.0.100", "10.1.0.11"), ("2001:db8::100", "fd00:1::11")] {
        for (proto, port) in [(Protocol::Tcp, 80), (Protocol::Udp, 53)] {
            let key = ServiceKey::new(proto, vip.parse().unwrap(), port);
            let d = DestConfig::new(rs.parse().unwrap(), port).masq();
            rules.edit_dest(&key, d.with_weight(1)).unwrap();
        }
    }
    b.set_snapshot(rules.snapshot());
    for (tcp, client, vip, vport) in [
        (true, "192.0.2.10", "10.0.0.100", 80),
        (false, "2001:db8:1::10", "2001:db8::100", 53),
    ] {
        let (_, frame) = first_packet(tcp, client, 40000, vip, vport);
        let mut buf = VecBuf::from_frame(&frame);
        assert_eq!(
            b.process_one(PortIndex(0), &mut buf, later),
            Outcome::Tx(PortIndex(1)),
            "{client} to {vip}:{vport}"
        );
    }
}

/// A UDP datagram in fragments to a service that refuses it: reassembled,
/// then answered from the tick like any frame that came in on its port
/// (the quote is the reassembled datagram's header and first 8 bytes).
#[test]
fn reassembled_datagram_refused() {
    let (mut b, _) = quiescent_datapath();
    let mut tally = Tally::default();
    let mut l4 = vec![0x13, 0x88, 0, 53, 0x0b, 0xb8, 0, 0];
    l4.extend((0..3000 - 8).map(|i| i as u8));
    let whole = eth(CLI_MAC.0, 0x0800, &ipv4([192, 0, 2, 10], vip(), 17, &l4, 0));
    let plan = crate::net::fragment::Plan::new(&whole, 14, 1500).unwrap();
    let now = Timestamp::ZERO;
    for k in 0..plan.count() {
        let mut f = whole.clone();
        let f = if k == 0 {
            let n = plan.truncate_to_first(&mut f);
            f[..n].to_vec()
        } else {
            let mut f = vec![0; plan.frame_len(k)];
            plan.write(&whole, k, &mut f);
            f
        };
        let mut buf = VecBuf::from_frame(&f);
        tally.rx += 1;
        assert_eq!(b.process_one(PortIndex(0), &mut buf, now), Outcome::Hold);
        b.hold(0, buf, now, &mut tally);
    }
    let mut out = Vec::new();
    b.tick(
        now,
        |n| Some(VecBuf::new(n + 256, 128)),
        &mut out,
        &mut tally,
    );
    tally.tx += out.len() as u64;
    assert_eq!(out.len(), 1);
    let (p, f) = &out[0];
    let f = f.data();
    assert_eq!(*p, PortIndex(0));
    assert_eq!((f[23], &f[34..36]), (1, &[3u8, 3][..]), "port unreachable");
    assert_eq!(f[26..30], [10, 0, 0, 100], "from the VIP");
    assert_eq!(
        f[42 + 2..42 + 4],
        [0x0b, 0xcc],
        "quoting the whole datagram's length"
    );
    assert_eq!(f[42 + 20..42 + 28], l4[..8]);
    assert!(tally.balanced(), "{tally:?}");
}
