//! Engine tests: packets through one or two engines with injected time.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::lb::dest::{DestConfig, FwdMethod};
use crate::lb::rules::{Rules, Settings};
use crate::lb::sched::{DestSet, FlowKey, SchedFlags, Scheduler};
use crate::lb::service::{Netmask, Protocol, ServiceConfig, ServiceKey};
use crate::lb::tcp_state::TcpFlags;

/// Round robin over available servers (weight > 0, not overloaded), in list
/// order: enough to drive the engine until the real schedulers land.
struct TestRr {
    next: usize,
}

impl Scheduler for TestRr {
    fn name(&self) -> &'static str {
        "rr"
    }
    fn update(&mut self, _dests: &dyn DestSet) {}
    fn schedule(&mut self, d: &dyn DestSet, _key: &FlowKey, _now: Instant) -> Option<usize> {
        let n = d.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if d.weight(i) > 0 && !d.overloaded(i) {
                self.next = i + 1;
                return Some(i);
            }
        }
        None
    }
}

fn factory(_name: &str, _flags: SchedFlags) -> Option<Box<dyn Scheduler>> {
    Some(Box::new(TestRr { next: 0 }))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const VIP: &str = "192.168.1.100";
const RS1: &str = "10.0.0.1";
const RS2: &str = "10.0.0.2";

fn tkey() -> ServiceKey {
    ServiceKey::new(Protocol::Tcp, ip(VIP), 80)
}

fn client(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 16, 0, n))
}

fn tcp_in(c: IpAddr, cport: u16, flags: u8) -> Packet {
    Packet {
        proto: Protocol::Tcp,
        src: c,
        sport: cport,
        dst: ip(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        dir: Direction::In,
        len: 60,
    }
}

fn tcp_out(rs: IpAddr, rport: u16, c: IpAddr, cport: u16, flags: u8) -> Packet {
    Packet {
        proto: Protocol::Tcp,
        src: rs,
        sport: rport,
        dst: c,
        dport: cport,
        tcp_flags: TcpFlags(flags),
        dir: Direction::Out,
        len: 1500,
    }
}

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN | TcpFlags::ACK;
const RST: u8 = TcpFlags::RST;
const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;

fn fwd(v: Verdict) -> Forward {
    match v {
        Verdict::Forward(f) => f,
        Verdict::Drop(r) => panic!("dropped: {r:?}"),
    }
}

fn state(v: Verdict) -> &'static str {
    fwd(v).state.name()
}

/// Rules with one TCP service on VIP:80 and the given real servers (added in
/// order, so the last one is at index 0).
fn rules_with(svc: ServiceConfig, dests: &[DestConfig]) -> Rules {
    let mut r = Rules::new(2);
    let key = svc.key;
    r.add_service(svc).unwrap();
    for d in dests {
        r.add_dest(&key, *d).unwrap();
    }
    r
}

fn engine(r: &Rules, cap: usize) -> Engine {
    Engine::with_factory(
        0,
        cap,
        r.snapshot(),
        Arc::new(TemplateTable::default()),
        Instant::ZERO,
        factory,
    )
}

fn counts(r: &Rules, key: &ServiceKey, addr: &str) -> (u32, u32, u32) {
    let (_, _, dests) = r.service(key).unwrap();
    let d = dests.iter().find(|d| d.cfg.addr == ip(addr)).unwrap();
    (
        d.shared.active(),
        d.shared.inactive(),
        d.shared.persistent(),
    )
}

fn nat_rules() -> Rules {
    rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[
            DestConfig::new(ip(RS1), 8080).masq(),
            DestConfig::new(ip(RS2), 8080).masq(),
        ],
    )
}

#[test]
fn nat_connection_lifecycle_and_counts() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let t = |s: u64| Instant::from_secs(s);

    let f = fwd(e.process(&tcp_in(c, 40000, SYN), t(0)));
    assert!(f.new);
    assert_eq!(f.fwd, FwdMethod::Masq);
    // Newest first: RS2 is index 0, rr picks it.
    assert_eq!((f.daddr, f.dport), (ip(RS2), 8080));
    assert_eq!((f.vaddr, f.vport), (ip(VIP), 80));
    assert_eq!(f.state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(counts(&r, &tkey(), RS2), (1, 0, 0));

    // Reply SYN-ACK from the real server: OUTPUT table, SYN row.
    let o = fwd(e.process(&tcp_out(ip(RS2), 8080, c, 40000, SYNACK), t(1)));
    assert_eq!(o.conn, f.conn);
    assert_eq!((o.vaddr, o.vport), (ip(VIP), 80));
    assert_eq!(o.state.name(), "SYN_RECV");
    assert_eq!(
        state(e.process(&tcp_in(c, 40000, ACK), t(1))),
        "ESTABLISHED"
    );
    assert_eq!(counts(&r, &tkey(), RS2), (1, 0, 0));
    assert_eq!(state(e.process(&tcp_in(c, 40000, FIN), t(2))), "CLOSE_WAIT");
    assert_eq!(counts(&r, &tkey(), RS2), (0, 1, 0));
    assert_eq!(
        state(e.process(&tcp_out(ip(RS2), 8080, c, 40000, FIN), t(2))),
        "TIME_WAIT"
    );
    assert_eq!(state(e.process(&tcp_in(c, 40000, ACK), t(3))), "TIME_WAIT");

    // TIME_WAIT lasts 120 s from the last packet.
    assert_eq!(e.expire(t(122), usize::MAX), 0);
    assert_eq!(e.conn_count(), 1);
    assert_eq!(e.expire(t(123), usize::MAX), 1);
    assert_eq!(e.conn_count(), 0);
    assert_eq!(counts(&r, &tkey(), RS2), (0, 0, 0));

    // Stats: 1 conn, 4 in packets of 60 bytes, 2 out of 1500, on the real
    // server and the service.
    let (_, svc, dests) = r.service(&tkey()).unwrap();
    let d = dests.iter().find(|d| d.cfg.addr == ip(RS2)).unwrap();
    for s in [d.shared.stats.totals(), svc.stats.totals()] {
        assert_eq!(
            (s.conns, s.inpkts, s.inbytes, s.outpkts, s.outbytes),
            (1, 4, 240, 2, 3000)
        );
    }
    r.zero(None).unwrap();
    assert_eq!(svc.stats.totals().inpkts, 0);
}

