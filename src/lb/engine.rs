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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::conntable::{self, flag, hash_key, ConnTable, DestEndpoints, NewConn, Tuple, NO_HINT};
use super::dest::{DestShared, FwdMethod};
use super::persist::{Lookup, Template, TemplateInfo, TemplateKey, TemplateTable};
use super::rules::{ServiceShared, Settings, SnapDest, Snapshot};
use super::sched::{self, FlowKey, SchedFlags, Scheduler};
use super::service::Protocol;
use super::tcp_state::{
    next_state, StateDir, TcpFlags, TcpState, INITIAL_TIMEOUT_SECS, NUM_TCP_STATES,
};
use super::time::Instant;

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to a virtual service.
    In,
    /// Real server to client (a NAT reply).
    Out,
}

/// What the engine needs from a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub proto: Protocol,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// TCP flags (ignored for UDP).
    pub tcp_flags: TcpFlags,
    pub dir: Direction,
    /// IP packet length in bytes (for byte counters).
    pub len: u32,
}

/// Why a packet was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Inbound, no connection and no virtual service for the destination.
    NoService = 0,
    /// Outbound (reply) without a connection.
    NoConnection = 1,
    /// TCP segment without a connection that is not a SYN.
    NotSyn = 2,
    /// The scheduler found no available real server.
    NoDest = 3,
    /// The connection table is full.
    TableFull = 4,
    /// The connection's real server was deleted (expire_nodest_conn off).
    DestRemoved = 5,
    /// The service's scheduler could not be instantiated.
    NoScheduler = 6,
}

pub const N_DROP_REASONS: usize = 7;

impl DropReason {
    pub const ALL: [DropReason; N_DROP_REASONS] = [
        DropReason::NoService,
        DropReason::NoConnection,
        DropReason::NotSyn,
        DropReason::NoDest,
        DropReason::TableFull,
        DropReason::DestRemoved,
        DropReason::NoScheduler,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoService => "no_service",
            DropReason::NoConnection => "no_connection",
            DropReason::NotSyn => "not_syn",
            DropReason::NoDest => "no_dest",
            DropReason::TableFull => "table_full",
            DropReason::DestRemoved => "dest_removed",
            DropReason::NoScheduler => "no_scheduler",
        }
    }
}

/// A connection's protocol state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    Tcp(TcpState),
    Udp,
}

impl ConnState {
    /// As `-Lnc` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
        }
    }
}

/// Where and how to forward a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The connection (None for one-packet scheduling).
    pub conn: Option<u32>,
    /// The connection was created by this packet.
    pub new: bool,
    /// The real server's slot in this engine ([`Engine::dest`]).
    pub dest: u32,
    pub fwd: FwdMethod,
    /// Real server address and port (inbound NAT rewrites to these).
    pub daddr: IpAddr,
    pub dport: u16,
    /// Virtual address and port (outbound NAT rewrites the source to these).
    pub vaddr: IpAddr,
    pub vport: u16,
    pub state: ConnState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward(Forward),
    Drop(DropReason),
}

/// Per-lcore engine counters, readable from other threads.
#[derive(Debug, Default)]
pub struct EngineCounters {
    drops: [AtomicU64; N_DROP_REASONS],
    created: AtomicU64,
    expired: AtomicU64,
    rescheduled: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

impl EngineCounters {
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Relaxed)
    }
    /// Connections created.
    pub fn created(&self) -> u64 {
        self.created.load(Relaxed)
    }
    /// Connections gone (timed out or expired early).
    pub fn expired(&self) -> u64 {
        self.expired.load(Relaxed)
    }
    /// Connections expired early so that a new one could be scheduled
    /// (conn_reuse_mode, expire_nodest_conn).
    pub fn rescheduled(&self) -> u64 {
        self.rescheduled.load(Relaxed)
    }
}

/// A connection or template as `ipvsadm -Lnc` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub proto: Protocol,
    pub state: &'static str,
    pub expires_in_ms: u64,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub dest: SocketAddr,
    pub template: bool,
}

impl ConnInfo {
    /// The `expire` column: `mm:ss`.
    pub fn expire_mmss(&self) -> String {
        let s = self.expires_in_ms / 1000;
        format!("{:02}:{:02}", s / 60, s % 60)
    }

