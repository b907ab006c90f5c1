//! fwmark services: packets the mark table marks reach the service of
//! their mark before any by address; persistence spans every marked port
//! and protocol.

use super::*;
use crate::lb::marks::MarkRule;

fn mark(proto: Protocol, addr: &str, prefix: u8, ports: (u16, u16), mark: u32) -> MarkRule {
    MarkRule::new(proto, ip(addr), prefix, ports, mark)
}

fn to(mut p: PacketMeta, dst: &str, dport: u16) -> PacketMeta {
    p.dst = ip(dst);
    p.dport = dport;
    p
}

/// Mark 1: TCP VIP:80 and VIP:443 and UDP VIP:443, one persistent fwmark
/// service over two real servers; a plain TCP VIP:8080 service beside it.
fn marked_rules() -> Rules {
    let fwm = ServiceKey::fwmark(1, false);
    let mut r = rules_with(
        ServiceConfig::for_key(fwm)
            .with_scheduler("rr")
            .with_persistence(300, None),
        &[DestConfig::new(ip(RS1), 0), DestConfig::new(ip(RS2), 0)],
    );
    for m in [
        mark(Protocol::Tcp, VIP, 32, (80, 80), 1),
        mark(Protocol::Tcp, VIP, 32, (443, 443), 1),
        mark(Protocol::Udp, VIP, 32, (443, 443), 1),
    ] {
        r.add_mark(m).unwrap();
    }
    let plain = ServiceConfig::new(Protocol::Tcp, ip(VIP), 8080).with_scheduler("rr");
    r.add_service(plain).unwrap();
    r.add_dest(
        &ServiceKey::new(Protocol::Tcp, ip(VIP), 8080),
        DestConfig::new(ip("10.0.0.3"), 8080),
    )
    .unwrap();
    r
}

#[test]
fn marked_ports_share_one_persistent_service() {
    let r = marked_rules();
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1000, SYN), Timestamp::ZERO));
    // Another marked port and protocol from the same client: the same
    // real server, through the one template.
    let b = fwd(e.process(&to(tcp_in(client(1), 1001, SYN), VIP, 443), Timestamp(1)));
    let c = fwd(e.process(&to(udp_in(client(1), 1002, 100), VIP, 443), Timestamp(2)));
    assert_eq!((b.daddr, c.daddr), (a.daddr, a.daddr));
    // Port 0 real servers: the packet keeps its port.
    assert_eq!((a.dport, b.dport, c.dport), (80, 443, 443));
    // Another client goes round robin to the other one.
    let d = fwd(e.process(&tcp_in(client(2), 1000, SYN), Timestamp(3)));
    assert_ne!(d.daddr, a.daddr);
    // One template per client, of protocol IP, the mark as its address.
    let t = e.list_templates(Timestamp(3));
    assert_eq!(t.len(), 2);
    assert!(t
        .iter()
        .all(|t| t.proto.is_none() && t.vip == "0.0.0.1:0".parse().unwrap()));
    // An unmarked port goes to its own service; another port has none.
    let p = fwd(e.process(&to(tcp_in(client(1), 1003, SYN), VIP, 8080), Timestamp(4)));
    assert_eq!(p.daddr, ip("10.0.0.3"));
    assert_eq!(
        e.process(&to(tcp_in(client(1), 1004, SYN), VIP, 81), Timestamp(5)),
        Verdict::Drop(DropReason::NoService)
    );
}

#[test]
fn the_mark_comes_before_the_address_and_falls_back_without_a_service() {
    let mut r = marked_rules();
    // Marking VIP:8080 too takes it from its own service.
    r.add_mark(mark(Protocol::Tcp, VIP, 24, (8000, 8999), 1))
        .unwrap();
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&to(tcp_in(client(1), 1, SYN), VIP, 8080), Timestamp::ZERO));
    assert!(a.daddr == ip(RS1) || a.daddr == ip(RS2));
    // A mark with no service of that family: the address's service.
    let mut r = marked_rules();
    r.add_mark(mark(Protocol::Tcp, VIP, 32, (8080, 8080), 2))
        .unwrap();
    let mut e = engine(&r, 64);
    let b = fwd(e.process(&to(tcp_in(client(1), 1, SYN), VIP, 8080), Timestamp::ZERO));
    assert_eq!(b.daddr, ip("10.0.0.3"));
    // The IPv6 service of mark 1 does not take IPv4 packets, and an IPv4
    // rule does not mark IPv6 ones.
    let mut r = Rules::new(1);
    r.add_service(ServiceConfig::for_key(ServiceKey::fwmark(1, true)).with_scheduler("rr"))
        .unwrap();
    r.add_mark(mark(Protocol::Tcp, VIP, 32, (0, 65535), 1))
        .unwrap();
    let mut e = engine(&r, 64);
    assert_eq!(
        e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO),
        Verdict::Drop(DropReason::NoService)
    );
}

#[test]
fn vips_of_marks_with_a_service() {
    let mut r = marked_rules();
    r.add_mark(mark(Protocol::Tcp, "198.51.100.0", 24, (0, 65535), 1))
        .unwrap();
    r.add_mark(mark(Protocol::Tcp, "203.0.113.9", 32, (0, 65535), 9))
        .unwrap();
    let s = r.snapshot();
    let mut addrs: Vec<IpAddr> = s.vip_addrs().collect();
    addrs.sort();
    addrs.dedup();
    // 203.0.113.9's mark 9 has no service.
    assert_eq!(addrs, vec![ip(VIP)]);
    assert_eq!(
        s.vip_nets().collect::<Vec<_>>(),
        vec![(ip("198.51.100.0"), 24)]
    );
}

/// A persistent port-zero or fwmark service keeps the packet's port at the
/// real server, whatever port the real server was given (the kernel's
/// ip_vs_sched_persist); without persistence the real server's port wins.
#[test]
fn persistent_port_zero_and_fwmark_services_keep_the_packets_port() {
    let nat = |port| DestConfig::new(ip(RS1), port).masq();
    for key in [
        ServiceKey::fwmark(1, false),
        ServiceKey::new(Protocol::Tcp, ip(VIP), 0),
    ] {
        let mut r = rules_with(
            ServiceConfig::for_key(key)
                .with_scheduler("rr")
                .with_persistence(300, None),
            &[nat(8080)],
        );
        r.add_mark(mark(Protocol::Tcp, VIP, 32, (0, 65535), 1))
            .unwrap();
        let mut e = engine(&r, 64);
        let a = fwd(e.process(&to(tcp_in(client(1), 1000, SYN), VIP, 443), Timestamp::ZERO));
        assert_eq!((a.daddr, a.dport), (ip(RS1), 443), "{key}");
        // Its replies come from that port and find the connection.
        let reply = tcp_out(ip(RS1), 443, client(1), 1000, SYNACK);
        assert_eq!(fwd(e.process(&reply, Timestamp(1))).dport, 443, "{key}");
        assert_eq!(
            e.list_conns(Timestamp(1))[0].dest,
            "10.0.0.1:443".parse().unwrap()
        );
    }
    // Not persistent: the real server's port.
    let mut r = rules_with(
        ServiceConfig::for_key(ServiceKey::fwmark(1, false)).with_scheduler("rr"),
        &[nat(8080)],
    );
    r.add_mark(mark(Protocol::Tcp, VIP, 32, (0, 65535), 1))
        .unwrap();
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&to(tcp_in(client(1), 1000, SYN), VIP, 443), Timestamp::ZERO));
    assert_eq!(a.dport, 8080);
}
