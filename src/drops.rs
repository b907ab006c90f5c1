//! The one drop taxonomy: every reason a frame can end without leaving a
//! port, whichever layer decides it (the parser, the input checks, the
//! connection engine, local ARP/ND/ping, the rewrite, the neighbour hold,
//! the worker loop). Like the kernel's `enum skb_drop_reason`, one flat
//! list that every layer returns (`lb::engine::Verdict::Drop`,
//! `net::Action::Drop`, the rewrite's `Err`, the hold's refusal): each
//! reason has one counter, one unique `snake_case` name used by `rvsadm
//! --counters`, the `--json` reports and the shutdown report, and one line
//! of documentation ([`DropReason::doc`], listed in docs/counters.md). A
//! drop is counted once, by whoever ends the frame's custody.
//!
//! With it, every worker balances exactly (see [`Tally`]):
//! `rx + handoff_in + originated + from_kernel = tx + handoff_out + held + reassembled + to_kernel + dropped`.

use std::fmt;

/// Declares [`DropReason`] from one list: variant, name, documentation.
macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])+ $v:ident = $name:literal, )+) => {
        /// Why a frame was dropped (see the module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[doc = $doc])+ $v, )+
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)+];
            /// How many reasons there are.
            pub const COUNT: usize = DropReason::ALL.len();

            /// The counter's name: unique, `snake_case`, stable.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$v => $name,)+
                }
            }

            /// What the reason means (its documentation).
            pub fn doc(self) -> &'static str {
                match self {
                    $(DropReason::$v => concat!($($doc),+).trim(),)+
                }
            }
        }
    };
}

