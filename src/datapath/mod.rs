//! The per-worker datapath, sans-IO: a burst of frames in, exactly one
//! [`Outcome`] per frame out, plus the frames the worker originates.
//!
//! One frame's way, in the order of the files:
//! - [`Datapath::process_burst`] (here): parse every frame, send the ones
//!   another worker owns to it ([`owner`]), then decide the rest.
//! - [`classify`]: plain TCP/UDP to a VIP or from a real server goes to the
//!   connection engine as a batch (its table misses overlap); ARP, neighbour
//!   discovery, ping and traffic to our own addresses go to [`crate::net`];
//!   ICMP errors find their connection from the quoted packet.
//! - [`route`]: the rewrite ([`crate::lb::forward`]) toward the egress port
//!   and next hop from the route table and the neighbour snapshot; a new
//!   connection no real server can take goes back to its client as ICMP
//!   port unreachable (rate limited).
//! - [`neighbours`]: a frame whose next hop's MAC is unknown is held, an
//!   ARP request / solicitation goes out, and the frame leaves when the
//!   neighbour snapshot knows the MAC (or is dropped when it never does).
//! - [`housekeeping`]: between bursts, new configuration and neighbour
//!   snapshots, VIP announcements, expiry, the control thread's queries.
//!
//! Generic over [`PacketBuf`]: `rvsd` runs it on mbufs, the tests, golden
//! fixtures, benches and fuzzers on `VecBuf`s, with no EAL. Time is a
//! parameter. Frames are counted by whoever ends their custody (see
//! [`crate::drops::Tally`]): the caller counts the outcomes it is given,
//! the datapath counts what happens to held frames and the frames it makes.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::Arc;

use crate::drops::{DropReason, Tally};
use crate::ids::{PortIndex, WorkerIndex};
use crate::lb::engine::Engine;
use crate::lb::rules::Snapshot;
use crate::lb::time::Timestamp;
use crate::net::reassembly::{Reassembly, ReassemblyConfig};
use crate::net::{self, AddrSet, Learned, NeighSnapshot, NetConfig, Pending, Resolved, RouteTable};
use crate::rss::OwnerMap;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::{parse_frame_into, Headers, L3};

mod classify;
mod fragments;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzzkit;
mod hops;
mod housekeeping;
mod neighbours;
mod owner;
mod reassemble;
mod route;

#[cfg(test)]
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod twin_tests;

pub use hops::{Hop, HopCache};
pub use housekeeping::{ConnPage, Gauges, Links, WorkerCmd};
pub use owner::PortSide;

/// The most frames one call decides.
pub const BURST: usize = 32;

/// What becomes of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Transmit it (rewritten in place) on this port.
    Tx(PortIndex),
    /// Hand it, untouched, to the worker owning its connection.
    Handoff(WorkerIndex),
    /// Give it back with [`Datapath::hold`]: rewritten, it waits for its
    /// next hop's MAC.
    Hold,
    /// Free it; count it under this reason.
    Drop(DropReason),
    /// Give it, untouched, to the kernel twin of the port it came in on:
    /// the host's own traffic.
    Kernel,
}

/// New connections a worker refused because no real server could take
/// them ([`crate::lb::engine::Verdict::Refuse`]), by what became of them
/// (those no error may answer are `drop.no_dest`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Answered with ICMP port unreachable (the frame left as the error).
    pub answered: u64,
    /// Unanswered: the ICMP rate limits held the error back (the frame is
    /// also `drop.icmp_rate_limited`).
    pub rate_limited: u64,
}

/// Why a frame was given back with [`Outcome::Hold`].
#[derive(Clone, Copy, Debug)]
enum HoldFor {
    /// Rewritten; it waits for the MAC of `next_hop` on interface `port`.
    Neighbour { port: PortIndex, next_hop: IpAddr },
    /// Rewritten; it leaves in fragments.
    Fragment(Fragment),
    /// A fragment that came in on interface `port`, to reassemble.
    Reassemble { port: PortIndex },
}

