//! The IPVS TCP state machine: three transition tables (INPUT, OUTPUT for
//! NAT, INPUT-ONLY for DR/TUN where replies bypass the balancer), flag
//! priority RST > SYN > FIN > ACK, per-state timeouts, and which states
//! count as active (Linux 6.1: ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK).

use serde::{Deserialize, Serialize};

/// IPVS TCP connection states, in the kernel's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

pub const NUM_TCP_STATES: usize = 11;

impl TcpState {
    pub const ALL: [TcpState; NUM_TCP_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state for its kernel number; out-of-range numbers give CLOSE.
    #[inline]
    pub fn from_u8(v: u8) -> TcpState {
        match Self::ALL.get(v as usize) {
            Some(s) => *s,
            None => TcpState::Close,
        }
    }

    /// The name `ipvsadm -Lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Counted in ActiveConn (Linux 6.1 rule); every other state is InActConn.
    #[inline]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

/// Which transition table a packet uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateDir {
    /// Client to real server, NAT connection.
    Input = 0,
    /// Real server to client, NAT only.
    Output = 1,
    /// Client to real server when replies bypass the balancer (DR, TUN).
    InputOnly = 2,
}

/// TCP header flags as on the wire (byte 13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    #[inline]
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    #[inline]
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    #[inline]
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    #[inline]
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }

    /// The row of the transition table: RST > SYN > FIN > ACK; `None` for a
    /// segment with none of them.
    #[inline]
    pub fn row(self) -> Option<usize> {
        if self.rst() {
            Some(ROW_RST)
        } else if self.syn() {
            Some(ROW_SYN)
        } else if self.fin() {
            Some(ROW_FIN)
        } else if self.ack() {
            Some(ROW_ACK)
        } else {
            None
        }
    }

    /// A segment that may open a new connection: SYN without ACK or RST.
    #[inline]
    pub fn opens(self) -> bool {
        self.syn() && !self.ack() && !self.rst()
    }
}

const ROW_SYN: usize = 0;
const ROW_FIN: usize = 1;
const ROW_ACK: usize = 2;
const ROW_RST: usize = 3;

use TcpState as S;

/// Next state per table, row (syn, fin, ack, rst), current state.
/// Columns: NONE ESTAB SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE
/// CLOSE_WAIT LAST_ACK LISTEN SYNACK.
#[rustfmt::skip]
static TABLES: [[[TcpState; NUM_TCP_STATES]; 4]; 3] = [
    // INPUT
    [
        [S::SynRecv, S::Established, S::Established, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv],
        [S::Close, S::CloseWait, S::SynSent, S::TimeWait, S::TimeWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::TimeWait],
        [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::Established],
        [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::SynRecv],
    ],
    // OUTPUT
    [
        [S::SynSent, S::Established, S::SynSent, S::SynRecv, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::Listen, S::SynRecv],
        [S::TimeWait, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::TimeWait, S::LastAck, S::Listen, S::TimeWait],
        [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Established, S::Established],
        [S::Close, S::Close, S::SynSent, S::Close, S::Close, S::TimeWait, S::Close, S::Close, S::Close, S::Close, S::Close],
    ],
    // INPUT-ONLY
    [
        [S::SynRecv, S::Established, S::Established, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv],
        [S::Close, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::TimeWait],
        [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::Established],
        [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::Close],
    ],
];

/// The state after a segment with `flags` in direction `dir`. A segment
/// without RST/SYN/FIN/ACK moves the connection to CLOSE, as in the kernel.
#[inline]
pub fn next_state(dir: StateDir, flags: TcpFlags, cur: TcpState) -> TcpState {
    match flags.row() {
        Some(row) => TABLES[dir as usize][row][cur as usize],
        None => TcpState::Close,
    }
}

/// Connection timeouts in seconds (`ipvsadm --set`, `--timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Per TCP state, indexed by `TcpState as usize`.
    pub tcp: [u32; NUM_TCP_STATES],
    pub udp: u32,
}

/// A new connection's timeout until its first state change.
pub const INITIAL_TIMEOUT_SECS: u32 = 3;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            //    NONE EST  SS   SR  FW   TW   CL  CW  LA  LI   SA
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
        }
    }
}

