//! IPv6 neighbour discovery (RFC 4861) for our addresses: a solicitation
//! for one of our addresses (own or VIP) becomes the advertisement in place;
//! solicitations and advertisements teach neighbours; solicitations and
//! unsolicited advertisements are built for requests and new VIPs.
//!
//! Validation (§7.1.1, §7.1.2): hop limit 255, code 0, valid ICMPv6
//! checksum, at least 24 bytes, no zero-length option, target not
//! multicast; a solicitation from the unspecified address (duplicate
//! address detection) must go to a solicited-node group and carry no
//! source link-layer option; a multicast advertisement must not be
//! solicited. Messages behind extension headers are not accepted (ND does
//! not use them in practice).
//!
//! Learning: the source of a solicitation for us with a source link-layer
//! option ([`Evidence::Request`]); the target of a solicited advertisement
//! ([`Evidence::Reply`]) or an unsolicited one with the override flag
//! ([`Evidence::Overheard`]), with its target link-layer option. Only
//! addresses on a connected network of the port or link-local.

use std::net::{IpAddr, Ipv6Addr};

use crate::wire::icmpv6::{self, NdFlags};
use crate::wire::parse::{Headers, L3};
use crate::wire::{ethernet, ipv6, ChecksumMode, EtherType, EthernetAddress, IpProtocol};

use super::addr::{ipv6_multicast_mac, solicited_node, ALL_NODES};
use super::iface::{AddrKind, Iface};
use super::learn::{Evidence, Learned};
use super::{BuildError, DropReason, Outcome};

/// Hop limit of every ND message, checked on receipt.
pub const ND_HOP_LIMIT: u8 = 255;
/// NS or NA with one link-layer address option.
pub const ND_MSG_LEN: usize = icmpv6::ND_LEN + 8;
/// Ethernet + IPv6 + NS/NA with a link-layer option.
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ND_MSG_LEN;

/// `ff02::1:ff00:0/104`.
fn is_solicited_node(a: &Ipv6Addr) -> bool {
    let o = a.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
}

/// Handles an NS or NA (`h` parsed it as ICMPv6 type 135/136).
pub fn process(buf: &mut [u8], h: &Headers, iface: &Iface) -> Outcome {
    let invalid = Outcome::drop(DropReason::NdInvalid);
    let (l3, l4, end) = (h.l3_offset as usize, h.l4_offset as usize, h.l3_end());
    let (L3::Ipv6, IpAddr::V6(src), IpAddr::V6(dst)) = (h.l3, h.src, h.dst) else {
        return invalid;
    };
    if h.ttl != ND_HOP_LIMIT || l4 != l3 + ipv6::HEADER_LEN || h.frag.is_some() {
        return invalid;
    }
    let Some(msg) = buf.get(l4..end) else {
        return invalid;
    };
    let Ok(p) = icmpv6::Packet::new_checked(msg) else {
        return invalid;
    };
    let Ok(repr) = icmpv6::Repr::parse(&p, &src, &dst, ChecksumMode::Verify) else {
        return invalid;
    };
    let learn = |ip: Ipv6Addr, mac: EthernetAddress, evidence: Evidence| {
        let ip = IpAddr::V6(ip);
        (mac.is_unicast() && iface.is_connected(&ip) && iface.lookup(&ip).is_none()).then_some(
            Learned {
                port: iface.port(),
                ip,
                mac,
                evidence,
            },
        )
    };
    match repr {
        icmpv6::Repr::NeighborSolicit { target, lladdr } => {
            if target.is_multicast() {
                return invalid;
            }
            let dad = src.is_unspecified();
            if dad && (!is_solicited_node(&dst) || lladdr.is_some()) {
                return invalid;
            }
            let kind = iface.lookup(&IpAddr::V6(target));
            if kind.is_none() {
                return Outcome::drop(DropReason::NdNotOurs);
            }
            let learned = match lladdr {
                Some(mac) if !dad => learn(src, mac, Evidence::Request),
                _ => None,
            };
            if kind == Some(AddrKind::Own) && iface.has_twin() {
                // The kernel twin has the own addresses and answers for them.
                return Outcome::kernel_or(iface, DropReason::NdHandled).with(learned);
            }
            let peer_mac = match buf.get(6..).and_then(EthernetAddress::from_bytes) {
                Some(m) => m,
                None => return invalid,
            };
            // The advertisement: from the target, to the solicitor (all
            // nodes for DAD), solicited unless DAD, override (we own it).
            let (to, to_mac, flags) = if dad {
                (ALL_NODES, ipv6_multicast_mac(&ALL_NODES), NdFlags::OVERRIDE)
            } else {
                (src, peer_mac, NdFlags::SOLICITED | NdFlags::OVERRIDE)
            };
            match write_na(&mut buf[..], l3, iface.mac(), to_mac, target, to, flags) {
                Ok(len) => Outcome::reply(len).with(learned),
                Err(_) => Outcome::drop(DropReason::NdNoRoom).with(learned),
            }
        }
        icmpv6::Repr::NeighborAdvert {
            flags,
            target,
            lladdr,
        } => {
            if target.is_multicast() || (dst.is_multicast() && flags.contains(NdFlags::SOLICITED)) {
                return invalid;
            }
            let evidence = if flags.contains(NdFlags::SOLICITED) {
                Some(Evidence::Reply)
            } else if flags.contains(NdFlags::OVERRIDE) {
                Some(Evidence::Overheard)
            } else {
                None
            };
            let learned = match (lladdr, evidence) {
                (Some(mac), Some(e)) => learn(target, mac, e),
                _ => None,
            };
            Outcome::kernel_or(iface, DropReason::NdHandled).with(learned)
        }
        _ => invalid,
    }
}

