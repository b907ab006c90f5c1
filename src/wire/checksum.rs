//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Vocabulary: a *sum* is the one's complement sum of 16-bit big-endian
//! words, folded to 16 bits but not complemented; the *checksum* stored in a
//! header is `!sum`. Sums compose with [`combine`], so a TCP checksum is
//! `!combine(&[pseudo_header_v4(..), data(segment)])`.
//!
//! NAT rewrites use the `update_*` functions: RFC 1624 equation 3,
//! `HC' = ~(~HC + ~m + m')`, which keeps the checksum exactly equal to a full
//! recomputation (it never turns a valid checksum into the other zero),
//! except when every word of the new data is zero: a full sum gives
//! 0xffff there, the update 0x0000, which receivers reject. TCP, UDP and
//! ICMPv6 data (their pseudo-header) and IPv4 headers are never all zero;
//! an ICMPv4 message can be (an echo reply of id 0, sequence 0, no data):
//! recompute that one. For
//! an L4 checksum, an address change is applied to the L4 checksum too,
//! because the pseudo-header covers the addresses.
//!
//! UDP is special: on IPv4 a checksum field of 0 means "not computed" and
//! must stay 0 across rewrites, and a computed 0 is sent as 0xffff. The
//! `udp_*` helpers do both.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// One's complement addition modulo 2^64-1 (end-around carry). Folding such
/// a sum to 16 bits gives the 16-bit one's complement sum, because
/// 2^16-1 divides 2^64-1.
#[inline(always)]
fn add64(acc: u64, w: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(w);
    s + carry as u64
}

/// Folds a 64-bit partial sum to a 16-bit one's complement sum.
#[inline]
pub fn fold(s: u64) -> u16 {
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

#[inline(always)]
fn be64(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    u64::from_be_bytes(b)
}

/// Unfolded sum of `data` as big-endian 16-bit words (odd tail padded with a
/// zero byte). 16 bytes per step into two independent accumulators.
#[inline]
fn sum64(data: &[u8]) -> u64 {
    let mut a = 0u64;
    let mut b = 0u64;
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        a = add64(a, be64(&c[..8]));
        b = add64(b, be64(&c[8..]));
    }
    let mut acc = add64(a, b);
    let mut rest = chunks.remainder();
    if rest.len() >= 8 {
        acc = add64(acc, be64(&rest[..8]));
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        acc = add64(
            acc,
            u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64,
        );
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc = add64(acc, u16::from_be_bytes([rest[0], rest[1]]) as u64);
        rest = &rest[2..];
    }
    if let Some(&last) = rest.first() {
        acc = add64(acc, (last as u64) << 8);
    }
    acc
}

/// The one's complement sum of `data` (not complemented).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(sum64(data))
}

/// Adds sums together (one's complement).
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| s as u64).sum())
}

/// The checksum to store for `data`: `!data(data)`.
#[inline]
pub fn checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// [`checksum`] of a 20-byte IPv4 header (no options): three fixed loads
/// instead of the general loop, for headers rvs builds per packet.
#[inline]
pub fn ipv4_header(h: &[u8; 20]) -> u16 {
    let tail = u32::from_be_bytes([h[16], h[17], h[18], h[19]]) as u64;
    !fold(add64(add64(be64(&h[..8]), be64(&h[8..16])), tail))
}

/// [`verify`] for a 20-byte IPv4 header (no options): every received
/// datagram is checked, so this is the short way. The one's complement
/// sum of 16-bit words is their integer sum modulo 0xffff (RFC 1071), a
/// 32-bit word is congruent to the sum of its two halves, and reading the
/// words in native byte order multiplies the sum by 256, which is
/// invertible modulo 0xffff: so the header verifies exactly when the sum
/// of its five native 32-bit words is a non-zero multiple of 0xffff.
#[inline]
pub fn verify_ipv4_header(h: &[u8; 20]) -> bool {
    let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let sum = w(0) + w(4) + w(8) + w(12) + w(16);
    sum != 0 && sum % 0xffff == 0
}

/// True if `bytes` (a header or segment including its checksum field, plus
/// `extra`, e.g. a pseudo-header sum) sums to 0xffff, i.e. verifies.
#[inline]
pub fn verify(bytes: &[u8], extra: u16) -> bool {
    fold(add64(sum64(bytes), extra as u64)) == 0xffff
}

/// Sum of the IPv4 pseudo-header (RFC 793/768): addresses, protocol, L4 length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let s = u32::from(*src) as u64 + u32::from(*dst) as u64 + protocol.0 as u64 + length as u64;
    fold(s)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, upper-layer
