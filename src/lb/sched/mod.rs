//! Schedulers: one file per algorithm behind the [`Scheduler`] trait.
//!
//! A scheduler picks a real server for a new connection. It sees the
//! service's real servers through [`DestSet`], in the kernel's list order
//! (index 0 = the most recently added, as the kernel inserts at the head).
//! Each worker lcore owns its own scheduler instances; connection counts
//! behind `DestSet` are shared across lcores.
//!
//! Every algorithm follows the Linux kernel's `net/netfilter/ipvs/ip_vs_*.c`
//! (list order, tie-breaking, comparisons); each file says where it departs
//! from the kernel and why.
//!
//! # Contract for callers
//!
//! - Call [`Scheduler::update`] once after [`new`] and then whenever the
//!   destination list, a weight or a scheduler flag changes (the kernel's
//!   `add_dest`/`del_dest`/`upd_dest`). Do not call it for a mere change of
//!   the overload flag or of connection counts: those are read live through
//!   [`DestSet`] (calling it anyway is harmless for every scheduler except
//!   wrr, whose round restarts at the list head as in the kernel).
//! - Between two `update` calls the [`DestSet`] passed to `schedule` must be
//!   the same list (same length, same order) as the one last passed to
//!   `update`; weights, counts and overload flags may change. `schedule`
//!   never panics if that is violated, it may only pick oddly.
//! - `schedule` never allocates; tables are built in `update`.

use std::net::IpAddr;

use super::time::Timestamp;

mod cache;
pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

#[cfg(test)]
pub(crate) mod testutil;

/// Read access to a service's real servers, in kernel list order.
pub trait DestSet {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn addr(&self, i: usize) -> IpAddr;
    fn port(&self, i: usize) -> u16;
    fn weight(&self, i: usize) -> u32;
    fn active(&self, i: usize) -> u32;
    fn inactive(&self, i: usize) -> u32;
    /// Upper connection threshold reached (IP_VS_DEST_F_OVERLOAD).
    fn overloaded(&self, i: usize) -> bool;
}

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

pub trait Scheduler: Send {
    /// The ipvsadm name (`rr`, `wlc`, ...).
    fn name(&self) -> &'static str;
    /// Rebuild internal tables after the destination list, a weight or a
    /// flag changed. Called off the per-packet path.
    fn update(&mut self, dests: &dyn DestSet);
    /// The index of the real server for a new connection, or `None` when no
    /// server is available (the packet is then dropped).
    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, now: Timestamp) -> Option<usize>;
}

/// Scheduler flags (`ipvsadm -b`). sh-* apply only to sh, mh-* only to mh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// Probe further buckets when the hashed server is unavailable.
    pub fallback: bool,
    /// Hash the source port as well as the source address.
    pub port: bool,
}

/// Every scheduler name rvs knows, as ipvsadm spells them.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "fo", "ovf", "lblc", "lblcr", "twos",
];

/// A new scheduler instance by ipvsadm name; `None` for an unknown name.
///
/// `flags` matter only to `sh` and `mh`. `twos` gets a fresh seed per
/// instance (see [`twos::Twos::new`]); use [`twos::Twos::with_seed`] for a
/// reproducible sequence. Call [`Scheduler::update`] before the first
/// [`Scheduler::schedule`].
pub fn new(name: &str, flags: SchedFlags) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(rr::Rr::new()),
        "wrr" => Box::new(wrr::Wrr::new()),
        "lc" => Box::new(lc::Lc::new()),
        "wlc" => Box::new(wlc::Wlc::new()),
        "sed" => Box::new(sed::Sed::new()),
        "nq" => Box::new(nq::Nq::new()),
        "sh" => Box::new(sh::Sh::new(flags)),
        "dh" => Box::new(dh::Dh::new()),
        "mh" => Box::new(mh::Mh::new(flags)),
        "fo" => Box::new(fo::Fo::new()),
        "ovf" => Box::new(ovf::Ovf::new()),
        "lblc" => Box::new(lblc::Lblc::new()),
        "lblcr" => Box::new(lblcr::Lblcr::new()),
        "twos" => Box::new(twos::Twos::new()),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Helpers shared by several schedulers.

/// "No server" in the index tables the hashing schedulers precompute.
pub(crate) const NO_DEST: u32 = u32::MAX;

/// The kernel's `ip_vs_dest_conn_overhead`: activeconns * 256 + inactconns.
/// Computed in 64 bits so that no count can overflow it.
#[inline]
pub(crate) fn overhead(d: &dyn DestSet, i: usize) -> u64 {
    ((d.active(i) as u64) << 8) + d.inactive(i) as u64
}

