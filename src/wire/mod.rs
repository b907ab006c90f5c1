//! Zero-copy typed views over packet bytes (one file per protocol).
//!
//! Every protocol module follows the same shape:
//!
//! - a private `field` module with the byte ranges of the header fields;
//! - `Packet<T: AsRef<[u8]>>`, a view over a buffer: `new_unchecked` wraps
//!   without looking, `check_len` validates every length the accessors rely
//!   on, `new_checked` does both. After `new_checked` succeeds no accessor can
//!   panic, whatever the bytes. Setters exist only where `T: AsMut<[u8]>`;
//! - a `Repr` (where one is useful) with `parse` from a checked view and
//!   `emit` into a view of exactly `buffer_len()` bytes.
//!
//! Nothing here allocates, nothing is `unsafe`, and checksums are never
//! verified behind the caller's back (the NIC usually did it): call
//! `verify_checksum` where it matters.
//!
//! [`parse::parse_frame`] is the data path's one-shot summary of a frame;
//! [`rewrite`] changes addresses, ports and TTL in place on a parsed frame;
//! [`checksum`] holds the full and incremental (RFC 1624) Internet checksums;
//! `fuzz` (feature `testkit`, and in the library's own tests) is the in-tree
//! fuzz harness.

use core::fmt;
use core::ops::{Range, RangeFrom};

pub mod arp;
pub mod buf;
pub mod checksum;
pub mod ethernet;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzz;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod parse;
pub mod rewrite;
pub mod tcp;
pub mod udp;
pub mod vlan;

#[cfg(test)]
mod proptests;

pub use ethernet::EthernetAddress;
pub use parse::{parse_frame, Headers};

/// Why bytes could not be read as a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header or a length field says.
    Truncated,
    /// A field holds a value the protocol forbids (bad version, a length
    /// shorter than the header, a zero-length option...).
    Malformed,
    /// The checksum does not match the contents.
    Checksum,
    /// Valid on the wire, but not something this layer decodes.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "bad checksum",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// Whether `Repr::parse` verifies checksums (the NIC may already have).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    Verify,
    Skip,
}

/// An Ethernet type. A newtype over the wire value rather than an enum, so
/// that unknown values pass through and matching costs nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: Self = Self(0x0800);
    pub const ARP: Self = Self(0x0806);
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: Self = Self(0x8100);
    /// IEEE 802.1ad service VLAN tag (outer tag of QinQ).
    pub const QINQ: Self = Self(0x88a8);
    pub const IPV6: Self = Self(0x86dd);

    /// True for the TPIDs that introduce a VLAN tag.
    #[inline]
    pub const fn is_vlan(self) -> bool {
        self.0 == Self::VLAN.0 || self.0 == Self::QINQ.0
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// An IP protocol number (IPv4 protocol, IPv6 next header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const HOPOPT: Self = Self(0);
    pub const ICMP: Self = Self(1);
    /// IPv4-in-IP (IPIP), used by the TUN forwarding method.
    pub const IPIP: Self = Self(4);
    pub const TCP: Self = Self(6);
    pub const UDP: Self = Self(17);
    /// IPv6 encapsulation (6in4 / 6in6).
    pub const IPV6: Self = Self(41);
    pub const IPV6_ROUTE: Self = Self(43);
    pub const IPV6_FRAG: Self = Self(44);
    pub const GRE: Self = Self(47);
    pub const ESP: Self = Self(50);
    pub const AH: Self = Self(51);
    pub const ICMPV6: Self = Self(58);
    pub const IPV6_NONXT: Self = Self(59);
    pub const IPV6_OPTS: Self = Self(60);
    pub const SCTP: Self = Self(132);

    /// Protocols whose header starts with 16-bit source and destination ports.
    #[inline]
    pub const fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 132)
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TCP => f.write_str("tcp"),
            Self::UDP => f.write_str("udp"),
            Self::ICMP => f.write_str("icmp"),
            Self::ICMPV6 => f.write_str("icmpv6"),
            Self::SCTP => f.write_str("sctp"),
            Self(n) => write!(f, "{n}"),
        }
    }
}

pub(crate) type Field = Range<usize>;
pub(crate) type Rest = RangeFrom<usize>;

// Big-endian field access. Callers pass constant ranges of the right width,
// within a length their `check_len` validated, so the copies cannot fail.

#[inline(always)]
fn rd16(d: &[u8], f: Field) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&d[f]);
    u16::from_be_bytes(b)
}

#[inline(always)]
fn rd32(d: &[u8], f: Field) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[f]);
    u32::from_be_bytes(b)
}

#[inline(always)]
fn wr16(d: &mut [u8], f: Field, v: u16) {
    d[f].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn wr32(d: &mut [u8], f: Field, v: u32) {
    d[f].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn rd_array<const N: usize>(d: &[u8], f: Field) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&d[f]);
    b
}

/// Reads a big-endian u16 at `at` if it is in bounds (for the hot-path
/// parser, which walks offsets it computed itself).
#[inline(always)]
fn get16(d: &[u8], at: usize) -> Option<u16> {
    match d.get(at..at.wrapping_add(2)) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}