/// How to send a held frame in fragments.
#[derive(Clone, Copy, Debug)]
struct Fragment {
    /// Egress interface and next hop.
    port: PortIndex,
    next_hop: IpAddr,
    /// The egress MTU.
    mtu: u16,
    /// Where its IP header starts.
    l3: u16,
    /// The next hop's MAC is written in already.
    resolved: bool,
}

impl HoldFor {
    const NONE: HoldFor = HoldFor::Neighbour {
        port: PortIndex(0),
        next_hop: UNSPECIFIED,
    };
}

/// Which VIPs each port answers ARP/ND for: every VIP of the
/// configuration (`None`, the default), or only those in the set (the
/// addresses on the port's kernel twin, when the twin decides; see
/// `config::VipOwner`). Indexed by port; VLANs follow their port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VipOwners(pub Vec<Option<ahash::AHashSet<IpAddr>>>);

impl VipOwners {
    /// Whether port `link` answers for `vip`.
    pub fn answers(&self, link: PortIndex, vip: &IpAddr) -> bool {
        match self.0.get(link.get()) {
            Some(Some(set)) => set.contains(vip),
            _ => true,
        }
    }
}

/// What every frame needs: the engine, the ports' addresses, routes and
/// neighbours.
pub struct Forwarding {
    pub engine: Engine,
    /// Each port's MAC and own addresses (the VIPs are added from the
    /// engine's snapshot on `vip_ports`).
    pub net: NetConfig,
    /// Ports that answer ARP/ND for the VIPs (client-facing and one-arm).
    pub vip_ports: Vec<PortIndex>,
    pub routes: Arc<RouteTable>,
    pub neigh: Arc<NeighSnapshot>,
    /// The first IPv4 id of the outer headers this worker writes.
    pub ip_id_start: u16,
}

/// One worker's datapath state.
pub struct Datapath<B> {
    engine: Engine,
    net: NetConfig,
    vip_ports: Vec<PortIndex>,
    /// Every VIP address in the current snapshot, and the same for the
    /// per-packet lookups.
    vips: ahash::AHashSet<IpAddr>,
    vip_set: AddrSet,
    /// Every port's own addresses, and those with the VIPs (for the input
    /// checks).
    own_set: AddrSet,
    local_set: AddrSet,
    routes: Arc<RouteTable>,
    neigh: Arc<NeighSnapshot>,
    hops: HopCache,
    ip_id: Cell<u16>,
    /// Owner routing, with more than one worker.
    me: WorkerIndex,
    owners: Option<OwnerMap>,
    sides: Vec<PortSide>,
    /// Frames waiting for a next hop's MAC.
    pending: Pending<B>,
    /// Why the frames of the burst being decided would be held, by index;
    /// `hold_next` is the last decision's.
    holds: [HoldFor; BURST],
    hold_next: HoldFor,
    /// Rewritten frames to send as fragments at the next tick.
    to_fragment: Vec<(Fragment, B)>,
    /// Fragments waiting for the rest of their datagram.
    reassembly: Reassembly<B>,
    /// Set while a datagram reassembled here is decided.
    refragment: bool,
    /// Reassembled datagrams another worker owns (worker, in port).
    handoffs: Vec<(WorkerIndex, PortIndex, B)>,
    /// Next hops to send a request for, sent at the next tick.
    requests: Vec<(PortIndex, IpAddr)>,
    resolved: Vec<Resolved<B>>,
    /// What local traffic taught us, for the control thread (bounded: a
    /// burst adds at most one entry per frame).
    learned: Vec<Learned>,
    /// The control thread's channels (absent in tests that need none).
    links: Option<Links>,
    /// Which VIPs each port answers for, and where new owners come from.
    vip_owners: Arc<VipOwners>,
    owners_rx: Option<net::SnapshotRx<VipOwners>>,
    /// Some port has a kernel twin.
    twin_ports: bool,
    next_housekeeping: Timestamp,
    next_publish: Timestamp,
    /// The ICMP errors this worker may send.
    icmp_limit: net::IcmpLimiter,
    /// New connections refused with port unreachable, or not for the
    /// rate limits.
    refusals: Refusals,
    /// The engine's count of refusals when the last burst was decided.
    refused_seen: u64,
    /// The time of the burst being decided.
    now: Timestamp,
    /// VIPs announced (gratuitous ARP / unsolicited NA) by worker 0.
    announced: ahash::AHashSet<(PortIndex, IpAddr)>,
    next_announce: Timestamp,
    announce_due: bool,
}

