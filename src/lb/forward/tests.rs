//! Per method and direction: a built input frame, the expected output frame
//! built independently (wire's emitters, full checksums), compared byte for
//! byte, field by field, and by full verification of every checksum.

use std::cell::Cell;
use std::net::IpAddr;

use super::testutil::*;
use super::verify::verify_frame;
use super::*;
use crate::lb::dest::{TunCsum, TunType};
use crate::lb::engine::Direction::{In, Out};
use crate::wire::buf::VecBuf;
use crate::wire::parse::parse_frame;
use crate::wire::{checksum, ipv4, udp, IpProtocol};

const GUE_PORT: u16 = 6080;

/// Runs `apply` on `frame` in a default mbuf-like buffer.
fn run(
    frame: &[u8],
    f: &Forward,
    dir: Direction,
    mtu: u16,
) -> (Result<Applied, DropReason>, Vec<u8>) {
    let id = Cell::new(0x1000);
    let env = env(&id, mtu);
    let h = parse_frame(frame).unwrap();
    let mut b = VecBuf::from_frame(frame);
    let r = apply(&mut b, &h, f, dir, &env);
    (r, b.to_vec())
}

fn ok(frame: &[u8], f: &Forward, dir: Direction) -> Vec<u8> {
    let (r, out) = run(frame, f, dir, 1500);
    assert_eq!(r, Ok(Applied::Transmit));
    verify_frame(&out, Some(GUE_PORT)).unwrap();
    out
}

fn assert_frames_eq(got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "frames differ (lengths {} / {}, first difference at {:?})\n got {:02x?}\nwant {:02x?}",
            got.len(),
            want.len(),
            first,
            got,
            want
        );
    }
}

fn masq() -> FwdMethod {
    FwdMethod::Masq
}

fn tunnel(t: TunType, csum: TunCsum) -> FwdMethod {
    FwdMethod::Tunnel {
        tun_type: t,
        port: if t == TunType::Gue { GUE_PORT } else { 0 },
        csum,
    }
}

// ---- NAT ----

#[test]
fn nat_in_tcp4() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let input = Pkt::tcp(c, 40000, v, 80);
    let out = ok(&input.frame(), &fwd(masq(), r, 8080, v, 80), In);
    let want = input
        .clone()
        .with(|p| {
            p.dst = r;
            p.dport = 8080;
            p.ttl = 63;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        })
        .frame();
    assert_frames_eq(&out, &want);
    let h = parse_frame(&out).unwrap();
    assert_eq!(
        (h.src, h.src_port, h.dst, h.dst_port, h.ttl),
        (c, 40000, r, 8080, 63)
    );
    assert_eq!(&out[..12], &[RS_MAC.0, LB_OUT_MAC.0].concat()[..]);
}

#[test]
fn nat_out_udp4_and_zero_checksum() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    for zero in [false, true] {
        let input = Pkt::udp(r, 8080, c, 40000).with(|p| p.udp_zero = zero);
        let out = ok(&input.frame(), &fwd(masq(), r, 8080, v, 80), Out);
        let want = input
            .clone()
            .with(|p| {
                p.src = v;
                p.sport = 80;
                p.ttl = 63;
                p.dst_mac = RS_MAC;
                p.src_mac = LB_OUT_MAC;
            })
            .frame();
        assert_frames_eq(&out, &want);
        let ck = u16::from_be_bytes([out[34 + 6], out[34 + 7]]);
        assert_eq!(ck == 0, zero);
    }
}

#[test]
fn nat_in_tcp6_vlan_and_out_udp6() {
    let (c, v, r) = (v6("2001:db8::1"), v6("2001:db8:100::1"), v6("fd00:10::5"));
    let input = Pkt::tcp(c, 51000, v, 443).with(|p| {
        p.vlan = Some(0x2007);
        p.tos = 0xb8;
        p.flow = 0x12345;
    });
    let out = ok(&input.frame(), &fwd(masq(), r, 8443, v, 443), In);
    let want = input
        .clone()
        .with(|p| {
            p.dst = r;
            p.dport = 8443;
            p.ttl = 63;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        })
        .frame();
    assert_frames_eq(&out, &want);
    assert_eq!(parse_frame(&out).unwrap().vlan, Some(0x2007));

    let reply = Pkt::udp(r, 8443, c, 51000);
    let out = ok(&reply.frame(), &fwd(masq(), r, 8443, v, 443), Out);
    let want = reply
        .clone()
        .with(|p| {
            p.src = v;
            p.sport = 443;
            p.ttl = 63;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        })
        .frame();
    assert_frames_eq(&out, &want);
}

#[test]
fn nat_keeps_padding() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.payload.clear());
    let mut frame = input.frame();
    frame.resize(60, 0);
    let out = ok(&frame, &fwd(masq(), r, 8080, v, 80), In);
    assert_eq!(out.len(), 60);
    assert_eq!(parse_frame(&out).unwrap().padding, 6);
}

// ---- NAT ICMP errors ----

/// The router between the client and the balancer reports on a reply
/// VIP:80 -> client (the quote); translated In it must read as the real
/// server's own packet RS:8080 -> client.
#[test]
fn nat_icmp4_in_frag_needed_full_quote() {
    let (c, v, r, rt) = (
        v4("10.0.0.1"),
        v4("10.0.0.100"),
        v4("192.168.10.5"),
        v4("10.0.0.254"),
    );
    let reply_as_seen = Pkt::tcp(v, 80, c, 40000).with(|p| p.ttl = 63);
    let outer = Pkt::tcp(rt, 0, v, 0).with(|p| {
        p.ttl = 255;
        p.df = false;
    });
    let input = icmp_error(&outer, 3, 4, 1400, &reply_as_seen.datagram());
    let out = ok(&input, &fwd(masq(), r, 8080, v, 80), In);

    let reply_orig = reply_as_seen.clone().with(|p| {
        p.src = r;
        p.sport = 8080;
    });
    let want_outer = outer.clone().with(|p| {
        p.dst = r;
        p.ttl = 254;
        p.dst_mac = RS_MAC;
        p.src_mac = LB_OUT_MAC;
    });
    let want = icmp_error(&want_outer, 3, 4, 1400, &reply_orig.datagram());
    assert_frames_eq(&out, &want);
    let h = parse_frame(&out).unwrap();
    let i = h.inner.unwrap();
    assert_eq!(
        (h.dst, i.src, i.src_port, i.dst, i.dst_port),
        (r, r, 8080, c, 40000)
    );
}