/// length (32 bits), next header.
#[inline]
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    length: u32,
) -> u16 {
    let s = sum64(&src.octets()) as u128
        + sum64(&dst.octets()) as u128
        + next_header.0 as u128
        + length as u128;
    fold_u128(s)
}

#[inline(always)]
fn fold_u128(s: u128) -> u16 {
    // Two u64 end-around sums plus small terms cannot reach 2^66.
    let lo = s as u64;
    let hi = (s >> 64) as u64;
    fold(add64(lo, hi))
}

/// Pseudo-header sum for either family. Mixed families (a caller bug) are
/// summed as IPv6 with the IPv4 address mapped, so that this never panics.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: IpProtocol, length: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, length as u16),
        _ => pseudo_header_v6(&v6(src), &v6(dst), protocol, length),
    }
}

#[inline]
fn v6(a: &IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => *a,
    }
}

/// RFC 1624 eqn 3 for one changed 16-bit word (a port, the TTL/protocol word...).
#[inline]
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    let s = (!check) as u64 + (!old) as u64 + new as u64;
    !fold(s)
}

/// RFC 1624 for a changed 32-bit value (an IPv4 address, a TCP sequence number).
#[inline]
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    let s = (!check) as u64
        + (!(old >> 16) & 0xffff) as u64
        + (!old & 0xffff) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(s)
}

/// RFC 1624 for a changed IPv4 address.
#[inline]
pub fn update_ipv4_addr(check: u16, old: &Ipv4Addr, new: &Ipv4Addr) -> u16 {
    update_u32(check, u32::from(*old), u32::from(*new))
}

/// RFC 1624 for a changed IPv6 address.
#[inline]
pub fn update_ipv6_addr(check: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    update_bytes(check, &old.octets(), &new.octets())
}

/// RFC 1624 for any changed run of bytes starting at an even offset of the
/// checksummed data: `old` and `new` must have the same length (if they do
/// not, only the common prefix is taken).
#[inline]
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let n = old.len().min(new.len());
    // ~m summed word by word is the complement of the sum of m.
    let s = (!check) as u64 + (!data(&old[..n])) as u64 + data(&new[..n]) as u64;
    !fold(s)
}

/// A UDP checksum as sent: a computed 0 goes out as 0xffff (RFC 768), since
/// 0 means "no checksum".
#[inline]
pub fn udp_wire(check: u16) -> u16 {
    if check == 0 {
        0xffff
    } else {
        check
    }
}

/// [`update_u16`] for a UDP checksum field: 0 ("none", IPv4) stays 0, and a
/// result of 0 is sent as 0xffff.
#[inline]
pub fn udp_update_u16(check: u16, old: u16, new: u16) -> u16 {
    if check == 0 {
        0
    } else {
        udp_wire(update_u16(check, old, new))
    }
}

/// [`update_u32`] for a UDP checksum field (see [`udp_update_u16`]).
#[inline]
pub fn udp_update_u32(check: u16, old: u32, new: u32) -> u16 {
    if check == 0 {
        0
    } else {
        udp_wire(update_u32(check, old, new))
    }
}

/// [`update_ipv4_addr`] for a UDP checksum field (see [`udp_update_u16`]).
#[inline]
pub fn udp_update_ipv4_addr(check: u16, old: &Ipv4Addr, new: &Ipv4Addr) -> u16 {
    udp_update_u32(check, u32::from(*old), u32::from(*new))
}

