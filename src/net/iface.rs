//! Per-interface L3 configuration: the interface's MAC, the balancer's own
//! addresses on it (with prefix lengths: they also define the connected
//! networks), and the VIPs reachable through it.
//!
//! An interface is a port, or an 802.1Q VLAN on one (a sub-interface with
//! the port's MAC). The datapath works on interfaces throughout: routes,
//! neighbours and held frames name them. Only its edges see ports: frames
//! come in on a port and are given to the interface their tag names
//! ([`NetConfig::ingress`]), and leave on the port of their interface with
//! its tag ([`NetConfig::link`]). Interface `i` below the number of ports
//! is port `i`, untagged.
//!
//! Built by the control thread and shared read-only with the workers (as
//! part of an immutable snapshot); nothing here changes per packet.

use crate::ids::PortIndex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ahash::AHashSet;

use super::addr::{is_link_local_v6, is_unicast, link_local_from_mac, IpCidr};
use crate::wire::EthernetAddress;

/// What an address of ours is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrKind {
    /// The balancer's own (interface) address: ARP/ND, ping, nothing else.
    Own,
    /// A virtual service address: ARP/ND and ping are answered here, the
    /// rest belongs to the load balancer.
    Vip,
}

/// Ethernet's MTU, a port's unless configured.
pub const DEFAULT_MTU: u16 = 1500;
/// The smallest MTU IPv4 allows (RFC 791).
pub const MIN_MTU: u16 = 68;

/// One interface's L3 configuration.
#[derive(Clone, Debug)]
pub struct Iface {
    port: PortIndex,
    /// The port it sends on and its VLAN (a port: itself, untagged).
    link: PortIndex,
    vlan: Option<u16>,
    mac: EthernetAddress,
    /// The largest IP packet the port sends (bytes; Ethernet's 1500 unless
    /// configured).
    mtu: u16,
    /// Own addresses in configuration order (few; scanned linearly).
    addrs: Vec<IpCidr>,
    /// VIPs (possibly many; hashed).
    vips: AHashSet<IpAddr>,
    /// A kernel twin takes this interface's own traffic (see
    /// [`Iface::with_twin`]).
    twin: bool,
}

impl Iface {
    /// A port with no addresses yet.
    pub fn new(port: impl Into<PortIndex>, mac: EthernetAddress) -> Self {
        let port = port.into();
        Self {
            port,
            link: port,
            vlan: None,
            mac,
            mtu: DEFAULT_MTU,
            addrs: Vec::new(),
            vips: AHashSet::new(),
            twin: false,
        }
    }

    /// The port has a kernel twin: traffic to the own addresses (ARP and
    /// neighbour discovery for them, ping, everything else), router
    /// discovery and MLD, and neighbour replies once learned from go to
    /// the kernel ([`super::Action::Kernel`]) instead of being answered or
    /// dropped here. VIPs stay rvsd's.
    pub fn with_twin(mut self) -> Self {
        self.twin = true;
        self
    }

    /// True when a kernel twin takes the own traffic.
    #[inline]
    pub fn has_twin(&self) -> bool {
        self.twin
    }

    /// Makes this interface VLAN `vid` on port `link`.
    pub fn on_vlan(mut self, link: impl Into<PortIndex>, vid: u16) -> Self {
        self.link = link.into();
        self.vlan = Some(vid & 0x0fff);
        self
    }

