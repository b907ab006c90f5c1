//! The load-balancing pipeline as a worker runs it: the sans-IO
//! [`Balancer`] on mbufs, plus what only a worker can do — hand packets to
//! the lcore that owns their connection, hold packets whose next hop is
//! unresolved and send the ARP/ND requests, report learned neighbours, pick
//! up new configuration and neighbour snapshots between bursts, expire
//! connections, publish counters, and answer the control thread's queries.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Role;
use crate::dataplane::worker::{DropReason as WorkerDrop, Pipeline, Verdict};
use crate::dataplane::{Mbuf, Mempool, BURST_SIZE};
use crate::lb::engine::ConnInfo;
use crate::lb::rules::Snapshot;
use crate::lb::time::Instant;
use crate::net::{self, LearnTx, NeighSnapshot, Pending, Resolved, SnapshotRx};
use crate::pipeline::{Action, Balancer, DropCounts, DROP_KINDS};
use crate::rss::OwnerMap;
use crate::wire::parse::{parse_frame_into, Headers, L3};

/// Requests from the control thread, answered between bursts.
pub enum WorkerCmd {
    /// Every connection of this worker (and, for worker 0, the shared
    /// persistence templates).
    ListConns(Sender<Vec<ConnInfo>>),
}

/// The TSC as the lb core's millisecond clock; one epoch for every lcore,
/// so that the shared persistence templates compare times correctly.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub tsc0: u64,
    pub ticks_per_ms: u64,
}

impl Clock {
    #[inline]
    pub fn now(&self, tsc: u64) -> Instant {
        Instant(tsc.saturating_sub(self.tsc0) / self.ticks_per_ms.max(1))
    }
}

/// Counters a worker publishes for the control thread (single writer).
pub struct SharedCounters {
    pub drops: [AtomicU64; DROP_KINDS],
    pub pending_queued: AtomicU64,
    pub pending_dropped: AtomicU64,
    pub learn_dropped: AtomicU64,
    pub connections: AtomicU64,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            pending_queued: AtomicU64::new(0),
            pending_dropped: AtomicU64::new(0),
            learn_dropped: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        }
    }
}

/// Housekeeping every millisecond; counters every 100 ms.
const HOUSEKEEPING_MS: u64 = 1;
const PUBLISH_MS: u64 = 100;
/// Connections expired per housekeeping pass (every millisecond) at most:
/// above the new-connection rate a worker sustains (millions per second).
const EXPIRE_BUDGET: usize = 8192;

pub struct LbPipeline {
    me: u16,
    bal: Balancer,
    /// Set when there is more than one worker.
    owner: Option<OwnerMap>,
    roles: Vec<Role>,
    snaps: SnapshotRx<Snapshot>,
    neighs: SnapshotRx<NeighSnapshot>,
    learn: LearnTx,
    pending: Pending<Mbuf>,
    /// Hold destinations of the burst being processed, by index.
    holds: [(u16, IpAddr); BURST_SIZE],
    /// Next hops to send a request for (from `keep`), sent at `tick`.
    requests: Vec<(u16, IpAddr)>,
    resolved: Vec<Resolved<Mbuf>>,
    pool: Arc<Mempool>,
    mailbox: Receiver<WorkerCmd>,
    clock: Clock,
    now: Instant,
    next_housekeeping: u64,
    next_publish: u64,
    drops: DropCounts,
    shared: Arc<SharedCounters>,
    /// Worker 0 announces VIPs (gratuitous ARP / unsolicited NA).
    announced: ahash::AHashSet<IpAddr>,
    /// A snapshot was picked up in `process`; announce at the next tick.
    announce_due: bool,
}

pub struct LbPipelineParts {
    pub me: u16,
    pub balancer: Balancer,
    pub owner: Option<OwnerMap>,
    pub roles: Vec<Role>,
    pub snaps: SnapshotRx<Snapshot>,
    pub neighs: SnapshotRx<NeighSnapshot>,
    pub learn: LearnTx,
    pub pool: Arc<Mempool>,
    pub mailbox: Receiver<WorkerCmd>,
    pub clock: Clock,
    pub shared: Arc<SharedCounters>,
}

impl LbPipeline {
    pub fn new(p: LbPipelineParts) -> Self {
        LbPipeline {
            me: p.me,
            bal: p.balancer,
            owner: p.owner,
            roles: p.roles,
            snaps: p.snaps,
            neighs: p.neighs,
            learn: p.learn,
            pending: Pending::new(net::PendingConfig::default()),
            holds: [(0, IpAddr::from([0u8; 4])); BURST_SIZE],
            requests: Vec::with_capacity(64),
            resolved: Vec::with_capacity(256),
            pool: p.pool,
            mailbox: p.mailbox,
            clock: p.clock,
            now: Instant::ZERO,
            next_housekeeping: 0,
            next_publish: 0,
            drops: DropCounts::default(),
            shared: p.shared,
            announced: ahash::AHashSet::default(),
            announce_due: false,
        }
    }