#[test]
fn dr_uses_input_only_table() {
    let r = rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[DestConfig::new(ip(RS1), 80)],
    );
    let mut e = engine(&r, 64);
    let c = client(1);
    let f = fwd(e.process(&tcp_in(c, 1000, SYN), Instant::ZERO));
    assert_eq!(f.fwd, FwdMethod::Route);
    assert_eq!(f.dport, 80);
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, ACK), Instant(10))),
        "ESTABLISHED"
    );
    // INPUT-ONLY: FIN from the client goes to FIN_WAIT (INPUT would say CLOSE_WAIT).
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, FIN), Instant(20))),
        "FIN_WAIT"
    );
    assert_eq!(counts(&r, &tkey(), RS1), (0, 1, 0));
    // No outbound key for DR.
    assert_eq!(
        e.process(&tcp_out(ip(RS1), 80, c, 1000, ACK), Instant(30)),
        Verdict::Drop(DropReason::NoConnection)
    );
    // RST: CLOSE, 10 s.
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, RST), Instant(40))),
        "CLOSE"
    );
    let l = e.list_conns(Instant(40));
    assert_eq!(l[0].expires_in_ms, 10_000);
}

#[test]
fn only_a_syn_opens_a_tcp_connection() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(9);
    for flags in [ACK, RST, SYNACK, TcpFlags::SYN | TcpFlags::RST, FIN, 0] {
        assert_eq!(
            e.process(&tcp_in(c, 5, flags), Instant::ZERO),
            Verdict::Drop(DropReason::NotSyn)
        );
    }
    let mut other = tcp_in(c, 5, SYN);
    other.dport = 81;
    assert_eq!(
        e.process(&other, Instant::ZERO),
        Verdict::Drop(DropReason::NoService)
    );
    assert_eq!(e.counters().drops(DropReason::NotSyn), 6);
    assert_eq!(e.counters().drops(DropReason::NoService), 1);
    assert_eq!(e.conn_count(), 0);
    // Reply without a connection.
    assert_eq!(
        e.process(&tcp_out(ip(RS1), 8080, c, 5, ACK), Instant::ZERO),
        Verdict::Drop(DropReason::NoConnection)
    );
}

#[test]
fn timeouts_exact_and_set_changes_established() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    fwd(e.process(&tcp_in(c, 1, SYN), Instant::ZERO));
    // SYN_RECV: 60 s.
    assert_eq!(e.list_conns(Instant::ZERO)[0].expires_in_ms, 60_000);
    fwd(e.process(&tcp_in(c, 1, ACK), Instant(1000)));
    // ESTABLISHED: 900 s from the last packet; alive just before, gone at.
    assert_eq!(
        state(e.process(&tcp_in(c, 1, ACK), Instant(900_999))),
        "ESTABLISHED"
    );
    // The wheel collects within one tick (10 ms) after the expiry.
    assert_eq!(e.expire(Instant(1_800_998), usize::MAX), 0);
    assert_eq!(
        e.expire(
            Instant(1_800_999 + crate::lb::conntable::TICK_MS),
            usize::MAX
        ),
        1
    );
    assert_eq!(e.conn_count(), 0);

    // --set 60 0 0: ESTABLISHED now 60 s.
    r.set_timeouts(60, 0, 0);
    e.set_snapshot(r.snapshot());
    let t0 = Instant(2_000_000);
    fwd(e.process(&tcp_in(c, 2, SYN), t0));
    fwd(e.process(&tcp_in(c, 2, ACK), t0));
    assert_eq!(e.list_conns(t0)[0].expires_in_ms, 60_000);
    assert_eq!(e.list_conns(t0)[0].expire_mmss(), "01:00");
    // A packet for an entry past its expiry that was not collected yet does
    // not revive it: it is treated as new (and an ACK cannot open one).
    assert_eq!(
        e.process(&tcp_in(c, 2, ACK), Instant(t0.0 + 60_000)),
        Verdict::Drop(DropReason::NotSyn)
    );
    assert_eq!(e.conn_count(), 0);
    assert_eq!(counts(&r, &tkey(), RS1), (0, 0, 0));
    assert_eq!(counts(&r, &tkey(), RS2), (0, 0, 0));
}

#[test]
fn udp_connections_are_inactive_300s() {
    let mut r = Rules::new(1);
    let key = ServiceKey::new(Protocol::Udp, ip(VIP), 53);
    r.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53).with_scheduler("rr"))
        .unwrap();
    r.add_dest(&key, DestConfig::new(ip(RS1), 5353).masq())
        .unwrap();
    let mut e = engine(&r, 16);
    let p = Packet {
        proto: Protocol::Udp,
        src: client(1),
        sport: 999,
        dst: ip(VIP),
        dport: 53,
        tcp_flags: TcpFlags(0),
        dir: Direction::In,
        len: 80,
    };
    let f = fwd(e.process(&p, Instant::ZERO));
    assert!(f.new);
    assert_eq!(f.state, ConnState::Udp);
    assert_eq!((f.daddr, f.dport), (ip(RS1), 5353));
    assert_eq!(counts(&r, &key, RS1), (0, 1, 0));
    let reply = Packet {
        src: ip(RS1),
        sport: 5353,
        dst: client(1),
        dport: 999,
        dir: Direction::Out,
        ..p
    };
    let o = fwd(e.process(&reply, Instant(5000)));
    assert!(!o.new);
    assert_eq!(e.list_conns(Instant(5000))[0].expires_in_ms, 300_000);
    assert_eq!(e.list_conns(Instant(5000))[0].state, "UDP");
    assert_eq!(e.expire(Instant(304_999), usize::MAX), 0);
    assert_eq!(e.expire(Instant(305_000), usize::MAX), 1);
    assert_eq!(counts(&r, &key, RS1), (0, 0, 0));
    // --set 0 0 10
    r.set_timeouts(0, 0, 10);
    e.set_snapshot(r.snapshot());
    fwd(e.process(&p, Instant(400_000)));
    assert_eq!(e.list_conns(Instant(400_000))[0].expires_in_ms, 10_000);
}

