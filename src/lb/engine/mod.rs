//! The per-lcore decision engine: one per worker, owning its connection
//! table, its scheduler instances and its real-server slab; sharing the
//! configuration snapshot, the real servers' counters and the persistence
//! templates with the other lcores.
//!
//! Per packet: one table lookup; on a hit the state machine, the expiry and
//! the real server's packet counters are updated (no allocation, no lock, no
//! `Arc` clone, no atomic read-modify-write: the counters are plain integers
//! in this engine, published to the shared [`Stats`](super::stats::Stats) by
//! [`Engine::publish_stats`], which [`Engine::expire`] calls; the shared
//! per-real-server connection counts change only on state transitions). A
//! miss on an inbound TCP SYN (or any UDP packet) finds the service, consults
//! the persistence template table when the service is persistent, schedules,
//! and inserts the connection.
//!
//! [`Engine::process_burst`] hashes a burst's keys, then fetches each
//! packet's index line and candidate entry ahead of deciding it, so that
//! the cache (and TLB) misses of the burst overlap: as a software pipeline
//! with the data plane's prefetch instruction, in stages of loads and
//! stores without one (`lb` has no `unsafe`; see the comments there).
//!
//! The engine's parts, one file each: `types` (what goes in and out),
//! `slab` (the real-server slots), `burst` (hashing and fetching a burst
//! ahead of its decisions), `decide` (the fast path and the cases around
//! it), `schedule` (a new connection: service, persistence, scheduler),
//! `expire` (connections leaving), `list` (`-Lnc` rows).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::conntable::ConnTable;
use super::dest::DestShared;
use super::persist::{Template, TemplateTable};
use super::rules::{Settings, Snapshot};
use super::sched;
use super::tcp_state::{TcpState, NUM_TCP_STATES};
use super::time::Timestamp;

mod burst;
mod decide;
mod expire;
mod list;
mod schedule;
mod slab;
mod types;

pub use burst::{Prefetch, Prepared};
pub use expire::DEFAULT_EXPIRE_BUDGET;
pub use list::ConnInfo;
pub use schedule::SchedFactory;
pub use types::{ConnState, Direction, DropReason, EngineCounters, Forward, PacketMeta, Verdict};

use decide::{transitions, Transitions, UDP_TMO};
use schedule::LocalService;
use slab::Slab;

pub struct Engine {
    lcore: usize,
    snap: Arc<Snapshot>,
    settings: Settings,
    /// Timeouts in ms per TCP state, then UDP (from `settings`).
    tmo: [u64; NUM_TCP_STATES + 1],
    /// [`next_state`](super::tcp_state::next_state) as a table:
    /// [direction][flag bits][current state].
    trans: Transitions,
    svcs: Vec<LocalService>,
    slab: Slab,
    table: ConnTable,
    /// Template of each connection entry (same index), if persistent.
    tpl: Vec<Option<Arc<Template>>>,
    /// New TCP connections, oldest first: where a full table finds one
    /// still in SYN_RECV to give up (see `Settings::evict_embryonic`).
    embryonic: VecDeque<u32>,
    templates: Arc<TemplateTable>,
    counters: Arc<EngineCounters>,
    factory: SchedFactory,
    prefetch: Option<Prefetch>,
}

impl Engine {
    /// An engine for worker `lcore` (index into the per-lcore stats blocks),
    /// with room for `capacity` connections, schedulers from [`sched::new`].
    pub fn new(
        lcore: usize,
        capacity: usize,
        snap: Arc<Snapshot>,
        templates: Arc<TemplateTable>,
        now: Timestamp,
    ) -> Self {
        Self::with_factory(lcore, capacity, snap, templates, now, sched::new)
    }

    /// As [`Engine::new`] with another scheduler factory.
    pub fn with_factory(
        lcore: usize,
        capacity: usize,
        snap: Arc<Snapshot>,
        templates: Arc<TemplateTable>,
        now: Timestamp,
        factory: SchedFactory,
    ) -> Self {
        Self::with_table(
            lcore,
            ConnTable::new(capacity, now),
            snap,
            templates,
            factory,
        )
    }

