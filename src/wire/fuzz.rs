//! In-tree fuzz harness (stable Rust, no cargo-fuzz needed).
//!
//! [`fuzz_one`] throws bytes at every view, accessor, `Repr` round trip,
//! `parse_frame` and checksum function, and asserts the cross-checks that
//! must hold (parse_frame agrees with the views; emit-then-parse gives the
//! same `Repr`; NAT rewrites keep valid checksums valid). A panic is a bug.
//! The `#[test]` below drives it with a deterministic mutation loop for
//! `RVS_FUZZ_SECS` seconds (default 2). An external fuzzer can call
//! `fuzz_one` directly.
//!
//! This is test tooling: unlike the rest of `wire`, it allocates.

use std::hint::black_box;
use std::net::IpAddr;

use super::parse::{parse_frame, Headers, L3};
use super::{
    arp, checksum, ethernet, icmpv4, icmpv6, ipv4, ipv6, rewrite, tcp, udp, vlan, ChecksumMode,
    IpProtocol,
};

pub use crate::rng::XorShift;

/// Runs everything over `data` and a few deterministic mutations of it.
pub fn fuzz_one(data: &[u8]) {
    run(data);
    // FNV-1a of the input seeds the mutations, so a run is reproducible.
    let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = XorShift::new(seed);
    let mut buf = data.to_vec();
    for _ in 0..4 {
        mutate(&mut rng, &mut buf);
        run(&buf);
    }
}

/// Applies one random mutation: bit flip, random byte, truncation,
/// extension, or a corrupted length/offset field found by parsing.
pub fn mutate(rng: &mut XorShift, buf: &mut Vec<u8>) {
    const INTERESTING: [u16; 10] = [0, 1, 4, 7, 8, 19, 20, 40, 0x7fff, 0xffff];
    match rng.below(6) {
        0 if !buf.is_empty() => {
            let i = rng.below(buf.len());
            buf[i] ^= 1 << rng.below(8);
        }
        1 if !buf.is_empty() => {
            let i = rng.below(buf.len());
            buf[i] = rng.next_u64() as u8;
        }
        2 => {
            let n = rng.below(buf.len() + 1);
            buf.truncate(n);
        }
        3 => {
            for _ in 0..rng.below(16) {
                buf.push(rng.next_u64() as u8);
            }
        }
        _ => {
            // Length fields: pick one the parser relies on and corrupt it.
            let Ok(h) = parse_frame(buf) else {
                if buf.len() > 1 {
                    let i = rng.below(buf.len() - 1);
                    let v = INTERESTING[rng.below(INTERESTING.len())];
                    buf[i..i + 2].copy_from_slice(&v.to_be_bytes());
                }
                return;
            };
            let l3 = h.l3_offset as usize;
            let l4 = h.l4_offset as usize;
            let mut targets = vec![12usize];
            match h.l3 {
                L3::Ipv4 => targets.extend([l3, l3 + 2, l3 + 6]),
                L3::Ipv6 => targets.extend([l3 + 4, l3 + 6, l3 + 40]),
                L3::Arp => targets.extend([l3 + 4]),
                L3::Other => {}
            }
            match h.protocol {
                IpProtocol::TCP => targets.push(l4 + 12),
                IpProtocol::UDP => targets.push(l4 + 4),
                _ => targets.push(l4),
            }
            if let Some(i) = h.inner {
                targets.extend([i.l3_offset as usize, i.l3_offset as usize + 2]);
            }
            let at = targets[rng.below(targets.len())];
            let v = match rng.below(3) {
                0 => INTERESTING[rng.below(INTERESTING.len())],
                1 => rng.next_u64() as u16,
                _ => (buf.len() as u16)
                    .wrapping_add(rng.below(3) as u16)
                    .wrapping_sub(1),
            };
            if let Some(s) = buf.get_mut(at..at + 2) {
                // Half the time only the high byte (IHL/data offset nibbles).
                if rng.below(2) == 0 {
                    s.copy_from_slice(&v.to_be_bytes());
                } else {
                    s[0] = v as u8;
                }
            }
        }
    }
}