/// Weight above zero and not over the upper threshold: the kernel's test
/// for "may take a new connection" in nearly every scheduler.
#[inline]
pub(crate) fn available(d: &dyn DestSet, i: usize) -> bool {
    d.weight(i) > 0 && !d.overloaded(i)
}

/// `a/wa > b/wb` for non-negative values, by cross-multiplication in 128
/// bits (the kernel uses `__s64`; 128 bits cannot overflow for any u64 cost
/// and u32 weight).
#[inline]
pub(crate) fn ratio_gt(a: u64, wa: u32, b: u64, wb: u32) -> bool {
    (a as u128) * (wb as u128) > (b as u128) * (wa as u128)
}

/// The weighted-least selection shared by wlc, sed and the lblc/lblcr
/// fallback: the first server (list order) that is not overloaded and has a
/// weight above zero is the initial pick; every later server that is not
/// overloaded replaces it when `cost/weight` is strictly smaller (a later
/// weight-0 server can never win, as its cross product is 0). Ties keep the
/// earlier server.
#[inline]
pub(crate) fn weighted_least(d: &dyn DestSet, cost: impl Fn(usize) -> u64) -> Option<usize> {
    let n = d.len();
    let mut least = (0..n).find(|&i| available(d, i))?;
    let mut loh = cost(least);
    let mut lw = d.weight(least);
    for i in least + 1..n {
        if d.overloaded(i) {
            continue;
        }
        let doh = cost(i);
        let dw = d.weight(i);
        // loh * dw > doh * lw  <=>  doh/dw < loh/lw
        if (loh as u128) * (dw as u128) > (doh as u128) * (lw as u128) {
            least = i;
            loh = doh;
            lw = dw;
        }
    }
    Some(least)
}

