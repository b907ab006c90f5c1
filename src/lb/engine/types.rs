//! What goes into the engine and what comes out: packets, verdicts, drop
//! reasons, connection states, and the engine's counters.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::slab::HotDest;
use crate::lb::dest::FwdMethod;
use crate::lb::service::Protocol;
use crate::lb::tcp_state::{TcpFlags, TcpState};

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to a virtual service.
    In,
    /// Real server to client (a NAT reply).
    Out,
}

/// What the engine needs of a parsed packet: its flow (protocol and both
/// endpoints), TCP flags, direction and length. Not the packet itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
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

/// Why a packet was not forwarded: the crate's one taxonomy.
pub use crate::drops::DropReason;

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
    /// The real server's slot in this engine ([`Engine::dest`](super::Engine::dest)).
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

impl Forward {
    /// To real server slot `dest` (`d`), port `dport`, for a packet to
    /// `vaddr:vport`.
    #[inline(always)]
    pub(super) fn from_dest(
        conn: Option<u32>,
        dest: u32,
        d: &HotDest,
        vaddr: IpAddr,
        vport: u16,
        dport: u16,
        state: ConnState,
    ) -> Self {
        Forward {
            conn,
            new: false,
            dest,
            fwd: d.fwd,
            daddr: d.daddr,
            dport,
            vaddr,
            vport,
            state,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward(Forward),
    Drop(DropReason),
    /// A packet that may open a connection, to a service, but no real
    /// server can take it (none, all at weight 0 or over their upper
    /// threshold, the scheduler's own refusal): the kernel's `ip_vs_leave`.
    /// The client is to be answered with ICMP port unreachable (TCP and
    /// UDP alike: no TCP stack is there to reset), the packet dropped, as
    /// [`DropReason::NoDest`] when no error may be sent. No connection or
    /// template was made, no statistic counted but
    /// [`EngineCounters::refused`]. The cases the kernel drops without an
    /// error (a TCP segment other than a SYN, a full table) stay
    /// [`Verdict::Drop`].
    Refuse,
}

/// Per-lcore engine counters, readable from other threads.
#[derive(Debug, Default)]
pub struct EngineCounters {
    pub(super) created: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) rescheduled: AtomicU64,
    pub(super) embryonic_evicted: AtomicU64,
    pub(super) refused: AtomicU64,
}

#[inline]
pub(super) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

impl EngineCounters {
    /// Connections created.
    pub fn created(&self) -> u64 {
        self.created.load(Relaxed)
    }
    /// Connections in SYN_RECV given up for a new one when the table was
    /// full (`Settings::evict_embryonic`).
    pub fn embryonic_evicted(&self) -> u64 {
        self.embryonic_evicted.load(Relaxed)
    }
    /// Connections gone (timed out or expired early).
    pub fn expired(&self) -> u64 {
        self.expired.load(Relaxed)
    }
    /// New connections refused: no real server could take them
    /// ([`Verdict::Refuse`]).
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }
    /// Connections expired early so that a new one could be scheduled
    /// (conn_reuse_mode, expire_nodest_conn).
    pub fn rescheduled(&self) -> u64 {
        self.rescheduled.load(Relaxed)
    }
}
