//! Sans-IO L2/L3 plumbing for the workers: answering ARP, neighbour
//! discovery and ping for our addresses in place, learning neighbours,
//! holding packets until their next hop resolves, routing.
//!
//! Who does what:
//!
//! - A worker parses a frame ([`crate::wire::parse_frame`]) and calls
//!   [`classify`] with the receiving port's [`Iface`]. ARP, NS/NA and echo
//!   requests to us are rewritten into their reply in the same buffer
//!   ([`Action::Reply`]: send it back out of the same port); what it learns
//!   about neighbours comes back in [`Outcome::learned`], which the worker
//!   reports through its [`LearnTx`] (never blocking); everything not ours
//!   is [`Action::Pass`] (the load balancer's). Drops carry a
//!   [`DropReason`] the worker counts in a [`DropCounters`].
//! - The control thread owns the [`NeighTable`], applies the reports
//!   ([`NeighTable::apply`]), expires entries, and publishes
//!   [`NeighSnapshot`]s ([`SnapshotTx::publish`]); workers pick them up
//!   between bursts ([`SnapshotRx::latest`]).
//! - A worker whose packet needs a MAC the snapshot lacks queues it in its
//!   [`Pending`] and sends the request [`arp::build_request`] /
//!   [`nd::build_solicit`] when told to; on a new snapshot it calls
//!   [`Pending::take_resolved`], periodically [`Pending::expire`] and
//!   [`Pending::poll_requests`].
//! - [`RouteTable`] gives a destination's egress port and next hop; it is
//!   meant to be consulted per new connection (or per destination), the
//!   result cached there, not per packet.
//!
//! Frames this module builds are untagged Ethernet II; [`vlan::retag`]
//! gives them their interface's tag on the way out.

pub mod addr;
pub mod addrset;
pub mod arp;
pub mod echo;
pub mod fragment;
pub mod icmp_limit;
pub mod iface;
pub mod learn;
pub mod nd;
pub mod neigh;
pub mod pending;
pub mod policy;
pub mod publish;
pub mod reassembly;
pub mod route;
pub mod vlan;

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod fuzz;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzzkit;
#[cfg(test)]
pub(crate) mod testutil;

pub use addr::IpCidr;
pub use addrset::AddrSet;
pub use icmp_limit::{IcmpLimitConfig, IcmpLimiter};
pub use iface::{AddrKind, Iface, Ingress, NetConfig};
pub use learn::{learn_channel, Evidence, LearnRx, LearnTx, Learned};
pub use neigh::{NeighConfig, NeighSnapshot, NeighTable};
pub use pending::{Pending, PendingConfig, RequestLimiter, Resolved};
pub use publish::{snapshot_channel, SnapshotRx, SnapshotTx};
pub use route::{NextHop, RouteTable};

use core::fmt;

use crate::wire::parse::{Headers, L3};
use crate::wire::{icmpv4, icmpv6, IpProtocol};

/// Why a frame was dropped here: the crate's one taxonomy.
pub use crate::drops::DropReason;

/// What to do with the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Not ours: hand it to the load balancer.
    Pass,
    /// The buffer now holds the reply in its first `len` bytes: send it out
    /// of the port it came in on.
    Reply { len: usize },
    /// Free it and count the reason.
    Drop(DropReason),
    /// The host's own traffic: give it, untouched, to the port's kernel
    /// twin (only on an interface [`Iface::with_twin`]).
    Kernel,
}

/// [`classify`]'s verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    /// A neighbour mapping seen in the frame: report it
    /// ([`Learned::worth_reporting`], [`LearnTx::send`]).
    pub learned: Option<Learned>,
}

impl Outcome {
    pub const PASS: Outcome = Outcome {
        action: Action::Pass,
        learned: None,
    };

    #[inline]
    pub const fn drop(r: DropReason) -> Outcome {
        Outcome {
            action: Action::Drop(r),
            learned: None,
        }
    }

    #[inline]
    pub const fn reply(len: usize) -> Outcome {
        Outcome {
            action: Action::Reply { len },
            learned: None,
        }
    }

    /// For the kernel twin when the interface has one, else dropped for
    /// `r`.
    #[inline]
    pub fn kernel_or(iface: &Iface, r: DropReason) -> Outcome {
        Outcome {
            action: if iface.has_twin() {
                Action::Kernel
            } else {
                Action::Drop(r)
            },
            learned: None,
        }
    }

    #[inline]
    pub const fn with(mut self, learned: Option<Learned>) -> Outcome {
        self.learned = learned;
        self
    }
}

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The buffer is too short.
    NoRoom,
    /// The port has no address of the family to send from.
    NoSource,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::NoRoom => "buffer too short",
            BuildError::NoSource => "no source address of that family on the port",
        })
    }
}

impl std::error::Error for BuildError {}

