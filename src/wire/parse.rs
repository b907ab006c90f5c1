//! One-pass summary of an Ethernet frame for the data path.
//!
//! [`parse_frame`] walks Ethernet, up to two VLAN tags, IPv4 (options) or
//! IPv6 (extension headers), and the L4 header (TCP, UDP, SCTP ports; TCP
//! flags; ICMP type/code, and for ICMP errors the quoted datagram's header
//! and ports), checking every length on the way. It reads each byte it
//! needs once, returns plain offsets into the frame (no borrows), and never
//! allocates. Checksums are not verified (the NIC's offload flags or the
//! views' `verify_checksum` do that).
//!
//! Length rules: the IP total length must fit in the frame; bytes after it
//! are link padding, reported in `padding`. The L4 header must be complete
//! in an unfragmented datagram or a first fragment; a non-first fragment has
//! no L4 header (`l4_parsed == false`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::icmpv4;
use super::icmpv6;
use super::ipv6::{walk_ext_headers, FragInfo};
use super::tcp::Flags;
use super::{get16, Error, EtherType, IpProtocol, Result};

/// What the frame carries at layer 3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum L3 {
    /// An ethertype this parser does not decode; only the Ethernet/VLAN
    /// fields are set.
    #[default]
    Other,
    Arp,
    Ipv4,
    Ipv6,
}

/// The datagram quoted in an ICMP error (offsets are from the frame start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inner {
    pub l3_offset: u16,
    /// After the quoted IP header (and IPv6 extension headers).
    pub l4_offset: u16,
    pub protocol: IpProtocol,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Valid when `has_ports`.
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP/UDP/SCTP, not a non-first fragment, and 4 bytes of it quoted.
    pub has_ports: bool,
    /// Quoted bytes present, from `l3_offset` to the end of the ICMP message.
    pub len: u16,
}

/// Parsed header summary of one frame. Fields that do not apply are zero
/// (addresses unspecified, ports 0, `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Headers {
    /// TCI of the outer VLAN tag.
    pub vlan: Option<u16>,
    /// TCI of the inner tag of a QinQ frame.
    pub vlan_inner: Option<u16>,
    /// The ethertype after any VLAN tags.
    pub ethertype: EtherType,
    pub l3: L3,
    pub l3_offset: u16,
    /// IP total length (IPv6: 40 + payload length), or the ARP packet's
    /// length; 0 for `L3::Other`.
    pub l3_len: u16,
    /// Frame bytes after the L3 datagram (Ethernet minimum-size padding).
    pub padding: u16,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub protocol: IpProtocol,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DF (always false on IPv6, which never fragments in transit).
    pub dont_frag: bool,
    /// IPv4 fragment fields or an IPv6 Fragment header, if it is one
    /// (an IPv6 atomic fragment is reported too; see `is_fragment`).
    pub frag: Option<FragInfo>,
    /// Where the upper-layer header starts (fragment data for non-first
    /// fragments).
    pub l4_offset: u16,
    /// Bytes from `l4_offset` to the end of the L3 datagram.
    pub l4_len: u16,
    /// The L4 header was present and decoded: ports for TCP/UDP/SCTP, type
    /// and code for ICMP/ICMPv6.
    pub l4_parsed: bool,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: Flags,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// For ICMP errors: the quoted datagram.
    pub inner: Option<Inner>,
    /// The sender asks for source routing: an IPv4 LSRR/SSRR option or an
    /// IPv6 Routing header with segments left.
    pub source_routed: bool,
}