impl Timeouts {
    /// `--set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP; 0 leaves a value
    /// unchanged.
    pub fn set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// (tcp, tcpfin, udp) as `ipvsadm -L --timeout` prints them.
    pub fn triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }

    #[inline]
    pub fn tcp_ms(&self, s: TcpState) -> u64 {
        self.tcp[s as usize] as u64 * 1000
    }

    #[inline]
    pub fn udp_ms(&self) -> u64 {
        self.udp as u64 * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const FIN: TcpFlags = TcpFlags(TcpFlags::FIN);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);

    /// Expected rows, as (flags, [next state for each current state]),
    /// written out independently of the table layout above.
    fn check(dir: StateDir, rows: &[(TcpFlags, [&str; NUM_TCP_STATES])]) {
        for (flags, expect) in rows {
            for (i, cur) in TcpState::ALL.iter().enumerate() {
                assert_eq!(
                    next_state(dir, *flags, *cur).name(),
                    expect[i],
                    "{dir:?} flags {:#x} from {}",
                    flags.0,
                    cur.name()
                );
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn input_table() {
        check(
            StateDir::Input,
            &[
                (SYN, ["SYN_RECV", "ESTABLISHED", "ESTABLISHED", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV"]),
                (FIN, ["CLOSE", "CLOSE_WAIT", "SYN_SENT", "TIME_WAIT", "TIME_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "TIME_WAIT"]),
                (ACK, ["ESTABLISHED", "ESTABLISHED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "CLOSE", "LISTEN", "ESTABLISHED"]),
                (RST, ["CLOSE", "CLOSE", "CLOSE", "SYN_RECV", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "LAST_ACK", "LISTEN", "SYN_RECV"]),
            ],
        );
    }

    #[test]
    #[rustfmt::skip]
    fn output_table() {
        check(
            StateDir::Output,
            &[
                (SYN, ["SYN_SENT", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYN_SENT", "SYN_SENT", "SYN_SENT", "SYN_SENT", "SYN_SENT", "LISTEN", "SYN_RECV"]),
                (FIN, ["TIME_WAIT", "FIN_WAIT", "SYN_SENT", "TIME_WAIT", "FIN_WAIT", "TIME_WAIT", "CLOSE", "TIME_WAIT", "LAST_ACK", "LISTEN", "TIME_WAIT"]),
                (ACK, ["ESTABLISHED", "ESTABLISHED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "ESTABLISHED", "ESTABLISHED"]),
                (RST, ["CLOSE", "CLOSE", "SYN_SENT", "CLOSE", "CLOSE", "TIME_WAIT", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSE"]),
            ],
        );
    }

    #[test]
    #[rustfmt::skip]
    fn input_only_table() {
        check(
            StateDir::InputOnly,
            &[
                (SYN, ["SYN_RECV", "ESTABLISHED", "ESTABLISHED", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV", "SYN_RECV"]),
                (FIN, ["CLOSE", "FIN_WAIT", "SYN_SENT", "TIME_WAIT", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "TIME_WAIT"]),
                (ACK, ["ESTABLISHED", "ESTABLISHED", "SYN_SENT", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "CLOSE", "LISTEN", "ESTABLISHED"]),
                (RST, ["CLOSE", "CLOSE", "CLOSE", "SYN_RECV", "CLOSE", "CLOSE", "CLOSE", "CLOSE", "LAST_ACK", "LISTEN", "CLOSE"]),
            ],
        );
    }

    #[test]
    fn flag_priority_rst_syn_fin_ack() {
        let all = TcpFlags(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK | TcpFlags::RST);
        assert_eq!(
            next_state(StateDir::Input, all, TcpState::Established),
            TcpState::Close
        );
        let syn_fin_ack = TcpFlags(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK);
        // SYN wins over FIN: ESTABLISHED stays ESTABLISHED (not CLOSE_WAIT).
        assert_eq!(
            next_state(StateDir::Input, syn_fin_ack, TcpState::Established),
            TcpState::Established
        );
        let fin_ack = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(
            next_state(StateDir::Input, fin_ack, TcpState::Established),
            TcpState::CloseWait
        );
        // No flag at all: CLOSE.
        assert_eq!(
            next_state(
                StateDir::Input,
                TcpFlags(TcpFlags::PSH),
                TcpState::Established
            ),
            TcpState::Close
        );
    }

    #[test]
    fn opening_segment() {
        assert!(SYN.opens());
        assert!(!TcpFlags(TcpFlags::SYN | TcpFlags::ACK).opens());
        assert!(!TcpFlags(TcpFlags::SYN | TcpFlags::RST).opens());
        assert!(!ACK.opens());
    }

    #[test]
    fn default_timeouts_and_set() {
        let mut t = Timeouts::default();
        let secs: Vec<(&str, u32)> = TcpState::ALL
            .iter()
            .map(|s| (s.name(), t.tcp[*s as usize]))
            .collect();
        assert_eq!(
            secs,
            vec![
                ("NONE", 2),
                ("ESTABLISHED", 900),
                ("SYN_SENT", 120),
                ("SYN_RECV", 60),
                ("FIN_WAIT", 120),
                ("TIME_WAIT", 120),
                ("CLOSE", 10),
                ("CLOSE_WAIT", 60),
                ("LAST_ACK", 30),
                ("LISTEN", 120),
                ("SYNACK", 120),
            ]
        );
        assert_eq!(t.udp, 300);
        assert_eq!(t.triple(), (900, 120, 300));
        t.set(0, 30, 0);
        assert_eq!(t.triple(), (900, 30, 300));
        t.set(7200, 0, 60);
        assert_eq!(t.triple(), (7200, 30, 60));
    }

    #[test]
    fn active_states_linux_6_1() {
        let active: Vec<&str> = TcpState::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.name())
            .collect();
        assert_eq!(
            active,
            vec!["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]
        );
    }
}