fn run(data: &[u8]) {
    checksums(data);
    match parse_frame(data) {
        Ok(h) => {
            black_box(&h);
            cross_check(data, &h);
            nat_rewrite(data, &h);
        }
        Err(e) => {
            black_box(e);
        }
    }
    // Every view over the frame and the usual L3/L4 offsets, whatever the
    // bytes there are.
    for off in [0usize, 14, 18, 22, 34, 38, 54, 58] {
        if let Some(d) = data.get(off..) {
            views(d);
        }
    }
}

fn checksums(d: &[u8]) {
    let s = checksum::data(d);
    black_box(checksum::checksum(d));
    black_box(checksum::verify(d, s));
    let half = d.len() / 2;
    let (a, b) = d.split_at(half);
    black_box(checksum::update_bytes(s, a, b));
    if let (Some(&[a0, a1, a2, a3]), Some(b16)) = (d.get(..4), d.get(..16)) {
        let w = u32::from_be_bytes([a0, a1, a2, a3]);
        black_box(checksum::update_u32(s, w, !w));
        black_box(checksum::udp_update_u32(s, w, w.rotate_left(7)));
        let mut o = [0u8; 16];
        o.copy_from_slice(b16);
        let a6 = std::net::Ipv6Addr::from(o);
        black_box(checksum::update_ipv6_addr(s, &a6, &a6));
        black_box(checksum::udp_update_ipv6_addr(
            s,
            &a6,
            &std::net::Ipv6Addr::LOCALHOST,
        ));
        let a4 = std::net::Ipv4Addr::from(w);
        black_box(checksum::pseudo_header(
            &a4.into(),
            &a6.into(),
            IpProtocol(a1),
            d.len() as u32,
        ));
        black_box(checksum::udp_update_u16(s, a0 as u16, a1 as u16));
    }
}

/// What `parse_frame` returned must agree with the views.
fn cross_check(f: &[u8], h: &Headers) {
    let l3 = h.l3_offset as usize;
    if h.l3 != L3::Other {
        assert_eq!(l3 + h.l3_len as usize + h.padding as usize, f.len());
    }
    if !h.is_ip() {
        return;
    }
    assert!(h.l4_offset as usize >= l3 + 20);
    assert_eq!(h.l4_offset as usize + h.l4_len as usize, h.l3_end());
    let d = &f[l3..];
    match h.l3 {
        L3::Ipv4 => {
            let p = ipv4::Packet::new_checked(d).expect("ipv4 view rejects what parse_frame took");
            assert_eq!(p.version(), 4);
            assert_eq!(p.total_len(), h.l3_len);
            assert_eq!(IpAddr::V4(p.src_addr()), h.src);
            assert_eq!(IpAddr::V4(p.dst_addr()), h.dst);
            assert_eq!(p.protocol(), h.protocol);
            assert_eq!(p.ttl(), h.ttl);
            assert_eq!(p.is_fragment(), h.is_fragment());
            assert_eq!(p.header_len() as usize + l3, h.l4_offset as usize);
        }
        L3::Ipv6 => {
            let p = ipv6::Packet::new_checked(d).expect("ipv6 view rejects what parse_frame took");
            assert_eq!(p.total_len(), h.l3_len as usize);
            assert_eq!(IpAddr::V6(p.dst_addr()), h.dst);
            let c = p.ext_chain().expect("ext chain");
            assert_eq!(c.protocol, h.protocol);
            assert_eq!(c.frag, h.frag);
            assert_eq!(l3 + 40 + c.len, h.l4_offset as usize);
        }
        _ => unreachable!(),
    }
    let l4 = h.l4_bytes(f);
    assert_eq!(l4.len(), h.l4_len as usize);
    if !h.l4_parsed {
        return;
    }
    match h.protocol {
        IpProtocol::TCP => {
            let t = tcp::Packet::new_checked(l4).expect("tcp view");
            assert_eq!((t.src_port(), t.dst_port()), (h.src_port, h.dst_port));
            assert_eq!(t.flags(), h.tcp_flags);
        }
        IpProtocol::UDP if h.frag.is_none() => {
            let u = udp::Packet::new_checked(l4).expect("udp view");
            assert_eq!((u.src_port(), u.dst_port()), (h.src_port, h.dst_port));
        }
        IpProtocol::ICMP => {
            let p = icmpv4::Packet::new_checked(l4).expect("icmp view");
            assert_eq!(p.msg_type().0, h.icmp_type);
            assert_eq!(p.embedded().is_some(), h.inner.is_some());
        }
        IpProtocol::ICMPV6 => {
            let p = icmpv6::Packet::new_unchecked(l4);
            assert!(l4.len() >= 8);
            assert_eq!(p.msg_type().0, h.icmp_type);
        }
        _ => {}
    }
    if let Some(i) = h.inner {
        let start = i.l3_offset as usize;
        assert_eq!(start, h.l4_offset as usize + 8);
        assert_eq!(start + i.len as usize, h.l3_end());
        assert!(i.l4_offset as usize <= h.l3_end());
        let q = &f[start..h.l3_end()];
        match h.l3 {
            L3::Ipv4 => {
                let p = ipv4::Packet::new_checked_truncated(q).expect("quoted ipv4");
                assert_eq!(IpAddr::V4(p.src_addr()), i.src);
                assert_eq!(p.header_len() as usize + start, i.l4_offset as usize);
            }
            _ => {
                let p = ipv6::Packet::new_checked_truncated(q).expect("quoted ipv6");
                assert_eq!(IpAddr::V6(p.src_addr()), i.src);
            }
        }
        if i.has_ports {
            let at = i.l4_offset as usize;
            assert_eq!(
                &f[at..at + 4],
                &[
                    (i.src_port >> 8) as u8,
                    i.src_port as u8,
                    (i.dst_port >> 8) as u8,
                    i.dst_port as u8
                ]
            );
        }
    }
}

