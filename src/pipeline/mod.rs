//! The per-lcore packet pipeline, sans-IO: one frame in, an [`Action`] out.
//!
//! parse -> local traffic (ARP, neighbour discovery, ping, anything to the
//! balancer's own addresses: [`crate::net`]) -> ICMP errors about a
//! connection (looked up by their quoted tuple) -> the load balancer
//! ([`Engine`]: connection lookup or scheduling) -> the rewrite
//! ([`forward::apply`]) toward the egress port and next hop from the route
//! table and the neighbour snapshot.
//!
//! It is generic over [`PacketBuf`], so the DPDK worker runs it on mbufs
//! and tests, the golden fixtures and the fuzzer run it on `VecBuf`s.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::lb::engine::{self, Direction, Engine, Packet, Verdict};
use crate::lb::forward::{self, Applied, Env, FwdError};
use crate::lb::rules::Snapshot;
use crate::lb::service::Protocol;
use crate::lb::tcp_state::TcpFlags;
use crate::lb::time::Instant;
use crate::net::{self, Iface, Learned, NeighSnapshot, NetConfig, RouteTable};
use crate::wire::buf::PacketBuf;
use crate::wire::parse::{parse_frame, Headers, L3};
use crate::wire::{EthernetAddress, IpProtocol};

mod hops;
#[cfg(test)]
mod tests;
mod vips;

pub use hops::{Hop, HopCache};
pub use vips::VipSet;

/// Why the pipeline dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The frame does not parse (truncated, inconsistent lengths, ...).
    Malformed,
    /// Neither IPv4, IPv6 nor ARP.
    NotIp,
    /// An IP fragment: rvs does not reassemble.
    Fragment,
    /// To a VIP but neither TCP nor UDP (nor an ICMP error about a connection).
    Unsupported,
    /// No route to the real server or the client.
    NoRoute,
    /// The load balancer's decision.
    Lb(engine::DropReason),
    /// Local traffic the net module refused.
    Net(net::DropReason),
    /// The rewrite refused the packet.
    Fwd(FwdError),
}

impl Drop {
    pub fn name(self) -> &'static str {
        match self {
            Drop::Malformed => "malformed",
            Drop::NotIp => "not_ip",
            Drop::Fragment => "fragment",
            Drop::Unsupported => "unsupported",
            Drop::NoRoute => "no_route",
            Drop::Lb(r) => r.name(),
            Drop::Net(r) => r.name(),
            Drop::Fwd(e) => e.name(),
        }
    }
}

/// Per-reason drop counters, one flat array (pipeline reasons, then the
/// engine's, the net module's and the rewrite's).
#[derive(Clone, Debug)]
pub struct DropCounts(pub [u64; DROP_KINDS]);

const OWN: usize = 5;
const LB_AT: usize = OWN;
const NET_AT: usize = LB_AT + engine::N_DROP_REASONS;
const FWD_AT: usize = NET_AT + net::DropReason::COUNT;
/// How many distinct drop reasons [`DropCounts`] holds.
pub const DROP_KINDS: usize = FWD_AT + forward::N_FWD_ERRORS;

impl Default for DropCounts {
    fn default() -> Self {
        DropCounts([0; DROP_KINDS])
    }
}

impl Drop {
    /// The reason's slot in [`DropCounts`].
    pub fn index(self) -> usize {
        match self {
            Drop::Malformed => 0,
            Drop::NotIp => 1,
            Drop::Fragment => 2,
            Drop::Unsupported => 3,
            Drop::NoRoute => 4,
            Drop::Lb(r) => LB_AT + r as usize,
            Drop::Net(r) => NET_AT + r.index(),
            Drop::Fwd(e) => FWD_AT + e as usize,
        }
    }

