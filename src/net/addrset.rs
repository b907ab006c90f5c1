//! A set of addresses asked about per packet (the VIPs, the own
//! addresses): sorted arrays of plain integers per family. A handful is a
//! short scan, many a binary search; either beats hashing an `IpAddr`
//! (about 60 instructions).

use std::net::IpAddr;

#[derive(Clone, Debug, Default)]
pub struct AddrSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
    /// A one-word Bloom filter of `v4`: most addresses not in the set
    /// (every packet's source, for the input checks) leave at one test.
    v4_bits: u64,
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

    /// Sorted, without duplicates, the filter up to date.
    fn tidy(&mut self) {
        self.v4.sort_unstable();
        self.v4.dedup();
        self.v6.sort_unstable();
        self.v6.dedup();
        self.v4_bits = self.v4.iter().fold(0, |m, &a| m | v4_bit(a));
    }

    /// [`AddrSet::contains`] for an IPv4 address as an integer.
    #[inline(always)]
    pub fn contains_v4(&self, a: u32) -> bool {
        self.v4_bits & v4_bit(a) != 0 && has(&self.v4, a)
    }

    /// Every address of both sets.
    pub fn union(&self, other: &AddrSet) -> AddrSet {
        let mut s = self.clone();
        s.v4.extend_from_slice(&other.v4);
        s.v6.extend_from_slice(&other.v6);
        s.tidy();
        s
    }

    #[inline(always)]
    pub fn contains(&self, a: &IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.contains_v4(u32::from(*a)),
            IpAddr::V6(a) => has(&self.v6, u128::from(*a)),
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
}