/// The kernel's `hash_32()`: multiply by GOLDEN_RATIO_32, keep the top
/// `bits` bits.
#[inline]
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// The kernel's address fold, already in host order (`ntohl(addr_fold)`):
/// the IPv4 address itself, or the XOR of the four 32-bit words of an IPv6
/// address.
#[inline]
pub(crate) fn addr_fold(a: &IpAddr) -> u32 {
    match a {
        IpAddr::V4(v4) => u32::from(*v4),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |k: usize| u32::from_be_bytes([o[k], o[k + 1], o[k + 2], o[k + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A real server's identity within a service (the kernel's dest is unique by
/// address and port within a service).
pub(crate) type DestId = (IpAddr, u16);

pub(crate) fn ids(d: &dyn DestSet) -> Vec<DestId> {
    (0..d.len()).map(|i| (d.addr(i), d.port(i))).collect()
}

/// For each index of `old`, the index the same server has in `new`, or
/// [`NO_DEST`] when it was removed.
pub(crate) fn remap(old: &[DestId], new: &[DestId]) -> Vec<u32> {
    let pos: std::collections::HashMap<DestId, u32> = new
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i as u32))
        .collect();
    old.iter()
        .map(|id| pos.get(id).copied().unwrap_or(NO_DEST))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn every_name_constructs_and_reports_its_name() {
        for &n in NAMES {
            let s = new(n, SchedFlags::default()).unwrap();
            assert_eq!(s.name(), n);
        }
        assert!(new("bogus", SchedFlags::default()).is_none());
        assert!(new("", SchedFlags::default()).is_none());
    }

    #[test]
    fn every_scheduler_returns_none_on_empty_set() {
        let set = TestSet::default();
        for &n in NAMES {
            for flags in all_flags() {
                let mut s = new(n, flags).unwrap();
                s.update(&set);
                for k in 0..50 {
                    assert_eq!(s.schedule(&set, &key(k), Timestamp::ZERO), None, "{n}");
                }
            }
        }
    }

    #[test]
    fn every_scheduler_returns_none_when_all_weight_zero() {
        let set = TestSet::weights(&[0, 0, 0]);
        for &n in NAMES {
            for flags in all_flags() {
                let mut s = new(n, flags).unwrap();
                s.update(&set);
                for k in 0..200 {
                    assert_eq!(
                        s.schedule(&set, &key(k), Timestamp::ZERO),
                        None,
                        "{n} {flags:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_scheduler_returns_none_when_all_overloaded() {
        let mut set = TestSet::weights(&[3, 1, 2]);
        for d in &mut set.0 {
            d.overloaded = true;
        }
        for &n in NAMES {
            // lblc reuses a cached server without looking at the overload
            // flag (kernel behaviour), but with an empty cache it must fail.
            for flags in all_flags() {
                let mut s = new(n, flags).unwrap();
                s.update(&set);
                for k in 0..200 {
                    assert_eq!(
                        s.schedule(&set, &key(k), Timestamp::ZERO),
                        None,
                        "{n} {flags:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_scheduler_only_picks_available_servers() {
        // Mixed: one weight-0, one overloaded, two usable.
        let mut set = TestSet::weights(&[0, 2, 5, 1]);
        set.0[2].overloaded = true;
        for &n in NAMES {
            for flags in all_flags() {
                let mut s = new(n, flags).unwrap();
                s.update(&set);
                for k in 0..500 {
                    if let Some(i) = s.schedule(&set, &key(k), Timestamp::ZERO) {
                        assert!(i == 1 || i == 3, "{n} {flags:?} picked {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn schedule_survives_a_set_that_shrank_without_update() {
        let big = TestSet::weights(&[1, 2, 3, 4, 5]);
        let small = TestSet::weights(&[1, 2]);
        for &n in NAMES {
            for flags in all_flags() {
                let mut s = new(n, flags).unwrap();
                s.update(&big);
                for k in 0..300 {
                    if let Some(i) = s.schedule(&small, &key(k), Timestamp::ZERO) {
                        assert!(i < 2, "{n}");
                    }
                }
            }
        }
    }

    #[test]
    fn hash_32_matches_kernel_values() {
        // hash_32(x, bits) = (x * 0x61C88647) >> (32 - bits), mod 2^32.
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(2, 8), 0xC3);
        assert_eq!(
            hash_32(0x0A00_0001, 8),
            (0x0A00_0001u32.wrapping_mul(0x61C8_8647)) >> 24
        );
    }

    #[test]
    fn addr_fold_v4_and_v6() {
        assert_eq!(addr_fold(&"10.1.2.3".parse().unwrap()), 0x0A01_0203);
        let v6: IpAddr = "2001:db8::1:0:0:7".parse().unwrap();
        assert_eq!(addr_fold(&v6), 0x2001_0db8 ^ 0x0001_0000 ^ 0x0000_0007);
    }

    #[test]
    fn weighted_least_ties_keep_first_and_skip_quiesced_first() {
        // weight 0 at the head is skipped for the initial pick.
        let set = TestSet::weights(&[0, 1, 1]);
        assert_eq!(weighted_least(&set, |_| 0), Some(1));
        let set = TestSet::weights(&[2, 1]);
        // 4/2 == 2/1 -> tie keeps index 0
        assert_eq!(
            weighted_least(&set, |i| if i == 0 { 4 } else { 2 }),
            Some(0)
        );
    }

    #[test]
    fn remap_follows_identity() {
        let a = TestSet::weights(&[1, 1, 1]);
        let old = ids(&a);
        let mut b = a.clone();
        b.0.remove(1);
        b.push_front(TestDest::new(99, 1));
        assert_eq!(remap(&old, &ids(&b)), vec![1, NO_DEST, 2]);
    }
}

#[cfg(test)]
mod props {
    use super::testutil::*;
    use super::*;
    use proptest::prelude::*;

    fn arb_set() -> impl Strategy<Value = TestSet> {
        prop::collection::vec(
            (0u32..6, 0u32..5, 0u32..300, prop::bool::weighted(0.2)),
            0..12,
        )
        .prop_map(|v| {
            TestSet(
                v.into_iter()
                    .enumerate()
                    .map(|(i, (w, a, ina, ov))| {
                        let mut d = TestDest::new(i as u32 + 1, w).conns(a, ina);
                        d.overloaded = ov;
                        d
                    })
                    .collect(),
            )
        })
    }

    /// The first available index with the least cost/weight, found by
    /// comparing every pair (a brute-force reference).
    fn first_min_ratio(set: &TestSet, cost: impl Fn(usize) -> u64) -> Option<usize> {
        let avail: Vec<usize> = (0..set.len()).filter(|&i| available(set, i)).collect();
        avail.iter().copied().find(|&i| {
            avail.iter().all(|&j| {
                (cost(i) as u128) * (set.weight(j) as u128)
                    <= (cost(j) as u128) * (set.weight(i) as u128)
            })
        })
    }

    fn pick(name: &str, set: &TestSet) -> Option<usize> {
        let mut s = new(name, SchedFlags::default()).unwrap();
        s.update(set);
        s.schedule(set, &key(0), Timestamp::ZERO)
    }

    proptest! {
        #[test]
        fn wlc_is_first_least_overhead_per_weight(set in arb_set()) {
            prop_assert_eq!(pick("wlc", &set), first_min_ratio(&set, |i| overhead(&set, i)));
        }

        #[test]
        fn sed_is_first_least_expected_delay(set in arb_set()) {
            let want = first_min_ratio(&set, |i| set.active(i) as u64 + 1);
            prop_assert_eq!(pick("sed", &set), want);
        }

        #[test]
        fn nq_is_first_idle_else_sed(set in arb_set()) {
            let idle = (0..set.len()).find(|&i| available(&set, i) && set.active(i) == 0);
            let want = idle.or_else(|| first_min_ratio(&set, |i| set.active(i) as u64 + 1));
            prop_assert_eq!(pick("nq", &set), want);
        }

        #[test]
        fn lc_is_first_least_overhead(set in arb_set()) {
            let avail = (0..set.len()).filter(|&i| available(&set, i));
            let min = avail.clone().map(|i| overhead(&set, i)).min();
            let want = avail.clone().find(|&i| Some(overhead(&set, i)) == min);
            prop_assert_eq!(pick("lc", &set), want);
        }

        #[test]
        fn fo_and_ovf_are_first_highest_weight(set in arb_set()) {
            let best = |ok: &dyn Fn(usize) -> bool| {
                let c: Vec<usize> = (0..set.len()).filter(|&i| available(&set, i) && ok(i)).collect();
                let hw = c.iter().map(|&i| set.weight(i)).max();
                c.into_iter().find(|&i| Some(set.weight(i)) == hw)
            };
            prop_assert_eq!(pick("fo", &set), best(&|_| true));
            prop_assert_eq!(pick("ovf", &set), best(&|i| set.active(i) <= set.weight(i)));
        }

        /// Every available server exactly once per n picks, in list order.
        #[test]
        fn rr_visits_each_available_once_per_round(set in arb_set()) {
            let mut s = new("rr", SchedFlags::default()).unwrap();
            s.update(&set);
            let avail: Vec<usize> = (0..set.len()).filter(|&i| available(&set, i)).collect();
            for _ in 0..3 {
                let got: Vec<Option<usize>> =
                    (0..avail.len().max(1)).map(|_| s.schedule(&set, &key(0), Timestamp::ZERO)).collect();
                if avail.is_empty() {
                    prop_assert_eq!(got, vec![None]);
                } else {
                    prop_assert_eq!(got, avail.iter().map(|&i| Some(i)).collect::<Vec<_>>());
                }
            }
        }

        /// Over one period (sum of weights / gcd picks, from a fresh
        /// update) wrr gives each server exactly weight / gcd picks.
        #[test]
        fn wrr_period_counts_are_exact(ws in prop::collection::vec(0u32..8, 1..8), scale in 1u32..4) {
            let ws: Vec<u32> = ws.iter().map(|w| w * scale).collect();
            let set = TestSet::weights(&ws);
            let g = ws.iter().copied().fold(0, gcd);
            let mut s = new("wrr", SchedFlags::default()).unwrap();
            s.update(&set);
            if g == 0 {
                prop_assert_eq!(s.schedule(&set, &key(0), Timestamp::ZERO), None);
                return Ok(());
            }
            let period: u32 = ws.iter().map(|w| w / g).sum();
            for _ in 0..2 {
                let mut count = vec![0u32; ws.len()];
                for _ in 0..period {
                    count[s.schedule(&set, &key(0), Timestamp::ZERO).unwrap()] += 1;
                }
                prop_assert_eq!(count, ws.iter().map(|w| w / g).collect::<Vec<_>>());
            }
        }

        /// Hashing schedulers: deterministic per key, and never a server
        /// that cannot take connections.
        #[test]
        fn hashing_schedulers_deterministic_and_available(set in arb_set(), seed in any::<u64>()) {
            let mut g = Gen(seed);
            for name in ["sh", "dh", "mh"] {
                for flags in all_flags() {
                    let mut a = new(name, flags).unwrap();
                    let mut b = new(name, flags).unwrap();
                    a.update(&set);
                    b.update(&set);
                    for _ in 0..20 {
                        let k = g.flow();
                        let x = a.schedule(&set, &k, Timestamp::ZERO);
                        prop_assert_eq!(x, b.schedule(&set, &k, Timestamp::ZERO));
                        if let Some(i) = x {
                            prop_assert!(available(&set, i));
                        }
                        // With fallback, None only if nothing is available.
                        if flags.fallback && name != "dh" && x.is_none() {
                            prop_assert!((0..set.len()).all(|i| !available(&set, i)));
                        }
                    }
                }
            }
        }
    }
}