#[test]
fn one_packet_scheduling_keeps_no_connection() {
    let mut r = Rules::new(1);
    let key = ServiceKey::new(Protocol::Udp, ip(VIP), 53);
    r.add_service(
        ServiceConfig::new(Protocol::Udp, ip(VIP), 53)
            .with_scheduler("rr")
            .with_ops(),
    )
    .unwrap();
    r.add_dest(&key, DestConfig::new(ip(RS1), 53)).unwrap();
    r.add_dest(&key, DestConfig::new(ip(RS2), 53)).unwrap();
    let mut e = engine(&r, 16);
    let p = Packet {
        proto: Protocol::Udp,
        src: client(1),
        sport: 999,
        dst: ip(VIP),
        dport: 53,
        tcp_flags: TcpFlags(0),
        dir: Direction::In,
        len: 80,
    };
    let a = fwd(e.process(&p, Instant::ZERO));
    let b = fwd(e.process(&p, Instant::ZERO));
    assert_eq!(a.conn, None);
    // Each packet scheduled on its own: rr alternates.
    assert_ne!(a.daddr, b.daddr);
    assert_eq!(e.conn_count(), 0);
    assert_eq!(counts(&r, &key, RS1), (0, 0, 0));
    let (_, svc, _) = r.service(&key).unwrap();
    assert_eq!(svc.stats.totals().conns, 2);
    assert_eq!(svc.stats.totals().inpkts, 2);
}

#[test]
fn table_full_is_a_counted_drop() {
    let r = nat_rules();
    let mut e = engine(&r, 2);
    fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    fwd(e.process(&tcp_in(client(2), 1, SYN), Instant::ZERO));
    assert_eq!(
        e.process(&tcp_in(client(3), 1, SYN), Instant::ZERO),
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(e.counters().drops(DropReason::TableFull), 1);
    assert_eq!(e.conn_count(), 2);
    // Nothing was bound for the refused connection.
    let (a1, i1, _) = counts(&r, &tkey(), RS1);
    let (a2, i2, _) = counts(&r, &tkey(), RS2);
    assert_eq!(a1 + i1 + a2 + i2, 2);
    // Existing connections still work.
    assert_eq!(
        state(e.process(&tcp_in(client(1), 1, ACK), Instant(1))),
        "ESTABLISHED"
    );
}

#[test]
fn weight_zero_drains() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    // One connection on each.
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    let b = fwd(e.process(&tcp_in(client(2), 1, SYN), Instant::ZERO));
    assert_ne!(a.daddr, b.daddr);
    r.edit_dest(
        &tkey(),
        DestConfig::new(ip(RS1), 8080).masq().with_weight(0),
    )
    .unwrap();
    e.set_snapshot(r.snapshot());
    // New connections only to RS2.
    for n in 3..10 {
        assert_eq!(
            fwd(e.process(&tcp_in(client(n), 1, SYN), Instant(10))).daddr,
            ip(RS2)
        );
    }
    // The existing RS1 connection goes on; the edit kept its count.
    let old = if a.daddr == ip(RS1) { 1 } else { 2 };
    let f = fwd(e.process(&tcp_in(client(old), 1, ACK), Instant(20)));
    assert_eq!(f.daddr, ip(RS1));
    assert_eq!(counts(&r, &tkey(), RS1), (1, 0, 0));
}

#[test]
fn deleted_dest_drops_its_connections() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    assert_eq!(a.daddr, ip(RS2));
    fwd(e.process(&tcp_in(client(1), 1, ACK), Instant(1)));
    let shared = e.dest(a.dest).unwrap().clone();
    r.delete_dest(&tkey(), ip(RS2), 8080).unwrap();
    e.set_snapshot(r.snapshot());
    // Packets of the connection are dropped; it lives on until it times out.
    assert_eq!(
        e.process(&tcp_in(client(1), 1, ACK), Instant(2)),
        Verdict::Drop(DropReason::DestRemoved)
    );
    assert_eq!(e.conn_count(), 1);
    assert_eq!(shared.active(), 1);
    // Replies still pass (the kernel's output path does not check).
    assert!(matches!(
        e.process(&tcp_out(ip(RS2), 8080, client(1), 1, ACK), Instant(3)),
        Verdict::Forward(_)
    ));
    e.expire(Instant(1_000_000), usize::MAX);
    assert_eq!(e.conn_count(), 0);
    assert_eq!((shared.active(), shared.inactive()), (0, 0));
    // The slot was released.
    assert!(e.dest(a.dest).is_none());
}

#[test]
fn deleted_dest_with_expire_nodest_conn_reschedules() {
    let mut r = nat_rules();
    r.set_settings(Settings {
        expire_nodest_conn: true,
        ..Settings::default()
    });
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    assert_eq!(a.daddr, ip(RS2));
    let shared = e.dest(a.dest).unwrap().clone();
    r.delete_dest(&tkey(), ip(RS2), 8080).unwrap();
    e.set_snapshot(r.snapshot());
    // A non-SYN: the connection is expired, and the packet cannot open one.
    assert_eq!(
        e.process(&tcp_in(client(1), 1, ACK), Instant(2)),
        Verdict::Drop(DropReason::NotSyn)
    );
    assert_eq!(e.conn_count(), 0);
    assert_eq!((shared.active(), shared.inactive()), (0, 0));
    // The client's next SYN is scheduled on a remaining server.
    let b = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant(3)));
    assert!(b.new);
    assert_eq!(b.daddr, ip(RS1));
    assert_eq!(e.counters().rescheduled(), 1);
}

#[test]
fn syn_reuses_time_wait_and_close() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let a = fwd(e.process(&tcp_in(c, 7, SYN), Instant::ZERO));
    fwd(e.process(&tcp_in(c, 7, ACK), Instant(1)));
    fwd(e.process(&tcp_in(c, 7, FIN), Instant(2)));
    assert_eq!(
        state(e.process(&tcp_out(a.daddr, 8080, c, 7, FIN), Instant(3))),
        "TIME_WAIT"
    );
    let b = fwd(e.process(&tcp_in(c, 7, SYN), Instant(4)));
    assert!(b.new);
    assert_ne!(b.daddr, a.daddr); // rescheduled: rr moved on
    assert_eq!(b.state.name(), "SYN_RECV");
    assert_eq!(e.conn_count(), 1);
    // The new real server's reply finds the rescheduled connection, and
    // the old one's does not.
    let reply = e.process(&tcp_out(b.daddr, 8080, c, 7, SYN | ACK), Instant(4));
    assert!(
        matches!(reply, Verdict::Forward(_)),
        "reply after reuse: {reply:?}"
    );
    let stale = e.process(&tcp_out(a.daddr, 8080, c, 7, ACK), Instant(4));
    assert!(
        matches!(stale, Verdict::Drop(_)),
        "old server's packet: {stale:?}"
    );
    // CLOSE (after RST) is reused too.
    fwd(e.process(&tcp_in(c, 7, ACK), Instant(5)));
    assert_eq!(state(e.process(&tcp_in(c, 7, RST), Instant(5))), "CLOSE");
    let d = fwd(e.process(&tcp_in(c, 7, SYN), Instant(6)));
    assert!(d.new);
    assert_eq!(e.counters().rescheduled(), 2);
    // A SYN on an ESTABLISHED connection is not a reuse.
    fwd(e.process(&tcp_in(c, 7, ACK), Instant(7)));
    let s = fwd(e.process(&tcp_in(c, 7, SYN), Instant(8)));
    assert!(!s.new);
    let total: u32 = [RS1, RS2]
        .iter()
        .map(|a| counts(&r, &tkey(), a))
        .map(|(x, y, _)| x + y)
        .sum();
    assert_eq!(total, 1);
}

