//! A small routing table: connected prefixes (from the ports' own
//! addresses), static routes (prefix -> gateway on a port) and default
//! routes (`0.0.0.0/0`, `::/0`), with longest-prefix match for IPv4 and IPv6.
//!
//! Lookup hashes the destination masked to each prefix length present, from
//! the longest (at most 33 / 129 probes, in practice a handful): cheap
//! enough per new connection or per destination, but not meant per packet.
//! Callers cache the [`NextHop`] (and its MAC) in the connection or the
//! real server's entry and look it up again when the table changes.
//!
//! Deterministic: one route per prefix (adding an existing prefix is an
//! error), so the result never depends on insertion order. Link-local IPv6
//! prefixes are not routed (they exist on every port); a static route may
//! still use a link-local gateway, its port says which link.

use crate::ids::PortIndex;
use core::fmt;
use std::net::IpAddr;

use ahash::AHashMap;

use super::addr::{is_link_local_v6, mask_v4, mask_v6, IpCidr};
use super::iface::NetConfig;

/// Where a route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    Connected,
    Static,
}

/// One route. `prefix` has its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub prefix: IpCidr,
    pub port: PortIndex,
    /// `None` for a connected route (the destination is the next hop).
    pub gateway: Option<IpAddr>,
    pub kind: RouteKind,
}

/// Where to send a packet for some destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub port: PortIndex,
    /// The address whose MAC to resolve: the gateway, or the destination
    /// itself on a connected network.
    pub addr: IpAddr,
    pub connected: bool,
}

/// Why a route was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The prefix already has a route.
    Exists,
    /// Gateway and prefix of different families.
    FamilyMismatch,
    /// The gateway is not on a connected network of the route's port.
    GatewayUnreachable,
    NotFound,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteError::Exists => "route exists",
            RouteError::FamilyMismatch => "gateway and prefix of different address families",
            RouteError::GatewayUnreachable => "gateway not on a connected network of the port",
            RouteError::NotFound => "no such route",
        })
    }
}

impl std::error::Error for RouteError {}

/// (IPv6, prefix length, masked address bits).
type Key = (bool, u8, u128);

fn key(a: &IpAddr, len: u8) -> Key {
    match a {
        IpAddr::V4(v) => (false, len, (u32::from(*v) & mask_v4(len)) as u128),
        IpAddr::V6(v) => (true, len, u128::from(*v) & mask_v6(len)),
    }
}