/// Quotes cut at IP header + 8 (no L4 checksum), + 18 (checksum just in)
/// and + 17 (checksum cut: left alone).
#[test]
fn nat_icmp4_truncated_quotes() {
    let (c, v, r, rt) = (
        v4("10.0.0.1"),
        v4("10.0.0.100"),
        v4("192.168.10.5"),
        v4("10.0.0.254"),
    );
    let quoted = Pkt::tcp(v, 80, c, 40000).datagram();
    let fresh = Pkt::tcp(r, 8080, c, 40000).datagram();
    let outer = Pkt::tcp(rt, 0, v, 0).with(|p| p.df = false);
    let want_outer = outer.clone().with(|p| {
        p.dst = r;
        p.ttl = 63;
        p.dst_mac = RS_MAC;
        p.src_mac = LB_OUT_MAC;
    });
    for n in [28, 38] {
        let input = icmp_error(&outer, 11, 0, 0, &quoted[..n]);
        let out = ok(&input, &fwd(masq(), r, 8080, v, 80), In);
        assert_frames_eq(&out, &icmp_error(&want_outer, 11, 0, 0, &fresh[..n]));
    }
    let input = icmp_error(&outer, 11, 0, 0, &quoted[..37]);
    let out = ok(&input, &fwd(masq(), r, 8080, v, 80), In);
    let mut q = fresh[..37].to_vec();
    q[36] = quoted[36];
    assert_frames_eq(&out, &icmp_error(&want_outer, 11, 0, 0, &q));
}

/// The real server answers the client's UDP with port unreachable; going
/// Out, it must read as the VIP's answer about client -> VIP:53.
#[test]
fn nat_icmp4_out_port_unreachable_and_source_quench() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    for zero in [false, true] {
        let req_as_seen = Pkt::udp(c, 5353, r, 5300).with(|p| {
            p.ttl = 63;
            p.udp_zero = zero;
        });
        let outer = Pkt::tcp(r, 0, c, 0).with(|p| p.df = false);
        for (ty, code) in [(3, 3), (4, 0)] {
            let input = icmp_error(&outer, ty, code, 0, &req_as_seen.datagram());
            let out = ok(&input, &fwd(masq(), r, 5300, v, 53), Out);
            let req_orig = req_as_seen.clone().with(|p| {
                p.dst = v;
                p.dport = 53;
            });
            let want_outer = outer.clone().with(|p| {
                p.src = v;
                p.ttl = 63;
                p.dst_mac = RS_MAC;
                p.src_mac = LB_OUT_MAC;
            });
            let want = icmp_error(&want_outer, ty, code, 0, &req_orig.datagram());
            assert_frames_eq(&out, &want);
        }
    }
}

#[test]
fn nat_icmp6_both_ways() {
    let (c, v, r, rt) = (
        v6("2001:db8::1"),
        v6("2001:db8:100::1"),
        v6("fd00:10::5"),
        v6("2001:db8::fe"),
    );
    let f = fwd(masq(), r, 8080, v, 80);
    // In: packet too big from a router about the reply.
    let quoted = Pkt::tcp(v, 80, c, 40000).with(|p| p.ttl = 60);
    let outer = Pkt::tcp(rt, 0, v, 0);
    let out = ok(&icmp_error(&outer, 2, 0, 1280, &quoted.datagram()), &f, In);
    let want = icmp_error(
        &outer.clone().with(|p| {
            p.dst = r;
            p.ttl = 63;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        }),
        2,
        0,
        1280,
        &quoted
            .clone()
            .with(|p| {
                p.src = r;
                p.sport = 8080;
            })
            .datagram(),
    );
    assert_frames_eq(&out, &want);
    // Out: the real server's port unreachable about client -> RS.
    let quoted = Pkt::udp(c, 5353, r, 8080);
    let outer = Pkt::tcp(r, 0, c, 0);
    let out = ok(&icmp_error(&outer, 1, 4, 0, &quoted.datagram()), &f, Out);
    let want = icmp_error(
        &outer.clone().with(|p| {
            p.src = v;
            p.ttl = 63;
            p.dst_mac = RS_MAC;
            p.src_mac = LB_OUT_MAC;
        }),
        1,
        4,
        0,
        &quoted
            .clone()
            .with(|p| {
                p.dst = v;
                p.dport = 80;
            })
            .datagram(),
    );
    assert_frames_eq(&out, &want);
}

#[test]
fn nat_icmp_untranslated_types() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let outer = Pkt::tcp(c, 0, v, 0);
    let q = Pkt::tcp(v, 80, c, 40000).datagram();
    // Parameter problem and redirect are not translated (as the kernel).
    for ty in [12, 5] {
        let (r_, _) = run(
            &icmp_error(&outer, ty, 0, 0, &q),
            &fwd(masq(), r, 8080, v, 80),
            In,
            1500,
        );
        assert_eq!(r_, Err(DropReason::RewriteUnsupported), "type {ty}");
    }
}

// ---- DR ----

#[test]
fn dr_v4_v6() {
    for (c, v) in [
        (v4("10.0.0.1"), v4("10.0.0.100")),
        (v6("2001:db8::1"), v6("2001:db8:100::1")),
    ] {
        let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.tos = 0x10);
        let out = ok(&input.frame(), &fwd(FwdMethod::Route, v, 80, v, 80), In);
        let want = input
            .clone()
            .with(|p| {
                p.ttl = 63;
                p.dst_mac = RS_MAC;
                p.src_mac = LB_OUT_MAC;
            })
            .frame();
        assert_frames_eq(&out, &want);
        let (r, _) = run(
            &input.frame(),
            &fwd(FwdMethod::Route, v, 80, v, 80),
            Out,
            1500,
        );
        assert_eq!(r, Err(DropReason::Direction));
    }
}

// ---- TUN ----

/// The expected outer IPv4 header for a tunnelled packet.
fn outer4(proto: IpProtocol, payload_len: usize, ttl: u8, tos: u8, df: bool, dst: &str) -> Vec<u8> {
    let r = ipv4::Repr {
        src_addr: LOCAL4,
        dst_addr: dst.parse().unwrap(),
        protocol: proto,
        payload_len,
        ttl,
        tos,
        ident: 0x1000,
        dont_frag: df,
        more_frags: false,
        frag_offset: 0,
    };
    let mut v = vec![0u8; 20];
    r.emit(&mut ipv4::Packet::new_unchecked(&mut v[..]))
        .unwrap();
    v
}