drop_reasons! {
    // The frame itself.
    /// The frame does not parse (truncated, inconsistent lengths, bad version).
    Malformed = "malformed",
    /// Neither IPv4, IPv6 nor ARP.
    NotIp = "not_ip",
    /// An IP fragment that cannot be reassembled: empty, not a multiple of 8 bytes before the last, beyond 64 KiB, or IPv6 with headers before its Fragment header.
    Fragment = "fragment",
    /// A fragment overlapping or contradicting another of its datagram: the whole datagram is dropped (RFC 5722).
    FragOverlap = "frag_overlap",
    /// Fragments of a datagram given up for newer ones: too many datagrams or fragments waiting.
    FragEvicted = "frag_evicted",
    /// Fragments of a datagram not whole in time.
    FragTimeout = "frag_timeout",
    /// To a VIP but neither TCP nor UDP, nor an ICMP error about a connection.
    UnsupportedProtocol = "unsupported_protocol",
    // The input checks a kernel applies before IPVS sees a packet.
    /// Not addressed to the port: another host's unicast MAC, broadcast other than ARP, a multicast group not joined.
    NotForUs = "not_for_us",
    /// In a VLAN the port does not carry (or doubly tagged, or a service tag), or untagged on a port that carries VLANs only.
    VlanUnknown = "vlan_unknown",
    /// The IPv4 header checksum is wrong.
    BadIpChecksum = "bad_ip_checksum",
    /// A source no one may use: unspecified, loopback, multicast, broadcast, class E, IPv4-mapped, link-local off-link, or one of our own addresses and VIPs.
    MartianSource = "martian_source",
    /// A destination that is not a unicast address (loopback, unspecified, multicast or broadcast, class E, IPv4-mapped).
    MartianDestination = "martian_destination",
    /// IPv4 loose or strict source route option, or an IPv6 routing header with segments left.
    SourceRoute = "source_route",
    // Where it goes.
    /// No route to the real server or the client, or no interface for the port.
    NoRoute = "no_route",
    /// The port index or worker it was meant for does not exist here.
    NoPort = "no_port",
    // The connection engine.
    /// Inbound, no connection and no virtual service for the destination.
    NoService = "no_service",
    /// Outbound (a reply) without a connection.
    NoConnection = "no_connection",
    /// A TCP segment without a connection that is not a SYN.
    NotSyn = "not_syn",
    /// The scheduler found no available real server, and no ICMP port unreachable may answer the packet (answered ones leave as the answer: `icmp.port_unreachable`).
    NoDest = "no_dest",
    /// The connection table is full.
    TableFull = "table_full",
    /// The connection's real server was deleted (expire_nodest_conn off).
    DestRemoved = "dest_removed",
    /// The service's scheduler could not be instantiated.
    NoScheduler = "no_scheduler",
    // Local traffic: ARP, neighbour discovery, ping, the own addresses.
    /// ARP consumed with nothing to send (a reply to us, a gratuitous ARP).
    ArpHandled = "arp_handled",
    /// An ARP request for an address that is not ours.
    ArpNotOurs = "arp_not_ours",
    /// Not Ethernet/IPv4 ARP, an unknown operation, a bad sender address.
    ArpInvalid = "arp_invalid",
    /// Someone else claims one of our addresses.
    ArpConflict = "arp_conflict",
    /// A neighbour solicitation or advertisement consumed with nothing to send.
    NdHandled = "nd_handled",
    /// A neighbour solicitation for an address that is not ours.
    NdNotOurs = "nd_not_ours",
    /// Neighbour discovery failing RFC 4861 validation (hop limit, code, checksum, options).
    NdInvalid = "nd_invalid",
    /// No room in the buffer to grow a solicitation into an advertisement.
    NdNoRoom = "nd_no_room",
    /// Router discovery, redirect, MLD: nothing for a load balancer.
    Icmpv6Control = "icmpv6_control",
    /// An echo request to us not answered (bad checksum, fragment, options, non-unicast source).
    EchoInvalid = "echo_invalid",
    /// Other traffic to one of the balancer's own addresses.
    Local = "local",
    // The rewrite (NAT, DR, TUN).
    /// The rewrite found a header cut short or not matching the parse.
    BadHeaders = "bad_headers",
    /// NAT between address families (the connection is IPv4, the packet IPv6 or back).
    Family = "family",
    /// A fragment reached the rewrite: NAT needs the L4 header of a whole datagram.
    RewriteFragment = "rewrite_fragment",
    /// A protocol or ICMP message the rewrite does not translate.
    RewriteUnsupported = "rewrite_unsupported",
    /// DR and TUN forward inbound packets only.
    Direction = "direction",
    /// TTL or hop limit expired and no ICMP error may be sent about it.
    TtlExceeded = "ttl_exceeded",
    /// Larger than the egress MTU, and neither answerable with an ICMP error nor to be fragmented (an ICMP error with DF, DF clear in an IPv6 tunnel, over 64 KiB once encapsulated).
    TooBig = "too_big",
    /// To be fragmented or reassembled, but no buffer for it or too many packets waiting (the packet or datagram is dropped whole).
    FragNoBuffer = "frag_no_buffer",
    /// An ICMP error was due (time exceeded, fragmentation needed, packet too big, port unreachable) and the rate limits held it back.
    IcmpRateLimited = "icmp_rate_limited",
    /// Neither headroom nor tailroom for the new headers.
    NoRoom = "no_room",
    /// No local address of the real server's family for a tunnel's outer header.
    NoLocalAddr = "no_local_addr",
    // Waiting for a next hop's MAC.
    /// The neighbour hold is full (too many frames waiting in all).
    HoldFull = "hold_full",
    /// Too many frames already wait for this next hop.
    HoldAddrFull = "hold_addr_full",
    /// Too many next hops already have frames waiting.
    HoldTooManyAddrs = "hold_too_many_addrs",
    /// The next hop did not answer ARP or neighbour solicitation in time.
    HoldExpired = "hold_expired",
    // The worker loop.
    /// The port's transmit queue stayed full through the retries.
    TxFull = "tx_full",
    /// The hand-off ring to the owning worker was full.
    HandoffFull = "handoff_full",
    /// For the kernel twin, but its ring was full (the twin is served slower than frames come).
    TwinFull = "twin_full",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DropReason {}

/// One counter per [`DropReason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounts(pub [u64; DropReason::COUNT]);

impl Default for DropCounts {
    fn default() -> Self {
        DropCounts([0; DropReason::COUNT])
    }
}

impl DropCounts {
    #[inline]
    pub fn bump(&mut self, r: DropReason) {
        self.add(r, 1);
    }

    #[inline]
    pub fn add(&mut self, r: DropReason, n: u64) {
        self.0[r as usize] += n;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r as usize]
    }

    /// Every reason with its count, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(move |r| (*r, self.0[*r as usize]))
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// One worker's frame accounting. Each frame it takes in (from a port,
/// from another worker, or made by it: ARP/ND requests, announcements)
/// ends up in exactly one of: transmitted, handed to another worker,
/// held for a neighbour or for reassembly (a gauge: released frames go on
/// to `tx`), merged into a reassembled datagram (which is counted as
/// originated), or dropped with a reason. So, at any moment the worker is
/// between loops:
/// `rx + handoff_in + originated + from_kernel == tx + handoff_out + held
/// + reassembled + to_kernel + dropped`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub rx: u64,
    pub handoff_in: u64,
    pub originated: u64,
    pub tx: u64,
    pub handoff_out: u64,
    pub held: u64,
    /// Fragments whose data left in a reassembled datagram.
    pub reassembled: u64,
    /// Frames passed to the ports' kernel twins, and frames the kernel
    /// sent on a twin that this worker took to send out its port.
    pub to_kernel: u64,
    pub from_kernel: u64,
    pub drops: DropCounts,
}