#[test]
fn thresholds_steer_scheduling() {
    let r = rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[
            DestConfig::new(ip(RS1), 80).with_thresholds(1, 0),
            DestConfig::new(ip(RS2), 80).with_thresholds(1, 0),
        ],
    );
    let mut e = engine(&r, 64);
    fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    fwd(e.process(&tcp_in(client(2), 1, SYN), Instant::ZERO));
    // Both overloaded: nothing available.
    assert_eq!(
        e.process(&tcp_in(client(3), 1, SYN), Instant::ZERO),
        Verdict::Drop(DropReason::NoDest)
    );
    // One connection closes and expires: its server is available again.
    fwd(e.process(&tcp_in(client(1), 1, ACK), Instant(1)));
    assert_eq!(
        state(e.process(&tcp_in(client(1), 1, RST), Instant(1))),
        "CLOSE"
    );
    e.expire(Instant(20_000), usize::MAX);
    assert!(matches!(
        e.process(&tcp_in(client(3), 1, SYN), Instant(20_000)),
        Verdict::Forward(_)
    ));
}

fn persistent_rules(mask: Option<Netmask>) -> Rules {
    rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80)
            .with_scheduler("rr")
            .with_persistence(360, mask),
        &[DestConfig::new(ip(RS1), 80), DestConfig::new(ip(RS2), 80)],
    )
}

#[test]
fn persistence_holds_across_two_lcores() {
    let r = persistent_rules(Some(Netmask::V4("255.255.255.0".parse().unwrap())));
    let tpl = Arc::new(TemplateTable::default());
    let mut e0 = Engine::with_factory(0, 64, r.snapshot(), tpl.clone(), Instant::ZERO, factory);
    let mut e1 = Engine::with_factory(1, 64, r.snapshot(), tpl.clone(), Instant::ZERO, factory);
    let a = fwd(e0.process(&tcp_in(client(1), 1000, SYN), Instant::ZERO));
    // Same client, another port, on the other lcore (whose rr would pick
    // index 0 first as well; make it differ by scheduling someone else).
    let mut other_net = tcp_in(ip("172.17.0.1"), 5, SYN);
    other_net.dport = 80;
    let x = fwd(e1.process(&other_net, Instant::ZERO));
    let b = fwd(e1.process(&tcp_in(client(1), 2000, SYN), Instant(10)));
    assert_eq!(b.daddr, a.daddr);
    // Same /24: same server.
    let c = fwd(e0.process(&tcp_in(client(77), 3000, SYN), Instant(20)));
    assert_eq!(c.daddr, a.daddr);
    assert_eq!(tpl.len(), 2); // 172.16.0.0/24 and 172.17.0.0/24
    let (_, _, p) = counts(&r, &tkey(), if a.daddr == ip(RS1) { RS1 } else { RS2 });
    assert_eq!(p, if x.daddr == a.daddr { 2 } else { 1 });

    // Listing: templates with client port 0, state NONE, 360 s.
    let l = e0.list_templates(Instant(20));
    let t = l
        .iter()
        .find(|t| t.client.ip() == ip("172.16.0.0"))
        .unwrap();
    assert_eq!(t.client.port(), 0);
    assert_eq!(t.state, "NONE");
    assert_eq!(t.vip, "192.168.1.100:80".parse().unwrap());
    assert_eq!(t.expires_in_ms, 360_000);
    assert!(t.template);

    // Connections gone (RST -> CLOSE 10 s), template expires at 360 s after
    // its last use and only then.
    fwd(e0.process(&tcp_in(client(1), 1000, RST), Instant(30)));
    fwd(e1.process(&tcp_in(client(1), 2000, RST), Instant(30)));
    fwd(e0.process(&tcp_in(client(77), 3000, RST), Instant(30)));
    fwd(e1.process(&tcp_in(ip("172.17.0.1"), 5, RST), Instant(30)));
    e0.expire(Instant(100_000), usize::MAX);
    e1.expire(Instant(100_000), usize::MAX);
    // 172.17.0.0/24 was last used at 0, 172.16.0.0/24 at 20 ms.
    assert_eq!(tpl.expire_all(Instant(359_999)), 0);
    assert_eq!(tpl.expire_all(Instant(360_000)), 1);
    assert_eq!(tpl.expire_all(Instant(360_019)), 0);
    assert_eq!(tpl.expire_all(Instant(360_020)), 1);
    for a in [RS1, RS2] {
        assert_eq!(counts(&r, &tkey(), a), (0, 0, 0));
    }
}

#[test]
fn template_kept_while_it_controls_connections() {
    let r = persistent_rules(None);
    let mut e = engine(&r, 64);
    let tpl = e.templates().clone();
    fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    fwd(e.process(&tcp_in(client(1), 1, ACK), Instant(1)));
    // At 360 s the template is due but its connection (ESTABLISHED, 900 s)
    // lives: re-armed for 60 s.
    assert_eq!(tpl.expire_all(Instant(360_000)), 0);
    assert_eq!(tpl.list(Instant(360_000))[0].expires_in_ms, 60_000);
    assert_eq!(tpl.list(Instant(360_000))[0].n_control, 1);
    // A new connection from the client re-arms it to the full timeout.
    fwd(e.process(&tcp_in(client(1), 2, SYN), Instant(400_000)));
    assert_eq!(tpl.list(Instant(400_000))[0].expires_in_ms, 360_000);
    assert_eq!(tpl.list(Instant(400_000))[0].n_control, 2);
    e.flush();
    assert_eq!(tpl.list(Instant(400_000))[0].n_control, 0);
    assert_eq!(tpl.expire_all(Instant(760_000)), 1);
    assert!(tpl.is_empty());
}