    /// Every reason, in [`Drop::index`] order.
    pub fn all() -> impl Iterator<Item = Drop> {
        [
            Drop::Malformed,
            Drop::NotIp,
            Drop::Fragment,
            Drop::Unsupported,
            Drop::NoRoute,
        ]
        .into_iter()
        .chain(engine::DropReason::ALL.into_iter().map(Drop::Lb))
        .chain(net::DropReason::ALL.into_iter().map(Drop::Net))
        .chain(FwdError::ALL.into_iter().map(Drop::Fwd))
    }
}

impl DropCounts {
    #[inline]
    pub fn bump(&mut self, d: Drop) {
        self.0[d.index()] += 1;
    }

    /// (name, count) for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Drop::all().map(move |d| (d.name(), self.0[d.index()]))
    }
}

/// What to do with the packet now in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Transmit on port `n`.
    Tx(u16),
    /// Transmit back out the port it arrived on (ARP/ND/echo replies, ICMP
    /// errors rvs generated).
    Reply,
    /// Rewritten for port `port`, but the MAC of `next_hop` is not known
    /// yet: hold it until the neighbour resolves, then write the MAC into
    /// the Ethernet destination and transmit.
    Hold {
        port: u16,
        next_hop: IpAddr,
    },
    Drop(Drop),
}

/// Filler for unused slots of a burst's packet array.
const PLACEHOLDER: Packet = Packet {
    proto: Protocol::Tcp,
    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    sport: 0,
    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    dport: 0,
    tcp_flags: TcpFlags(0),
    dir: Direction::In,
    len: 0,
};

/// One worker's pipeline state.
pub struct Balancer {
    engine: Engine,
    net: NetConfig,
    /// Ports that answer ARP/ND for the VIPs (client-facing and one-arm).
    vip_ports: Vec<u16>,
    /// Every VIP address in the current snapshot.
    vips: ahash::AHashSet<IpAddr>,
    /// The same addresses, for the per-packet lookups.
    vip_set: VipSet,
    routes: Arc<RouteTable>,
    neigh: Arc<NeighSnapshot>,
    ip_id: Cell<u16>,
    mtu: u16,
    /// What local traffic taught us, for the control thread; drained by the
    /// caller (bounded: a burst adds at most one entry per packet).
    learned: Vec<Learned>,
    hops: HopCache,
}

impl Balancer {
    /// `net` holds each port's MAC and own addresses; the VIPs are added
    /// from the snapshot on `vip_ports`.
    pub fn new(
        engine: Engine,
        net: NetConfig,
        vip_ports: Vec<u16>,
        routes: Arc<RouteTable>,
        neigh: Arc<NeighSnapshot>,
        mtu: u16,
        ip_id_start: u16,
    ) -> Balancer {
        let mut b = Balancer {
            engine,
            net,
            vip_ports,
            vips: ahash::AHashSet::default(),
            vip_set: VipSet::default(),
            routes,
            neigh,
            ip_id: Cell::new(ip_id_start),
            mtu,
            learned: Vec::with_capacity(64),
            hops: HopCache::default(),
        };
        let snap = b.engine.snapshot().clone();
        b.update_vips(&snap);
        b
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

    /// A new configuration: the engine's services and the VIPs we answer for.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        self.update_vips(&snap);
        self.engine.set_snapshot(snap);
    }

    pub fn set_neighbours(&mut self, n: Arc<NeighSnapshot>) {
        self.neigh = n;
        self.hops.clear();
    }

    pub fn neighbours(&self) -> &Arc<NeighSnapshot> {
        &self.neigh
    }

    pub fn routes(&self) -> &Arc<RouteTable> {
        &self.routes
    }

