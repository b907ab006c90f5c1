//! ARP (RFC 826) for our addresses: answer requests in place, learn
//! senders, build requests and gratuitous announcements.
//!
//! Learning rules (RFC 826's merge, as Linux applies it): a sender on a
//! connected network of the port is reported as [`Evidence::Reply`] when it
//! answered one of our addresses, [`Evidence::Request`] when it asked for
//! one, and [`Evidence::Overheard`] otherwise (gratuitous ARP, requests for
//! other hosts: they only update entries the table already has). Probes
//! (sender 0.0.0.0, RFC 5227) are answered but teach nothing. A sender
//! claiming one of our addresses is a conflict: counted, neither answered
//! nor learned.

use std::net::Ipv4Addr;

use crate::wire::arp::{self as warp, Operation};
use crate::wire::parse::Headers;
use crate::wire::{ethernet, EtherType, EthernetAddress};

use super::iface::{AddrKind, Iface};
use super::learn::{Evidence, Learned};
use super::{BuildError, DropReason, Outcome};

/// An Ethernet + ARP frame without padding.
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + warp::ETHERNET_IPV4_LEN;
/// The minimum Ethernet frame (without FCS).
pub const MIN_FRAME_LEN: usize = 60;

/// Handles an ARP frame (`h.l3 == L3::Arp`) received on `iface`; a request
/// for one of our addresses (own or VIP) becomes the reply in place
/// (same length, padding kept).
pub fn process(buf: &mut [u8], h: &Headers, iface: &Iface) -> Outcome {
    let l3 = h.l3_offset as usize;
    let frame_len = h.l3_end() + h.padding as usize;
    let Some(arp_bytes) = buf.get(l3..h.l3_end()) else {
        return Outcome::drop(DropReason::ArpInvalid);
    };
    let Ok(req) = warp::Packet::new_checked(arp_bytes).and_then(|p| warp::Repr::parse(&p)) else {
        return Outcome::drop(DropReason::ArpInvalid);
    };
    let sha = req.source_hardware_addr;
    let (spa, tpa) = (req.source_protocol_addr, req.target_protocol_addr);
    if !matches!(req.operation, Operation::REQUEST | Operation::REPLY)
        || !sha.is_unicast()
        || sha == EthernetAddress::ZERO
    {
        return Outcome::drop(DropReason::ArpInvalid);
    }
    if sha == iface.mac() {
        // Our own announcement, looped back.
        return Outcome::drop(DropReason::ArpHandled);
    }
    if iface.lookup(&spa.into()).is_some() {
        return Outcome::drop(DropReason::ArpConflict);
    }
    let target = iface.lookup(&tpa.into());
    let for_us = target.is_some();
    let learned = if !spa.is_unspecified() && iface.is_connected(&spa.into()) {
        let evidence = match (for_us, req.operation) {
            (true, Operation::REQUEST) => Evidence::Request,
            (true, _) => Evidence::Reply,
            (false, _) => Evidence::Overheard,
        };
        Some(Learned {
            port: iface.port(),
            ip: spa.into(),
            mac: sha,
            evidence,
        })
    } else {
        None
    };
    if !for_us {
        return if req.operation == Operation::REQUEST && spa != tpa {
            Outcome::drop(DropReason::ArpNotOurs).with(learned)
        } else {
            // A reply or an announcement: the kernel twin learns from it too.
            Outcome::kernel_or(iface, DropReason::ArpHandled).with(learned)
        };
    }
    if req.operation != Operation::REQUEST {
        return Outcome::kernel_or(iface, DropReason::ArpHandled).with(learned);
    }
    if target == Some(AddrKind::Own) && iface.has_twin() {
        // The kernel twin has the own addresses and answers for them.
        return Outcome::kernel_or(iface, DropReason::ArpHandled).with(learned);
    }
    // The reply, in place: to the requester, from us.
    let reply = req.reply(iface.mac());
    let mut eth = ethernet::Packet::new_unchecked(&mut buf[..]);
    eth.set_dst_addr(sha);
    eth.set_src_addr(iface.mac());
    let mut p = warp::Packet::new_unchecked(&mut buf[l3..h.l3_end()]);
    if reply.emit(&mut p).is_err() {
        return Outcome::drop(DropReason::ArpInvalid);
    }
    Outcome::reply(frame_len).with(learned)
}