/// The slow-path classification of one received frame.
///
/// `buf` starts with the frame that `h` was parsed from
/// (`h.l3_end() + h.padding` bytes); any bytes after it are writable room
/// (the mbuf's tailroom), which only a neighbour advertisement may need
/// (up to 8 bytes more than the solicitation). `iface` is the receiving
/// port's configuration.
///
/// Cheap for the common case (TCP/UDP to a VIP): a few compares on `h` and
/// a linear scan of the port's own addresses before [`Action::Pass`].
pub fn classify(buf: &mut [u8], h: &Headers, iface: &Iface) -> Outcome {
    match h.l3 {
        L3::Arp => arp::process(buf, h, iface),
        L3::Ipv4 => {
            if h.protocol == IpProtocol::ICMP
                && h.l4_parsed
                && h.icmp_type == icmpv4::Message::ECHO_REQUEST.0
            {
                return echo(buf, h, iface);
            }
            local_or_pass(h, iface)
        }
        L3::Ipv6 => {
            if h.protocol == IpProtocol::ICMPV6 && h.l4_parsed {
                match icmpv6::Message(h.icmp_type) {
                    icmpv6::Message::NEIGHBOR_SOLICIT | icmpv6::Message::NEIGHBOR_ADVERT => {
                        return nd::process(buf, h, iface)
                    }
                    icmpv6::Message::ECHO_REQUEST => return echo(buf, h, iface),
                    // RS, RA, redirect; MLD query/report/done, MLDv2 report.
                    icmpv6::Message(133..=137 | 130..=132 | 143) => {
                        return Outcome::kernel_or(iface, DropReason::Icmpv6Control)
                    }
                    _ => {}
                }
            }
            local_or_pass(h, iface)
        }
        L3::Other => Outcome::PASS,
    }
}

/// An echo request: answered here for a VIP, and for an own address
/// unless the kernel twin has it.
#[inline]
fn echo(buf: &mut [u8], h: &Headers, iface: &Iface) -> Outcome {
    match iface.lookup(&h.dst) {
        Some(AddrKind::Own) if iface.has_twin() => Outcome::kernel_or(iface, DropReason::Local),
        Some(_) => echo::reply_in_place(buf, h, iface),
        None => Outcome::PASS,
    }
}

#[inline]
fn local_or_pass(h: &Headers, iface: &Iface) -> Outcome {
    if iface.is_own(&h.dst) && !iface.is_vip(&h.dst) {
        Outcome::kernel_or(iface, DropReason::Local)
    } else {
        Outcome::PASS
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::wire::parse_frame;

    fn run(frame: &[u8]) -> Outcome {
        let mut buf = frame.to_vec();
        buf.resize(frame.len() + 64, 0);
        let h = parse_frame(frame).unwrap();
        classify(&mut buf, &h, &iface())
    }

    #[test]
    fn table() {
        // (description, frame, expected action kind)
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("tcp to VIP", tcp4(OWN4_PEER, VIP4, 80), "pass"),
            ("tcp to own address", tcp4(OWN4_PEER, OWN4, 22), "local"),
            ("tcp to elsewhere", tcp4(OWN4_PEER, "192.0.2.9", 80), "pass"),
            ("udp6 to own", udp6(OWN6_PEER, OWN6), "local"),
            ("udp6 to VIP", udp6(OWN6_PEER, VIP6), "pass"),
            (
                "echo4 to own",
                echo4_frame(OWN4_PEER, OWN4, b"ping"),
                "reply",
            ),
            (
                "echo4 to VIP",
                echo4_frame(OWN4_PEER, VIP4, b"ping"),
                "reply",
            ),
            (
                "echo4 to other",
                echo4_frame(OWN4_PEER, "192.0.2.9", b"x"),
                "pass",
            ),
            (
                "echo6 to own",
                echo6_frame(OWN6_PEER, OWN6, b"ping"),
                "reply",
            ),
            (
                "echo6 to other",
                echo6_frame(OWN6_PEER, "2001:db8::99", b"x"),
                "pass",
            ),
            (
                "arp for VIP",
                arp_frame(1, PEER_MAC, OWN4_PEER, VIP4),
                "reply",
            ),
            (
                "arp for other",
                arp_frame(1, PEER_MAC, OWN4_PEER, "10.0.0.77"),
                "arp_not_ours",
            ),
            ("ns for own", ns_frame(OWN6_PEER, OWN6, true), "reply"),
            (
                "ns for other",
                ns_frame(OWN6_PEER, "2001:db8::77", true),
                "nd_not_ours",
            ),
            (
                "router advert",
                icmp6_frame(134, OWN6_PEER, "ff02::1"),
                "icmpv6_control",
            ),
            (
                "echo6 reply to own",
                icmp6_frame(129, OWN6_PEER, OWN6),
                "local",
            ),
        ];
        for (desc, f, want) in cases {
            let got = match run(&f).action {
                Action::Pass => "pass",
                Action::Reply { .. } => "reply",
                Action::Kernel => "kernel",
                Action::Drop(r) => r.name(),
            };
            assert_eq!(got, want, "{desc}");
        }
    }
}