    /// Neighbour facts learned since the last call.
    pub fn take_learned(&mut self) -> std::vec::Drain<'_, Learned> {
        self.learned.drain(..)
    }

    #[inline]
    pub fn has_learned(&self) -> bool {
        !self.learned.is_empty()
    }

    fn update_vips(&mut self, snap: &Snapshot) {
        let new: ahash::AHashSet<IpAddr> = snap.services.iter().map(|s| s.cfg.key.addr).collect();
        for &p in &self.vip_ports {
            if let Some(iface) = self.net.port_mut(p) {
                for old in self.vips.difference(&new) {
                    iface.remove_vip(old);
                }
                for v in new.difference(&self.vips) {
                    iface.add_vip(*v);
                }
            }
        }
        self.vip_set = VipSet::new(new.iter().copied());
        self.vips = new;
    }

    /// Decide one frame that arrived on `port`, rewriting it in place.
    pub fn process<B: PacketBuf>(&mut self, port: u16, buf: &mut B, now: Instant) -> Action {
        match parse_frame(buf.data()) {
            Ok(h) => self.process_parsed(port, buf, &h, now),
            Err(_) => Action::Drop(Drop::Malformed),
        }
    }

    /// True when `addr` is a VIP of the current configuration.
    #[inline]
    pub fn is_vip(&self, addr: &IpAddr) -> bool {
        self.vip_set.contains(addr)
    }

    /// Decide a burst of at most 32 frames that arrived on `port`.
    /// `heads[i]` are their parsed headers (`None`: did not parse) and
    /// `todo[i]` says whether frame i is this call's to decide (others, e.g.
    /// handed to another lcore, are left as they are). Plain TCP/UDP packets
    /// go through the engine together, so that their connection-table
    /// misses overlap; everything else takes [`Balancer::process_parsed`].
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        port: u16,
        bufs: &mut [B],
        heads: &[Option<Headers>],
        todo: &[bool],
        now: Instant,
        actions: &mut [Action],
    ) {
        const N: usize = 32;
        let n_in = bufs
            .len()
            .min(N)
            .min(heads.len())
            .min(todo.len())
            .min(actions.len());
        let mut pkts = [PLACEHOLDER; N];
        let mut idx = [0u8; N];
        let mut n = 0;
        for i in 0..n_in {
            if !todo[i] {
                continue;
            }
            let Some(h) = &heads[i] else {
                actions[i] = Action::Drop(Drop::Malformed);
                continue;
            };
            match self.plain(port, h) {
                Some(p) => {
                    pkts[n] = p;
                    idx[n] = i as u8;
                    n += 1;
                }
                None => actions[i] = self.process_parsed(port, &mut bufs[i], h, now),
            }
        }
        let mut verdicts = [Verdict::Drop(engine::DropReason::NoService); N];
        self.engine
            .process_burst(&pkts[..n], now, &mut verdicts[..n]);
        for k in 0..n {
            let i = idx[k] as usize;
            let Some(h) = &heads[i] else { continue };
            // Each arm stores into actions[i] itself: a shared temporary
            // copied out with wide loads after narrow stores stalls on
            // store forwarding (see forward_direct).
            match &verdicts[k] {
                Verdict::Forward(f) => {
                    let dir = pkts[k].dir;
                    match self.forward_direct(&mut bufs[i], h, f, dir) {
                        Some(p) => actions[i] = Action::Tx(p),
                        None => actions[i] = self.forward_with_env(port, &mut bufs[i], h, f, dir),
                    }
                }
                Verdict::Drop(r) => actions[i] = Action::Drop(Drop::Lb(*r)),
            }
        }
    }

    /// The engine's view of a plain TCP/UDP packet (not local, not ICMP,
    /// not a fragment), or `None` for anything else.
    #[inline]
    fn plain(&self, port: u16, h: &Headers) -> Option<Packet> {
        if !matches!(h.l3, L3::Ipv4 | L3::Ipv6) || h.is_fragment() {
            return None;
        }
        let proto = match h.protocol {
            IpProtocol::TCP => Protocol::Tcp,
            IpProtocol::UDP => Protocol::Udp,
            _ => return None,
        };
        let vip = self.vip_set.contains(&h.dst);
        if !vip && self.net.port(port).is_some_and(|i| i.is_own(&h.dst)) {
            return None;
        }
        Some(engine_packet(
            h,
            proto,
            if vip { Direction::In } else { Direction::Out },
        ))
    }

    /// [`Balancer::process`] for a frame the caller already parsed (`h`
    /// must describe `buf`).
    pub fn process_parsed<B: PacketBuf>(
        &mut self,
        port: u16,
        buf: &mut B,
        h: &Headers,
        now: Instant,
    ) -> Action {
        match h.l3 {
            L3::Arp => {
                return self
                    .local(port, buf, h)
                    .unwrap_or(Action::Drop(Drop::Net(net::DropReason::ArpNotOurs)))
            }
            L3::Ipv4 | L3::Ipv6 => {}
            _ => return Action::Drop(Drop::NotIp),
        }
        let icmp = h.protocol == IpProtocol::ICMP || h.protocol == IpProtocol::ICMPV6;
        if h.is_icmp_error() {
            return self.icmp_error(port, buf, h, now);
        }
        let own = self
            .net
            .port(port)
            .is_some_and(|i| i.is_own(&h.dst) && !self.vip_set.contains(&h.dst));
        if icmp || own {
            if let Some(a) = self.local(port, buf, h) {
                return a;
            }
            if icmp {
                return Action::Drop(Drop::Unsupported);
            }
        }
        if h.is_fragment() {
            return Action::Drop(Drop::Fragment);
        }
        let proto = match h.protocol {
            IpProtocol::TCP => Protocol::Tcp,
            IpProtocol::UDP => Protocol::Udp,
            _ => return Action::Drop(Drop::Unsupported),
        };
        let dir = if self.vip_set.contains(&h.dst) {
            Direction::In
        } else {
            Direction::Out
        };
        let pkt = engine_packet(h, proto, dir);
        match self.engine.process(&pkt, now) {
            Verdict::Forward(f) => self.forward(port, buf, h, &f, dir),
            Verdict::Drop(r) => Action::Drop(Drop::Lb(r)),
        }
    }

    /// ARP, neighbour discovery, echo, and traffic to our own addresses;
    /// `None` when the packet is not local after all.
    fn local<B: PacketBuf>(&mut self, port: u16, buf: &mut B, h: &Headers) -> Option<Action> {
        let Some(iface) = self.net.port(port) else {
            return Some(Action::Drop(Drop::NoRoute));
        };
        // A neighbour advertisement made from a solicitation may need 8 more
        // bytes (the link-layer address option).
        let len = buf.len();
        let grown = buf.append(8).is_some();
        let out = net::classify(buf.data_mut(), h, iface);
        if let Some(l) = out.learned {
            if self.learned.len() < self.learned.capacity() {
                self.learned.push(l);
            }
        }
        match out.action {
            net::Action::Reply { len: n } => {
                let cur = buf.len();
                if n <= cur {
                    buf.trim(cur - n);
                }
                Some(Action::Reply)
            }
            net::Action::Pass => {
                if grown {
                    buf.trim(buf.len() - len);
                }
                None
            }
            net::Action::Drop(r) => {
                if grown {
                    buf.trim(buf.len() - len);
                }
                Some(Action::Drop(Drop::Net(r)))
            }
        }
    }

    /// An ICMP error about one of our connections: find the connection from
    /// the quoted packet (which we sent, so its tuple is reversed) and
    /// translate or forward it like the connection's own packets.
    fn icmp_error<B: PacketBuf>(
        &mut self,
        port: u16,
        buf: &mut B,
        h: &Headers,
        now: Instant,
    ) -> Action {
        let Some(inner) = h.inner else {
            return Action::Drop(Drop::Malformed);
        };
        if !inner.has_ports {
            return Action::Drop(Drop::Unsupported);
        }
        let proto = match inner.protocol {
            IpProtocol::TCP => Protocol::Tcp,
            IpProtocol::UDP => Protocol::Udp,
            _ => return Action::Drop(Drop::Unsupported),
        };
        // Quoted VIP -> client: an error about a reply we sent for a
        // connection, reaching us from the client side: toward the server.
        let dir = if self.vip_set.contains(&inner.src) {
            Direction::In
        } else {
            Direction::Out
        };
        let key = Packet {
            proto,
            src: inner.dst,
            sport: inner.dst_port,
            dst: inner.src,
            dport: inner.src_port,
            tcp_flags: TcpFlags(0),
            dir,
            len: h.l3_len as u32,
        };
        match self.engine.lookup(&key, now) {
            Some(f) => self.forward(port, buf, h, &f, dir),
            None => Action::Drop(Drop::Lb(engine::DropReason::NoConnection)),
        }
    }

    /// Rewrite toward the real server (inbound) or the client (outbound).
    fn forward<B: PacketBuf>(
        &mut self,
        in_port: u16,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Action {
        match self.forward_direct(buf, h, f, dir) {
            Some(p) => Action::Tx(p),
            None => self.forward_with_env(in_port, buf, h, f, dir),
        }
    }

    /// The common case, rewritten without building an [`Action`]: NAT, DR
    /// and IPv4 IPIP to a next hop whose MAC is known, no ICMP error due.
    /// Returns the egress port, or `None` with the frame untouched (take
    /// [`Balancer::forward_with_env`]). A bare port comes back in a
    /// register; a returned `Action` (20 bytes, built with narrow stores
    /// and copied with wide loads) stalled on store forwarding, about 4 %
    /// of a worker's time at 1M flows.
    #[inline(never)]
    fn forward_direct<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Option<u16> {
        let mtu = self.mtu;
        let ip_id = &self.ip_id;
        let hop = hop_of(
            &mut self.hops,
            &self.routes,
            &self.neigh,
            &self.net,
            h,
            f,
            dir,
        )?;
        let egress = self.net.port(hop.port)?;
        let mac = hop.mac?;
        // NAT and DR: rewritten before any Env is built (apply_direct
        // declines tunnels and whatever may need an ICMP error).
        if forward::apply_direct(buf.data_mut(), h, f, dir, mac, egress.mac()) {
            return Some(hop.port);
        }
        let (need_local, need_reply) = forward::env_addrs_needed(h, f, mtu);
        if need_reply {
            return None;
        }
        let (local_v4, local_v6) = match (need_local, hop.local) {
            (false, _) => NO_ADDRS,
            (true, Some(l)) => l,
            (true, None) => addrs_for(egress, &target_of(h, f, dir)),
        };
        let env = Env {
            local_v4,
            local_v6,
            reply_v4: Ipv4Addr::UNSPECIFIED,
            reply_v6: Ipv6Addr::UNSPECIFIED,
            src_mac: egress.mac(),
            dst_mac: mac,
            mtu,
            ip_id,
        };
        forward::apply_direct_tunnel(buf, h, f, dir, &env).then_some(hop.port)
    }

    /// [`Balancer::forward`] for what [`Balancer::forward_direct`]
    /// declined: no route, an unresolved next hop, ICMP errors, IPv6 NAT,
    /// tunnels other than IPv4 IPIP.
    #[inline(never)]
    fn forward_with_env<B: PacketBuf>(
        &mut self,
        in_port: u16,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Action {
        let mtu = self.mtu;
        let hop = hop_of(
            &mut self.hops,
            &self.routes,
            &self.neigh,
            &self.net,
            h,
            f,
            dir,
        );
        let Some(hop) = hop.copied() else {
            return Action::Drop(Drop::NoRoute);
        };
        let Some(egress) = self.net.port(hop.port) else {
            return Action::Drop(Drop::NoRoute);
        };
        let (need_local, need_reply) = forward::env_addrs_needed(h, f, mtu);
        let (local_v4, local_v6) = match (need_local, hop.local) {
            (false, _) => NO_ADDRS,
            (true, Some(l)) => l,
            (true, None) => addrs_for(egress, &target_of(h, f, dir)),
        };
        let (reply_v4, reply_v6) = if need_reply {
            self.net
                .port(in_port)
                .map_or(NO_ADDRS, |i| addrs_for(i, &h.src))
        } else {
            NO_ADDRS
        };
        let mac = hop.mac;
        let env = Env {
            local_v4,
            local_v6,
            reply_v4,
            reply_v6,
            src_mac: egress.mac(),
            dst_mac: mac.unwrap_or(EthernetAddress([0; 6])),
            mtu,
            ip_id: &self.ip_id,
        };
        match forward::apply(buf, h, f, dir, &env) {
            Ok(Applied::Transmit) => match mac {
                Some(_) => Action::Tx(hop.port),
                None => Action::Hold {
                    port: hop.port,
                    next_hop: hop.next_hop,
                },
            },
            Ok(Applied::Reply(_)) => Action::Reply,
            Err(e) => Action::Drop(Drop::Fwd(e)),
        }
    }
}

/// The engine's view of a parsed TCP/UDP packet.
#[inline(always)]
fn engine_packet(h: &Headers, proto: Protocol, dir: Direction) -> Packet {
    Packet {
        proto,
        src: h.src,
        sport: h.src_port,
        dst: h.dst,
        dport: h.dst_port,
        tcp_flags: TcpFlags(h.tcp_flags.0),
        dir,
        len: h.l3_len as u32,
    }
}

/// The hop toward the packet's target from the cache (resolved and cached
/// on a miss). Takes the fields it needs, not the balancer, so that the
/// caller can go on reading the others while it holds the hop.
#[inline(always)]
fn hop_of<'a>(
    hops: &'a mut HopCache,
    routes: &RouteTable,
    neigh: &NeighSnapshot,
    net: &NetConfig,
    h: &Headers,
    f: &engine::Forward,
    dir: Direction,
) -> Option<&'a Hop> {
    let target = target_of(h, f, dir);
    let resolve = |with_local: bool| {
        let nh = routes.lookup(&target)?;
        let local = with_local.then(|| {
            net.port(nh.port)
                .map_or(NO_ADDRS, |i| addrs_for(i, &target))
        });
        Some(Hop {
            port: nh.port,
            next_hop: nh.addr,
            mac: neigh.lookup(nh.port, &nh.addr),
            local,
        })
    };
    match dir {
        Direction::In => hops.dest(f.dest, target, || resolve(true)),
        Direction::Out => hops.addr(target, || resolve(false)),
    }
}