const UNSPEC: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl Headers {
    /// Nothing parsed (what every field is before parsing).
    pub const EMPTY: Headers = Headers {
        vlan: None,
        vlan_inner: None,
        ethertype: EtherType(0),
        l3: L3::Other,
        l3_offset: 0,
        l3_len: 0,
        padding: 0,
        src: UNSPEC,
        dst: UNSPEC,
        protocol: IpProtocol(0),
        ttl: 0,
        dont_frag: false,
        frag: None,
        l4_offset: 0,
        l4_len: 0,
        l4_parsed: false,
        src_port: 0,
        dst_port: 0,
        tcp_flags: Flags(0),
        icmp_type: 0,
        icmp_code: 0,
        inner: None,
        source_routed: false,
    };

    /// VLAN id (12 bits) of the outer tag.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan.map(|t| t & 0x0fff)
    }

    /// 4, 6, or 0 when not IP.
    #[inline]
    pub fn ip_version(&self) -> u8 {
        match self.l3 {
            L3::Ipv4 => 4,
            L3::Ipv6 => 6,
            _ => 0,
        }
    }

    #[inline]
    pub fn is_ip(&self) -> bool {
        matches!(self.l3, L3::Ipv4 | L3::Ipv6)
    }

    /// A real fragment (not an IPv6 atomic fragment).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        matches!(self.frag, Some(f) if f.more || f.offset != 0)
    }

    /// An ICMP/ICMPv6 error message whose quote was decoded.
    #[inline]
    pub fn is_icmp_error(&self) -> bool {
        self.inner.is_some()
    }

    /// End of the L3 datagram in the frame (start of the padding).
    #[inline]
    pub fn l3_end(&self) -> usize {
        self.l3_offset as usize + self.l3_len as usize
    }

    /// The L3 datagram's bytes within `frame` (the frame this was parsed
    /// from; empty if it is another, shorter one).
    #[inline]
    pub fn l3_bytes<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame
            .get(self.l3_offset as usize..self.l3_end())
            .unwrap_or(&[])
    }

    /// The L4 bytes (header and payload) within `frame`.
    #[inline]
    pub fn l4_bytes<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame
            .get(self.l4_offset as usize..self.l3_end())
            .unwrap_or(&[])
    }
}

impl Default for Headers {
    fn default() -> Self {
        Self::EMPTY
    }
}

#[inline(always)]
fn v4_at(d: &[u8], at: usize) -> IpAddr {
    match d.get(at..at + 4) {
        Some(&[a, b, c, e]) => IpAddr::V4(Ipv4Addr::new(a, b, c, e)),
        _ => UNSPEC,
    }
}

#[inline(always)]
fn v6_at(d: &[u8], at: usize) -> IpAddr {
    match d.get(at..at + 16) {
        Some(b) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        None => UNSPEC,
    }
}

/// Parses an Ethernet frame (no FCS). Frames over 65535 bytes are
/// `Unsupported` (offsets are u16); three or more VLAN tags too.
pub fn parse_frame(frame: &[u8]) -> Result<Headers> {
    let mut h = Headers::EMPTY;
    parse_frame_into(frame, &mut h)?;
    Ok(h)
}

/// [`parse_frame`] into the caller's `Headers` (which must be
/// [`Headers::EMPTY`] on entry), sparing the data path two copies of the
/// struct per packet. On error `h` holds whatever was parsed so far.
#[inline]
pub fn parse_frame_into(frame: &[u8], h: &mut Headers) -> Result<()> {
    if frame.len() > u16::MAX as usize {
        return Err(Error::Unsupported);
    }
    if parse_plain_v4(frame, h) {
        return Ok(());
    }
    parse_general(frame, h)
}