#[test]
fn tun_ipip4() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    for df in [true, false] {
        let input = Pkt::tcp(c, 40000, v, 80).with(|p| {
            p.df = df;
            p.tos = 0x2b; // DSCP 10, ECN CE -> outer ECT(0)
        });
        let f = fwd(
            tunnel(TunType::Ipip, TunCsum::NoCsum),
            v4("192.168.10.5"),
            80,
            v,
            80,
        );
        let out = ok(&input.frame(), &f, In);
        let inner = input.clone().with(|p| p.ttl = 63).datagram();
        let mut want = outer4(IpProtocol::IPIP, inner.len(), 63, 0x2a, df, "192.168.10.5");
        want.extend_from_slice(&inner);
        assert_frames_eq(&out, &framed(RS_MAC, LB_OUT_MAC, None, &want));
        let h = parse_frame(&out).unwrap();
        assert_eq!((h.protocol, h.dont_frag, h.ttl), (IpProtocol::IPIP, df, 63));
        assert_eq!(h.src, IpAddr::V4(LOCAL4));
    }
}

#[test]
fn tun_gue4_all_csum_modes() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let input = Pkt::udp(c, 5353, v, 53).with(|p| p.vlan = Some(7));
    let inner = input.clone().with(|p| p.ttl = 63).datagram();
    let h_in = parse_frame(&input.frame()).unwrap();
    let sport = tunnel::gue_sport(tunnel::flow_hash(&h_in));
    assert!((32768..61000).contains(&sport));
    for csum in [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum] {
        let f = fwd(tunnel(TunType::Gue, csum), v4("192.168.10.5"), 53, v, 53);
        let out = ok(&input.frame(), &f, In);
        // UDP + GUE built by wire's UDP emitter (full checksum).
        let mut u = vec![0u8; 12 + inner.len()];
        u[8..12].copy_from_slice(&[0, 4, 0, 0]);
        u[12..].copy_from_slice(&inner);
        udp::Repr {
            src_port: sport,
            dst_port: GUE_PORT,
            payload_len: 4 + inner.len(),
        }
        .emit(
            &mut udp::Packet::new_unchecked(&mut u[..]),
            &IpAddr::V4(LOCAL4),
            &v4("192.168.10.5"),
        )
        .unwrap();
        if csum == TunCsum::NoCsum {
            u[6..8].copy_from_slice(&[0, 0]);
        }
        let mut want = outer4(IpProtocol::UDP, u.len(), 63, 0, false, "192.168.10.5");
        want.extend_from_slice(&u);
        assert_frames_eq(&out, &framed(RS_MAC, LB_OUT_MAC, Some(7), &want));
    }
}

#[test]
fn tun_gre4_with_and_without_checksum() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let input = Pkt::tcp(c, 40000, v, 80);
    let inner = input.clone().with(|p| p.ttl = 63).datagram();
    for csum in [TunCsum::NoCsum, TunCsum::Csum, TunCsum::RemCsum] {
        let f = fwd(tunnel(TunType::Gre, csum), v4("192.168.10.5"), 80, v, 80);
        let out = ok(&input.frame(), &f, In);
        let mut g = if csum == TunCsum::Csum {
            vec![0x80, 0, 0x08, 0x00, 0, 0, 0, 0]
        } else {
            vec![0, 0, 0x08, 0x00]
        };
        g.extend_from_slice(&inner);
        if csum == TunCsum::Csum {
            let c = checksum::checksum(&g);
            g[4..6].copy_from_slice(&c.to_be_bytes());
        }
        let mut want = outer4(IpProtocol::GRE, g.len(), 63, 0, true, "192.168.10.5");
        want.extend_from_slice(&g);
        assert_frames_eq(&out, &framed(RS_MAC, LB_OUT_MAC, None, &want));
    }
}

#[test]
fn tun_ipv6_services() {
    let (c, v) = (v6("2001:db8::1"), v6("2001:db8:100::1"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| {
        p.tos = 0x88;
        p.flow = 0xabcde;
    });
    let inner = input.clone().with(|p| p.ttl = 63).datagram();
    // 6in4: protocol 41, DF set.
    let f = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v4("192.168.10.5"),
        80,
        v,
        80,
    );
    let out = ok(&input.frame(), &f, In);
    let mut want = outer4(
        IpProtocol::IPV6,
        inner.len(),
        63,
        0x88,
        true,
        "192.168.10.5",
    );
    want.extend_from_slice(&inner);
    assert_frames_eq(&out, &framed(RS_MAC, LB_OUT_MAC, None, &want));
    // 6in6: outer IPv6, next header 41, traffic class and flow label copied.
    let r6 = v6("fd00:10::5");
    let f = fwd(tunnel(TunType::Ipip, TunCsum::NoCsum), r6, 80, v, 80);
    let out = ok(&input.frame(), &f, In);
    let outer = Pkt::tcp(IpAddr::V6(LOCAL6), 0, r6, 0).with(|p| {
        p.ttl = 63;
        p.tos = 0x88;
        p.flow = 0xabcde;
    });
    let want = ip_datagram(&outer, IpProtocol::IPV6, &inner);
    assert_frames_eq(&out, &framed(RS_MAC, LB_OUT_MAC, None, &want));
    // GUE and GRE over IPv6, checksummed.
    for t in [TunType::Gue, TunType::Gre] {
        let f = fwd(tunnel(t, TunCsum::Csum), r6, 80, v, 80);
        let out = ok(&input.frame(), &f, In);
        let h = parse_frame(&out).unwrap();
        let want_proto = if t == TunType::Gue {
            IpProtocol::UDP
        } else {
            IpProtocol::GRE
        };
        assert_eq!(
            (h.l3, h.protocol, h.dst, h.ttl),
            (L3::Ipv6, want_proto, r6, 63)
        );
        assert_eq!(&out[out.len() - inner.len()..], &inner[..]);
    }
    // 4in6.
    let input4 = Pkt::udp(v4("10.0.0.1"), 5353, v4("10.0.0.100"), 53);
    let f = fwd(tunnel(TunType::Gue, TunCsum::NoCsum), r6, 53, v, 53);
    let out = ok(&input4.frame(), &f, In);
    let h = parse_frame(&out).unwrap();
    assert_eq!(
        (h.l3, h.protocol, h.dst_port),
        (L3::Ipv6, IpProtocol::UDP, GUE_PORT)
    );
    assert_eq!(out[h.l4_offset as usize + 9], 4, "GUE proto = IPIP");
}

