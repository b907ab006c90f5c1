//! ICMP: translating errors about NAT connections, and generating the
//! errors the balancer sends itself (time exceeded, fragmentation needed,
//! packet too big, port unreachable), in place of the packet, in the same
//! buffer.

use std::net::IpAddr;

use crate::lb::engine::{Direction, Forward};
use crate::wire::buf::PacketBuf;
use crate::wire::ethernet::field as eth;
use crate::wire::parse::{Headers, L3};
use crate::wire::{checksum, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, IpProtocol};

use super::{insert_gap, rd16, same_family, set_macs, wr16, Applied, DropReason, Env, Reply};

/// Octets of an address and how many of them are used.
#[inline]
fn octets(a: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// Writes `new` at `at`, returning the bytes it replaced (same length).
#[inline]
fn replace(f: &mut [u8], at: usize, new: &[u8]) -> Result<[u8; 16], DropReason> {
    let Some(s) = f.get_mut(at..at.wrapping_add(new.len())) else {
        return Err(DropReason::BadHeaders);
    };
    let mut old = [0u8; 16];
    old[..new.len()].copy_from_slice(s);
    s.copy_from_slice(new);
    Ok(old)
}

/// Translates an ICMP error about a NAT connection, as `ip_vs_nat_icmp`
/// (and `_v6`) do, `fwd` being the connection found from the quoted tuple:
///
/// - `In` (from the client side, about a reply VIP:vport -> client): the
///   outer destination becomes the real server, the quoted source address
///   and port the real server's;
/// - `Out` (from the real server side, about a request client -> real
///   server): the outer source becomes the VIP, the quoted destination
///   address and port the VIP:vport.
///
/// The quoted IPv4 header checksum and, when the quote holds it, the quoted
/// TCP/UDP checksum are updated (a zero UDP checksum stays zero), and the
/// ICMP checksum follows every change (ICMPv6: the pseudo-header too). All
/// incremental. Translated: ICMP destination unreachable, source quench,
/// time exceeded; ICMPv6 destination unreachable, packet too big, time
/// exceeded and parameter problem (the kernel's v6 path takes every error
/// type). Others are `Unsupported`. TTL and MACs are the caller's.
pub fn translate(
    f: &mut [u8],
    h: &Headers,
    fwd: &Forward,
    dir: Direction,
) -> Result<(), DropReason> {
    let inner = h.inner.ok_or(DropReason::RewriteUnsupported)?;
    let v6 = h.l3 == L3::Ipv6;
    let known = if v6 {
        h.protocol == IpProtocol::ICMPV6 && matches!(h.icmp_type, 1..=4)
    } else {
        h.protocol == IpProtocol::ICMP && matches!(h.icmp_type, 3 | 4 | 11)
    };
    if !known {
        return Err(DropReason::RewriteUnsupported);
    }
    let (addr, port) = match dir {
        Direction::In => (fwd.daddr, fwd.dport),
        Direction::Out => (fwd.vaddr, fwd.vport),
    };
    if !same_family(h, &addr) {
        return Err(DropReason::Family);
    }
    let (nb, n) = octets(&addr);
    let new = &nb[..n];
    let l3 = h.l3_offset as usize;
    let il3 = inner.l3_offset as usize;
    let il4 = inner.l4_offset as usize;
    // The checksum is at the same place in ICMPv4 and ICMPv6.
    let icmp_ck_at = h.l4_offset as usize + icmpv4::field::CHECKSUM.start;
    let mut icmp_ck = rd16(f, icmp_ck_at)?;

    // Field offsets: (outer address, quoted address, quoted port). TCP,
    // UDP and SCTP have their ports at the same place.
    let (src, dst) = if v6 {
        (ipv6::field::SRC_ADDR.start, ipv6::field::DST_ADDR.start)
    } else {
        (ipv4::field::SRC_ADDR.start, ipv4::field::DST_ADDR.start)
    };
    let (outer_at, inner_at, port_at) = match dir {
        Direction::In => (l3 + dst, il3 + src, il4 + tcp::field::SRC_PORT.start),
        Direction::Out => (l3 + src, il3 + dst, il4 + tcp::field::DST_PORT.start),
    };
    let ip_ck = ipv4::field::CHECKSUM.start;

    // The outer address: the IPv4 header checksum, or (IPv6) the ICMPv6
    // pseudo-header.
    let old = replace(f, outer_at, new)?;
    if v6 {
        icmp_ck = checksum::update_bytes(icmp_ck, &old[..n], new);
    } else {
        let c = rd16(f, l3 + ip_ck)?;
        wr16(f, l3 + ip_ck, checksum::update_bytes(c, &old[..n], new))?;
    }

    // The quoted address (and the quoted IPv4 header checksum).
    let old_inner = replace(f, inner_at, new)?;
    let old_inner = &old_inner[..n];
    icmp_ck = checksum::update_bytes(icmp_ck, old_inner, new);
    if !v6 {
        let c0 = rd16(f, il3 + ip_ck)?;
        let c1 = checksum::update_bytes(c0, old_inner, new);
        wr16(f, il3 + ip_ck, c1)?;
        icmp_ck = checksum::update_u16(icmp_ck, c0, c1);
    }

    // The quoted port and L4 checksum.
    if inner.has_ports {
        let old_port = rd16(f, port_at)?;
        wr16(f, port_at, port)?;
        icmp_ck = checksum::update_u16(icmp_ck, old_port, port);
        let ck = match inner.protocol {
            IpProtocol::TCP => Some(tcp::field::CHECKSUM),
            IpProtocol::UDP => Some(udp::field::CHECKSUM),
            _ => None,
        };
        // Only when the quote holds the whole field.
        if let Some(at) = ck
            .filter(|r| il4 + r.end <= h.l3_end())
            .map(|r| il4 + r.start)
        {
            let c0 = rd16(f, at)?;
            let udp = inner.protocol == IpProtocol::UDP;
            if !(udp && c0 == 0) {
                let mut c1 = checksum::update_bytes(c0, old_inner, new);
                c1 = checksum::update_u16(c1, old_port, port);
                if udp {
                    c1 = checksum::udp_wire(c1);
                }
                wr16(f, at, c1)?;
                icmp_ck = checksum::update_u16(icmp_ck, c0, c1);
            }
        }
    }
    wr16(f, icmp_ck_at, icmp_ck)
}

/// Replaces the packet with an ICMP time exceeded to its sender, or
/// `TtlExceeded` if no error may be sent about it.
pub fn time_exceeded<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    env: &Env,
) -> Result<Applied, DropReason> {
    generate(buf, h, env, Reply::TimeExceeded).ok_or(DropReason::TtlExceeded)?
}

