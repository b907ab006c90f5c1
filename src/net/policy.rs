//! The input checks a kernel makes before IPVS sees a packet: `ip_rcv`'s
//! and `ipv6_rcv`'s header and address checks, the input route's martian
//! filter, `pkt_type` (only frames addressed to the host), refusing source
//! routes. rvsd has no kernel in front of it, so it makes them itself, on
//! every frame before anything else looks at it; each refusal is a drop
//! reason of its own.

use std::net::{IpAddr, Ipv6Addr};

use super::AddrSet;
use crate::drops::DropReason;
use crate::wire::parse::{Headers, L3};
use crate::wire::{checksum, ipv4, ipv6, EthernetAddress, IpProtocol};

/// What the checks need to know of the host.
pub struct Host<'a> {
    /// The receiving port's MAC.
    pub mac: EthernetAddress,
    /// Every VIP.
    pub vips: &'a AddrSet,
    /// Every own (interface) address on any port, link-local ones too.
    pub own: &'a AddrSet,
}

impl Host<'_> {
    #[inline]
    fn is_local(&self, a: &IpAddr) -> bool {
        self.vips.contains(a) || self.own.contains(a)
    }
}

/// Whether a parsed frame may go on, or the reason it is refused.
#[inline]
pub fn admit(frame: &[u8], h: &Headers, host: &Host<'_>) -> Result<(), DropReason> {
    if h.vlan.is_some() {
        return Err(DropReason::VlanUnknown);
    }
    // A parsed frame has its 14-byte Ethernet header.
    if frame.get(..6) != Some(&host.mac.0[..]) {
        group_frame(frame, h)?;
    }
    match h.l3 {
        L3::Ipv4 => ipv4_checks(frame, h, host),
        L3::Ipv6 => ipv6_checks(h, host),
        _ => Ok(()),
    }
}

/// A frame not to the port's own MAC: broadcast ARP, and IPv6 multicast
/// (neighbour discovery's groups; the address checks judge the group).
#[cold]
fn group_frame(frame: &[u8], h: &Headers) -> Result<(), DropReason> {
    const BROADCAST: [u8; 6] = [0xff; 6];
    /// RFC 2464: 33:33 and the group's low 32 bits.
    const V6_GROUP: [u8; 2] = [0x33, 0x33];
    let mac = frame.get(..6).ok_or(DropReason::Malformed)?;
    match (h.l3, h.dst) {
        (L3::Arp, _) if mac == BROADCAST => Ok(()),
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

#[inline]
fn ipv4_checks(frame: &[u8], h: &Headers, host: &Host<'_>) -> Result<(), DropReason> {
    let header = frame
        .get(h.l3_offset as usize..h.l4_offset as usize)
        .ok_or(DropReason::Malformed)?;
    let sound = match <&[u8; ipv4::HEADER_LEN]>::try_from(header) {
        Ok(plain) => checksum::verify_ipv4_header(plain),
        Err(_) => checksum::verify(header, 0),
    };
    if !sound {
        return Err(DropReason::BadIpChecksum);
    }
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
        return Err(DropReason::Malformed);
    };
    if !ipv4::is_unicast_host(src) || src == dst || host.is_local(&h.src) {
        return Err(DropReason::MartianSource);
    }
    if !ipv4::is_unicast_host(dst) {
        return Err(DropReason::MartianDestination);
    }
    if h.source_routed {
        return Err(DropReason::SourceRoute);
    }
    Ok(())
}

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
        ipv6::is_unicast_host(&src) && src != dst && !host.is_local(&h.src)
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
        let h = parse_frame(frame).unwrap();
        admit(
            frame,
            &h,
            &Host {
                mac: MAC,
                vips: &vips,
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