    /// As [`Engine::with_factory`] with a connection table built by the
    /// caller, e.g. in hugepage memory with [`ConnTable::with_memory`]. The
    /// table must be empty; its clock is the engine's.
    pub fn with_table(
        lcore: usize,
        table: ConnTable,
        snap: Arc<Snapshot>,
        templates: Arc<TemplateTable>,
        factory: SchedFactory,
    ) -> Self {
        assert!(
            table.is_empty(),
            "Engine::with_table: the table must be empty"
        );
        let cap = table.capacity();
        let mut e = Engine {
            lcore,
            snap: Snapshot::empty(),
            settings: Settings::default(),
            tmo: [0; NUM_TCP_STATES + 1],
            trans: transitions(),
            svcs: Vec::new(),
            slab: Slab::default(),
            table,
            tpl: vec![None; cap],
            embryonic: VecDeque::with_capacity(cap),
            templates,
            counters: Arc::new(EngineCounters::default()),
            factory,
            prefetch: None,
        };
        e.set_snapshot(snap);
        e
    }

    /// Install a new configuration (between bursts). Schedulers of services
    /// whose scheduler and flags did not change keep their state and are
    /// told about the new list; existing connections are kept.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        for h in self.slab.hot.iter_mut() {
            h.live = false;
        }
        let mut old: HashMap<u64, LocalService> = self.svcs.drain(..).map(|s| (s.id, s)).collect();
        let mut svcs = Vec::with_capacity(snap.services.len());
        for s in &snap.services {
            let flags = s.sched_flags();
            let mut ls = match old.remove(&s.shared.id) {
                Some(ls) if ls.sched_name == s.cfg.scheduler && ls.flags == flags => ls,
                _ => LocalService {
                    id: s.shared.id,
                    sched_name: s.cfg.scheduler.clone(),
                    flags,
                    sched: (self.factory)(&s.cfg.scheduler, flags),
                    slots: Vec::new(),
                },
            };
            ls.slots = s
                .dests
                .iter()
                .map(|d| self.slab.slot(d, &s.shared))
                .collect();
            if let Some(sc) = ls.sched.as_mut() {
                sc.update(s);
            }
            svcs.push(ls);
        }
        let dead: Vec<u32> = (0..self.slab.hot.len())
            .filter(|&i| {
                !self.slab.hot[i].live && matches!(&self.slab.cold[i], Some(c) if c.refs == 0)
            })
            .map(|i| i as u32)
            .collect();
        for s in dead {
            self.slab.free_slot(s, self.lcore);
        }
        self.svcs = svcs;
        self.settings = snap.settings;
        let t = &self.settings.timeouts;
        for (k, st) in TcpState::ALL.iter().enumerate() {
            self.tmo[k] = t.tcp_ms(*st);
        }
        self.tmo[UDP_TMO] = t.udp_ms();
        self.snap = snap;
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    pub fn counters(&self) -> &Arc<EngineCounters> {
        &self.counters
    }

    pub fn templates(&self) -> &Arc<TemplateTable> {
        &self.templates
    }

    /// Live connections on this lcore.
    pub fn conn_count(&self) -> usize {
        self.table.len()
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes held by the connection table (entries, index, wheel) and the
    /// per-entry template slots.
    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes() + self.tpl.len() * std::mem::size_of::<Option<Arc<Template>>>()
    }

    /// The real server in slot `slot` (from [`Forward::dest`]).
    pub fn dest(&self, slot: u32) -> Option<&Arc<DestShared>> {
        self.slab
            .cold
            .get(slot as usize)
            .and_then(|d| d.as_ref())
            .map(|d| &d.shared)
    }

    /// Add the packet counters this engine keeps per real server to the
    /// shared [`Stats`](super::stats::Stats) (real server and service) and
    /// restart them. [`Engine::expire`] does it; call it (or `expire`)
    /// regularly, e.g. once per poll loop: readers see packets only after.
    pub fn publish_stats(&mut self) {
        for s in 0..self.slab.hot.len() {
            self.slab.publish(s, self.lcore);
        }
    }
}

#[cfg(test)]
mod tests;