/// Writes Ethernet (keeping any VLAN tags before `l3`) + IPv6 + an
/// advertisement for `target` at `mac`; returns the frame length.
fn write_na(
    buf: &mut [u8],
    l3: usize,
    mac: EthernetAddress,
    to_mac: EthernetAddress,
    target: Ipv6Addr,
    to: Ipv6Addr,
    flags: NdFlags,
) -> Result<usize, BuildError> {
    let len = l3 + ipv6::HEADER_LEN + ND_MSG_LEN;
    let Some(frame) = buf.get_mut(..len) else {
        return Err(BuildError::NoRoom);
    };
    let mut eth = ethernet::Packet::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(to_mac);
    eth.set_src_addr(mac);
    write_ip_nd(
        &mut frame[l3..],
        target,
        to,
        &icmpv6::Repr::NeighborAdvert {
            flags,
            target,
            lladdr: Some(mac),
        },
    )?;
    Ok(len)
}

/// IPv6 header (hop limit 255) + the ND message, checksummed.
fn write_ip_nd(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &icmpv6::Repr,
) -> Result<(), BuildError> {
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: msg.buffer_len(),
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    };
    let Some(b) = buf.get_mut(..ip.buffer_len()) else {
        return Err(BuildError::NoRoom);
    };
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut b[..]))
        .map_err(|_| BuildError::NoRoom)?;
    msg.emit(
        &mut icmpv6::Packet::new_unchecked(&mut b[ipv6::HEADER_LEN..]),
        &src,
        &dst,
    )
    .map_err(|_| BuildError::NoRoom)
}

fn write_frame(
    buf: &mut [u8],
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &icmpv6::Repr,
) -> Result<usize, BuildError> {
    let Some(frame) = buf.get_mut(..FRAME_LEN) else {
        return Err(BuildError::NoRoom);
    };
    ethernet::Repr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        ethertype: EtherType::IPV6,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut frame[..]))
    .map_err(|_| BuildError::NoRoom)?;
    write_ip_nd(&mut frame[ethernet::HEADER_LEN..], src, dst, msg)?;
    Ok(FRAME_LEN)
}

/// A solicitation for `target` from `iface` (source address per
/// [`Iface::source_for`]), with our source link-layer option: to the
/// target's solicited-node group and its `33:33:ff:..` MAC, or unicast to
/// the target at `unicast` to re-confirm a stale entry. 86 bytes.
pub fn build_solicit(
    buf: &mut [u8],
    iface: &Iface,
    target: Ipv6Addr,
    unicast: Option<EthernetAddress>,
) -> Result<usize, BuildError> {
    let src = iface.source_v6_for(&target).ok_or(BuildError::NoSource)?;
    let (dst, dst_mac) = match unicast {
        Some(m) => (target, m),
        None => {
            let g = solicited_node(&target);
            (g, ipv6_multicast_mac(&g))
        }
    };
    let msg = icmpv6::Repr::NeighborSolicit {
        target,
        lladdr: Some(iface.mac()),
    };
    write_frame(buf, dst_mac, iface.mac(), src, dst, &msg)
}

