//! A set of addresses asked about per packet (the VIPs, the own
//! addresses): sorted arrays of plain integers per family. A handful is a
//! short scan, many a binary search; either beats hashing an `IpAddr`
//! (about 60 instructions). Prefixes (the networks fwmark rules name)
//! are asked about only after the addresses miss, and only when there are
//! any.

use std::net::IpAddr;

use super::addr::{mask_v4, mask_v6};

#[derive(Clone, Debug, Default)]
pub struct AddrSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
    /// A one-word Bloom filter of `v4`: most addresses not in the set
    /// (every packet's source, for the input checks) leave at one test.
    v4_bits: u64,
    /// Networks as (network, mask).
    v4_nets: Vec<(u32, u32)>,
    v6_nets: Vec<(u128, u128)>,
}

/// The filter bit of an IPv4 address (Fibonacci hashing).
#[inline(always)]
fn v4_bit(a: u32) -> u64 {
    1 << (a.wrapping_mul(0x9e37_79b1) >> 26)
}

/// Up to this many entries a linear scan is cheapest.
const SCAN: usize = 8;

#[inline(always)]
fn has<T: Ord + Copy>(v: &[T], x: T) -> bool {
    if v.len() <= SCAN {
        v.contains(&x)
    } else {
        v.binary_search(&x).is_ok()
    }
}

impl AddrSet {
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut s = AddrSet::default();
        for a in addrs {
            match a {
                IpAddr::V4(a) => s.v4.push(u32::from(a)),
                IpAddr::V6(a) => s.v6.push(u128::from(a)),
            }
        }
        s.tidy();
        s
    }

    /// The addresses and every address of the networks `(address,
    /// prefix length)` (a host prefix is an address).
    pub fn with_nets(
        addrs: impl IntoIterator<Item = IpAddr>,
        nets: impl IntoIterator<Item = (IpAddr, u8)>,
    ) -> Self {
        let mut s = AddrSet::new(addrs);
        for (a, len) in nets {
            match a {
                IpAddr::V4(a) if len >= 32 => s.v4.push(u32::from(a)),
                IpAddr::V6(a) if len >= 128 => s.v6.push(u128::from(a)),
                IpAddr::V4(a) => {
                    let m = mask_v4(len);
                    s.v4_nets.push((u32::from(a) & m, m));
                }
                IpAddr::V6(a) => {
                    let m = mask_v6(len);
                    s.v6_nets.push((u128::from(a) & m, m));
                }
            }
        }
        s.tidy();
        s
    }

    /// Sorted, without duplicates, the filter up to date.
    fn tidy(&mut self) {
        self.v4.sort_unstable();
        self.v4.dedup();
        self.v6.sort_unstable();
        self.v6.dedup();
        self.v4_nets.sort_unstable();
        self.v4_nets.dedup();
        self.v6_nets.sort_unstable();
        self.v6_nets.dedup();
        self.v4_bits = self.v4.iter().fold(0, |m, &a| m | v4_bit(a));
    }

    /// [`AddrSet::contains`] for an IPv4 address as an integer.
    #[inline(always)]
    pub fn contains_v4(&self, a: u32) -> bool {
        (self.v4_bits & v4_bit(a) != 0 && has(&self.v4, a))
            || (!self.v4_nets.is_empty() && self.in_v4_nets(a))
    }

    #[inline(never)]
    fn in_v4_nets(&self, a: u32) -> bool {
        self.v4_nets.iter().any(|&(n, m)| a & m == n)
    }

    #[inline(never)]
    fn in_v6_nets(&self, a: u128) -> bool {
        self.v6_nets.iter().any(|&(n, m)| a & m == n)
    }

    /// Every address and network of both sets.
    pub fn union(&self, other: &AddrSet) -> AddrSet {
        let mut s = self.clone();
        s.v4.extend_from_slice(&other.v4);
        s.v6.extend_from_slice(&other.v6);
        s.v4_nets.extend_from_slice(&other.v4_nets);
        s.v6_nets.extend_from_slice(&other.v6_nets);
        s.tidy();
        s
    }

    #[inline(always)]
    pub fn contains(&self, a: &IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.contains_v4(u32::from(*a)),
            IpAddr::V6(a) => {
                let a = u128::from(*a);
                has(&self.v6, a) || (!self.v6_nets.is_empty() && self.in_v6_nets(a))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn a4(x: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(x))
    }
    fn a6(x: u128) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(x))
    }

    #[test]
    fn few_and_many() {
        for n in [0u32, 1, 3, 8, 9, 100] {
            let v4: Vec<IpAddr> = (0..n).map(|i| a4((10u32 << 24) + 7 * i)).collect();
            let v6: Vec<IpAddr> = (0..n)
                .map(|i| a6(0x2001_0db8u128 << 96 | (i as u128 * 13)))
                .collect();
            let s = AddrSet::new(v4.iter().chain(&v6).copied());
            for a in v4.iter().chain(&v6) {
                assert!(s.contains(a), "{n}: {a}");
            }
            assert!(!s.contains(&a4((10u32 << 24) + 7 * n + 1)));
            assert!(!s.contains(&a6(1u128)));
            // The same bits in the other family are not a member.
            if n > 1 {
                assert!(!s.contains(&a6((10u128) << 24 | 7)));
            }
        }
    }

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let s = AddrSet::with_nets(
            [ip("192.0.2.1")],
            [
                (ip("10.1.2.77"), 24),
                (ip("198.51.100.9"), 32),
                (ip("2001:db8:5::"), 48),
                (ip("2001:db8::9"), 128),
            ],
        );
        for a in [
            "192.0.2.1",
            "10.1.2.0",
            "10.1.2.255",
            "198.51.100.9",
            "2001:db8:5:ffff::1",
            "2001:db8::9",
        ] {
            assert!(s.contains(&ip(a)), "{a}");
        }
        for a in [
            "10.1.3.0",
            "198.51.100.8",
            "2001:db8:6::",
            "2001:db8::8",
            "::ffff:10.1.2.1",
        ] {
            assert!(!s.contains(&ip(a)), "{a}");
        }
        let u = AddrSet::new([ip("203.0.113.1")]).union(&s);
        assert!(u.contains(&ip("10.1.2.3")) && u.contains(&ip("203.0.113.1")));
        let all = AddrSet::with_nets([], [(ip("0.0.0.0"), 0)]);
        assert!(all.contains(&ip("1.2.3.4")) && !all.contains(&ip("::1")));
    }
}