#[test]
fn quiescent_template_follows_expire_quiescent_template() {
    for eqt in [false, true] {
        let mut r = persistent_rules(None);
        r.set_settings(Settings {
            expire_quiescent_template: eqt,
            ..Settings::default()
        });
        let mut e = engine(&r, 64);
        let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
        let port = 80;
        r.edit_dest(&tkey(), DestConfig::new(a.daddr, port).with_weight(0))
            .unwrap();
        e.set_snapshot(r.snapshot());
        let b = fwd(e.process(&tcp_in(client(1), 2, SYN), Instant(10)));
        if eqt {
            assert_ne!(b.daddr, a.daddr, "template dropped, rescheduled");
        } else {
            assert_eq!(
                b.daddr, a.daddr,
                "persistent client keeps its weight-0 server"
            );
        }
    }
}

#[test]
fn template_of_deleted_dest_is_replaced() {
    let mut r = persistent_rules(None);
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    r.delete_dest(&tkey(), a.daddr, 80).unwrap();
    e.set_snapshot(r.snapshot());
    let b = fwd(e.process(&tcp_in(client(1), 2, SYN), Instant(10)));
    assert_ne!(b.daddr, a.daddr);
    assert_eq!(e.templates().len(), 1);
}

#[test]
fn port_zero_service_forwards_to_the_packet_port() {
    let mut r = Rules::new(1);
    let key = ServiceKey::new(Protocol::Tcp, ip(VIP), 0);
    r.add_service(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 0)
            .with_scheduler("rr")
            .with_persistence(60, None),
    )
    .unwrap();
    r.add_dest(&key, DestConfig::new(ip(RS1), 0).masq())
        .unwrap();
    let mut e = engine(&r, 16);
    let mut p = tcp_in(client(1), 1234, SYN);
    p.dport = 443;
    let f = fwd(e.process(&p, Instant::ZERO));
    assert_eq!((f.daddr, f.dport, f.vport), (ip(RS1), 443, 443));
    // Reply from RS1:443 finds it.
    let o = fwd(e.process(&tcp_out(ip(RS1), 443, client(1), 1234, SYNACK), Instant(1)));
    assert_eq!(o.conn, f.conn);
    // Template key uses vport 0.
    let t = &e.list_templates(Instant(1))[0];
    assert_eq!(t.vip.port(), 0);
    let c = &e.list_conns(Instant(1))[0];
    assert_eq!(c.dest, "10.0.0.1:443".parse().unwrap());
}

#[test]
fn listing_rows() {
    let r = nat_rules();
    let mut e = engine(&r, 16);
    fwd(e.process(&tcp_in(client(2), 51234, SYN), Instant::ZERO));
    fwd(e.process(&tcp_in(client(2), 51234, ACK), Instant::ZERO));
    let l = e.list_conns(Instant(1000));
    assert_eq!(l.len(), 1);
    let c = &l[0];
    assert_eq!(c.proto, Protocol::Tcp);
    assert_eq!(c.state, "ESTABLISHED");
    assert_eq!(c.expire_mmss(), "14:59");
    assert_eq!(c.client, "172.16.0.2:51234".parse().unwrap());
    assert_eq!(c.vip, "192.168.1.100:80".parse().unwrap());
    assert_eq!(c.dest, "10.0.0.2:8080".parse().unwrap());
}

#[test]
fn snapshot_swap_keeps_connections_and_counts() {
    let mut r = nat_rules();
    let mut e = engine(&r, 16);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Instant::ZERO));
    r.edit_dest(
        &tkey(),
        DestConfig::new(a.daddr, 8080).masq().with_weight(3),
    )
    .unwrap();
    r.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 443))
        .unwrap();
    e.set_snapshot(r.snapshot());
    let f = fwd(e.process(&tcp_in(client(1), 1, ACK), Instant(5)));
    assert_eq!(f.conn, a.conn);
    assert_eq!(f.dest, a.dest);
    assert_eq!(e.dest(f.dest).unwrap().weight(), 3);
    let addr = if a.daddr == ip(RS1) { RS1 } else { RS2 };
    assert_eq!(counts(&r, &tkey(), addr), (1, 0, 0));
}

#[test]
fn ipv6_service() {
    let mut r = Rules::new(1);
    let key = ServiceKey::new(Protocol::Tcp, ip("2001:db8::100"), 80);
    r.add_service(ServiceConfig::new(Protocol::Tcp, ip("2001:db8::100"), 80).with_scheduler("rr"))
        .unwrap();
    r.add_dest(&key, DestConfig::new(ip("2001:db8::1"), 8080).masq())
        .unwrap();
    let mut e = engine(&r, 16);
    let p = Packet {
        src: ip("2001:db8:1::5"),
        dst: ip("2001:db8::100"),
        ..tcp_in(client(1), 3333, SYN)
    };
    let f = fwd(e.process(&p, Instant::ZERO));
    assert_eq!((f.daddr, f.dport), (ip("2001:db8::1"), 8080));
    let o = Packet {
        src: ip("2001:db8::1"),
        sport: 8080,
        dst: ip("2001:db8:1::5"),
        dport: 3333,
        dir: Direction::Out,
        ..p
    };
    assert_eq!(fwd(e.process(&o, Instant(1))).vaddr, ip("2001:db8::100"));
}

#[test]
fn prepared_burst_path_matches() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let pkts: Vec<Packet> = (1..=8).map(|n| tcp_in(client(n), 1, SYN)).collect();
    let prepared: Vec<Prepared> = pkts.iter().map(Engine::prepare).collect();
    for p in &prepared {
        let _ = e.prefetch_addr(p);
    }
    for (pkt, p) in pkts.iter().zip(&prepared) {
        assert!(fwd(e.process_prepared(pkt, p, Instant::ZERO)).new);
    }
    assert_eq!(e.conn_count(), 8);
}

/// A full table: some keys sit past their overflowing home bucket. The
/// burst path fetches the next bucket for those and must still find every
/// connection, in both directions, with and without a prefetch hook.
#[test]
fn burst_lookups_find_keys_past_full_buckets() {
    fn no_prefetch(_: *const u8) {}
    for hook in [false, true] {
        let r = nat_rules();
        let cap = 2000;
        let mut e = engine(&r, cap);
        if hook {
            e.set_prefetch(no_prefetch);
        }
        let c = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        let n = cap as u32;
        let syns: Vec<Packet> = (0..n).map(|i| tcp_in(c(i), 1000, SYN)).collect();
        let mut v = vec![Verdict::Drop(DropReason::NoService); syns.len()];
        e.process_burst(&syns, Instant(1), &mut v);
        assert_eq!(e.conn_count(), cap);
        let spilled = syns
            .iter()
            .filter(|p| {
                let h = Engine::prepare(p).hash;
                e.table.overflow_next(h).is_some()
            })
            .count();
        assert!(spilled > 0, "the table is full enough for overflow");
        let acks: Vec<Packet> = (0..n).map(|i| tcp_in(c(i), 1000, ACK)).collect();
        e.process_burst(&acks, Instant(2), &mut v);
        let mut replies = Vec::new();
        for (k, verdict) in v.iter().enumerate() {
            let f = fwd(*verdict);
            assert!(!f.new, "ack {k} found its connection");
            replies.push(tcp_out(f.daddr, f.dport, c(k as u32), 1000, ACK));
        }
        e.process_burst(&replies, Instant(3), &mut v);
        for verdict in &v {
            assert!(!fwd(*verdict).new);
        }
        assert_eq!(e.conn_count(), cap);
    }
}