    /// The port's MTU (IP bytes), at least IPv4's minimum of 68.
    pub fn with_mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu.max(MIN_MTU);
        self
    }

    /// Adds an own address (`false` if it was there already, or is not a
    /// unicast address).
    pub fn add_addr(&mut self, cidr: IpCidr) -> bool {
        if !is_unicast(&cidr.addr()) || self.addrs.iter().any(|c| c.addr() == cidr.addr()) {
            return false;
        }
        self.addrs.push(cidr);
        true
    }

    /// Builder form of [`add_addr`](Self::add_addr).
    pub fn with_addr(mut self, cidr: IpCidr) -> Self {
        self.add_addr(cidr);
        self
    }

    /// Adds the EUI-64 link-local address (`fe80::/64`) derived from the MAC,
    /// which IPv6 neighbours and routers talk to.
    pub fn with_link_local(mut self) -> Self {
        let ll = link_local_from_mac(&self.mac);
        if let Ok(c) = IpCidr::new(ll.into(), 64) {
            self.add_addr(c);
        }
        self
    }

    pub fn remove_addr(&mut self, addr: &IpAddr) -> bool {
        let n = self.addrs.len();
        self.addrs.retain(|c| c.addr() != *addr);
        self.addrs.len() != n
    }

    /// Adds a VIP (`false` if already there or not unicast).
    pub fn add_vip(&mut self, vip: IpAddr) -> bool {
        is_unicast(&vip) && self.vips.insert(vip)
    }

    pub fn with_vip(mut self, vip: IpAddr) -> Self {
        self.add_vip(vip);
        self
    }

    pub fn remove_vip(&mut self, vip: &IpAddr) -> bool {
        self.vips.remove(vip)
    }

    #[inline]
    pub fn port(&self) -> PortIndex {
        self.port
    }

    /// The port this interface sends on.
    #[inline]
    pub fn link(&self) -> PortIndex {
        self.link
    }

    /// Its VLAN id, `None` for untagged.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        self.vlan
    }

    #[inline]
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    #[inline]
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    pub fn addrs(&self) -> &[IpCidr] {
        &self.addrs
    }

    pub fn vips(&self) -> impl Iterator<Item = &IpAddr> {
        self.vips.iter()
    }

    /// Is `ip` one of ours on this port? A VIP that is also an own address
    /// is a VIP (its traffic goes to the load balancer).
    #[inline]
    pub fn lookup(&self, ip: &IpAddr) -> Option<AddrKind> {
        if !self.vips.is_empty() && self.vips.contains(ip) {
            Some(AddrKind::Vip)
        } else if self.is_own(ip) {
            Some(AddrKind::Own)
        } else {
            None
        }
    }

    /// One of the own (interface) addresses.
    #[inline]
    pub fn is_own(&self, ip: &IpAddr) -> bool {
        self.addrs.iter().any(|c| c.addr() == *ip)
    }

    #[inline]
    pub fn is_vip(&self, ip: &IpAddr) -> bool {
        self.vips.contains(ip)
    }

    /// On a connected network of this port: inside the prefix of an own
    /// address, or IPv6 link-local (when the port has any IPv6 address).
    pub fn is_connected(&self, ip: &IpAddr) -> bool {
        if let IpAddr::V6(v6) = ip {
            if is_link_local_v6(v6) && self.addrs.iter().any(|c| !c.is_ipv4()) {
                return true;
            }
        }
        self.addrs.iter().any(|c| c.contains(ip))
    }

    /// The own address to send from when talking to `dst` on this link:
    /// the first own address whose prefix holds `dst`, else for IPv6 the
    /// link-local one, else the first of the family; `None` without one.
    pub fn source_for(&self, dst: &IpAddr) -> Option<IpAddr> {
        let same = |c: &&IpCidr| c.is_ipv4() == dst.is_ipv4();
        if let Some(c) = self.addrs.iter().filter(same).find(|c| c.contains(dst)) {
            return Some(c.addr());
        }
        if dst.is_ipv6() {
            let ll = self
                .addrs
                .iter()
                .find(|c| matches!(c.addr(), IpAddr::V6(a) if is_link_local_v6(&a)));
            if let Some(c) = ll {
                return Some(c.addr());
            }
        }
        self.addrs.iter().find(same).map(|c| c.addr())
    }

    /// [`source_for`](Self::source_for) for IPv4.
    pub fn source_v4_for(&self, dst: &Ipv4Addr) -> Option<Ipv4Addr> {
        match self.source_for(&IpAddr::V4(*dst)) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        }
    }

    /// [`source_for`](Self::source_for) for IPv6.
    pub fn source_v6_for(&self, dst: &Ipv6Addr) -> Option<Ipv6Addr> {
        match self.source_for(&IpAddr::V6(*dst)) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        }
    }
}