#[test]
fn tun_without_headroom_uses_tailroom() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let frame = Pkt::tcp(c, 40000, v, 80).frame();
    let h = parse_frame(&frame).unwrap();
    let f = fwd(
        tunnel(TunType::Gue, TunCsum::Csum),
        v4("192.168.10.5"),
        80,
        v,
        80,
    );
    let id = Cell::new(0x1000);
    let want = ok(&frame, &f, In);
    let mut b = VecBuf::with_frame(&frame, 0, 32);
    assert_eq!(
        apply(&mut b, &h, &f, In, &env(&id, 1500)),
        Ok(Applied::Transmit)
    );
    assert_frames_eq(b.data(), &want);
    let mut b = VecBuf::with_frame(&frame, 31, 0);
    id.set(0x1000);
    assert_eq!(
        apply(&mut b, &h, &f, In, &env(&id, 1500)),
        Err(DropReason::NoRoom)
    );
    let mut b = VecBuf::with_frame(&frame, 32, 0);
    id.set(0x1000);
    assert_eq!(
        apply(&mut b, &h, &f, In, &env(&id, 1500)),
        Ok(Applied::Transmit)
    );
    assert_frames_eq(b.data(), &want);
}

#[test]
fn tun_trims_padding() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.payload.clear());
    let mut frame = input.frame();
    frame.resize(60, 0);
    let f = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v4("192.168.10.5"),
        80,
        v,
        80,
    );
    let out = ok(&frame, &f, In);
    assert_eq!(out.len(), 14 + 20 + 40);
}

/// Inner packets whose segment sum cannot be taken from their checksum are
/// summed in full: a zero UDP checksum, a first fragment, IPv6 extension
/// headers. An inner segment that does not verify gives an outer checksum
/// that does not verify.
#[test]
fn tun_checksum_without_shortcut() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let rs = v4("192.168.10.5");
    let zero = Pkt::udp(c, 5353, v, 53).with(|p| p.udp_zero = true).frame();
    let mut frag = Pkt::tcp(c, 40000, v, 80).frame();
    let mut p = ipv4::Packet::new_unchecked(&mut frag[14..]);
    p.set_frag(false, true, 0);
    p.fill_checksum();
    let ext6 = crate::wire::parse::tests::udp6_vlan_frame();
    for frame in [zero, frag, ext6] {
        for t in [TunType::Gue, TunType::Gre] {
            let v = parse_frame(&frame).unwrap().dst;
            ok(&frame, &fwd(tunnel(t, TunCsum::Csum), rs, 53, v, 53), In);
        }
    }
    let mut bad = Pkt::tcp(c, 40000, v, 80).frame();
    let n = bad.len();
    bad[n - 1] ^= 0x40;
    let f = fwd(tunnel(TunType::Gue, TunCsum::Csum), rs, 80, v, 80);
    let (r, out) = run(&bad, &f, In, 1500);
    assert_eq!(r, Ok(Applied::Transmit));
    assert_eq!(verify_frame(&out, Some(GUE_PORT)), Err("udp"));
}

#[test]
fn ip_ids_come_from_env_counter() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let frame = Pkt::tcp(c, 40000, v, 80).frame();
    let h = parse_frame(&frame).unwrap();
    let f = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v4("192.168.10.5"),
        80,
        v,
        80,
    );
    let id = Cell::new(0xfffe);
    let e = env(&id, 1500);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut b = VecBuf::from_frame(&frame);
        apply(&mut b, &h, &f, In, &e).unwrap();
        ids.push(u16::from_be_bytes([b.data()[18], b.data()[19]]));
    }
    assert_eq!(ids, [0xfffe, 0xffff, 0]);
    assert_eq!(id.get(), 1);
}

// ---- generated errors ----

#[test]
fn errors_built_without_headroom() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    for frame in [
        Pkt::tcp(c, 40000, v, 80).with(|p| p.ttl = 1).frame(),
        Pkt::tcp(v6("2001:db8::1"), 1, v6("2001:db8::2"), 80)
            .with(|p| p.ttl = 1)
            .frame(),
    ] {
        let h = parse_frame(&frame).unwrap();
        let f = fwd(FwdMethod::Route, r, 80, v, 80);
        let (want_r, want) = run(&frame, &f, In, 1500);
        assert_eq!(want_r, Ok(Applied::Reply(Reply::TimeExceeded)));
        let id = Cell::new(0x1000);
        let mut b = VecBuf::with_frame(&frame, 0, 48);
        assert_eq!(apply(&mut b, &h, &f, In, &env(&id, 1500)), want_r);
        assert_frames_eq(b.data(), &want);
        // The IPv4 one fits in the bytes of the original after trimming;
        // without any room at all it cannot be built.
        let mut b = VecBuf::with_frame(&frame[..frame.len()], 0, 0);
        let got = apply(&mut b, &h, &f, In, &env(&id, 1500));
        if h.l3 == L3::Ipv4 {
            assert_eq!(got, want_r);
        } else {
            assert_eq!(got, Err(DropReason::NoRoom));
        }
    }
}

#[test]
fn ttl_expired_v4_time_exceeded() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.ttl = 1);
    let frame = input.frame();
    for m in [
        masq(),
        FwdMethod::Route,
        tunnel(TunType::Gue, TunCsum::Csum),
    ] {
        let (res, out) = run(&frame, &fwd(m, r, 8080, v, 80), In, 1500);
        assert_eq!(res, Ok(Applied::Reply(Reply::TimeExceeded)));
        verify_frame(&out, None).unwrap();
        let outer = Pkt::tcp(IpAddr::V4(LOCAL4), 0, c, 0).with(|p| {
            p.ttl = 64;
            p.tos = 0xc0;
            p.df = false;
            p.ident = 0x1000;
            p.dst_mac = CLIENT_MAC;
            p.src_mac = LB_IN_MAC;
        });
        let want = icmp_error(&outer, 11, 0, 0, &frame[14..14 + 28]);
        assert_frames_eq(&out, &want);
    }
    // TTL 0 too, and NAT outbound answers the real server.
    let reply = Pkt::udp(r, 8080, c, 40000).with(|p| p.ttl = 0);
    let (res, out) = run(&reply.frame(), &fwd(masq(), r, 8080, v, 80), Out, 1500);
    assert_eq!(res, Ok(Applied::Reply(Reply::TimeExceeded)));
    assert_eq!(parse_frame(&out).unwrap().dst, r);
}

