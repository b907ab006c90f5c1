//! The bounded destination-address cache behind lblc and lblcr.
//!
//! The kernel keeps a chained hash table (1024 buckets) that grows with
//! every new destination address, trimmed by a timer: entries unused for
//! `expiration` (default 24 h) are dropped every 30 minutes, and above
//! 16384 entries those unused for 6 minutes go first. rvs needs no timer
//! and never allocates while scheduling: the table is a fixed array of
//! 4-way buckets allocated on the first `update()`.
//!
//! - An entry unused for `expiration` or longer is gone: lookups miss and
//!   its slot is free (the kernel drops it at its next full check, at most
//!   30 minutes later).
//! - Inserting into a full bucket replaces the entry used least recently,
//!   the same preference as the kernel's overflow collection.

use std::net::IpAddr;

use crate::lb::time::Timestamp;

const WAYS: usize = 4;

/// The kernel's soft limit (`IP_VS_LBLC_TAB_SIZE * 16`).
pub const DEFAULT_CAPACITY: usize = 16384;

#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    pub addr: Option<IpAddr>,
    pub lastuse: Timestamp,
    pub val: V,
}

#[derive(Debug)]
pub(crate) struct Cache<V> {
    slots: Vec<Slot<V>>,
    capacity: usize,
    expiration_ms: u64,
}

fn addr_hash(a: &IpAddr) -> u64 {
    let x = match a {
        IpAddr::V4(v4) => u32::from(*v4) as u64,
        IpAddr::V6(v6) => {
            let v = u128::from(*v6);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ 0x5555
        }
    };
    let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 31)
}

impl<V: Clone + Default> Cache<V> {
    /// `capacity` entries (rounded up to a power of two, at least 4); no
    /// memory is taken until [`Cache::allocate`].
    pub fn new(capacity: usize, expiration_ms: u64) -> Self {
        Cache {
            slots: Vec::new(),
            capacity: capacity.max(WAYS).next_power_of_two(),
            expiration_ms,
        }
    }

    pub fn allocate(&mut self) {
        if self.slots.is_empty() {
            let empty = Slot {
                addr: None,
                lastuse: Timestamp::ZERO,
                val: V::default(),
            };
            self.slots = vec![empty; self.capacity];
        }
    }

    pub fn expiration_ms(&self) -> u64 {
        self.expiration_ms
    }

    fn expired(&self, s: &Slot<V>, now: Timestamp) -> bool {
        now.as_millis().saturating_sub(s.lastuse.as_millis()) >= self.expiration_ms
    }

    fn bucket(&self, addr: &IpAddr) -> std::ops::Range<usize> {
        let buckets = self.slots.len() / WAYS;
        let b = (addr_hash(addr) as usize) & (buckets - 1);
        b * WAYS..b * WAYS + WAYS
    }

    /// The live entry for `addr`, if any. An expired one is dropped.
    pub fn get(&mut self, addr: &IpAddr, now: Timestamp) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        for i in self.bucket(addr) {
            if self.slots[i].addr.as_ref() == Some(addr) {
                if self.expired(&self.slots[i], now) {
                    self.slots[i].addr = None;
                    return None;
                }
                return Some(i);
            }
        }
        None
    }

    /// A fresh entry for `addr` (which must not be present), with
    /// `lastuse = now` and a default value; `None` if not allocated.
    pub fn insert(&mut self, addr: IpAddr, now: Timestamp) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let range = self.bucket(&addr);
        let mut i = range.start;
        for j in range {
            let s = &self.slots[j];
            if s.addr.is_none() || self.expired(s, now) {
                i = j;
                break;
            }
            if s.lastuse < self.slots[i].lastuse {
                i = j;
            }
        }
        self.slots[i] = Slot {
            addr: Some(addr),
            lastuse: now,
            val: V::default(),
        };
        Some(i)
    }

    pub fn slot(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.slots[i]
    }

    /// Visit every entry (off the hot path); returning `false` drops it.
    pub fn retain(&mut self, mut f: impl FnMut(&mut V) -> bool) {
        for s in &mut self.slots {
            if s.addr.is_some() && !f(&mut s.val) {
                s.addr = None;
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.addr.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn unallocated_cache_stores_nothing() {
        let mut c: Cache<u32> = Cache::new(16, 1000);
        assert_eq!(c.insert(a(1), Timestamp(0)), None);
        assert_eq!(c.get(&a(1), Timestamp(0)), None);
    }

    #[test]
    fn insert_get_expire() {
        let mut c: Cache<u32> = Cache::new(16, 1000);
        c.allocate();
        let i = c.insert(a(1), Timestamp(0)).unwrap();
        c.slot(i).val = 7;
        assert_eq!(c.get(&a(1), Timestamp(999)), Some(i));
        assert_eq!(c.get(&a(1), Timestamp(1000)), None);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn bounded_and_evicts_least_recently_used() {
        let mut c: Cache<u32> = Cache::new(64, u64::MAX);
        c.allocate();
        for n in 0..10_000u32 {
            c.insert(a(n), Timestamp(n as u64)).unwrap();
        }
        assert_eq!(c.len(), 64);
        // the newest survive
        assert!(c.get(&a(9_999), Timestamp(10_000)).is_some());
        // within one bucket the oldest goes first
        let mut c: Cache<u32> = Cache::new(4, u64::MAX);
        c.allocate();
        for n in 0..4 {
            c.insert(a(n), Timestamp(10 + n as u64));
        }
        let i = c.get(&a(0), Timestamp(100)).unwrap();
        c.slot(i).lastuse = Timestamp(100); // touched: now the newest
        c.insert(a(99), Timestamp(101));
        assert!(c.get(&a(0), Timestamp(102)).is_some());
        assert!(c.get(&a(1), Timestamp(102)).is_none());
    }

    #[test]
    fn retain_drops() {
        let mut c: Cache<u32> = Cache::new(16, u64::MAX);
        c.allocate();
        for n in 0..5 {
            let i = c.insert(a(n), Timestamp(0)).unwrap();
            c.slot(i).val = n;
        }
        c.retain(|v| *v % 2 == 0);
        assert_eq!(c.len(), 3);
    }
}
