//! Property tests across the wire layer: incremental checksum updates equal
//! a full recomputation for random packets and NAT rewrites, and nothing
//! panics on arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::parse::{parse_frame, L3};
use super::{
    checksum, ethernet, fuzz, ipv4, ipv6, tcp, udp, EtherType, EthernetAddress, IpProtocol,
};

fn naive(d: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for c in d.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Ethernet + IP + TCP/UDP frame with valid checksums.
#[allow(clippy::too_many_arguments)]
fn build(
    src: IpAddr,
    dst: IpAddr,
    udp_proto: bool,
    sport: u16,
    dport: u16,
    seq: u32,
    payload: &[u8],
    zero_udp_checksum: bool,
) -> Vec<u8> {
    let proto = if udp_proto {
        IpProtocol::UDP
    } else {
        IpProtocol::TCP
    };
    let l4_len = if udp_proto { 8 } else { 20 } + payload.len();
    let (l3_hdr, et) = match src {
        IpAddr::V4(_) => (20, EtherType::IPV4),
        IpAddr::V6(_) => (40, EtherType::IPV6),
    };
    let mut f = vec![0u8; 14 + l3_hdr + l4_len];
    ethernet::Repr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: et,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut f[..]))
    .unwrap();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4::Repr {
            src_addr: s,
            dst_addr: d,
            protocol: proto,
            payload_len: l4_len,
            ttl: 64,
            tos: 0,
            ident: seq as u16,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut f[14..]))
        .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6::Repr {
            src_addr: s,
            dst_addr: d,
            next_header: proto,
            payload_len: l4_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: seq & 0xfffff,
        }
        .emit(&mut ipv6::Packet::new_unchecked(&mut f[14..]))
        .unwrap(),
        _ => unreachable!(),
    }
    let seg = &mut f[14 + l3_hdr..];
    let hl = l4_len - payload.len();
    seg[hl..].copy_from_slice(payload);
    if udp_proto {
        let r = udp::Repr {
            src_port: sport,
            dst_port: dport,
            payload_len: payload.len(),
        };
        let mut p = udp::Packet::new_unchecked(seg);
        r.emit(&mut p, &src, &dst).unwrap();
        if zero_udp_checksum {
            p.set_checksum(0);
        }
    } else {
        let r = tcp::Repr {
            src_port: sport,
            dst_port: dport,
            seq_number: seq,
            ack_number: !seq,
            flags: tcp::Flags::ACK | tcp::Flags::PSH,
            window_len: 512,
            urgent_at: 0,
            payload_len: payload.len(),
        };
        r.emit(&mut tcp::Packet::new_unchecked(seg), &src, &dst)
            .unwrap();
    }
    f
}

/// Rewrites the source (or destination) address and port of `f` the way
/// NAT does: incrementally. Returns the same rewrite done by setting the
/// fields and recomputing every checksum from scratch.
fn rewrite_both_ways(f: &mut [u8], on_src: bool, addr: IpAddr, port: u16) -> Vec<u8> {
    let h = parse_frame(f).unwrap();
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    let mut full = f.to_vec();

    // Incremental: the IP header first, then the L4 checksum.
    let old = match (h.l3, addr) {
        (L3::Ipv4, IpAddr::V4(a)) => {
            let mut p = ipv4::Packet::new_checked(&mut f[l3..end]).unwrap();
            IpAddr::V4(if on_src {
                p.rewrite_src_addr(a)
            } else {
                p.rewrite_dst_addr(a)
            })
        }
        (L3::Ipv6, IpAddr::V6(a)) => {
            let mut p = ipv6::Packet::new_checked(&mut f[l3..end]).unwrap();
            let old = if on_src { p.src_addr() } else { p.dst_addr() };
            if on_src {
                p.set_src_addr(a)
            } else {
                p.set_dst_addr(a)
            }
            IpAddr::V6(old)
        }
        _ => unreachable!(),
    };
    let seg = &mut f[l4..end];
    if h.protocol == IpProtocol::TCP {
        let mut t = tcp::Packet::new_checked(seg).unwrap();
        match (old, addr) {
            (IpAddr::V4(o), IpAddr::V4(n)) => t.update_checksum_ipv4(&o, &n),
            (IpAddr::V6(o), IpAddr::V6(n)) => t.update_checksum_ipv6(&o, &n),
            _ => unreachable!(),
        }
        if on_src {
            t.rewrite_src_port(port);
        } else {
            t.rewrite_dst_port(port);
        }
    } else {
        let mut u = udp::Packet::new_checked(seg).unwrap();
        match (old, addr) {
            (IpAddr::V4(o), IpAddr::V4(n)) => u.update_checksum_ipv4(&o, &n),
            (IpAddr::V6(o), IpAddr::V6(n)) => u.update_checksum_ipv6(&o, &n),
            _ => unreachable!(),
        }
        if on_src {
            u.rewrite_src_port(port);
        } else {
            u.rewrite_dst_port(port);
        }
    }

    // From scratch: set the fields, recompute every checksum.
    let (src, dst) = match addr {
        IpAddr::V4(a) => {
            let mut p = ipv4::Packet::new_checked(&mut full[l3..end]).unwrap();
            if on_src {
                p.set_src_addr(a)
            } else {
                p.set_dst_addr(a)
            }
            p.fill_checksum();
            (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()))
        }
        IpAddr::V6(a) => {
            let mut p = ipv6::Packet::new_checked(&mut full[l3..end]).unwrap();
            if on_src {
                p.set_src_addr(a)
            } else {
                p.set_dst_addr(a)
            }
            (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))
        }
    };
    let seg = &mut full[l4..end];
    if h.protocol == IpProtocol::TCP {
        let mut t = tcp::Packet::new_checked(seg).unwrap();
        if on_src {
            t.set_src_port(port)
        } else {
            t.set_dst_port(port)
        }
        t.fill_checksum(&src, &dst);
    } else {
        let mut u = udp::Packet::new_checked(seg).unwrap();
        let had = u.checksum() != 0;
        if on_src {
            u.set_src_port(port)
        } else {
            u.set_dst_port(port)
        }
        if had {
            u.fill_checksum(&src, &dst);
        }
    }
    full
}

