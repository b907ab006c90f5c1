//! In-place header rewrites on a parsed frame, with incremental (RFC 1624)
//! checksum fixups: the primitives NAT and every forwarding method use.
//!
//! Each takes the frame and the [`Headers`] that `parse_frame` returned for
//! it (unchanged since). Only the bytes being changed and the checksums
//! covering them are touched.

use std::net::{IpAddr, Ipv4Addr};

use super::checksum;
use super::parse::{Headers, L3};
use super::{icmpv6, ipv4, ipv6, tcp, udp};
use super::{Error, Field, IpProtocol, Result};

/// Which endpoint of the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Src,
    Dst,
}

impl Side {
    /// The source or the destination field of a header.
    #[inline(always)]
    fn pick(self, src: Field, dst: Field) -> Field {
        match self {
            Side::Src => src,
            Side::Dst => dst,
        }
    }
}

/// Where the L4 checksum sits, if the L4 header has one that covers the
/// pseudo-header.
#[inline]
fn l4_checksum_at(h: &Headers) -> Option<usize> {
    let at = h.l4_offset as usize;
    match h.protocol {
        IpProtocol::TCP => Some(at + tcp::field::CHECKSUM.start),
        IpProtocol::UDP => Some(at + udp::field::CHECKSUM.start),
        IpProtocol::ICMPV6 if h.l3 == L3::Ipv6 => Some(at + icmpv6::field::CHECKSUM.start),
        _ => None,
    }
}

#[inline]
fn rd16(f: &[u8], at: usize) -> Result<u16> {
    match f.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(Error::Truncated),
    }
}

#[inline]
fn wr16(f: &mut [u8], at: usize, v: u16) -> Result<()> {
    match f.get_mut(at..at + 2) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            Ok(())
        }
        None => Err(Error::Truncated),
    }
}

/// Sets the source or destination address and, for TCP/UDP, the port.
/// Fixes the IPv4 header checksum and the TCP/UDP/ICMPv6 checksum (a zero
/// UDP checksum stays zero). `port` is ignored for protocols without ports.
///
/// `Unsupported` for non-IP frames, a family mismatch, fragments (the L4
/// checksum is in the first fragment only: reassemble first), and SCTP port
/// changes (its CRC32c would need recomputing).
pub fn set_endpoint(
    frame: &mut [u8],
    h: &Headers,
    side: Side,
    addr: IpAddr,
    port: u16,
) -> Result<()> {
    if h.is_fragment() || !h.is_ip() {
        return Err(Error::Unsupported);
    }
    let l3 = h.l3_offset as usize;
    let ck = l4_checksum_at(h);
    // Every change (address, port) adds ~old + new per 16-bit word to one
    // one's-complement delta (RFC 1624), applied to the L4 checksum once.
    let mut delta: u64 = 0;
    match (h.l3, addr) {
        (L3::Ipv4, IpAddr::V4(new)) => {
            let f = side.pick(ipv4::field::SRC_ADDR, ipv4::field::DST_ADDR);
            let at = l3 + f.start..l3 + f.end;
            let old_b: [u8; 4] = match frame.get(at.clone()) {
                Some(&[a, b, c, d]) => [a, b, c, d],
                _ => return Err(Error::Truncated),
            };
            let (old, new) = (u32::from_be_bytes(old_b), u32::from(new));
            let ck_at = l3 + ipv4::field::CHECKSUM.start;
            let ipc = checksum::update_u32(rd16(frame, ck_at)?, old, new);
            frame[at].copy_from_slice(&new.to_be_bytes());
            wr16(frame, ck_at, ipc)?;
            delta += word_delta(old >> 16, new >> 16) + word_delta(old & 0xffff, new & 0xffff);
        }
        (L3::Ipv6, IpAddr::V6(new)) => {
            let f = side.pick(ipv6::field::SRC_ADDR, ipv6::field::DST_ADDR);
            let Some(slot) = frame.get_mut(l3 + f.start..l3 + f.end) else {
                return Err(Error::Truncated);
            };
            let new = new.octets();
            for (o, n) in slot.chunks_exact(2).zip(new.chunks_exact(2)) {
                delta += word_delta(
                    u16::from_be_bytes([o[0], o[1]]) as u32,
                    u16::from_be_bytes([n[0], n[1]]) as u32,
                );
            }
            slot.copy_from_slice(&new);
        }
        _ => return Err(Error::Unsupported),
    }
    if h.protocol.has_ports() && h.l4_parsed {
        if h.protocol == IpProtocol::SCTP {
            return Err(Error::Unsupported);
        }
        // TCP, UDP and SCTP have their ports at the same place.
        let at = h.l4_offset as usize + side.pick(tcp::field::SRC_PORT, tcp::field::DST_PORT).start;
        let old = rd16(frame, at)?;
        wr16(frame, at, port)?;
        delta += word_delta(old as u32, port as u32);
    }
    if let Some(at) = ck {
        let c = rd16(frame, at)?;
        let is_udp = h.protocol == IpProtocol::UDP;
        let out = if is_udp && c == 0 && h.l3 == L3::Ipv4 {
            // IPv4 UDP without a checksum stays without one.
            0
        } else {
            let v = apply_delta(c, delta);
            if is_udp {
                checksum::udp_wire(v)
            } else {
                v
            }
        };
        wr16(frame, at, out)?;
    }
    Ok(())
}

