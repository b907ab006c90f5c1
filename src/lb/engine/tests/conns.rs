//! Connections: lifecycle, states and timeouts, drops, real servers
//! leaving and draining, port-0 services, listings, snapshots, IPv6,
//! per-lcore packet counters, reused client ports.

use super::*;

#[test]
fn nat_connection_lifecycle_and_counts() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let t = |s: u64| Timestamp::from_secs(s);

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
    let f = fwd(e.process(&tcp_in(c, 1000, SYN), Timestamp::ZERO));
    assert_eq!(f.fwd, FwdMethod::Route);
    assert_eq!(f.dport, 80);
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, ACK), Timestamp(10))),
        "ESTABLISHED"
    );
    // INPUT-ONLY: FIN from the client goes to FIN_WAIT (INPUT would say CLOSE_WAIT).
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, FIN), Timestamp(20))),
        "FIN_WAIT"
    );
    assert_eq!(counts(&r, &tkey(), RS1), (0, 1, 0));
    // No outbound key for DR.
    assert_eq!(
        e.process(&tcp_out(ip(RS1), 80, c, 1000, ACK), Timestamp(30)),
        Verdict::Drop(DropReason::NoConnection)
    );
    // RST: CLOSE, 10 s.
    assert_eq!(
        state(e.process(&tcp_in(c, 1000, RST), Timestamp(40))),
        "CLOSE"
    );
    let l = e.list_conns(Timestamp(40));
    assert_eq!(l[0].expires_in_ms, 10_000);
}

#[test]
fn only_a_syn_opens_a_tcp_connection() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(9);
    for flags in [ACK, RST, SYNACK, TcpFlags::SYN | TcpFlags::RST, FIN, 0] {
        assert_eq!(
            e.process(&tcp_in(c, 5, flags), Timestamp::ZERO),
            Verdict::Drop(DropReason::NotSyn)
        );
    }
    let mut other = tcp_in(c, 5, SYN);
    other.dport = 81;
    assert_eq!(
        e.process(&other, Timestamp::ZERO),
        Verdict::Drop(DropReason::NoService)
    );
    assert_eq!(e.conn_count(), 0);
    // Reply without a connection.
    assert_eq!(
        e.process(&tcp_out(ip(RS1), 8080, c, 5, ACK), Timestamp::ZERO),
        Verdict::Drop(DropReason::NoConnection)
    );
}