/// Where a forwarded packet goes: the real server inbound, the client
/// outbound.
#[inline(always)]
fn target_of(h: &Headers, f: &engine::Forward, dir: Direction) -> IpAddr {
    match dir {
        Direction::In => f.daddr,
        Direction::Out => h.dst,
    }
}

/// No source addresses (not needed, or the port has none).
const NO_ADDRS: (Ipv4Addr, Ipv6Addr) = (Ipv4Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED);

/// The port's addresses to use as a source toward `dst`: the one on dst's
/// network if any, else the port's first of each family.
fn addrs_for(iface: &Iface, dst: &IpAddr) -> (Ipv4Addr, Ipv6Addr) {
    let mut v4 = Ipv4Addr::UNSPECIFIED;
    let mut v6 = Ipv6Addr::UNSPECIFIED;
    for c in iface.addrs() {
        match c.addr() {
            IpAddr::V4(a) if v4.is_unspecified() => v4 = a,
            IpAddr::V6(a) if v6.is_unspecified() && !a.is_unicast_link_local() => v6 = a,
            _ => {}
        }
    }
    match iface.source_for(dst) {
        Some(IpAddr::V4(a)) => v4 = a,
        Some(IpAddr::V6(a)) => v6 = a,
        None => {}
    }
    (v4, v6)
}