/// Writes an ARP frame into `buf`: 60 bytes (zero padded) if it has room,
/// else 42 (the NIC pads). Returns the length.
fn emit(
    buf: &mut [u8],
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    r: &warp::Repr,
) -> Result<usize, BuildError> {
    let len = if buf.len() >= MIN_FRAME_LEN {
        MIN_FRAME_LEN
    } else if buf.len() >= FRAME_LEN {
        FRAME_LEN
    } else {
        return Err(BuildError::NoRoom);
    };
    let e = ethernet::Repr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        ethertype: EtherType::ARP,
    };
    e.emit(&mut ethernet::Packet::new_unchecked(&mut buf[..]))
        .map_err(|_| BuildError::NoRoom)?;
    r.emit(&mut warp::Packet::new_unchecked(
        &mut buf[ethernet::HEADER_LEN..FRAME_LEN],
    ))
    .map_err(|_| BuildError::NoRoom)?;
    buf[FRAME_LEN..len].fill(0);
    Ok(len)
}

/// A request for `target` from `iface` (source address: the own address on
/// `target`'s network, see [`Iface::source_for`]). Broadcast, or unicast to
/// `unicast` to re-confirm a stale entry.
pub fn build_request(
    buf: &mut [u8],
    iface: &Iface,
    target: Ipv4Addr,
    unicast: Option<EthernetAddress>,
) -> Result<usize, BuildError> {
    let src = iface.source_v4_for(&target).ok_or(BuildError::NoSource)?;
    let r = warp::Repr {
        operation: Operation::REQUEST,
        source_hardware_addr: iface.mac(),
        source_protocol_addr: src,
        target_hardware_addr: EthernetAddress::ZERO,
        target_protocol_addr: target,
    };
    emit(
        buf,
        unicast.unwrap_or(EthernetAddress::BROADCAST),
        iface.mac(),
        &r,
    )
}

