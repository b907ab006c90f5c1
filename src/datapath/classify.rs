//! What a parsed frame is and who decides it: plain TCP/UDP goes to the
//! connection engine in a batch, local traffic (ARP, ND, ping, our own
//! addresses) to [`crate::net`], ICMP errors to their connection.

use std::net::{IpAddr, Ipv4Addr};

use super::{Datapath, HoldFor, Outcome, BURST};
use crate::drops::DropReason;
use crate::ids::PortIndex;
use crate::lb::engine::{Direction, PacketMeta, Verdict};
use crate::lb::service::Protocol;
use crate::lb::tcp_state::TcpFlags;
use crate::lb::time::Timestamp;
use crate::net;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::{Headers, L3};
use crate::wire::IpProtocol;

/// Filler for unused slots of a burst's packet array.
const PLACEHOLDER: PacketMeta = PacketMeta {
    proto: Protocol::Tcp,
    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    sport: 0,
    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    dport: 0,
    tcp_flags: TcpFlags(0),
    dir: Direction::In,
    len: 0,
};

impl<B: PacketBuf> Datapath<B> {
    /// Decide the frames of a parsed burst with `todo[i]` set (the others
    /// already have their outcome). Plain TCP/UDP frames go through the
    /// engine together, so that their connection-table misses overlap;
    /// everything else one by one.
    pub(super) fn decide_burst(
        &mut self,
        port: PortIndex,
        bufs: &mut [B],
        heads: &[Headers],
        todo: &[bool],
        now: Timestamp,
        out: &mut [Outcome],
    ) {
        let mut pkts = [PLACEHOLDER; BURST];
        let mut idx = [0u8; BURST];
        let mut n = 0;
        for i in 0..bufs.len() {
            if !todo[i] {
                continue;
            }
            match self.plain(port, &heads[i]) {
                Some(p) => {
                    pkts[n] = p;
                    idx[n] = i as u8;
                    n += 1;
                }
                None => {
                    out[i] = self.decide_one(port, &mut bufs[i], &heads[i], now);
                    self.note_hold(i, out[i]);
                }
            }
        }
        let mut verdicts = [Verdict::Drop(DropReason::NoService); BURST];
        self.engine
            .process_burst(&pkts[..n], now, &mut verdicts[..n]);
        for k in 0..n {
            let i = idx[k] as usize;
            let h = &heads[i];
            // Each arm stores into out[i] itself: a shared temporary copied
            // out with wide loads after narrow stores stalls on store
            // forwarding (see forward_direct).
            match &verdicts[k] {
                Verdict::Forward(f) => {
                    let dir = pkts[k].dir;
                    match self.forward_direct(&mut bufs[i], h, f, dir) {
                        Some(p) => out[i] = Outcome::Tx(p),
                        None => {
                            out[i] = self.forward_with_env(port, &mut bufs[i], h, f, dir);
                            self.note_hold(i, out[i]);
                        }
                    }
                }
                v => out[i] = dropped(v),
            }
        }
        // Refusals are answered after the loop, when the engine counted
        // new ones: every instruction of the loop is paid by each
        // forwarded frame, and answering needs the frame and its headers
        // at hand.
        let refused = self.engine.counters().refused();
        if refused != self.refused_seen {
            self.refused_seen = refused;
            self.answer_refusals(port, bufs, heads, &verdicts[..n], &idx[..n], out);
        }
    }

    /// The frames of a burst the engine refused ([`Verdict::Refuse`]):
    /// answered with port unreachable ([`Datapath::refuse`]).
    #[cold]
    #[inline(never)]
    fn answer_refusals(
        &mut self,
        port: PortIndex,
        bufs: &mut [B],
        heads: &[Headers],
        verdicts: &[Verdict],
        idx: &[u8],
        out: &mut [Outcome],
    ) {
        for (v, &i) in verdicts.iter().zip(idx) {
            if *v == Verdict::Refuse {
                let i = i as usize;
                out[i] = self.refuse(port, &mut bufs[i], &heads[i]);
            }
        }
    }

    /// Remember where frame `i` waits when its outcome is a hold.
    #[inline]
    fn note_hold(&mut self, i: usize, o: Outcome) {
        if o == Outcome::Hold {
            self.holds[i] = self.hold_next;
        }
    }