/// Replaces the packet with fragmentation-needed (IPv4) or packet-too-big
/// (IPv6) announcing `mtu` (clamped to 68 / 1280), or `TooBig` if no error
/// may be sent or the packet already fits the announced MTU (which would
/// loop).
pub fn too_big<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    env: &Env,
    mtu: usize,
) -> Result<Applied, DropReason> {
    let reply = match h.l3 {
        L3::Ipv4 => {
            let mtu = mtu.clamp(68, u16::MAX as usize);
            if h.l3_len as usize <= mtu {
                return Err(DropReason::TooBig);
            }
            Reply::FragNeeded { mtu: mtu as u16 }
        }
        _ => {
            let mtu = mtu.max(icmpv6::MIN_MTU);
            if h.l3_len as usize <= mtu {
                return Err(DropReason::TooBig);
            }
            Reply::PacketTooBig { mtu: mtu as u32 }
        }
    };
    generate(buf, h, env, reply).ok_or(DropReason::TooBig)?
}

/// Replaces a packet that opened a connection no real server could take
/// with ICMP port unreachable (ICMPv6 destination unreachable, port
/// unreachable) to its sender, as the kernel's `ip_vs_leave` answers for
/// TCP and UDP alike (the client sees "connection refused" at once), or
/// `NoDest` if no error may be sent about it. The error's source is
/// `env.reply_v4` / `env.reply_v6`: the caller sets the VIP, the address
/// the kernel's `icmp_send` picks for a packet it delivered locally. Rate
/// limits are the caller's ([`crate::net::IcmpLimiter`]), asked after
/// [`may_answer`] and before this, so that what they hold back is never
/// built.
pub fn port_unreachable<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    env: &Env,
) -> Result<Applied, DropReason> {
    generate(buf, h, env, Reply::PortUnreachable).ok_or(DropReason::NoDest)?
}