#[test]
fn timeouts_exact_and_set_changes_established() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    fwd(e.process(&tcp_in(c, 1, SYN), Timestamp::ZERO));
    // SYN_RECV: 60 s.
    assert_eq!(e.list_conns(Timestamp::ZERO)[0].expires_in_ms, 60_000);
    fwd(e.process(&tcp_in(c, 1, ACK), Timestamp(1000)));
    // ESTABLISHED: 900 s from the last packet; alive just before, gone at.
    assert_eq!(
        state(e.process(&tcp_in(c, 1, ACK), Timestamp(900_999))),
        "ESTABLISHED"
    );
    // The wheel collects within one tick (10 ms) after the expiry.
    assert_eq!(e.expire(Timestamp(1_800_998), usize::MAX), 0);
    assert_eq!(
        e.expire(
            Timestamp(1_800_999 + crate::lb::conntable::TICK_MS),
            usize::MAX
        ),
        1
    );
    assert_eq!(e.conn_count(), 0);

    // --set 60 0 0: ESTABLISHED now 60 s.
    r.set_timeouts(60, 0, 0);
    e.set_snapshot(r.snapshot());
    let t0 = Timestamp(2_000_000);
    fwd(e.process(&tcp_in(c, 2, SYN), t0));
    fwd(e.process(&tcp_in(c, 2, ACK), t0));
    assert_eq!(e.list_conns(t0)[0].expires_in_ms, 60_000);
    assert_eq!(e.list_conns(t0)[0].expire_mmss(), "01:00");
    // A packet for an entry past its expiry that was not collected yet does
    // not revive it: it is treated as new (and an ACK cannot open one).
    assert_eq!(
        e.process(&tcp_in(c, 2, ACK), Timestamp(t0.0 + 60_000)),
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
    let p = udp_in(client(1), 999, 80);
    let f = fwd(e.process(&p, Timestamp::ZERO));
    assert!(f.new);
    assert_eq!(f.state, ConnState::Udp);
    assert_eq!((f.daddr, f.dport), (ip(RS1), 5353));
    assert_eq!(counts(&r, &key, RS1), (0, 1, 0));
    let reply = PacketMeta {
        src: ip(RS1),
        sport: 5353,
        dst: client(1),
        dport: 999,
        dir: Direction::Out,
        ..p
    };
    let o = fwd(e.process(&reply, Timestamp(5000)));
    assert!(!o.new);
    assert_eq!(e.list_conns(Timestamp(5000))[0].expires_in_ms, 300_000);
    assert_eq!(e.list_conns(Timestamp(5000))[0].state, "UDP");
    assert_eq!(e.expire(Timestamp(304_999), usize::MAX), 0);
    assert_eq!(e.expire(Timestamp(305_000), usize::MAX), 1);
    assert_eq!(counts(&r, &key, RS1), (0, 0, 0));
    // --set 0 0 10
    r.set_timeouts(0, 0, 10);
    e.set_snapshot(r.snapshot());
    fwd(e.process(&p, Timestamp(400_000)));
    assert_eq!(e.list_conns(Timestamp(400_000))[0].expires_in_ms, 10_000);
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
    let p = udp_in(client(1), 999, 80);
    let a = fwd(e.process(&p, Timestamp::ZERO));
    let b = fwd(e.process(&p, Timestamp::ZERO));
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
fn table_full_is_a_drop() {
    let r = nat_rules();
    let mut e = engine(&r, 2);
    // Two established connections: nothing to give up for a third.
    for c in [1, 2] {
        fwd(e.process(&tcp_in(client(c), 1, SYN), Timestamp::ZERO));
        fwd(e.process(&tcp_in(client(c), 1, ACK), Timestamp::ZERO));
    }
    assert_eq!(
        e.process(&tcp_in(client(3), 1, SYN), Timestamp::ZERO),
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(e.conn_count(), 2);
    assert_eq!(e.counters().embryonic_evicted(), 0);
    // Nothing was bound for the refused connection.
    let (a1, i1, _) = counts(&r, &tkey(), RS1);
    let (a2, i2, _) = counts(&r, &tkey(), RS2);
    assert_eq!(a1 + i1 + a2 + i2, 2);
    // Existing connections still work.
    assert_eq!(
        state(e.process(&tcp_in(client(1), 1, ACK), Timestamp(1))),
        "ESTABLISHED"
    );
}

/// A spoofed SYN flood fills the table with handshakes that never finish:
/// a new connection takes the place of the oldest of them, established
/// ones are never touched, and with `evict_embryonic` off the table
/// refuses instead.
#[test]
fn a_full_table_gives_up_its_oldest_handshake() {
    let mut r = nat_rules();
    let mut e = engine(&r, 3);
    fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_in(client(1), 1, ACK), Timestamp::ZERO));
    fwd(e.process(&tcp_in(client(2), 1, SYN), Timestamp(1)));
    fwd(e.process(&tcp_in(client(3), 1, SYN), Timestamp(2)));
    assert!(fwd(e.process(&tcp_in(client(4), 1, SYN), Timestamp(3))).new);
    assert_eq!(e.counters().embryonic_evicted(), 1);
    assert_eq!(e.conn_count(), 3);
    // Client 2's handshake was the oldest: gone. Client 3's is not.
    assert_eq!(
        e.process(&tcp_in(client(2), 1, ACK), Timestamp(4)),
        Verdict::Drop(DropReason::NotSyn)
    );
    assert_eq!(
        state(e.process(&tcp_in(client(3), 1, ACK), Timestamp(4))),
        "ESTABLISHED"
    );
    assert_eq!(
        state(e.process(&tcp_in(client(1), 1, ACK), Timestamp(4))),
        "ESTABLISHED"
    );
    // The accounting of the one given up was undone.
    let (a1, i1, _) = counts(&r, &tkey(), RS1);
    let (a2, i2, _) = counts(&r, &tkey(), RS2);
    assert_eq!(a1 + i1 + a2 + i2, 3);
    // Off: refused.
    r.set_settings(Settings {
        evict_embryonic: false,
        ..*r.settings()
    });
    e.set_snapshot(r.snapshot());
    assert_eq!(
        e.process(&tcp_in(client(5), 1, SYN), Timestamp(5)),
        Verdict::Drop(DropReason::TableFull)
    );
}