/// The common frame in straight-line code: untagged Ethernet, IPv4 without
/// options, not a fragment, TCP or UDP, lengths consistent. Writes `h`
/// only when the frame is one (exactly what the general parser would);
/// false sends every other frame to [`parse_general`].
#[inline(always)]
fn parse_plain_v4(frame: &[u8], h: &mut Headers) -> bool {
    use super::ethernet::field as eth;
    use super::ipv4::field as ip;
    use super::{ethernet, ipv4, tcp, udp};
    /// Where the IPv4 header and the L4 header start.
    const IP: usize = ethernet::HEADER_LEN;
    const L4: usize = IP + ipv4::HEADER_LEN;
    /// The bytes read, up to the TCP flags; shorter frames take the general
    /// path.
    const LEN: usize = L4 + tcp::field::FLAGS + 1;
    /// Version 4, IHL 5 (no options).
    const VER_IHL_PLAIN: u8 = 0x40 | (ipv4::HEADER_LEN / 4) as u8;
    let Some(Ok(b)) = frame.get(..LEN).map(<&[u8; LEN]>::try_from) else {
        return false;
    };
    let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let addr = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
    let tl = be16(IP + ip::LENGTH.start) as usize;
    let fo = be16(IP + ip::FLG_OFF.start);
    let proto = IpProtocol(b[IP + ip::PROTOCOL]);
    if EtherType(be16(eth::ETHERTYPE.start)) != EtherType::IPV4
        || b[IP + ip::VER_IHL] != VER_IHL_PLAIN
        || fo & (ipv4::MF | ipv4::OFFSET_MASK) != 0
        || IP + tl > frame.len()
    {
        return false;
    }
    let l4_len = tl.wrapping_sub(ipv4::HEADER_LEN);
    let ok = match proto {
        IpProtocol::TCP => {
            let doff = (b[L4 + tcp::field::DATA_OFF] >> 4) as usize * 4;
            tl >= ipv4::HEADER_LEN + tcp::HEADER_LEN && doff >= tcp::HEADER_LEN && doff <= l4_len
        }
        IpProtocol::UDP => {
            let ulen = be16(L4 + udp::field::LENGTH.start) as usize;
            tl >= ipv4::HEADER_LEN + udp::HEADER_LEN && ulen >= udp::HEADER_LEN && ulen <= l4_len
        }
        _ => false,
    };
    if !ok {
        return false;
    }
    h.ethertype = EtherType::IPV4;
    h.l3 = L3::Ipv4;
    h.l3_offset = IP as u16;
    h.l3_len = tl as u16;
    h.padding = (frame.len() - IP - tl) as u16;
    h.ttl = b[IP + ip::TTL];
    h.protocol = proto;
    h.src = IpAddr::V4(addr(IP + ip::SRC_ADDR.start));
    h.dst = IpAddr::V4(addr(IP + ip::DST_ADDR.start));
    h.dont_frag = fo & ipv4::DF != 0;
    h.l4_offset = L4 as u16;
    h.l4_len = l4_len as u16;
    h.l4_parsed = true;
    // The port fields are at the same place in TCP and UDP.
    h.src_port = be16(L4 + tcp::field::SRC_PORT.start);
    h.dst_port = be16(L4 + tcp::field::DST_PORT.start);
    if proto == IpProtocol::TCP {
        h.tcp_flags = Flags(b[L4 + tcp::field::FLAGS]);
    }
    true
}

/// Every frame [`parse_plain_v4`] does not take.
pub(crate) fn parse_general(frame: &[u8], h: &mut Headers) -> Result<()> {
    let mut et = EtherType(get16(frame, 12).ok_or(Error::Truncated)?);
    let mut off = 14;
    if et.is_vlan() {
        h.vlan = Some(get16(frame, off).ok_or(Error::Truncated)?);
        et = EtherType(get16(frame, off + 2).ok_or(Error::Truncated)?);
        off += 4;
        if et.is_vlan() {
            h.vlan_inner = Some(get16(frame, off).ok_or(Error::Truncated)?);
            et = EtherType(get16(frame, off + 2).ok_or(Error::Truncated)?);
            off += 4;
            if et.is_vlan() {
                return Err(Error::Unsupported);
            }
        }
    }
    h.ethertype = et;
    h.l3_offset = off as u16;
    // `off` <= frame.len(): the ethertype just read ends there.
    let l3 = frame.get(off..).unwrap_or(&[]);
    match et {
        EtherType::IPV4 => parse_ipv4(h, l3)?,
        EtherType::IPV6 => parse_ipv6(h, l3)?,
        EtherType::ARP => {
            // Length only; the data path reads the rest with `arp::Packet`.
            let p = super::arp::Packet::new_checked(l3)?;
            let n = p.packet_len();
            h.l3 = L3::Arp;
            h.l3_len = n as u16;
            h.padding = (l3.len() - n) as u16;
        }
        _ => {}
    }
    Ok(())
}

#[inline]
fn parse_ipv4(h: &mut Headers, d: &[u8]) -> Result<()> {
    let (Some(&vihl), Some(tl), Some(fo)) = (d.first(), get16(d, 2), get16(d, 6)) else {
        return Err(Error::Truncated);
    };
    if d.len() < 20 {
        return Err(Error::Truncated);
    }
    let hl = (vihl & 0x0f) as usize * 4;
    let tl = tl as usize;
    if vihl >> 4 != 4 || hl < 20 || tl < hl {
        return Err(Error::Malformed);
    }
    if tl > d.len() {
        return Err(Error::Truncated);
    }
    if hl > 20 {
        h.source_routed = ipv4_source_routed(&d[20..hl])?;
    }
    h.l3 = L3::Ipv4;
    h.l3_len = tl as u16;
    h.padding = (d.len() - tl) as u16;
    h.ttl = d[8];
    h.protocol = IpProtocol(d[9]);
    h.src = v4_at(d, 12);
    h.dst = v4_at(d, 16);
    h.dont_frag = fo & 0x4000 != 0;
    let offset = (fo & 0x1fff) << 3;
    if fo & 0x3fff != 0 {
        h.frag = Some(FragInfo {
            ident: get16(d, 4).unwrap_or(0) as u32,
            offset,
            more: fo & 0x2000 != 0,
        });
    }
    h.l4_offset = h.l3_offset + hl as u16;
    h.l4_len = (tl - hl) as u16;
    if offset == 0 {
        parse_l4(h, &d[hl..tl], false)?;
    }
    Ok(())
}

