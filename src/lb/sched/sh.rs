//! Source hashing (`ip_vs_sh.c`).
//!
//! A 256-bucket table is filled in list order, each server taking `weight`
//! consecutive buckets (a weight-0 server still takes one), wrapping round
//! the list until all buckets are filled. The bucket for a flow is
//! `hash_32(sport + fold(src), 8)` (the port term only with the sh-port
//! flag; `fold` is the IPv4 address or the XOR of the IPv6 words). A bucket
//! whose server has weight 0 or is overloaded means no connection, unless
//! sh-fallback is set: then the kernel probes the other buckets in turn.
//!
//! Kernel quirk kept on purpose: the fallback probe adds its rotating
//! offset to the hash twice (`ip_vs_sh_get_fallback` passes
//! `(offset + ihash) % 256` as an offset to a hash that already adds
//! `ihash`), so probing starts at bucket `2 * ihash` rather than
//! `ihash + 1`. It still visits all 256 buckets, and reproducing it keeps
//! the choice of fallback server identical to Linux.

use super::{addr_fold, available, hash_32, DestSet, FlowKey, SchedFlags, Scheduler, NO_DEST};
use crate::lb::time::Timestamp;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;

#[derive(Debug)]
pub struct Sh {
    table: [u32; TAB_SIZE],
    flags: SchedFlags,
}

impl Sh {
    pub fn new(flags: SchedFlags) -> Self {
        Sh {
            table: [NO_DEST; TAB_SIZE],
            flags,
        }
    }

    fn bucket(&self, key: &FlowKey) -> usize {
        let port = if self.flags.port { key.sport as u32 } else { 0 };
        hash_32(port.wrapping_add(addr_fold(&key.src)), TAB_BITS) as usize
    }
}