/// NAT-style rewrites through the views must keep a valid checksum valid.
fn nat_rewrite(f: &[u8], h: &Headers) {
    // The frame-level helpers, too.
    let mut c = f.to_vec();
    let tcp_ok = h.protocol == IpProtocol::TCP
        && h.l4_parsed
        && tcp::Packet::new_checked(h.l4_bytes(f)).is_ok_and(|t| t.verify_checksum(&h.src, &h.dst));
    let res = rewrite::set_endpoint(&mut c, h, rewrite::Side::Dst, h.src, 4242);
    black_box(rewrite::decrement_ttl(&mut c, h).is_ok());
    if tcp_ok && res.is_ok() {
        let t = tcp::Packet::new_unchecked(h.l4_bytes(&c));
        assert!(t.verify_checksum(&h.src, &h.src));
    }
    if !h.l4_parsed || h.is_fragment() {
        return;
    }
    let mut buf = f.to_vec();
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    let (ip, rest) = buf.split_at_mut(l4);
    let seg = &mut rest[..end - l4];
    let ip = &mut ip[l3..];
    let new4 = std::net::Ipv4Addr::new(198, 51, 100, 7);
    let new6: std::net::Ipv6Addr = "2001:db8:ffff::7"
        .parse()
        .unwrap_or(std::net::Ipv6Addr::LOCALHOST);
    match (h.l3, h.protocol) {
        (L3::Ipv4, IpProtocol::TCP) => {
            let mut t = tcp::Packet::new_unchecked(&mut *seg);
            let ok = t.verify_checksum(&h.src, &h.dst);
            let mut p = ipv4::Packet::new_unchecked(&mut *ip);
            let ip_ok = p.verify_checksum();
            let old = p.rewrite_dst_addr(new4);
            p.decrement_ttl();
            assert_eq!(ip_ok, p.verify_checksum());
            t.update_checksum_ipv4(&old, &new4);
            t.rewrite_dst_port(h.dst_port ^ 0x5a5a);
            assert_eq!(ok, t.verify_checksum(&h.src, &new4.into()));
        }
        (L3::Ipv4, IpProtocol::UDP) => {
            let mut u = udp::Packet::new_unchecked(&mut *seg);
            let ok = u.check_len().is_ok() && u.verify_checksum(&h.src, &h.dst);
            let old = ipv4::Packet::new_unchecked(&mut *ip).rewrite_src_addr(new4);
            u.update_checksum_ipv4(&old, &new4);
            u.rewrite_src_port(h.src_port.wrapping_add(1));
            if ok {
                assert!(u.verify_checksum(&new4.into(), &h.dst));
            }
        }
        (L3::Ipv6, IpProtocol::TCP) => {
            let mut t = tcp::Packet::new_unchecked(&mut *seg);
            let ok = t.verify_checksum(&h.src, &h.dst);
            let mut p = ipv6::Packet::new_unchecked(&mut *ip);
            let old = p.dst_addr();
            p.set_dst_addr(new6);
            t.update_checksum_ipv6(&old, &new6);
            t.rewrite_src_port(h.src_port.rotate_left(3));
            assert_eq!(ok, t.verify_checksum(&h.src, &new6.into()));
        }
        (L3::Ipv6, IpProtocol::UDP) => {
            let mut u = udp::Packet::new_unchecked(&mut *seg);
            let ok = u.check_len().is_ok() && u.verify_checksum(&h.src, &h.dst);
            let mut p = ipv6::Packet::new_unchecked(&mut *ip);
            let old = p.src_addr();
            p.set_src_addr(new6);
            u.update_checksum_ipv6(&old, &new6);
            u.rewrite_dst_port(7);
            if ok {
                assert!(u.verify_checksum(&new6.into(), &h.dst));
            }
        }
        _ => {}
    }
    black_box(&buf);
}

