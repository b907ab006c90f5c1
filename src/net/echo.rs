//! ICMP / ICMPv6 echo requests to one of our addresses (own or VIP) turned
//! into the echo reply in place: MACs and IP addresses swapped (the reply
//! goes back to the L2 neighbour the request came from, no route lookup),
//! TTL / hop limit 64, type changed. The IP and ICMPv6 checksums are
//! updated incrementally (RFC 1624: the address swap leaves every sum
//! unchanged, so only the TTL word and the type word are fixed up); the
//! ICMPv4 one is recomputed, since an all-zero reply must carry 0xffff,
//! which the update cannot give (found by fuzzing). The request's ICMP checksum is
//! verified first (and the IPv4 header checksum): a corrupt request gets
//! no reply.
//!
//! Not answered (`EchoInvalid`): fragments (no reassembly here), IPv4
//! options and IPv6 extension headers (their reversal rules are not worth
//! it for ping), a non-unicast source, a nonzero code.

use std::net::IpAddr;

use crate::wire::checksum;
use crate::wire::parse::{Headers, L3};
use crate::wire::{ethernet, icmpv4, icmpv6, ipv4, ipv6};

use super::addr::is_unicast;
use super::iface::Iface;
use super::{DropReason, Outcome};

/// TTL / hop limit of our replies.
pub const REPLY_TTL: u8 = 64;

