//! The neighbour table (IP -> MAC per port), owned by the control thread,
//! and the immutable snapshots of it that workers read.
//!
//! States, simplified from Linux NUD and driven by an explicit `now`:
//!
//! - *reachable*: confirmed (an ARP reply or solicited NA to us) less than
//!   `reachable` ago;
//! - *stale*: past that, or learned unconfirmed (the neighbour asked for
//!   us). Still used for forwarding; the worker that uses it sends one
//!   unicast probe (rate limited) so that the answer confirms it again;
//! - removed `stale` after it went stale without a confirmation;
//! - *static*: configured, never expires, never overwritten by learning.
//!
//! Bounded: at most `capacity` learned entries. A new neighbour when full
//! evicts the stale entry closest to its removal; if none is stale the new
//! one is refused and counted (`full`), since every entry is in active use.
//!
//! Snapshot layout: an ahash map keyed by (port, address). Workers look up
//! the snapshot when a new connection (or a pending packet) needs a next
//! hop's MAC, not per established packet (the MAC is cached with the
//! connection/destination), so the lookup is off the per-packet path. A
//! hash lookup is O(1) for the tables of thousands of neighbours a LAN with
//! many real servers gives, and measured faster than a sorted vector even
//! for a handful of gateways (comparing `(port, IpAddr)` keys is branchy).
//! `lookup_cost` below (ignored; `--release -- --ignored`) on the
//! development VM, ns per hit lookup:
//!
//! | entries | ahash map | sorted vec (binary search) |
//! |--------:|----------:|---------------------------:|
//! |       8 |       4.4 |                        9.7 |
//! |      64 |       4.6 |                       16.5 |
//! |    1024 |       4.6 |                       49.2 |
//! |    8192 |       4.8 |                       62.1 |

use crate::ids::PortIndex;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;

use crate::lb::time::Timestamp;
use crate::wire::EthernetAddress;

use super::learn::{Evidence, LearnRx, Learned};

/// Neighbour table limits and timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighConfig {
    /// Learned entries (static ones are not counted).
    pub capacity: usize,
    /// How long a confirmation keeps an entry reachable (Linux: ~30 s).
    pub reachable: Duration,
    /// How long a stale entry lives without a confirmation.
    pub stale: Duration,
}

impl Default for NeighConfig {
    fn default() -> Self {
        Self {
            capacity: 4096,
            reachable: Duration::from_secs(30),
            stale: Duration::from_secs(60),
        }
    }
}

/// A neighbour's state at a given `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NeighState {
    Reachable,
    Stale,
    Static,
}

/// One entry as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub port: PortIndex,
    pub ip: IpAddr,
    pub mac: EthernetAddress,
    pub state: NeighState,
}

/// What [`NeighTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnOutcome {
    Created,
    /// The MAC changed.
    Updated,
    /// Confirmed again (reachable for another period).
    Refreshed,
    /// Nothing a worker would see changed.
    Unchanged,
    /// Overheard about an unknown neighbour, or about a static entry.
    Ignored,
    /// New neighbour refused: table full of entries in use.
    Full,
}

/// Counters of the table's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighStats {
    pub created: u64,
    pub updated: u64,
    pub refreshed: u64,
    /// Removed after the stale period.
    pub expired: u64,
    /// Stale entries removed early to make room.
    pub evicted: u64,
    /// New neighbours refused (table full, nothing stale).
    pub full: u64,
    pub snapshots: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: EthernetAddress,
    stale_at: Timestamp,
    expires_at: Timestamp,
    is_static: bool,
}

const NEVER: Timestamp = Timestamp(u64::MAX);

type Key = (PortIndex, IpAddr);

/// The control thread's table.
#[derive(Debug)]
pub struct NeighTable {
    cfg: NeighConfig,
    map: AHashMap<Key, Entry>,
    dynamic: usize,
    dirty: bool,
    current: Arc<NeighSnapshot>,
    stats: NeighStats,
}

impl NeighTable {
    pub fn new(cfg: NeighConfig) -> Self {
        Self {
            cfg,
            map: AHashMap::new(),
            dynamic: 0,
            dirty: false,
            current: Arc::new(NeighSnapshot::default()),
            stats: NeighStats::default(),
        }
    }

    pub fn config(&self) -> &NeighConfig {
        &self.cfg
    }

    pub fn stats(&self) -> NeighStats {
        self.stats
    }

