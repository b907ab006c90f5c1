//! Test fixtures: one port's configuration and frames built with `wire`'s
//! emitters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::iface::Iface;
use crate::wire::{
    arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, EtherType, EthernetAddress, IpProtocol,
};

pub const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const PEER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
pub const OWN4: &str = "10.0.0.2";
pub const OWN4_PEER: &str = "10.0.0.1";
pub const VIP4: &str = "10.0.0.100";
pub const OWN6: &str = "2001:db8::2";
pub const OWN6_PEER: &str = "2001:db8::1";
pub const VIP6: &str = "2001:db8::100";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Port 0: 10.0.0.2/24, 2001:db8::2/64 and its link-local, VIPs
/// 10.0.0.100 and 2001:db8::100.
pub fn iface() -> Iface {
    Iface::new(0, OUR_MAC)
        .with_addr("10.0.0.2/24".parse().unwrap())
        .with_addr("2001:db8::2/64".parse().unwrap())
        .with_link_local()
        .with_vip(ip(VIP4))
        .with_vip(ip(VIP6))
}

fn eth(f: &mut [u8], dst: EthernetAddress, src: EthernetAddress, t: EtherType) {
    ethernet::Repr {
        src_addr: src,
        dst_addr: dst,
        ethertype: t,
    }
    .emit(&mut ethernet::Packet::new_unchecked(f))
    .unwrap();
}

/// Ethernet + ARP, padded to 60 bytes with 0xee.
pub fn arp_frame(op: u16, sha: EthernetAddress, spa: &str, tpa: &str) -> Vec<u8> {
    let mut f = vec![0xeeu8; 60];
    let dst = if op == 1 {
        EthernetAddress::BROADCAST
    } else {
        OUR_MAC
    };
    eth(&mut f, dst, sha, EtherType::ARP);
    arp::Repr {
        operation: arp::Operation(op),
        source_hardware_addr: sha,
        source_protocol_addr: v4(spa),
        target_hardware_addr: EthernetAddress::ZERO,
        target_protocol_addr: v4(tpa),
    }
    .emit(&mut arp::Packet::new_unchecked(&mut f[14..42]))
    .unwrap();
    f
}

