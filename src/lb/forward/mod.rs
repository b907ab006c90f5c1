//! The forwarding rewrites on packet bytes: NAT, DR and TUN (IPIP, GUE,
//! GRE), ICMP error translation for NAT, and the ICMP errors the balancer
//! generates itself (time exceeded, fragmentation needed / packet too big,
//! and port unreachable when no real server can take a new connection).
//!
//! Sans-IO: [`apply`] takes a frame in a [`PacketBuf`], the [`Headers`]
//! `parse_frame` returned for it, the engine's [`Forward`] decision and the
//! packet's [`Direction`], plus an [`Env`] with what comes from outside (our
//! addresses and MACs, the next hop's MAC, the path MTU, the IP-id counter).
//! It rewrites the frame in place and says what to do with it ([`Applied`])
//! or why to drop it ([`DropReason`]). Nothing allocates; a NAT or DR rewrite
//! is a handful of RFC 1624 incremental checksum updates; a tunnel writes
//! 20-52 bytes of new headers (GUE/GRE checksums are derived from the inner
//! packet's own checksums, see [`tunnel`], rather than summing the payload).
//!
//! | method | what changes |
//! |---|---|
//! | NAT in | dst addr:port -> real server; IP, L4 checksums; TTL-1; MACs |
//! | NAT out | src addr:port -> VIP:vport; IP, L4 checksums; TTL-1; MACs |
//! | NAT ICMP error | outer addr, quoted addr:port, quoted IP and L4 checksums, ICMP checksum |
//! | DR | MACs; TTL-1 (IPv4 checksum) |
//! | TUN | TTL-1, then outer IPv4/IPv6 (+ UDP/GUE or GRE) in front; MACs |
//!
//! Ethernet: the destination MAC becomes `env.dst_mac` and the source
//! `env.src_mac`; VLAN tags are kept as they are (the caller re-tags for the
//! egress port if it differs). A generated ICMP error instead swaps the
//! frame's MACs and goes back out the port the packet came in on.
//!
//! Behaviour choices (kernel IPVS is the reference):
//! - TTL: a packet arriving with TTL / hop limit <= 1 is answered with ICMP
//!   time exceeded (for every method and direction) instead of forwarded.
//! - MTU: a packet that would exceed `env.mtu` (after encapsulation, for
//!   a tunnel) is answered with fragmentation-needed (IPv4 with DF) or
//!   packet-too-big (IPv6); an IPv4 one with DF clear comes back as
//!   [`Applied::Fragment`] and the caller sends it in fragments, as is an
//!   IPv6 datagram rvs reassembled (`env.refragment`). An IPv4
//!   packet with DF clear in an IPv6 tunnel that would not fit is dropped
//!   ([`DropReason::TooBig`]), where the kernel would fragment the outer
//!   IPv6 packet.
//! - Errors are never sent about ICMP errors, non-first fragments,
//!   multicast/broadcast packets or from an unset local address (RFC 1122,
//!   RFC 4443 §2.4); such packets are dropped with the reason instead. ICMP
//!   rate limiting is left to the caller.
//! - NAT ICMP errors: like `ip_vs_nat_icmp`, the outer address, the quoted
//!   address and port are rewritten and the quoted IPv4 header checksum
//!   fixed. Unlike the kernel, which leaves it stale, the quoted TCP/UDP
//!   checksum is also fixed when the quote contains it, so the quote is
//!   exactly what the receiver sent. The ICMP checksum is updated
//!   incrementally (the kernel recomputes it; the result is the same).

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::buf::PacketBuf;
use crate::wire::ethernet::{self, field as eth};
use crate::wire::parse::{Headers, L3};
use crate::wire::rewrite::Side;
use crate::wire::{ipv4, EtherType, EthernetAddress};

use super::dest::{FwdMethod, TunType};
use super::engine::{Direction, Forward};

pub mod dr;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzz;
pub mod icmp;
pub mod nat;
pub mod tunnel;
#[cfg(any(test, feature = "testkit"))]
pub mod verify;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

#[cfg(any(test, feature = "testkit"))]
pub use fuzz::fuzz_one;

