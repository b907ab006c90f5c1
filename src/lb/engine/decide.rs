//! Deciding one packet: the established-connection fast path, and around
//! it every other case (replies, SYNs on old connections, real servers gone,
//! expired entries); the TCP state machine as a table.

use super::types::bump;
use super::{ConnState, Direction, DropReason, Engine, Forward, PacketMeta, Prepared, Verdict};
use crate::lb::conntable::{self, flag, NO_HINT};
use crate::lb::service::Protocol;
use crate::lb::tcp_state::{next_state, StateDir, TcpFlags, TcpState, NUM_TCP_STATES};
use crate::lb::time::Timestamp;

/// Index of the UDP timeout in [`Engine`]'s timeout table (after the TCP
/// states).
pub(super) const UDP_TMO: usize = NUM_TCP_STATES;

pub(super) type Transitions = [[[TcpState; NUM_TCP_STATES]; 16]; 3];

/// The flag bits the state machine looks at (FIN, SYN, RST, ACK) as 0..16.
#[inline(always)]
pub(super) fn flag_bits(f: TcpFlags) -> usize {
    (f.0 & 0x07 | (f.0 & TcpFlags::ACK) >> 1) as usize
}

/// [`next_state`] for every direction, flag combination and state.
pub(super) fn transitions() -> Transitions {
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

#[inline]
pub(super) fn after(now: Timestamp, ms: u64) -> Timestamp {
    Timestamp(now.0.saturating_add(ms))
}

impl Engine {
    /// Decide one packet.
    #[inline]
    pub fn process(&mut self, pkt: &PacketMeta, now: Timestamp) -> Verdict {
        let p = Self::prepare(pkt);
        self.process_prepared(pkt, &p, now)
    }

    /// Decide one packet whose key was prepared with [`Engine::prepare`].
    pub fn process_prepared(&mut self, pkt: &PacketMeta, p: &Prepared, now: Timestamp) -> Verdict {
        self.process_hinted(pkt, p, NO_HINT, now)
    }

    /// The established-connection fast path (live connection, not a SYN
    /// inbound); everything else goes to [`Engine::process_other`].
    #[inline(always)]
    fn process_hinted(
        &mut self,
        pkt: &PacketMeta,
        p: &Prepared,
        hint: u32,
        now: Timestamp,
    ) -> Verdict {
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
    pub(super) fn decide_into(
        &mut self,
        pkt: &PacketMeta,
        p: &Prepared,
        hint: u32,
        now: Timestamp,
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
    fn process_other(&mut self, pkt: &PacketMeta, p: &Prepared, now: Timestamp) -> Verdict {
        // A drop is counted once, by whoever ends the frame (the worker).
        let v = match pkt.dir {
            Direction::In => self.inbound(pkt, p, now),
            Direction::Out => self.outbound(pkt, p, now),
        };
        if v == Verdict::Refuse {
            bump(&self.counters.refused);
        }
        v
    }

    fn outbound(&mut self, pkt: &PacketMeta, p: &Prepared, now: Timestamp) -> Verdict {
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

    fn inbound(&mut self, pkt: &PacketMeta, p: &Prepared, now: Timestamp) -> Verdict {
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
    fn inbound_special(
        &mut self,
        i: u32,
        pkt: &PacketMeta,
        p: &Prepared,
        now: Timestamp,
    ) -> Verdict {
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
    pub(super) fn existing(
        &mut self,
        i: u32,
        pkt: &PacketMeta,
        dir: StateDir,
        now: Timestamp,
    ) -> Option<Verdict> {
        let mut v = Verdict::Drop(DropReason::NoService);
        self.existing_into(i, pkt, dir, now, &mut v).then_some(v)
    }

    /// [`Engine::existing`] into `v` (untouched when it returns false).
    #[inline(always)]
    fn existing_into(
        &mut self,
        i: u32,
        pkt: &PacketMeta,
        dir: StateDir,
        now: Timestamp,
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
        let vaddr = conntable::ip_from16(c.vaddr, c.has(flag::V6));
        let fwd = Forward::from_dest(Some(i), c.dest, d, vaddr, c.vport, c.rport, state);
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
    pub fn lookup(&mut self, pkt: &PacketMeta, now: Timestamp) -> Option<Forward> {
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
        let vaddr = conntable::ip_from16(c.vaddr, c.has(flag::V6));
        d.pkts[out as usize] += 1;
        d.bytes[out as usize] += pkt.len as u64;
        Some(Forward::from_dest(
            Some(i),
            c.dest,
            d,
            vaddr,
            c.vport,
            c.rport,
            state,
        ))
    }
}