/// Fill `table` with servers in list order, `max(weight, 1)` consecutive
/// buckets each, cycling through the list (`ip_vs_sh_reassign`).
pub(crate) fn fill_weighted(table: &mut [u32], dests: &dyn DestSet) {
    let n = dests.len();
    if n == 0 {
        table.fill(NO_DEST);
        return;
    }
    let mut p = 0;
    let mut count = 0u32;
    for b in table.iter_mut() {
        *b = p as u32;
        count += 1;
        if count >= dests.weight(p) {
            p = (p + 1) % n;
            count = 0;
        }
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        fill_weighted(&mut self.table, dests);
    }

    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let n = dests.len();
        let usable = |d: u32| (d as usize) < n && available(dests, d as usize);
        let ihash = self.bucket(key);
        let d = self.table[ihash];
        if d == NO_DEST {
            return None;
        }
        if usable(d) {
            return Some(d as usize);
        }
        if !self.flags.fallback {
            return None;
        }
        for offset in 0..TAB_SIZE {
            let roffset = (offset + ihash) & TAB_MASK;
            let d = self.table[(roffset + ihash) & TAB_MASK];
            if d == NO_DEST {
                break;
            }
            if usable(d) {
                return Some(d as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn sh(flags: SchedFlags, set: &TestSet) -> Sh {
        let mut s = Sh::new(flags);
        s.update(set);
        s
    }

    #[test]
    fn table_takes_weight_consecutive_buckets() {
        let set = TestSet::weights(&[2, 0, 3]);
        let s = sh(SchedFlags::default(), &set);
        // A A B C C C A A B C C C ...
        assert_eq!(&s.table[..12], &[0, 0, 1, 2, 2, 2, 0, 0, 1, 2, 2, 2]);
        // 256 = 42 * 6 + 4: the last round is A A B C.
        assert_eq!(&s.table[252..], &[0, 0, 1, 2]);
    }

    #[test]
    fn bucket_is_kernel_hash_of_source() {
        let s = Sh::new(SchedFlags::default());
        let k = key_from(Ipv4Addr::new(192, 168, 1, 77), 1234);
        let want = (0xC0A8_014Du32.wrapping_mul(0x61C8_8647) >> 24) as usize;
        assert_eq!(s.bucket(&k), want);
        let s = Sh::new(SchedFlags {
            port: true,
            fallback: false,
        });
        let want = ((0xC0A8_014Du32 + 1234).wrapping_mul(0x61C8_8647) >> 24) as usize;
        assert_eq!(s.bucket(&k), want);
    }

    #[test]
    fn same_source_same_server_any_port() {
        let set = TestSet::weights(&[1, 2, 3, 4]);
        let mut s = sh(SchedFlags::default(), &set);
        let mut g = Gen(7);
        for _ in 0..1000 {
            let k = g.flow();
            let first = s.schedule(&set, &k, Timestamp::ZERO);
            assert!(first.is_some());
            for port in [1, 80, 65535] {
                let k2 = FlowKey { sport: port, ..k };
                assert_eq!(s.schedule(&set, &k2, Timestamp::ZERO), first);
            }
        }
    }

    #[test]
    fn port_flag_spreads_one_source() {
        let set = TestSet::weights(&[1, 1, 1, 1]);
        let mut s = sh(
            SchedFlags {
                port: true,
                fallback: false,
            },
            &set,
        );
        let mut seen = [false; 4];
        for port in 0..64 {
            let k = key_from(Ipv4Addr::new(1, 2, 3, 4), port);
            seen[s.schedule(&set, &k, Timestamp::ZERO).unwrap()] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn distribution_follows_weights() {
        let set = TestSet::weights(&[1, 3]);
        let mut s = sh(SchedFlags::default(), &set);
        let mut count = [0u32; 2];
        let mut g = Gen(1);
        for _ in 0..40_000 {
            count[s.schedule(&set, &g.flow(), Timestamp::ZERO).unwrap()] += 1;
        }
        let share = count[1] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.03, "{count:?}");
    }

    #[test]
    fn mapping_stable_until_the_server_changes() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = sh(SchedFlags::default(), &set);
        let mut g = Gen(3);
        let flows: Vec<FlowKey> = (0..300).map(|_| g.flow()).collect();
        let before: Vec<_> = flows
            .iter()
            .map(|k| s.schedule(&set, k, Timestamp::ZERO))
            .collect();
        // Connection counts do not matter.
        set.0[0].active = 1000;
        let again: Vec<_> = flows
            .iter()
            .map(|k| s.schedule(&set, k, Timestamp::ZERO))
            .collect();
        assert_eq!(before, again);
        // Unavailable server: its sources get nothing, others unchanged.
        set.0[1].weight = 0;
        for (k, b) in flows.iter().zip(&before) {
            let now = s.schedule(&set, k, Timestamp::ZERO);
            if *b == Some(1) {
                assert_eq!(now, None);
            } else {
                assert_eq!(now, *b);
            }
        }
    }

    #[test]
    fn overloaded_without_fallback_is_none_with_fallback_probes_on() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        set.0[2].overloaded = true;
        let mut plain = sh(SchedFlags::default(), &set);
        let mut fb = sh(
            SchedFlags {
                fallback: true,
                port: false,
            },
            &set,
        );
        let mut g = Gen(11);
        let mut hit = 0;
        for _ in 0..2000 {
            let k = g.flow();
            let b = fb.bucket(&k);
            let p = plain.schedule(&set, &k, Timestamp::ZERO);
            let f = fb.schedule(&set, &k, Timestamp::ZERO);
            if fb.table[b] == 2 {
                hit += 1;
                assert_eq!(p, None);
                // Kernel probe order: first bucket 2*ihash (mod 256).
                let expect = (0..256)
                    .map(|o| fb.table[(((o + b) & 255) + b) & 255])
                    .find(|&d| d != 2)
                    .map(|d| d as usize);
                assert_eq!(f, expect);
                assert!(f.is_some());
            } else {
                assert_eq!(p, Some(fb.table[b] as usize));
                assert_eq!(f, p);
            }
        }
        assert!(hit > 400);
    }

    #[test]
    fn weight_change_rebuilds_on_update() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = sh(SchedFlags::default(), &set);
        assert_eq!(s.table.iter().filter(|&&d| d == 0).count(), 128);
        set.0[0].weight = 3;
        s.update(&set);
        assert_eq!(s.table.iter().filter(|&&d| d == 0).count(), 192);
    }

    #[test]
    fn ipv6_sources_hash() {
        let set = TestSet::weights(&[1, 1, 1, 1]);
        let mut s = sh(SchedFlags::default(), &set);
        let k = FlowKey {
            src: "2001:db8::1".parse().unwrap(),
            sport: 1,
            dst: "2001:db8::ffff".parse().unwrap(),
            dport: 80,
        };
        let a = s.schedule(&set, &k, Timestamp::ZERO);
        assert!(a.is_some());
        assert_eq!(a, s.schedule(&set, &k, Timestamp::ZERO));
    }
}
