//! Locality-based least-connection with replication (`ip_vs_lblcr.c`).
//!
//! The cache maps a destination address to a *set* of servers (newest
//! first, as the kernel adds at the head of the set's list). On a hit:
//!
//! 1. the candidate is the set's weighted least-connection member (members
//!    that are overloaded-flagged or have weight 0 are skipped; ties keep
//!    the earlier member);
//! 2. if the set has more than one member and was last modified more than
//!    the expiration ago, its weighted *most*-loaded member (weight above
//!    zero) is removed, to shrink sets that are no longer needed;
//! 3. if there is a candidate and it is not overloaded in the lblc sense
//!    (`is_overloaded` in lblc.rs) it is used (even if step 2 just
//!    removed it, as the kernel does);
//! 4. otherwise a server is picked as wlc does over the whole list and
//!    added to the set (if not already in it).
//!
//! On a miss the wlc pick starts a new one-member set. Adding or removing
//! a member stamps the set's modification time.
//!
//! Bounded memory: the cache is the bounded table of `sched/cache.rs` and a
//! set holds at most [`MAX_SET`] members; adding to a full set first drops
//! its most-loaded member (the kernel's sets are unbounded lists). Servers
//! deleted from the list leave every set at the next `update()`.

use std::time::Duration;

use super::cache::Cache;
use super::lblc::{is_overloaded, DEFAULT_CAPACITY, DEFAULT_EXPIRATION};
use super::{ids, overhead, remap, DestId, DestSet, FlowKey, Scheduler, NO_DEST};
use crate::lb::time::Timestamp;

/// Most servers one destination's set holds.
pub const MAX_SET: usize = 16;

#[derive(Clone, Debug, Default)]
struct ServerSet {
    len: u8,
    /// Server indices, newest first.
    members: [u16; MAX_SET],
    lastmod: Timestamp,
}

impl ServerSet {
    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.members[..self.len as usize]
            .iter()
            .map(|&m| m as usize)
    }

    /// Weighted least-connection member (`ip_vs_dest_set_min`).
    fn min(&self, d: &dyn DestSet) -> Option<usize> {
        let n = d.len();
        let mut it = self.members().filter(|&m| m < n);
        let mut least = it.find(|&m| !d.overloaded(m) && d.weight(m) > 0)?;
        let mut loh = overhead(d, least);
        for m in it {
            if d.overloaded(m) {
                continue;
            }
            let doh = overhead(d, m);
            if (loh as u128) * (d.weight(m) as u128) > (doh as u128) * (d.weight(least) as u128) {
                least = m;
                loh = doh;
            }
        }
        Some(least)
    }

    /// Position (in `members`) of the weighted most-loaded member with a
    /// weight above zero (`ip_vs_dest_set_max`).
    fn max_pos(&self, d: &dyn DestSet) -> Option<usize> {
        let n = d.len();
        let mut it = self.members().enumerate().filter(|&(_, m)| m < n);
        let (mut pos, mut most) = it.find(|&(_, m)| d.weight(m) > 0)?;
        let mut moh = overhead(d, most);
        for (p, m) in it {
            let doh = overhead(d, m);
            let dw = d.weight(m);
            if (moh as u128) * (dw as u128) < (doh as u128) * (d.weight(most) as u128) && dw > 0 {
                pos = p;
                most = m;
                moh = doh;
            }
        }
        Some(pos)
    }

    fn erase(&mut self, pos: usize, now: Timestamp) {
        let len = self.len as usize;
        self.members.copy_within(pos + 1..len, pos);
        self.len -= 1;
        self.lastmod = now;
    }

    /// Add `dest` at the head unless present (`ip_vs_dest_set_insert`).
    fn insert(&mut self, d: &dyn DestSet, dest: usize, now: Timestamp) {
        let Ok(dest16) = u16::try_from(dest) else {
            return; // beyond what a set can name: leave the set as it is
        };
        if self.members().any(|m| m == dest) {
            return;
        }
        if self.len as usize == MAX_SET {
            let pos = self.max_pos(d).unwrap_or(MAX_SET - 1);
            self.erase(pos, now);
        }
        let len = self.len as usize;
        self.members.copy_within(0..len, 1);
        self.members[0] = dest16;
        self.len += 1;
        self.lastmod = now;
    }
}