#[test]
fn ttl_expired_v6_quotes_up_to_1280() {
    let (c, v, r) = (v6("2001:db8::1"), v6("2001:db8:100::1"), v6("fd00:10::5"));
    for (len, quoted) in [(100, 40 + 20 + 100), (1400, 1280 - 48)] {
        let input = Pkt::tcp(c, 40000, v, 80).with(|p| {
            p.ttl = 1;
            p.payload = vec![0x5a; len];
            p.vlan = Some(9);
        });
        let frame = input.frame();
        let (res, out) = run(&frame, &fwd(masq(), r, 8080, v, 80), In, 1500);
        assert_eq!(res, Ok(Applied::Reply(Reply::TimeExceeded)));
        verify_frame(&out, None).unwrap();
        let outer = Pkt::tcp(IpAddr::V6(LOCAL6), 0, c, 0).with(|p| {
            p.dst_mac = CLIENT_MAC;
            p.src_mac = LB_IN_MAC;
            p.vlan = Some(9);
        });
        let want = icmp_error(&outer, 3, 0, 0, &frame[18..18 + quoted]);
        assert_frames_eq(&out, &want);
        assert!(out.len() - 18 <= 1280);
    }
}

#[test]
fn no_error_about_errors_or_multicast() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let outer = Pkt::tcp(c, 0, v, 0).with(|p| p.ttl = 1);
    let err = icmp_error(&outer, 3, 3, 0, &Pkt::tcp(v, 80, c, 40000).datagram());
    let (res, _) = run(&err, &fwd(masq(), r, 8080, v, 80), In, 1500);
    assert_eq!(res, Err(DropReason::TtlExceeded));
    // Link-layer multicast.
    let mut f = Pkt::tcp(c, 40000, v, 80).with(|p| p.ttl = 1).frame();
    f[0] = 0x01;
    let (res, _) = run(&f, &fwd(masq(), r, 8080, v, 80), In, 1500);
    assert_eq!(res, Err(DropReason::TtlExceeded));
    // No local address.
    let f = Pkt::tcp(c, 40000, v, 80).with(|p| p.ttl = 1).frame();
    let h = parse_frame(&f).unwrap();
    let id = Cell::new(0);
    let mut e = env(&id, 1500);
    e.reply_v4 = std::net::Ipv4Addr::UNSPECIFIED;
    let mut b = VecBuf::from_frame(&f);
    assert_eq!(
        apply(&mut b, &h, &fwd(masq(), r, 8080, v, 80), In, &e),
        Err(DropReason::TtlExceeded)
    );
}

/// `icmp::port_unreachable` on `frame` with the VIP (`frame`'s
/// destination) as the error's source, in a buffer with `room` (headroom,
/// tailroom).
fn unreachable(frame: &[u8], room: (usize, usize)) -> (Result<Applied, DropReason>, Vec<u8>) {
    let h = parse_frame(frame).unwrap();
    let id = Cell::new(0x1000);
    let mut e = env(&id, 1500);
    match h.dst {
        IpAddr::V4(a) => e.reply_v4 = a,
        IpAddr::V6(a) => e.reply_v6 = a,
    }
    let mut b = VecBuf::with_frame(frame, room.0, room.1);
    let r = icmp::port_unreachable(&mut b, &h, &e);
    (r, b.to_vec())
}

/// A new connection no real server can take: port unreachable from the
/// VIP to the client, for TCP and UDP, IPv4 (3/3, quoting the header and 8
/// bytes) and IPv6 (1/4, quoting up to 1280 bytes in all), VLAN tag kept,
/// MACs swapped; built in the frame's own bytes when there is no room.
#[test]
fn port_unreachable_from_the_vip() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let (c6, v6_) = (v6("2001:db8::1"), v6("2001:db8:100::1"));
    let cases = [
        Pkt::tcp(c, 40000, v, 80).with(|p| p.payload.clear()),
        Pkt::udp(c, 5353, v, 53).with(|p| p.vlan = Some(7)),
        Pkt::udp(c, 5353, v, 53).with(|p| p.payload = vec![1; 1400]),
        Pkt::tcp(c6, 40000, v6_, 80),
        Pkt::udp(c6, 5353, v6_, 53).with(|p| p.vlan = Some(7)),
        Pkt::udp(c6, 5353, v6_, 53).with(|p| p.payload = vec![1; 1400]),
    ];
    for input in cases {
        let frame = input.frame();
        let l2 = if input.vlan.is_some() { 18 } else { 14 };
        let (ty, code, quoted) = match input.src {
            IpAddr::V4(_) => (3, 3, 28),
            IpAddr::V6(_) => (1, 4, (frame.len() - l2).min(1280 - 48)),
        };
        let outer = Pkt::tcp(input.dst, 0, input.src, 0).with(|p| {
            p.dst_mac = CLIENT_MAC;
            p.src_mac = LB_IN_MAC;
            p.vlan = input.vlan;
            p.tos = if input.src.is_ipv4() { 0xc0 } else { 0 };
            p.df = false;
            p.ident = 0x1000;
        });
        let want = icmp_error(&outer, ty, code, 0, &frame[l2..l2 + quoted]);
        for room in [(128, 256), (0, 48), (0, 0)] {
            let (r, out) = unreachable(&frame, room);
            if room == (0, 0) && want.len() > frame.len() {
                // Without any room, the error is built in the bytes the
                // trimmed quote leaves: too few in a short frame.
                assert_eq!(r, Err(DropReason::NoRoom), "{input:?}");
                continue;
            }
            assert_eq!(r, Ok(Applied::Reply(Reply::PortUnreachable)), "{input:?}");
            verify_frame(&out, None).unwrap();
            assert_frames_eq(&out, &want);
        }
    }
}