fn any_ip(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<[u8; 16]>()
            .prop_map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .boxed()
    }
}

/// (src, dst, new address) of one family.
fn addrs() -> impl Strategy<Value = (IpAddr, IpAddr, IpAddr)> {
    any::<bool>().prop_flat_map(|v6| (any_ip(v6), any_ip(v6), any_ip(v6)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The short IPv4 header check agrees with the general one, on
    /// headers with a right checksum and on any others.
    #[test]
    fn ipv4_header_check_equals_general(mut h in any::<[u8; 20]>(), fix in any::<bool>()) {
        use super::checksum::{checksum, verify, verify_ipv4_header};
        if fix {
            h[10] = 0;
            h[11] = 0;
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        prop_assert_eq!(verify_ipv4_header(&h), verify(&h, 0));
    }

    /// The straight-line IPv4 parser agrees with the general one on
    /// plain frames and on frames with any few bytes of their headers
    /// changed (lengths, version, flags, protocol, offsets).
    #[test]
    fn plain_v4_parse_equals_general(
        udp_proto in any::<bool>(),
        ports in any::<(u16, u16)>(),
        seq in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        pad in 0usize..20,
        cut in 0usize..8,
        edits in proptest::collection::vec((0usize..60, any::<u8>()), 0..4),
    ) {
        use super::parse::{parse_frame, parse_general, Headers};
        let (s, d) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 100]));
        let mut f = build(s, d, udp_proto, ports.0, ports.1, seq, &payload, false);
        f.resize(f.len() + pad, 0);
        for (at, v) in edits {
            if at < f.len() {
                f[at] = v;
            }
        }
        f.truncate(f.len().saturating_sub(cut));
        let mut g = Headers::EMPTY;
        let general = parse_general(&f, &mut g).map(|_| g);
        prop_assert_eq!(parse_frame(&f), general);
    }

    /// The one-pass IPv4 NAT rewrite writes exactly what the general
    /// functions write.
    #[test]
    fn nat4_ttl_equals_general_path(
        src in any::<[u8; 4]>(),
        dst in any::<[u8; 4]>(),
        new in any::<[u8; 4]>(),
        udp_proto in any::<bool>(),
        zero in any::<bool>(),
        ports in any::<(u16, u16, u16)>(),
        seq in any::<u32>(),
        ttl in 0u8..=255,
        on_src in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        use super::rewrite::{decrement_ttl, nat4_ttl, set_endpoint, Side};
        let (s, d) = (IpAddr::from(src), IpAddr::from(dst));
        let mut f = build(s, d, udp_proto, ports.0, ports.1, seq, &payload, zero);
        // Any TTL, with the IPv4 header checksum fixed for it.
        let c = u16::from_be_bytes([f[24], f[25]]);
        let old = u16::from_be_bytes([f[22], f[23]]);
        let neww = ((ttl as u16) << 8) | (old & 0xff);
        f[22..24].copy_from_slice(&neww.to_be_bytes());
        f[24..26].copy_from_slice(&checksum::update_u16(c, old, neww).to_be_bytes());
        let h = parse_frame(&f).unwrap();
        let side = if on_src { Side::Src } else { Side::Dst };
        let a = Ipv4Addr::from(new);
        let mut general = f.clone();
        set_endpoint(&mut general, &h, side, IpAddr::V4(a), ports.2).unwrap();
        decrement_ttl(&mut general, &h).unwrap();
        let mut fast = f.clone();
        let done = nat4_ttl(&mut fast, &h, side, a, ports.2);
        if ttl <= 1 || (udp_proto && f.len() - 34 < 18) {
            prop_assert!(!done);
            prop_assert_eq!(&fast, &f);
        } else {
            prop_assert!(done);
            prop_assert_eq!(&fast, &general);
        }
    }

    #[test]
    fn sum_matches_naive(d in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert_eq!(checksum::data(&d), naive(&d));
    }

    #[test]
    fn incremental_word_updates(
        d in proptest::collection::vec(any::<u8>(), 16..200),
        at in 0usize..100,
        w16 in any::<u16>(),
        w32 in any::<u32>(),
        w128 in any::<[u8; 16]>(),
    ) {
        let at = (at % (d.len() / 2 - 7)) * 2; // even offset, 16 bytes fit
        let c = checksum::checksum(&d);

        let mut e = d.clone();
        let old16 = u16::from_be_bytes([e[at], e[at + 1]]);
        e[at..at + 2].copy_from_slice(&w16.to_be_bytes());
        prop_assert_eq!(checksum::update_u16(c, old16, w16), checksum::checksum(&e));

        let mut e = d.clone();
        let old32 = u32::from_be_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]);
        e[at..at + 4].copy_from_slice(&w32.to_be_bytes());
        prop_assert_eq!(checksum::update_u32(c, old32, w32), checksum::checksum(&e));

        let mut e = d.clone();
        let old = Ipv6Addr::from(<[u8; 16]>::try_from(&e[at..at + 16]).unwrap());
        e[at..at + 16].copy_from_slice(&w128);
        prop_assert_eq!(
            checksum::update_ipv6_addr(c, &old, &Ipv6Addr::from(w128)),
            checksum::checksum(&e)
        );
    }

    #[test]
    fn nat_rewrite_equals_full_recompute(
        (src, dst, new_addr) in addrs(),
        use_udp in any::<bool>(),
        zero_udp in any::<bool>(),
        on_src in any::<bool>(),
        sport in 1u16..,
        dport in 1u16..,
        new_port in any::<u16>(),
        seq in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // A zero UDP checksum means "none" only on IPv4.
        let zero_udp = zero_udp && use_udp && src.is_ipv4();
        let mut f = build(src, dst, use_udp, sport, dport, seq, &payload, zero_udp);
        let full = rewrite_both_ways(&mut f, on_src, new_addr, new_port);
        prop_assert_eq!(&f, &full);
        // And the result verifies (or keeps "no checksum").
        let h = parse_frame(&f).unwrap();
        let seg = h.l4_bytes(&f);
        if use_udp {
            let u = udp::Packet::new_checked(seg).unwrap();
            prop_assert!(u.verify_checksum(&h.src, &h.dst));
            prop_assert_eq!(u.checksum() == 0, zero_udp);
        } else {
            prop_assert!(tcp::Packet::new_checked(seg).unwrap().verify_checksum(&h.src, &h.dst));
        }
        if let L3::Ipv4 = h.l3 {
            prop_assert!(ipv4::Packet::new_checked(h.l3_bytes(&f)).unwrap().verify_checksum());
        }
    }

    #[test]
    fn ttl_decrement_equals_full_recompute(
        (src, dst, _) in addrs(),
        ttl in any::<u8>(),
    ) {
        if let (IpAddr::V4(_), IpAddr::V4(_)) = (src, dst) {
            let mut f = build(src, dst, false, 1, 2, 3, b"x", false);
            let mut p = ipv4::Packet::new_checked(&mut f[14..]).unwrap();
            p.set_ttl(ttl);
            p.fill_checksum();
            p.decrement_ttl();
            let inc = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(inc, p.checksum());
            prop_assert_eq!(p.ttl(), ttl.saturating_sub(1));
        }
    }

    #[test]
    fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_frame(&d);
        fuzz::fuzz_one(&d);
    }

    #[test]
    fn parse_never_panics_on_damaged_frames(
        (src, dst, _) in addrs(),
        use_udp in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        cut in any::<u16>(),
    ) {
        let mut f = build(src, dst, use_udp, 1000, 80, 7, &payload, false);
        for (at, v) in edits {
            let n = f.len();
            f[at as usize % n] = v;
        }
        f.truncate(f.len() - (cut as usize % 8).min(f.len()));
        let _ = parse_frame(&f);
        fuzz::fuzz_one(&f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The frame-level helper gives the same bytes as a full recompute.
    #[test]
    fn rewrite_set_endpoint_equals_full_recompute(
        (src, dst, new_addr) in addrs(),
        use_udp in any::<bool>(),
        zero_udp in any::<bool>(),
        on_src in any::<bool>(),
        new_port in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let zero_udp = zero_udp && use_udp && src.is_ipv4();
        let f = build(src, dst, use_udp, 1234, 80, 99, &payload, zero_udp);
        let mut a = f.clone();
        let full = rewrite_both_ways(&mut a, on_src, new_addr, new_port);
        let mut b = f.clone();
        let h = parse_frame(&b).unwrap();
        let side = if on_src { super::rewrite::Side::Src } else { super::rewrite::Side::Dst };
        super::rewrite::set_endpoint(&mut b, &h, side, new_addr, new_port).unwrap();
        prop_assert_eq!(&b, &full);
    }
}