/// Every port's own addresses, link-local ones too.
fn own_addrs(net: &NetConfig) -> AddrSet {
    AddrSet::new(net.iter().flat_map(|i| i.addrs().iter().map(|c| c.addr())))
}

const UNSPECIFIED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl<B: PacketBuf> Datapath<B> {
    /// A single worker's datapath with no control thread: what tests,
    /// benches and the golden fixtures drive.
    pub fn new(f: Forwarding) -> Self {
        let mut d = Datapath {
            engine: f.engine,
            net: f.net,
            vip_ports: f.vip_ports,
            vips: ahash::AHashSet::default(),
            vip_set: AddrSet::default(),
            own_set: AddrSet::default(),
            local_set: AddrSet::default(),
            routes: f.routes,
            neigh: f.neigh,
            hops: HopCache::default(),
            ip_id: Cell::new(f.ip_id_start),
            me: WorkerIndex(0),
            owners: None,
            sides: Vec::new(),
            pending: Pending::new(net::PendingConfig::default()),
            holds: [HoldFor::NONE; BURST],
            hold_next: HoldFor::NONE,
            to_fragment: Vec::with_capacity(fragments::BACKLOG),
            reassembly: Reassembly::new(ReassemblyConfig::default()),
            refragment: false,
            handoffs: Vec::new(),
            requests: Vec::with_capacity(64),
            resolved: Vec::with_capacity(256),
            learned: Vec::with_capacity(64),
            links: None,
            vip_owners: Arc::new(VipOwners::default()),
            owners_rx: None,
            twin_ports: false,
            next_housekeeping: Timestamp::ZERO,
            next_publish: Timestamp::ZERO,
            icmp_limit: net::IcmpLimiter::new(net::IcmpLimitConfig::default()),
            refusals: Refusals::default(),
            refused_seen: 0,
            now: Timestamp::ZERO,
            announced: ahash::AHashSet::default(),
            next_announce: Timestamp::ZERO,
            announce_due: false,
        };
        d.own_set = own_addrs(&d.net);
        d.twin_ports = d.net.iter().any(|i| i.has_twin());
        let snap = d.engine.snapshot().clone();
        d.update_vips(&snap);
        d
    }

    /// Worker `me` of several: connections belong to the worker `owners`
    /// names for their client-side endpoint; `sides[p]` says which side
    /// port `p` faces.
    pub fn with_owners(mut self, me: WorkerIndex, owners: OwnerMap, sides: Vec<PortSide>) -> Self {
        self.me = me;
        self.owners = Some(owners);
        self.sides = sides;
        self
    }

    /// Limits on the fragments this worker reassembles.
    pub fn with_reassembly(mut self, cfg: ReassemblyConfig) -> Self {
        self.reassembly = Reassembly::new(cfg);
        self
    }

    /// Reassembled datagrams to hand to the worker owning them, with the
    /// port they came in on (made at a tick).
    pub fn take_handoffs(&mut self) -> std::vec::Drain<'_, (WorkerIndex, PortIndex, B)> {
        self.handoffs.drain(..)
    }

    /// Limits on the ICMP errors this worker sends (the kernel's defaults
    /// otherwise).
    pub fn with_icmp_limit(mut self, cfg: net::IcmpLimitConfig) -> Self {
        self.icmp_limit = net::IcmpLimiter::new(cfg);
        self
    }

    /// Answer ARP/ND for the VIPs `owners` allows, and for those of each
    /// new `VipOwners` published on `rx` (picked up between bursts).
    pub fn with_vip_owners(
        mut self,
        owners: Arc<VipOwners>,
        rx: Option<net::SnapshotRx<VipOwners>>,
    ) -> Self {
        self.owners_rx = rx;
        self.set_vip_owners(owners);
        self
    }

    /// New VIP owners: the ports' VIPs change (and new ones are announced
    /// at the next tick).
    pub fn set_vip_owners(&mut self, owners: Arc<VipOwners>) {
        if *owners == *self.vip_owners {
            return;
        }
        self.vip_owners = owners;
        let snap = self.engine.snapshot().clone();
        self.update_vips(&snap);
        self.announce_due = true;
    }

    /// Connect to the control thread (snapshots, learning, queries).
    pub fn with_links(mut self, links: Links) -> Self {
        self.links = Some(links);
        self
    }

    /// The new connections this worker refused so far.
    pub fn refusals(&self) -> Refusals {
        self.refusals
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn net(&self) -> &NetConfig {
        &self.net
    }

    pub fn neighbours(&self) -> &Arc<NeighSnapshot> {
        &self.neigh
    }

    /// How many frames are held: waiting for a next hop, for
    /// fragmentation, or for the rest of their datagram.
    pub fn held(&self) -> usize {
        self.pending.len() + self.to_fragment.len() + self.reassembly.held()
    }

    /// True when `addr` is a VIP of the current configuration.
    #[inline]
    pub fn is_vip(&self, addr: &IpAddr) -> bool {
        self.vip_set.contains(addr)
    }

    /// A new configuration: the engine's services and the VIPs we answer
    /// for (announced at the next tick).
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.update_vips(&snap);
        self.engine.set_snapshot(snap);
        self.announce_due = true;
    }

    fn update_vips(&mut self, snap: &Snapshot) {
        // Marked networks take every address in them: no address of
        // theirs is announced, the network is routed to us.
        let new: ahash::AHashSet<IpAddr> = snap.vip_addrs().collect();
        for &p in &self.vip_ports {
            let link = self.net.link(p).0;
            let owners = &self.vip_owners;
            if let Some(iface) = self.net.port_mut(p) {
                let stale: Vec<IpAddr> = iface
                    .vips()
                    .filter(|v| !new.contains(*v) || !owners.answers(link, v))
                    .copied()
                    .collect();
                for old in &stale {
                    iface.remove_vip(old);
                }
                for v in new.iter().filter(|v| owners.answers(link, v)) {
                    iface.add_vip(*v);
                }
            }
        }
        self.vip_set = AddrSet::with_nets(new.iter().copied(), snap.vip_nets());
        self.local_set = self.vip_set.union(&self.own_set);
        self.vips = new;
    }

    /// Decide a burst of at most [`BURST`] frames that arrived on `port`
    /// (or were handed in, having arrived there): `out[i]` for `bufs[i]`,
    /// rewritten in place. [`Outcome::Tx`] names a port, and the frame
    /// carries the tag of the interface it leaves by.
    pub fn process_burst(
        &mut self,
        port: PortIndex,
        bufs: &mut [B],
        now: Timestamp,
        out: &mut [Outcome],
    ) {
        let n = bufs.len().min(out.len()).min(BURST);
        if self.decide_frames(port, &mut bufs[..n], now, &mut out[..n]) {
            self.to_links(&mut bufs[..n], &mut out[..n]);
        }
    }

    /// [`Datapath::process_burst`] but for the last step: [`Outcome::Tx`]
    /// names an interface. True when some frame may need
    /// [`Datapath::to_links`] (VLANs configured, or a tagged frame seen).
    fn decide_frames(
        &mut self,
        port: PortIndex,
        bufs: &mut [B],
        now: Timestamp,
        out: &mut [Outcome],
    ) -> bool {
        self.now = now;
        // What rvsadm was told is done applies to this burst.
        self.pick_up_snapshot();
        // Every frame's first cache line on its way before parsing any.
        for b in bufs.iter() {
            b.prefetch();
        }
        let Some(mac) = self.net.port(port).map(|i| i.mac()) else {
            out.fill(Outcome::Drop(DropReason::NoPort));
            return false;
        };
        if self.net.has_vlans() {
            self.decide_frames_on_vlans(port, mac, bufs, now, out);
            return true;
        }
        let n = bufs.len();
        let mut heads = [Headers::EMPTY; BURST];
        let mut todo = [false; BURST];
        let mut tagged = false;
        let host = net::policy::Host {
            mac,
            locals: &self.local_set,
            own: &self.own_set,
        };
        for i in 0..n {
            // Parsed in place: no copies of the headers struct per frame.
            let data = bufs[i].data();
            out[i] = match parse_frame_into(data, &mut heads[i]) {
                Err(_) => Outcome::Drop(DropReason::Malformed),
                Ok(())
                    if heads[i].vlan.is_some() && {
                        tagged = true;
                        !self.priority_tagged(port, data, &heads[i])
                    } =>
                {
                    Outcome::Drop(DropReason::VlanUnknown)
                }
                Ok(()) => match self.screen(port, data, &heads[i], &host) {
                    Some(o) => o,
                    None => {
                        todo[i] = true;
                        continue;
                    }
                },
            };
        }
        self.decide_burst(port, bufs, &heads[..n], &todo[..n], now, out);
        if self.twin_ports && self.has_twin(port) {
            self.to_twin(bufs, &heads[..n], out);
        }
        tagged
    }

    /// [`Datapath::decide_frames`] when some interface is a VLAN: each
    /// frame's interface comes from its tag, and the frames are decided in
    /// one batch per interface.
    #[inline(never)]
    fn decide_frames_on_vlans(
        &mut self,
        port: PortIndex,
        mac: crate::wire::EthernetAddress,
        bufs: &mut [B],
        now: Timestamp,
        out: &mut [Outcome],
    ) {
        let n = bufs.len();
        let mut heads = [Headers::EMPTY; BURST];
        let mut todo = [false; BURST];
        let mut ifx = [port; BURST];
        let host = net::policy::Host {
            mac,
            locals: &self.local_set,
            own: &self.own_set,
        };
        for i in 0..n {
            let data = bufs[i].data();
            if parse_frame_into(data, &mut heads[i]).is_err() {
                out[i] = Outcome::Drop(DropReason::Malformed);
                continue;
            }
            let h = &heads[i];
            match net::vlan::ingress(&self.net, port, data, h) {
                net::Ingress::Iface(l) => ifx[i] = l,
                net::Ingress::Unknown => {
                    out[i] = Outcome::Drop(DropReason::VlanUnknown);
                    continue;
                }
            }
            match self.screen(ifx[i], data, h, &host) {
                Some(o) => out[i] = o,
                None => todo[i] = true,
            }
        }
        // In the order the interfaces first appear.
        while let Some(first) = (0..n).find(|&i| todo[i]) {
            let l = ifx[first];
            let mut mine = [false; BURST];
            for i in first..n {
                if todo[i] && ifx[i] == l {
                    mine[i] = true;
                    todo[i] = false;
                }
            }
            self.decide_burst(l, bufs, &heads[..n], &mine[..n], now, out);
        }
        if self.twin_ports && self.has_twin(port) {
            self.to_twin(bufs, &heads[..n], out);
        }
    }

    /// A tagged frame on a port without VLANs: only a priority tag (VLAN
    /// id 0) passes.
    #[cold]
    fn priority_tagged(&self, port: PortIndex, data: &[u8], h: &Headers) -> bool {
        net::vlan::ingress(&self.net, port, data, h) != net::Ingress::Unknown
    }

    /// The input checks and owner routing of a parsed frame on `iface`:
    /// its outcome, or `None` when this worker decides it.
    #[inline(always)]
    fn screen(
        &self,
        iface: PortIndex,
        data: &[u8],
        h: &Headers,
        host: &net::policy::Host<'_>,
    ) -> Option<Outcome> {
        match net::policy::admit(data, h, host) {
            Err(r) => Some(Outcome::Drop(r)),
            Ok(()) => self.foreign_owner(iface, h).map(Outcome::Handoff),
        }
    }

    /// After a burst was decided on a port with a kernel twin: the frames
    /// the input checks refused as not for us that are the host's
    /// (multicast and broadcast: VRRP, OSPF, DHCP, LLDP) go to the twin.
    /// A pass of its own, so that ports without a twin pay nothing.
    #[cold]
    #[inline(never)]
    fn to_twin(&self, bufs: &[B], heads: &[Headers], out: &mut [Outcome]) {
        for ((b, h), o) in bufs.iter().zip(heads).zip(out.iter_mut()) {
            let Outcome::Drop(r) = *o else { continue };
            let group_mac = b.data().first().is_some_and(|m| m & 1 == 1);
            let group_ip = match h.dst {
                IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
                IpAddr::V6(a) => a.is_multicast(),
            };
            let host_s = match r {
                DropReason::NotForUs => {
                    group_mac && (group_ip || !matches!(h.l3, L3::Ipv4 | L3::Ipv6))
                }
                DropReason::MartianDestination => group_ip,
                _ => false,
            };
            if host_s {
                *o = Outcome::Kernel;
            }
        }
    }

    /// True when port `port` has a kernel twin.
    #[inline]
    fn has_twin(&self, port: PortIndex) -> bool {
        self.net.port(port).is_some_and(|i| i.has_twin())
    }

    /// Frames decided for interfaces leave by their ports, tagged as each
    /// interface says ([`NetConfig::link`]); one that cannot take its tag
    /// is dropped. Out of line: only VLANs or a tagged frame need it.
    #[inline(never)]
    fn to_links(&self, bufs: &mut [B], out: &mut [Outcome]) {
        for (b, o) in bufs.iter_mut().zip(out.iter_mut()) {
            if let Outcome::Tx(l) = *o {
                *o = match self.to_link(l, b) {
                    Some(port) => Outcome::Tx(port),
                    None => Outcome::Drop(DropReason::NoRoom),
                };
            }
        }
    }

    /// [`Datapath::to_links`] for the frames a tick made, `out[from..]`.
    fn tick_to_links(&self, out: &mut Vec<(PortIndex, B)>, from: usize, tally: &mut Tally) {
        let mut i = 0;
        out.retain_mut(|(l, b)| {
            i += 1;
            if i <= from {
                return true;
            }
            match self.to_link(*l, b) {
                Some(port) => {
                    *l = port;
                    true
                }
                None => {
                    tally.drops.bump(DropReason::NoRoom);
                    false
                }
            }
        });
    }

    /// Gives a frame leaving by interface `l` that interface's tag: its
    /// port, or `None` when there is no room for the tag.
    #[inline]
    fn to_link(&self, l: PortIndex, b: &mut B) -> Option<PortIndex> {
        let (port, vid) = self.net.link(l);
        net::vlan::retag(b, vid).then_some(port)
    }

    /// [`Datapath::process_burst`] for one frame.
    pub fn process_one(&mut self, port: PortIndex, buf: &mut B, now: Timestamp) -> Outcome {
        let mut out = [Outcome::Drop(DropReason::Malformed)];
        self.process_burst(port, std::slice::from_mut(buf), now, &mut out);
        out[0]
    }

    /// Take frame `index` of the burst just decided, whose outcome was
    /// [`Outcome::Hold`]: until its next hop resolves, or until the next
    /// tick sends it in fragments.
    pub fn hold(&mut self, index: usize, buf: B, now: Timestamp, tally: &mut Tally) {
        match self.holds[index.min(BURST - 1)] {
            // Reassembled, the datagram comes in again on the port, and
            // finds its interface from its first fragment's tag.
            HoldFor::Reassemble { port } => self.reassemble(self.net.link(port).0, buf, now, tally),
            HoldFor::Fragment(f) => {
                if self.to_fragment.len() < fragments::BACKLOG {
                    self.to_fragment.push((f, buf));
                    tally.held += 1;
                } else {
                    tally.drops.bump(DropReason::FragNoBuffer);
                }
            }
            HoldFor::Neighbour { port, next_hop } => self.park(port, next_hop, buf, now, tally),
        }
    }

    /// Queue a frame for its next hop's MAC.
    fn park(&mut self, port: PortIndex, nh: IpAddr, buf: B, now: Timestamp, tally: &mut Tally) {
        match self.pending.push(port, nh, buf, now) {
            Ok(q) => {
                tally.held += 1;
                if q.send_request && self.requests.len() < self.requests.capacity() {
                    self.requests.push((port, nh));
                }
            }
            Err((_, why)) => tally.drops.bump(why),
        }
    }
}