/// No port unreachable about what no error may answer: ICMP errors,
/// non-first fragments, multicast (link or IP), without a source address.
#[test]
fn port_unreachable_refusals() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let syn = Pkt::tcp(c, 40000, v, 80).frame();
    let err = icmp_error(
        &Pkt::tcp(c, 0, v, 0),
        3,
        3,
        0,
        &Pkt::udp(v, 53, c, 5353).datagram()[..28],
    );
    let mut mcast_mac = syn.clone();
    mcast_mac[0] = 0x01;
    let mcast_ip = Pkt::udp(c, 5353, v4("239.1.2.3"), 53).frame();
    let mut frag = Pkt::udp(c, 5353, v, 53).frame();
    let mut p = ipv4::Packet::new_unchecked(&mut frag[14..]);
    p.set_frag(false, false, 64);
    p.fill_checksum();
    let from_nowhere = Pkt::udp(v4("0.0.0.0"), 68, v, 67).frame();
    for f in [&err, &mcast_mac, &mcast_ip, &frag, &from_nowhere] {
        let (r, out) = unreachable(f, (128, 256));
        assert_eq!(r, Err(DropReason::NoDest), "{f:02x?}");
        assert_eq!(&out, f, "left as it was");
    }
    // An IPv6 multicast destination too (packet too big alone may answer it).
    let m6 = Pkt::udp(v6("2001:db8::1"), 5353, v6("ff02::fb"), 5353).frame();
    assert_eq!(unreachable(&m6, (128, 256)).0, Err(DropReason::NoDest));
    // No source address to send from.
    let h = parse_frame(&syn).unwrap();
    let id = Cell::new(0);
    let mut e = env(&id, 1500);
    e.reply_v4 = std::net::Ipv4Addr::UNSPECIFIED;
    let mut b = VecBuf::from_frame(&syn);
    assert_eq!(
        icmp::port_unreachable(&mut b, &h, &e),
        Err(DropReason::NoDest)
    );
}

/// NAT and DR larger than the egress MTU: fragmentation needed / packet
/// too big with DF or IPv6, else rewritten for fragmentation; the
/// fragments put back together are the rewritten packet.
#[test]
fn nat_and_dr_over_the_mtu() {
    use crate::lb::dest::FwdMethod;
    use crate::net::fragment::Plan;
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let big = Pkt::tcp(c, 40000, v, 80).with(|p| p.payload = vec![7; 1480]);
    for method in [FwdMethod::Masq, FwdMethod::Route] {
        let f = fwd(method, v4("10.1.0.5"), 8080, v, 80);
        let df = big.clone().frame();
        match run(&df, &f, In, 1500).0 {
            Ok(Applied::Reply(Reply::FragNeeded { mtu: 1500 })) => {}
            r => panic!("{method:?} DF: {r:?}"),
        }
        let nodf = big.clone().with(|p| p.df = false).frame();
        let (res, out) = run(&nodf, &f, In, 1500);
        assert_eq!(res, Ok(Applied::Fragment), "{method:?}");
        // At the MTU exactly: sent whole.
        assert_eq!(run(&nodf, &f, In, 1520).0, Ok(Applied::Transmit));
        let plan = Plan::new(&out, 14, 1500).unwrap();
        assert_eq!(plan.count(), 2);
        let mut second = vec![0; plan.frame_len(1)];
        plan.write(&out, 1, &mut second);
        let mut first = out.clone();
        let n = plan.truncate_to_first(&mut first);
        first.truncate(n);
        let mut whole = first[34..].to_vec();
        whole.extend_from_slice(&second[34..]);
        assert_eq!(whole, out[34..], "{method:?}: the payload in order");
        assert!(verify_frame(&out, None).is_ok());
    }
    // IPv6: packet too big, whatever the method.
    let (c6, v6a) = (v6("2001:db8::1"), v6("2001:db8::100"));
    let big6 = Pkt::tcp(c6, 40000, v6a, 80).with(|p| p.payload = vec![7; 1480]);
    let f = fwd(FwdMethod::Masq, v6("2001:db8:1::5"), 8080, v6a, 80);
    match run(&big6.frame(), &f, In, 1500).0 {
        Ok(Applied::Reply(Reply::PacketTooBig { mtu: 1500 })) => {}
        r => panic!("IPv6: {r:?}"),
    }
}

#[test]
fn too_big_v4_df_frag_needed() {
    let (c, v) = (v4("10.0.0.1"), v4("10.0.0.100"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.payload = vec![7; 1460]);
    let frame = input.frame();
    for (t, csum, overhead) in [
        (TunType::Ipip, TunCsum::NoCsum, 20u16),
        (TunType::Gue, TunCsum::NoCsum, 32),
        (TunType::Gre, TunCsum::NoCsum, 24),
        (TunType::Gre, TunCsum::Csum, 28),
    ] {
        let f = fwd(tunnel(t, csum), v4("192.168.10.5"), 80, v, 80);
        let (res, out) = run(&frame, &f, In, 1500);
        let mtu = 1500 - overhead;
        assert_eq!(res, Ok(Applied::Reply(Reply::FragNeeded { mtu })));
        verify_frame(&out, None).unwrap();
        let outer = Pkt::tcp(IpAddr::V4(LOCAL4), 0, c, 0).with(|p| {
            p.tos = 0xc0;
            p.df = false;
            p.ident = 0x1000;
            p.dst_mac = CLIENT_MAC;
            p.src_mac = LB_IN_MAC;
        });
        assert_frames_eq(
            &out,
            &icmp_error(&outer, 3, 4, mtu as u32, &frame[14..14 + 28]),
        );
        // Exactly at the MTU: forwarded.
        let (res, _) = run(&frame, &f, In, 1500 + overhead);
        assert_eq!(res, Ok(Applied::Transmit));
    }
    // DF clear: encapsulated, and to be sent in fragments.
    let f = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v4("192.168.10.5"),
        80,
        v,
        80,
    );
    let nodf = input.clone().with(|p| p.df = false).frame();
    let (res, out) = run(&nodf, &f, In, 1500);
    assert_eq!(res, Ok(Applied::Fragment));
    assert_eq!(out[23], 4, "IPIP outer header");
    assert_eq!(out[20] & 0x40, 0, "outer DF clear, as the inner's");
    // In an IPv6 tunnel it is not fragmented.
    let f6 = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v6("2001:db8::5"),
        80,
        v,
        80,
    );
    assert_eq!(run(&nodf, &f6, In, 1500).0, Err(DropReason::TooBig));
    // An MTU so small the packet would fit the announced one: dropped.
    let small = Pkt::tcp(c, 40000, v, 80)
        .with(|p| p.payload.clear())
        .frame();
    assert_eq!(run(&small, &f, In, 50).0, Err(DropReason::TooBig));
}

