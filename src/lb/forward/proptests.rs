//! Properties over random addresses, ports, payloads and methods.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::testutil::*;
use super::verify::verify_frame;
use super::*;
use crate::lb::dest::{TunCsum, TunType};
use crate::lb::engine::Direction::{In, Out};
use crate::wire::buf::VecBuf;
use crate::wire::parse::parse_frame;
use crate::wire::IpProtocol;

const GUE_PORT: u16 = 6080;

fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

/// A client packet and the NAT parties: (packet, vip, vport, rs, rport).
#[derive(Debug, Clone)]
struct Case {
    pkt: Pkt,
    rs: IpAddr,
    rport: u16,
}

fn case() -> impl Strategy<Value = Case> {
    any::<bool>().prop_flat_map(|v6| {
        (
            addr(v6),
            addr(v6),
            addr(v6),
            any::<(u16, u16, u16)>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..300),
            (2u8..=255, any::<u8>(), any::<bool>(), any::<bool>()),
            prop::option::of(0u16..0x1000),
        )
            .prop_map(
                move |(
                    c,
                    v,
                    rs,
                    (cport, vport, rport),
                    tcp,
                    payload,
                    (ttl, tos, df, zero),
                    vlan,
                )| {
                    let base = if tcp {
                        Pkt::tcp(c, cport, v, vport)
                    } else {
                        Pkt::udp(c, cport, v, vport)
                    };
                    Case {
                        pkt: base.with(|p| {
                            p.payload = payload;
                            p.ttl = ttl;
                            p.tos = tos;
                            p.df = df;
                            p.vlan = vlan;
                            p.udp_zero = zero && !tcp && !v6;
                            p.flow = (cport as u32) << 4;
                        }),
                        rs,
                        rport,
                    }
                },
            )
    })
}

fn apply_to(
    frame: &[u8],
    f: &Forward,
    dir: Direction,
    mtu: u16,
) -> (Result<Applied, DropReason>, Vec<u8>) {
    let id = Cell::new(7);
    let env = env(&id, mtu);
    let h = parse_frame(frame).unwrap();
    let mut b = VecBuf::from_frame(frame);
    let r = apply(&mut b, &h, f, dir, &env);
    (r, b.to_vec())
}

/// Swaps source and destination addresses and ports in place (checksums
/// are unchanged: the sums commute).
fn swap_endpoints(frame: &mut [u8]) {
    let h = parse_frame(frame).unwrap();
    let l3 = h.l3_offset as usize;
    let (s, d, n) = if h.l3 == L3::Ipv4 {
        (12, 16, 4)
    } else {
        (8, 24, 16)
    };
    for i in 0..n {
        frame.swap(l3 + s + i, l3 + d + i);
    }
    let l4 = h.l4_offset as usize;
    frame.swap(l4, l4 + 2);
    frame.swap(l4 + 1, l4 + 3);
}

/// Swaps the outer addresses and the quoted addresses and ports of an ICMP
/// error.
fn swap_icmp_endpoints(frame: &mut [u8]) {
    let h = parse_frame(frame).unwrap();
    let i = h.inner.unwrap();
    let (s, d, n) = if h.l3 == L3::Ipv4 {
        (12, 16, 4)
    } else {
        (8, 24, 16)
    };
    for l3 in [h.l3_offset as usize, i.l3_offset as usize] {
        for k in 0..n {
            frame.swap(l3 + s + k, l3 + d + k);
        }
    }
    let l4 = i.l4_offset as usize;
    frame.swap(l4, l4 + 2);
    frame.swap(l4 + 1, l4 + 3);
}

