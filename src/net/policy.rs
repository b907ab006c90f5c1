//! The input checks a kernel makes before IPVS sees a packet: `ip_rcv`'s
//! and `ipv6_rcv`'s header and address checks, the input route's martian
//! filter, `pkt_type` (only frames addressed to the host), refusing source
//! routes. rvsd has no kernel in front of it, so it makes them itself, on
//! every frame before anything else looks at it (after
//! [`super::vlan::ingress`] has found the frame's interface); each refusal
//! is a drop reason of its own.

use std::net::{IpAddr, Ipv6Addr};

use super::AddrSet;
use crate::drops::DropReason;
use crate::wire::parse::{Headers, L3};
use crate::wire::{checksum, ipv4, ipv6, EthernetAddress, IpProtocol};

/// What the checks need to know of the host.
pub struct Host<'a> {
    /// The receiving port's MAC.
    pub mac: EthernetAddress,
    /// Every VIP and own address: no packet from outside comes from one.
    pub locals: &'a AddrSet,
    /// Every own (interface) address on any port, link-local ones too.
    pub own: &'a AddrSet,
}

/// Whether a parsed frame may go on, or the reason it is refused. Every
/// forwarded frame pays for this: the common case (untagged IPv4 to the
/// port's MAC) is straight-line integer work.
#[inline(always)]
pub fn admit(frame: &[u8], h: &Headers, host: &Host<'_>) -> Result<(), DropReason> {
    if !to_mac(frame, &host.mac) {
        l2_checks(frame, h)?;
    }
    match (h.l3, &h.src, &h.dst) {
        (L3::Ipv4, IpAddr::V4(s), IpAddr::V4(d)) => {
            ipv4_checks(frame, h, u32::from(*s), u32::from(*d), host)
        }
        (L3::Ipv6, _, _) => ipv6_checks(h, host),
        _ => Ok(()),
    }
}

/// The frame's destination is `mac` (two integer compares).
#[inline(always)]
fn to_mac(frame: &[u8], mac: &EthernetAddress) -> bool {
    let m = &mac.0;
    match frame.first_chunk::<6>() {
        Some(d) => {
            u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
                == u32::from_ne_bytes([m[0], m[1], m[2], m[3]])
                && u16::from_ne_bytes([d[4], d[5]]) == u16::from_ne_bytes([m[4], m[5]])
        }
        None => false,
    }
}

/// A frame not to the port's own MAC: broadcast ARP and
/// IPv6 multicast (neighbour discovery's groups; the address checks judge
/// the group) go on.
#[cold]
fn l2_checks(frame: &[u8], h: &Headers) -> Result<(), DropReason> {
    const BROADCAST: [u8; 6] = [0xff; 6];
    /// RFC 2464: 33:33 and the group's low 32 bits.
    const V6_GROUP: [u8; 2] = [0x33, 0x33];
    let mac = frame.first_chunk::<6>().ok_or(DropReason::Malformed)?;
    match (h.l3, h.dst) {
        (L3::Arp, _) if *mac == BROADCAST => Ok(()),
        (L3::Ipv6, IpAddr::V6(g)) if mac[..2] == V6_GROUP && g.is_multicast() => {
            if mac[2..] == g.octets()[12..] {
                Ok(())
            } else {
                Err(DropReason::NotForUs)
            }
        }
        _ => Err(DropReason::NotForUs),
    }
}

#[inline(always)]
fn ipv4_checks(
    frame: &[u8],
    h: &Headers,
    src: u32,
    dst: u32,
    host: &Host<'_>,
) -> Result<(), DropReason> {
    let l3 = h.l3_offset as usize;
    let sound = if h.l4_offset as usize == l3 + ipv4::HEADER_LEN {
        frame
            .get(l3..)
            .and_then(|b| b.first_chunk::<{ ipv4::HEADER_LEN }>())
            .is_some_and(checksum::verify_ipv4_header)
    } else {
        with_options_sound(frame, h)
    };
    if !sound {
        return Err(DropReason::BadIpChecksum);
    }
    if !unicast_v4(src) || src == dst || host.locals.contains_v4(src) {
        return Err(DropReason::MartianSource);
    }
    if !unicast_v4(dst) {
        return Err(DropReason::MartianDestination);
    }
    if h.source_routed {
        return Err(DropReason::SourceRoute);
    }
    Ok(())
}

/// The header checksum of an IPv4 header with options.
#[cold]
fn with_options_sound(frame: &[u8], h: &Headers) -> bool {
    frame
        .get(h.l3_offset as usize..h.l4_offset as usize)
        .is_some_and(|header| checksum::verify(header, 0))
}