/// An unsolicited advertisement of `vip` at `mac` to all nodes (override
/// set, solicited clear: RFC 4861 §7.2.6), sent when a VIP is added. 86
/// bytes.
pub fn build_unsolicited_na(
    buf: &mut [u8],
    mac: EthernetAddress,
    vip: Ipv6Addr,
) -> Result<usize, BuildError> {
    let msg = icmpv6::Repr::NeighborAdvert {
        flags: NdFlags::OVERRIDE,
        target: vip,
        lladdr: Some(mac),
    };
    write_frame(
        buf,
        ipv6_multicast_mac(&ALL_NODES),
        mac,
        vip,
        ALL_NODES,
        &msg,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Action;
    use super::*;
    use crate::ids::PortIndex;
    use crate::wire::parse_frame;

    fn run(f: &[u8], room: usize) -> (Vec<u8>, Outcome) {
        let mut buf = f.to_vec();
        buf.resize(f.len() + room, 0);
        let h = parse_frame(f).unwrap();
        let o = process(&mut buf, &h, &iface());
        (buf, o)
    }

    /// Checks every field of an NA frame (untagged).
    fn check_na(
        f: &[u8],
        eth_dst: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        flags: NdFlags,
    ) {
        assert_eq!(f.len(), 86);
        assert_eq!(&f[0..6], &eth_dst.0);
        assert_eq!(&f[6..12], &OUR_MAC.0);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(&f[14..18], &[0x60, 0, 0, 0], "version 6, tc 0, flow 0");
        assert_eq!(ip.payload_len(), 32);
        assert_eq!(ip.next_header(), IpProtocol::ICMPV6);
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (src, dst));
        let m = &f[54..];
        assert_eq!((m[0], m[1]), (136, 0));
        assert_eq!(m[4], flags.0);
        assert_eq!(&m[5..8], &[0, 0, 0]);
        assert_eq!(&m[8..24], &target.octets());
        assert_eq!(&m[24..26], &[2, 1], "target link-layer option");
        assert_eq!(&m[26..32], &OUR_MAC.0);
        assert!(icmp6_verifies(f));
    }

    #[test]
    fn ns_to_na_for_own_and_vip() {
        for target in [OWN6, VIP6] {
            let ns = ns_frame(OWN6_PEER, target, true);
            assert_eq!(ns.len(), 86);
            // Solicited-node addressing of the request.
            let g = solicited_node(&v6(target));
            assert_eq!(&ns[0..6], &ipv6_multicast_mac(&g).0);
            assert_eq!(&ns[38..54], &g.octets());
            let (out, o) = run(&ns, 0);
            assert_eq!(o.action, Action::Reply { len: 86 }, "{target}");
            check_na(
                &out[..86],
                PEER_MAC,
                v6(target),
                v6(OWN6_PEER),
                v6(target),
                NdFlags::SOLICITED | NdFlags::OVERRIDE,
            );
            assert_eq!(
                o.learned,
                Some(Learned {
                    port: PortIndex(0),
                    ip: ip(OWN6_PEER),
                    mac: PEER_MAC,
                    evidence: Evidence::Request
                })
            );
        }
    }

    #[test]
    fn ns_without_option_grows() {
        let ns = ns_frame(OWN6_PEER, OWN6, false);
        assert_eq!(ns.len(), 78);
        // No room: dropped.
        let (_, o) = run(&ns, 0);
        assert_eq!(o.action, Action::Drop(DropReason::NdNoRoom));
        let (out, o) = run(&ns, 8);
        assert_eq!(o.action, Action::Reply { len: 86 });
        assert_eq!(o.learned, None, "no option: nothing learned");
        check_na(
            &out,
            PEER_MAC,
            v6(OWN6),
            v6(OWN6_PEER),
            v6(OWN6),
            NdFlags::SOLICITED | NdFlags::OVERRIDE,
        );
    }

    #[test]
    fn ns_from_link_local_and_dad() {
        let ns = ns_frame("fe80::5054:ff:fe12:3456", OWN6, true);
        let (out, o) = run(&ns, 0);
        assert_eq!(o.action, Action::Reply { len: 86 });
        assert_eq!(o.learned.unwrap().ip, ip("fe80::5054:ff:fe12:3456"));
        assert_eq!(&out[38..54], &v6("fe80::5054:ff:fe12:3456").octets());
        // DAD probe for our VIP: answered to all nodes, not solicited.
        let ns = ns_frame("::", VIP6, false);
        let (out, o) = run(&ns, 8);
        assert_eq!(o, Outcome::reply(86));
        check_na(
            &out,
            ipv6_multicast_mac(&ALL_NODES),
            v6(VIP6),
            ALL_NODES,
            v6(VIP6),
            NdFlags::OVERRIDE,
        );
        // DAD with a source option is invalid.
        let ns = ns_frame("::", VIP6, true);
        assert_eq!(run(&ns, 0).1, Outcome::drop(DropReason::NdInvalid));
    }

    #[test]
    fn ns_on_vlan_keeps_tag() {
        let mut ns = ns_frame(OWN6_PEER, VIP6, true);
        ns.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        let (out, o) = run(&ns, 0);
        assert_eq!(o.action, Action::Reply { len: 90 });
        assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 0x2a, 0x86, 0xdd]);
        let mut untagged = out[..90].to_vec();
        untagged.drain(12..16);
        check_na(
            &untagged,
            PEER_MAC,
            v6(VIP6),
            v6(OWN6_PEER),
            v6(VIP6),
            NdFlags::SOLICITED | NdFlags::OVERRIDE,
        );
    }

    #[test]
    fn ns_rejections() {
        let invalid = Outcome::drop(DropReason::NdInvalid);
        // Not ours.
        let ns = ns_frame(OWN6_PEER, "2001:db8::77", true);
        assert_eq!(run(&ns, 0).1, Outcome::drop(DropReason::NdNotOurs));
        // Hop limit not 255 (forwarded by a router).
        let mut ns = ns_frame(OWN6_PEER, OWN6, true);
        ns[21] = 254;
        assert_eq!(run(&ns, 0).1, invalid);
        // Bad checksum.
        let mut ns = ns_frame(OWN6_PEER, OWN6, true);
        ns[60] ^= 0x40;
        assert_eq!(run(&ns, 0).1, invalid);
        // Nonzero code (checksum fixed).
        let mut ns = ns_frame(OWN6_PEER, OWN6, true);
        ns[55] = 1;
        let g = solicited_node(&v6(OWN6));
        icmpv6::Packet::new_unchecked(&mut ns[54..]).fill_checksum(&v6(OWN6_PEER), &g);
        assert_eq!(run(&ns, 0).1, invalid);
        // Zero-length option.
        let mut ns = ns_frame(OWN6_PEER, OWN6, true);
        ns[79] = 0;
        icmpv6::Packet::new_unchecked(&mut ns[54..]).fill_checksum(&v6(OWN6_PEER), &g);
        assert_eq!(run(&ns, 0).1, invalid);
    }

    #[test]
    fn na_learning() {
        let s_o = NdFlags::SOLICITED | NdFlags::OVERRIDE;
        // Solicited NA to us: confirmed.
        let na = na_frame(OWN6_PEER, OWN6, OWN6_PEER, s_o);
        let (out, o) = run(&na, 0);
        assert_eq!(o.action, Action::Drop(DropReason::NdHandled));
        assert_eq!(out[..na.len()], na[..], "untouched");
        assert_eq!(
            o.learned,
            Some(Learned {
                port: PortIndex(0),
                ip: ip(OWN6_PEER),
                mac: PEER_MAC,
                evidence: Evidence::Reply
            })
        );
        // Unsolicited override NA to all nodes: overheard.
        let na = na_frame(OWN6_PEER, "ff02::1", OWN6_PEER, NdFlags::OVERRIDE);
        assert_eq!(run(&na, 0).1.learned.unwrap().evidence, Evidence::Overheard);
        // Unsolicited without override: nothing.
        let na = na_frame(OWN6_PEER, "ff02::1", OWN6_PEER, NdFlags(0));
        assert_eq!(run(&na, 0).1, Outcome::drop(DropReason::NdHandled));
        // Solicited to a multicast group: invalid.
        let na = na_frame(OWN6_PEER, "ff02::1", OWN6_PEER, s_o);
        assert_eq!(run(&na, 0).1, Outcome::drop(DropReason::NdInvalid));
        // Off-link target: not learned.
        let na = na_frame(OWN6_PEER, OWN6, "2001:db9::1", s_o);
        assert_eq!(run(&na, 0).1.learned, None);
        // Someone advertising our VIP: not learned.
        let na = na_frame(OWN6_PEER, "ff02::1", VIP6, NdFlags::OVERRIDE);
        assert_eq!(run(&na, 0).1, Outcome::drop(DropReason::NdHandled));
    }

    #[test]
    fn solicit_bytes_and_round_trip() {
        let mut buf = [0u8; 100];
        let n = build_solicit(&mut buf, &iface(), v6("2001:db8::1:2:3"), None).unwrap();
        assert_eq!(n, 86);
        let f = &buf[..n];
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        assert_eq!(&f[6..12], &OUR_MAC.0);
        let ip6 = ipv6::Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip6.src_addr(), v6(OWN6));
        assert_eq!(ip6.dst_addr(), v6("ff02::1:ff02:3"));
        assert_eq!((ip6.hop_limit(), ip6.payload_len()), (255, 32));
        let m = &f[54..];
        assert_eq!((m[0], m[1]), (135, 0));
        assert_eq!(&m[4..8], &[0, 0, 0, 0]);
        assert_eq!(&m[8..24], &v6("2001:db8::1:2:3").octets());
        assert_eq!(&m[24..26], &[1, 1], "source link-layer option");
        assert_eq!(&m[26..32], &OUR_MAC.0);
        assert!(icmp6_verifies(f));
        // Link-local target: link-local source.
        build_solicit(&mut buf, &iface(), v6("fe80::1"), Some(PEER_MAC)).unwrap();
        assert_eq!(&buf[0..6], &PEER_MAC.0);
        assert_eq!(&buf[22..38], &v6("fe80::ff:fe00:1").octets());
        assert_eq!(&buf[38..54], &v6("fe80::1").octets(), "unicast probe");
        assert!(icmp6_verifies(&buf[..86]));
        assert_eq!(
            build_solicit(&mut [0u8; 85], &iface(), v6(OWN6_PEER), None),
            Err(BuildError::NoRoom)
        );
        let v4only = Iface::new(0, OUR_MAC).with_addr("10.0.0.2/24".parse().unwrap());
        assert_eq!(
            build_solicit(&mut buf, &v4only, v6(OWN6_PEER), None),
            Err(BuildError::NoSource)
        );
        // Round trip: a peer stack configured like us but with the roles
        // swapped answers our NS; the answer teaches us the peer.
        build_solicit(&mut buf, &iface(), v6(OWN6_PEER), None).unwrap();
        let peer = Iface::new(0, PEER_MAC).with_addr("2001:db8::1/64".parse().unwrap());
        let mut f = buf[..86].to_vec();
        let h = parse_frame(&f).unwrap();
        let o = process(&mut f, &h, &peer);
        assert_eq!(o.action, Action::Reply { len: 86 });
        assert_eq!(o.learned.unwrap().mac, OUR_MAC);
        let h = parse_frame(&f).unwrap();
        let o = process(&mut f, &h, &iface());
        assert_eq!(o.action, Action::Drop(DropReason::NdHandled));
        assert_eq!(
            o.learned,
            Some(Learned {
                port: PortIndex(0),
                ip: ip(OWN6_PEER),
                mac: PEER_MAC,
                evidence: Evidence::Reply
            })
        );
    }

    #[test]
    fn unsolicited_na_bytes() {
        let mut buf = [0u8; 86];
        assert_eq!(build_unsolicited_na(&mut buf, OUR_MAC, v6(VIP6)), Ok(86));
        check_na(
            &buf,
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            v6(VIP6),
            ALL_NODES,
            v6(VIP6),
            NdFlags::OVERRIDE,
        );
        // A neighbour that already knows the VIP (on another port's stack)
        // would learn it as overheard.
        let peer = Iface::new(0, PEER_MAC).with_addr("2001:db8::1/64".parse().unwrap());
        let mut f = buf.to_vec();
        let h = parse_frame(&f).unwrap();
        let o = process(&mut f, &h, &peer);
        assert_eq!(o.learned.unwrap().evidence, Evidence::Overheard);
        assert_eq!(o.learned.unwrap().mac, OUR_MAC);
    }
}
