//! Maglev hashing (`ip_vs_mh.c`, after Eisenbud et al., NSDI 2016).
//!
//! Every server gets a permutation of the `M` table slots from two hashes
//! of its address and port: `offset = h1 % M`, `skip = h2 % (M - 1) + 1`.
//! The table is filled in rounds over the list: each server claims its
//! next still-free preferred slot, `turns` times in a row, where
//! `turns = (last_weight / gcd) >> rshift` (at least 1 for a non-zero
//! weight); `rshift` keeps the largest `turns` within `TAB_BITS` bits. A
//! flow's slot is `h1(sport + fold(src)) % M` (the port term only with
//! mh-port). A slot whose server has weight 0 or is overloaded means no
//! connection, unless mh-fallback is set: then the kernel rehashes with
//! offsets `(k + slot) % M` for `k = 0, 1, ...` until it finds a usable
//! server.
//!
//! The hashes are the kernel's on 64-bit machines: `hsiphash` of the u32
//! `offset + port + fold(addr)` with keys `{2654435761, 2654435761}` and
//! `{2654446892, 2654446892}` (on 64-bit `hsiphash` is SipHash-1-3,
//! truncated to 32 bits). With the same table size, list order and weights
//! the table is therefore slot for slot the one Linux x86-64 builds.
//!
//! `last_weight`: as in the kernel, a server keeps its slots when its
//! weight is set to 0 (it takes its latest non-zero weight; it is then
//! skipped, or hashed past with fallback), while a server *added* with
//! weight 0 gets none. The kernel keeps that in the dest; here `update()`
//! remembers it per address and port, so an instance created while a
//! server is already at weight 0 treats it as added with weight 0.
//!
//! # Table size
//!
//! The kernel builds in one prime size (default 4093, `CONFIG_IP_VS_MH_TAB_INDEX`
//! 12) and refuses more servers than slots. rvs picks the size from the
//! number of servers in the list, a pure function of the list so every
//! lcore's instance builds the same table:
//!
//! - up to [`SMALL_POOL_MAX`] (40) servers: 4093 slots (the kernel default;
//!   at least ~100 slots per server, the paper's rule for a balanced table),
//!   turns limited to 6 bits as in the kernel default;
//! - more: 65537 slots (prime; ~100 slots per server up to 655 servers),
//!   turns limited to 8 bits (the kernel's value for its 65521 build);
//! - more than 65537 servers: no table, every flow gets `None`.
//!
//! Crossing the 40/41 boundary changes the table size and so remaps most
//! flows once (measured: ~98% of keys); within either size Maglev's minimal
//! disruption holds. A control plane that expects a pool to grow past 40
//! can pin the size with [`Mh::with_table_size`] ([`TableSize::Large`]
//! avoids the boundary altogether, at 256 KiB per instance).

use std::collections::HashMap;

use super::{addr_fold, available, gcd, DestId, DestSet, FlowKey, SchedFlags, Scheduler, NO_DEST};
use crate::lb::time::Timestamp;

/// Largest pool that uses the small (kernel default) table.
pub const SMALL_POOL_MAX: usize = 40;
pub const SMALL_TAB_SIZE: usize = 4093;
pub const LARGE_TAB_SIZE: usize = 65537;

const KEY1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const KEY2: (u64, u64) = (2_654_446_892, 2_654_446_892);

/// How [`Mh`] sizes its lookup table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TableSize {
    /// 4093 slots up to [`SMALL_POOL_MAX`] servers, else 65537.
    #[default]
    Auto,
    /// Always 4093 slots (the kernel default build); at most 4093 servers.
    Small,
    /// Always 65537 slots.
    Large,
}

#[derive(Debug)]
pub struct Mh {
    flags: SchedFlags,
    size: TableSize,
    /// Slot -> server index, `NO_DEST` when empty. Empty vec: no table.
    table: Vec<u32>,
    last_weight: HashMap<DestId, u32>,
}