/// Walks IPv4 options (RFC 791): true if one of them is a loose or strict
/// source route; a length that runs off the header is malformed, as the
/// kernel's `ip_options_compile` finds it.
fn ipv4_source_routed(opts: &[u8]) -> Result<bool> {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const LSRR: u8 = 131;
    const SSRR: u8 = 137;
    let mut i = 0;
    let mut routed = false;
    while let Some(&kind) = opts.get(i) {
        match kind {
            EOL => break,
            NOP => i += 1,
            _ => {
                let len = *opts.get(i + 1).ok_or(Error::Malformed)? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(Error::Malformed);
                }
                routed |= kind == LSRR || kind == SSRR;
                i += len;
            }
        }
    }
    Ok(routed)
}

#[inline]
fn parse_ipv6(h: &mut Headers, d: &[u8]) -> Result<()> {
    if d.len() < 40 {
        return Err(Error::Truncated);
    }
    if d[0] >> 4 != 6 {
        return Err(Error::Malformed);
    }
    let tl = 40 + get16(d, 4).unwrap_or(0) as usize;
    if tl > d.len() {
        return Err(Error::Truncated);
    }
    h.l3 = L3::Ipv6;
    h.l3_len = tl as u16;
    h.padding = (d.len() - tl) as u16;
    h.ttl = d[7];
    h.src = v6_at(d, 8);
    h.dst = v6_at(d, 24);
    let chain = walk_ext_headers(IpProtocol(d[6]), &d[40..tl])?;
    h.protocol = chain.protocol;
    h.frag = chain.frag;
    h.source_routed = chain.routed;
    let l4 = 40 + chain.len;
    h.l4_offset = h.l3_offset + l4 as u16;
    h.l4_len = (tl - l4) as u16;
    if !matches!(chain.frag, Some(f) if f.offset != 0) {
        parse_l4(h, &d[l4..tl], true)?;
    }
    Ok(())
}

/// Decodes the upper-layer header in `l4` (from `h.l4_offset`).
#[inline]
fn parse_l4(h: &mut Headers, l4: &[u8], v6: bool) -> Result<()> {
    match h.protocol {
        IpProtocol::TCP => {
            let Some(&[sp0, sp1, dp0, dp1]) = l4.get(..4) else {
                return Err(Error::Truncated);
            };
            if l4.len() < 20 {
                return Err(Error::Truncated);
            }
            let doff = (l4[12] >> 4) as usize * 4;
            if doff < 20 {
                return Err(Error::Malformed);
            }
            if doff > l4.len() {
                return Err(Error::Truncated);
            }
            h.src_port = u16::from_be_bytes([sp0, sp1]);
            h.dst_port = u16::from_be_bytes([dp0, dp1]);
            h.tcp_flags = Flags(l4[13]);
        }
        IpProtocol::UDP => {
            let Some(&[sp0, sp1, dp0, dp1, l0, l1, _, _]) = l4.get(..8) else {
                return Err(Error::Truncated);
            };
            // A first fragment carries only part of what the length covers.
            if h.frag.is_none() {
                let ulen = u16::from_be_bytes([l0, l1]) as usize;
                if ulen < 8 {
                    return Err(Error::Malformed);
                }
                if ulen > l4.len() {
                    return Err(Error::Truncated);
                }
            }
            h.src_port = u16::from_be_bytes([sp0, sp1]);
            h.dst_port = u16::from_be_bytes([dp0, dp1]);
        }
        IpProtocol::SCTP => {
            let Some(&[sp0, sp1, dp0, dp1]) = l4.get(..4) else {
                return Err(Error::Truncated);
            };
            if l4.len() < 12 {
                return Err(Error::Truncated);
            }
            h.src_port = u16::from_be_bytes([sp0, sp1]);
            h.dst_port = u16::from_be_bytes([dp0, dp1]);
        }
        IpProtocol::ICMP if !v6 => {
            parse_icmp(h, l4)?;
            if icmpv4::Message(h.icmp_type).is_error() {
                h.inner = Some(parse_inner_v4(h.l4_offset as usize + 8, &l4[8..])?);
            }
        }
        IpProtocol::ICMPV6 if v6 => {
            parse_icmp(h, l4)?;
            if icmpv6::Message(h.icmp_type).is_error() {
                h.inner = Some(parse_inner_v6(h.l4_offset as usize + 8, &l4[8..])?);
            }
        }
        _ => return Ok(()),
    }
    h.l4_parsed = true;
    Ok(())
}