/// [`update_ipv6_addr`] for a UDP checksum field. A zero UDP checksum is
/// invalid on IPv6 (RFC 8200); it is left as it is rather than invented.
#[inline]
pub fn udp_update_ipv6_addr(check: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    if check == 0 {
        0
    } else {
        udp_wire(update_ipv6_addr(check, old, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one case where RFC 1624's update and a full sum differ: the
    /// new data is all zero (an ICMPv4 echo request of id 0, sequence 0
    /// and no data turned into its reply).
    #[test]
    fn all_zero_data_is_the_exception() {
        let request = [8u8, 0, 0, 0, 0, 0, 0, 0];
        let c = checksum(&request);
        assert_eq!(c, 0xf7ff);
        let reply = [0u8; 8];
        assert_eq!(checksum(&reply), 0xffff);
        assert_eq!(update_u16(c, 0x0800, 0), 0x0000);
        assert!(
            !verify(&reply, 0),
            "all-zero data with checksum 0 is invalid"
        );
    }

    /// Reference: RFC 1071 word by word, with u32 accumulator.
    fn naive(d: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in d.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += w as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn ipv4_header_known() {
        // A captured header whose checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        assert_eq!(ipv4_header(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert!(verify(&h, 0));
    }

    #[test]
    fn ipv4_header_matches_naive() {
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..10_000 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Mostly 0xff bytes some rounds, to exercise the carries.
                *b = if x & 0x100 != 0 { 0xff } else { x as u8 };
            }
            assert_eq!(ipv4_header(&h), !naive(&h), "{h:02x?}");
        }
    }

    #[test]
    fn matches_naive_all_lengths() {
        let mut buf = [0u8; 300];
        let mut x: u32 = 0x1234_5678;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for n in 0..buf.len() {
            assert_eq!(data(&buf[..n]), naive(&buf[..n]), "len {n}");
        }
        let ff = [0xffu8; 77];
        for n in 0..ff.len() {
            assert_eq!(data(&ff[..n]), naive(&ff[..n]), "ff len {n}");
        }
    }

    #[test]
    fn pseudo_headers() {
        let s = Ipv4Addr::new(10, 0, 0, 1);
        let d = Ipv4Addr::new(10, 0, 0, 2);
        let mut ph = [0u8; 12];
        ph[..4].copy_from_slice(&s.octets());
        ph[4..8].copy_from_slice(&d.octets());
        ph[9] = 6;
        ph[10..].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(&s, &d, IpProtocol::TCP, 40), naive(&ph));
        assert_eq!(
            pseudo_header(&s.into(), &d.into(), IpProtocol::TCP, 40),
            naive(&ph)
        );

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1:2".parse().unwrap();
        let mut ph6 = [0u8; 40];
        ph6[..16].copy_from_slice(&s6.octets());
        ph6[16..32].copy_from_slice(&d6.octets());
        ph6[32..36].copy_from_slice(&70000u32.to_be_bytes());
        ph6[39] = 17;
        assert_eq!(
            pseudo_header_v6(&s6, &d6, IpProtocol::UDP, 70000),
            naive(&ph6)
        );
        // Mixed families do not panic.
        let _ = pseudo_header(&s.into(), &d6.into(), IpProtocol::UDP, 8);
    }

    #[test]
    fn incremental_matches_full() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let old = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        let new = 0x0a01_0203u32;
        h[16..20].copy_from_slice(&new.to_be_bytes());
        let inc = update_u32(0xb861, old, new);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(inc, checksum(&h));

        // TTL decrement: the TTL/protocol word changes.
        h[10..12].copy_from_slice(&inc.to_be_bytes());
        let old_w = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new_w = u16::from_be_bytes([h[8], h[9]]);
        let inc = update_u16(inc, old_w, new_w);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(inc, checksum(&h));
    }

    #[test]
    fn rfc1624_negative_zero_case() {
        // RFC 1624 §4's example: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285.
        // The new data sums to 0xffff, so a full recompute gives 0x0000;
        // eqn 3 must agree (eqn 2 would give 0xffff).
        let before = [0xcdu8, 0x7a, 0x55, 0x55];
        let mut after = before;
        after[2..4].copy_from_slice(&0x3285u16.to_be_bytes());
        let c0 = checksum(&before);
        assert_eq!(update_u16(c0, 0x5555, 0x3285), checksum(&after));
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(udp_wire(0), 0xffff);
        assert_eq!(udp_wire(0x1234), 0x1234);
        assert_eq!(udp_update_u16(0, 1, 2), 0);
        assert_eq!(udp_update_u32(0, 1, 2), 0);
        let a: Ipv6Addr = "::1".parse().unwrap();
        let b: Ipv6Addr = "::2".parse().unwrap();
        assert_eq!(udp_update_ipv6_addr(0, &a, &b), 0);
        // A change that makes the computed checksum 0 yields 0xffff.
        // Data [0xfffe, w]: sum = 0xfffe + w. With w = 1, sum = 0xffff -> 0.
        let c = checksum(&[0xff, 0xfe, 0x00, 0x02]);
        assert_eq!(checksum(&[0xff, 0xfe, 0x00, 0x01]), 0);
        assert_eq!(udp_update_u16(c, 2, 1), 0xffff);
        assert_eq!(update_u16(c, 2, 1), 0);
    }

    #[test]
    fn update_bytes_matches() {
        let old: Ipv6Addr = "2001:db8::dead:beef".parse().unwrap();
        let new: Ipv6Addr = "fd00:1:2:3:4:5:6:7".parse().unwrap();
        let mut d = [0u8; 40];
        d[8..24].copy_from_slice(&old.octets());
        d[0] = 0x60;
        d[30] = 0x99;
        let c = checksum(&d);
        d[8..24].copy_from_slice(&new.octets());
        assert_eq!(update_ipv6_addr(c, &old, &new), checksum(&d));
    }
}