impl Mh {
    pub fn new(flags: SchedFlags) -> Self {
        Self::with_table_size(flags, TableSize::Auto)
    }

    pub fn with_table_size(flags: SchedFlags, size: TableSize) -> Self {
        Mh {
            flags,
            size,
            table: Vec::new(),
            last_weight: HashMap::new(),
        }
    }

    /// The table size in use (0 before the first update or when the pool
    /// is too large).
    pub fn table_size(&self) -> usize {
        self.table.len()
    }

    fn slot(&self, key: &FlowKey, offset: u32) -> usize {
        let port = if self.flags.port { key.sport as u32 } else { 0 };
        let v = offset.wrapping_add(port).wrapping_add(addr_fold(&key.src));
        hsiphash_u32(v, KEY1) as usize % self.table.len()
    }
}

/// Table size and turn bits for a pool of `n` servers (see module docs);
/// `None` when the pool has more servers than the table has slots.
pub fn table_params(size: TableSize, n: usize) -> Option<(usize, u32)> {
    let small = match size {
        TableSize::Auto => n <= SMALL_POOL_MAX,
        TableSize::Small => true,
        TableSize::Large => false,
    };
    let (m, bits) = if small {
        (SMALL_TAB_SIZE, 6)
    } else {
        (LARGE_TAB_SIZE, 8)
    };
    (n <= m).then_some((m, bits))
}

