//! A worker's packets waiting for a next hop's MAC, and the rate limiting
//! of the ARP requests / neighbour solicitations it sends for them.
//!
//! All storage is allocated in [`Pending::new`]; pushing, resolving and
//! expiring never allocate (the caller's output `Vec` is reused with its
//! capacity). Limits: `max_total` packets, `max_per_addr` per next hop,
//! `max_addrs` next hops at a time. Packets of one next hop leave in
//! arrival order. Each packet has a deadline (`timeout` after it was
//! queued); past it, [`Pending::expire`] hands it back for a counted drop.
//! A packet refused by a limit is handed back at once (the newest is the
//! one dropped; what waits keeps its order).
//!
//! Requests: the first packet for a next hop asks for one
//! ([`Queued::send_request`]), then at most one per `request_interval` per
//! next hop while packets wait ([`Pending::poll_requests`]).

use crate::drops::DropReason;
use crate::ids::PortIndex;
use std::net::IpAddr;
use std::time::Duration;

use crate::lb::time::Timestamp;
use crate::wire::EthernetAddress;

use super::neigh::NeighSnapshot;

/// Limits and timers of a [`Pending`] queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingConfig {
    pub max_total: usize,
    pub max_per_addr: usize,
    pub max_addrs: usize,
    /// How long a packet may wait.
    pub timeout: Duration,
    /// Minimum time between two requests for the same next hop.
    pub request_interval: Duration,
}

impl Default for PendingConfig {
    fn default() -> Self {
        Self {
            max_total: 256,
            max_per_addr: 16,
            max_addrs: 64,
            timeout: Duration::from_secs(3),
            request_interval: Duration::from_secs(1),
        }
    }
}

/// A packet was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Send an ARP request / NS for the next hop now (the rate limit allows).
    pub send_request: bool,
}

/// A packet whose next hop is now known: set the destination MAC, send it
/// out of `port`.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved<P> {
    pub pkt: P,
    pub port: PortIndex,
    pub next_hop: IpAddr,
    pub mac: EthernetAddress,
}

/// Counters (per worker, plain integers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingStats {
    pub queued: u64,
    pub resolved: u64,
    pub expired: u64,
    /// Refused: `max_total` reached.
    pub dropped_full: u64,
    /// Refused: `max_per_addr` reached.
    pub dropped_addr_full: u64,
    /// Refused: `max_addrs` reached.
    pub dropped_addrs: u64,
    /// Requests the caller was told to send.
    pub requests: u64,
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<P> {
    pkt: Option<P>,
    deadline: Timestamp,
    /// Next packet of the same next hop, or the next free slot.
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    port: PortIndex,
    ip: IpAddr,
    head: u32,
    tail: u32,
    count: u32,
    /// When a request was last sent (rate limit); `None`: never.
    last_request: Option<Timestamp>,
    active: bool,
}

const IDLE: Waiter = Waiter {
    port: PortIndex(0),
    ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    head: NIL,
    tail: NIL,
    count: 0,
    last_request: None,
    active: false,
};

/// A worker's bounded queue of packets `P` (e.g. mbufs) waiting for
/// neighbour resolution.
#[derive(Debug)]
pub struct Pending<P> {
    cfg: PendingConfig,
    slots: Vec<Slot<P>>,
    free: u32,
    waiters: Vec<Waiter>,
    total: usize,
    stats: PendingStats,
}

impl<P> Pending<P> {
    pub fn new(cfg: PendingConfig) -> Self {
        let n = cfg.max_total.min(NIL as usize - 1);
        let mut slots = Vec::with_capacity(n);
        for i in 0..n {
            slots.push(Slot {
                pkt: None,
                deadline: Timestamp::ZERO,
                next: if i + 1 < n { (i + 1) as u32 } else { NIL },
            });
        }
        Self {
            cfg,
            slots,
            free: if n > 0 { 0 } else { NIL },
            waiters: vec![IDLE; cfg.max_addrs],
            total: 0,
            stats: PendingStats::default(),
        }
    }

    pub fn config(&self) -> &PendingConfig {
        &self.cfg
    }