/// Rewrites the echo request in `buf` (parsed as `h`, addressed to one of
/// `iface`'s addresses; the caller checked) into its reply.
pub fn reply_in_place(buf: &mut [u8], h: &Headers, iface: &Iface) -> Outcome {
    let invalid = Outcome::drop(DropReason::EchoInvalid);
    let frame_len = h.l3_end() + h.padding as usize;
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    if buf.len() < frame_len || end > frame_len || l4 > end {
        return invalid;
    }
    if h.frag.is_some_and(|f| f.more || f.offset != 0)
        || !is_unicast(&h.src)
        || iface.is_own(&h.src)
    {
        return invalid;
    }
    match h.l3 {
        L3::Ipv4 => {
            // A corrupt header must not be answered (an incremental update
            // would keep it corrupt, a recomputation would bless it).
            let header_ok =
                ipv4::Packet::new_checked(&buf[l3..end]).is_ok_and(|p| p.verify_checksum());
            if l4 != l3 + ipv4::HEADER_LEN || !header_ok {
                return invalid;
            }
            let Ok(mut icmp) = icmpv4::Packet::new_checked(&mut buf[l4..end]) else {
                return invalid;
            };
            if icmp.msg_type() != icmpv4::Message::ECHO_REQUEST
                || icmp.msg_code() != 0
                || !icmp.verify_checksum()
            {
                return invalid;
            }
            icmp.set_msg_type(icmpv4::Message::ECHO_REPLY);
            icmp.fill_checksum(); // RFC 1624 gives 0 for an all-zero reply
            let Ok(mut ip) = ipv4::Packet::new_checked(&mut buf[l3..end]) else {
                return invalid;
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            let old = u16::from_be_bytes([ip.ttl(), ip.protocol().0]);
            ip.set_ttl(REPLY_TTL);
            let new = u16::from_be_bytes([REPLY_TTL, ip.protocol().0]);
            let c = checksum::update_u16(ip.checksum(), old, new);
            ip.set_checksum(c);
        }
        L3::Ipv6 => {
            let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
                return invalid;
            };
            if l4 != l3 + ipv6::HEADER_LEN {
                return invalid;
            }
            let Ok(mut icmp) = icmpv6::Packet::new_checked(&mut buf[l4..end]) else {
                return invalid;
            };
            if icmp.msg_type() != icmpv6::Message::ECHO_REQUEST
                || icmp.msg_code() != 0
                || !icmp.verify_checksum(&src, &dst)
            {
                return invalid;
            }
            // The pseudo-header holds both addresses: swapping them keeps
            // its sum.
            let old = u16::from_be_bytes([icmpv6::Message::ECHO_REQUEST.0, 0]);
            let new = u16::from_be_bytes([icmpv6::Message::ECHO_REPLY.0, 0]);
            icmp.set_msg_type(icmpv6::Message::ECHO_REPLY);
            let c = checksum::update_u16(icmp.checksum(), old, new);
            icmp.set_checksum(c);
            let mut ip = ipv6::Packet::new_unchecked(&mut buf[l3..end]);
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_hop_limit(REPLY_TTL);
        }
        _ => return invalid,
    }
    let mut eth = ethernet::Packet::new_unchecked(&mut buf[..]);
    let peer = eth.src_addr();
    eth.set_dst_addr(peer);
    eth.set_src_addr(iface.mac());
    Outcome::reply(frame_len)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Action;
    use super::*;
    use crate::wire::parse_frame;
    use crate::wire::IpProtocol;

    fn run(f: &[u8]) -> (Vec<u8>, Outcome) {
        let mut buf = f.to_vec();
        let h = parse_frame(f).unwrap();
        let o = reply_in_place(&mut buf, &h, &iface());
        (buf, o)
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn v4_reply_every_field() {
        for n in [0usize, 1, 3, 17, 56, 1001] {
            for dst in [OWN4, VIP4] {
                let data = payload(n);
                let req = echo4_frame(OWN4_PEER, dst, &data);
                let (out, o) = run(&req);
                assert_eq!(o, Outcome::reply(req.len()), "len {n}");
                assert_eq!(&out[0..6], &PEER_MAC.0);
                assert_eq!(&out[6..12], &OUR_MAC.0);
                assert_eq!(&out[12..14], &[0x08, 0x00]);
                let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
                assert_eq!(ip.src_addr(), v4(dst));
                assert_eq!(ip.dst_addr(), v4(OWN4_PEER));
                assert_eq!(ip.ttl(), 64);
                assert_eq!(ip.protocol(), IpProtocol::ICMP);
                assert_eq!(ip.ident(), 0x1234);
                assert_eq!(ip.total_len() as usize, 20 + 8 + n);
                assert!(ip.verify_checksum());
                let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum());
                assert_eq!(
                    icmpv4::Repr::parse(&icmp, crate::wire::ChecksumMode::Verify).unwrap(),
                    icmpv4::Repr::EchoReply {
                        ident: 0xbeef,
                        seq_no: 7,
                        data: &data
                    }
                );
                assert!(icmp4_verifies(&out));
                // Only what must change changed: MACs, TTL, IP checksum,
                // addresses, ICMP type and checksum.
                assert_eq!(out.len(), req.len());
                for (i, (a, b)) in out.iter().zip(&req).enumerate() {
                    let may = matches!(i, 0..=11 | 22 | 24..=33 | 34 | 36 | 37);
                    assert!(may || a == b, "byte {i} changed");
                }
            }
        }
    }

    #[test]
    fn v4_padding_kept() {
        let mut req = echo4_frame(OWN4_PEER, OWN4, b"a");
        req.resize(60, 0x55);
        let (out, o) = run(&req);
        assert_eq!(o, Outcome::reply(60));
        assert_eq!(&out[14 + 29..], &[0x55; 17]);
        assert!(icmp4_verifies(&out));
    }

    #[test]
    fn v6_reply_every_field() {
        for n in [0usize, 1, 5, 56, 999] {
            for dst in [OWN6, VIP6] {
                let data = payload(n);
                let req = echo6_frame(OWN6_PEER, dst, &data);
                let (out, o) = run(&req);
                assert_eq!(o, Outcome::reply(req.len()));
                assert_eq!(&out[0..6], &PEER_MAC.0);
                assert_eq!(&out[6..12], &OUR_MAC.0);
                let ip = ipv6::Packet::new_checked(&out[14..]).unwrap();
                assert_eq!(ip.src_addr(), v6(dst));
                assert_eq!(ip.dst_addr(), v6(OWN6_PEER));
                assert_eq!(ip.hop_limit(), 64);
                assert_eq!(ip.next_header(), IpProtocol::ICMPV6);
                assert_eq!(ip.flow_label(), 0x12345);
                assert_eq!(ip.payload_len() as usize, 8 + n);
                let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
                assert_eq!(
                    icmpv6::Repr::parse(
                        &icmp,
                        &ip.src_addr(),
                        &ip.dst_addr(),
                        crate::wire::ChecksumMode::Verify
                    )
                    .unwrap(),
                    icmpv6::Repr::EchoReply {
                        ident: 0xbeef,
                        seq_no: 7,
                        data: &data
                    }
                );
            }
        }
    }

    #[test]
    fn not_answered() {
        let invalid = Outcome::drop(DropReason::EchoInvalid);
        // Bad ICMP checksum.
        let mut f = echo4_frame(OWN4_PEER, OWN4, b"xyz");
        f[36] ^= 1;
        assert_eq!(run(&f).1, invalid);
        let mut f = echo6_frame(OWN6_PEER, OWN6, b"xyz");
        f[56] ^= 1;
        assert_eq!(run(&f).1, invalid);
        // Broadcast / multicast / unspecified sources.
        for src in ["255.255.255.255", "0.0.0.0", "224.0.0.5", OWN4] {
            assert_eq!(run(&echo4_frame(src, OWN4, b"x")).1, invalid, "{src}");
        }
        assert_eq!(run(&echo6_frame("ff02::1", OWN6, b"x")).1, invalid);
        // Fragment.
        let mut f = echo4_frame(OWN4_PEER, OWN4, b"xyz");
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_frag(false, true, 0);
        p.fill_checksum();
        assert_eq!(run(&f).1, invalid);
        // IPv4 options.
        let mut f = echo4_frame(OWN4_PEER, OWN4, b"xyzw");
        f.splice(34..34, [1u8, 1, 1, 0]); // NOP NOP NOP EOL
        f[14] = 0x46;
        let tl = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&tl.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        assert_eq!(run(&f).1, invalid);
        // Bad IPv4 header checksum.
        let mut f = echo4_frame(OWN4_PEER, OWN4, b"xyz");
        f[24] ^= 0x10;
        assert_eq!(run(&f).1, invalid);
        // Nonzero code.
        let mut f = echo4_frame(OWN4_PEER, OWN4, b"");
        f[35] = 1;
        icmpv4::Packet::new_unchecked(&mut f[34..]).fill_checksum();
        assert_eq!(run(&f).1, invalid);
    }

    #[test]
    fn through_classify() {
        let mut f = echo4_frame(OWN4_PEER, VIP4, b"hello");
        let h = parse_frame(&f).unwrap();
        let o = super::super::classify(&mut f, &h, &iface());
        assert_eq!(o.action, Action::Reply { len: f.len() });
        assert!(icmp4_verifies(&f));
        assert_eq!(&f[30..34], &v4(OWN4_PEER).octets());
    }
}