    /// Entries (static included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Learned (non-static) entries, bounded by `capacity`.
    pub fn dynamic_len(&self) -> usize {
        self.dynamic
    }

    /// Applies one report (see [`Evidence`]).
    pub fn learn(&mut self, l: &Learned, now: Timestamp) -> LearnOutcome {
        let key = (l.port, l.ip);
        let cfg = self.cfg;
        let out = match self.map.get_mut(&key) {
            Some(e) if e.is_static => LearnOutcome::Ignored,
            Some(e) => {
                let changed = e.mac != l.mac;
                e.mac = l.mac;
                match l.evidence {
                    Evidence::Reply => {
                        e.stale_at = now + cfg.reachable;
                        e.expires_at = e.stale_at + cfg.stale;
                    }
                    Evidence::Request | Evidence::Overheard if changed => {
                        // A new MAC is not confirmed: usable, but stale.
                        e.stale_at = e.stale_at.min(now);
                        e.expires_at = now + cfg.stale;
                    }
                    Evidence::Request => {
                        // Alive (it talked to us); not a confirmation.
                        e.expires_at = e.expires_at.max(now + cfg.stale);
                    }
                    Evidence::Overheard => {}
                }
                match (changed, l.evidence) {
                    (true, _) => LearnOutcome::Updated,
                    (false, Evidence::Reply) => LearnOutcome::Refreshed,
                    (false, _) => LearnOutcome::Unchanged,
                }
            }
            None if l.evidence == Evidence::Overheard => LearnOutcome::Ignored,
            None => {
                if self.dynamic >= cfg.capacity && !self.evict_one(now) {
                    self.stats.full += 1;
                    return LearnOutcome::Full;
                }
                let stale_at = match l.evidence {
                    Evidence::Reply => now + cfg.reachable,
                    _ => now,
                };
                self.map.insert(
                    key,
                    Entry {
                        mac: l.mac,
                        stale_at,
                        expires_at: stale_at + cfg.stale,
                        is_static: false,
                    },
                );
                self.dynamic += 1;
                LearnOutcome::Created
            }
        };
        match out {
            LearnOutcome::Created => self.stats.created += 1,
            LearnOutcome::Updated => self.stats.updated += 1,
            LearnOutcome::Refreshed => self.stats.refreshed += 1,
            _ => {}
        }
        if matches!(
            out,
            LearnOutcome::Created | LearnOutcome::Updated | LearnOutcome::Refreshed
        ) {
            self.dirty = true;
        }
        out
    }

    /// Applies up to `max` reports waiting on the learn channel; returns
    /// how many were read.
    pub fn apply(&mut self, rx: &LearnRx, max: usize, now: Timestamp) -> usize {
        rx.drain(max, |l| {
            self.learn(&l, now);
        })
    }