/// The routing table (built by the control thread, shared read-only).
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    map: AHashMap<Key, Route>,
    /// Prefix lengths present, longest first.
    lens_v4: Vec<u8>,
    lens_v6: Vec<u8>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The connected routes of every port's own addresses (link-local ones
    /// excepted; the first port to claim a prefix keeps it).
    pub fn from_config(cfg: &NetConfig) -> Self {
        let mut t = Self::new();
        for i in cfg.iter() {
            for c in i.addrs() {
                if matches!(c.addr(), IpAddr::V6(a) if is_link_local_v6(&a)) {
                    continue;
                }
                let _ = t.add_connected(*c, i.port());
            }
        }
        t
    }

    fn insert(&mut self, r: Route) -> Result<(), RouteError> {
        let k = key(&r.prefix.addr(), r.prefix.prefix_len());
        if self.map.contains_key(&k) {
            return Err(RouteError::Exists);
        }
        self.map.insert(k, r);
        let lens = if k.0 {
            &mut self.lens_v6
        } else {
            &mut self.lens_v4
        };
        if let Err(at) = lens.binary_search_by(|l| k.1.cmp(l)) {
            lens.insert(at, k.1);
        }
        Ok(())
    }

    /// The network of `cidr` is directly reachable on `port`.
    pub fn add_connected(
        &mut self,
        cidr: IpCidr,
        port: impl Into<PortIndex>,
    ) -> Result<(), RouteError> {
        self.insert(Route {
            prefix: cidr.network(),
            port: port.into(),
            gateway: None,
            kind: RouteKind::Connected,
        })
    }

    /// `prefix` via `gateway` on `port`. The gateway must be on a connected
    /// network of `port` (or be IPv6 link-local): add connected routes first.
    pub fn add_static(
        &mut self,
        prefix: IpCidr,
        gateway: IpAddr,
        port: impl Into<PortIndex>,
    ) -> Result<(), RouteError> {
        let port = port.into();
        if prefix.is_ipv4() != gateway.is_ipv4() {
            return Err(RouteError::FamilyMismatch);
        }
        let on_link = match gateway {
            IpAddr::V6(g) if is_link_local_v6(&g) => true,
            _ => self
                .lookup(&gateway)
                .is_some_and(|h| h.connected && h.port == port),
        };
        if !on_link {
            return Err(RouteError::GatewayUnreachable);
        }
        self.insert(Route {
            prefix: prefix.network(),
            port,
            gateway: Some(gateway),
            kind: RouteKind::Static,
        })
    }

    /// The default route of `gateway`'s family.
    pub fn set_default(
        &mut self,
        gateway: IpAddr,
        port: impl Into<PortIndex>,
    ) -> Result<(), RouteError> {
        let port = port.into();
        let any = match gateway {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u8; 16]),
        };
        let prefix = IpCidr::new(any, 0).map_err(|_| RouteError::FamilyMismatch)?;
        let old = self.remove(&prefix).ok();
        let r = self.add_static(prefix, gateway, port);
        if r.is_err() {
            if let Some(o) = old {
                let _ = self.insert(o);
            }
        }
        r
    }

    /// Removes the route of exactly `prefix`.
    pub fn remove(&mut self, prefix: &IpCidr) -> Result<Route, RouteError> {
        let k = key(&prefix.addr(), prefix.prefix_len());
        let r = self.map.remove(&k).ok_or(RouteError::NotFound)?;
        if !self.map.keys().any(|o| o.0 == k.0 && o.1 == k.1) {
            let lens = if k.0 {
                &mut self.lens_v6
            } else {
                &mut self.lens_v4
            };
            lens.retain(|l| *l != k.1);
        }
        Ok(r)
    }

    /// Longest-prefix match.
    #[inline]
    pub fn lookup(&self, dst: &IpAddr) -> Option<NextHop> {
        let lens = if dst.is_ipv4() {
            &self.lens_v4
        } else {
            &self.lens_v6
        };
        for &len in lens {
            if let Some(r) = self.map.get(&key(dst, len)) {
                return Some(NextHop {
                    port: r.port,
                    addr: r.gateway.unwrap_or(*dst),
                    connected: r.gateway.is_none(),
                });
            }
        }
        None
    }

    /// Every route, IPv4 first, longest prefix first, then by address.
    pub fn routes(&self) -> Vec<Route> {
        let mut v: Vec<Route> = self.map.values().copied().collect();
        v.sort_by(|a, b| {
            (!a.prefix.is_ipv4(), b.prefix.prefix_len(), a.prefix.addr()).cmp(&(
                !b.prefix.is_ipv4(),
                a.prefix.prefix_len(),
                b.prefix.addr(),
            ))
        });
        v
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::iface::Iface;
    use super::*;
    use crate::wire::EthernetAddress;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn c(s: &str) -> IpCidr {
        s.parse().unwrap()
    }

    fn hop(port: u16, addr: &str, connected: bool) -> Option<NextHop> {
        Some(NextHop {
            port: PortIndex(port),
            addr: ip(addr),
            connected,
        })
    }

    fn config() -> NetConfig {
        NetConfig::new()
            .with(
                Iface::new(0, EthernetAddress([2, 0, 0, 0, 0, 1]))
                    .with_addr(c("10.0.0.2/24"))
                    .with_addr(c("2001:db8::2/64"))
                    .with_link_local(),
            )
            .with(
                Iface::new(1, EthernetAddress([2, 0, 0, 0, 0, 2]))
                    .with_addr(c("192.168.1.2/30"))
                    .with_addr(c("172.16.5.5/32"))
                    .with_addr(c("2001:db8:1::2/127"))
                    .with_link_local(),
            )
    }

    fn table() -> RouteTable {
        let mut t = RouteTable::from_config(&config());
        t.set_default(ip("192.168.1.1"), 1).unwrap();
        t.set_default(ip("fe80::1"), 1).unwrap();
        t.add_static(c("10.1.0.0/16"), ip("10.0.0.1"), 0).unwrap();
        t.add_static(c("10.1.2.0/24"), ip("10.0.0.254"), 0).unwrap();
        t.add_static(c("10.1.2.3/32"), ip("192.168.1.1"), 1)
            .unwrap();
        t.add_static(c("2001:db8:99::/48"), ip("2001:db8::1"), 0)
            .unwrap();
        t.add_static(c("2001:db8:99::7/128"), ip("2001:db8:1::3"), 1)
            .unwrap();
        t
    }

    #[test]
    fn longest_prefix_match() {
        let t = table();
        // Connected.
        assert_eq!(t.lookup(&ip("10.0.0.9")), hop(0, "10.0.0.9", true));
        assert_eq!(t.lookup(&ip("192.168.1.1")), hop(1, "192.168.1.1", true));
        assert_eq!(t.lookup(&ip("172.16.5.5")), hop(1, "172.16.5.5", true));
        assert_eq!(t.lookup(&ip("2001:db8::77")), hop(0, "2001:db8::77", true));
        assert_eq!(
            t.lookup(&ip("2001:db8:1::3")),
            hop(1, "2001:db8:1::3", true)
        );
        // Nested statics: /16, /24, /32.
        assert_eq!(t.lookup(&ip("10.1.9.9")), hop(0, "10.0.0.1", false));
        assert_eq!(t.lookup(&ip("10.1.2.9")), hop(0, "10.0.0.254", false));
        assert_eq!(t.lookup(&ip("10.1.2.3")), hop(1, "192.168.1.1", false));
        // /48 and /128.
        assert_eq!(
            t.lookup(&ip("2001:db8:99::8")),
            hop(0, "2001:db8::1", false)
        );
        assert_eq!(
            t.lookup(&ip("2001:db8:99::7")),
            hop(1, "2001:db8:1::3", false)
        );
        // Defaults.
        assert_eq!(t.lookup(&ip("8.8.8.8")), hop(1, "192.168.1.1", false));
        assert_eq!(t.lookup(&ip("192.168.1.4")), hop(1, "192.168.1.1", false));
        assert_eq!(t.lookup(&ip("2a00::1")), hop(1, "fe80::1", false));
        // Link-local destinations are not routed by prefix: default.
        assert_eq!(t.lookup(&ip("fe80::9")), hop(1, "fe80::1", false));
        // Without defaults: nothing.
        let bare = RouteTable::from_config(&config());
        assert_eq!(bare.lookup(&ip("8.8.8.8")), None);
        assert_eq!(bare.lookup(&ip("2a00::1")), None);
        assert_eq!(bare.lookup(&ip("fe80::9")), None);
    }

    #[test]
    fn deterministic_regardless_of_order() {
        let mut routes = table().routes();
        assert_eq!(routes.len(), 12);
        let probes: Vec<IpAddr> = [
            "10.0.0.9",
            "10.1.2.3",
            "10.1.2.4",
            "10.1.3.1",
            "8.8.8.8",
            "172.16.5.5",
            "2001:db8:99::7",
            "2001:db8:99::8",
            "2001:db8::1",
            "::1",
        ]
        .iter()
        .map(|s| ip(s))
        .collect();
        let want: Vec<_> = probes.iter().map(|p| table().lookup(p)).collect();
        for round in 0..8 {
            // Connected first (static routes need their gateway on-link),
            // otherwise shuffled.
            routes.rotate_left(round + 1);
            routes.sort_by_key(|r| r.kind);
            let mut t = RouteTable::new();
            for r in &routes {
                match r.gateway {
                    None => t.add_connected(r.prefix, r.port).unwrap(),
                    Some(g) => t.add_static(r.prefix, g, r.port).unwrap(),
                }
            }
            let got: Vec<_> = probes.iter().map(|p| t.lookup(p)).collect();
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn errors_and_removal() {
        let mut t = table();
        assert_eq!(
            t.add_static(c("10.1.0.0/16"), ip("10.0.0.1"), 0),
            Err(RouteError::Exists)
        );
        assert_eq!(
            t.add_static(c("10.0.0.0/24"), ip("10.0.0.1"), 0),
            Err(RouteError::Exists),
            "same prefix as a connected one"
        );
        assert_eq!(
            t.add_static(c("10.9.0.0/16"), ip("2001:db8::1"), 0),
            Err(RouteError::FamilyMismatch)
        );
        assert_eq!(
            t.add_static(c("10.9.0.0/16"), ip("10.0.0.1"), 1),
            Err(RouteError::GatewayUnreachable),
            "gateway on port 0's network, route on port 1"
        );
        assert_eq!(
            t.add_static(c("10.9.0.0/16"), ip("10.1.0.1"), 0),
            Err(RouteError::GatewayUnreachable),
            "gateway behind another gateway"
        );
        // Replacing the default keeps the old one if the new is refused.
        assert_eq!(
            t.set_default(ip("10.99.0.1"), 0),
            Err(RouteError::GatewayUnreachable)
        );
        assert_eq!(t.lookup(&ip("8.8.8.8")), hop(1, "192.168.1.1", false));
        t.set_default(ip("10.0.0.1"), 0).unwrap();
        assert_eq!(t.lookup(&ip("8.8.8.8")), hop(0, "10.0.0.1", false));
        // Removal falls back to the shorter prefix.
        let r = t.remove(&c("10.1.2.0/24")).unwrap();
        assert_eq!(
            (r.kind, r.gateway),
            (RouteKind::Static, Some(ip("10.0.0.254")))
        );
        assert_eq!(t.lookup(&ip("10.1.2.9")), hop(0, "10.0.0.1", false));
        assert_eq!(t.remove(&c("10.1.2.0/24")), Err(RouteError::NotFound));
        assert_eq!(t.remove(&c("0.0.0.0/0")).unwrap().port, PortIndex(0));
        assert_eq!(t.lookup(&ip("8.8.8.8")), None);
        assert_eq!(t.lookup(&ip("10.1.2.3")), hop(1, "192.168.1.1", false));
        // Listing order: v4 then v6, longest first.
        let l = t.routes();
        assert!(l[0].prefix.is_ipv4() && l[0].prefix.prefix_len() == 32);
        assert!(!l[l.len() - 1].prefix.is_ipv4());
        assert_eq!(l[l.len() - 1].prefix.prefix_len(), 0);
    }
}
