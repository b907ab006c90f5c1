//! Route and neighbour results cached for the per-packet path: per real
//! server slot for packets toward real servers, and in a small
//! direct-mapped table by address for replies toward clients. Routes are
//! fixed for the daemon's life; MACs change with the neighbour snapshot, so
//! the whole cache is dropped when a new snapshot arrives.

use crate::ids::PortIndex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::EthernetAddress;

/// Where a target is sent: egress port, next hop, and its MAC when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    pub port: PortIndex,
    pub next_hop: IpAddr,
    pub mac: Option<EthernetAddress>,
    /// The egress port's source addresses toward the target (a tunnel's
    /// outer source), when the resolver filled them in (real servers:
    /// addresses and routes are fixed for the daemon's life, so they are
    /// found once per cached hop instead of once per packet).
    pub local: Option<(Ipv4Addr, Ipv6Addr)>,
}

const ADDR_SLOTS: usize = 256;

#[derive(Debug)]
pub struct HopCache {
    by_dest: Vec<Option<(IpAddr, Hop)>>,
    by_addr: Box<[Option<(IpAddr, Hop)>; ADDR_SLOTS]>,
}

impl Default for HopCache {
    fn default() -> Self {
        HopCache {
            by_dest: vec![None; 1024],
            by_addr: Box::new([None; ADDR_SLOTS]),
        }
    }
}

#[inline]
fn slot_of(a: &IpAddr) -> usize {
    let x = match a {
        IpAddr::V4(v) => u32::from(*v),
        IpAddr::V6(v) => {
            let o = u128::from(*v);
            (o as u32) ^ ((o >> 32) as u32) ^ ((o >> 64) as u32) ^ ((o >> 96) as u32)
        }
    };
    (x.wrapping_mul(0x9e37_79b9) >> 24) as usize % ADDR_SLOTS
}

impl HopCache {
    /// Forget everything (new neighbour snapshot).
    pub fn clear(&mut self) {
        self.by_dest.iter_mut().for_each(|e| *e = None);
        self.by_addr.iter_mut().for_each(|e| *e = None);
    }

    /// The hop toward real server slot `slot` at `target`. A reference,
    /// not a copy: the per-packet path reads two or three of its fields.
    /// Always inlined: with two callers the compiler kept it out of line.
    #[inline(always)]
    pub fn dest(
        &mut self,
        slot: u32,
        target: IpAddr,
        resolve: impl FnOnce() -> Option<Hop>,
    ) -> Option<&Hop> {
        let i = slot as usize;
        let hit = matches!(self.by_dest.get(i), Some(Some((t, _))) if *t == target);
        if !hit {
            let hop = resolve()?;
            if i >= self.by_dest.len() {
                // Rare: more real servers than the table was sized for.
                self.by_dest.resize(i + 1, None);
            }
            self.by_dest[i] = Some((target, hop));
        }
        self.by_dest.get(i)?.as_ref().map(|(_, h)| h)
    }

    /// The hop toward `target` (a client), cached by address. Always
    /// inlined, as [`HopCache::dest`]: left to itself the compiler moved it
    /// out of line when the burst loop grew (+20 instructions a packet).
    #[inline(always)]
    pub fn addr(&mut self, target: IpAddr, resolve: impl FnOnce() -> Option<Hop>) -> Option<&Hop> {
        let s = slot_of(&target);
        if !matches!(&self.by_addr[s], Some((t, _)) if *t == target) {
            let hop = resolve()?;
            self.by_addr[s] = Some((target, hop));
        }
        self.by_addr[s].as_ref().map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(port: PortIndex) -> Hop {
        Hop {
            port,
            next_hop: "10.0.0.1".parse().unwrap(),
            mac: Some(EthernetAddress([2, 0, 0, 0, 0, port.0 as u8])),
            local: None,
        }
    }

    #[test]
    fn caches_until_cleared_and_checks_the_target() {
        let mut c = HopCache::default();
        let a: IpAddr = "10.1.0.11".parse().unwrap();
        let b: IpAddr = "10.1.0.12".parse().unwrap();
        assert_eq!(
            c.dest(3, a, || Some(hop(PortIndex(1)))).copied(),
            Some(hop(PortIndex(1)))
        );
        assert_eq!(
            c.dest(3, a, || panic!("cached")).copied(),
            Some(hop(PortIndex(1)))
        );
        // The slot now holds another server: resolve again.
        assert_eq!(
            c.dest(3, b, || Some(hop(PortIndex(2)))).copied(),
            Some(hop(PortIndex(2)))
        );
        assert_eq!(
            c.dest(5000, b, || Some(hop(PortIndex(4)))).copied(),
            Some(hop(PortIndex(4)))
        );
        assert_eq!(
            c.addr(a, || Some(hop(PortIndex(0)))).copied(),
            Some(hop(PortIndex(0)))
        );
        assert_eq!(
            c.addr(a, || panic!("cached")).copied(),
            Some(hop(PortIndex(0)))
        );
        c.clear();
        assert_eq!(c.addr(a, || None).copied(), None);
        assert_eq!(
            c.dest(3, b, || Some(hop(PortIndex(7)))).copied(),
            Some(hop(PortIndex(7)))
        );
    }
}