    /// Install a configuration published since the last look. Called
    /// before each burst is decided (and at each tick): rvsadm's change is
    /// acknowledged once published, so a packet received after the
    /// acknowledgement must see it, even when the worker was descheduled
    /// in between and finds both the burst and the snapshot waiting.
    fn pick_up_snapshot(&mut self) {
        if let Some(s) = self.snaps.latest() {
            self.bal.set_snapshot(s);
            self.announce_due = true;
        }
    }

    /// The worker owning the packet's connection, when it is not this one.
    #[inline]
    fn foreign_owner(&self, port: u16, h: &Headers) -> Option<u16> {
        let owner = self.owner.as_ref()?;
        let (addr, p) = if h.is_icmp_error() {
            let i = h.inner?;
            if !i.has_ports {
                return None;
            }
            // The quoted packet is one we sent: the client is its
            // destination when it was a reply from a VIP, else its source.
            if self.bal.is_vip(&i.src) {
                (i.dst, i.dst_port)
            } else {
                (i.src, i.src_port)
            }
        } else {
            if !(h.l3 == L3::Ipv4 || h.l3 == L3::Ipv6) || h.l4_offset == 0 {
                return None;
            }
            let client_side = match self.roles.get(port as usize) {
                Some(Role::Client) => true,
                Some(Role::Server) => false,
                _ => self.bal.is_vip(&h.dst),
            };
            if client_side {
                (h.src, h.src_port)
            } else {
                (h.dst, h.dst_port)
            }
        };
        let o = owner.owner(addr, p);
        (o != self.me).then_some(o)
    }

    fn frame_for(&self, build: impl FnOnce(&mut [u8]) -> Option<usize>) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(&self.pool)?;
        let room = m.append(96)?;
        let n = build(room)?;
        m.trim(96 - n);
        Some(m)
    }

    /// An ARP request or neighbour solicitation for `ip` on `port`.
    fn request(&self, port: u16, ip: IpAddr) -> Option<Mbuf> {
        let iface = self.bal.net().port(port)?;
        self.frame_for(|buf| match ip {
            IpAddr::V4(a) => net::arp::build_request(buf, iface, a, None).ok(),
            IpAddr::V6(a) => net::nd::build_solicit(buf, iface, a, None).ok(),
        })
    }

    /// Gratuitous ARP / unsolicited NA for VIPs not announced yet.
    fn announce(&mut self, out: &mut Vec<(u16, Mbuf)>) {
        let mut todo = Vec::new();
        for iface in self.bal.net().iter() {
            for vip in iface.vips() {
                if !self.announced.contains(vip) {
                    todo.push((iface.port(), iface.mac(), *vip));
                }
            }
        }
        let current: ahash::AHashSet<IpAddr> = self
            .bal
            .net()
            .iter()
            .flat_map(|i| i.vips().copied().collect::<Vec<_>>())
            .collect();
        for (port, mac, vip) in todo {
            let m = self.frame_for(|buf| match vip {
                IpAddr::V4(a) => net::arp::build_gratuitous(buf, mac, a).ok(),
                IpAddr::V6(a) => net::nd::build_unsolicited_na(buf, mac, a).ok(),
            });
            if let Some(m) = m {
                out.push((port, m));
            }
        }
        self.announced = current;
    }

    fn housekeeping(&mut self, tsc: u64, out: &mut Vec<(u16, Mbuf)>) {
        let now = self.now;
        self.bal.engine_mut().expire(now, EXPIRE_BUDGET);
        self.pending.expire(now, drop);
        let mut reqs = std::mem::take(&mut self.requests);
        self.pending
            .poll_requests(now, |port, ip| reqs.push((port, ip)));
        for (port, ip) in reqs.drain(..) {
            if let Some(m) = self.request(port, ip) {
                out.push((port, m));
            }
        }
        self.requests = reqs;
        while let Ok(cmd) = self.mailbox.try_recv() {
            match cmd {
                WorkerCmd::ListConns(reply) => {
                    let mut list = self.bal.engine().list_conns(now);
                    if self.me == 0 {
                        list.extend(self.bal.engine().list_templates(now));
                    }
                    let _ = reply.send(list);
                }
            }
        }
        if tsc >= self.next_publish {
            self.next_publish = tsc + PUBLISH_MS * self.clock.ticks_per_ms;
            self.bal.engine_mut().publish_stats();
            for (a, v) in self.shared.drops.iter().zip(self.drops.0.iter()) {
                a.store(*v, Ordering::Relaxed);
            }
            let ps = self.pending.stats();
            self.shared
                .pending_queued
                .store(ps.queued, Ordering::Relaxed);
            self.shared.pending_dropped.store(
                ps.expired + ps.dropped_full + ps.dropped_addr_full + ps.dropped_addrs,
                Ordering::Relaxed,
            );
            self.shared
                .learn_dropped
                .store(self.learn.dropped, Ordering::Relaxed);
            self.shared
                .connections
                .store(self.bal.engine().conn_count() as u64, Ordering::Relaxed);
        }
    }
}

