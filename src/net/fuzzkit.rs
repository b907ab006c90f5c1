//! The classifier under a fuzzer (feature `testkit`, and the library's own
//! tests, `fuzz.rs`): [`fuzz_one`] gives mutated frames to [`classify`]
//! for one port with addresses and VIPs of both families, and checks that
//! it never panics and that every reply it writes parses, comes from the
//! port's MAC and one of its addresses, and carries valid checksums.
//!
//! Tooling: it allocates.

use super::{classify, Action, Iface};
use crate::wire::parse::{Headers, L3};
use crate::wire::{icmpv4, icmpv6, ipv4, ipv6, parse_frame, EthernetAddress, IpProtocol};

/// The port's MAC.
pub const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

/// Port 0: 10.0.0.2/24, 2001:db8::2/64 and its link-local address, VIPs
/// 10.0.0.100 and 2001:db8::100 (the seeds in `fuzz/seeds.py` are
/// addressed to these).
pub fn iface() -> Iface {
    Iface::new(0, MAC)
        .with_addr("10.0.0.2/24".parse().unwrap())
        .with_addr("2001:db8::2/64".parse().unwrap())
        .with_link_local()
        .with_vip("10.0.0.100".parse().unwrap())
        .with_vip("2001:db8::100".parse().unwrap())
}

/// One input as it is, then with its IPv4 header and ICMP checksums made
/// right (so that mutants get past the checksum checks).
pub fn fuzz_one(data: &[u8]) {
    let i = iface();
    check(data, &i);
    if let Ok(h) = parse_frame(data) {
        let mut fixed = data.to_vec();
        fix_checksums(&mut fixed, &h);
        if fixed != data {
            check(&fixed, &i);
        }
    }
}

/// Recomputes the ICMP/ICMPv6 and IPv4 header checksums of a parsed frame,
/// so that mutants get past checksum validation into the logic behind it.
pub fn fix_checksums(f: &mut [u8], h: &Headers) {
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    if end > f.len() || l4 > end {
        return;
    }
    match (h.l3, h.protocol) {
        (L3::Ipv4, p) => {
            if let Ok(mut ip) = ipv4::Packet::new_checked(&mut f[l3..end]) {
                ip.fill_checksum();
            }
            if p == IpProtocol::ICMP {
                if let Ok(mut m) = icmpv4::Packet::new_checked(&mut f[l4..end]) {
                    m.fill_checksum();
                }
            }
        }
        (L3::Ipv6, IpProtocol::ICMPV6) => {
            if let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (h.src, h.dst) {
                if f[l4..end].len() >= 8 {
                    icmpv6::Packet::new_unchecked(&mut f[l4..end]).fill_checksum(&s, &d);
                }
            }
        }
        _ => {}
    }
}

/// Runs one input with and without tailroom through [`classify`] for
/// `iface`; checks every reply.
pub fn check(input: &[u8], iface: &Iface) {
    let Ok(h) = parse_frame(input) else {
        return;
    };
    for room in [0usize, 8, 64] {
        let mut buf = input.to_vec();
        buf.resize(input.len() + room, 0);
        let o = classify(&mut buf, &h, iface);
        let Action::Reply { len } = o.action else {
            continue;
        };
        assert!(len <= buf.len(), "reply longer than the buffer");
        let out = &buf[..len];
        let r = parse_frame(out).expect("reply parses");
        assert_eq!(&out[6..12], &iface.mac().0, "reply from our MAC");
        match r.l3 {
            L3::Arp => assert_eq!(&out[r.l3_offset as usize + 6..][..2], &[0, 2]),
            L3::Ipv4 => {
                let ip = ipv4::Packet::new_checked(r.l3_bytes(out)).unwrap();
                assert!(ip.verify_checksum(), "IPv4 header checksum");
                let m = icmpv4::Packet::new_checked(r.l4_bytes(out)).unwrap();
                assert!(m.verify_checksum(), "ICMP checksum");
                assert_eq!(m.msg_type(), icmpv4::Message::ECHO_REPLY);
                assert!(iface.lookup(&r.src).is_some());
            }
            L3::Ipv6 => {
                let ip = ipv6::Packet::new_checked(r.l3_bytes(out)).unwrap();
                let m = icmpv6::Packet::new_checked(r.l4_bytes(out)).unwrap();
                assert!(
                    m.verify_checksum(&ip.src_addr(), &ip.dst_addr()),
                    "ICMPv6 checksum"
                );
                assert!(matches!(
                    m.msg_type(),
                    icmpv6::Message::ECHO_REPLY | icmpv6::Message::NEIGHBOR_ADVERT
                ));
                assert!(iface.lookup(&r.src).is_some());
            }
            L3::Other => panic!("reply of unknown type"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seeds (`fuzz/seeds.py`) pass the checks, and most of
    /// them are answered.
    #[test]
    fn seeds_are_answered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/classify");
        let i = iface();
        let (mut n, mut replies) = (0, 0);
        for e in std::fs::read_dir(dir).unwrap() {
            let frame = std::fs::read(e.unwrap().path()).unwrap();
            fuzz_one(&frame);
            let h = parse_frame(&frame).expect("seed parses");
            let mut buf = frame.clone();
            buf.resize(frame.len() + 64, 0);
            n += 1;
            replies += matches!(classify(&mut buf, &h, &i).action, Action::Reply { .. }) as usize;
        }
        assert!(n >= 10 && replies >= 6, "{replies} replies to {n} seeds");
    }

    /// The port is the one the unit tests use.
    #[test]
    fn same_port_as_the_tests() {
        let (a, b) = (iface(), super::super::testutil::iface());
        assert_eq!(a.mac(), b.mac());
        assert_eq!(a.addrs(), b.addrs());
        let vips = |i: &Iface| {
            let mut v: Vec<_> = i.vips().copied().collect();
            v.sort();
            v
        };
        assert_eq!(vips(&a), vips(&b));
    }
}
