//! Locality-based least-connection (`ip_vs_lblc.c`).
//!
//! A cache maps a flow's destination address to the server last chosen for
//! it. On a hit (the entry's last use is refreshed) the server is reused if
//! it is still in the list, has a weight above zero and is not overloaded
//! in the lblc sense (`is_overloaded`: more active connections than its
//! weight while some server has fewer than half its weight). Otherwise a
//! server is picked as wlc does and the entry points to it from then on.
//!
//! Kernel fidelity: like the kernel, a cache hit does *not* look at the
//! upper-threshold overload flag (`IP_VS_DEST_F_OVERLOAD`); only the wlc
//! pick on a miss skips flagged servers.
//!
//! Entries expire when unused for the expiration time (the kernel's
//! `lblc_expiration` sysctl, default 24 h); the cache is bounded (see
//! `sched/cache.rs`). A server deleted from the list drops the entries that
//! point to it at the next `update()` (the kernel would keep the entry and
//! revive it if the same server were re-added while the entry lives).

use std::time::Duration;

use super::cache::Cache;
pub use super::cache::DEFAULT_CAPACITY;
use super::{ids, overhead, remap, weighted_least, DestId, DestSet, FlowKey, Scheduler, NO_DEST};
use crate::lb::time::Timestamp;

/// The kernel's default `lblc_expiration` / `lblcr_expiration`: 24 hours.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// lblc/lblcr's notion of overloaded: more active connections than the
/// weight, while some server in the list (any, the kernel does not filter)
/// has `2 * activeconns < weight`.
pub(crate) fn is_overloaded(d: &dyn DestSet, i: usize) -> bool {
    d.active(i) > d.weight(i) && (0..d.len()).any(|j| (d.active(j) as u64) * 2 < d.weight(j) as u64)
}

#[derive(Debug)]
pub struct Lblc {
    cache: Cache<u32>,
    ids: Vec<DestId>,
}

impl Lblc {
    pub fn new() -> Self {
        Self::with_params(DEFAULT_EXPIRATION, DEFAULT_CAPACITY)
    }