impl Tally {
    /// Frames that came in or were made.
    pub fn taken_in(&self) -> u64 {
        self.rx + self.handoff_in + self.originated + self.from_kernel
    }

    /// Frames whose fate is known (held ones included).
    pub fn accounted(&self) -> u64 {
        self.tx
            + self.handoff_out
            + self.held
            + self.reassembled
            + self.to_kernel
            + self.drops.total()
    }

    /// True when every frame is accounted for.
    pub fn balanced(&self) -> bool {
        self.taken_in() == self.accounted()
    }

    /// The sum of several workers' tallies.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Tally>) -> Tally {
        let mut t = Tally::default();
        for x in all {
            t.rx += x.rx;
            t.handoff_in += x.handoff_in;
            t.originated += x.originated;
            t.tx += x.tx;
            t.handoff_out += x.handoff_out;
            t.held += x.held;
            t.reassembled += x.reassembled;
            t.to_kernel += x.to_kernel;
            t.from_kernel += x.from_kernel;
            for (a, b) in t.drops.0.iter_mut().zip(x.drops.0.iter()) {
                *a += b;
            }
        }
        t
    }
}

/// A header the rewrite cannot read.
impl From<crate::wire::Error> for DropReason {
    fn from(e: crate::wire::Error) -> Self {
        match e {
            crate::wire::Error::Unsupported => DropReason::RewriteUnsupported,
            _ => DropReason::BadHeaders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} is in counter order");
            let n = r.name();
            assert!(seen.insert(n), "{n} named twice");
            assert!(
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !n.starts_with('_')
                    && !n.ends_with('_'),
                "{n} is snake_case"
            );
            assert!(r.doc().len() > 10, "{n} is documented");
        }
    }

    #[test]
    fn docs_list_every_reason() {
        let doc = include_str!("../docs/counters.md");
        for r in DropReason::ALL {
            let row = format!("| `drop.{}` | {} |", r.name(), r.doc());
            assert!(doc.contains(&row), "docs/counters.md lacks: {row}");
        }
    }

    #[test]
    fn tally_balances() {
        let mut t = Tally {
            rx: 10,
            handoff_in: 2,
            originated: 1,
            tx: 7,
            handoff_out: 3,
            held: 1,
            ..Default::default()
        };
        assert!(!t.balanced());
        t.drops.bump(DropReason::NoService);
        t.drops.add(DropReason::TxFull, 1);
        assert!(t.balanced());
        let s = Tally::sum([&t, &t]);
        assert_eq!((s.rx, s.drops.total()), (20, 4));
        assert!(s.balanced());
    }
}