    /// Removes the stale learned entry closest to removal.
    fn evict_one(&mut self, now: Timestamp) -> bool {
        let victim = self
            .map
            .iter()
            .filter(|(_, e)| !e.is_static && e.stale_at <= now)
            .min_by_key(|(k, e)| (e.expires_at, **k))
            .map(|(k, _)| *k);
        match victim {
            Some(k) => {
                self.map.remove(&k);
                self.dynamic -= 1;
                self.stats.evicted += 1;
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    /// Removes learned entries whose stale period ended; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| e.is_static || e.expires_at > now);
        let n = before - self.map.len();
        if n > 0 {
            self.dynamic -= n;
            self.stats.expired += n as u64;
            self.dirty = true;
        }
        n
    }

    /// Adds or replaces a static entry (not counted against `capacity`).
    pub fn add_static(&mut self, port: impl Into<PortIndex>, ip: IpAddr, mac: EthernetAddress) {
        let port = port.into();
        let e = Entry {
            mac,
            stale_at: NEVER,
            expires_at: NEVER,
            is_static: true,
        };
        if let Some(old) = self.map.insert((port, ip), e) {
            if !old.is_static {
                self.dynamic -= 1;
            }
        }
        self.dirty = true;
    }

    /// Removes an entry, static or learned.
    pub fn remove(&mut self, port: PortIndex, ip: &IpAddr) -> bool {
        match self.map.remove(&(port, *ip)) {
            Some(e) => {
                if !e.is_static {
                    self.dynamic -= 1;
                }
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    /// Removes every learned entry on `port` (link down, port reconfigured).
    pub fn flush_port(&mut self, port: PortIndex) -> usize {
        let before = self.map.len();
        self.map.retain(|k, e| e.is_static || k.0 != port);
        let n = before - self.map.len();
        self.dynamic -= n;
        self.dirty |= n > 0;
        n
    }

    /// The entry as listed at `now`.
    pub fn get(&self, port: PortIndex, ip: &IpAddr, now: Timestamp) -> Option<Neighbour> {
        self.map
            .get(&(port, *ip))
            .map(|e| Self::listed((port, *ip), e, now))
    }

    fn listed(k: Key, e: &Entry, now: Timestamp) -> Neighbour {
        Neighbour {
            port: k.0,
            ip: k.1,
            mac: e.mac,
            state: if e.is_static {
                NeighState::Static
            } else if now < e.stale_at {
                NeighState::Reachable
            } else {
                NeighState::Stale
            },
        }
    }

    /// Every entry at `now`, sorted by (port, address).
    pub fn list(&self, now: Timestamp) -> Vec<Neighbour> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, e)| Self::listed(*k, e, now))
            .collect();
        v.sort_by_key(|n| (n.port, n.ip));
        v
    }

    /// Something workers would see changed since the last snapshot.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The current snapshot, rebuilt if the table changed since the last
    /// call (the control thread publishes it when `Arc::ptr_eq` says it is
    /// new; calling this at most every few milliseconds coalesces bursts of
    /// learning into one publication).
    pub fn snapshot(&mut self) -> Arc<NeighSnapshot> {
        if self.dirty {
            let map = self
                .map
                .iter()
                .map(|(k, e)| {
                    (
                        *k,
                        SnapEntry {
                            mac: e.mac,
                            stale_at: e.stale_at,
                        },
                    )
                })
                .collect();
            self.current = Arc::new(NeighSnapshot {
                generation: self.current.generation + 1,
                map,
            });
            self.dirty = false;
            self.stats.snapshots += 1;
        }
        Arc::clone(&self.current)
    }
}

/// A neighbour as workers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapEntry {
    pub mac: EthernetAddress,
    /// From then on, a worker using the entry should probe it (unicast,
    /// rate limited) so that the reply refreshes it.
    pub stale_at: Timestamp,
}

impl SnapEntry {
    #[inline]
    pub fn needs_refresh(&self, now: Timestamp) -> bool {
        now >= self.stale_at
    }
}

/// An immutable view of the table (`Arc`-shared with every worker).
#[derive(Clone, Debug, Default)]
pub struct NeighSnapshot {
    generation: u64,
    map: AHashMap<Key, SnapEntry>,
}

impl NeighSnapshot {
    /// Increases with every rebuilt snapshot (0: the empty initial one).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    #[inline]
    pub fn get(&self, port: PortIndex, ip: &IpAddr) -> Option<&SnapEntry> {
        self.map.get(&(port, *ip))
    }

