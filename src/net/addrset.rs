//! A set of addresses asked about per packet (the VIPs, the own
//! addresses): sorted arrays of plain integers per family. A handful is a
//! short scan, many a binary search; either beats hashing an `IpAddr`
//! (about 60 instructions).

use std::net::IpAddr;

#[derive(Clone, Debug, Default)]
pub struct AddrSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
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
        s.v4.sort_unstable();
        s.v4.dedup();
        s.v6.sort_unstable();
        s.v6.dedup();
        s
    }

    #[inline(always)]
    pub fn contains(&self, a: &IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => has(&self.v4, u32::from(*a)),
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