/// May an ICMP error be sent about this packet? Not about ICMP errors,
/// non-first fragments, link-layer or IP multicast/broadcast (IPv6: packet
/// too big may answer multicast), from or to an unspecified address.
pub fn may_answer(f: &[u8], h: &Headers, env: &Env, reply: Reply) -> bool {
    if matches!(h.frag, Some(fr) if fr.offset != 0) {
        return false;
    }
    let eth_mcast = f.first().is_none_or(|&b| b & 1 != 0);
    match (h.l3, h.src, h.dst) {
        (L3::Ipv4, IpAddr::V4(s), IpAddr::V4(d)) => {
            let refuse = eth_mcast
                || env.reply_v4.is_unspecified()
                || s.is_unspecified()
                || s.is_multicast()
                || s.is_broadcast()
                || d.is_multicast()
                || d.is_broadcast()
                || (h.protocol == IpProtocol::ICMP && icmpv4::Message(h.icmp_type).is_error());
            !refuse
        }
        (L3::Ipv6, IpAddr::V6(s), IpAddr::V6(d)) => {
            let ptb = matches!(reply, Reply::PacketTooBig { .. });
            let refuse = (!ptb && (eth_mcast || d.is_multicast()))
                || env.reply_v6.is_unspecified()
                || s.is_unspecified()
                || s.is_multicast()
                || (h.protocol == IpProtocol::ICMPV6 && icmpv6::Message(h.icmp_type).is_error());
            !refuse
        }
        _ => false,
    }
}

/// Builds the error in place: trims the frame to the quote, opens room for
/// the new IP and ICMP headers between the L2 header and the quote, swaps
/// the MACs and writes the headers. `None` if no error may be sent.
///
/// The quote is the original IP header + 8 bytes (RFC 792) for IPv4, as
/// much as fits in 1280 bytes for IPv6 (RFC 4443).
fn generate<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    env: &Env,
    reply: Reply,
) -> Option<Result<Applied, DropReason>> {
    if !may_answer(buf.data(), h, env, reply) {
        return None;
    }
    Some(build(buf, h, env, reply))
}

