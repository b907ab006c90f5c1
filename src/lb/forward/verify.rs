//! Full (non-incremental) checksum verification of a frame, down through
//! tunnels and ICMP quotes: the oracle for the tests and the fuzzers.
//!
//! Checked: the IPv4 header; the TCP, UDP, ICMP and ICMPv6 checksums of a
//! whole datagram; an ICMP error's quoted IPv4 header, and the quoted
//! datagram in full when the quote holds all of it; IPIP / 6in4 / 6in6
//! inner packets, GRE (with its checksum when the C flag is set) and GUE
//! (UDP to `gue_port`) payloads, recursively. A zero UDP checksum is
//! accepted on IPv4, and on IPv6 only for GUE (RFC 6935, as the kernel's
//! `nocsum`). Fragments' L4 checksums and SCTP's CRC are not checked.
//!
//! This is tooling: it allocates (a scratch frame per nested datagram).

use crate::wire::checksum;
use crate::wire::parse::{parse_frame, Headers, L3};
use crate::wire::IpProtocol;

/// `Ok` if every checksum in `frame` verifies, else which one does not.
pub fn verify_frame(frame: &[u8], gue_port: Option<u16>) -> Result<(), &'static str> {
    verify_depth(frame, gue_port, 0)
}

fn verify_depth(frame: &[u8], gue_port: Option<u16>, depth: u8) -> Result<(), &'static str> {
    if depth > 4 {
        return Ok(());
    }
    let h = parse_frame(frame).map_err(|_| "parse")?;
    if !h.is_ip() {
        return Ok(());
    }
    let l3 = h.l3_offset as usize;
    let l4 = h.l4_offset as usize;
    let end = h.l3_end();
    if h.l3 == L3::Ipv4 && !checksum::verify(&frame[l3..l4], 0) {
        return Err("ipv4 header");
    }
    if h.is_fragment() || !h.l4_parsed && !is_tunnel(h.protocol) {
        return Ok(());
    }
    let seg = &frame[l4..end];
    let ph = |p: IpProtocol, len: usize| checksum::pseudo_header(&h.src, &h.dst, p, len as u32);
    match h.protocol {
        IpProtocol::TCP if !checksum::verify(seg, ph(IpProtocol::TCP, seg.len())) => {
            return Err("tcp");
        }
        IpProtocol::UDP => {
            let ulen = u16::from_be_bytes([seg[4], seg[5]]) as usize;
            let ck = u16::from_be_bytes([seg[6], seg[7]]);
            let gue = gue_port == Some(h.dst_port);
            if ck == 0 {
                if h.l3 == L3::Ipv6 && !gue {
                    return Err("udp zero checksum on ipv6");
                }
            } else if !checksum::verify(
                seg.get(..ulen).ok_or("udp length")?,
                ph(IpProtocol::UDP, ulen),
            ) {
                return Err("udp");
            }
            if gue {
                let g = seg.get(8..12).ok_or("gue truncated")?;
                if g[0] != 0 {
                    return Err("gue version/hlen");
                }
                let inner = seg.get(12..ulen).ok_or("gue truncated")?;
                // The tunnel's payload is the client's packet: a UDP
                // datagram to the GUE port in there is not another GUE.
                verify_datagram(inner, IpProtocol(g[1]), None, depth)?;
            }
        }
        IpProtocol::ICMP if h.l3 == L3::Ipv4 => {
            if !checksum::verify(seg, 0) {
                return Err("icmp");
            }
            verify_quote(frame, &h, gue_port, depth)?;
        }
        IpProtocol::ICMPV6 if h.l3 == L3::Ipv6 => {
            if !checksum::verify(seg, ph(IpProtocol::ICMPV6, seg.len())) {
                return Err("icmpv6");
            }
            verify_quote(frame, &h, gue_port, depth)?;
        }
        IpProtocol::IPIP | IpProtocol::IPV6 => {
            verify_datagram(seg, h.protocol, None, depth)?;
        }
        IpProtocol::GRE => {
            let g = seg.get(..4).ok_or("gre truncated")?;
            let csum = g[0] & 0x80 != 0;
            if csum && !checksum::verify(seg, 0) {
                return Err("gre");
            }
            let proto = match u16::from_be_bytes([g[2], g[3]]) {
                0x0800 => IpProtocol::IPIP,
                0x86dd => IpProtocol::IPV6,
                _ => return Ok(()),
            };
            let at = if csum { 8 } else { 4 };
            verify_datagram(seg.get(at..).ok_or("gre truncated")?, proto, None, depth)?;
        }
        _ => {}
    }
    Ok(())
}

fn is_tunnel(p: IpProtocol) -> bool {
    matches!(p, IpProtocol::IPIP | IpProtocol::IPV6 | IpProtocol::GRE)
}

/// Verifies an IP datagram (4 = IPv4, 41 = IPv6) by framing it.
fn verify_datagram(
    d: &[u8],
    proto: IpProtocol,
    gue_port: Option<u16>,
    depth: u8,
) -> Result<(), &'static str> {
    let et: u16 = match proto {
        IpProtocol::IPIP => 0x0800,
        IpProtocol::IPV6 => 0x86dd,
        _ => return Err("tunnel protocol"),
    };
    let mut f = vec![0u8; 14 + d.len()];
    f[12..14].copy_from_slice(&et.to_be_bytes());
    f[14..].copy_from_slice(d);
    verify_depth(&f, gue_port, depth + 1)
}

/// An ICMP error's quote: the IPv4 header, and the whole datagram when
/// the quote holds exactly all of it.
fn verify_quote(
    frame: &[u8],
    h: &Headers,
    gue_port: Option<u16>,
    depth: u8,
) -> Result<(), &'static str> {
    let Some(inner) = h.inner else {
        return Ok(());
    };
    let q = &frame[inner.l3_offset as usize..h.l3_end()];
    let ihl = inner.l4_offset as usize - inner.l3_offset as usize;
    let (total, proto) = match h.l3 {
        L3::Ipv4 => {
            if !checksum::verify(&q[..ihl.min(q.len())], 0) {
                return Err("quoted ipv4 header");
            }
            (u16::from_be_bytes([q[2], q[3]]) as usize, IpProtocol::IPIP)
        }
        _ => (
            40 + u16::from_be_bytes([q[4], q[5]]) as usize,
            IpProtocol::IPV6,
        ),
    };
    if total == q.len() {
        verify_datagram(q, proto, gue_port, depth).map_err(|e| match e {
            "tcp" => "quoted tcp",
            "udp" => "quoted udp",
            e => e,
        })?;
    }
    Ok(())
}