    /// The engine's view of a plain TCP/UDP packet (not local, not ICMP,
    /// not a fragment), or `None` for anything else.
    #[inline]
    fn plain(&self, port: PortIndex, h: &Headers) -> Option<PacketMeta> {
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

    /// One frame that is not plain TCP/UDP (or that `plain` declined).
    fn decide_one(&mut self, port: PortIndex, buf: &mut B, h: &Headers, now: Timestamp) -> Outcome {
        match h.l3 {
            L3::Arp => {
                return self
                    .local(port, buf, h)
                    .unwrap_or(Outcome::Drop(DropReason::ArpNotOurs))
            }
            L3::Ipv4 | L3::Ipv6 => {}
            // LLDP, LACP and the like are the host's.
            _ => return self.kernel_or(port, DropReason::NotIp),
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
                return Outcome::Drop(DropReason::UnsupportedProtocol);
            }
        }
        if h.is_fragment() {
            self.hold_next = HoldFor::Reassemble { port };
            return Outcome::Hold;
        }
        let proto = match h.protocol {
            IpProtocol::TCP => Protocol::Tcp,
            IpProtocol::UDP => Protocol::Udp,
            _ => return Outcome::Drop(DropReason::UnsupportedProtocol),
        };
        let dir = if self.vip_set.contains(&h.dst) {
            Direction::In
        } else {
            Direction::Out
        };
        let pkt = engine_packet(h, proto, dir);
        match self.engine.process(&pkt, now) {
            Verdict::Forward(f) => self.forward(port, buf, h, &f, dir),
            Verdict::Drop(r) => Outcome::Drop(r),
            Verdict::Refuse => self.refuse(port, buf, h),
        }
    }

    /// ARP, neighbour discovery, echo, and traffic to our own addresses;
    /// `None` when the frame is not local after all.
    fn local(&mut self, port: PortIndex, buf: &mut B, h: &Headers) -> Option<Outcome> {
        let Some(iface) = self.net.port(port) else {
            return Some(Outcome::Drop(DropReason::NoRoute));
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
                Some(Outcome::Tx(port))
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
                Some(Outcome::Drop(r))
            }
            net::Action::Kernel => {
                if grown {
                    buf.trim(buf.len() - len);
                }
                Some(Outcome::Kernel)
            }
        }
    }

    /// [`Outcome::Kernel`] when interface `port` has a kernel twin, else
    /// the drop.
    #[inline]
    pub(super) fn kernel_or(&self, port: PortIndex, r: DropReason) -> Outcome {
        if self.has_twin(port) {
            Outcome::Kernel
        } else {
            Outcome::Drop(r)
        }
    }

    /// An ICMP error about one of our connections: find the connection from
    /// the quoted packet (which we sent, so its tuple is reversed) and
    /// translate or forward it like the connection's own packets.
    fn icmp_error(&mut self, port: PortIndex, buf: &mut B, h: &Headers, now: Timestamp) -> Outcome {
        let Some(inner) = h.inner else {
            return Outcome::Drop(DropReason::Malformed);
        };
        if !inner.has_ports {
            return Outcome::Drop(DropReason::UnsupportedProtocol);
        }
        let proto = match inner.protocol {
            IpProtocol::TCP => Protocol::Tcp,
            IpProtocol::UDP => Protocol::Udp,
            _ => return Outcome::Drop(DropReason::UnsupportedProtocol),
        };
        // Quoted VIP -> client: an error about a reply we sent for a
        // connection, reaching us from the client side: toward the server.
        let dir = if self.vip_set.contains(&inner.src) {
            Direction::In
        } else {
            Direction::Out
        };
        let key = PacketMeta {
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
            // About the host's own traffic (a BGP session's frag needed).
            None if self.net.port(port).is_some_and(|i| i.is_own(&h.dst)) => {
                self.kernel_or(port, DropReason::NoConnection)
            }
            None => Outcome::Drop(DropReason::NoConnection),
        }
    }
}

/// A verdict's outcome when it is not to forward: its drop (a refusal's,
/// `NoDest`, when it cannot be answered; see [`Datapath::refuse`]).
#[inline(always)]
fn dropped(v: &Verdict) -> Outcome {
    match v {
        Verdict::Drop(r) => Outcome::Drop(*r),
        _ => Outcome::Drop(DropReason::NoDest),
    }
}

/// The engine's view of a parsed TCP/UDP packet.
#[inline(always)]
fn engine_packet(h: &Headers, proto: Protocol, dir: Direction) -> PacketMeta {
    PacketMeta {
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