#[inline]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-c-d of a message of at most 7 bytes (`msg` little-endian in the
/// low `len` bytes), full 64-bit result.
fn siphash_short(msg: u64, len: u8, key: (u64, u64), c: usize, d: usize) -> u64 {
    debug_assert!(len < 8);
    let mut v = [
        0x736f_6d65_7073_6575 ^ key.0,
        0x646f_7261_6e64_6f6d ^ key.1,
        0x6c79_6765_6e65_7261 ^ key.0,
        0x7465_6462_7974_6573 ^ key.1,
    ];
    let b = ((len as u64) << 56) | msg;
    v[3] ^= b;
    for _ in 0..c {
        sipround(&mut v);
    }
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..d {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The kernel's `hsiphash()` of one u32 on 64-bit: SipHash-1-3, truncated.
#[inline]
fn hsiphash_u32(v: u32, key: (u64, u64)) -> u32 {
    siphash_short(v as u64, 4, key, 1, 3) as u32
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let n = dests.len();
        // last_weight: the weight when added, then the latest non-zero one.
        let mut lw_map = HashMap::with_capacity(n);
        let lw: Vec<u32> = (0..n)
            .map(|i| {
                let id = (dests.addr(i), dests.port(i));
                let w = dests.weight(i);
                let lw = match self.last_weight.get(&id) {
                    Some(&old) if w == 0 => old,
                    _ => w,
                };
                lw_map.insert(id, lw);
                lw
            })
            .collect();
        self.last_weight = lw_map;

        let Some((m, bits)) = table_params(self.size, n) else {
            self.table = Vec::new();
            return;
        };
        self.table.clear();
        self.table.resize(m, NO_DEST);
        let g = lw.iter().copied().filter(|&w| w > 0).fold(0, gcd);
        if g == 0 {
            return; // no server with a weight: empty table
        }
        let max = lw.iter().copied().max().unwrap_or(0);
        let fls = 32 - (max / g).leading_zeros();
        let rshift = fls.saturating_sub(bits);

        let mut perm = Vec::with_capacity(n);
        let mut skip = Vec::with_capacity(n);
        let mut turns = Vec::with_capacity(n);
        for (i, &w) in lw.iter().enumerate() {
            let v = (dests.port(i) as u32).wrapping_add(addr_fold(&dests.addr(i)));
            perm.push(hsiphash_u32(v, KEY1) as usize % m);
            skip.push(hsiphash_u32(v, KEY2) as usize % (m - 1) + 1);
            let t = (w / g) >> rshift;
            turns.push(if t == 0 { (w != 0) as u32 } else { t });
        }

        let mut taken = vec![false; m];
        let mut filled = 0;
        'fill: loop {
            let mut i = 0;
            let mut dt = 0;
            while i < n {
                if turns[i] < 1 {
                    i += 1;
                    continue;
                }
                let mut c = perm[i];
                while taken[c] {
                    perm[i] += skip[i];
                    if perm[i] >= m {
                        perm[i] -= m;
                    }
                    c = perm[i];
                }
                taken[c] = true;
                self.table[c] = i as u32;
                filled += 1;
                if filled == m {
                    break 'fill;
                }
                dt += 1;
                if dt >= turns[i] {
                    dt = 0;
                    i += 1;
                }
            }
        }
    }

    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, _now: Timestamp) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let n = dests.len();
        let usable = |d: u32| (d as usize) < n && available(dests, d as usize);
        let ihash = self.slot(key, 0);
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
        let m = self.table.len();
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let d = self.table[self.slot(key, roffset as u32)];
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

    fn mh(flags: SchedFlags, set: &TestSet) -> Mh {
        let mut s = Mh::new(flags);
        s.update(set);
        s
    }

    fn counts(s: &Mh, n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &d in &s.table {
            c[d as usize] += 1;
        }
        c
    }

    #[test]
    fn siphash_matches_reference_vectors() {
        // SipHash-2-4 reference vectors (key 00..0f, messages 00 01 02 ..).
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(siphash_short(0, 0, key, 2, 4), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash_short(0, 1, key, 2, 4), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash_short(0x0100, 2, key, 2, 4), 0x0d6c_8009_d9a9_4f5a);
    }

    #[test]
    fn table_is_full_and_same_key_same_server() {
        let set = TestSet::weights(&[1, 1, 1, 1, 1]);
        let mut s = mh(SchedFlags::default(), &set);
        assert_eq!(s.table_size(), SMALL_TAB_SIZE);
        assert!(s.table.iter().all(|&d| d < 5));
        let mut g = Gen(5);
        for _ in 0..1000 {
            let k = g.flow();
            let a = s.schedule(&set, &k, Timestamp::ZERO);
            assert!(a.is_some());
            assert_eq!(s.schedule(&set, &k, Timestamp::ZERO), a);
            // without mh-port the source port does not matter
            let k2 = FlowKey {
                sport: k.sport ^ 0x5555,
                ..k
            };
            assert_eq!(s.schedule(&set, &k2, Timestamp::ZERO), a);
        }
        // a second instance (another lcore) builds the same table
        assert_eq!(mh(SchedFlags::default(), &set).table, s.table);
    }

    #[test]
    fn equal_weights_balance_within_tolerance() {
        let set = TestSet::weights(&[1; 7]);
        let s = mh(SchedFlags::default(), &set);
        let ideal = SMALL_TAB_SIZE as f64 / 7.0;
        for c in counts(&s, 7) {
            assert!((c as f64 - ideal).abs() / ideal < 0.02, "{c}");
        }
    }

    #[test]
    fn slots_proportional_to_weight() {
        let set = TestSet::weights(&[1, 2, 3, 4]);
        let s = mh(SchedFlags::default(), &set);
        let c = counts(&s, 4);
        for (i, &c) in c.iter().enumerate() {
            let ideal = SMALL_TAB_SIZE as f64 * (i + 1) as f64 / 10.0;
            assert!((c as f64 - ideal).abs() / ideal < 0.02, "{i}: {c}");
        }
        // and the traffic follows the slots
        let mut s = s;
        let mut traffic = [0u32; 4];
        let mut g = Gen(9);
        for _ in 0..100_000 {
            traffic[s.schedule(&set, &g.flow(), Timestamp::ZERO).unwrap()] += 1;
        }
        for (i, &t) in traffic.iter().enumerate() {
            let ideal = 100_000.0 * (i + 1) as f64 / 10.0;
            assert!((t as f64 - ideal).abs() / ideal < 0.05, "{traffic:?}");
        }
    }

    #[test]
    fn gcd_and_shift_limit_turns() {
        // Weights 1000 and 3000: gcd 1000 -> turns 1 and 3, same as 1:3.
        let a = mh(SchedFlags::default(), &TestSet::weights(&[1000, 3000]));
        let b = mh(SchedFlags::default(), &TestSet::weights(&[1, 3]));
        assert_eq!(a.table, b.table);
        // 1 and 1000: 1000 needs 10 bits, shifted right by 4 -> turns 0->1
        // and 62; still about 1:62 of the slots.
        let c = mh(SchedFlags::default(), &TestSet::weights(&[1, 1000]));
        let n = counts(&c, 2);
        let ratio = n[1] as f64 / n[0] as f64;
        assert!((ratio - 62.0).abs() < 4.0, "{n:?}");
    }

    /// Fraction of `keys` whose server changed, comparing by server address.
    fn moved(a: &mut Mh, sa: &TestSet, b: &mut Mh, sb: &TestSet, keys: &[FlowKey]) -> (f64, usize) {
        let mut moved = 0;
        let mut to_new_or_from_gone = 0;
        for k in keys {
            let x = a.schedule(sa, k, Timestamp::ZERO).map(|i| sa.0[i].addr);
            let y = b.schedule(sb, k, Timestamp::ZERO).map(|i| sb.0[i].addr);
            if x != y {
                moved += 1;
                let gone = x.is_some_and(|x| sb.position(x).is_none());
                let new = y.is_some_and(|y| sa.position(y).is_none());
                if gone || new {
                    to_new_or_from_gone += 1;
                }
            }
        }
        (moved as f64 / keys.len() as f64, to_new_or_from_gone)
    }

    fn disruption_case(n: usize) {
        let mut g = Gen(42);
        let keys: Vec<FlowKey> = (0..100_000).map(|_| g.flow()).collect();
        let set = TestSet::weights(&vec![1; n]);
        let mut full = mh(SchedFlags::default(), &set);

        // Remove one server from the middle.
        let mut less = set.clone();
        less.0.remove(n / 2);
        let mut s_less = mh(SchedFlags::default(), &less);
        let (frac, explained) = moved(&mut full, &set, &mut s_less, &less, &keys);
        let ideal = 1.0 / n as f64;
        assert!(frac < ideal * 1.6, "remove 1 of {n}: moved {frac}");
        assert!(frac > ideal * 0.8, "remove 1 of {n}: moved {frac}");
        // Most moves are the removed server's own keys.
        let moved_keys = (frac * keys.len() as f64) as usize;
        assert!(
            explained as f64 > moved_keys as f64 * 0.6,
            "{explained} of {moved_keys}"
        );

        // Add one server (at the head, as ipvsadm -a does).
        let mut more = set.clone();
        more.push_front(TestDest::new(1000, 1));
        let mut s_more = mh(SchedFlags::default(), &more);
        let (frac, _) = moved(&mut full, &set, &mut s_more, &more, &keys);
        let ideal = 1.0 / (n + 1) as f64;
        assert!(frac < ideal * 1.6, "add 1 to {n}: moved {frac}");
        assert!(frac > ideal * 0.8, "add 1 to {n}: moved {frac}");
    }

    #[test]
    fn minimal_disruption_small_pool() {
        disruption_case(10);
    }

    #[test]
    fn minimal_disruption_large_pool() {
        disruption_case(100);
    }

    #[test]
    fn large_pool_uses_65537() {
        let set = TestSet::weights(&[1; SMALL_POOL_MAX + 1]);
        let s = mh(SchedFlags::default(), &set);
        assert_eq!(s.table_size(), LARGE_TAB_SIZE);
        let c = counts(&s, SMALL_POOL_MAX + 1);
        let ideal = LARGE_TAB_SIZE as f64 / (SMALL_POOL_MAX + 1) as f64;
        assert!(c.iter().all(|&c| (c as f64 - ideal).abs() / ideal < 0.02));
        let auto = TableSize::Auto;
        assert_eq!(
            table_params(auto, SMALL_POOL_MAX),
            Some((SMALL_TAB_SIZE, 6))
        );
        assert_eq!(table_params(auto, LARGE_TAB_SIZE + 1), None);
        assert_eq!(
            table_params(TableSize::Small, 4093),
            Some((SMALL_TAB_SIZE, 6))
        );
        assert_eq!(table_params(TableSize::Small, 4094), None);
        assert_eq!(table_params(TableSize::Large, 1), Some((LARGE_TAB_SIZE, 8)));
    }

    #[test]
    fn pinned_large_table_has_no_boundary() {
        let mut g = Gen(4);
        let keys: Vec<FlowKey> = (0..50_000).map(|_| g.flow()).collect();
        let set = TestSet::weights(&[1; SMALL_POOL_MAX]);
        let mut more = set.clone();
        more.push_front(TestDest::new(1000, 1));
        let mk = |s: &TestSet| {
            let mut m = Mh::with_table_size(SchedFlags::default(), TableSize::Large);
            m.update(s);
            m
        };
        let (mut a, mut b) = (mk(&set), mk(&more));
        assert_eq!(a.table_size(), LARGE_TAB_SIZE);
        let (frac, _) = moved(&mut a, &set, &mut b, &more, &keys);
        assert!(frac < 1.6 / (SMALL_POOL_MAX + 1) as f64, "{frac}");
    }

    #[test]
    fn quiesced_server_keeps_slots_added_zero_gets_none() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = mh(SchedFlags::default(), &set);
        let before = s.table.clone();
        set.0[1].weight = 0;
        s.update(&set);
        assert_eq!(s.table, before, "weight 0 keeps its slots");
        // Its keys get None without fallback.
        let mut g = Gen(2);
        for _ in 0..500 {
            let k = g.flow();
            let slot = s.slot(&k, 0);
            let r = s.schedule(&set, &k, Timestamp::ZERO);
            if s.table[slot] == 1 {
                assert_eq!(r, None);
            } else {
                assert_eq!(r, Some(s.table[slot] as usize));
            }
        }
        // Back to weight 1: same table.
        set.0[1].weight = 1;
        s.update(&set);
        assert_eq!(s.table, before);
        // A server added with weight 0 gets no slot.
        set.push_front(TestDest::new(50, 0));
        s.update(&set);
        assert!(!s.table.contains(&0));
    }

    #[test]
    fn fallback_moves_only_unavailable_keys() {
        let mut set = TestSet::weights(&[1, 1, 1, 1]);
        let mut fb = mh(
            SchedFlags {
                fallback: true,
                port: false,
            },
            &set,
        );
        let mut g = Gen(8);
        let keys: Vec<FlowKey> = (0..5000).map(|_| g.flow()).collect();
        let before: Vec<_> = keys
            .iter()
            .map(|k| fb.schedule(&set, k, Timestamp::ZERO))
            .collect();
        set.0[2].overloaded = true;
        for (k, b) in keys.iter().zip(&before) {
            let r = fb.schedule(&set, k, Timestamp::ZERO);
            assert!(r.is_some());
            if *b == Some(2) {
                assert_ne!(r, Some(2));
            } else {
                assert_eq!(r, *b);
            }
        }
    }

    #[test]
    fn port_flag_hashes_the_source_port() {
        let set = TestSet::weights(&[1, 1, 1, 1]);
        let mut s = mh(
            SchedFlags {
                fallback: false,
                port: true,
            },
            &set,
        );
        let mut seen = [false; 4];
        for p in 0..200 {
            let k = key_from("1.2.3.4".parse().unwrap(), p);
            seen[s.schedule(&set, &k, Timestamp::ZERO).unwrap()] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}