fn ttl_at(h: &crate::wire::parse::Headers) -> usize {
    h.l3_offset as usize + if h.l3 == L3::Ipv4 { 8 } else { 7 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Client -> VIP, NAT in, the real server reflects it (swap), NAT out,
    /// swap back: the original L3/L4 bytes but for the TTL (-2) and the
    /// IPv4 checksum; every checksum valid, and equal to the full
    /// recomputation (the expected frames are built from scratch).
    #[test]
    fn nat_round_trip(c in case()) {
        prop_assume!(c.pkt.ttl >= 3);
        let (v, vport) = (c.pkt.dst, c.pkt.dport);
        let f = fwd(FwdMethod::Masq, c.rs, c.rport, v, vport);
        let frame = c.pkt.frame();
        let (r, mut inb) = apply_to(&frame, &f, In, 1500);
        prop_assert_eq!(r, Ok(Applied::Transmit));
        let want_in = c.pkt.clone().with(|p| {
            p.dst = c.rs;
            p.dport = c.rport;
            p.ttl -= 1;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        }).frame();
        prop_assert_eq!(&inb, &want_in);
        prop_assert_eq!(verify_frame(&inb, None), Ok(()));

        swap_endpoints(&mut inb);
        let (r, mut out) = apply_to(&inb, &f, Out, 1500);
        prop_assert_eq!(r, Ok(Applied::Transmit));
        prop_assert_eq!(verify_frame(&out, None), Ok(()));
        swap_endpoints(&mut out);

        let h = parse_frame(&frame).unwrap();
        let l3 = h.l3_offset as usize;
        let t = ttl_at(&h);
        prop_assert_eq!(out[t], frame[t] - 2);
        for (i, (a, b)) in out.iter().zip(&frame).enumerate().skip(l3) {
            let ttl_or_ipck = i == t || (h.l3 == L3::Ipv4 && (i == l3 + 10 || i == l3 + 11));
            if !ttl_or_ipck {
                prop_assert_eq!(a, b, "byte {}", i);
            }
        }
        prop_assert_eq!(out.len(), frame.len());
    }

    /// An ICMP error about a reply (VIP -> client), translated In, then
    /// as if the real server's side reported the reflected packet, Out:
    /// the original bytes but for the outer TTL (and IPv4 checksum); and
    /// every checksum valid after each step. Quotes of every length from
    /// the bare IP header + 8 to the whole datagram.
    #[test]
    fn icmp_round_trip(c in case(), router in any::<u32>(), cut in 0usize..64, ty in 0usize..3) {
        prop_assume!(c.pkt.ttl >= 3);
        let (v, vport) = (c.pkt.dst, c.pkt.dport);
        let v6 = v.is_ipv6();
        let rt: IpAddr = if v6 {
            IpAddr::V6(Ipv6Addr::from(router as u128 | 0x2001u128 << 112))
        } else {
            IpAddr::V4(Ipv4Addr::from(router))
        };
        // The reply as the client side sees it.
        let reply = c.pkt.clone().with(|p| {
            std::mem::swap(&mut p.src, &mut p.dst);
            std::mem::swap(&mut p.sport, &mut p.dport);
        });
        let d = reply.datagram();
        let ihl = if v6 { 40 } else { 20 };
        let qlen = (ihl + 8 + cut).min(d.len());
        let (tyv, code) = if v6 { [(1, 4), (2, 0), (3, 0)][ty] } else { [(3, 4), (4, 0), (11, 0)][ty] };
        let outer = c.pkt.clone().with(|p| { p.src = rt; });
        let frame = icmp_error(&outer, tyv, code, 1400, &d[..qlen]);
        let f = fwd(FwdMethod::Masq, c.rs, c.rport, v, vport);

        let (r, mut inb) = apply_to(&frame, &f, In, 1500);
        prop_assert_eq!(r, Ok(Applied::Transmit));
        prop_assert_eq!(verify_frame(&inb, None), Ok(()));
        let h = parse_frame(&inb).unwrap();
        let i = h.inner.unwrap();
        prop_assert_eq!((h.dst, i.src, i.src_port), (c.rs, c.rs, c.rport));
        // Equal to a quote of the real server's own packet, bar a cut
        // L4 checksum (left as it was).
        let rs_reply = reply.clone().with(|p| { p.src = c.rs; p.sport = c.rport; }).datagram();
        let q = &inb[i.l3_offset as usize..];
        let ck_at = ihl + if c.pkt.proto == IpProtocol::TCP { 16 } else { 6 };
        for k in 0..qlen {
            if !(k == ck_at && qlen == ck_at + 1) {
                prop_assert_eq!(q[k], rs_reply[k], "quote byte {}", k);
            }
        }

        swap_icmp_endpoints(&mut inb);
        let (r, mut out) = apply_to(&inb, &f, Out, 1500);
        prop_assert_eq!(r, Ok(Applied::Transmit));
        prop_assert_eq!(verify_frame(&out, None), Ok(()));
        swap_icmp_endpoints(&mut out);
        let ho = parse_frame(&frame).unwrap();
        let l3 = ho.l3_offset as usize;
        let t = ttl_at(&ho);
        prop_assert_eq!(out[t], frame[t] - 2);
        for (k, (a, b)) in out.iter().zip(&frame).enumerate().skip(l3) {
            let skip = k == t || (!v6 && (k == l3 + 10 || k == l3 + 11));
            if !skip {
                prop_assert_eq!(a, b, "byte {}", k);
            }
        }
    }

    /// Tunnels: outer headers right for random inner packets and real
    /// servers of either family; the inner packet is the original with the
    /// TTL decremented (as DR leaves it); every checksum valid.
    #[test]
    fn tunnel_headers(c in case(), kind in 0usize..3, csum in 0usize..3, rs6 in any::<bool>()) {
        let kind = [TunType::Ipip, TunType::Gue, TunType::Gre][kind];
        let csum = [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum][csum];
        let rs: IpAddr = if rs6 {
            "fd00:10::5".parse::<Ipv6Addr>().unwrap().into()
        } else {
            Ipv4Addr::new(192, 168, 10, 5).into()
        };
        let m = FwdMethod::Tunnel { tun_type: kind, port: GUE_PORT, csum };
        let (v, vport) = (c.pkt.dst, c.pkt.dport);
        let f = fwd(m, rs, vport, v, vport);
        let frame = c.pkt.frame();
        let (r, out) = apply_to(&frame, &f, In, 9000);
        prop_assert_eq!(r, Ok(Applied::Transmit));
        prop_assert_eq!(verify_frame(&out, Some(GUE_PORT)), Ok(()));

        let (_, dr) = apply_to(&frame, &fwd(FwdMethod::Route, v, vport, v, vport), In, 1500);
        let hd = parse_frame(&dr).unwrap();
        let inner = &dr[hd.l3_offset as usize..];
        prop_assert!(out.ends_with(inner));
        let t = tunnel::Tunnel { kind, port: GUE_PORT, csum };
        prop_assert_eq!(out.len(), frame.len() + t.overhead(&rs));

        let h = parse_frame(&out).unwrap();
        let inner_v6 = v.is_ipv6();
        prop_assert_eq!(h.vlan, c.pkt.vlan);
        prop_assert_eq!(h.dst, rs);
        prop_assert_eq!(h.src, if rs6 { IpAddr::V6(LOCAL6) } else { IpAddr::V4(LOCAL4) });
        prop_assert_eq!(h.ttl, c.pkt.ttl - 1);
        if !rs6 {
            prop_assert_eq!(h.dont_frag, inner_v6 || c.pkt.df);
        }
        let inner_proto = if inner_v6 { IpProtocol::IPV6 } else { IpProtocol::IPIP };
        let l4 = h.l4_offset as usize;
        match kind {
            TunType::Ipip => prop_assert_eq!(h.protocol, inner_proto),
            TunType::Gue => {
                prop_assert_eq!(h.protocol, IpProtocol::UDP);
                prop_assert_eq!(h.dst_port, GUE_PORT);
                prop_assert!((32768..61000).contains(&h.src_port));
                prop_assert_eq!(&out[l4 + 8..l4 + 12], &[0, inner_proto.0, 0, 0][..]);
                let ck = u16::from_be_bytes([out[l4 + 6], out[l4 + 7]]);
                prop_assert_eq!(ck == 0, csum == TunCsum::NoCsum);
            }
            TunType::Gre => {
                prop_assert_eq!(h.protocol, IpProtocol::GRE);
                let et = if inner_v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
                prop_assert_eq!(&out[l4 + 2..l4 + 4], &et[..]);
                prop_assert_eq!(out[l4] == 0x80, csum == TunCsum::Csum);
            }
        }
    }

    /// TTL 0/1 always becomes a valid time exceeded to the sender, and a
    /// DF (or IPv6) packet over the MTU a valid frag-needed / too big.
    #[test]
    fn generated_errors(c in case(), ttl in 0u8..2, method in 0usize..3) {
        let (v, vport) = (c.pkt.dst, c.pkt.dport);
        let m = [
            FwdMethod::Masq,
            FwdMethod::Route,
            FwdMethod::Tunnel { tun_type: TunType::Gue, port: GUE_PORT, csum: TunCsum::Csum },
        ][method];
        prop_assume!(!c.pkt.src.is_multicast() && !c.pkt.src.is_unspecified()
            && !c.pkt.dst.is_multicast() && c.pkt.src != IpAddr::V4(Ipv4Addr::BROADCAST)
            && c.pkt.dst != IpAddr::V4(Ipv4Addr::BROADCAST));
        let f = fwd(m, c.rs, c.rport, v, vport);
        let frame = c.pkt.clone().with(|p| p.ttl = ttl).frame();
        let (r, out) = apply_to(&frame, &f, In, 1500);
        prop_assert_eq!(r, Ok(Applied::Reply(Reply::TimeExceeded)));
        prop_assert_eq!(verify_frame(&out, None), Ok(()));
        let h = parse_frame(&out).unwrap();
        prop_assert_eq!(h.dst, c.pkt.src);
        prop_assert!(h.is_icmp_error());
        prop_assert_eq!(&out[..12], &[CLIENT_MAC.0, LB_IN_MAC.0].concat()[..]);

        // Too big through a tunnel with a small MTU.
        let big = c.pkt.clone().with(|p| { p.df = true; p.payload.resize(600, 9); }).frame();
        let tf = fwd(FwdMethod::Tunnel { tun_type: TunType::Ipip, port: 0, csum: TunCsum::NoCsum },
            Ipv4Addr::new(192, 168, 10, 5).into(), vport, v, vport);
        let (r, out) = apply_to(&big, &tf, In, 600);
        match r {
            Ok(Applied::Reply(Reply::FragNeeded { mtu })) => prop_assert_eq!(mtu, 580),
            Ok(Applied::Reply(Reply::PacketTooBig { mtu })) => prop_assert_eq!(mtu, 1280),
            other => {
                // IPv6 packet that fits 1280: cannot be answered usefully.
                prop_assert!(v.is_ipv6() && other == Err(DropReason::TooBig), "{:?}", other);
            }
        }
        if r.is_ok() {
            prop_assert_eq!(verify_frame(&out, None), Ok(()));
        }
    }

    /// Any TCP/UDP packet between unicast addresses becomes a valid port
    /// unreachable from its destination (the VIP) back to its sender, MACs
    /// swapped, VLAN kept, quoting its first bytes exactly.
    #[test]
    fn port_unreachable_from_the_destination(c in case()) {
        prop_assume!(!c.pkt.src.is_multicast() && !c.pkt.src.is_unspecified()
            && !c.pkt.dst.is_multicast() && c.pkt.src != IpAddr::V4(Ipv4Addr::BROADCAST)
            && c.pkt.dst != IpAddr::V4(Ipv4Addr::BROADCAST));
        let frame = c.pkt.frame();
        let h = parse_frame(&frame).unwrap();
        let id = Cell::new(7);
        let mut e = env(&id, 1500);
        match c.pkt.dst {
            IpAddr::V4(a) => e.reply_v4 = a,
            IpAddr::V6(a) => e.reply_v6 = a,
        }
        let mut b = VecBuf::from_frame(&frame);
        let r = icmp::port_unreachable(&mut b, &h, &e);
        prop_assert_eq!(r, Ok(Applied::Reply(Reply::PortUnreachable)));
        let out = b.to_vec();
        prop_assert_eq!(verify_frame(&out, None), Ok(()));
        let o = parse_frame(&out).unwrap();
        prop_assert_eq!((o.src, o.dst), (c.pkt.dst, c.pkt.src));
        prop_assert!(o.is_icmp_error());
        prop_assert_eq!(o.vlan_id(), h.vlan_id());
        prop_assert_eq!(&out[..12], &[CLIENT_MAC.0, LB_IN_MAC.0].concat()[..]);
        let l3 = h.l3_offset as usize;
        let (ty, code, quote) = if c.pkt.src.is_ipv4() {
            (3, 3, (h.l3_len as usize).min(20 + 8))
        } else {
            (1, 4, (h.l3_len as usize).min(1280 - 48))
        };
        let icmp = o.l4_offset as usize;
        prop_assert_eq!((out[icmp], out[icmp + 1]), (ty, code));
        prop_assert_eq!(&out[icmp + 8..], &frame[l3..l3 + quote]);
    }
}