    /// A template as a listing row (client port 0).
    pub fn from_template(t: &TemplateInfo) -> Self {
        ConnInfo {
            proto: t.key.proto,
            state: match t.key.proto {
                Protocol::Tcp => TcpState::None.name(),
                Protocol::Udp => ConnState::Udp.name(),
            },
            expires_in_ms: t.expires_in_ms,
            client: SocketAddr::new(t.key.caddr, 0),
            vip: SocketAddr::new(t.key.vaddr, t.key.vport),
            dest: SocketAddr::new(t.dest_addr, t.dest_port),
            template: true,
        }
    }
}

/// Creates scheduler instances by name ([`sched::new`] by default).
pub type SchedFactory = fn(&str, SchedFlags) -> Option<Box<dyn Scheduler>>;

/// A prefetch instruction the data plane provides (`lb` has no `unsafe`):
/// asks for the cache line at an address without waiting for it; any
/// address is allowed.
pub type Prefetch = fn(*const u8);

/// What this lcore reads per packet about a real server slot, and the
/// slot's packet counters since the last [`Engine::publish_stats`] (plain
/// integers: only this lcore touches them).
#[derive(Clone, Copy, Debug)]
struct HotDest {
    /// Address in the connection table's form (for outbound matching).
    addr: u128,
    daddr: IpAddr,
    /// 0: the connection's virtual port.
    port: u16,
    fwd: FwdMethod,
    /// The slot holds a real server.
    used: bool,
    /// Present in the current snapshot.
    live: bool,
    /// Packets and bytes, [inbound, outbound].
    pkts: [u64; 2],
    bytes: [u64; 2],
}

const FREE_SLOT: HotDest = HotDest {
    addr: 0,
    daddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    port: 0,
    fwd: FwdMethod::Route,
    used: false,
    live: false,
    pkts: [0; 2],
    bytes: [0; 2],
};

/// The rest of a real server slot.
struct ColdDest {
    shared: Arc<DestShared>,
    svc: Arc<ServiceShared>,
    /// Connections of this lcore pointing here.
    refs: u32,
}

/// Slots for real servers, referenced by index from connection entries.
#[derive(Default)]
struct Slab {
    hot: Vec<HotDest>,
    cold: Vec<Option<ColdDest>>,
    free: Vec<u32>,
    by_id: HashMap<u64, u32, ahash::RandomState>,
}

impl DestEndpoints for Slab {
    #[inline(always)]
    fn endpoint(&self, dest: u32) -> (u128, u16) {
        match self.hot.get(dest as usize) {
            Some(d) if d.used => (d.addr, d.port),
            _ => (0, 0),
        }
    }
}

impl Slab {
    fn slot(&mut self, d: &SnapDest, svc: &Arc<ServiceShared>) -> u32 {
        if let Some(&s) = self.by_id.get(&d.shared.id) {
            let h = &mut self.hot[s as usize];
            if h.used {
                h.fwd = d.cfg.fwd;
                h.live = true;
                return s;
            }
        }
        let hot = HotDest {
            addr: conntable::addr16(d.cfg.addr).0,
            daddr: d.cfg.addr,
            port: d.cfg.port,
            fwd: d.cfg.fwd,
            used: true,
            live: true,
            pkts: [0; 2],
            bytes: [0; 2],
        };
        let cold = ColdDest {
            shared: d.shared.clone(),
            svc: svc.clone(),
            refs: 0,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.hot[s as usize] = hot;
                self.cold[s as usize] = Some(cold);
                s
            }
            None => {
                self.hot.push(hot);
                self.cold.push(Some(cold));
                (self.hot.len() - 1) as u32
            }
        };
        self.by_id.insert(d.shared.id, s);
        s
    }

    /// Add slot `s`'s packet counters to the shared stats (real server and
    /// service) of `lcore`, and restart them.
    fn publish(&mut self, s: usize, lcore: usize) {
        let (Some(h), Some(Some(c))) = (self.hot.get_mut(s), self.cold.get(s)) else {
            return;
        };
        if h.pkts != [0; 2] {
            for st in [&c.shared.stats, &c.svc.stats] {
                st.lcore(lcore)
                    .add_packets(h.pkts[0], h.bytes[0], h.pkts[1], h.bytes[1]);
            }
            h.pkts = [0; 2];
            h.bytes = [0; 2];
        }
    }

    fn free_slot(&mut self, s: u32, lcore: usize) {
        self.publish(s as usize, lcore);
        if let Some(c) = self.cold[s as usize].take() {
            self.hot[s as usize] = FREE_SLOT;
            self.by_id.remove(&c.shared.id);
            self.free.push(s);
        }
    }

    /// A connection on slot `s` is gone.
    fn unref(&mut self, s: u32, lcore: usize) {
        let live = self.hot.get(s as usize).is_some_and(|h| h.live);
        let gone = match self.cold.get_mut(s as usize) {
            Some(Some(c)) => {
                c.refs -= 1;
                c.refs == 0 && !live
            }
            _ => false,
        };
        if gone {
            self.free_slot(s, lcore);
        }
    }
}