/// Records of connections long gone (flushed by `-C`) ahead of the
/// handshakes do not make a full table refuse.
#[test]
fn a_full_table_skips_connections_long_gone() {
    let r = nat_rules();
    let mut e = engine(&r, 300);
    for port in 1..=250 {
        fwd(e.process(&tcp_in(client(1), port, SYN), Timestamp::ZERO));
    }
    e.flush();
    for port in 1000..1300 {
        fwd(e.process(&tcp_in(client(2), port, SYN), Timestamp(1)));
    }
    assert!(fwd(e.process(&tcp_in(client(3), 1, SYN), Timestamp(2))).new);
    assert_eq!(e.counters().embryonic_evicted(), 1);
}

#[test]
fn weight_zero_drains() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    // One connection on each.
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    let b = fwd(e.process(&tcp_in(client(2), 1, SYN), Timestamp::ZERO));
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
            fwd(e.process(&tcp_in(client(n), 1, SYN), Timestamp(10))).daddr,
            ip(RS2)
        );
    }
    // The existing RS1 connection goes on; the edit kept its count.
    let old = if a.daddr == ip(RS1) { 1 } else { 2 };
    let f = fwd(e.process(&tcp_in(client(old), 1, ACK), Timestamp(20)));
    assert_eq!(f.daddr, ip(RS1));
    assert_eq!(counts(&r, &tkey(), RS1), (1, 0, 0));
}

#[test]
fn deleted_dest_drops_its_connections() {
    let mut r = nat_rules();
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    assert_eq!(a.daddr, ip(RS2));
    fwd(e.process(&tcp_in(client(1), 1, ACK), Timestamp(1)));
    let shared = e.dest(a.dest).unwrap().clone();
    r.delete_dest(&tkey(), ip(RS2), 8080).unwrap();
    e.set_snapshot(r.snapshot());
    // Packets of the connection are dropped; it lives on until it times out.
    assert_eq!(
        e.process(&tcp_in(client(1), 1, ACK), Timestamp(2)),
        Verdict::Drop(DropReason::DestRemoved)
    );
    assert_eq!(e.conn_count(), 1);
    assert_eq!(shared.active(), 1);
    // Replies still pass (the kernel's output path does not check).
    assert!(matches!(
        e.process(&tcp_out(ip(RS2), 8080, client(1), 1, ACK), Timestamp(3)),
        Verdict::Forward(_)
    ));
    e.expire(Timestamp(1_000_000), usize::MAX);
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
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    assert_eq!(a.daddr, ip(RS2));
    let shared = e.dest(a.dest).unwrap().clone();
    r.delete_dest(&tkey(), ip(RS2), 8080).unwrap();
    e.set_snapshot(r.snapshot());
    // A non-SYN: the connection is expired, and the packet cannot open one.
    assert_eq!(
        e.process(&tcp_in(client(1), 1, ACK), Timestamp(2)),
        Verdict::Drop(DropReason::NotSyn)
    );
    assert_eq!(e.conn_count(), 0);
    assert_eq!((shared.active(), shared.inactive()), (0, 0));
    // The client's next SYN is scheduled on a remaining server.
    let b = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp(3)));
    assert!(b.new);
    assert_eq!(b.daddr, ip(RS1));
    assert_eq!(e.counters().rescheduled(), 1);
}