    pub fn stats(&self) -> PendingStats {
        self.stats
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Packets waiting for `ip` on `port`.
    pub fn waiting_for(&self, port: PortIndex, ip: &IpAddr) -> usize {
        self.find(port, ip)
            .map_or(0, |w| self.waiters[w].count as usize)
    }

    fn find(&self, port: PortIndex, ip: &IpAddr) -> Option<usize> {
        self.waiters
            .iter()
            .position(|w| w.active && w.port == port && w.ip == *ip)
    }

    /// A waiter record for a new next hop: an idle one, else one with no
    /// packets left (only remembering its last request), oldest first.
    fn claim(&mut self, port: PortIndex, ip: IpAddr) -> Option<usize> {
        let i = match self.waiters.iter().position(|w| !w.active) {
            Some(i) => i,
            None => self
                .waiters
                .iter()
                .enumerate()
                .filter(|(_, w)| w.count == 0)
                .min_by_key(|(_, w)| w.last_request)
                .map(|(i, _)| i)?,
        };
        self.waiters[i] = Waiter {
            port,
            ip,
            active: true,
            ..IDLE
        };
        Some(i)
    }

    fn rate_ok(&self, w: &Waiter, now: Timestamp) -> bool {
        match w.last_request {
            None => true,
            Some(t) => now >= t + self.cfg.request_interval,
        }
    }

    /// Queues `pkt` until `next_hop` on `port` resolves; hands it back if
    /// a limit is reached, with the limit's reason.
    pub fn push(
        &mut self,
        port: PortIndex,
        next_hop: IpAddr,
        pkt: P,
        now: Timestamp,
    ) -> Result<Queued, (P, DropReason)> {
        let w = match self.find(port, &next_hop) {
            Some(w) => {
                if self.waiters[w].count as usize >= self.cfg.max_per_addr {
                    self.stats.dropped_addr_full += 1;
                    return Err((pkt, DropReason::HoldAddrFull));
                }
                w
            }
            None => {
                if self.free == NIL {
                    self.stats.dropped_full += 1;
                    return Err((pkt, DropReason::HoldFull));
                }
                if self.cfg.max_per_addr == 0 {
                    self.stats.dropped_addr_full += 1;
                    return Err((pkt, DropReason::HoldAddrFull));
                }
                match self.claim(port, next_hop) {
                    Some(w) => w,
                    None => {
                        self.stats.dropped_addrs += 1;
                        return Err((pkt, DropReason::HoldTooManyAddrs));
                    }
                }
            }
        };
        if self.free == NIL {
            self.stats.dropped_full += 1;
            return Err((pkt, DropReason::HoldFull));
        }
        let s = self.free;
        let slot = &mut self.slots[s as usize];
        self.free = slot.next;
        slot.pkt = Some(pkt);
        slot.deadline = now + self.cfg.timeout;
        slot.next = NIL;
        let wr = &mut self.waiters[w];
        if wr.tail == NIL {
            wr.head = s;
        } else {
            self.slots[wr.tail as usize].next = s;
        }
        wr.tail = s;
        wr.count += 1;
        self.total += 1;
        self.stats.queued += 1;
        let wr = self.waiters[w];
        let send_request = self.rate_ok(&wr, now);
        if send_request {
            self.waiters[w].last_request = Some(now);
            self.stats.requests += 1;
        }
        Ok(Queued { send_request })
    }

    /// Takes the head packet of waiter `w`.
    fn pop(&mut self, w: usize) -> Option<P> {
        let wr = &mut self.waiters[w];
        if wr.head == NIL {
            return None;
        }
        let s = wr.head;
        let slot = &mut self.slots[s as usize];
        wr.head = slot.next;
        if wr.head == NIL {
            wr.tail = NIL;
        }
        wr.count -= 1;
        slot.next = self.free;
        self.free = s;
        self.total -= 1;
        slot.pkt.take()
    }

    /// Moves every packet whose next hop `snap` now knows into `out`
    /// (appended; per next hop in arrival order) and forgets those next
    /// hops. Returns how many. `out` keeps its capacity between calls, so
    /// with `out.capacity() >= max_total` this never allocates.
    pub fn take_resolved(&mut self, snap: &NeighSnapshot, out: &mut Vec<Resolved<P>>) -> usize {
        if self.total == 0 {
            return 0;
        }
        let mut n = 0;
        for w in 0..self.waiters.len() {
            let wr = self.waiters[w];
            if !wr.active || wr.count == 0 {
                continue;
            }
            let Some(mac) = snap.lookup(wr.port, &wr.ip) else {
                continue;
            };
            while let Some(pkt) = self.pop(w) {
                out.push(Resolved {
                    pkt,
                    port: wr.port,
                    next_hop: wr.ip,
                    mac,
                });
                n += 1;
            }
            self.waiters[w] = IDLE;
        }
        self.stats.resolved += n as u64;
        n
    }

    /// Hands packets past their deadline to `drop` (counted as expired), and
    /// forgets next hops with nothing waiting whose request interval is
    /// over. Returns how many packets expired.
    pub fn expire(&mut self, now: Timestamp, mut drop: impl FnMut(P)) -> usize {
        let mut n = 0;
        for w in 0..self.waiters.len() {
            if !self.waiters[w].active {
                continue;
            }
            // FIFO with one timeout: deadlines grow along the list.
            while self.waiters[w].head != NIL
                && self.slots[self.waiters[w].head as usize].deadline <= now
            {
                if let Some(p) = self.pop(w) {
                    drop(p);
                    n += 1;
                }
            }
            let wr = self.waiters[w];
            if wr.count == 0 && self.rate_ok(&wr, now) {
                self.waiters[w] = IDLE;
            }
        }
        self.stats.expired += n as u64;
        n
    }

    /// Calls `send(port, next_hop)` for every next hop with packets waiting
    /// whose request interval is over (a retry: the first request or its
    /// answer may have been lost). Returns how many.
    pub fn poll_requests(
        &mut self,
        now: Timestamp,
        mut send: impl FnMut(PortIndex, IpAddr),
    ) -> usize {
        let mut n = 0;
        for w in 0..self.waiters.len() {
            let wr = self.waiters[w];
            if wr.active && wr.count > 0 && self.rate_ok(&wr, now) {
                self.waiters[w].last_request = Some(now);
                send(wr.port, wr.ip);
                n += 1;
            }
        }
        self.stats.requests += n as u64;
        n
    }

    /// Drops everything (port down, shutdown).
    pub fn clear(&mut self, mut drop: impl FnMut(P)) {
        for w in 0..self.waiters.len() {
            while let Some(p) = self.pop(w) {
                drop(p);
            }
            self.waiters[w] = IDLE;
        }
    }
}

/// Rate limiting of requests that are not for queued packets (the unicast
/// probe a worker sends when it uses a stale neighbour entry): a fixed
/// direct-mapped table of (address, last request). Bounded and
/// allocation-free; two addresses hashing to the same slot share it, which
/// can only let an extra request through, never block one for longer than
/// the interval.
#[derive(Debug)]
pub struct RequestLimiter {
    interval: Duration,
    slots: Vec<Option<(PortIndex, IpAddr, Timestamp)>>,
    hasher: ahash::RandomState,
}

impl RequestLimiter {
    /// `slots` is rounded up to a power of two (at least 1).
    pub fn new(slots: usize, interval: Duration) -> Self {
        let n = slots.max(1).next_power_of_two();
        Self {
            interval,
            slots: vec![None; n],
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }

    /// True (and remembered) if a request for `ip` on `port` may go now.
    pub fn allow(&mut self, port: PortIndex, ip: IpAddr, now: Timestamp) -> bool {
        let i = self.hasher.hash_one((port, ip)) as usize & (self.slots.len() - 1);
        match self.slots[i] {
            Some((p, a, t)) if p == port && a == ip && now < t + self.interval => false,
            _ => {
                self.slots[i] = Some((port, ip, now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::learn::{Evidence, Learned};
    use crate::net::neigh::{NeighConfig, NeighTable};

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn mac(n: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, n])
    }

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_millis(n)
    }

    fn cfg() -> PendingConfig {
        PendingConfig {
            max_total: 6,
            max_per_addr: 3,
            max_addrs: 3,
            timeout: Duration::from_secs(3),
            request_interval: Duration::from_secs(1),
        }
    }

    fn snap_with(entries: &[(u16, u8, u8)]) -> std::sync::Arc<NeighSnapshot> {
        let mut t = NeighTable::new(NeighConfig::default());
        for &(port, i, m) in entries {
            t.learn(
                &Learned {
                    port: PortIndex(port),
                    ip: ip(i),
                    mac: mac(m),
                    evidence: Evidence::Reply,
                },
                ms(0),
            );
        }
        t.snapshot()
    }

    #[test]
    fn limits() {
        let mut p = Pending::new(cfg());
        for k in 0..3 {
            assert!(p.push(PortIndex(0), ip(1), k, ms(0)).is_ok());
        }
        assert_eq!(
            p.push(PortIndex(0), ip(1), 3, ms(0)),
            Err((3, DropReason::HoldAddrFull))
        );
        // Same address on another port is another next hop.
        assert!(p.push(PortIndex(1), ip(1), 10, ms(0)).is_ok());
        assert!(p.push(PortIndex(0), ip(2), 20, ms(0)).is_ok());
        assert_eq!(
            p.push(PortIndex(0), ip(3), 30, ms(0)),
            Err((30, DropReason::HoldTooManyAddrs))
        );
        assert!(p.push(PortIndex(0), ip(2), 21, ms(0)).is_ok());
        assert_eq!(p.len(), 6);
        assert_eq!(
            p.push(PortIndex(0), ip(2), 22, ms(0)),
            Err((22, DropReason::HoldFull))
        );
        assert_eq!(
            p.push(PortIndex(0), ip(9), 90, ms(0)),
            Err((90, DropReason::HoldFull))
        );
        let s = p.stats();
        assert_eq!(
            (
                s.queued,
                s.dropped_addr_full,
                s.dropped_addrs,
                s.dropped_full
            ),
            (6, 1, 1, 2)
        );
        assert_eq!(p.waiting_for(PortIndex(0), &ip(1)), 3);
        assert_eq!(p.waiting_for(PortIndex(1), &ip(1)), 1);
        assert_eq!(p.waiting_for(PortIndex(0), &ip(3)), 0);
    }

    #[test]
    fn resolution_order_and_no_allocation() {
        let mut p = Pending::new(cfg());
        p.push(PortIndex(0), ip(1), 1, ms(0)).unwrap();
        p.push(PortIndex(0), ip(2), 2, ms(1)).unwrap();
        p.push(PortIndex(0), ip(1), 3, ms(2)).unwrap();
        p.push(PortIndex(0), ip(1), 4, ms(3)).unwrap();
        let mut out = Vec::with_capacity(cfg().max_total);
        let cap = out.capacity();
        // Nothing known yet.
        assert_eq!(p.take_resolved(&snap_with(&[]), &mut out), 0);
        // ip(1) known on another port only: still waiting.
        assert_eq!(p.take_resolved(&snap_with(&[(1, 1, 1)]), &mut out), 0);
        assert_eq!(p.take_resolved(&snap_with(&[(0, 1, 11)]), &mut out), 3);
        let got: Vec<_> = out.iter().map(|r| (r.pkt, r.port, r.mac)).collect();
        assert_eq!(
            got,
            [
                (1, PortIndex(0), mac(11)),
                (3, PortIndex(0), mac(11)),
                (4, PortIndex(0), mac(11))
            ]
        );
        assert_eq!(out[0].next_hop, ip(1));
        assert_eq!((p.len(), p.waiting_for(PortIndex(0), &ip(2))), (1, 1));
        out.clear();
        assert_eq!(
            p.take_resolved(&snap_with(&[(0, 2, 22), (0, 1, 11)]), &mut out),
            1
        );
        assert_eq!((out[0].pkt, out[0].mac), (2, mac(22)));
        assert_eq!(out.capacity(), cap, "no reallocation");
        assert!(p.is_empty());
        assert_eq!(p.stats().resolved, 4);
        // Slots are reused: fill to the limit again, many rounds.
        for round in 0..50 {
            out.clear();
            for k in 0..6 {
                p.push(PortIndex(0), ip(1 + (k % 2) as u8), round * 10 + k, ms(0))
                    .unwrap();
            }
            assert_eq!(
                p.take_resolved(&snap_with(&[(0, 1, 1), (0, 2, 2)]), &mut out),
                6
            );
            assert_eq!(out.capacity(), cap);
        }
    }

    #[test]
    fn expiry() {
        let mut p = Pending::new(cfg());
        p.push(PortIndex(0), ip(1), 1, ms(0)).unwrap();
        p.push(PortIndex(0), ip(1), 2, ms(1500)).unwrap();
        p.push(PortIndex(0), ip(2), 3, ms(2000)).unwrap();
        let mut dropped = Vec::new();
        assert_eq!(p.expire(ms(2999), |x| dropped.push(x)), 0);
        assert_eq!(p.expire(ms(3000), |x| dropped.push(x)), 1);
        assert_eq!(p.expire(ms(4500), |x| dropped.push(x)), 1);
        assert_eq!(dropped, [1, 2]);
        assert_eq!(p.waiting_for(PortIndex(0), &ip(1)), 0);
        assert_eq!(p.expire(ms(5000), |x| dropped.push(x)), 1);
        assert!(p.is_empty());
        assert_eq!(p.stats().expired, 3);
        let mut all = Vec::new();
        p.push(PortIndex(0), ip(3), 7, ms(6000)).unwrap();
        p.clear(|x| all.push(x));
        assert_eq!((all, p.len()), (vec![7], 0));
    }

    #[test]
    fn request_rate_limit() {
        let mut p = Pending::new(cfg());
        assert_eq!(
            p.push(PortIndex(0), ip(1), 1, ms(0)),
            Ok(Queued { send_request: true })
        );
        assert_eq!(
            p.push(PortIndex(0), ip(1), 2, ms(10)),
            Ok(Queued {
                send_request: false
            })
        );
        assert_eq!(
            p.push(PortIndex(0), ip(2), 3, ms(10)),
            Ok(Queued { send_request: true })
        );
        let mut sent = Vec::new();
        assert_eq!(p.poll_requests(ms(999), |po, a| sent.push((po, a))), 0);
        assert_eq!(p.poll_requests(ms(1000), |po, a| sent.push((po, a))), 1);
        assert_eq!(p.poll_requests(ms(1010), |po, a| sent.push((po, a))), 1);
        assert_eq!(sent, [(PortIndex(0), ip(1)), (PortIndex(0), ip(2))]);
        assert_eq!(
            p.push(PortIndex(0), ip(1), 4, ms(1500)),
            Ok(Queued {
                send_request: false
            })
        );
        assert_eq!(
            p.push(PortIndex(0), ip(1), 5, ms(2000)).unwrap_err().1,
            DropReason::HoldAddrFull
        );
        // ip(1)'s packets expire at 3000, 3010, 4500; its last request was
        // at 1000, so the record is forgotten and a new packet asks again.
        let mut d = 0;
        p.expire(ms(4600), |_| d += 1);
        assert_eq!(d, 4);
        assert_eq!(
            p.push(PortIndex(0), ip(1), 6, ms(4600)),
            Ok(Queued { send_request: true })
        );
        p.expire(ms(7600), |_| d += 1);
        // Expired at 7600 with the last request at 4600: record forgotten.
        assert_eq!(
            p.push(PortIndex(0), ip(1), 7, ms(7650)),
            Ok(Queued { send_request: true })
        );
        assert_eq!(p.stats().requests, 6);
        // A record with no packets and an old request is forgotten.
        let mut p = Pending::new(cfg());
        p.push(PortIndex(0), ip(1), 1, ms(0)).unwrap();
        p.expire(ms(3000), |_| ());
        assert_eq!(p.waiting_for(PortIndex(0), &ip(1)), 0);
        assert_eq!(
            p.push(PortIndex(0), ip(1), 2, ms(3000)),
            Ok(Queued { send_request: true })
        );
    }

    #[test]
    fn empty_records_are_reclaimed() {
        let c = PendingConfig {
            request_interval: Duration::from_secs(10),
            ..cfg()
        };
        let mut p = Pending::new(c);
        for i in 1..=3 {
            p.push(PortIndex(0), ip(i), i, ms(i as u64)).unwrap();
        }
        // All expire; records stay (interval 10 s) but hold no packets.
        p.expire(ms(5000), |_| ());
        assert_eq!(
            p.push(PortIndex(0), ip(1), 9, ms(5000)),
            Ok(Queued {
                send_request: false
            })
        );
        // A fourth next hop reclaims the oldest empty record (ip 2).
        assert_eq!(
            p.push(PortIndex(0), ip(4), 9, ms(5000)),
            Ok(Queued { send_request: true })
        );
        assert_eq!(
            p.push(PortIndex(0), ip(2), 9, ms(5000)),
            Ok(Queued { send_request: true })
        );
        assert_eq!(
            p.push(PortIndex(0), ip(5), 9, ms(5000)).unwrap_err().1,
            DropReason::HoldTooManyAddrs
        );
    }

    #[test]
    fn limiter() {
        let mut l = RequestLimiter::new(64, Duration::from_secs(1));
        assert!(l.allow(PortIndex(0), ip(1), ms(0)));
        assert!(!l.allow(PortIndex(0), ip(1), ms(999)));
        assert!(l.allow(PortIndex(1), ip(1), ms(999)));
        assert!(l.allow(PortIndex(0), ip(2), ms(999)));
        assert!(l.allow(PortIndex(0), ip(1), ms(1000)));
        assert!(!l.allow(PortIndex(0), ip(1), ms(1500)));
        // A one-slot limiter: collisions only let more through.
        let mut one = RequestLimiter::new(0, Duration::from_secs(1));
        assert!(one.allow(PortIndex(0), ip(1), ms(0)));
        assert!(one.allow(PortIndex(0), ip(2), ms(1)));
        assert!(one.allow(PortIndex(0), ip(1), ms(2)));
        assert!(!one.allow(PortIndex(0), ip(1), ms(3)));
    }
}