/// What the rewrite needs from outside the packet, for one egress.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    /// The balancer's IPv4 address on the egress port: tunnel outer source.
    /// Unspecified = none (no IPv4 tunnels).
    pub local_v4: Ipv4Addr,
    /// The balancer's IPv6 address on the egress port, likewise.
    pub local_v6: Ipv6Addr,
    /// The source of ICMP errors rvs generates: the balancer's address on
    /// the port the packet came in on (where the error goes back out), as
    /// the kernel picks it. Unspecified = no IPv4 errors.
    pub reply_v4: Ipv4Addr,
    /// Likewise for ICMPv6 errors.
    pub reply_v6: Ipv6Addr,
    /// Our MAC on the egress port.
    pub src_mac: EthernetAddress,
    /// The next hop's MAC on the egress port (the real server for DR/TUN on
    /// link, the router otherwise).
    pub dst_mac: EthernetAddress,
    /// MTU of the egress port (IP bytes).
    pub mtu: u16,
    /// The packet is a datagram rvs reassembled: an IPv6 one over the MTU
    /// goes out in fragments too (its sender fragmented it already; the
    /// kernel likewise refragments what it defragmented).
    pub refragment: bool,
    /// Per-lcore IPv4 identification counter for the headers we create.
    pub ip_id: &'a Cell<u16>,
}

impl Env<'_> {
    /// The next IP id (post-increment, wrapping).
    #[inline]
    pub fn next_ip_id(&self) -> u16 {
        next_ip_id(self.ip_id)
    }
}

/// The next IP id of a worker's counter (post-increment, wrapping).
#[inline]
pub fn next_ip_id(counter: &Cell<u16>) -> u16 {
    let id = counter.get();
    counter.set(id.wrapping_add(1));
    id
}

/// What to do with the buffer after a successful [`apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Transmit the rewritten frame on the egress the `Env` describes:
    /// toward the real server (inbound) or the client (NAT outbound).
    Transmit,
    /// The buffer now holds an ICMP error addressed to the packet's sender
    /// (the original packet is gone): transmit it back out the port the
    /// packet arrived on.
    Reply(Reply),
    /// Rewritten, but larger than `env.mtu` and allowed to be fragmented
    /// (IPv4, DF clear): transmit it as fragments of at most `env.mtu`
    /// bytes ([`crate::net::fragment`]).
    Fragment,
}

/// The ICMP error generated in place of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// ICMP time exceeded (11/0) or ICMPv6 time exceeded (3/0).
    TimeExceeded,
    /// ICMP destination unreachable, fragmentation needed (3/4), with this
    /// next-hop MTU.
    FragNeeded { mtu: u16 },
    /// ICMPv6 packet too big (2/0), with this MTU.
    PacketTooBig { mtu: u32 },
    /// ICMP destination unreachable, port unreachable (3/3), or ICMPv6
    /// destination unreachable, port unreachable (1/4): no real server
    /// could take the new connection ([`icmp::port_unreachable`]).
    PortUnreachable,
}

/// Why a packet was not forwarded: the crate's one taxonomy (the rewrite's
/// reasons are `not_ip`, `bad_headers`, `family`, `rewrite_fragment`,
/// `rewrite_unsupported`, `direction`, `ttl_exceeded`, `too_big`, `no_room`
/// and `no_local_addr`).
pub use crate::drops::DropReason;