/// A gratuitous ARP announcing `vip` at `mac` (RFC 5227 §3 announcement:
/// a broadcast request with sender and target address both `vip`), sent
/// when a VIP is added so that neighbours update their caches.
pub fn build_gratuitous(
    buf: &mut [u8],
    mac: EthernetAddress,
    vip: Ipv4Addr,
) -> Result<usize, BuildError> {
    let r = warp::Repr {
        operation: Operation::REQUEST,
        source_hardware_addr: mac,
        source_protocol_addr: vip,
        target_hardware_addr: EthernetAddress::ZERO,
        target_protocol_addr: vip,
    };
    emit(buf, EthernetAddress::BROADCAST, mac, &r)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Action;
    use super::*;
    use crate::ids::PortIndex;
    use crate::wire::parse_frame;

    fn run(f: &[u8]) -> (Vec<u8>, Outcome) {
        let mut buf = f.to_vec();
        let h = parse_frame(f).unwrap();
        let o = process(&mut buf, &h, &iface());
        (buf, o)
    }

    fn check_reply(req: &[u8], for_ip: &str) {
        let (out, o) = run(req);
        assert_eq!(o.action, Action::Reply { len: req.len() });
        // Ethernet: to the requester, from us, ARP.
        assert_eq!(&out[0..6], &PEER_MAC.0);
        assert_eq!(&out[6..12], &OUR_MAC.0);
        assert_eq!(&out[12..14], &[0x08, 0x06]);
        // ARP: Ethernet/IPv4, reply, our MAC and the asked address, then
        // the requester's.
        assert_eq!(&out[14..22], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert_eq!(&out[22..28], &OUR_MAC.0);
        assert_eq!(&out[28..32], &v4(for_ip).octets());
        assert_eq!(&out[32..38], &PEER_MAC.0);
        assert_eq!(&out[38..42], &v4(OWN4_PEER).octets());
        // Padding untouched.
        assert_eq!(&out[42..], &req[42..]);
        // The requester is learned (it asked for us: unconfirmed).
        assert_eq!(
            o.learned,
            Some(Learned {
                port: PortIndex(0),
                ip: ip(OWN4_PEER),
                mac: PEER_MAC,
                evidence: Evidence::Request
            })
        );
    }

    #[test]
    fn reply_for_vip_and_own() {
        check_reply(&arp_frame(1, PEER_MAC, OWN4_PEER, VIP4), VIP4);
        check_reply(&arp_frame(1, PEER_MAC, OWN4_PEER, OWN4), OWN4);
        // Unpadded 42-byte frame.
        let f = arp_frame(1, PEER_MAC, OWN4_PEER, OWN4);
        let (out, o) = run(&f[..42]);
        assert_eq!(o.action, Action::Reply { len: 42 });
        assert_eq!(&out[20..22], &[0, 2]);
    }

    #[test]
    fn reply_on_vlan() {
        let mut f = arp_frame(1, PEER_MAC, OWN4_PEER, VIP4);
        f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        f.truncate(64);
        let (out, o) = run(&f);
        assert_eq!(o.action, Action::Reply { len: 64 });
        assert_eq!(&out[12..18], &[0x81, 0x00, 0x00, 0x05, 0x08, 0x06]);
        assert_eq!(&out[24..26], &[0, 2]);
        assert_eq!(&out[26..32], &OUR_MAC.0);
        assert_eq!(&out[32..36], &v4(VIP4).octets());
    }

    #[test]
    fn no_reply_for_others() {
        let f = arp_frame(1, PEER_MAC, OWN4_PEER, "10.0.0.77");
        let (out, o) = run(&f);
        assert_eq!(o.action, Action::Drop(DropReason::ArpNotOurs));
        assert_eq!(out, f, "untouched");
        assert_eq!(o.learned.unwrap().evidence, Evidence::Overheard);
        // Off-link sender: nothing learned.
        let (_, o) = run(&arp_frame(1, PEER_MAC, "192.0.2.1", "10.0.0.77"));
        assert_eq!(o.learned, None);
    }

    #[test]
    fn learning() {
        // A reply to us: confirmed.
        let (_, o) = run(&arp_frame(2, PEER_MAC, OWN4_PEER, OWN4));
        assert_eq!(o.action, Action::Drop(DropReason::ArpHandled));
        assert_eq!(o.learned.unwrap().evidence, Evidence::Reply);
        assert_eq!(o.learned.unwrap().ip, ip(OWN4_PEER));
        // Gratuitous request from a neighbour: overheard, handled.
        let (_, o) = run(&arp_frame(1, PEER_MAC, OWN4_PEER, OWN4_PEER));
        assert_eq!(o.action, Action::Drop(DropReason::ArpHandled));
        assert_eq!(o.learned.unwrap().evidence, Evidence::Overheard);
        // Probe (sender 0.0.0.0) for our address: answered, not learned.
        let (out, o) = run(&arp_frame(1, PEER_MAC, "0.0.0.0", OWN4));
        assert_eq!(o.action, Action::Reply { len: 60 });
        assert_eq!(o.learned, None);
        assert_eq!(&out[38..42], &[0, 0, 0, 0]);
    }

    #[test]
    fn invalid_and_conflict() {
        let mut f = arp_frame(1, PEER_MAC, OWN4_PEER, OWN4);
        f[21] = 3; // RARP request
        assert_eq!(run(&f).1.action, Action::Drop(DropReason::ArpInvalid));
        let f = arp_frame(1, EthernetAddress::BROADCAST, OWN4_PEER, OWN4);
        assert_eq!(run(&f).1.action, Action::Drop(DropReason::ArpInvalid));
        let f = arp_frame(1, EthernetAddress::ZERO, OWN4_PEER, OWN4);
        assert_eq!(run(&f).1.action, Action::Drop(DropReason::ArpInvalid));
        let mut f = arp_frame(1, PEER_MAC, OWN4_PEER, OWN4);
        f[16] = 0x86; // protocol type IPv6
        f[17] = 0xdd;
        assert_eq!(run(&f).1.action, Action::Drop(DropReason::ArpInvalid));
        // Someone else says it has our VIP.
        let (_, o) = run(&arp_frame(1, PEER_MAC, VIP4, VIP4));
        assert_eq!(o, Outcome::drop(DropReason::ArpConflict));
        // Our own GARP looped back.
        let (_, o) = run(&arp_frame(1, OUR_MAC, VIP4, VIP4));
        assert_eq!(o, Outcome::drop(DropReason::ArpHandled));
    }

    #[test]
    fn request_bytes() {
        let mut buf = [0xaau8; 64];
        let n = build_request(&mut buf, &iface(), v4("10.0.0.9"), None).unwrap();
        assert_eq!(n, 60);
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 10, 0, 0, 9,
        ];
        assert_eq!(&buf[..42], &want);
        assert!(buf[42..60].iter().all(|&b| b == 0));
        assert_eq!(buf[60], 0xaa, "nothing written past the frame");
        // 42-byte buffer: no padding; unicast probe.
        let mut small = [0u8; 42];
        let n = build_request(&mut small, &iface(), v4("10.0.0.9"), Some(PEER_MAC)).unwrap();
        assert_eq!(n, 42);
        assert_eq!(&small[..6], &PEER_MAC.0);
        assert_eq!(&small[6..], &want[6..]);
        assert_eq!(
            build_request(&mut [0u8; 41], &iface(), v4("10.0.0.9"), None),
            Err(BuildError::NoRoom)
        );
        let v6only = Iface::new(0, OUR_MAC).with_addr("2001:db8::2/64".parse().unwrap());
        assert_eq!(
            build_request(&mut buf, &v6only, v4("10.0.0.9"), None),
            Err(BuildError::NoSource)
        );
        // It parses back, and our own classifier takes a reply to it.
        let h = parse_frame(&buf[..60]).unwrap();
        assert_eq!((h.l3_len, h.padding), (28, 18));
    }

    #[test]
    fn gratuitous_bytes() {
        let mut buf = [0u8; 60];
        assert_eq!(build_gratuitous(&mut buf, OUR_MAC, v4(VIP4)), Ok(60));
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 100,
            0, 0, 0, 0, 0, 0, 10, 0, 0, 100,
        ];
        assert_eq!(&buf[..42], &want);
        assert_eq!(&buf[42..], &[0u8; 18]);
    }

    #[test]
    fn request_reply_round_trip() {
        // Our request, answered by a peer (built by swapping by hand),
        // teaches us the peer with Reply evidence.
        let mut buf = [0u8; 60];
        build_request(&mut buf, &iface(), v4(OWN4_PEER), None).unwrap();
        let r = warp::Repr::parse(&warp::Packet::new_checked(&buf[14..42]).unwrap()).unwrap();
        let ans = r.reply(PEER_MAC);
        let mut f = arp_frame(2, PEER_MAC, OWN4_PEER, OWN4);
        ans.emit(&mut warp::Packet::new_unchecked(&mut f[14..42]))
            .unwrap();
        let (_, o) = run(&f);
        assert_eq!(
            o.learned,
            Some(Learned {
                port: PortIndex(0),
                ip: ip(OWN4_PEER),
                mac: PEER_MAC,
                evidence: Evidence::Reply
            })
        );
    }
}