#[test]
fn too_big_v6_packet_too_big() {
    let (c, v) = (v6("2001:db8::1"), v6("2001:db8:100::1"));
    let input = Pkt::tcp(c, 40000, v, 80).with(|p| p.payload = vec![7; 1440]);
    let frame = input.frame();
    for (rs, overhead) in [(v6("fd00:10::5"), 40u32), (v4("192.168.10.5"), 20)] {
        let f = fwd(tunnel(TunType::Ipip, TunCsum::NoCsum), rs, 80, v, 80);
        let (res, out) = run(&frame, &f, In, 1500);
        let mtu = 1500 - overhead;
        assert_eq!(res, Ok(Applied::Reply(Reply::PacketTooBig { mtu })));
        verify_frame(&out, None).unwrap();
        let outer = Pkt::tcp(IpAddr::V6(LOCAL6), 0, c, 0).with(|p| {
            p.dst_mac = CLIENT_MAC;
            p.src_mac = LB_IN_MAC;
        });
        assert_frames_eq(&out, &icmp_error(&outer, 2, 0, mtu, &frame[14..14 + 1232]));
    }
}

// ---- refusals ----

#[test]
fn refusals() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let frame = Pkt::tcp(c, 40000, v, 80).frame();
    let h = parse_frame(&frame).unwrap();
    let id = Cell::new(0);
    let e = env(&id, 1500);
    let nat = fwd(masq(), r, 8080, v, 80);
    let try_apply = |buf: &[u8], h: &Headers, f: &Forward, dir| {
        let mut b = VecBuf::from_frame(buf);
        apply(&mut b, h, f, dir, &e)
    };
    // Family mismatch.
    let f6 = fwd(masq(), v6("fd00::5"), 8080, v, 80);
    assert_eq!(try_apply(&frame, &h, &f6, In), Err(DropReason::Family));
    // Headers of another frame.
    assert_eq!(
        try_apply(&frame[..50], &h, &nat, In),
        Err(DropReason::BadHeaders)
    );
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(
        try_apply(&longer, &h, &nat, In),
        Err(DropReason::BadHeaders)
    );
    let mut wrong_et = frame.clone();
    wrong_et[12] = 0x86;
    wrong_et[13] = 0xdd;
    assert_eq!(
        try_apply(&wrong_et, &h, &nat, In),
        Err(DropReason::BadHeaders)
    );
    // Not IP.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[
        0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0,
        100,
    ]);
    let ha = parse_frame(&arp).unwrap();
    assert_eq!(try_apply(&arp, &ha, &nat, In), Err(DropReason::NotIp));
    // A fragment.
    let mut frag = frame.clone();
    let mut p = ipv4::Packet::new_unchecked(&mut frag[14..]);
    p.set_frag(false, true, 0);
    p.fill_checksum();
    let hf = parse_frame(&frag).unwrap();
    assert_eq!(
        try_apply(&frag, &hf, &nat, In),
        Err(DropReason::RewriteFragment)
    );
    // DR and TUN replies.
    let tun = fwd(tunnel(TunType::Ipip, TunCsum::NoCsum), r, 80, v, 80);
    assert_eq!(try_apply(&frame, &h, &tun, Out), Err(DropReason::Direction));
    // SCTP port mapping.
    let mut sctp = Pkt::udp(c, 40000, v, 80).frame();
    sctp[14 + 9] = 132;
    let mut p = ipv4::Packet::new_unchecked(&mut sctp[14..]);
    p.fill_checksum();
    sctp.extend_from_slice(&[0; 4]);
    let n = (sctp.len() - 14) as u16;
    let mut p = ipv4::Packet::new_unchecked(&mut sctp[14..]);
    p.set_total_len(n);
    p.fill_checksum();
    let hs = parse_frame(&sctp).unwrap();
    assert_eq!(hs.protocol, IpProtocol::SCTP);
    assert_eq!(
        try_apply(&sctp, &hs, &nat, In),
        Err(DropReason::RewriteUnsupported)
    );
    // No local IPv6 address for a 6in6 tunnel.
    let f6 = Pkt::tcp(v6("2001:db8::1"), 1, v6("2001:db8::2"), 80).frame();
    let h6 = parse_frame(&f6).unwrap();
    let mut e6 = env(&id, 1500);
    e6.local_v6 = std::net::Ipv6Addr::UNSPECIFIED;
    let t6 = fwd(
        tunnel(TunType::Ipip, TunCsum::NoCsum),
        v6("fd00::5"),
        80,
        v6("2001:db8::2"),
        80,
    );
    let mut b = VecBuf::from_frame(&f6);
    assert_eq!(
        apply(&mut b, &h6, &t6, In, &e6),
        Err(DropReason::NoLocalAddr)
    );
}

#[test]
fn garbage_and_truncations_never_panic() {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let frame = Pkt::tcp(c, 40000, v, 80).frame();
    let h = parse_frame(&frame).unwrap();
    let id = Cell::new(0);
    let e = env(&id, 1500);
    for m in fuzz::METHODS {
        let f = fwd(m, r, 8080, v, 80);
        for n in 0..frame.len() {
            let mut b = VecBuf::from_frame(&frame[..n]);
            assert_eq!(apply(&mut b, &h, &f, In, &e), Err(DropReason::BadHeaders));
        }
        // Right length, garbage bytes.
        for fill in [0u8, 0xff, 0x45] {
            let mut b = VecBuf::from_frame(&vec![fill; frame.len()]);
            let _ = apply(&mut b, &h, &f, In, &e);
            let _ = apply(&mut b, &h, &f, Out, &e);
        }
    }
}

// ---- fuzz ----