#[inline]
fn parse_icmp(h: &mut Headers, l4: &[u8]) -> Result<()> {
    match l4.get(..8) {
        Some(&[t, c, ..]) => {
            h.icmp_type = t;
            h.icmp_code = c;
            Ok(())
        }
        _ => Err(Error::Truncated),
    }
}

/// Ports of a quoted L4 header if `proto` has them and 4 bytes are there.
#[inline]
fn quoted_ports(inner: &mut Inner, proto: IpProtocol, l4: &[u8]) {
    if let (true, Some(&[a, b, c, d])) = (proto.has_ports(), l4.get(..4)) {
        inner.src_port = u16::from_be_bytes([a, b]);
        inner.dst_port = u16::from_be_bytes([c, d]);
        inner.has_ports = true;
    }
}

/// The IPv4 datagram quoted by an ICMP error, at frame offset `at`.
fn parse_inner_v4(at: usize, q: &[u8]) -> Result<Inner> {
    if q.len() < 20 {
        return Err(Error::Truncated);
    }
    let hl = (q[0] & 0x0f) as usize * 4;
    if q[0] >> 4 != 4 || hl < 20 {
        return Err(Error::Malformed);
    }
    if hl > q.len() {
        return Err(Error::Truncated);
    }
    let protocol = IpProtocol(q[9]);
    let mut inner = Inner {
        l3_offset: at as u16,
        l4_offset: (at + hl) as u16,
        protocol,
        src: v4_at(q, 12),
        dst: v4_at(q, 16),
        src_port: 0,
        dst_port: 0,
        has_ports: false,
        len: q.len() as u16,
    };
    // Only a first fragment (or whole datagram) starts with the L4 header.
    if get16(q, 6).unwrap_or(0) & 0x1fff == 0 {
        quoted_ports(&mut inner, protocol, &q[hl..]);
    }
    Ok(inner)
}