struct LocalService {
    id: u64,
    sched_name: String,
    flags: SchedFlags,
    sched: Option<Box<dyn Scheduler>>,
    /// Slab slot of each of the snapshot service's real servers.
    slots: Vec<u32>,
}

/// A packet's key, hashed ahead of the lookup (hash a burst, prefetch, then
/// process).
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    pub tuple: Tuple,
    pub hash: u64,
}

impl Prepared {
    pub const EMPTY: Prepared = Prepared {
        tuple: Tuple::EMPTY,
        hash: 0,
    };
}

/// Packets [`Engine::process_burst`] prepares and fetches for at a time.
const LOOKAHEAD: usize = 32;

/// Index of the UDP timeout in [`Engine`]'s timeout table (after the TCP
/// states).
const UDP_TMO: usize = NUM_TCP_STATES;

type Transitions = [[[TcpState; NUM_TCP_STATES]; 16]; 3];

/// The flag bits the state machine looks at (FIN, SYN, RST, ACK) as 0..16.
#[inline(always)]
fn flag_bits(f: TcpFlags) -> usize {
    (f.0 & 0x07 | (f.0 & TcpFlags::ACK) >> 1) as usize
}

/// [`next_state`] for every direction, flag combination and state.
fn transitions() -> Transitions {
    let mut t = [[[TcpState::None; NUM_TCP_STATES]; 16]; 3];
    for (d, dir) in [StateDir::Input, StateDir::Output, StateDir::InputOnly]
        .into_iter()
        .enumerate()
    {
        for bits in 0..16u8 {
            let f = TcpFlags(bits & 0x07 | (bits & 0x08) << 1);
            debug_assert_eq!(flag_bits(f), bits as usize);
            for cur in TcpState::ALL {
                t[d][bits as usize][cur as usize] = next_state(dir, f, cur);
            }
        }
    }
    t
}

/// Default expiry budget per [`Engine::expire`] call.
pub const DEFAULT_EXPIRE_BUDGET: usize = 256;

pub struct Engine {
    lcore: usize,
    snap: Arc<Snapshot>,
    settings: Settings,
    /// Timeouts in ms per TCP state, then UDP (from `settings`).
    tmo: [u64; NUM_TCP_STATES + 1],
    /// [`next_state`] as a table: [direction][flag bits][current state].
    trans: Transitions,
    svcs: Vec<LocalService>,
    slab: Slab,
    table: ConnTable,
    /// Template of each connection entry (same index), if persistent.
    tpl: Vec<Option<Arc<Template>>>,
    templates: Arc<TemplateTable>,
    counters: Arc<EngineCounters>,
    factory: SchedFactory,
    prefetch: Option<Prefetch>,
}

#[inline]
fn after(now: Instant, ms: u64) -> Instant {
    Instant(now.0.saturating_add(ms))
}

impl Engine {
    /// An engine for worker `lcore` (index into the per-lcore stats blocks),
    /// with room for `capacity` connections, schedulers from [`sched::new`].
    pub fn new(
        lcore: usize,
        capacity: usize,
        snap: Arc<Snapshot>,
        templates: Arc<TemplateTable>,
        now: Instant,
    ) -> Self {
        Self::with_factory(lcore, capacity, snap, templates, now, sched::new)
    }