pub(super) fn seeds() -> Vec<Vec<u8>> {
    let (c, v, r) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let (c6, v6_, r6) = (v6("2001:db8::1"), v6("2001:db8:100::1"), v6("fd00:10::5"));
    vec![
        Pkt::tcp(c, 40000, v, 80).frame(),
        Pkt::udp(c, 5353, v, 53).with(|p| p.vlan = Some(3)).frame(),
        Pkt::udp(r, 8080, c, 40000)
            .with(|p| p.udp_zero = true)
            .frame(),
        Pkt::tcp(c6, 40000, v6_, 80).frame(),
        Pkt::udp(r6, 8080, c6, 40000).frame(),
        Pkt::tcp(c, 40000, v, 80).with(|p| p.ttl = 1).frame(),
        Pkt::tcp(c6, 40000, v6_, 80).with(|p| p.ttl = 1).frame(),
        Pkt::tcp(c, 40000, v, 80)
            .with(|p| p.payload = vec![1; 1480])
            .frame(),
        Pkt::tcp(c6, 40000, v6_, 80)
            .with(|p| p.payload = vec![1; 1460])
            .frame(),
        icmp_error(
            &Pkt::tcp(v4("10.0.0.254"), 0, v, 0),
            3,
            4,
            1400,
            &Pkt::tcp(v, 80, c, 40000).datagram(),
        ),
        icmp_error(
            &Pkt::tcp(r, 0, c, 0),
            3,
            3,
            0,
            &Pkt::udp(c, 1, r, 8080).datagram()[..28],
        ),
        icmp_error(
            &Pkt::tcp(v6("2001:db8::fe"), 0, v6_, 0),
            2,
            0,
            1280,
            &Pkt::tcp(v6_, 80, c6, 40000).datagram(),
        ),
    ]
}

#[test]
fn fuzz_seeds_pass() {
    for s in seeds() {
        parse_frame(&s).unwrap();
        verify_frame(&s, Some(fuzz::FUZZ_GUE_PORT)).unwrap();
        fuzz_one(&s);
    }
    for n in 0..80 {
        fuzz_one(&vec![0u8; n]);
        fuzz_one(&vec![0x45u8; n]);
    }
}

/// Deterministic mutation loop for RVS_FUZZ_SECS seconds (default 2).
#[test]
fn fuzz_mutation_loop() {
    use crate::wire::fuzz::{mutate, XorShift};
    use std::time::{Duration, Instant};
    let secs = std::env::var("RVS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let seeds = seeds();
    let mut rng = XorShift::new(0xf0d_5eed_2024);
    let (mut iters, mut parsed) = (0u64, 0u64);
    while Instant::now() < deadline {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut buf);
        }
        // Sometimes a TTL of 0-2 to exercise the error paths.
        if rng.below(4) == 0 {
            if let Ok(h) = parse_frame(&buf) {
                let at = h.l3_offset as usize + if h.l3 == L3::Ipv4 { 8 } else { 7 };
                if let Some(b) = buf.get_mut(at) {
                    *b = rng.below(3) as u8;
                }
            }
        }
        parsed += parse_frame(&buf).is_ok() as u64;
        if std::panic::catch_unwind(|| fuzz_one(&buf)).is_err() {
            panic!("forward::fuzz_one panicked on input {buf:02x?}");
        }
        iters += 1;
    }
    assert!(
        iters > 0 && parsed > 0,
        "{iters} iterations, {parsed} parsed"
    );
}

// ---- the data path's direct rewrites against `apply` ----

/// `apply_direct` (NAT, DR) and `apply_direct_tunnel` (IPIP, through
/// `tunnel::ipip4_direct`) write exactly the bytes (and take the IP ids)
/// that `apply` does, or leave the frame
/// untouched for `apply` to handle: over TTLs, DF, ECN, padding, VLAN tags,
/// UDP without checksum, MTUs and headroom.
#[test]
fn direct_paths_match_apply() {
    let (c, v, rs) = (v4("10.0.0.1"), v4("10.0.0.100"), v4("192.168.10.5"));
    let ipip = tunnel(TunType::Ipip, TunCsum::NoCsum);
    let mut taken = [0usize; 4];
    for (mi, (method, dir)) in [
        (masq(), In),
        (masq(), Out),
        (FwdMethod::Route, In),
        (ipip, In),
    ]
    .into_iter()
    .enumerate()
    {
        let f = fwd(method, rs, 8080, v, 80);
        for udp in [false, true] {
            for (ttl, df, tos, pad, vlan, zero) in [
                (64, true, 0x00, 0, None, false),
                (64, false, 0x2b, 0, None, false),
                (2, true, 0x03, 0, None, true),
                (1, true, 0x00, 0, None, false),
                (64, true, 0x00, 0, Some(5), false),
                (64, true, 0x00, 20, None, false),
            ] {
                let (src, sport, dst, dport) = match dir {
                    In => (c, 40000, v, 80),
                    Out => (rs, 8080, c, 40000),
                };
                let p = if udp {
                    Pkt::udp(src, sport, dst, dport)
                } else {
                    Pkt::tcp(src, sport, dst, dport)
                };
                let p = p.with(|p| {
                    (p.ttl, p.df, p.tos, p.vlan, p.udp_zero) = (ttl, df, tos, vlan, zero);
                    if pad > 0 {
                        p.payload.clear();
                    }
                });
                let mut frame = p.frame();
                frame.resize(frame.len() + pad, 0);
                let h = parse_frame(&frame).unwrap();
                for mtu in [1500u16, 40] {
                    for headroom in [128usize, 0] {
                        let id = Cell::new(0x1000);
                        let mut general = VecBuf::with_frame(&frame, headroom, 256);
                        let r = apply(&mut general, &h, &f, dir, &env(&id, mtu));
                        let direct_id = Cell::new(0x1000);
                        let mut direct = VecBuf::with_frame(&frame, headroom, 256);
                        let done = match method {
                            FwdMethod::Tunnel { .. } => {
                                apply_direct_tunnel(&mut direct, &h, &f, dir, &env(&direct_id, mtu))
                            }
                            // The datapath checks the MTU before the direct
                            // NAT/DR rewrite, which does not.
                            _ => {
                                h.l3_len <= mtu
                                    && apply_direct(
                                        direct.data_mut(),
                                        &h,
                                        &f,
                                        dir,
                                        RS_MAC,
                                        LB_OUT_MAC,
                                    )
                            }
                        };
                        let case = format!("{method:?} {dir:?} udp={udp} ttl={ttl} df={df} tos={tos:#x} pad={pad} vlan={vlan:?} mtu={mtu} headroom={headroom}");
                        if done {
                            taken[mi] += 1;
                            assert_eq!(r, Ok(Applied::Transmit), "{case}");
                            assert_frames_eq(&direct.to_vec(), &general.to_vec());
                            assert_eq!(direct_id.get(), id.get(), "{case}");
                        } else {
                            assert_eq!(direct.to_vec(), frame, "{case}: untouched");
                            assert_eq!(direct_id.get(), 0x1000, "{case}");
                        }
                    }
                }
            }
        }
    }
    // Every direct path is taken by the common frames.
    assert!(taken.iter().all(|&n| n >= 4), "{taken:?}");
}