/// The common NAT rewrite in one pass: in an unfragmented IPv4 TCP or UDP
/// datagram with a TTL above 1, the `side` endpoint becomes `addr:port` and
/// the TTL drops by one, with a single update of each checksum. The bytes
/// are exactly those of [`set_endpoint`] then [`decrement_ttl`]. Returns
/// false, having written nothing, for any other packet: the caller then
/// takes those two general functions.
#[inline]
pub fn nat4_ttl(frame: &mut [u8], h: &Headers, side: Side, addr: Ipv4Addr, port: u16) -> bool {
    if h.l3 != L3::Ipv4 || h.frag.is_some() || !h.l4_parsed {
        return false;
    }
    let (ck_at, is_udp) = match h.protocol {
        IpProtocol::TCP => (tcp::field::CHECKSUM.start, false),
        IpProtocol::UDP => (udp::field::CHECKSUM.start, true),
        _ => return false,
    };
    let (l3, l4) = (h.l3_offset as usize, h.l4_offset as usize);
    if l4 > frame.len() {
        return false;
    }
    // Fixed-size views: the offsets below need no bounds checks. The L4
    // view ends with the TCP checksum (the UDP header is shorter).
    const IP_LEN: usize = ipv4::HEADER_LEN;
    const L4_LEN: usize = tcp::field::CHECKSUM.end;
    let (head, tail) = frame.split_at_mut(l4);
    let Some(Ok(ip)) = head
        .get_mut(l3..l3 + IP_LEN)
        .map(<&mut [u8; IP_LEN]>::try_from)
    else {
        return false;
    };
    let Some(Ok(l4h)) = tail.get_mut(..L4_LEN).map(<&mut [u8; L4_LEN]>::try_from) else {
        // A UDP header (8 bytes) in a frame shorter than 18 after it: rare
        // (Ethernet padding makes 60-byte frames); the general path has it.
        return false;
    };
    if ip[ipv4::field::TTL] <= 1 {
        return false;
    }
    // Offsets, not ranges: one choice of start, fixed widths (a chosen
    // range costs bounds checks). TCP and UDP have their ports at the
    // same place.
    let (a_at, p_at) = match side {
        Side::Src => (ipv4::field::SRC_ADDR.start, tcp::field::SRC_PORT.start),
        Side::Dst => (ipv4::field::DST_ADDR.start, tcp::field::DST_PORT.start),
    };
    const ADDR: usize = ipv4::field::SRC_ADDR.end - ipv4::field::SRC_ADDR.start;
    const WORD: usize = tcp::field::SRC_PORT.end - tcp::field::SRC_PORT.start;
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]) as u64;
    let old_a = u32::from_be_bytes([ip[a_at], ip[a_at + 1], ip[a_at + 2], ip[a_at + 3]]);
    let new_a = u32::from(addr);
    let old_p = be16(l4h, p_at);
    // ~old + new of the address words, shared by both checksums.
    let addr_d = (!(old_a >> 16) & 0xffff) as u64
        + (!old_a & 0xffff) as u64
        + (new_a >> 16) as u64
        + (new_a & 0xffff) as u64;
    let ttl_w = be16(ip, ipv4::field::TTL_PROTO.start);
    let ip_ck = be16(ip, ipv4::field::CHECKSUM.start);
    let ip_s = (!ip_ck & 0xffff) + addr_d + (!ttl_w & 0xffff) + (ttl_w - 0x100);
    let ipc = !checksum::fold(ip_s);
    ip[ipv4::field::TTL] -= 1;
    ip[ipv4::field::CHECKSUM].copy_from_slice(&ipc.to_be_bytes());
    ip[a_at..a_at + ADDR].copy_from_slice(&new_a.to_be_bytes());
    l4h[p_at..p_at + WORD].copy_from_slice(&port.to_be_bytes());
    let c = be16(l4h, ck_at);
    if !(is_udp && c == 0) {
        let s = (!c & 0xffff) + addr_d + (!old_p & 0xffff) + port as u64;
        let v = !checksum::fold(s);
        let v = if is_udp { checksum::udp_wire(v) } else { v };
        l4h[ck_at..ck_at + WORD].copy_from_slice(&v.to_be_bytes());
    }
    true
}

/// ~old + new for one 16-bit word, in one's-complement arithmetic.
#[inline]
fn word_delta(old: u32, new: u32) -> u64 {
    (!old & 0xffff) as u64 + new as u64
}