#[test]
fn measured_size_per_connection() {
    let r = nat_rules();
    let cap = 1 << 20;
    let e = engine(&r, cap);
    let entry = std::mem::size_of::<crate::lb::conntable::Conn>();
    let per_conn = e.memory_bytes() as f64 / cap as f64;
    println!("conn entry {entry} bytes; table+index+wheel+template slots {per_conn:.1} bytes/conn at capacity {cap}");
    assert_eq!(entry, 64);
    assert!(per_conn <= 128.0, "{per_conn}");
}

// ---- random sequences: shared counts stay exact ----

#[derive(Clone, Debug)]
enum Op {
    In { client: u8, port: u8, flags: u8 },
    Out { client: u8, port: u8, flags: u8 },
    Udp { client: u8, port: u8 },
    Advance(u32),
    Expire(u8),
    Weight { dest: u8, w: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop::sample::select(vec![
        SYN,
        ACK,
        FIN,
        RST,
        SYNACK,
        SYN | FIN,
        0u8,
        TcpFlags::PSH | ACK,
    ]);
    prop_oneof![
        4 => (0u8..6, 0u8..4, flags.clone()).prop_map(|(client, port, flags)| Op::In { client, port, flags }),
        2 => (0u8..6, 0u8..4, flags).prop_map(|(client, port, flags)| Op::Out { client, port, flags }),
        1 => (0u8..6, 0u8..4).prop_map(|(client, port)| Op::Udp { client, port }),
        2 => (0u32..200_000).prop_map(Op::Advance),
        1 => (0u8..8).prop_map(Op::Expire),
        1 => (0u8..3, 0u8..3).prop_map(|(dest, w)| Op::Weight { dest, w }),
    ]
}

fn check_counts(e: &Engine, r: &Rules) {
    // Sum of the table's per-connection flags equals the shared counters.
    for (_, _, dests) in r.services() {
        for d in dests {
            let mut act = 0;
            let mut inact = 0;
            for (_, c) in e.table.iter() {
                if Arc::ptr_eq(e.dest(c.dest).unwrap(), &d.shared) {
                    if c.has(flag::INACTIVE) {
                        inact += 1
                    } else {
                        act += 1
                    }
                }
            }
            assert_eq!(
                (d.shared.active(), d.shared.inactive()),
                (act, inact),
                "dest {}",
                d.cfg.addr
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn counts_exact_after_random_ops(ops in prop::collection::vec(op(), 1..150), persist in any::<bool>(), small in any::<bool>()) {
        let mut svc = ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr");
        if persist {
            svc = svc.with_persistence(30, None);
        }
        let dests = [
            DestConfig::new(ip(RS1), 8080).masq().with_thresholds(3, 0),
            DestConfig::new(ip(RS2), 80),
            DestConfig::new(ip("10.0.0.3"), 8081).masq(),
        ];
        let mut r = rules_with(svc, &dests);
        let ukey = ServiceKey::new(Protocol::Udp, ip(VIP), 53);
        r.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53).with_scheduler("rr")).unwrap();
        r.add_dest(&ukey, DestConfig::new(ip(RS1), 53).masq()).unwrap();
        let mut e = engine(&r, if small { 5 } else { 64 });
        let mut now = Instant::ZERO;
        for o in ops {
            match o {
                Op::In { client: c, port, flags } => {
                    let _ = e.process(&tcp_in(client(c), 1000 + port as u16, flags), now);
                }
                Op::Out { client: c, port, flags } => {
                    for (rs, rp) in [(RS1, 8080), ("10.0.0.3", 8081)] {
                        let _ = e.process(&tcp_out(ip(rs), rp, client(c), 1000 + port as u16, flags), now);
                    }
                }
                Op::Udp { client: c, port } => {
                    let p = Packet {
                        proto: Protocol::Udp, src: client(c), sport: 2000 + port as u16, dst: ip(VIP), dport: 53,
                        tcp_flags: TcpFlags(0), dir: Direction::In, len: 100,
                    };
                    let _ = e.process(&p, now);
                }
                Op::Advance(ms) => now = Instant(now.0 + ms as u64),
                Op::Expire(b) => { e.expire(now, b as usize); }
                Op::Weight { dest, w } => {
                    let d = dests[dest as usize].with_weight(w as u32);
                    r.edit_dest(&tkey(), d).unwrap();
                    e.set_snapshot(r.snapshot());
                }
            }
            check_counts(&e, &r);
        }
        // Expire everything: all counts back to zero, table empty.
        let end = Instant(now.0 + 10_000_000);
        e.expire(end, usize::MAX);
        e.templates().expire_all(end);
        prop_assert_eq!(e.conn_count(), 0);
        prop_assert!(e.templates().is_empty());
        for (_, _, dests) in r.services() {
            for d in dests {
                prop_assert_eq!((d.shared.active(), d.shared.inactive(), d.shared.persistent()), (0, 0, 0));
                prop_assert!(!d.shared.overloaded());
            }
        }
        let c = e.counters();
        prop_assert_eq!(c.created(), c.expired());
    }
}

/// Throughput measurement (not a correctness test; reads the wall clock).
/// `cargo test --release --no-default-features --lib lb::engine::tests::perf -- --ignored --nocapture`
#[test]
#[ignore]
fn perf_one_million_connections() {
    use std::hint::black_box;
    use std::time::Instant as Wall;

    const N: u32 = 1_000_000;
    let r = nat_rules();
    let mut e = engine(&r, N as usize);
    let pkt = |i: u32, flags: u8| Packet {
        proto: Protocol::Tcp,
        src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        sport: 1024 + (i % 50_000) as u16,
        dst: ip(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        dir: Direction::In,
        len: 64,
    };
    let now = Instant::from_secs(1);
    let syns: Vec<Packet> = (0..N).map(|i| pkt(i, SYN)).collect();
    let t = Wall::now();
    let mut out = [Verdict::Drop(DropReason::NoService); 32];
    for burst in syns.chunks(32) {
        e.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    assert_eq!(e.conn_count(), N as usize);
    println!(
        "new connections: {:.2} M/s ({:.0} ns each)",
        N as f64 / dt.as_secs_f64() / 1e6,
        dt.as_nanos() as f64 / N as f64
    );

    // Established packets in random order.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let order: Vec<Packet> = (0..4 * N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pkt((x % N as u64) as u32, ACK)
        })
        .collect();
    let t = Wall::now();
    for p in &order {
        black_box(e.process(p, now));
    }
    let dt = t.elapsed();
    println!(
        "established, one at a time: {:.1} ns/packet",
        dt.as_nanos() as f64 / order.len() as f64
    );

    // Bursts of 32 through process_burst (index lines and entries loaded
    // for the whole burst first).
    let mut out = [Verdict::Drop(DropReason::NoService); 32];
    let t = Wall::now();
    for burst in order.chunks(32) {
        e.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    println!(
        "established, process_burst(32): {:.1} ns/packet",
        dt.as_nanos() as f64 / order.len() as f64
    );
    assert!(matches!(out[0], Verdict::Forward(_)));

    // Cache-resident table (compute cost of the established path).
    let r2 = nat_rules();
    let mut small = engine(&r2, 1024);
    for i in 0..1000 {
        small.process(&pkt(i, SYN), now);
    }
    let hot: Vec<Packet> = order
        .iter()
        .take(1 << 20)
        .map(|p| Packet {
            src: IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000
                    + (u32::from(match p.src {
                        IpAddr::V4(a) => a,
                        _ => unreachable!(),
                    }) % 1000),
            )),
            sport: 0,
            ..*p
        })
        .collect();
    let hot: Vec<Packet> = hot
        .iter()
        .map(|p| {
            let i = u32::from(match p.src {
                IpAddr::V4(a) => a,
                _ => unreachable!(),
            }) - 0x0a00_0000;
            pkt(i, ACK)
        })
        .collect();
    let t = Wall::now();
    for burst in hot.chunks(32) {
        small.process_burst(burst, now, &mut out);
        black_box(&out);
    }
    let dt = t.elapsed();
    println!(
        "established, 1000 connections (cache-resident): {:.1} ns/packet",
        dt.as_nanos() as f64 / hot.len() as f64
    );
    assert!(matches!(out[0], Verdict::Forward(_)));

    println!(
        "memory: {:.1} bytes/conn",
        e.memory_bytes() as f64 / N as f64
    );

    let t = Wall::now();
    let n = e.expire(Instant::from_secs(10_000), usize::MAX);
    println!(
        "expire all: {n} in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(e.conn_count(), 0);
}

#[test]
fn transition_table_matches_next_state() {
    let t = transitions();
    for (d, dir) in [StateDir::Input, StateDir::Output, StateDir::InputOnly]
        .into_iter()
        .enumerate()
    {
        for f in 0..=255u8 {
            for cur in TcpState::ALL {
                assert_eq!(
                    t[d][flag_bits(TcpFlags(f))][cur as usize],
                    next_state(dir, TcpFlags(f), cur),
                    "{dir:?} {f:#x} {cur:?}"
                );
            }
        }
    }
}

#[test]
fn hot_types_stay_small() {
    println!(
        "Packet {} Verdict {} Forward {} Prepared {}",
        std::mem::size_of::<Packet>(),
        std::mem::size_of::<Verdict>(),
        std::mem::size_of::<Forward>(),
        std::mem::size_of::<Prepared>()
    );
    assert!(std::mem::size_of::<Verdict>() <= 64);
}

#[test]
fn packet_counters_are_published_by_expire_and_publish_stats() {
    // Per-packet counters live in the engine (plain integers) until
    // published; connection counts are shared at once.
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let (_, svc, _) = r.service(&tkey()).unwrap();
    fwd(e.process(&tcp_in(c, 1000, SYN), Instant(0)));
    fwd(e.process(&tcp_in(c, 1000, ACK), Instant(1)));
    assert_eq!(svc.stats.totals().conns, 1);
    assert_eq!(svc.stats.totals().inpkts, 0);
    e.publish_stats();
    let t = svc.stats.totals();
    assert_eq!((t.inpkts, t.inbytes), (2, 120));
    // Again: only the new packets are added.
    fwd(e.process(&tcp_out(ip(RS2), 8080, c, 1000, ACK), Instant(2)));
    e.publish_stats();
    let t = svc.stats.totals();
    assert_eq!((t.inpkts, t.outpkts, t.outbytes), (2, 1, 1500));
    // expire() publishes too.
    fwd(e.process(&tcp_in(c, 1000, ACK), Instant(3)));
    e.expire(Instant(4), 16);
    assert_eq!(svc.stats.totals().inpkts, 3);
    // So does the removal of a real server slot whose last connection went.
    let mut r2 = nat_rules();
    let mut e2 = engine(&r2, 64);
    let f = fwd(e2.process(&tcp_in(c, 7, SYN), Instant(0)));
    let (_, svc2, dests) = r2.service(&tkey()).unwrap();
    let svc2 = svc2.clone();
    let gone = dests
        .iter()
        .find(|d| d.cfg.addr == f.daddr)
        .unwrap()
        .shared
        .clone();
    r2.delete_dest(&tkey(), f.daddr, 8080).unwrap();
    e2.set_snapshot(r2.snapshot());
    e2.flush();
    assert_eq!(gone.stats.totals().inpkts, 1);
    assert_eq!(svc2.stats.totals().inpkts, 1);
    assert!(e2.dest(f.dest).is_none());
}

#[test]
fn engine_on_a_caller_built_table() {
    use crate::lb::conntable::{Bucket, Conn, ConnTable};
    let r = nat_rules();
    let l = ConnTable::layout(8);
    let conns: &'static mut [Conn] = Box::leak(
        (0..l.conns)
            .map(|_| *ConnTable::new(1, Instant::ZERO).get(0))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    // Buckets from a heap table's layout: any contents will do.
    let buckets: &'static mut [Bucket] = Box::leak(
        std::iter::repeat_n(ConnTable::bucket_template(), l.buckets)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let table = ConnTable::with_memory(conns, buckets, Instant::ZERO).unwrap();
    let mut e = Engine::with_table(
        0,
        table,
        r.snapshot(),
        Arc::new(TemplateTable::default()),
        factory,
    );
    assert_eq!(e.capacity(), 8);
    for n in 1..=8 {
        assert!(fwd(e.process(&tcp_in(client(n), 1, SYN), Instant(0))).new);
    }
    assert_eq!(
        e.process(&tcp_in(client(9), 1, SYN), Instant(0)),
        Verdict::Drop(DropReason::TableFull)
    );
    let pkts: Vec<Packet> = (1..=8).map(|n| tcp_in(client(n), 1, ACK)).collect();
    let mut out = [Verdict::Drop(DropReason::NoService); 8];
    e.process_burst(&pkts, Instant(1), &mut out);
    assert!(out.iter().all(|v| fwd(*v).state.name() == "ESTABLISHED"));
}

/// Connections that open, close and are reopened from recycled client
/// ports (TIME_WAIT reuse), with time jumping across expiries, through both
/// the single and the burst path: a real server's answer to the SYN it was
/// sent always finds its connection.
#[test]
fn recycled_client_ports_keep_both_directions() {
    let r = nat_rules();
    let mut e = engine(&r, 256);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut now = 0u64;
    for round in 0..20_000u32 {
        now += next() % 3000; // up to 3 s between connections
        if next() % 4 == 0 {
            // Just past TIME_WAIT, before the wheel collected it.
            now += 120_000 + next() % 50;
        }
        let t = Instant(now);
        let c = client((next() % 3) as u8 + 1);
        let port = 1000 + (next() % 8) as u16;
        let burst = round % 2 == 0;
        let run = |e: &mut Engine, p: Packet| -> Verdict {
            if burst {
                let mut out = [Verdict::Drop(DropReason::NoService)];
                e.process_burst(&[p], t, &mut out);
                out[0]
            } else {
                e.process(&p, t)
            }
        };
        let v = run(&mut e, tcp_in(c, port, SYN));
        let Verdict::Forward(f) = v else {
            continue; // e.g. a SYN on a connection still ESTABLISHED elsewhere in time
        };
        if !f.new {
            continue;
        }
        let reply = run(&mut e, tcp_out(f.daddr, 8080, c, port, SYNACK));
        assert!(
            matches!(reply, Verdict::Forward(_)),
            "round {round}: reply from {} for {c}:{port} -> {reply:?}",
            f.daddr
        );
        run(&mut e, tcp_in(c, port, ACK));
        if next() % 20 != 0 {
            run(&mut e, tcp_in(c, port, FIN));
            run(&mut e, tcp_out(f.daddr, 8080, c, port, FIN));
            run(&mut e, tcp_in(c, port, ACK));
        }
        if next() % 64 == 0 {
            e.expire(t, 64);
        }
    }
    assert!(
        e.counters().rescheduled() > 300,
        "{}",
        e.counters().rescheduled()
    );
}

/// A client reuses its port toward a second VIP served by the same real
/// server while its first connection is in TIME_WAIT: both share the reply
/// key (real server, client), and the real server's answer must go to the
/// new connection (source rewritten to the second VIP), as in the kernel,
/// which finds the newest connection first.
#[test]
fn reply_key_shared_across_vips_goes_to_the_newest() {
    let vip2 = ip("192.168.1.101");
    let mut r = rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[DestConfig::new(ip(RS1), 8080).masq()],
    );
    let k2 = ServiceKey::new(Protocol::Tcp, vip2, 80);
    r.add_service(ServiceConfig::new(Protocol::Tcp, vip2, 80).with_scheduler("rr"))
        .unwrap();
    r.add_dest(&k2, DestConfig::new(ip(RS1), 8080).masq())
        .unwrap();
    let mut e = engine(&r, 64);
    let c = client(1);
    let a = fwd(e.process(&tcp_in(c, 7, SYN), Instant::ZERO));
    fwd(e.process(&tcp_out(a.daddr, 8080, c, 7, SYNACK), Instant(1)));
    fwd(e.process(&tcp_in(c, 7, ACK), Instant(2)));
    fwd(e.process(&tcp_in(c, 7, FIN), Instant(3)));
    fwd(e.process(&tcp_out(a.daddr, 8080, c, 7, FIN), Instant(4)));
    assert_eq!(
        state(e.process(&tcp_in(c, 7, ACK), Instant(5))),
        "TIME_WAIT"
    );
    // Same client port, the other VIP, the same real server.
    let mut syn2 = tcp_in(c, 7, SYN);
    syn2.dst = vip2;
    let b = fwd(e.process(&syn2, Instant(6)));
    assert!(b.new);
    assert_eq!(b.vaddr, vip2);
    let reply = fwd(e.process(&tcp_out(b.daddr, 8080, c, 7, SYNACK), Instant(7)));
    assert_eq!(reply.vaddr, vip2, "the reply is the new connection's");
    assert_eq!(reply.conn, b.conn);
    assert_eq!(e.conn_count(), 1, "the old connection was retired");
}

/// Bursts decide exactly as packet-by-packet processing does: the same
/// random mix of SYNs, ACKs, FINs and RSTs from both sides, with flows that
/// open and close within a burst and a small table that fills up, through
/// `process` on one engine and `process_burst` (bursts of 1 to 40, with and
/// without a prefetch hook) on another, gives the same verdicts.
#[test]
fn bursts_decide_as_single_packets() {
    fn no_prefetch(_: *const u8) {}
    for hook in [false, true] {
        let r = nat_rules();
        let (mut one, mut many) = (engine(&r, 48), engine(&r, 48));
        if hook {
            many.set_prefetch(no_prefetch);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ hook as u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = 0u64;
        for round in 0..3000 {
            now += next(2000);
            let t = Instant(now);
            let len = next(40) as usize + 1;
            let burst: Vec<Packet> = (0..len)
                .map(|_| {
                    let c = client(next(6) as u8 + 1);
                    let port = 2000 + next(12) as u16;
                    let flags = [SYN, ACK, ACK, FIN, RST, SYNACK][next(6) as usize];
                    if next(3) == 0 {
                        let rs = ip([RS1, RS2][next(2) as usize]);
                        tcp_out(rs, 8080, c, port, flags)
                    } else {
                        tcp_in(c, port, flags)
                    }
                })
                .collect();
            let single: Vec<Verdict> = burst.iter().map(|p| one.process(p, t)).collect();
            let mut out = vec![Verdict::Drop(DropReason::NoService); len];
            many.process_burst(&burst, t, &mut out);
            assert_eq!(out, single, "round {round}, prefetch hook {hook}");
            if next(8) == 0 {
                one.expire(t, 16);
                many.expire(t, 16);
            }
        }
        assert_eq!(one.conn_count(), many.conn_count());
    }
}
