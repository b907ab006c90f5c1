//! Destination hashing (`ip_vs_dh.c`): a 256-bucket table filled with the
//! servers in list order, one bucket each in turn (weights are ignored);
//! the bucket is `hash_32(fold(dst), 8)`. A bucket whose server has weight
//! 0 or is overloaded means no connection (dh has no fallback flag).

use super::{addr_fold, available, hash_32, DestSet, FlowKey, Scheduler, NO_DEST};
use crate::lb::time::Timestamp;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug)]
pub struct Dh {
    table: [u32; TAB_SIZE],
}

impl Dh {
    pub fn new() -> Self {
        Dh {
            table: [NO_DEST; TAB_SIZE],
        }
    }
}

impl Default for Dh {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let n = dests.len();
        for (b, slot) in self.table.iter_mut().enumerate() {
            *slot = if n == 0 { NO_DEST } else { (b % n) as u32 };
        }
    }

    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let d = self.table[hash_32(addr_fold(&key.dst), TAB_BITS) as usize] as usize;
        (d < dests.len() && available(dests, d)).then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn round_robin_table_ignores_weight() {
        let set = TestSet::weights(&[1, 100, 7]);
        let mut s = Dh::new();
        s.update(&set);
        assert_eq!(&s.table[..7], &[0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn same_destination_same_server_any_source() {
        let set = TestSet::weights(&[1, 1, 1, 1, 1]);
        let mut s = Dh::new();
        s.update(&set);
        let mut seen = [0u32; 5];
        for d in 0..2000u32 {
            let dst = Ipv4Addr::from(0x0A14_0000 + d);
            let k = key_to(dst);
            let a = s.schedule(&set, &k, Timestamp::ZERO).unwrap();
            let k2 = FlowKey {
                src: "172.16.0.9".parse().unwrap(),
                sport: 999,
                ..k
            };
            assert_eq!(s.schedule(&set, &k2, Timestamp::ZERO), Some(a));
            let want = s.table[(u32::from(dst).wrapping_mul(0x61C8_8647) >> 24) as usize];
            assert_eq!(a as u32, want);
            seen[a] += 1;
        }
        assert!(seen.iter().all(|&c| c > 300), "{seen:?}");
    }

    #[test]
    fn unavailable_server_gives_none() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Dh::new();
        s.update(&set);
        set.0[0].overloaded = true;
        set.0[1].weight = 0;
        for d in 0..100u32 {
            let k = key_to(Ipv4Addr::from(0x0A14_0000 + d));
            assert_eq!(s.schedule(&set, &k, Timestamp::ZERO), None);
        }
    }
}