    /// The MAC of `ip` on `port`, if known.
    #[inline]
    pub fn lookup(&self, port: PortIndex, ip: &IpAddr) -> Option<EthernetAddress> {
        self.get(port, ip).map(|e| e.mac)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, n])
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn l(n: u8, m: u8, evidence: Evidence) -> Learned {
        Learned {
            port: PortIndex(0),
            ip: ip(n),
            mac: mac(m),
            evidence,
        }
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn small() -> NeighTable {
        NeighTable::new(NeighConfig {
            capacity: 3,
            reachable: Duration::from_secs(30),
            stale: Duration::from_secs(60),
        })
    }

    #[test]
    fn states_and_expiry() {
        let mut tb = small();
        assert_eq!(
            tb.learn(&l(1, 1, Evidence::Reply), t(0)),
            LearnOutcome::Created
        );
        assert_eq!(
            tb.learn(&l(2, 2, Evidence::Request), t(0)),
            LearnOutcome::Created
        );
        assert_eq!(
            tb.learn(&l(3, 3, Evidence::Overheard), t(0)),
            LearnOutcome::Ignored
        );
        assert_eq!(tb.len(), 2);
        assert_eq!(
            tb.get(PortIndex(0), &ip(1), t(29)).unwrap().state,
            NeighState::Reachable
        );
        assert_eq!(
            tb.get(PortIndex(0), &ip(1), t(30)).unwrap().state,
            NeighState::Stale
        );
        assert_eq!(
            tb.get(PortIndex(0), &ip(2), t(0)).unwrap().state,
            NeighState::Stale
        );
        // Refresh 1 at 20 s: stale at 50, gone at 110.
        assert_eq!(
            tb.learn(&l(1, 1, Evidence::Reply), t(20)),
            LearnOutcome::Refreshed
        );
        assert_eq!(tb.expire(t(59)), 0);
        assert_eq!(
            tb.expire(t(60)),
            1,
            "2 learned unconfirmed at 0: gone at 60"
        );
        assert!(tb.get(PortIndex(0), &ip(2), t(60)).is_none());
        assert_eq!(
            tb.get(PortIndex(0), &ip(1), t(60)).unwrap().state,
            NeighState::Stale
        );
        assert_eq!(tb.expire(t(109)), 0);
        assert_eq!(tb.expire(t(110)), 1);
        assert!(tb.is_empty() && tb.dynamic_len() == 0);
        assert_eq!(tb.stats().expired, 2);
    }

    #[test]
    fn request_keeps_alive_and_mac_change_goes_stale() {
        let mut tb = small();
        tb.learn(&l(1, 1, Evidence::Reply), t(0));
        // Same MAC in a request at 80 s (stale since 30): alive until 140.
        assert_eq!(
            tb.learn(&l(1, 1, Evidence::Request), t(80)),
            LearnOutcome::Unchanged
        );
        assert_eq!(tb.expire(t(139)), 0);
        // Overheard new MAC: updated and stale.
        tb.learn(&l(1, 1, Evidence::Reply), t(100));
        assert_eq!(
            tb.learn(&l(1, 9, Evidence::Overheard), t(101)),
            LearnOutcome::Updated
        );
        let n = tb.get(PortIndex(0), &ip(1), t(101)).unwrap();
        assert_eq!((n.mac, n.state), (mac(9), NeighState::Stale));
        assert_eq!(
            tb.learn(&l(1, 9, Evidence::Overheard), t(102)),
            LearnOutcome::Unchanged
        );
        assert_eq!(tb.expire(t(161)), 1);
    }

    #[test]
    fn bounded_with_eviction_of_oldest_stale() {
        let mut tb = small();
        tb.learn(&l(1, 1, Evidence::Reply), t(0)); // stale at 30, expires 90
        tb.learn(&l(2, 2, Evidence::Reply), t(10)); // stale at 40, expires 100
        tb.learn(&l(3, 3, Evidence::Reply), t(20)); // stale at 50, expires 110
                                                    // Full, nothing stale: refused.
        assert_eq!(
            tb.learn(&l(4, 4, Evidence::Reply), t(25)),
            LearnOutcome::Full
        );
        assert_eq!(tb.stats().full, 1);
        // At 45, 1 and 2 are stale; 1 is the oldest.
        assert_eq!(
            tb.learn(&l(4, 4, Evidence::Request), t(45)),
            LearnOutcome::Created
        );
        assert!(tb.get(PortIndex(0), &ip(1), t(45)).is_none());
        assert!(tb.get(PortIndex(0), &ip(2), t(45)).is_some());
        assert_eq!((tb.dynamic_len(), tb.stats().evicted), (3, 1));
        // Statics are not counted, never evicted, never expire.
        tb.add_static(0, ip(200), mac(200));
        assert_eq!((tb.len(), tb.dynamic_len()), (4, 3));
        assert_eq!(
            tb.learn(&l(5, 5, Evidence::Reply), t(46)),
            LearnOutcome::Created
        );
        assert!(
            tb.get(PortIndex(0), &ip(2), t(46)).is_none(),
            "2 was the oldest stale"
        );
        tb.expire(t(1_000_000));
        assert_eq!(tb.list(t(1_000_000)).len(), 1);
        let s = tb.get(PortIndex(0), &ip(200), t(1_000_000)).unwrap();
        assert_eq!((s.mac, s.state), (mac(200), NeighState::Static));
        // Learning does not override a static entry.
        let mut r = l(200, 7, Evidence::Reply);
        r.port = PortIndex(0);
        assert_eq!(tb.learn(&r, t(0)), LearnOutcome::Ignored);
        assert_eq!(tb.get(PortIndex(0), &ip(200), t(0)).unwrap().mac, mac(200));
        // A static replacing a learned entry frees its slot.
        tb.learn(&l(6, 6, Evidence::Reply), t(2_000_000));
        assert_eq!(tb.dynamic_len(), 1);
        tb.add_static(0, ip(6), mac(66));
        assert_eq!(tb.dynamic_len(), 0);
        assert!(tb.remove(PortIndex(0), &ip(6)) && !tb.remove(PortIndex(0), &ip(6)));
    }

    #[test]
    fn ports_are_separate() {
        let mut tb = small();
        tb.learn(&l(1, 1, Evidence::Reply), t(0));
        let mut o = l(1, 2, Evidence::Reply);
        o.port = PortIndex(1);
        tb.learn(&o, t(0));
        let s = tb.snapshot();
        assert_eq!(s.lookup(PortIndex(0), &ip(1)), Some(mac(1)));
        assert_eq!(s.lookup(PortIndex(1), &ip(1)), Some(mac(2)));
        assert_eq!(s.lookup(PortIndex(2), &ip(1)), None);
        assert_eq!(tb.flush_port(PortIndex(1)), 1);
        assert_eq!(tb.snapshot().lookup(PortIndex(1), &ip(1)), None);
        assert_eq!(tb.dynamic_len(), 1);
    }

    #[test]
    fn snapshots_only_when_changed() {
        let mut tb = small();
        let s0 = tb.snapshot();
        assert_eq!((s0.generation(), s0.len()), (0, 0));
        tb.learn(&l(1, 1, Evidence::Reply), t(0));
        assert!(tb.is_dirty());
        let s1 = tb.snapshot();
        assert_eq!(s1.generation(), 1);
        assert!(Arc::ptr_eq(&s1, &tb.snapshot()), "no change, same Arc");
        let e = *s1.get(PortIndex(0), &ip(1)).unwrap();
        assert!(!e.needs_refresh(t(29)) && e.needs_refresh(t(30)));
        // Unchanged/ignored reports do not make a new snapshot.
        tb.learn(&l(1, 1, Evidence::Request), t(1));
        tb.learn(&l(9, 9, Evidence::Overheard), t(1));
        assert!(!tb.is_dirty());
        // A refresh moves stale_at: new snapshot.
        tb.learn(&l(1, 1, Evidence::Reply), t(10));
        let s2 = tb.snapshot();
        assert_eq!(s2.generation(), 2);
        assert_eq!(s2.get(PortIndex(0), &ip(1)).unwrap().stale_at, t(40));
        // The old snapshot is untouched.
        assert_eq!(s1.get(PortIndex(0), &ip(1)).unwrap().stale_at, t(30));
        tb.expire(t(1000));
        assert!(tb.snapshot().is_empty());
    }

    #[test]
    fn apply_from_channel() {
        let (mut tx, rx) = crate::net::learn::learn_channel(16);
        for n in 1..=5 {
            tx.send(l(n, n, Evidence::Reply));
        }
        let mut tb = NeighTable::new(NeighConfig::default());
        assert_eq!(tb.apply(&rx, 3, t(0)), 3);
        assert_eq!(tb.apply(&rx, 3, t(0)), 2);
        assert_eq!(tb.len(), 5);
    }

    /// Snapshot lookup cost, hash map vs sorted vector (see the module doc).
    /// `cargo test --release --no-default-features --lib lookup_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn lookup_cost() {
        use std::hint::black_box;
        for n in [8usize, 64, 1024, 8192] {
            let keys: Vec<Key> = (0..n)
                .map(|i| {
                    (
                        PortIndex(0),
                        IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
                    )
                })
                .collect();
            let e = SnapEntry {
                mac: mac(1),
                stale_at: NEVER,
            };
            let map: AHashMap<Key, SnapEntry> = keys.iter().map(|k| (*k, e)).collect();
            let mut vec: Vec<(Key, SnapEntry)> = keys.iter().map(|k| (*k, e)).collect();
            vec.sort_by_key(|x| x.0);
            let rounds = 2_000_000 / n.max(1) + 1;
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                for k in &keys {
                    black_box(map.get(black_box(k)));
                }
            }
            let h = start.elapsed().as_nanos() as f64 / (rounds * n) as f64;
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                for k in &keys {
                    black_box(vec.binary_search_by_key(black_box(k), |x| x.0).ok());
                }
            }
            let v = start.elapsed().as_nanos() as f64 / (rounds * n) as f64;
            eprintln!("{n:>5} entries: ahash map {h:.1} ns, sorted vec {v:.1} ns");
        }
    }
}