#[test]
fn syn_reuses_time_wait_and_close() {
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let a = fwd(e.process(&tcp_in(c, 7, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_in(c, 7, ACK), Timestamp(1)));
    fwd(e.process(&tcp_in(c, 7, FIN), Timestamp(2)));
    assert_eq!(
        state(e.process(&tcp_out(a.daddr, 8080, c, 7, FIN), Timestamp(3))),
        "TIME_WAIT"
    );
    let b = fwd(e.process(&tcp_in(c, 7, SYN), Timestamp(4)));
    assert!(b.new);
    assert_ne!(b.daddr, a.daddr); // rescheduled: rr moved on
    assert_eq!(b.state.name(), "SYN_RECV");
    assert_eq!(e.conn_count(), 1);
    // The new real server's reply finds the rescheduled connection, and
    // the old one's does not.
    let reply = e.process(&tcp_out(b.daddr, 8080, c, 7, SYN | ACK), Timestamp(4));
    assert!(
        matches!(reply, Verdict::Forward(_)),
        "reply after reuse: {reply:?}"
    );
    let stale = e.process(&tcp_out(a.daddr, 8080, c, 7, ACK), Timestamp(4));
    assert!(
        matches!(stale, Verdict::Drop(_)),
        "old server's packet: {stale:?}"
    );
    // CLOSE (after RST) is reused too.
    fwd(e.process(&tcp_in(c, 7, ACK), Timestamp(5)));
    assert_eq!(state(e.process(&tcp_in(c, 7, RST), Timestamp(5))), "CLOSE");
    let d = fwd(e.process(&tcp_in(c, 7, SYN), Timestamp(6)));
    assert!(d.new);
    assert_eq!(e.counters().rescheduled(), 2);
    // A SYN on an ESTABLISHED connection is not a reuse.
    fwd(e.process(&tcp_in(c, 7, ACK), Timestamp(7)));
    let s = fwd(e.process(&tcp_in(c, 7, SYN), Timestamp(8)));
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
    fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_in(client(2), 1, SYN), Timestamp::ZERO));
    // Both overloaded: nothing available.
    assert_eq!(
        e.process(&tcp_in(client(3), 1, SYN), Timestamp::ZERO),
        Verdict::Refuse
    );
    // One connection closes and expires: its server is available again.
    fwd(e.process(&tcp_in(client(1), 1, ACK), Timestamp(1)));
    assert_eq!(
        state(e.process(&tcp_in(client(1), 1, RST), Timestamp(1))),
        "CLOSE"
    );
    e.expire(Timestamp(20_000), usize::MAX);
    assert!(matches!(
        e.process(&tcp_in(client(3), 1, SYN), Timestamp(20_000)),
        Verdict::Forward(_)
    ));
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
    let f = fwd(e.process(&p, Timestamp::ZERO));
    assert_eq!((f.daddr, f.dport, f.vport), (ip(RS1), 443, 443));
    // Reply from RS1:443 finds it.
    let o = fwd(e.process(
        &tcp_out(ip(RS1), 443, client(1), 1234, SYNACK),
        Timestamp(1),
    ));
    assert_eq!(o.conn, f.conn);
    // Template key uses vport 0.
    let t = &e.list_templates(Timestamp(1))[0];
    assert_eq!(t.vip.port(), 0);
    let c = &e.list_conns(Timestamp(1))[0];
    assert_eq!(c.dest, "10.0.0.1:443".parse().unwrap());
}