/// HC' = ~(~HC + delta), folded to 16 bits.
#[inline]
fn apply_delta(c: u16, delta: u64) -> u16 {
    let mut s = (!c) as u64 + delta;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Decrements the TTL / hop limit (fixing the IPv4 header checksum) and
/// returns the new value; a packet that arrives with 0 or 1 must be answered
/// with time-exceeded instead of forwarded. `Unsupported` for non-IP.
pub fn decrement_ttl(frame: &mut [u8], h: &Headers) -> Result<u8> {
    let l3 = h.l3_offset as usize;
    match h.l3 {
        L3::Ipv4 => {
            // TTL and protocol: one checksum word.
            let w_at = l3 + ipv4::field::TTL_PROTO.start;
            let ck_at = l3 + ipv4::field::CHECKSUM.start;
            let old = rd16(frame, w_at)?;
            let ttl = ((old >> 8) as u8).saturating_sub(1);
            let new = ((ttl as u16) << 8) | (old & 0xff);
            let c = checksum::update_u16(rd16(frame, ck_at)?, old, new);
            wr16(frame, w_at, new)?;
            wr16(frame, ck_at, c)?;
            Ok(ttl)
        }
        L3::Ipv6 => {
            let Some(b) = frame.get_mut(l3 + ipv6::field::HOP_LIMIT) else {
                return Err(Error::Truncated);
            };
            *b = b.saturating_sub(1);
            Ok(*b)
        }
        _ => Err(Error::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse::parse_frame;
    use crate::wire::parse::tests::{icmp4_error_frame, tcp4_frame, udp6_vlan_frame};
    use crate::wire::{ipv4, tcp, udp};
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn nat_tcp4_dnat() {
        let mut f = tcp4_frame(b"payload", 0);
        let h = parse_frame(&f).unwrap();
        let rs = Ipv4Addr::new(192, 168, 10, 5);
        set_endpoint(&mut f, &h, Side::Dst, rs.into(), 8080).unwrap();
        let h2 = parse_frame(&f).unwrap();
        assert_eq!((h2.dst, h2.dst_port), (IpAddr::V4(rs), 8080));
        assert!(ipv4::Packet::new_checked(h2.l3_bytes(&f))
            .unwrap()
            .verify_checksum());
        assert!(tcp::Packet::new_checked(h2.l4_bytes(&f))
            .unwrap()
            .verify_checksum(&h2.src, &h2.dst));
        assert_eq!(decrement_ttl(&mut f, &h2), Ok(63));
        assert!(ipv4::Packet::new_checked(h2.l3_bytes(&f))
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn nat_udp6_snat() {
        let mut f = udp6_vlan_frame();
        let h = parse_frame(&f).unwrap();
        let vip: Ipv6Addr = "2001:db8:100::1".parse().unwrap();
        set_endpoint(&mut f, &h, Side::Src, vip.into(), 53).unwrap();
        let h2 = parse_frame(&f).unwrap();
        assert_eq!((h2.src, h2.src_port), (IpAddr::V6(vip), 53));
        assert!(udp::Packet::new_checked(h2.l4_bytes(&f))
            .unwrap()
            .verify_checksum(&h2.src, &h2.dst));
        assert_eq!(decrement_ttl(&mut f, &h2), Ok(63));
    }

    #[test]
    fn refusals() {
        let mut f = tcp4_frame(b"", 0);
        let h = parse_frame(&f).unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            set_endpoint(&mut f, &h, Side::Src, v6, 1),
            Err(Error::Unsupported)
        );
        let mut g = f.clone();
        let mut p = ipv4::Packet::new_unchecked(&mut g[14..]);
        p.set_frag(false, true, 0);
        p.fill_checksum();
        let h = parse_frame(&g).unwrap();
        assert_eq!(
            set_endpoint(&mut g, &h, Side::Src, Ipv4Addr::LOCALHOST.into(), 1),
            Err(Error::Unsupported)
        );
        // A Headers for another, longer frame: errors, no panic.
        let h = parse_frame(&tcp4_frame(&[0; 64], 0)).unwrap();
        let mut short = [0u8; 20];
        assert!(set_endpoint(&mut short, &h, Side::Dst, Ipv4Addr::LOCALHOST.into(), 1).is_err());
        assert!(decrement_ttl(&mut short[..], &h).is_err());
    }

    #[test]
    fn icmp_address_only() {
        // ICMPv4 has no pseudo-header: only the IP checksum changes.
        let mut f = icmp4_error_frame();
        let h = parse_frame(&f).unwrap();
        let before = f[34..].to_vec();
        set_endpoint(&mut f, &h, Side::Dst, Ipv4Addr::new(1, 2, 3, 4).into(), 9).unwrap();
        assert_eq!(&f[34..], &before[..]);
        assert!(ipv4::Packet::new_checked(&f[14..])
            .unwrap()
            .verify_checksum());
    }
}
