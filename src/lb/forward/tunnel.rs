//! TUN (`-i`, Tunnel): the packet, TTL decremented, is wrapped in a new IP
//! header to the real server, with a UDP + GUE or a GRE header between them
//! for `--tun-type gue|gre`.
//!
//! The outer family is the real server's: IPv4 (protocol 4 for an IPv4
//! packet, 41 for IPv6) or IPv6 (next header 4 / 41); the kernel allows a
//! real server of the other family in tunnel mode only, and so does this.
//! Outer header: source = the balancer's address of that family, destination
//! = the real server, TTL / hop limit = the inner one after decrement,
//! DSCP copied and ECN per RFC 6040 (CE becomes ECT(0)); IPv4: DF copied
//! from an IPv4 packet and set for IPv6, a fresh id from `Env`; IPv6: the
//! inner flow label (from a flow hash for an IPv4 packet).
//!
//! GUE (`ipvs_gue_encap`): UDP to `--tun-port` from a source port in
//! 32768..61000 derived from a hash of the inner flow (entropy for the
//! receiver's RSS), then a 4-byte GUE header: version 0, no options, proto
//! = 4 / 41. UDP checksum: `nocsum` 0 (on IPv6 too, as the kernel does,
//! RFC 6935); `csum` a full checksum. `remcsum`: the kernel adds the remote
//! checksum offload option only when the inner checksum is still partial
//! (a locally generated packet); a forwarded packet's inner checksum is
//! complete, so for forwarding the kernel sends exactly what `csum` does,
//! and so does rvs.
//!
//! GRE (`ipvs_gre_encap`): 4 bytes (flags 0, protocol 0x0800 / 0x86dd), or
//! 8 with the C flag and checksum for `csum`. `remcsum` has no meaning for
//! GRE: 4 bytes, as the kernel.
//!
//! Checksums over the payload cost no pass over it: the inner IP header is
//! summed (20-60 bytes), and the inner TCP/UDP/ICMP segment's sum is taken
//! from its own checksum (its sum is the complement of its pseudo-header's
//! when it verifies; the identity behind Linux's local checksum offload).
//! A segment that does not verify thus yields an outer checksum that does
//! not verify either, so the real server drops the packet at the outer
//! layer instead of the inner: same outcome. Fragments, zero UDP checksums,
//! IPv6 packets with extension headers and other protocols are summed in
//! full.

use std::net::{IpAddr, Ipv4Addr};

use crate::lb::dest::{FwdMethod, TunCsum, TunType};
use crate::wire::buf::PacketBuf;
use crate::wire::ethernet::{self, field as eth};
use crate::wire::parse::{Headers, L3};
use crate::wire::{checksum, ipv4, ipv6, rewrite, udp, EtherType, IpProtocol};

use super::{icmp, insert_gap, rd16, set_macs, wr16, Applied, DropReason, Env, ETHERTYPE_LEN};

/// A real server's tunnel settings (`--tun-type`, `--tun-port`, `--tun-*csum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunType,
    /// GUE's UDP destination port.
    pub port: u16,
    pub csum: TunCsum,
}

impl Tunnel {
    /// The settings of a `Tunnel` forwarding method; `None` for the others.
    #[inline]
    pub fn of(m: FwdMethod) -> Option<Tunnel> {
        match m {
            FwdMethod::Tunnel {
                tun_type,
                port,
                csum,
            } => Some(Tunnel {
                kind: tun_type,
                port,
                csum,
            }),
            _ => None,
        }
    }

    /// Bytes between the outer IP header and the inner packet.
    #[inline]
    pub fn encap_len(&self) -> usize {
        match self.kind {
            TunType::Ipip => 0,
            TunType::Gue => 8 + 4,
            TunType::Gre if self.csum == TunCsum::Csum => 8,
            TunType::Gre => 4,
        }
    }

    /// Whether the UDP / GRE checksum is computed.
    #[inline]
    pub fn checksummed(&self) -> bool {
        match self.kind {
            TunType::Ipip => false,
            TunType::Gue => self.csum != TunCsum::NoCsum,
            TunType::Gre => self.csum == TunCsum::Csum,
        }
    }

    /// Total bytes added in front of a packet sent to `daddr`.
    #[inline]
    pub fn overhead(&self, daddr: &IpAddr) -> usize {
        let ip = if daddr.is_ipv4() { 20 } else { 40 };
        ip + self.encap_len()
    }
}

