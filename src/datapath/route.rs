//! Where a decided frame goes: the hop (egress port, next hop, its MAC)
//! from the cache, route table and neighbour snapshot, then the rewrite
//! ([`crate::lb::forward`]) for it; or, for a new connection no real server
//! can take, back to the client as port unreachable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Datapath, Fragment, HoldFor, Hop, HopCache, Outcome};
use crate::drops::DropReason;
use crate::ids::PortIndex;
use crate::lb::engine::{self, Direction};
use crate::lb::forward::{self, icmp, Applied, Env, Reply};
use crate::net::{Iface, NeighSnapshot, NetConfig, RouteTable};
use crate::wire::buf::PacketBuf;
use crate::wire::parse::Headers;
use crate::wire::EthernetAddress;

impl<B: PacketBuf> Datapath<B> {
    /// Rewrite toward the real server (inbound) or the client (outbound).
    pub(super) fn forward(
        &mut self,
        in_port: PortIndex,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Outcome {
        match self.forward_direct(buf, h, f, dir) {
            Some(p) => Outcome::Tx(p),
            None => self.forward_with_env(in_port, buf, h, f, dir),
        }
    }

    /// The common case, rewritten without building an [`Outcome`]: NAT, DR
    /// and IPv4 IPIP to a next hop whose MAC is known, no ICMP error due.
    /// Returns the egress port, or `None` with the frame untouched (take
    /// [`Datapath::forward_with_env`]). A bare port comes back in a
    /// register; a returned 20-byte action ( built with narrow stores
    /// and copied with wide loads) stalled on store forwarding, about 4 %
    /// of a worker's time at 1M flows.
    #[inline(never)]
    pub(super) fn forward_direct(
        &mut self,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Option<PortIndex> {
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
        let mtu = egress.mtu();
        if h.l3_len > mtu {
            return None;
        }
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
            refragment: false,
            ip_id,
        };
        forward::apply_direct_tunnel(buf, h, f, dir, &env).then_some(hop.port)
    }

    /// [`Datapath::forward`] for what [`Datapath::forward_direct`]
    /// declined: no route, an unresolved next hop, ICMP errors, IPv6 NAT,
    /// tunnels other than IPv4 IPIP.
    #[inline(never)]
    pub(super) fn forward_with_env(
        &mut self,
        in_port: PortIndex,
        buf: &mut B,
        h: &Headers,
        f: &engine::Forward,
        dir: Direction,
    ) -> Outcome {
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
            return Outcome::Drop(DropReason::NoRoute);
        };
        let Some(egress) = self.net.port(hop.port) else {
            return Outcome::Drop(DropReason::NoRoute);
        };
        let mtu = egress.mtu();
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
            refragment: self.refragment,
            ip_id: &self.ip_id,
        };
        match forward::apply(buf, h, f, dir, &env) {
            Ok(Applied::Transmit) => match mac {
                Some(_) => Outcome::Tx(hop.port),
                None => {
                    self.hold_next = HoldFor::Neighbour {
                        port: hop.port,
                        next_hop: hop.next_hop,
                    };
                    Outcome::Hold
                }
            },
            Ok(Applied::Fragment) => {
                self.hold_next = HoldFor::Fragment(Fragment {
                    port: hop.port,
                    next_hop: hop.next_hop,
                    mtu,
                    l3: h.l3_offset,
                    resolved: mac.is_some(),
                });
                Outcome::Hold
            }
            Ok(Applied::Reply(_)) => {
                if self.icmp_limit.allow(&h.src, self.now) {
                    Outcome::Tx(in_port)
                } else {
                    Outcome::Drop(DropReason::IcmpRateLimited)
                }
            }
            Err(e) => Outcome::Drop(e),
        }
    }
}

impl<B: PacketBuf> Datapath<B> {
    /// A new connection no real server can take ([`engine::Verdict::Refuse`]):
    /// ICMP port unreachable from the VIP (the packet's destination, as the
    /// kernel's `icmp_send` answers for a local address) back out the
    /// interface it came in on, within the worker's ICMP rate limits. Held
    /// back by them: dropped as `IcmpRateLimited`, unbuilt (a SYN flood at
    /// a service whose real servers are all at weight 0 takes this path
    /// with every frame); about a packet no error may answer: dropped as
    /// `NoDest`. Cold: never a forwarded frame's path.
    #[cold]
    #[inline(never)]
    pub(super) fn refuse(&mut self, in_port: PortIndex, buf: &mut B, h: &Headers) -> Outcome {
        let (reply_v4, reply_v6) = match h.dst {
            IpAddr::V4(a) => (a, Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(a) => (Ipv4Addr::UNSPECIFIED, a),
        };
        // What generating an error reads: its source and the IP id (the
        // MACs are the frame's, swapped).
        let env = Env {
            local_v4: Ipv4Addr::UNSPECIFIED,
            local_v6: Ipv6Addr::UNSPECIFIED,
            reply_v4,
            reply_v6,
            src_mac: EthernetAddress([0; 6]),
            dst_mac: EthernetAddress([0; 6]),
            mtu: 0,
            refragment: false,
            ip_id: &self.ip_id,
        };
        if !icmp::may_answer(buf.data(), h, &env, Reply::PortUnreachable) {
            return Outcome::Drop(DropReason::NoDest);
        }
        if !self.icmp_limit.allow(&h.src, self.now) {
            self.refusals.rate_limited += 1;
            return Outcome::Drop(DropReason::IcmpRateLimited);
        }
        match icmp::port_unreachable(buf, h, &env) {
            Ok(_) => {
                self.refusals.answered += 1;
                Outcome::Tx(in_port)
            }
            Err(e) => Outcome::Drop(e),
        }
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
    match dir {
        Direction::In => hops.dest(f.dest, target, || resolve(routes, neigh, net, target, true)),
        Direction::Out => hops.addr(target, || resolve(routes, neigh, net, target, false)),
    }
}

/// A hop cache miss: the route and neighbour toward `target`. Out of line:
/// as a closure over them, what it needs was gathered for every packet.
#[cold]
#[inline(never)]
fn resolve(
    routes: &RouteTable,
    neigh: &NeighSnapshot,
    net: &NetConfig,
    target: IpAddr,
    with_local: bool,
) -> Option<Hop> {
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