/// Rewrites the frame in `buf` (parsed into `hdr`) for the forwarding
/// decision `fwd`, in direction `dir`.
///
/// - `Masq`: NAT in (`dir == In`) or out; an ICMP error (`hdr.inner` set)
///   is translated as `ip_vs_nat_icmp` does, `fwd` being the connection
///   found from the quoted tuple.
/// - `Route`, `Tunnel`: inbound only (replies bypass the balancer); an ICMP
///   error is forwarded like any packet.
///
/// On error the buffer may have been partly rewritten: drop it.
pub fn apply<B: PacketBuf>(
    buf: &mut B,
    hdr: &Headers,
    fwd: &Forward,
    dir: Direction,
    env: &Env,
) -> Result<Applied, DropReason> {
    check_headers(buf.data(), hdr)?;
    if dir == Direction::Out && !fwd.fwd.is_masq() {
        return Err(DropReason::Direction);
    }
    if hdr.ttl <= 1 {
        return icmp::time_exceeded(buf, hdr, env);
    }
    if let Some(tun) = tunnel::Tunnel::of(fwd.fwd) {
        return tunnel::apply(buf, hdr, fwd.daddr, &tun, env);
    }
    // Larger than the egress MTU: fragmentation needed / packet too big
    // back to the sender when it may not be fragmented (DF, or IPv6),
    // else rewritten and fragmented by the caller (`ip_vs_xmit`'s MTU
    // check, then the kernel's output path).
    let too_big = hdr.l3_len as usize > env.mtu as usize;
    let may_fragment = match hdr.l3 {
        L3::Ipv4 => !hdr.dont_frag,
        // IPv6 links carry at least 1280 bytes (RFC 8200); hop-by-hop
        // options would have to precede the Fragment header (never the
        // case for what rvs reassembled, which had its Fragment header first).
        _ => {
            env.refragment
                && env.mtu as usize >= crate::wire::icmpv6::MIN_MTU
                && !matches!(
                    buf.data().get(hdr.l3_offset as usize + 6),
                    Some(0 | 44) | None
                )
        }
    };
    if too_big && !may_fragment {
        return icmp::too_big(buf, hdr, env, env.mtu as usize);
    }
    let r = if fwd.fwd.is_masq() {
        nat::apply(buf.data_mut(), hdr, fwd, dir, env)
    } else {
        dr::apply(buf.data_mut(), hdr, env)
    };
    match r {
        Ok(Applied::Transmit) if too_big => Ok(Applied::Fragment),
        r => r,
    }
}

/// [`apply_direct`]'s counterpart for tunnels, which need the `Env` (the
/// outer source): IPv4-in-IPv4 through [`tunnel::ipip4_direct`]. For a
/// packet whose next hop's MAC is in `env` and for which no ICMP error can
/// be due ([`env_addrs_needed`]'s second answer false). True: rewritten
/// exactly as [`apply`] would; false (any other method or packet):
/// untouched, take [`apply`].
#[inline]
pub fn apply_direct_tunnel<B: PacketBuf>(
    buf: &mut B,
    hdr: &Headers,
    fwd: &Forward,
    dir: Direction,
    env: &Env,
) -> bool {
    match (tunnel::Tunnel::of(fwd.fwd), dir, fwd.daddr) {
        (Some(t), Direction::In, IpAddr::V4(d)) if t.kind == TunType::Ipip => {
            tunnel::ipip4_direct(buf, hdr, d, env)
        }
        _ => false,
    }
}

/// [`apply`]'s common case without an [`Env`]: a NAT (IPv4) or DR packet
/// with a TTL above 1 and not an ICMP error, to a next hop whose MAC is
/// known. Rewrites it exactly as [`apply`] would and returns true; returns
/// false, with the frame untouched, for anything else (the caller then
/// takes [`apply`]). `hdr` must be what `parse_frame` returned for this
/// frame (the data path's case; [`apply`] checks that, this does not).
#[inline]
pub fn apply_direct(
    f: &mut [u8],
    hdr: &Headers,
    fwd: &Forward,
    dir: Direction,
    dst_mac: EthernetAddress,
    src_mac: EthernetAddress,
) -> bool {
    if hdr.ttl <= 1 || hdr.is_icmp_error() || f.len() < ethernet::HEADER_LEN {
        return false;
    }
    let done = match (fwd.fwd, dir) {
        (FwdMethod::Masq, Direction::In) => match fwd.daddr {
            IpAddr::V4(a) => crate::wire::rewrite::nat4_ttl(f, hdr, Side::Dst, a, fwd.dport),
            IpAddr::V6(_) => false,
        },
        (FwdMethod::Masq, Direction::Out) => match fwd.vaddr {
            IpAddr::V4(a) => crate::wire::rewrite::nat4_ttl(f, hdr, Side::Src, a, fwd.vport),
            IpAddr::V6(_) => false,
        },
        (FwdMethod::Route, Direction::In) => {
            hdr.is_ip() && crate::wire::rewrite::decrement_ttl(f, hdr).is_ok()
        }
        _ => false,
    };
    if done {
        f[eth::DESTINATION].copy_from_slice(&dst_mac.0);
        f[eth::SOURCE].copy_from_slice(&src_mac.0);
    }
    done
}