/// GUE source ports: the kernel's default local port range.
pub const GUE_SPORT_MIN: u16 = 32768;
pub const GUE_SPORT_END: u16 = 61000;

/// A hash of the inner flow (addresses, protocol, ports) for the GUE source
/// port and the IPv6 flow label of an IPv4 packet.
pub fn flow_hash(h: &Headers) -> u32 {
    #[inline]
    fn fold(a: &IpAddr) -> u64 {
        match a {
            IpAddr::V4(a) => u32::from(*a) as u64,
            IpAddr::V6(a) => {
                let x = u128::from(*a);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
            }
        }
    }
    let mut x = fold(&h.src)
        ^ fold(&h.dst).rotate_left(32)
        ^ ((h.src_port as u64) << 16 | h.dst_port as u64).rotate_left(8)
        ^ h.protocol.0 as u64;
    // murmur3's 64-bit finalizer.
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32
}

/// The GUE source port for a flow hash (as `udp_flow_src_port`).
#[inline]
pub fn gue_sport(hash: u32) -> u16 {
    let span = (GUE_SPORT_END - GUE_SPORT_MIN) as u64;
    GUE_SPORT_MIN + ((hash as u64 * span) >> 32) as u16
}

/// RFC 6040 normal-mode encapsulation of the ECN field: copied, but CE
/// becomes ECT(0).
#[inline]
fn ecn_encap(tos: u8) -> u8 {
    if tos & 3 == 3 {
        (tos & !3) | 2
    } else {
        tos
    }
}

/// The one's complement sum of the L4 segment when it can be had from its
/// checksum: `!pseudo-header` for a whole TCP/UDP/ICMPv6 segment, 0xffff
/// (zero) for ICMPv4 (no pseudo-header). `None`: sum it in full.
fn segment_sum_lco(f: &[u8], h: &Headers, seg: &[u8]) -> Option<u16> {
    if h.frag.is_some_and(|fr| fr.more || fr.offset != 0) || !h.l4_parsed {
        return None;
    }
    let len = seg.len();
    let v6 = h.l3 == L3::Ipv6;
    // With IPv6 extension headers a routing header may make the
    // pseudo-header's destination another address: sum in full.
    if v6 && h.l4_offset as usize != h.l3_offset as usize + ipv6::HEADER_LEN {
        return None;
    }
    match h.protocol {
        IpProtocol::TCP => {}
        IpProtocol::UDP => {
            let ulen = rd16(f, h.l4_offset as usize + udp::field::LENGTH.start).ok()? as usize;
            let ck = rd16(f, h.l4_offset as usize + udp::field::CHECKSUM.start).ok()?;
            if ck == 0 || ulen != len {
                return None;
            }
        }
        IpProtocol::ICMPV6 if v6 => {}
        IpProtocol::ICMP if !v6 => return Some(0xffff),
        _ => return None,
    }
    Some(!checksum::pseudo_header(
        &h.src, &h.dst, h.protocol, len as u32,
    ))
}

/// The one's complement sum of the inner datagram (its L4 part at an even
/// offset, since IP headers are multiples of 4 bytes).
fn datagram_sum(f: &[u8], h: &Headers) -> Result<u16, DropReason> {
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    let (Some(head), Some(seg)) = (f.get(l3..l4), f.get(l4..end)) else {
        return Err(DropReason::BadHeaders);
    };
    let seg_sum = segment_sum_lco(f, h, seg).unwrap_or_else(|| checksum::data(seg));
    Ok(checksum::combine(&[checksum::data(head), seg_sum]))
}

/// The DF bit in the flags byte (the high byte of the flags and offset).
const DF_BYTE: u8 = (ipv4::DF >> 8) as u8;

/// The outer IPv4 header's bytes before the addresses.
const OUTER4_HEAD: usize = ipv4::field::SRC_ADDR.start;

/// The first [`OUTER4_HEAD`] bytes of an outer IPv4 header without options
/// (checksum 0, to be filled in once the addresses follow).
#[inline]
fn outer4_head(
    tos: u8,
    total: u16,
    id: u16,
    df: u8,
    ttl: u8,
    proto: IpProtocol,
) -> [u8; OUTER4_HEAD] {
    let [t0, t1] = total.to_be_bytes();
    let [i0, i1] = id.to_be_bytes();
    [0x45, tos, t0, t1, i0, i1, df, 0, ttl, proto.0, 0, 0]
}