/// Every view's accessors, setters on a copy, and Repr round trips.
fn views(d: &[u8]) {
    if let Ok(p) = ethernet::Packet::new_checked(d) {
        black_box((p.src_addr(), p.dst_addr(), p.ethertype(), p.payload().len()));
        if let Ok(r) = ethernet::Repr::parse(&p) {
            let mut b = [0u8; 14];
            r.emit(&mut ethernet::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            assert_eq!(
                ethernet::Repr::parse(&ethernet::Packet::new_unchecked(&b[..])),
                Ok(r)
            );
        }
    }
    if let Ok(p) = vlan::Packet::new_checked(d) {
        black_box((
            p.tci(),
            p.pcp(),
            p.dei(),
            p.vid(),
            p.ethertype(),
            p.payload(),
        ));
        if let Ok(r) = vlan::Repr::parse(&p) {
            let mut b = [0u8; 4];
            r.emit(&mut vlan::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            assert_eq!(
                vlan::Repr::parse(&vlan::Packet::new_unchecked(&b[..])),
                Ok(r)
            );
        }
    }
    if let Ok(p) = arp::Packet::new_checked(d) {
        black_box((
            p.hardware_type(),
            p.protocol_type(),
            p.operation(),
            p.packet_len(),
            p.source_hardware_addr(),
            p.source_protocol_addr(),
            p.target_hardware_addr(),
            p.target_protocol_addr(),
        ));
        if let Ok(r) = arp::Repr::parse(&p) {
            let mut b = [0u8; 28];
            r.emit(&mut arp::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            assert_eq!(arp::Repr::parse(&arp::Packet::new_unchecked(&b[..])), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = arp::Packet::new_unchecked(&mut c[..]);
        let sha = m.source_hardware_addr().to_vec();
        m.set_target_hardware_addr(&sha).expect("same length");
    }
    ipv4_view(d);
    ipv6_view(d);
    // L4 views under both address families.
    let v4: IpAddr = std::net::Ipv4Addr::new(192, 0, 2, 1).into();
    let v6: IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
    for (s, t) in [(v4, v4), (v6, v6)] {
        l4_views(d, &s, &t);
    }
    icmp_views(d);
}

fn ipv4_view(d: &[u8]) {
    for p in [
        ipv4::Packet::new_checked(d),
        ipv4::Packet::new_checked_truncated(d),
    ]
    .into_iter()
    .flatten()
    {
        black_box((
            p.version(),
            p.header_len(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
            p.ident(),
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
        ));
        black_box((p.options(), p.payload(), p.header(), p.verify_checksum()));
        if let Ok(r) = ipv4::Repr::parse(&p, ChecksumMode::Verify) {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut ipv4::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            let q = ipv4::Packet::new_checked(&b[..]).expect("emitted ipv4");
            assert_eq!(ipv4::Repr::parse(&q, ChecksumMode::Verify), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = ipv4::Packet::new_unchecked(&mut c[..]);
        m.decrement_ttl();
        m.rewrite_src_addr(std::net::Ipv4Addr::BROADCAST);
        m.set_dont_frag(true);
        black_box((m.payload_mut().len(), m.options_mut().len()));
        m.fill_checksum();
        assert!(m.verify_checksum());
    }
}

fn ipv6_view(d: &[u8]) {
    for p in [
        ipv6::Packet::new_checked(d),
        ipv6::Packet::new_checked_truncated(d),
    ]
    .into_iter()
    .flatten()
    {
        black_box((
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.payload_len(),
            p.total_len(),
            p.next_header(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
        ));
        black_box((p.payload(), p.ext_chain().is_ok()));
        for kind in [0u8, 43, 44, 51, 60] {
            black_box(ipv6::ext_header_len(IpProtocol(kind), p.payload()).is_ok());
        }
        if let Ok(f) = ipv6::FragmentHeader::new_checked(p.payload()) {
            black_box((f.next_header(), f.info()));
        }
        if let Ok(r) = ipv6::Repr::parse(&p) {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut ipv6::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            let q = ipv6::Packet::new_checked(&b[..]).expect("emitted ipv6");
            assert_eq!(ipv6::Repr::parse(&q), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = ipv6::Packet::new_unchecked(&mut c[..]);
        m.decrement_hop_limit();
        m.set_flow_label(0xfffff);
        black_box(m.payload_mut().len());
    }
}

fn l4_views(d: &[u8], src: &IpAddr, dst: &IpAddr) {
    if let Ok(p) = tcp::Packet::new_checked(d) {
        black_box((
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.ack_number(),
            p.header_len(),
            p.flags(),
            p.window_len(),
            p.checksum(),
            p.urgent_at(),
            p.options(),
            p.payload(),
        ));
        let ok = p.verify_checksum(src, dst);
        if let Ok(r) = tcp::Repr::parse(&p, src, dst, ChecksumMode::Skip) {
            let mut b = vec![0u8; r.buffer_len()];
            b[tcp::HEADER_LEN..].copy_from_slice(p.payload());
            r.emit(&mut tcp::Packet::new_unchecked(&mut b[..]), src, dst)
                .expect("emit");
            let q = tcp::Packet::new_checked(&b[..]).expect("emitted tcp");
            assert_eq!(tcp::Repr::parse(&q, src, dst, ChecksumMode::Verify), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = tcp::Packet::new_unchecked(&mut c[..]);
        m.rewrite_src_port(1);
        m.rewrite_dst_port(2);
        black_box((m.options_mut().len(), m.payload_mut().len()));
        assert_eq!(ok, m.verify_checksum(src, dst));
    }
    if let Ok(p) = udp::Packet::new_checked(d) {
        black_box((
            p.src_port(),
            p.dst_port(),
            p.len(),
            p.is_empty(),
            p.checksum(),
            p.payload(),
        ));
        let ok = p.verify_checksum(src, dst);
        if let Ok(r) = udp::Repr::parse(&p, src, dst, ChecksumMode::Skip) {
            let mut b = vec![0u8; r.buffer_len()];
            b[udp::HEADER_LEN..].copy_from_slice(p.payload());
            r.emit(&mut udp::Packet::new_unchecked(&mut b[..]), src, dst)
                .expect("emit");
            let q = udp::Packet::new_checked(&b[..]).expect("emitted udp");
            assert_eq!(udp::Repr::parse(&q, src, dst, ChecksumMode::Verify), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = udp::Packet::new_unchecked(&mut c[..]);
        m.rewrite_src_port(1);
        m.rewrite_dst_port(2);
        black_box(m.payload_mut().len());
        assert_eq!(ok, m.verify_checksum(src, dst));
        m.fill_checksum(src, dst);
        assert!(m.verify_checksum(src, dst));
    }
}

fn icmp_views(d: &[u8]) {
    if let Ok(p) = icmpv4::Packet::new_checked(d) {
        black_box((
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
            p.next_hop_mtu(),
            p.pointer(),
            p.rest_of_header(),
            p.data(),
            p.embedded(),
            p.verify_checksum(),
        ));
        if let Some(e) = p.embedded() {
            if let Ok(q) = ipv4::Packet::new_checked_truncated(e) {
                black_box((q.src_addr(), q.payload()));
            }
        }
        if let Ok(r) = icmpv4::Repr::parse(&p, ChecksumMode::Skip) {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut icmpv4::Packet::new_unchecked(&mut b[..]))
                .expect("emit");
            let q = icmpv4::Packet::new_checked(&b[..]).expect("emitted icmp");
            assert_eq!(icmpv4::Repr::parse(&q, ChecksumMode::Verify), Ok(r));
        }
        black_box(icmpv4::quote(d).len());
    }
    let (s, t) = (
        std::net::Ipv6Addr::LOCALHOST,
        std::net::Ipv6Addr::UNSPECIFIED,
    );
    if let Ok(p) = icmpv6::Packet::new_checked(d) {
        black_box((
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
            p.mtu(),
            p.pointer(),
            p.nd_flags(),
            p.target_addr(),
            p.nd_options(),
            p.nd_lladdr(1).is_ok(),
            p.nd_lladdr(2).is_ok(),
            p.data(),
            p.embedded(),
            p.verify_checksum(&s, &t),
        ));
        if let Ok(r) = icmpv6::Repr::parse(&p, &s, &t, ChecksumMode::Skip) {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut icmpv6::Packet::new_unchecked(&mut b[..]), &s, &t)
                .expect("emit");
            let q = icmpv6::Packet::new_checked(&b[..]).expect("emitted icmpv6");
            assert_eq!(icmpv6::Repr::parse(&q, &s, &t, ChecksumMode::Verify), Ok(r));
        }
        let mut c = d.to_vec();
        let mut m = icmpv6::Packet::new_unchecked(&mut c[..]);
        m.set_target_addr(s);
        m.fill_checksum(&s, &t);
        assert!(m.verify_checksum(&s, &t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse::tests::{icmp4_error_frame, tcp4_frame, udp6_vlan_frame};
    use std::time::{Duration, Instant};

    fn seeds() -> Vec<Vec<u8>> {
        let mut v = vec![
            tcp4_frame(b"GET / HTTP/1.1\r\n\r\n", 0),
            tcp4_frame(b"", 6),
            udp6_vlan_frame(),
            icmp4_error_frame(),
        ];
        // ARP request.
        let mut arp = vec![0xffu8; 6];
        arp.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0,
            0, 100,
        ]);
        arp.resize(60, 0);
        v.push(arp);
        // IPv6 NS (ICMPv6) in Ethernet.
        let mut ns = vec![
            0x33, 0x33, 0xff, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 2, 0x86, 0xdd,
        ];
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&32u16.to_be_bytes());
        ip[6] = 58;
        ip[7] = 255;
        ip[8] = 0xfe;
        ip[9] = 0x80;
        ip[23] = 2;
        ip[24..40].copy_from_slice(
            &"ff02::1:ff00:1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        ns.extend_from_slice(&ip);
        let mut icmp = [0u8; 32];
        icmp[0] = 135;
        icmp[8] = 0xfe;
        icmp[9] = 0x80;
        icmp[23] = 1;
        icmp[24] = 1;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 2]);
        ns.extend_from_slice(&icmp);
        v.push(ns);
        v
    }

    #[test]
    fn seeds_pass_cleanly() {
        for s in seeds() {
            parse_frame(&s).expect("seed parses");
            fuzz_one(&s);
        }
    }

    #[test]
    fn small_and_empty_inputs() {
        for n in 0..80 {
            fuzz_one(&vec![0u8; n]);
            fuzz_one(&vec![0xffu8; n]);
        }
    }

    /// Deterministic mutation loop for RVS_FUZZ_SECS seconds (default 2).
    #[test]
    fn mutation_loop() {
        let secs = std::env::var("RVS_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(2.0);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let seeds = seeds();
        let mut rng = XorShift::new(0x5eed_1234_abcd_0001);
        let (mut iters, mut parsed, mut l4) = (0u64, 0u64, 0u64);
        while Instant::now() < deadline {
            let mut buf = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut rng, &mut buf);
            }
            let r = std::panic::catch_unwind(|| fuzz_one(&buf));
            if r.is_err() {
                panic!("fuzz_one panicked on input {:02x?}", buf);
            }
            iters += 1;
            // How deep the mutants get, so a useless corpus shows.
            if let Ok(h) = parse_frame(&buf) {
                parsed += 1;
                l4 += h.l4_parsed as u64;
            }
        }
        eprintln!("wire fuzz: {iters} inputs in {secs}s ({parsed} parsed, {l4} to L4), no panic");
        assert!(iters > 0);
    }
}