fn build<B: PacketBuf>(
    buf: &mut B,
    h: &Headers,
    env: &Env,
    reply: Reply,
) -> Result<Applied, DropReason> {
    let l3 = h.l3_offset as usize;
    let l3_len = h.l3_len as usize;
    let f = buf.data();
    let (Some(macs), Some(&vihl)) = (f.get(..eth::SOURCE.end), f.get(l3)) else {
        return Err(DropReason::BadHeaders);
    };
    // Back to where the packet came from: the MACs swap.
    let mut mac_dst = [0u8; 6];
    let mut mac_src = [0u8; 6];
    mac_dst.copy_from_slice(&macs[eth::SOURCE]);
    mac_src.copy_from_slice(&macs[eth::DESTINATION]);
    let v6 = h.l3 == L3::Ipv6;
    // The new IP and ICMP headers (the ICMP header ends where its data,
    // the quote, starts).
    const ICMP4_LEN: usize = icmpv4::field::DATA.start;
    const ICMP6_LEN: usize = icmpv6::field::DATA.start;
    let (quote, hl) = if v6 {
        let hl = ipv6::HEADER_LEN + ICMP6_LEN;
        (l3_len.min(icmpv6::MIN_MTU - hl), hl)
    } else {
        (
            l3_len.min((vihl & 0x0f) as usize * 4 + 8),
            ipv4::HEADER_LEN + ICMP4_LEN,
        )
    };
    let keep = l3 + quote;
    if keep > buf.len() || !buf.trim(buf.len() - keep) {
        return Err(DropReason::BadHeaders);
    }
    insert_gap(buf, l3, hl)?;
    let f = buf.data_mut();
    set_macs(
        f,
        crate::wire::EthernetAddress(mac_dst),
        crate::wire::EthernetAddress(mac_src),
    )?;
    let msg_len = if v6 { ICMP6_LEN } else { ICMP4_LEN } + quote;
    let Some(pkt) = f.get_mut(l3..l3 + hl + quote) else {
        return Err(DropReason::BadHeaders);
    };
    match h.src {
        IpAddr::V4(dst) if !v6 => {
            let (ip, icmp) = pkt.split_at_mut(ipv4::HEADER_LEN);
            let total = (hl + quote) as u16;
            let id = env.next_ip_id();
            ip[..ipv4::field::SRC_ADDR.start].copy_from_slice(&[
                0x45,
                0xc0,
                (total >> 8) as u8,
                total as u8,
                (id >> 8) as u8,
                id as u8,
                0,
                0,
                64,
                IpProtocol::ICMP.0,
                0,
                0,
            ]);
            ip[ipv4::field::SRC_ADDR].copy_from_slice(&env.reply_v4.octets());
            ip[ipv4::field::DST_ADDR].copy_from_slice(&dst.octets());
            let c = checksum::checksum(ip);
            ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            let (ty, code, rest) = match reply {
                Reply::FragNeeded { mtu } => (
                    icmpv4::Message::DST_UNREACHABLE.0,
                    icmpv4::unreachable::FRAG_NEEDED,
                    (mtu as u32).to_be_bytes(),
                ),
                Reply::PortUnreachable => (
                    icmpv4::Message::DST_UNREACHABLE.0,
                    icmpv4::unreachable::PORT,
                    [0; 4],
                ),
                _ => (
                    icmpv4::Message::TIME_EXCEEDED.0,
                    icmpv4::time_exceeded::TTL,
                    [0; 4],
                ),
            };
            icmp[..ICMP4_LEN]
                .copy_from_slice(&[ty, code, 0, 0, rest[0], rest[1], rest[2], rest[3]]);
            let c = checksum::checksum(&icmp[..msg_len]);
            icmp[icmpv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        IpAddr::V6(dst) if v6 => {
            let (ip, icmp) = pkt.split_at_mut(ipv6::HEADER_LEN);
            let plen = msg_len as u16;
            ip[..ipv6::field::SRC_ADDR.start].copy_from_slice(&[
                0x60,
                0,
                0,
                0,
                (plen >> 8) as u8,
                plen as u8,
                IpProtocol::ICMPV6.0,
                64,
            ]);
            ip[ipv6::field::SRC_ADDR].copy_from_slice(&env.reply_v6.octets());
            ip[ipv6::field::DST_ADDR].copy_from_slice(&dst.octets());
            let (ty, code, rest) = match reply {
                Reply::PacketTooBig { mtu } => {
                    (icmpv6::Message::PKT_TOO_BIG.0, 0, mtu.to_be_bytes())
                }
                Reply::PortUnreachable => (
                    icmpv6::Message::DST_UNREACHABLE.0,
                    icmpv6::unreachable::PORT,
                    [0; 4],
                ),
                _ => (
                    icmpv6::Message::TIME_EXCEEDED.0,
                    icmpv6::time_exceeded::HOP_LIMIT,
                    [0; 4],
                ),
            };
            icmp[..ICMP6_LEN]
                .copy_from_slice(&[ty, code, 0, 0, rest[0], rest[1], rest[2], rest[3]]);
            let ph =
                checksum::pseudo_header_v6(&env.reply_v6, &dst, IpProtocol::ICMPV6, msg_len as u32);
            let c = !checksum::combine(&[ph, checksum::data(&icmp[..msg_len])]);
            icmp[icmpv6::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        _ => return Err(DropReason::BadHeaders),
    }
    Ok(Applied::Reply(reply))
}