impl LbPipeline {
    pub fn engine(&self) -> &crate::lb::engine::Engine {
        self.bal.engine()
    }
}

impl Pipeline for LbPipeline {
    fn process(&mut self, port: u16, pkts: &mut [Mbuf], verdicts: &mut [Verdict; BURST_SIZE]) {
        let n = pkts.len().min(BURST_SIZE);
        // After rx: whatever rvsadm was told is done applies to this burst.
        self.pick_up_snapshot();
        let now = self.now;
        // Start every frame's first cache line on its way before parsing any.
        for m in pkts.iter() {
            m.prefetch();
        }
        let mut heads: [Option<Headers>; BURST_SIZE] = [None; BURST_SIZE];
        let mut todo = [false; BURST_SIZE];
        for i in 0..n {
            // Parsed in place: no copies of the headers struct per packet.
            let h = heads[i].insert(Headers::EMPTY);
            match parse_frame_into(pkts[i].data(), h) {
                Ok(()) => match self.foreign_owner(port, h) {
                    Some(o) => {
                        verdicts[i] = Verdict::Handoff(o);
                        heads[i] = None;
                    }
                    None => todo[i] = true,
                },
                Err(_) => {
                    heads[i] = None;
                    self.drops.bump(crate::pipeline::Drop::Malformed);
                    verdicts[i] = Verdict::Drop(WorkerDrop::Malformed);
                }
            }
        }
        let mut actions = [Action::Drop(crate::pipeline::Drop::NoRoute); BURST_SIZE];
        self.bal.process_burst(
            port,
            &mut pkts[..n],
            &heads[..n],
            &todo[..n],
            now,
            &mut actions[..n],
        );
        for i in 0..n {
            if !todo[i] {
                continue;
            }
            verdicts[i] = match actions[i] {
                Action::Tx(p) => Verdict::Tx(p),
                Action::Reply => Verdict::Tx(port),
                Action::Hold { port: p, next_hop } => {
                    self.holds[i] = (p, next_hop);
                    Verdict::Keep
                }
                Action::Drop(d) => {
                    self.drops.bump(d);
                    Verdict::Drop(WorkerDrop::Pipeline)
                }
            };
        }
    }

    fn keep(&mut self, index: usize, m: Mbuf) {
        let (port, nh) = self.holds[index];
        match self.pending.push(port, nh, m, self.now) {
            Ok(q) => {
                if q.send_request && self.requests.len() < self.requests.capacity() {
                    self.requests.push((port, nh));
                }
            }
            Err((m, _)) => drop(m),
        }
    }

    fn tick(&mut self, tsc: u64, out: &mut Vec<(u16, Mbuf)>) {
        self.now = self.clock.now(tsc);
        self.pick_up_snapshot();
        if std::mem::take(&mut self.announce_due) && self.me == 0 {
            self.announce(out);
        }
        if let Some(n) = self.neighs.latest() {
            self.bal.set_neighbours(n.clone());
            self.pending.take_resolved(&n, &mut self.resolved);
            for mut r in self.resolved.drain(..) {
                if let Some(mac) = n.lookup(r.port, &r.next_hop) {
                    if let Some(d) = r.pkt.data_mut().get_mut(..6) {
                        d.copy_from_slice(&mac.0);
                    }
                    out.push((r.port, r.pkt));
                }
            }
        }
        if self.bal.has_learned() {
            // Rare (ARP/ND traffic): only then pay for the snapshot clone.
            let neigh = self.bal.neighbours().clone();
            let now = self.now;
            for l in self.bal.take_learned() {
                if l.worth_reporting(&neigh, now) {
                    self.learn.send(l);
                }
            }
        }
        if !self.requests.is_empty() {
            let mut reqs = std::mem::take(&mut self.requests);
            for (port, ip) in reqs.drain(..) {
                if let Some(m) = self.request(port, ip) {
                    out.push((port, m));
                }
            }
            self.requests = reqs;
        }
        if tsc >= self.next_housekeeping {
            self.next_housekeeping = tsc + HOUSEKEEPING_MS * self.clock.ticks_per_ms;
            self.housekeeping(tsc, out);
        }
    }
}