#[test]
fn listing_rows() {
    let r = nat_rules();
    let mut e = engine(&r, 16);
    fwd(e.process(&tcp_in(client(2), 51234, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_in(client(2), 51234, ACK), Timestamp::ZERO));
    let l = e.list_conns(Timestamp(1000));
    assert_eq!(l.len(), 1);
    let c = &l[0];
    assert_eq!(c.proto, Some(Protocol::Tcp));
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
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    r.edit_dest(
        &tkey(),
        DestConfig::new(a.daddr, 8080).masq().with_weight(3),
    )
    .unwrap();
    r.add_service(ServiceConfig::new(Protocol::Tcp, ip(VIP), 443))
        .unwrap();
    e.set_snapshot(r.snapshot());
    let f = fwd(e.process(&tcp_in(client(1), 1, ACK), Timestamp(5)));
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
    let p = PacketMeta {
        src: ip("2001:db8:1::5"),
        dst: ip("2001:db8::100"),
        ..tcp_in(client(1), 3333, SYN)
    };
    let f = fwd(e.process(&p, Timestamp::ZERO));
    assert_eq!((f.daddr, f.dport), (ip("2001:db8::1"), 8080));
    let o = PacketMeta {
        src: ip("2001:db8::1"),
        sport: 8080,
        dst: ip("2001:db8:1::5"),
        dport: 3333,
        dir: Direction::Out,
        ..p
    };
    assert_eq!(fwd(e.process(&o, Timestamp(1))).vaddr, ip("2001:db8::100"));
}

#[test]
fn packet_counters_are_published_by_expire_and_publish_stats() {
    // Per-packet counters live in the engine (plain integers) until
    // published; connection counts are shared at once.
    let r = nat_rules();
    let mut e = engine(&r, 64);
    let c = client(1);
    let (_, svc, _) = r.service(&tkey()).unwrap();
    fwd(e.process(&tcp_in(c, 1000, SYN), Timestamp(0)));
    fwd(e.process(&tcp_in(c, 1000, ACK), Timestamp(1)));
    assert_eq!(svc.stats.totals().conns, 1);
    assert_eq!(svc.stats.totals().inpkts, 0);
    e.publish_stats();
    let t = svc.stats.totals();
    assert_eq!((t.inpkts, t.inbytes), (2, 120));
    // Again: only the new packets are added.
    fwd(e.process(&tcp_out(ip(RS2), 8080, c, 1000, ACK), Timestamp(2)));
    e.publish_stats();
    let t = svc.stats.totals();
    assert_eq!((t.inpkts, t.outpkts, t.outbytes), (2, 1, 1500));
    // expire() publishes too.
    fwd(e.process(&tcp_in(c, 1000, ACK), Timestamp(3)));
    e.expire(Timestamp(4), 16);
    assert_eq!(svc.stats.totals().inpkts, 3);
    // So does the removal of a real server slot whose last connection went.
    let mut r2 = nat_rules();
    let mut e2 = engine(&r2, 64);
    let f = fwd(e2.process(&tcp_in(c, 7, SYN), Timestamp(0)));
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
            .map(|_| *ConnTable::new(1, Timestamp::ZERO).get(0))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    // Buckets from a heap table's layout: any contents will do.
    let buckets: &'static mut [Bucket] = Box::leak(
        std::iter::repeat_n(ConnTable::bucket_template(), l.buckets)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let table = ConnTable::with_memory(conns, buckets, Timestamp::ZERO).unwrap();
    let mut e = Engine::with_table(
        0,
        table,
        r.snapshot(),
        Arc::new(TemplateTable::default()),
        factory,
    );
    assert_eq!(e.capacity(), 8);
    for n in 1..=8 {
        assert!(fwd(e.process(&tcp_in(client(n), 1, SYN), Timestamp(0))).new);
    }
    let pkts: Vec<PacketMeta> = (1..=8).map(|n| tcp_in(client(n), 1, ACK)).collect();
    let mut out = [Verdict::Drop(DropReason::NoService); 8];
    e.process_burst(&pkts, Timestamp(1), &mut out);
    assert!(out.iter().all(|v| fwd(*v).state.name() == "ESTABLISHED"));
    assert_eq!(
        e.process(&tcp_in(client(9), 1, SYN), Timestamp(1)),
        Verdict::Drop(DropReason::TableFull)
    );
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
        let t = Timestamp(now);
        let c = client((next() % 3) as u8 + 1);
        let port = 1000 + (next() % 8) as u16;
        let burst = round % 2 == 0;
        let run = |e: &mut Engine, p: PacketMeta| -> Verdict {
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
    let a = fwd(e.process(&tcp_in(c, 7, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_out(a.daddr, 8080, c, 7, SYNACK), Timestamp(1)));
    fwd(e.process(&tcp_in(c, 7, ACK), Timestamp(2)));
    fwd(e.process(&tcp_in(c, 7, FIN), Timestamp(3)));
    fwd(e.process(&tcp_out(a.daddr, 8080, c, 7, FIN), Timestamp(4)));
    assert_eq!(
        state(e.process(&tcp_in(c, 7, ACK), Timestamp(5))),
        "TIME_WAIT"
    );
    // Same client port, the other VIP, the same real server.
    let mut syn2 = tcp_in(c, 7, SYN);
    syn2.dst = vip2;
    let b = fwd(e.process(&syn2, Timestamp(6)));
    assert!(b.new);
    assert_eq!(b.vaddr, vip2);
    let reply = fwd(e.process(&tcp_out(b.daddr, 8080, c, 7, SYNACK), Timestamp(7)));
    assert_eq!(reply.vaddr, vip2, "the reply is the new connection's");
    assert_eq!(reply.conn, b.conn);
    assert_eq!(e.conn_count(), 1, "the old connection was retired");
}

/// Listing in pages gives what one listing gives, page after page.
#[test]
fn listing_in_pages() {
    let r = nat_rules();
    let mut e = engine(&r, 1024);
    for port in 0..100u16 {
        let v = e.process(&tcp_in(client(1), 2000 + port, SYN), Timestamp::ZERO);
        assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
    }
    let whole = e.list_conns(Timestamp::ZERO);
    assert_eq!(whole.len(), 100);
    let mut paged = Vec::new();
    let mut from = Some(0);
    let mut pages = 0;
    while let Some(at) = from {
        let (page, next) = e.list_conns_page(Timestamp::ZERO, at, 7);
        assert!(page.len() <= 7);
        paged.extend(page);
        from = next;
        pages += 1;
    }
    assert_eq!(pages, 15);
    assert_eq!(paged, whole);
}

/// No real server can take a new connection (none, all at weight 0, all
/// over their thresholds; persistent or not; TCP SYN or UDP): refused, for
/// the caller to answer with port unreachable, with nothing created or
/// counted. What the kernel drops without an answer stays a drop: a TCP
/// segment that is not a SYN (RST, SYN+ACK, ACK). A weight above 0 makes
/// the service take connections again.
#[test]
fn refused_when_no_real_server_can_take_it() {
    let t0 = Timestamp::ZERO;
    let quiet = |svc: ServiceConfig| {
        rules_with(
            svc,
            &[
                DestConfig::new(ip(RS1), 80).with_weight(0),
                DestConfig::new(ip(RS2), 80).with_weight(0),
            ],
        )
    };
    let tcp = ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr");
    let mut r = quiet(tcp.clone());
    let mut e = engine(&r, 64);
    assert_eq!(e.process(&tcp_in(client(1), 1, SYN), t0), Verdict::Refuse);
    for flags in [ACK, RST, SYNACK, SYN | RST, FIN] {
        assert_eq!(
            e.process(&tcp_in(client(1), 1, flags), t0),
            Verdict::Drop(DropReason::NotSyn),
            "{flags:#x}"
        );
    }
    // A burst: the refused and the others side by side.
    let pkts = [
        tcp_in(client(2), 2, SYN),
        tcp_in(client(3), 3, ACK),
        tcp_in(client(4), 4, SYN),
    ];
    let mut out = [Verdict::Drop(DropReason::NoService); 3];
    e.process_burst(&pkts, t0, &mut out);
    assert_eq!(
        out,
        [
            Verdict::Refuse,
            Verdict::Drop(DropReason::NotSyn),
            Verdict::Refuse
        ]
    );
    assert_eq!((e.conn_count(), e.counters().created()), (0, 0));
    assert_eq!(e.counters().refused(), 3);
    for rs in [RS1, RS2] {
        assert_eq!(counts(&r, &tkey(), rs), (0, 0, 0));
    }
    let (_, svc, _) = r.service(&tkey()).unwrap();
    e.publish_stats();
    assert_eq!(svc.stats.totals().conns, 0);
    assert_eq!(svc.stats.totals().inpkts, 0);
    // One real server back at weight 1: taken again.
    r.edit_dest(&tkey(), DestConfig::new(ip(RS1), 80).with_weight(1))
        .unwrap();
    e.set_snapshot(r.snapshot());
    assert_eq!(
        fwd(e.process(&tcp_in(client(1), 1, SYN), t0)).daddr,
        ip(RS1)
    );

    // UDP, every datagram without a connection.
    let mut u = Rules::new(1);
    let ukey = ServiceKey::new(Protocol::Udp, ip(VIP), 53);
    u.add_service(ServiceConfig::new(Protocol::Udp, ip(VIP), 53).with_scheduler("rr"))
        .unwrap();
    let mut e = engine(&u, 64);
    assert_eq!(e.process(&udp_in(client(1), 1, 40), t0), Verdict::Refuse);
    u.add_dest(&ukey, DestConfig::new(ip(RS1), 53).with_weight(0))
        .unwrap();
    e.set_snapshot(u.snapshot());
    assert_eq!(e.process(&udp_in(client(1), 1, 40), t0), Verdict::Refuse);
    assert_eq!(e.conn_count(), 0);

    // Persistent: no template either.
    let r = quiet(tcp.with_persistence(300, None));
    let mut e = engine(&r, 64);
    assert_eq!(e.process(&tcp_in(client(1), 1, SYN), t0), Verdict::Refuse);
    assert_eq!(e.templates().len(), 0);
    assert_eq!(e.list_conns(t0).len(), 0);

    // Over their upper thresholds.
    let r = rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[DestConfig::new(ip(RS1), 80).with_thresholds(1, 0)],
    );
    let mut e = engine(&r, 64);
    fwd(e.process(&tcp_in(client(1), 1, SYN), t0));
    assert_eq!(e.process(&tcp_in(client(2), 1, SYN), t0), Verdict::Refuse);
}