/// The IPv6 datagram quoted by an ICMPv6 error, at frame offset `at`.
fn parse_inner_v6(at: usize, q: &[u8]) -> Result<Inner> {
    if q.len() < 40 {
        return Err(Error::Truncated);
    }
    if q[0] >> 4 != 6 {
        return Err(Error::Malformed);
    }
    let chain = walk_ext_headers(IpProtocol(q[6]), &q[40..])?;
    let l4 = 40 + chain.len;
    let mut inner = Inner {
        l3_offset: at as u16,
        l4_offset: (at + l4) as u16,
        protocol: chain.protocol,
        src: v6_at(q, 8),
        dst: v6_at(q, 24),
        src_port: 0,
        dst_port: 0,
        has_ports: false,
        len: q.len() as u16,
    };
    if !matches!(chain.frag, Some(f) if f.offset != 0) {
        quoted_ports(&mut inner, chain.protocol, q.get(l4..).unwrap_or(&[]));
    }
    Ok(inner)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, EthernetAddress};

    const MAC_A: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 1]);
    const MAC_B: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 2]);

    /// Ethernet + IPv4 + TCP SYN 10.0.0.1:40000 -> 10.0.0.100:80, with
    /// `payload` and `pad` bytes of trailing padding.
    pub(crate) fn tcp4_frame(payload: &[u8], pad: usize) -> Vec<u8> {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 100);
        let t = tcp::Repr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 1,
            ack_number: 0,
            flags: tcp::Flags::SYN,
            window_len: 65535,
            urgent_at: 0,
            payload_len: payload.len(),
        };
        let ip = ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: IpProtocol::TCP,
            payload_len: t.buffer_len(),
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut f = vec![0u8; 14 + ip.buffer_len() + pad];
        let e = ethernet::Repr {
            src_addr: MAC_A,
            dst_addr: MAC_B,
            ethertype: EtherType::IPV4,
        };
        e.emit(&mut ethernet::Packet::new_unchecked(&mut f[..]))
            .unwrap();
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut f[14..]))
            .unwrap();
        let l4 = &mut f[34..34 + t.buffer_len()];
        l4[20..].copy_from_slice(payload);
        t.emit(
            &mut tcp::Packet::new_unchecked(l4),
            &src.into(),
            &dst.into(),
        )
        .unwrap();
        f
    }

    /// Ethernet + 802.1Q + IPv6 + dst-opts + UDP 2001:db8::1:5353 -> 2001:db8::2:53.
    pub(crate) fn udp6_vlan_frame() -> Vec<u8> {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut f = vec![0u8; 18 + 40 + 8 + 8 + 4];
        f[..6].copy_from_slice(&MAC_B.0);
        f[6..12].copy_from_slice(&MAC_A.0);
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[14..16].copy_from_slice(&[0x20, 0x07]); // PCP 1, VID 7
        f[16..18].copy_from_slice(&[0x86, 0xdd]);
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::IPV6_OPTS,
            payload_len: 8 + 8 + 4,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[18..]))
            .unwrap();
        f[58] = 17; // dst-opts: next header UDP, length 0 (8 bytes), PadN
        f[60] = 1;
        f[61] = 4;
        let u = udp::Repr {
            src_port: 5353,
            dst_port: 53,
            payload_len: 4,
        };
        f[74..78].copy_from_slice(b"abcd");
        u.emit(
            &mut udp::Packet::new_unchecked(&mut f[66..]),
            &src.into(),
            &dst.into(),
        )
        .unwrap();
        f
    }

    #[test]
    fn tcp4() {
        let f = tcp4_frame(b"hello", 0);
        let h = parse_frame(&f).unwrap();
        assert_eq!(h.l3, L3::Ipv4);
        assert_eq!(h.ip_version(), 4);
        assert_eq!(h.vlan, None);
        assert_eq!(h.ethertype, EtherType::IPV4);
        assert_eq!((h.l3_offset, h.l4_offset), (14, 34));
        assert_eq!((h.l3_len, h.l4_len, h.padding), (45, 25, 0));
        assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(h.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)));
        assert_eq!(h.protocol, IpProtocol::TCP);
        assert_eq!((h.src_port, h.dst_port), (40000, 80));
        assert!(h.l4_parsed && h.tcp_flags.syn() && h.dont_frag);
        assert_eq!(h.ttl, 64);
        assert!(h.frag.is_none() && !h.is_fragment() && !h.is_icmp_error());
        assert_eq!(&h.l4_bytes(&f)[20..], b"hello");
    }

    #[test]
    fn padding_reported() {
        // A 40-byte SYN padded to the 60-byte Ethernet minimum.
        let f = tcp4_frame(b"", 6);
        assert_eq!(f.len(), 60);
        let h = parse_frame(&f).unwrap();
        assert_eq!((h.l3_len, h.padding), (40, 6));
        assert_eq!(h.l4_bytes(&f).len(), 20);
    }

    #[test]
    fn length_errors() {
        let f = tcp4_frame(b"hello", 0);
        // Cut anywhere: truncated (or at 14, an empty IPv4 header).
        for n in 0..f.len() {
            assert_eq!(parse_frame(&f[..n]), Err(Error::Truncated), "len {n}");
        }
        let mut g = f.clone();
        g[14] = 0x65; // version 6 in an IPv4 ethertype
        assert_eq!(parse_frame(&g), Err(Error::Malformed));
        let mut g = f.clone();
        g[17] = 19; // total length below the header
        assert_eq!(parse_frame(&g), Err(Error::Malformed));
        let mut g = f.clone();
        g[34 + 12] = 0x40; // TCP data offset 4
        assert_eq!(parse_frame(&g), Err(Error::Malformed));
        let mut g = f.clone();
        g[34 + 12] = 0xf0; // TCP data offset 60 > segment
        assert_eq!(parse_frame(&g), Err(Error::Truncated));
    }

    #[test]
    fn fragments_v4() {
        let mut f = tcp4_frame(b"hello", 0);
        // Non-first fragment: offset 8 bytes, no L4 decode.
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_frag(false, true, 8);
        p.fill_checksum();
        let h = parse_frame(&f).unwrap();
        assert!(h.is_fragment() && !h.l4_parsed);
        assert_eq!(
            h.frag,
            Some(FragInfo {
                ident: 1,
                offset: 8,
                more: true
            })
        );
        assert_eq!((h.src_port, h.dst_port), (0, 0));
        // First fragment: ports decoded.
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_frag(false, true, 0);
        let h = parse_frame(&f).unwrap();
        assert!(h.is_fragment() && h.l4_parsed);
        assert_eq!(h.dst_port, 80);
    }

    #[test]
    fn udp6_vlan() {
        let f = udp6_vlan_frame();
        let h = parse_frame(&f).unwrap();
        assert_eq!(h.vlan, Some(0x2007));
        assert_eq!(h.vlan_id(), Some(7));
        assert_eq!(h.ethertype, EtherType::IPV6);
        assert_eq!(h.l3, L3::Ipv6);
        assert_eq!((h.l3_offset, h.l4_offset), (18, 66));
        assert_eq!((h.l3_len, h.l4_len, h.padding), (60, 12, 0));
        assert_eq!(h.protocol, IpProtocol::UDP);
        assert_eq!((h.src_port, h.dst_port), (5353, 53));
        assert_eq!(h.src, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(h.ttl, 64);
        let u = udp::Packet::new_checked(h.l4_bytes(&f)).unwrap();
        assert!(u.verify_checksum(&h.src, &h.dst));
        // UDP length beyond the datagram.
        let mut g = f.clone();
        g[66 + 5] = 13;
        assert_eq!(parse_frame(&g), Err(Error::Truncated));
    }

    #[test]
    fn qinq_and_limits() {
        let f = tcp4_frame(b"", 0);
        let mut g = Vec::new();
        g.extend_from_slice(&f[..12]);
        g.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
        g.extend_from_slice(&f[12..]);
        let h = parse_frame(&g).unwrap();
        assert_eq!((h.vlan_id(), h.vlan_inner), (Some(100), Some(10)));
        assert_eq!((h.l3_offset, h.l4_offset, h.dst_port), (22, 42, 80));
        // Three tags.
        let mut g3 = g[..20].to_vec();
        g3.extend_from_slice(&[0x81, 0x00, 0, 1]);
        g3.extend_from_slice(&g[20..]);
        assert_eq!(parse_frame(&g3), Err(Error::Unsupported));
        // Unknown ethertype: only L2.
        let mut o = f.clone();
        o[12..14].copy_from_slice(&[0x88, 0xcc]);
        let h = parse_frame(&o).unwrap();
        assert_eq!((h.l3, h.ethertype), (L3::Other, EtherType(0x88cc)));
        assert_eq!(parse_frame(&[0u8; 13]), Err(Error::Truncated));
        assert_eq!(parse_frame(&vec![0u8; 70000]), Err(Error::Unsupported));
    }

    #[test]
    fn arp() {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&MAC_A.0);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..42].copy_from_slice(&[
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0, 0, 0, 1, 10, 0, 0, 1, 0,
            0, 0, 0, 0, 0, 10, 0, 0, 100,
        ]);
        let h = parse_frame(&f).unwrap();
        assert_eq!(h.l3, L3::Arp);
        assert_eq!((h.l3_offset, h.l3_len, h.padding), (14, 28, 18));
        assert!(!h.is_ip());
        assert_eq!(parse_frame(&f[..41]), Err(Error::Truncated));
    }

    /// An ICMP frag-needed from a router 10.0.0.254 to 10.0.0.100 quoting
    /// the SYN 10.0.0.100:80 -> 10.0.0.1:40000 (i.e. a reply direction).
    pub(crate) fn icmp4_error_frame() -> Vec<u8> {
        let orig = tcp4_frame(b"hello", 0);
        let quoted = &orig[14..14 + 28];
        let icmp = icmpv4::Repr::DstUnreachable {
            code: icmpv4::unreachable::FRAG_NEEDED,
            next_hop_mtu: 1400,
            data: quoted,
        };
        let ip = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 254),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            protocol: IpProtocol::ICMP,
            payload_len: icmp.buffer_len(),
            ttl: 255,
            tos: 0xc0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        let mut f = vec![0u8; 14 + ip.buffer_len()];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut f[14..]))
            .unwrap();
        icmp.emit(&mut icmpv4::Packet::new_unchecked(&mut f[34..]))
            .unwrap();
        f
    }

    #[test]
    fn icmp4_error() {
        let f = icmp4_error_frame();
        let h = parse_frame(&f).unwrap();
        assert_eq!(h.protocol, IpProtocol::ICMP);
        assert_eq!((h.icmp_type, h.icmp_code), (3, 4));
        assert!(h.l4_parsed && h.is_icmp_error());
        let i = h.inner.unwrap();
        assert_eq!((i.l3_offset, i.l4_offset, i.len), (42, 62, 28));
        assert_eq!(i.protocol, IpProtocol::TCP);
        assert_eq!(i.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(i.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)));
        assert!(i.has_ports);
        assert_eq!((i.src_port, i.dst_port), (40000, 80));
        // Quote cut inside the IP header.
        let mut g = f.clone();
        g.truncate(42 + 10);
        let n = (g.len() - 14) as u16;
        g[16..18].copy_from_slice(&n.to_be_bytes());
        assert_eq!(parse_frame(&g), Err(Error::Truncated));
        // Quote with only the IP header: no ports.
        let mut g = f.clone();
        g.truncate(42 + 20);
        let n = (g.len() - 14) as u16;
        g[16..18].copy_from_slice(&n.to_be_bytes());
        let i = parse_frame(&g).unwrap().inner.unwrap();
        assert!(!i.has_ports);
        // Echo: no inner.
        let mut g = f.clone();
        g[34] = 8;
        g[35] = 0;
        let h = parse_frame(&g).unwrap();
        assert!(h.inner.is_none() && h.l4_parsed);
    }

    #[test]
    fn icmp6_error_with_fragment_quote() {
        // Packet-too-big quoting a UDP/IPv6 first fragment.
        let src: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut q = [0u8; 40 + 8 + 8];
        let r = ipv6::Repr {
            src_addr: dst,
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: IpProtocol::IPV6_FRAG,
            payload_len: 1452,
            hop_limit: 63,
            traffic_class: 0,
            flow_label: 0,
        };
        r.emit(&mut ipv6::Packet::new_unchecked(&mut q[..]))
            .unwrap();
        ipv6::FragmentHeader::new_unchecked(&mut q[40..48]).emit(
            IpProtocol::UDP,
            &FragInfo {
                ident: 9,
                offset: 0,
                more: true,
            },
        );
        q[48..52].copy_from_slice(&[0x14, 0xe9, 0x00, 0x35]);
        let icmp = icmpv6::Repr::PktTooBig {
            mtu: 1400,
            data: &q,
        };
        let ip = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::ICMPV6,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut f = vec![0u8; 14 + ip.buffer_len()];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        ip.emit(&mut ipv6::Packet::new_unchecked(&mut f[14..]))
            .unwrap();
        icmp.emit(&mut icmpv6::Packet::new_unchecked(&mut f[54..]), &src, &dst)
            .unwrap();
        let h = parse_frame(&f).unwrap();
        assert_eq!((h.icmp_type, h.protocol), (2, IpProtocol::ICMPV6));
        let i = h.inner.unwrap();
        assert_eq!((i.l3_offset, i.l4_offset), (62, 110));
        assert_eq!(i.protocol, IpProtocol::UDP);
        assert_eq!((i.src_port, i.dst_port, i.has_ports), (5353, 53, true));
        assert_eq!(i.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_fragment_and_esp() {
        let f = udp6_vlan_frame();
        // Turn the dst-opts into a non-first Fragment header.
        let mut g = f.clone();
        g[18 + 6] = 44;
        ipv6::FragmentHeader::new_unchecked(&mut g[58..66]).emit(
            IpProtocol::UDP,
            &FragInfo {
                ident: 3,
                offset: 16,
                more: false,
            },
        );
        let h = parse_frame(&g).unwrap();
        assert!(h.is_fragment() && !h.l4_parsed);
        assert_eq!(
            (h.protocol, h.l4_offset, h.src_port),
            (IpProtocol::UDP, 66, 0)
        );
        // Atomic fragment: not a fragment, L4 decoded.
        ipv6::FragmentHeader::new_unchecked(&mut g[58..66])
            .emit(IpProtocol::UDP, &FragInfo::default());
        let h = parse_frame(&g).unwrap();
        assert!(!h.is_fragment() && h.frag.is_some() && h.l4_parsed);
        // ESP: walk stops, no L4.
        let mut g = f.clone();
        g[18 + 6] = 50;
        let h = parse_frame(&g).unwrap();
        assert_eq!(
            (h.protocol, h.l4_offset, h.l4_parsed),
            (IpProtocol::ESP, 58, false)
        );
    }
}