#[derive(Debug)]
pub struct Lblcr {
    cache: Cache<ServerSet>,
    ids: Vec<DestId>,
}

impl Lblcr {
    pub fn new() -> Self {
        Self::with_params(DEFAULT_EXPIRATION, DEFAULT_CAPACITY)
    }

    /// A custom expiration (`lblcr_expiration`) and cache size (entries,
    /// rounded up to a power of two).
    pub fn with_params(expiration: Duration, capacity: usize) -> Self {
        Lblcr {
            cache: Cache::new(capacity, expiration.as_millis() as u64),
            ids: Vec::new(),
        }
    }
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn update(&mut self, dests: &dyn DestSet) {
        let new_ids = ids(dests);
        if !new_ids.is_empty() {
            self.cache.allocate();
        }
        let map = remap(&self.ids, &new_ids);
        self.cache.retain(|set| {
            let mut kept = 0;
            for k in 0..set.len as usize {
                let to = map.get(set.members[k] as usize).copied().unwrap_or(NO_DEST);
                if let Ok(to) = u16::try_from(to) {
                    if to as u32 != NO_DEST {
                        set.members[kept] = to;
                        kept += 1;
                    }
                }
            }
            set.len = kept as u8;
            true
        });
        self.ids = new_ids;
    }

    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, now: Timestamp) -> Option<usize> {
        let expiration = self.cache.expiration_ms();
        if let Some(e) = self.cache.get(&key.dst, now) {
            let slot = self.cache.slot(e);
            slot.lastuse = now;
            let set = &mut slot.val;
            let cand = set.min(dests);
            if set.len > 1 && now.as_millis() > set.lastmod.as_millis().saturating_add(expiration) {
                if let Some(pos) = set.max_pos(dests) {
                    set.erase(pos, now);
                }
            }
            if let Some(c) = cand {
                if !is_overloaded(dests, c) {
                    return Some(c);
                }
            }
            let d = super::weighted_least(dests, |i| overhead(dests, i))?;
            set.insert(dests, d, now);
            return Some(d);
        }
        let d = super::weighted_least(dests, |i| overhead(dests, i))?;
        if let Some(e) = self.cache.insert(key.dst, now) {
            self.cache.slot(e).val.insert(dests, d, now);
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

    fn set_of(s: &mut Lblcr, k: &FlowKey, now: Timestamp) -> Vec<usize> {
        let e = s.cache.get(&k.dst, now).unwrap();
        s.cache.slot(e).val.members().collect()
    }

    #[test]
    fn reuses_set_member_then_replicates_when_overloaded() {
        let mut set = TestSet(vec![
            TestDest::new(1, 4).conns(3, 0),
            TestDest::new(2, 4).conns(1, 0),
            TestDest::new(3, 4).conns(3, 0),
        ]);
        let mut s = Lblcr::new();
        s.update(&set);
        let k = dst(1);
        assert_eq!(s.schedule(&set, &k, at(0)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(0)), [1]);
        // Busy but nobody is below half its weight: reused.
        set.0[1].active = 9;
        assert_eq!(s.schedule(&set, &k, at(1)), Some(1));
        // Server 2 drops to 1 active (2*1 < 4): server 1 is overloaded ->
        // wlc pick (server 2) joins the set, newest first.
        set.0[2].active = 1;
        assert_eq!(s.schedule(&set, &k, at(2)), Some(2));
        assert_eq!(set_of(&mut s, &k, at(2)), [2, 1]);
        // Next time the least-loaded member of the set is used.
        set.0[2].active = 2;
        assert_eq!(s.schedule(&set, &k, at(3)), Some(2));
        // Members load: set min over {2, 1} by overhead/weight.
        set.0[1].active = 1;
        assert_eq!(s.schedule(&set, &k, at(4)), Some(1));
    }

    #[test]
    fn min_skips_flagged_and_quiesced_members() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = Lblcr::new();
        s.update(&set);
        let k = dst(1);
        assert_eq!(s.schedule(&set, &k, at(0)), Some(0));
        set.0[0].overloaded = true; // min skips it -> no candidate -> wlc
        assert_eq!(s.schedule(&set, &k, at(1)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(1)), [1, 0]);
        set.0[1].weight = 0;
        assert_eq!(s.schedule(&set, &k, at(2)), Some(2));
        assert_eq!(set_of(&mut s, &k, at(2)), [2, 1, 0]);
    }

    #[test]
    fn set_shrinks_after_expiration_without_change() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Lblcr::with_params(Duration::from_secs(100), 64);
        s.update(&set);
        let k = dst(1);
        assert_eq!(s.schedule(&set, &k, at(0)), Some(0));
        set.0[0].overloaded = true;
        assert_eq!(s.schedule(&set, &k, at(10)), Some(1)); // set {1, 0}, lastmod 10
        set.0[0].overloaded = false;
        set.0[0].active = 5; // the most loaded member
        set.0[1].active = 1;
        // Used regularly so the entry stays; not yet 100 s since lastmod.
        assert_eq!(s.schedule(&set, &k, at(60)), Some(1));
        assert_eq!(s.schedule(&set, &k, at(110)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(110)), [1, 0]);
        // Strictly more than the expiration since lastmod: drop the max.
        assert_eq!(s.schedule(&set, &k, at(111)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(111)), [1]);
        // A single member is never dropped.
        assert_eq!(s.schedule(&set, &k, at(190)), Some(1));
        assert_eq!(s.schedule(&set, &k, at(280)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(280)), [1]);
    }

    #[test]
    fn entry_expires_after_disuse() {
        let mut set = TestSet::weights(&[1, 1]);
        let mut s = Lblcr::new();
        s.update(&set);
        let k = dst(1);
        assert_eq!(s.schedule(&set, &k, at(0)), Some(0));
        set.0[0].inactive = 1;
        assert_eq!(s.schedule(&set, &k, at(86_399)), Some(0));
        assert_eq!(s.schedule(&set, &k, at(2 * 86_400)), Some(1));
        assert_eq!(set_of(&mut s, &k, at(2 * 86_400)), [1]);
    }

    #[test]
    fn deleted_server_leaves_sets() {
        let mut set = TestSet::weights(&[1, 1, 1]);
        let mut s = Lblcr::new();
        s.update(&set);
        let k = dst(1);
        assert_eq!(s.schedule(&set, &k, at(0)), Some(0));
        set.0[0].overloaded = true;
        assert_eq!(s.schedule(&set, &k, at(1)), Some(1)); // {1, 0}
        set.0[0].overloaded = false;
        let keep = set.0[1].addr;
        set.0.remove(0);
        s.update(&set);
        assert_eq!(set_of(&mut s, &k, at(2)), [set.position(keep).unwrap()]);
    }

    #[test]
    fn set_size_is_bounded() {
        let n = MAX_SET + 4;
        let mut set = TestSet::weights(&vec![1; n]);
        let mut s = Lblcr::new();
        s.update(&set);
        let k = dst(1);
        for i in 0..n {
            // Make every current member unusable so the set must grow.
            for (j, d) in set.0.iter_mut().enumerate() {
                d.overloaded = j < i;
            }
            assert_eq!(s.schedule(&set, &k, at(i as u64)), Some(i));
        }
        assert_eq!(set_of(&mut s, &k, at(100)).len(), MAX_SET);
    }

    #[test]
    fn set_max_prefers_weighted_most_loaded() {
        let set = TestSet(vec![
            TestDest::new(1, 2).conns(2, 0), // 512/2 = 256
            TestDest::new(2, 1).conns(1, 1), // 257/1
            TestDest::new(3, 0).conns(9, 0), // weight 0: never max
        ]);
        let mut ss = ServerSet::default();
        for m in [2, 1, 0] {
            ss.insert(&set, m, Timestamp::ZERO);
        }
        // members newest first: [0, 1, 2]
        assert_eq!(ss.max_pos(&set), Some(1));
        assert_eq!(ss.min(&set), Some(0));
    }
}
