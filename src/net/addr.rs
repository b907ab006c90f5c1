//! IP prefixes (an address with a prefix length) and the IPv6 multicast
//! addressing that neighbour discovery needs.

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::EthernetAddress;

/// Why a prefix could not be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrError {
    /// Prefix length over 32 (IPv4) or 128 (IPv6).
    PrefixLen,
    /// Not `address[/len]`.
    Syntax,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::PrefixLen => "prefix length out of range",
            AddrError::Syntax => "expected address or address/prefix-length",
        })
    }
}

impl std::error::Error for AddrError {}

/// An address and a prefix length, e.g. `10.0.0.1/24` (the host bits are
/// kept: the balancer's own address and its connected network in one value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpCidr {
    addr: IpAddr,
    len: u8,
}

impl IpCidr {
    /// `PrefixLen` if `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, AddrError> {
        if len > max_len(&addr) {
            return Err(AddrError::PrefixLen);
        }
        Ok(Self { addr, len })
    }

    /// The address alone (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: max_len(&addr),
        }
    }

    #[inline]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    #[inline]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    #[inline]
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The same prefix with the host bits cleared.
    pub fn network(&self) -> Self {
        Self {
            addr: mask(self.addr, self.len),
            len: self.len,
        }
    }

    /// True if `ip` is of the same family and inside the prefix.
    #[inline]
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = mask_v4(self.len);
                u32::from(a) & m == u32::from(*b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = mask_v6(self.len);
                u128::from(a) & m == u128::from(*b) & m
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpCidr {
    type Err = AddrError;

    /// `a.b.c.d/n`, `x::y/n`, or an address alone (a host prefix).
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| AddrError::Syntax)?;
        match l {
            None => Ok(Self::host(addr)),
            Some(l) => {
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AddrError::Syntax);
                }
                let n: u8 = l.parse().map_err(|_| AddrError::PrefixLen)?;
                Self::new(addr, n)
            }
        }
    }
}

/// 32 or 128.
#[inline]
pub fn max_len(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

#[inline]
pub(crate) fn mask_v4(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - l),
    }
}

#[inline]
pub(crate) fn mask_v6(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - l),
    }
}

/// `a` with everything after the first `len` bits cleared.
#[inline]
pub fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask_v4(len))),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask_v6(len))),
    }
}

/// The solicited-node multicast group of `a` (RFC 4291 §2.7.1):
/// `ff02::1:ffXX:XXXX` with the low 24 bits of `a`.
#[inline]
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464 §7):
/// `33:33` and the low 32 bits.
#[inline]
pub fn ipv6_multicast_mac(a: &Ipv6Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// All-nodes link-local multicast, `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The link-local address a host forms from its MAC (modified EUI-64,
/// RFC 4291 appendix A): `fe80::` + MAC with the U/L bit flipped and
/// `ff:fe` in the middle.
pub fn link_local_from_mac(mac: &EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// `fe80::/10`.
#[inline]
pub fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// An address a host may have as its own or talk to as a unicast peer:
/// not unspecified, multicast, broadcast, or loopback.
#[inline]
pub fn is_unicast(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            !(v.is_unspecified() || v.is_multicast() || v.is_broadcast() || v.is_loopback())
        }
        IpAddr::V6(v) => !(v.is_unspecified() || v.is_multicast() || v.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> IpCidr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(c("10.0.0.1/24").to_string(), "10.0.0.1/24");
        assert_eq!(c("10.0.0.1").prefix_len(), 32);
        assert_eq!(c("2001:db8::1").prefix_len(), 128);
        assert_eq!(c("2001:db8::1/64").network().to_string(), "2001:db8::/64");
        assert_eq!(c("10.1.2.3/8").network().to_string(), "10.0.0.0/8");
        assert_eq!(c("10.1.2.3/0").network().to_string(), "0.0.0.0/0");
        assert_eq!("10.0.0.1/33".parse::<IpCidr>(), Err(AddrError::PrefixLen));
        assert_eq!("::/129".parse::<IpCidr>(), Err(AddrError::PrefixLen));
        assert_eq!("::/999".parse::<IpCidr>(), Err(AddrError::PrefixLen));
        for bad in [
            "10.0.0.1/",
            "10.0.0.1/x",
            "10.0.0/8",
            "/8",
            "10.0.0.1/+8",
            "",
            "::/1000",
        ] {
            assert_eq!(bad.parse::<IpCidr>(), Err(AddrError::Syntax), "{bad}");
        }
    }

    #[test]
    fn contains() {
        let n = c("10.0.0.1/24");
        assert!(n.contains(&"10.0.0.255".parse().unwrap()));
        assert!(!n.contains(&"10.0.1.0".parse().unwrap()));
        assert!(!n.contains(&"::a00:1".parse().unwrap()));
        assert!(c("0.0.0.0/0").contains(&"1.2.3.4".parse().unwrap()));
        assert!(c("::/0").contains(&"2001:db8::9".parse().unwrap()));
        assert!(!c("::/0").contains(&"1.2.3.4".parse().unwrap()));
        let h = c("10.0.0.1/32");
        assert!(h.contains(&"10.0.0.1".parse().unwrap()));
        assert!(!h.contains(&"10.0.0.2".parse().unwrap()));
        let p = c("2001:db8:0:1::/63");
        assert!(p.contains(&"2001:db8::ffff".parse().unwrap()));
        assert!(p.contains(&"2001:db8:0:1::1".parse().unwrap()));
        assert!(!p.contains(&"2001:db8:0:2::1".parse().unwrap()));
    }

    #[test]
    fn multicast_addressing() {
        let a: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(&a),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            ipv6_multicast_mac(&solicited_node(&a)),
            EthernetAddress([0x33, 0x33, 0xff, 0x45, 0x67, 0x89])
        );
        assert_eq!(
            ipv6_multicast_mac(&ALL_NODES),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1])
        );
        let ll = link_local_from_mac(&EthernetAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(ll, "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
        assert!(is_link_local_v6(&ll));
        assert!(!is_link_local_v6(&a));
        assert!(is_unicast(&"10.0.0.1".parse().unwrap()));
        for n in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "::",
            "ff02::1",
            "::1",
        ] {
            assert!(!is_unicast(&n.parse().unwrap()), "{n}");
        }
    }
}