    /// As [`Engine::new`] with another scheduler factory.
    pub fn with_factory(
        lcore: usize,
        capacity: usize,
        snap: Arc<Snapshot>,
        templates: Arc<TemplateTable>,
        now: Instant,
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

    /// Compute a packet's key and hash (no table access).
    #[inline]
    pub fn prepare(pkt: &Packet) -> Prepared {
        let tuple = Tuple::new(pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport);
        let hash = hash_key(&tuple, pkt.dir == Direction::Out);
        Prepared { tuple, hash }
    }

    /// Use a real prefetch instruction for the burst lookups (else they
    /// are started with plain loads and stores).
    pub fn set_prefetch(&mut self, f: Prefetch) {
        self.prefetch = Some(f);
    }

    /// Address of the index cache line a prepared packet will read first,
    /// for a prefetch by the caller.
    #[inline]
    pub fn prefetch_addr(&self, p: &Prepared) -> *const u8 {
        self.table.bucket_addr(p.hash)
    }

    /// Decide a burst of packets (`out[k]` for `pkts[k]`; extra packets or
    /// verdict slots are ignored). Keys are hashed first, then each packet's
    /// index line and candidate entry are fetched ahead of its decision, so
    /// that the cache misses of the burst overlap instead of being paid one
    /// after another; each packet is decided with its candidate entry as a
    /// hint, in order.
    pub fn process_burst(&mut self, pkts: &[Packet], now: Instant, out: &mut [Verdict]) {
        for (pk, ov) in pkts.chunks(LOOKAHEAD).zip(out.chunks_mut(LOOKAHEAD)) {
            let n = pk.len().min(ov.len());
            let (pk, ov) = (&pk[..n], &mut ov[..n]);
            let mut prep = [Prepared::EMPTY; LOOKAHEAD];
            for (p, k) in prep.iter_mut().zip(pk) {
                *p = Self::prepare(k);
            }
            match self.prefetch {
                Some(f) => self.burst_pipelined(pk, &prep[..n], now, ov, f),
                None => self.burst_staged(pk, &prep[..n], now, ov),
            }
        }
    }

    /// With a prefetch instruction: a software pipeline over the burst.
    /// Step i requests packet i's bucket, reads packet i-D's bucket (asked
    /// for D steps ago) and requests its entry, and decides packet i-2D.
    /// So each miss is hidden behind the work on the D packets in between,
    /// and about 2D lines are in flight, within what a core can track.
    /// (Requesting a whole burst's lines at once and then reading the first
    /// stalled for a full miss per stage, with the prefetches themselves
    /// waiting for free miss buffers: about half of a worker's time with
    /// 1M connections, in perf.)
    #[inline(always)]
    fn burst_pipelined(
        &mut self,
        pk: &[Packet],
        prep: &[Prepared],
        now: Instant,
        ov: &mut [Verdict],
        f: Prefetch,
    ) {
        // 12 rather than 6: in lb_core (4 KiB pages, long misses) 6 left
        // est/nat/in/1m at 51 ns a packet, 12 at 42, 14-16 no better; in
        // rvsd on hugepages the gain was within the noise (+3 %).
        const D: usize = 12;
        let n = prep.len().min(LOOKAHEAD);
        let mut hint = [NO_HINT; LOOKAHEAD];
        // A key past its full home bucket: the next bucket, requested at
        // the hint step and read when the packet is decided.
        let mut next = [usize::MAX; LOOKAHEAD];
        for i in 0..n + 2 * D {
            if let Some(p) = prep.get(i) {
                f(self.table.bucket_addr(p.hash));
            }
            if let Some(j) = i.checked_sub(D).filter(|&j| j < n) {
                let h = self.table.hint(prep[j].hash);
                if h != NO_HINT {
                    f(self.table.entry_addr(h));
                } else if let Some(b) = self.table.overflow_next(prep[j].hash) {
                    next[j] = b;
                    f(self.table.bucket_addr_at(b));
                }
                hint[j] = h;
            }
            if let Some(k) = i.checked_sub(2 * D).filter(|&k| k < n) {
                let h = match next[k] {
                    usize::MAX => hint[k],
                    b => self.table.hint_at(b, prep[k].hash),
                };
                self.decide_into(&pk[k], &prep[k], h, now, &mut ov[k]);
            }
        }
    }

    /// Without one (`lb` has no `unsafe`, so no prefetch instruction): the
    /// burst in stages, every packet's bucket line, then every candidate
    /// entry, requested before any packet is decided.
    #[inline(always)]
    fn burst_staged(&mut self, pk: &[Packet], prep: &[Prepared], now: Instant, ov: &mut [Verdict]) {
        const B: usize = LOOKAHEAD;
        let n = prep.len().min(B);
        // Bucket lines are requested by stores (which do not hold up the
        // loop), then each packet's candidate entry is found from its
        // bucket, then the entries are loaded in a loop small enough for
        // all of them to be in flight at once.
        for p in prep {
            self.table.preload_bucket(p.hash);
        }
        let mut hint = [NO_HINT; B];
        for (h, p) in hint.iter_mut().zip(prep) {
            *h = self.table.hint(p.hash);
        }
        // Keys placed past a full home bucket: fetch the next bucket for
        // all of them, then take their hints from there.
        let mut next = [usize::MAX; B];
        let mut spilled = false;
        for ((nb, h), p) in next.iter_mut().zip(&hint).zip(prep) {
            if *h == NO_HINT {
                if let Some(b) = self.table.overflow_next(p.hash) {
                    *nb = b;
                    spilled = true;
                }
            }
        }
        if spilled {
            for ((h, nb), p) in hint.iter_mut().zip(&next).zip(prep) {
                if *nb != usize::MAX {
                    *h = self.table.hint_at(*nb, p.hash);
                }
            }
        }
        let mut acc = 0u8;
        for h in &hint[..n] {
            acc ^= self.table.preload_entry(*h);
        }
        std::hint::black_box(acc);
        for (((v, k), p), h) in ov.iter_mut().zip(pk).zip(prep).zip(hint) {
            self.decide_into(k, p, h, now, v);
        }
    }

    /// Decide one packet.
    #[inline]
    pub fn process(&mut self, pkt: &Packet, now: Instant) -> Verdict {
        let p = Self::prepare(pkt);
        self.process_prepared(pkt, &p, now)
    }

    /// Decide one packet whose key was prepared with [`Engine::prepare`].
    pub fn process_prepared(&mut self, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        self.process_hinted(pkt, p, NO_HINT, now)
    }

    /// The established-connection fast path (live connection, not a SYN
    /// inbound); everything else goes to [`Engine::process_other`].
    #[inline(always)]
    fn process_hinted(&mut self, pkt: &Packet, p: &Prepared, hint: u32, now: Instant) -> Verdict {
        let mut v = Verdict::Drop(DropReason::NoService);
        self.decide_into(pkt, p, hint, now, &mut v);
        v
    }

    /// [`Engine::process_hinted`] writing the verdict in place: the burst
    /// loops pass their output slot, so that the fast path's fields are
    /// stored there directly (a returned verdict was built on the stack
    /// with narrow stores and copied with wide loads, which stalled on
    /// store forwarding: about a fifth of the engine's time in perf).
    #[inline(always)]
    fn decide_into(
        &mut self,
        pkt: &Packet,
        p: &Prepared,
        hint: u32,
        now: Instant,
        v: &mut Verdict,
    ) {
        let out = pkt.dir == Direction::Out;
        if let Some(i) = self
            .table
            .find_hinted(p.hash, &p.tuple, out, &self.slab, hint)
        {
            let c = self.table.get(i);
            if c.expires > now.0
                && (out
                    || (self.slab.hot[c.dest as usize].live
                        && !(pkt.proto == Protocol::Tcp && pkt.tcp_flags.syn())))
            {
                let dir = if out {
                    StateDir::Output
                } else {
                    StateDir::Input
                };
                if self.existing_into(i, pkt, dir, now, v) {
                    return;
                }
            }
        }
        *v = self.process_other(pkt, p, now);
    }

    /// Every case but the fast path (new connections, drops, SYNs on
    /// existing connections, expired entries).
    #[cold]
    #[inline(never)]
    fn process_other(&mut self, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        let v = match pkt.dir {
            Direction::In => self.inbound(pkt, p, now),
            Direction::Out => self.outbound(pkt, p, now),
        };
        if let Verdict::Drop(r) = v {
            bump(&self.counters.drops[r as usize]);
        }
        v
    }

    fn outbound(&mut self, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        match self.table.find(p.hash, &p.tuple, true, &self.slab) {
            Some(i) if self.table.get(i).expires > now.0 => self
                .existing(i, pkt, StateDir::Output, now)
                .unwrap_or(Verdict::Drop(DropReason::DestRemoved)),
            Some(i) => {
                self.expire_now(i);
                Verdict::Drop(DropReason::NoConnection)
            }
            None => Verdict::Drop(DropReason::NoConnection),
        }
    }

    fn inbound(&mut self, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        if let Some(i) = self.table.find(p.hash, &p.tuple, false, &self.slab) {
            let c = self.table.get(i);
            if c.expires > now.0 {
                let live = self.slab.hot[c.dest as usize].live;
                if live && !(pkt.proto == Protocol::Tcp && pkt.tcp_flags.syn()) {
                    return self
                        .existing(i, pkt, StateDir::Input, now)
                        .unwrap_or(Verdict::Drop(DropReason::DestRemoved));
                }
                return self.inbound_special(i, pkt, p, now);
            }
            // Due but not collected yet: it is gone.
            self.expire_now(i);
        }
        self.new_conn(pkt, p, now)
    }

    /// An inbound packet on a live connection that is a TCP SYN or whose
    /// real server left the configuration.
    fn inbound_special(&mut self, i: u32, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        let c = self.table.get(i);
        let (live, weight) = match &self.slab.cold[c.dest as usize] {
            // The shared weight is read only for a SYN.
            Some(d) if pkt.tcp_flags.syn() => {
                (self.slab.hot[c.dest as usize].live, d.shared.weight())
            }
            Some(_) => (self.slab.hot[c.dest as usize].live, 1),
            None => (false, 0),
        };
        // A SYN on an old connection: reschedule when the server is
        // quiescent with expire_nodest_conn, or when the connection is
        // finished (conn_reuse_mode).
        let reuse = self.settings.conn_reuse_mode;
        let st = TcpState::from_u8(c.state);
        let mut resched = pkt.proto == Protocol::Tcp
            && pkt.tcp_flags.syn()
            && ((self.settings.expire_nodest_conn && weight == 0)
                || (reuse != 0
                    && (st == TcpState::TimeWait
                        || st == TcpState::Close
                        || (reuse & 2 != 0 && st == TcpState::FinWait && c.has(flag::NOOUTPUT)))));
        if !resched && !live {
            if !self.settings.expire_nodest_conn {
                return Verdict::Drop(DropReason::DestRemoved);
            }
            resched = true;
        }
        if !resched {
            return self
                .existing(i, pkt, StateDir::Input, now)
                .unwrap_or(Verdict::Drop(DropReason::DestRemoved));
        }
        self.expire_now(i);
        bump(&self.counters.rescheduled);
        self.new_conn(pkt, p, now)
    }

    /// An existing connection: state transition, expiry, stats. `None`: the
    /// connection's real server slot is empty (dropped as DestRemoved).
    #[inline(always)]
    fn existing(&mut self, i: u32, pkt: &Packet, dir: StateDir, now: Instant) -> Option<Verdict> {
        let mut v = Verdict::Drop(DropReason::NoService);
        self.existing_into(i, pkt, dir, now, &mut v).then_some(v)
    }

    /// [`Engine::existing`] into `v` (untouched when it returns false).
    #[inline(always)]
    fn existing_into(
        &mut self,
        i: u32,
        pkt: &Packet,
        dir: StateDir,
        now: Instant,
        v: &mut Verdict,
    ) -> bool {
        let c = self.table.get_mut(i);
        let slot = c.dest as usize;
        let Some(d) = self.slab.hot.get_mut(slot).filter(|d| d.used) else {
            return false;
        };
        let (state, tmo) = if c.has(flag::UDP) {
            (ConnState::Udp, self.tmo[UDP_TMO])
        } else {
            let sd = if c.has(flag::NOOUTPUT) {
                if dir == StateDir::Output {
                    c.flags &= !flag::NOOUTPUT;
                    StateDir::Output
                } else {
                    StateDir::InputOnly
                }
            } else {
                dir
            };
            let cur = TcpState::from_u8(c.state);
            let new = self.trans[sd as usize][flag_bits(pkt.tcp_flags)][cur as usize];
            if new != cur {
                let inactive = c.has(flag::INACTIVE);
                if inactive == new.is_active() {
                    // Shared counts move only on an active/inactive change.
                    if let Some(Some(cd)) = self.slab.cold.get(slot) {
                        cd.shared.move_conn(inactive);
                    }
                    c.flags ^= flag::INACTIVE;
                }
                c.state = new as u8;
            }
            (ConnState::Tcp(new), self.tmo[new as usize])
        };
        let v6 = c.has(flag::V6);
        let vport = c.vport;
        let fwd = Forward {
            conn: Some(i),
            new: false,
            dest: c.dest,
            fwd: d.fwd,
            daddr: d.daddr,
            dport: if d.port == 0 { vport } else { d.port },
            vaddr: conntable::ip_from16(c.vaddr, v6),
            vport,
            state,
        };
        let o = (dir == StateDir::Output) as usize;
        d.pkts[o] += 1;
        d.bytes[o] += pkt.len as u64;
        self.table.set_expires(i, after(now, tmo));
        *v = Verdict::Forward(fwd);
        true
    }

    /// The connection `pkt` belongs to, without scheduling and without
    /// touching its state or timer: for ICMP errors about a connection,
    /// which go the connection's way but do not move its TCP state (as in
    /// the kernel's ip_vs_in_icmp). Counted in the real server's stats.
    pub fn lookup(&mut self, pkt: &Packet, now: Instant) -> Option<Forward> {
        let p = Self::prepare(pkt);
        let out = pkt.dir == Direction::Out;
        let i = self.table.find(p.hash, &p.tuple, out, &self.slab)?;
        let c = self.table.get(i);
        if c.expires <= now.0 {
            return None;
        }
        let d = self
            .slab
            .hot
            .get_mut(c.dest as usize)
            .filter(|d| d.used && (out || d.live))?;
        let state = if c.has(flag::UDP) {
            ConnState::Udp
        } else {
            ConnState::Tcp(TcpState::from_u8(c.state))
        };
        let v6 = c.has(flag::V6);
        let vport = c.vport;
        d.pkts[out as usize] += 1;
        d.bytes[out as usize] += pkt.len as u64;
        Some(Forward {
            conn: Some(i),
            new: false,
            dest: c.dest,
            fwd: d.fwd,
            daddr: d.daddr,
            dport: if d.port == 0 { vport } else { d.port },
            vaddr: conntable::ip_from16(c.vaddr, v6),
            vport,
            state,
        })
    }

    /// No connection: schedule a new one if the packet may open one.
    fn new_conn(&mut self, pkt: &Packet, p: &Prepared, now: Instant) -> Verdict {
        let snap = &*self.snap;
        let Some(si) = snap.find(pkt.proto, pkt.dst, pkt.dport) else {
            return Verdict::Drop(DropReason::NoService);
        };
        if pkt.proto == Protocol::Tcp && !pkt.tcp_flags.opens() {
            return Verdict::Drop(DropReason::NotSyn);
        }
        let svc = &snap.services[si];
        let ls = &mut self.svcs[si];
        let Some(sc) = ls.sched.as_mut() else {
            return Verdict::Drop(DropReason::NoScheduler);
        };
        let fk = FlowKey {
            src: pkt.src,
            sport: pkt.sport,
            dst: pkt.dst,
            dport: pkt.dport,
        };
        let slab = &self.slab;
        let (slot, tpl) = match svc.cfg.persistence {
            None => match sc.schedule(svc, &fk, now) {
                Some(pos) if pos < ls.slots.len() => (ls.slots[pos], None),
                _ => return Verdict::Drop(DropReason::NoDest),
            },
            Some(pers) => {
                let key = TemplateKey {
                    proto: pkt.proto,
                    caddr: svc.cfg.netmask().apply(pkt.src),
                    vaddr: pkt.dst,
                    vport: if svc.cfg.key.port == 0 { 0 } else { pkt.dport },
                };
                let timeout = pers.timeout as u64 * 1000;
                let eqt = self.settings.expire_quiescent_template;
                let valid = |t: &Template| {
                    t.dest.available()
                        && !(eqt && t.dest.weight() == 0)
                        && matches!(slab.by_id.get(&t.dest.id), Some(&s) if slab.hot[s as usize].live)
                };
                match self.templates.lookup(key, now, timeout, valid) {
                    Lookup::Found(t) => match slab.by_id.get(&t.dest.id) {
                        Some(&s) => (s, Some(t)),
                        None => return Verdict::Drop(DropReason::NoDest),
                    },
                    Lookup::Vacant(v) => match sc.schedule(svc, &fk, now) {
                        Some(pos) if pos < ls.slots.len() => {
                            let t = v.insert(svc.dests[pos].shared.clone(), now, timeout);
                            (ls.slots[pos], Some(t))
                        }
                        _ => return Verdict::Drop(DropReason::NoDest),
                    },
                }
            }
        };
        let (Some(cd), Some(d)) = (
            self.slab.cold[slot as usize].as_ref(),
            self.slab.hot.get(slot as usize),
        ) else {
            return Verdict::Drop(DropReason::NoDest);
        };
        let lc = self.lcore;
        if pkt.proto == Protocol::Udp && svc.cfg.ops {
            // One-packet scheduling: forwarded, no connection kept.
            for st in [&cd.shared.stats, &cd.svc.stats] {
                st.lcore(lc).conn();
                st.lcore(lc).packet_in(pkt.len);
            }
            let dport = if d.port == 0 { pkt.dport } else { d.port };
            return Verdict::Forward(Forward {
                conn: None,
                new: true,
                dest: slot,
                fwd: d.fwd,
                daddr: d.daddr,
                dport,
                vaddr: pkt.dst,
                vport: pkt.dport,
                state: ConnState::Udp,
            });
        }
        let masq = d.fwd.is_masq();
        let out_key = masq.then(|| {
            let dport = if d.port == 0 { pkt.dport } else { d.port };
            let t = &p.tuple;
            let k = Tuple {
                src: d.addr,
                dst: t.src,
                sport: dport,
                dport: t.sport,
                udp: t.udp,
                v6: t.v6,
            };
            (hash_key(&k, true), k)
        });
        let out_hash = out_key.as_ref().map(|(h, _)| *h);
        // The real server cannot hold two connections with one 4-tuple: an
        // older NAT connection with this reply key (the client reused its
        // port toward another VIP served by the same real server) is over.
        // Left in place it could take the new connection's replies (the
        // kernel avoids that by finding the newest connection first).
        if let Some((h, k)) = &out_key {
            if let Some(j) = self.table.find(*h, k, true, &self.slab) {
                self.expire_now(j);
            }
        }
        let mut flags = flag::INACTIVE;
        if !masq {
            flags |= flag::NOOUTPUT;
        }
        if tpl.is_some() {
            flags |= flag::CONTROLLED;
        }
        let n = NewConn {
            tuple: p.tuple,
            dest: slot,
            expires: after(now, INITIAL_TIMEOUT_SECS as u64 * 1000),
            state: TcpState::None as u8,
            flags,
        };
        let i = match self.table.insert(n, p.hash, out_hash) {
            Ok(i) => i,
            Err(_) => return Verdict::Drop(DropReason::TableFull),
        };
        let Some(d) = self.slab.cold[slot as usize].as_mut() else {
            return Verdict::Drop(DropReason::NoDest);
        };
        d.refs += 1;
        d.shared.bind_conn(false);
        d.shared.stats.lcore(lc).conn();
        d.svc.stats.lcore(lc).conn();
        if let Some(t) = &tpl {
            t.control();
        }
        self.tpl[i as usize] = tpl;
        bump(&self.counters.created);
        match self.existing(i, pkt, StateDir::Input, now) {
            Some(Verdict::Forward(f)) => Verdict::Forward(Forward { new: true, ..f }),
            Some(v) => v,
            None => Verdict::Drop(DropReason::DestRemoved),
        }
    }

    /// Undo a connection's bindings after it left the table.
    fn release(&mut self, i: u32, c: &conntable::Conn) {
        if let Some(Some(d)) = self.slab.cold.get(c.dest as usize) {
            d.shared.unbind_conn(!c.has(flag::INACTIVE));
        }
        if let Some(t) = self.tpl[i as usize].take() {
            t.release();
        }
        self.slab.unref(c.dest, self.lcore);
        bump(&self.counters.expired);
    }

    /// Remove a connection now.
    #[inline(never)]
    fn expire_now(&mut self, i: u32) {
        let c = self.table.remove(i, &self.slab);
        self.release(i, &c);
    }

    /// Expire connections due by `now`, spending at most `budget` (wheel
    /// ticks + entries looked at), sweep one shard of the shared template
    /// table, and publish the packet counters ([`Engine::publish_stats`]).
    /// Returns how many connections expired.
    pub fn expire(&mut self, now: Instant, budget: usize) -> usize {
        let mut b = budget;
        let mut n = 0;
        while let Some((i, c)) = self.table.pop_expired(now, &mut b, &self.slab) {
            self.release(i, &c);
            n += 1;
        }
        self.templates.expire(now, 1);
        self.publish_stats();
        n
    }

    /// Remove every connection of this lcore (e.g. on shutdown or `-C`).
    pub fn flush(&mut self) {
        let ids: Vec<u32> = self.table.iter().map(|(i, _)| i).collect();
        for i in ids {
            self.expire_now(i);
        }
        self.publish_stats();
    }

    /// This lcore's connections for `-Lnc` (templates: [`Engine::list_templates`]).
    pub fn list_conns(&self, now: Instant) -> Vec<ConnInfo> {
        self.table
            .iter()
            .map(|(_, c)| {
                let v6 = c.has(flag::V6);
                let (daddr, dport) = self.slab.endpoint(c.dest);
                let dport = if dport == 0 { c.vport } else { dport };
                ConnInfo {
                    proto: c.proto(),
                    state: if c.has(flag::UDP) {
                        ConnState::Udp.name()
                    } else {
                        TcpState::from_u8(c.state).name()
                    },
                    expires_in_ms: c.expires.saturating_sub(now.0),
                    client: SocketAddr::new(c.client(), c.cport),
                    vip: SocketAddr::new(c.vip(), c.vport),
                    dest: SocketAddr::new(conntable::ip_from16(daddr, v6), dport),
                    template: false,
                }
            })
            .collect()
    }

    /// The shared persistence templates as `-Lnc` rows.
    pub fn list_templates(&self, now: Instant) -> Vec<ConnInfo> {
        self.templates
            .list(now)
            .iter()
            .map(ConnInfo::from_template)
            .collect()
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