/// [`ipv4::is_unicast_host`] on the address as an integer, by its first
/// octet (one load from a table built from it).
#[inline(always)]
fn unicast_v4(a: u32) -> bool {
    UNICAST_FIRST_OCTET[(a >> 24) as usize]
}

static UNICAST_FIRST_OCTET: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ipv4::is_unicast_host(std::net::Ipv4Addr::new(i as u8, 1, 1, 1));
        i += 1;
    }
    t
};

#[cold]
fn ipv6_checks(h: &Headers, host: &Host<'_>) -> Result<(), DropReason> {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (h.src, h.dst) else {
        return Err(DropReason::Malformed);
    };
    let icmp = h.protocol == IpProtocol::ICMPV6;
    let source_ok = if src.is_unspecified() {
        // Duplicate address detection solicits from `::` to a group.
        icmp && dst.is_multicast()
    } else if is_link_local(&src) {
        // Link-local sources stay on their link: to us, never forwarded.
        is_link_local(&dst) || dst.is_multicast() || host.own.contains(&h.dst)
    } else {
        ipv6::is_unicast_host(&src) && src != dst && !host.locals.contains(&h.src)
    };
    if !source_ok {
        return Err(DropReason::MartianSource);
    }
    // Neighbour discovery and MLD go to groups: ICMPv6 decides the rest.
    let dest_ok = ipv6::is_unicast_host(&dst) || (icmp && dst.is_multicast());
    if !dest_ok {
        return Err(DropReason::MartianDestination);
    }
    if h.source_routed {
        return Err(DropReason::SourceRoute);
    }
    Ok(())
}

#[inline]
fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::forward::testutil::Pkt;
    use crate::wire::parse::parse_frame;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn udp(src: &str, dst: &str) -> Vec<u8> {
        Pkt::udp(ip(src), 1000, ip(dst), 53)
            .with(|p| {
                p.dst_mac = MAC;
                p.src_mac = PEER;
            })
            .frame()
    }

    fn judge(frame: &[u8]) -> Result<(), DropReason> {
        let vips = AddrSet::new([ip("10.0.0.100"), ip("2001:db8::100")]);
        let own = AddrSet::new([ip("10.0.0.2"), ip("2001:db8::2"), ip("fe80::1")]);
        let locals = vips.union(&own);
        let h = parse_frame(frame).unwrap();
        admit(
            frame,
            &h,
            &Host {
                mac: MAC,
                locals: &locals,
                own: &own,
            },
        )
    }

    #[test]
    fn ordinary_traffic_passes() {
        assert_eq!(judge(&udp("192.0.2.1", "10.0.0.100")), Ok(()));
        assert_eq!(judge(&udp("2001:db8::7", "2001:db8::100")), Ok(()));
        assert_eq!(judge(&udp("10.1.0.11", "192.0.2.1")), Ok(()));
    }

    #[test]
    fn martian_sources() {
        for src in [
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.5",
            "240.0.0.1",
            "255.255.255.255",
            "10.0.0.100",
            "10.0.0.2",
        ] {
            assert_eq!(
                judge(&udp(src, "10.0.0.100")),
                Err(DropReason::MartianSource),
                "{src}"
            );
        }
        for src in [
            "::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "2001:db8::100",
            "fe80::7",
            "::",
        ] {
            assert_eq!(
                judge(&udp(src, "2001:db8::100")),
                Err(DropReason::MartianSource),
                "{src}"
            );
        }
    }

    #[test]
    fn martian_destinations() {
        for dst in ["127.0.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"] {
            assert_eq!(
                judge(&udp("192.0.2.1", dst)),
                Err(DropReason::MartianDestination),
                "{dst}"
            );
        }
        for dst in ["::1", "ff02::1", "::ffff:10.0.0.100"] {
            assert_eq!(
                judge(&udp("2001:db8::7", dst)),
                Err(DropReason::MartianDestination),
                "{dst}"
            );
        }
    }

    #[test]
    fn a_bad_header_checksum_is_refused() {
        let mut f = udp("192.0.2.1", "10.0.0.100");
        f[14 + 10] ^= 1;
        assert_eq!(judge(&f), Err(DropReason::BadIpChecksum));
    }

    #[test]
    fn only_frames_for_us() {
        let mut f = udp("192.0.2.1", "10.0.0.100");
        f[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
        assert_eq!(judge(&f), Err(DropReason::NotForUs));
        f[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(judge(&f), Err(DropReason::NotForUs));
        f[..6].copy_from_slice(&[1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(judge(&f), Err(DropReason::NotForUs));
    }
}