/// Encapsulates the packet toward the real server `daddr`. The caller has
/// checked the headers and that the TTL is above 1.
pub fn apply<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    daddr: IpAddr,
    tun: &Tunnel,
    env: &Env,
) -> Result<Applied, DropReason> {
    let inner_v6 = h.l3 == L3::Ipv6;
    let outer_v6 = daddr.is_ipv6();
    if (outer_v6 && env.local_v6.is_unspecified()) || (!outer_v6 && env.local_v4.is_unspecified()) {
        return Err(DropReason::NoLocalAddr);
    }
    let ip_len = if outer_v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    let encap = tun.encap_len();
    let overhead = ip_len + encap;
    let inner_len = h.l3_len as usize;
    let total = inner_len + overhead;
    // Too big with DF clear: the outer IPv4 packet is sent in fragments,
    // as the kernel's tunnel transmit does (the outer DF copies the
    // inner's). An outer IPv6 header is not fragmented here.
    let fragment = total > env.mtu as usize;
    if fragment {
        if inner_v6 || h.dont_frag {
            return icmp::too_big(buf, h, env, (env.mtu as usize).saturating_sub(overhead));
        }
        if outer_v6 || total > u16::MAX as usize {
            return Err(DropReason::TooBig);
        }
    }

    let l3 = h.l3_offset as usize;
    let f = buf.data_mut();
    let ttl = rewrite::decrement_ttl(f, h)?;
    let (Some(&b0), Some(&b1), Some(&b2), Some(&b3)) =
        (f.get(l3), f.get(l3 + 1), f.get(l3 + 2), f.get(l3 + 3))
    else {
        return Err(DropReason::BadHeaders);
    };
    let (tos, flow) = if inner_v6 {
        (
            (b0 << 4) | (b1 >> 4),
            u32::from_be_bytes([0, b1 & 0x0f, b2, b3]),
        )
    } else if outer_v6 {
        (b1, flow_hash(h) & 0x000f_ffff)
    } else {
        // The flow label exists only in an IPv6 outer header.
        (b1, 0)
    };
    let tos = ecn_encap(tos);
    let inner_sum = if tun.checksummed() {
        datagram_sum(f, h)?
    } else {
        0
    };
    let sport = match tun.kind {
        TunType::Gue => gue_sport(flow_hash(h)),
        _ => 0,
    };

    if h.padding > 0 && !buf.trim(h.padding as usize) {
        return Err(DropReason::BadHeaders);
    }
    insert_gap(buf, l3, overhead)?;
    let f = buf.data_mut();
    let et = if outer_v6 {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    wr16(f, l3 - ETHERTYPE_LEN, et.0)?;
    set_macs(f, env.dst_mac, env.src_mac)?;
    let Some(hdrs) = f.get_mut(l3..l3 + overhead) else {
        return Err(DropReason::BadHeaders);
    };
    let (ip, enc) = hdrs.split_at_mut(ip_len);
    let inner_proto = if inner_v6 {
        IpProtocol::IPV6
    } else {
        IpProtocol::IPIP
    };
    let proto = match tun.kind {
        TunType::Ipip => inner_proto,
        TunType::Gue => IpProtocol::UDP,
        TunType::Gre => IpProtocol::GRE,
    };
    let (src, dst): (IpAddr, IpAddr) = match daddr {
        IpAddr::V4(d) => {
            let df = if inner_v6 || h.dont_frag { DF_BYTE } else { 0 };
            let id = env.next_ip_id();
            ip[..OUTER4_HEAD].copy_from_slice(&outer4_head(tos, total as u16, id, df, ttl, proto));
            ip[ipv4::field::SRC_ADDR].copy_from_slice(&env.local_v4.octets());
            ip[ipv4::field::DST_ADDR].copy_from_slice(&d.octets());
            let c = checksum::checksum(ip);
            ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            (env.local_v4.into(), d.into())
        }
        IpAddr::V6(d) => {
            let plen = (total - 40) as u16;
            let w = (6u32 << 28) | ((tos as u32) << 20) | flow;
            ip[ipv6::field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&plen.to_be_bytes());
            ip[ipv6::field::NEXT_HEADER] = proto.0;
            ip[ipv6::field::HOP_LIMIT] = ttl;
            ip[ipv6::field::SRC_ADDR].copy_from_slice(&env.local_v6.octets());
            ip[ipv6::field::DST_ADDR].copy_from_slice(&d.octets());
            (env.local_v6.into(), d.into())
        }
    };
    match tun.kind {
        TunType::Ipip => {}
        TunType::Gue => {
            let ulen = (encap + inner_len) as u16;
            enc.copy_from_slice(&[
                (sport >> 8) as u8,
                sport as u8,
                (tun.port >> 8) as u8,
                tun.port as u8,
                (ulen >> 8) as u8,
                ulen as u8,
                0,
                0,
                0, // GUE: version 0, C 0, hlen 0
                inner_proto.0,
                0,
                0,
            ]);
            if tun.checksummed() {
                let ph = checksum::pseudo_header(&src, &dst, IpProtocol::UDP, ulen as u32);
                let s = checksum::combine(&[ph, checksum::data(enc), inner_sum]);
                enc[udp::field::CHECKSUM].copy_from_slice(&checksum::udp_wire(!s).to_be_bytes());
            }
        }
        TunType::Gre => {
            let et: u16 = if inner_v6 { 0x86dd } else { 0x0800 };
            let c = tun.checksummed();
            enc[..4].copy_from_slice(&[if c { 0x80 } else { 0 }, 0, (et >> 8) as u8, et as u8]);
            if c {
                enc[4..8].copy_from_slice(&[0; 4]);
                let s = checksum::combine(&[checksum::data(enc), inner_sum]);
                enc[4..6].copy_from_slice(&(!s).to_be_bytes());
            }
        }
    }
    Ok(if fragment {
        Applied::Fragment
    } else {
        Applied::Transmit
    })
}

/// [`apply`]'s common IPIP case, without its general checks: an untagged
/// IPv4 packet (TTL above 1, not an ICMP error) to an IPv4 real server
/// `daddr`, within the MTU once wrapped, in a buffer with headroom for
/// the outer header, with `env.local_v4` known. Writes exactly what
/// `apply` and the MAC rewrite would and returns true; returns false with
/// the buffer untouched for anything else. `h` must be what the parser
/// returned for this frame.
pub fn ipip4_direct<B: PacketBuf>(buf: &mut B, h: &Headers, daddr: Ipv4Addr, env: &Env) -> bool {
    const L2: usize = ethernet::HEADER_LEN;
    const OUTER: usize = ipv4::HEADER_LEN;
    let inner_len = h.l3_len as usize;
    let total = inner_len + OUTER;
    if h.l3 != L3::Ipv4
        || h.l3_offset as usize != L2
        || h.ttl <= 1
        || h.is_icmp_error()
        || env.local_v4.is_unspecified()
        || total > env.mtu as usize
        || buf.headroom() < OUTER
        || buf.len() != L2 + inner_len + h.padding as usize
    {
        return false;
    }
    // Every step below succeeds on such a frame (lengths and headroom
    // were checked), so nothing is written unless all of it is.
    let f = buf.data_mut();
    let Some(&tos) = f.get(L2 + ipv4::field::DSCP_ECN) else {
        return false;
    };
    let tos = ecn_encap(tos);
    let Ok(ttl) = rewrite::decrement_ttl(f, h) else {
        return false;
    };
    if (h.padding > 0 && !buf.trim(h.padding as usize)) || buf.prepend(OUTER).is_none() {
        return false;
    }
    // The Ethernet header is written afresh in front of the gap rather
    // than moved: both MACs change and the ethertype stays IPv4.
    let Some(Ok(hdr)) = buf
        .data_mut()
        .get_mut(..L2 + OUTER)
        .map(<&mut [u8; L2 + OUTER]>::try_from)
    else {
        return false;
    };
    let (l2, ip) = hdr.split_at_mut(L2);
    l2[eth::DESTINATION].copy_from_slice(&env.dst_mac.0);
    l2[eth::SOURCE].copy_from_slice(&env.src_mac.0);
    l2[eth::ETHERTYPE].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
    let Ok(ip) = <&mut [u8; OUTER]>::try_from(ip) else {
        return false;
    };
    let df = if h.dont_frag { DF_BYTE } else { 0 };
    let id = env.next_ip_id();
    ip[..OUTER4_HEAD].copy_from_slice(&outer4_head(
        tos,
        total as u16,
        id,
        df,
        ttl,
        IpProtocol::IPIP,
    ));
    ip[ipv4::field::SRC_ADDR].copy_from_slice(&env.local_v4.octets());
    ip[ipv4::field::DST_ADDR].copy_from_slice(&daddr.octets());
    let c = checksum::ipv4_header(ip);
    ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    true
}