/// The L3 configuration of every interface, indexed by interface number.
#[derive(Clone, Debug, Default)]
pub struct NetConfig {
    ports: Vec<Option<Iface>>,
    /// (port, VLAN id) to its interface.
    vlans: ahash::AHashMap<(PortIndex, u16), PortIndex>,
    /// Ports that carry untagged frames: without VLANs, or with addresses
    /// of their own besides them.
    untagged: Vec<bool>,
}

/// Where a frame that came in on a port belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// To this interface.
    Iface(PortIndex),
    /// Tagged with a VLAN the port does not carry, doubly tagged, or
    /// untagged on a port carrying VLANs only.
    Unknown,
}

impl NetConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the configuration of `iface.port()`.
    pub fn set(&mut self, iface: Iface) {
        let p = iface.port().get();
        if self.ports.len() <= p {
            self.ports.resize(p + 1, None);
        }
        self.vlans.retain(|_, i| i.get() != p);
        if let Some(vid) = iface.vlan() {
            self.vlans.insert((iface.link(), vid), iface.port());
        }
        self.ports[p] = Some(iface);
        self.untagged = (0..self.ports.len())
            .map(|l| {
                let l = PortIndex(l as u16);
                let carries_vlans = self.vlans.keys().any(|(q, _)| *q == l);
                !carries_vlans || self.port(l).is_some_and(|i| !i.addrs().is_empty())
            })
            .collect();
    }

    /// True when some interface is a VLAN: only then do frames need
    /// [`NetConfig::ingress`] and [`NetConfig::link`].
    #[inline]
    pub fn has_vlans(&self) -> bool {
        !self.vlans.is_empty()
    }

    /// The interface of a frame that came in on `port` tagged `tag` (its
    /// outer 802.1Q TCI, none when untagged); `inner` when it has a second
    /// tag. A tag with VLAN id 0 only carries a priority: the frame is
    /// untagged (as in Linux).
    pub fn ingress(&self, port: PortIndex, tag: Option<u16>, inner: bool) -> Ingress {
        let vid = tag.map(|t| t & 0x0fff).filter(|v| *v != 0);
        match vid {
            _ if inner => Ingress::Unknown,
            None if self.carries_untagged(port) => Ingress::Iface(port),
            None => Ingress::Unknown,
            Some(v) => match self.vlans.get(&(port, v)) {
                Some(i) => Ingress::Iface(*i),
                None => Ingress::Unknown,
            },
        }
    }

    /// True when untagged frames on `port` are its own: it has no VLANs,
    /// or addresses of its own besides them.
    #[inline]
    pub fn carries_untagged(&self, port: PortIndex) -> bool {
        self.untagged.get(port.get()).copied().unwrap_or(true)
    }

    /// The port an interface sends on and the VLAN id its frames carry.
    #[inline]
    pub fn link(&self, iface: PortIndex) -> (PortIndex, Option<u16>) {
        match self.port(iface) {
            Some(i) => (i.link(), i.vlan()),
            None => (iface, None),
        }
    }

    pub fn with(mut self, iface: Iface) -> Self {
        self.set(iface);
        self
    }

    #[inline]
    pub fn port(&self, port: PortIndex) -> Option<&Iface> {
        self.ports.get(port.get()).and_then(Option::as_ref)
    }

    pub fn port_mut(&mut self, port: PortIndex) -> Option<&mut Iface> {
        self.ports.get_mut(port.get()).and_then(Option::as_mut)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Iface> {
        self.ports.iter().flatten()
    }

    /// The port and kind of `ip` if it is ours on any port (first port
    /// wins, in port order).
    pub fn find(&self, ip: &IpAddr) -> Option<(PortIndex, AddrKind)> {
        self.iter()
            .find_map(|i| i.lookup(ip).map(|k| (i.port(), k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn iface() -> Iface {
        Iface::new(0, MAC)
            .with_addr("10.0.0.2/24".parse().unwrap())
            .with_addr("192.168.1.2/30".parse().unwrap())
            .with_addr("2001:db8::2/64".parse().unwrap())
            .with_vip(ip("10.0.0.100"))
            .with_vip(ip("2001:db8::100"))
    }

    #[test]
    fn lookup() {
        let i = iface();
        assert_eq!(i.lookup(&ip("10.0.0.2")), Some(AddrKind::Own));
        assert_eq!(i.lookup(&ip("2001:db8::2")), Some(AddrKind::Own));
        assert_eq!(i.lookup(&ip("10.0.0.100")), Some(AddrKind::Vip));
        assert_eq!(i.lookup(&ip("2001:db8::100")), Some(AddrKind::Vip));
        assert_eq!(i.lookup(&ip("10.0.0.3")), None);
        assert_eq!(i.lookup(&ip("::ffff:10.0.0.2")), None);
        // An address that is both: VIP.
        let mut j = iface();
        assert!(j.add_vip(ip("10.0.0.2")));
        assert_eq!(j.lookup(&ip("10.0.0.2")), Some(AddrKind::Vip));
        assert!(j.remove_vip(&ip("10.0.0.2")));
        assert_eq!(j.lookup(&ip("10.0.0.2")), Some(AddrKind::Own));
        // Duplicates and non-unicast refused.
        assert!(!j.add_vip(ip("10.0.0.100")));
        assert!(!j.add_vip(ip("224.0.0.1")));
        assert!(!j.add_addr("10.0.0.2/16".parse().unwrap()));
        assert!(!j.add_addr("0.0.0.0/0".parse().unwrap()));
        assert!(j.remove_addr(&ip("10.0.0.2")));
        assert_eq!(j.lookup(&ip("10.0.0.2")), None);
    }

    #[test]
    fn connected_and_source() {
        let i = iface().with_link_local();
        assert!(i.is_connected(&ip("10.0.0.77")));
        assert!(i.is_connected(&ip("192.168.1.1")));
        assert!(!i.is_connected(&ip("192.168.1.4")));
        assert!(i.is_connected(&ip("fe80::1")));
        assert!(!i.is_connected(&ip("2001:db9::1")));
        assert_eq!(i.source_for(&ip("192.168.1.1")), Some(ip("192.168.1.2")));
        assert_eq!(i.source_for(&ip("10.9.9.9")), Some(ip("10.0.0.2")));
        assert_eq!(i.source_for(&ip("2001:db8::9")), Some(ip("2001:db8::2")));
        assert_eq!(
            i.source_for(&ip("fe80::9")),
            Some(ip("fe80::ff:fe00:1")),
            "link-local for link-local"
        );
        assert_eq!(
            i.source_v6_for(&"2001:db9::9".parse().unwrap()),
            Some("fe80::ff:fe00:1".parse().unwrap())
        );
        let v4only = Iface::new(1, MAC).with_addr("10.0.0.2/24".parse().unwrap());
        assert_eq!(v4only.source_for(&ip("2001:db8::1")), None);
        assert!(!v4only.is_connected(&ip("fe80::1")));
    }

    #[test]
    fn config() {
        let c = NetConfig::new().with(iface()).with(
            Iface::new(3, EthernetAddress([2, 0, 0, 0, 0, 3]))
                .with_addr("172.16.0.1/16".parse().unwrap()),
        );
        assert!(c.port(PortIndex(0)).is_some() && c.port(PortIndex(3)).is_some());
        assert!(
            c.port(PortIndex(1)).is_none()
                && c.port(PortIndex(2)).is_none()
                && c.port(PortIndex(9)).is_none()
        );
        assert_eq!(c.iter().count(), 2);
        assert_eq!(
            c.find(&ip("172.16.0.1")),
            Some((PortIndex(3), AddrKind::Own))
        );
        assert_eq!(
            c.find(&ip("10.0.0.100")),
            Some((PortIndex(0), AddrKind::Vip))
        );
        assert_eq!(c.find(&ip("172.16.0.2")), None);
    }
}