fn ipv4_frame(src: &str, dst: &str, proto: IpProtocol, l4_len: usize) -> Vec<u8> {
    let r = ipv4::Repr {
        src_addr: v4(src),
        dst_addr: v4(dst),
        protocol: proto,
        payload_len: l4_len,
        ttl: 57,
        tos: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut f = vec![0u8; 14 + r.buffer_len()];
    eth(&mut f, OUR_MAC, PEER_MAC, EtherType::IPV4);
    r.emit(&mut ipv4::Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    f
}

/// IPv6 header with hop limit `hop`; L4 left zero.
pub fn ipv6_frame(
    src: &str,
    dst: &str,
    proto: IpProtocol,
    l4_len: usize,
    hop: u8,
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let r = ipv6::Repr {
        src_addr: v6(src),
        dst_addr: v6(dst),
        next_header: proto,
        payload_len: l4_len,
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 0x12345,
    };
    let mut f = vec![0u8; 14 + r.buffer_len()];
    eth(&mut f, eth_dst, PEER_MAC, EtherType::IPV6);
    r.emit(&mut ipv6::Packet::new_unchecked(&mut f[14..]))
        .unwrap();
    f
}

pub fn tcp4(src: &str, dst: &str, port: u16) -> Vec<u8> {
    let t = tcp::Repr {
        src_port: 40000,
        dst_port: port,
        seq_number: 1,
        ack_number: 0,
        flags: tcp::Flags::SYN,
        window_len: 1024,
        urgent_at: 0,
        payload_len: 0,
    };
    let mut f = ipv4_frame(src, dst, IpProtocol::TCP, t.buffer_len());
    t.emit(
        &mut tcp::Packet::new_unchecked(&mut f[34..]),
        &ip(src),
        &ip(dst),
    )
    .unwrap();
    f
}

pub fn udp6(src: &str, dst: &str) -> Vec<u8> {
    let u = udp::Repr {
        src_port: 5353,
        dst_port: 53,
        payload_len: 3,
    };
    let mut f = ipv6_frame(src, dst, IpProtocol::UDP, u.buffer_len(), 64, OUR_MAC);
    u.emit(
        &mut udp::Packet::new_unchecked(&mut f[54..]),
        &ip(src),
        &ip(dst),
    )
    .unwrap();
    f
}

pub fn echo4_frame(src: &str, dst: &str, data: &[u8]) -> Vec<u8> {
    let e = icmpv4::Repr::EchoRequest {
        ident: 0xbeef,
        seq_no: 7,
        data,
    };
    let mut f = ipv4_frame(src, dst, IpProtocol::ICMP, e.buffer_len());
    e.emit(&mut icmpv4::Packet::new_unchecked(&mut f[34..]))
        .unwrap();
    f
}

pub fn echo6_frame(src: &str, dst: &str, data: &[u8]) -> Vec<u8> {
    let e = icmpv6::Repr::EchoRequest {
        ident: 0xbeef,
        seq_no: 7,
        data,
    };
    let mut f = ipv6_frame(src, dst, IpProtocol::ICMPV6, e.buffer_len(), 64, OUR_MAC);
    e.emit(
        &mut icmpv6::Packet::new_unchecked(&mut f[54..]),
        &v6(src),
        &v6(dst),
    )
    .unwrap();
    f
}

/// An ICMPv6 message of `ty` with 8 zero bytes of body and a valid checksum.
pub fn icmp6_frame(ty: u8, src: &str, dst: &str) -> Vec<u8> {
    let mut f = ipv6_frame(src, dst, IpProtocol::ICMPV6, 16, 255, OUR_MAC);
    f[54] = ty;
    let mut p = icmpv6::Packet::new_unchecked(&mut f[54..]);
    p.fill_checksum(&v6(src), &v6(dst));
    f
}

/// A neighbour solicitation from `src` for `target`, to the target's
/// solicited-node group (or, if `src` is "::", a DAD probe), with a source
/// link-layer option `PEER_MAC` if `slla`.
pub fn ns_frame(src: &str, target: &str, slla: bool) -> Vec<u8> {
    let group = super::addr::solicited_node(&v6(target));
    let r = icmpv6::Repr::NeighborSolicit {
        target: v6(target),
        lladdr: slla.then_some(PEER_MAC),
    };
    let mut f = ipv6_frame(
        src,
        &group.to_string(),
        IpProtocol::ICMPV6,
        r.buffer_len(),
        255,
        super::addr::ipv6_multicast_mac(&group),
    );
    r.emit(
        &mut icmpv6::Packet::new_unchecked(&mut f[54..]),
        &v6(src),
        &group,
    )
    .unwrap();
    f
}

/// A neighbour advertisement from `src` to `dst` for `target` with a
/// target link-layer option `PEER_MAC`.
pub fn na_frame(src: &str, dst: &str, target: &str, flags: icmpv6::NdFlags) -> Vec<u8> {
    let r = icmpv6::Repr::NeighborAdvert {
        flags,
        target: v6(target),
        lladdr: Some(PEER_MAC),
    };
    let mut f = ipv6_frame(src, dst, IpProtocol::ICMPV6, r.buffer_len(), 255, OUR_MAC);
    r.emit(
        &mut icmpv6::Packet::new_unchecked(&mut f[54..]),
        &v6(src),
        &v6(dst),
    )
    .unwrap();
    f
}

/// True if the IPv4 header at 14 and its ICMP payload verify.
pub fn icmp4_verifies(f: &[u8]) -> bool {
    let p = ipv4::Packet::new_checked(&f[14..]).unwrap();
    p.verify_checksum()
        && icmpv4::Packet::new_checked(p.payload())
            .unwrap()
            .verify_checksum()
}

/// True if the ICMPv6 message after an untagged IPv6 header verifies.
pub fn icmp6_verifies(f: &[u8]) -> bool {
    let p = ipv6::Packet::new_checked(&f[14..]).unwrap();
    icmpv6::Packet::new_checked(p.payload())
        .unwrap()
        .verify_checksum(&p.src_addr(), &p.dst_addr())
}