    /// A custom expiration (`lblc_expiration`) and cache size (entries,
    /// rounded up to a power of two).
    pub fn with_params(expiration: Duration, capacity: usize) -> Self {
        Lblc {
            cache: Cache::new(capacity, expiration.as_millis() as u64),
            ids: Vec::new(),
        }
    }
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let new_ids = ids(dests);
        if !new_ids.is_empty() {
            self.cache.allocate();
        }
        let map = remap(&self.ids, &new_ids);
        self.cache.retain(|d| {
            let to = map.get(*d as usize).copied().unwrap_or(NO_DEST);
            *d = to;
            to != NO_DEST
        });
        self.ids = new_ids;
    }

    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, now: Timestamp) -> Option<usize> {
        let n = dests.len();
        let hit = self.cache.get(&key.dst, now);
        if let Some(e) = hit {
            let slot = self.cache.slot(e);
            slot.lastuse = now;
            let d = slot.val as usize;
            if d < n && dests.weight(d) > 0 && !is_overloaded(dests, d) {
                return Some(d);
            }
        }
        let d = weighted_least(dests, |i| overhead(dests, i))?;
        // Point the entry at the new server (a new entry if there was none;
        // if the cache cannot take it, the pick stands uncached).
        if let Some(e) = hit.or_else(|| self.cache.insert(key.dst, now)) {
            let slot = self.cache.slot(e);
            slot.val = d as u32;
            slot.lastuse = now;
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn dst(n: u32) -> FlowKey {
        key_to(Ipv4Addr::from(0x0A14_0000 + n))
    }

    fn at(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn first_pick_is_wlc_then_reused_despite_load() {
        let mut set = TestSet(vec![
            TestDest::new(1, 1).conns(2, 0),
            TestDest::new(2, 1).conns(1, 0),
            TestDest::new(3, 1).conns(3, 0),
        ]);
        let mut s = Lblc::new();
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(1));
        // Server 1 becomes the busiest, but is not "overloaded" (no server
        // has 2*active < weight): reused.
        set.0[1].active = 10;
        assert_eq!(s.schedule(&set, &dst(1), at(1)), Some(1));
        // Another destination gets its own wlc pick.
        assert_eq!(s.schedule(&set, &dst(2), at(1)), Some(0));
    }

    #[test]
    fn reschedules_when_overloaded_in_the_lblc_sense() {
        let mut set = TestSet(vec![
            TestDest::new(1, 4).conns(3, 0),
            TestDest::new(2, 4).conns(1, 0),
        ]);
        let mut s = Lblc::new();
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(1));
        set.0[1].active = 5; // 5 > 4, and server 0 has 2*3 < 4? no: 6 >= 4
        assert_eq!(s.schedule(&set, &dst(1), at(1)), Some(1));
        set.0[0].active = 1; // 2*1 < 4: now server 1 is overloaded
        assert_eq!(s.schedule(&set, &dst(1), at(2)), Some(0));
        // and the entry now points to server 0
        set.0[0].active = 3;
        set.0[1].active = 0;
        assert_eq!(s.schedule(&set, &dst(1), at(3)), Some(0));
    }

    #[test]
    fn weight_zero_reschedules_and_overload_flag_is_ignored_on_hit() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Lblc::new();
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(0));
        set.0[0].overloaded = true; // kernel lblc: cache hit still used
        assert_eq!(s.schedule(&set, &dst(1), at(1)), Some(0));
        set.0[0].overloaded = false;
        set.0[0].weight = 0;
        assert_eq!(s.schedule(&set, &dst(1), at(2)), Some(1));
        set.0[0].weight = 1;
        assert_eq!(s.schedule(&set, &dst(1), at(3)), Some(1));
    }

    #[test]
    fn entries_expire_after_expiration_of_disuse() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Lblc::new();
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(0));
        set.0[0].inactive = 1; // wlc would now pick 1
        let day = 24 * 3600;
        // Each use refreshes the entry.
        assert_eq!(s.schedule(&set, &dst(1), at(day - 1)), Some(0));
        assert_eq!(s.schedule(&set, &dst(1), at(2 * day - 2)), Some(0));
        // A full expiration of disuse: gone, rescheduled by wlc.
        assert_eq!(s.schedule(&set, &dst(1), at(3 * day - 2)), Some(1));
    }

    #[test]
    fn custom_expiration() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Lblc::with_params(Duration::from_secs(60), 64);
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(0));
        set.0[0].inactive = 1;
        assert_eq!(s.schedule(&set, &dst(1), at(59)), Some(0));
        assert_eq!(s.schedule(&set, &dst(1), at(119)), Some(1));
    }

    #[test]
    fn entry_follows_its_server_across_updates() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = Lblc::new();
        s.update(&set);
        set.0[0].inactive = 1;
        set.0[2].inactive = 1;
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(1));
        let server = set.0[1].addr;
        set.push_front(TestDest::new(9, 1));
        s.update(&set); // server moves to index 2
        assert_eq!(s.schedule(&set, &dst(1), at(1)), set.position(server));
        // Deleted: the entry goes, next pick is wlc.
        set.0.remove(2);
        s.update(&set);
        let got = s.schedule(&set, &dst(1), at(2)).unwrap();
        assert_eq!(got, 0); // the new idle server at the head
    }

    #[test]
    fn cache_is_bounded() {
        let set = TestSet::weights(&[1, 1]);
        let mut s = Lblc::with_params(DEFAULT_EXPIRATION, 256);
        s.update(&set);
        for n in 0..100_000 {
            assert!(s.schedule(&set, &dst(n), at(n as u64)).is_some());
        }
        assert!(s.cache.len() <= 256);
    }

    #[test]
    fn none_when_nothing_available_even_with_entry() {
        let mut set = TestSet::weights(&[1]);
        let mut s = Lblc::new();
        s.update(&set);
        assert_eq!(s.schedule(&set, &dst(1), at(0)), Some(0));
        set.0[0].weight = 0;
        assert_eq!(s.schedule(&set, &dst(1), at(1)), None);
    }
}