/// Which of the [`Env`] addresses [`apply`] may read for this packet:
/// (`local_v4`/`local_v6`: a tunnel's outer source, `reply_v4`/`reply_v6`:
/// the source of an ICMP error rvs generates: TTL expiry for any method,
/// fragmentation needed / packet too big for a tunnel). The others may be
/// left unspecified, so that the caller skips looking them up for the
/// common NAT/DR packet. Kept next to `apply`, which must agree with it.
#[inline]
pub fn env_addrs_needed(hdr: &Headers, fwd: &Forward, mtu: u16) -> (bool, bool) {
    match tunnel::Tunnel::of(fwd.fwd) {
        Some(tun) => {
            // A reply (too big) only when the encapsulated packet would
            // exceed the MTU.
            let too_big = hdr.l3_len as usize + tun.overhead(&fwd.daddr) > mtu as usize;
            (true, too_big || hdr.ttl <= 1)
        }
        None => (false, hdr.ttl <= 1 || hdr.l3_len as usize > mtu as usize),
    }
}

/// The headers must be IP and describe exactly this frame.
#[inline]
fn check_headers(frame: &[u8], h: &Headers) -> Result<(), DropReason> {
    if !h.is_ip() {
        return Err(DropReason::NotIp);
    }
    let l3 = h.l3_offset as usize;
    if h.l3_end() + h.padding as usize != frame.len()
        || l3 < ethernet::HEADER_LEN
        || (h.l4_offset as usize) < l3 + ipv4::HEADER_LEN
        || h.l4_offset as usize > h.l3_end()
    {
        return Err(DropReason::BadHeaders);
    }
    // The ethertype just before L3 must match the family.
    let et = EtherType(rd16(frame, l3 - ETHERTYPE_LEN)?);
    let want = if h.l3 == L3::Ipv4 {
        EtherType::IPV4
    } else {
        EtherType::IPV6
    };
    if et != want {
        return Err(DropReason::BadHeaders);
    }
    Ok(())
}

/// The ethertype is the last field before L3 (after any VLAN tags).
pub(crate) const ETHERTYPE_LEN: usize = eth::ETHERTYPE.end - eth::ETHERTYPE.start;

// Small checked accessors (the frame may not be what `Headers` says).

#[inline]
pub(crate) fn rd16(f: &[u8], at: usize) -> Result<u16, DropReason> {
    match f.get(at..at.wrapping_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DropReason::BadHeaders),
    }
}

#[inline]
pub(crate) fn wr16(f: &mut [u8], at: usize, v: u16) -> Result<(), DropReason> {
    match f.get_mut(at..at.wrapping_add(2)) {
        Some(s) => {
            s.copy_from_slice(&v.to_be_bytes());
            Ok(())
        }
        None => Err(DropReason::BadHeaders),
    }
}

/// Sets the Ethernet destination and source.
#[inline]
pub(crate) fn set_macs(
    f: &mut [u8],
    dst: EthernetAddress,
    src: EthernetAddress,
) -> Result<(), DropReason> {
    let Some(macs) = f.get_mut(..eth::SOURCE.end) else {
        return Err(DropReason::BadHeaders);
    };
    macs[eth::DESTINATION].copy_from_slice(&dst.0);
    macs[eth::SOURCE].copy_from_slice(&src.0);
    Ok(())
}

/// Opens a gap of `n` bytes at offset `at` of the packet: preferably by
/// prepending `n` bytes and moving the `at` bytes before the gap (the L2
/// header) to the new front; without headroom, by appending and moving
/// everything after `at` back. The gap's contents are unspecified.
pub(crate) fn insert_gap<B: PacketBuf>(buf: &mut B, at: usize, n: usize) -> Result<(), DropReason> {
    let len = buf.len();
    if at > len {
        return Err(DropReason::BadHeaders);
    }
    if buf.prepend(n).is_some() {
        buf.data_mut().copy_within(n..n + at, 0);
    } else if buf.append(n).is_some() {
        buf.data_mut().copy_within(at..len, at + n);
    } else {
        return Err(DropReason::NoRoom);
    }
    Ok(())
}

/// True for an address of the family `h` is.
#[inline]
pub(crate) fn same_family(h: &Headers, a: &IpAddr) -> bool {
    matches!(
        (h.l3, a),
        (L3::Ipv4, IpAddr::V4(_)) | (L3::Ipv6, IpAddr::V6(_))
    )
}
