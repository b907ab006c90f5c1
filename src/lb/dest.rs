//! Real servers: configuration (`-a`/`-e`) and the state shared by all
//! worker lcores (connection counts, overload flag, weight, stats).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use super::error::LbError;
use super::service::ServiceKey;
use super::stats::Stats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunType {
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    pub fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
            TunType::Gre => "gre",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

/// Forwarding method (`-m`, `-g`, `-i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum FwdMethod {
    /// NAT.
    Masq,
    /// Direct routing, ipvsadm's default.
    #[default]
    Route,
    Tunnel {
        #[serde(rename = "type")]
        tun_type: TunType,
        /// Destination UDP port for GUE; 0 otherwise.
        #[serde(default)]
        port: u16,
        #[serde(default)]
        csum: TunCsum,
    },
}

impl FwdMethod {
    /// The name in `ipvsadm -L` (`Masq`, `Route`, `Tunnel`).
    pub fn name(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Route => "Route",
            FwdMethod::Tunnel { .. } => "Tunnel",
        }
    }

    /// Replies pass through the balancer (only NAT).
    pub fn is_masq(self) -> bool {
        matches!(self, FwdMethod::Masq)
    }
}

/// The port a packet goes to on a real server configured with `port`, for
/// a packet to virtual port `vport`: port 0 means the virtual port. The
/// one place that rule is written.
#[inline(always)]
pub const fn real_port(port: u16, vport: u16) -> u16 {
    if port == 0 {
        vport
    } else {
        port
    }
}

/// The kernel's weights are C ints: 0..=INT_MAX.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;
/// Thresholds are C ints in ipvsadm.
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

fn one() -> u32 {
    1
}

/// A real server (`-a`/`-e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    #[serde(default)]
    pub fwd: FwdMethod,
    #[serde(default = "one")]
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = 3/4 of the upper one.
    #[serde(default)]
    pub l_threshold: u32,
}

impl DestConfig {
    /// Defaults as ipvsadm: DR, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        DestConfig {
            addr,
            port,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    pub fn masq(mut self) -> Self {
        self.fwd = FwdMethod::Masq;
        self
    }

    pub fn with_fwd(mut self, fwd: FwdMethod) -> Self {
        self.fwd = fwd;
        self
    }

    pub fn with_weight(mut self, w: u32) -> Self {
        self.weight = w;
        self
    }

    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }

    /// ipvsadm's and the kernel's checks against the service it joins.
    /// Forces the port to the virtual port for DR and TUN, as ipvsadm does
    /// (not for a fwmark service: the port given stays).
    pub fn normalize(&mut self, svc: &ServiceKey) -> Result<(), LbError> {
        if self.weight > MAX_WEIGHT {
            return Err(LbError::IllegalWeight);
        }
        if self.u_threshold > MAX_THRESHOLD {
            return Err(LbError::IllegalUThreshold);
        }
        if self.l_threshold > MAX_THRESHOLD {
            return Err(LbError::IllegalLThreshold);
        }
        // The kernel's ERANGE: a lower threshold above the upper one, even
        // when there is no upper one (0).
        if self.l_threshold > self.u_threshold {
            return Err(LbError::ThresholdRange);
        }
        if let FwdMethod::Tunnel {
            tun_type,
            port,
            csum,
        } = self.fwd
        {
            match tun_type {
                TunType::Gue => {
                    if port == 0 {
                        return Err(LbError::TunPortRequired);
                    }
                }
                TunType::Ipip | TunType::Gre => {
                    if port != 0 {
                        return Err(LbError::IllegalTunOption {
                            opt: "tun-port",
                            tun: tun_type.name(),
                        });
                    }
                    let bad = match (tun_type, csum) {
                        (TunType::Ipip, TunCsum::Csum) => Some("tun-csum"),
                        (TunType::Ipip, TunCsum::RemCsum) | (TunType::Gre, TunCsum::RemCsum) => {
                            Some("tun-remcsum")
                        }
                        _ => None,
                    };
                    if let Some(opt) = bad {
                        return Err(LbError::IllegalTunOption {
                            opt,
                            tun: tun_type.name(),
                        });
                    }
                }
            }
        }
        // The kernel tunnels to a real server of the other family, but
        // ipvsadm lets only an IPv4 one behind an IPv6 service through.
        let v4_behind_v6 = self.addr.is_ipv4() && svc.addr.is_ipv6();
        if self.addr.is_ipv4() != svc.addr.is_ipv4()
            && !(v4_behind_v6 && matches!(self.fwd, FwdMethod::Tunnel { .. }))
        {
            return Err(LbError::FamilyMismatch);
        }
        if !dest_address_ok(&self.addr) {
            return Err(LbError::DestNotUnicast);
        }
        if !self.fwd.is_masq() && !svc.is_fwmark() {
            self.port = svc.port;
        }
        Ok(())
    }
}

/// An address the kernel takes for a real server: for IPv4 what its
/// routing calls local or unicast (not 0.0.0.0/8, multicast or the
/// broadcast address), for IPv6 a unicast address that is not link-local
/// (nor unspecified or multicast).
fn dest_address_ok(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets()[0];
            o != 0 && !v.is_multicast() && !v.is_broadcast()
        }
        // The kernel's ipv6_addr_type: IPv4-mapped is not unicast.
        IpAddr::V6(v) => {
            !v.is_unspecified()
                && !v.is_multicast()
                && !v.is_unicast_link_local()
                && v.to_ipv4_mapped().is_none()
        }
    }
}

/// State of one real server shared by every lcore: lives as long as the real
/// server is configured (and as long as connections or templates still point
/// at it), across configuration snapshots.
#[derive(Debug)]
pub struct DestShared {
    /// Unique for the process; a real server deleted and added again gets a
    /// new id.
    pub id: u64,
    pub addr: IpAddr,
    pub port: u16,
    weight: AtomicU32,
    u_threshold: AtomicU32,
    l_threshold: AtomicU32,
    active: AtomicU32,
    inactive: AtomicU32,
    persist: AtomicU32,
    overloaded: AtomicBool,
    /// False once deleted from its service (IP_VS_DEST_F_AVAILABLE).
    available: AtomicBool,
    pub stats: Stats,
}

impl DestShared {
    pub fn new(id: u64, cfg: &DestConfig, nlcores: usize) -> Self {
        DestShared {
            id,
            addr: cfg.addr,
            port: cfg.port,
            weight: AtomicU32::new(cfg.weight),
            u_threshold: AtomicU32::new(cfg.u_threshold),
            l_threshold: AtomicU32::new(cfg.l_threshold),
            active: AtomicU32::new(0),
            inactive: AtomicU32::new(0),
            persist: AtomicU32::new(0),
            overloaded: AtomicBool::new(false),
            available: AtomicBool::new(true),
            stats: Stats::new(nlcores),
        }
    }

    #[inline]
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }
    #[inline]
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }
    #[inline]
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }
    /// Persistence templates pointing here (`--persistent-conn`).
    #[inline]
    pub fn persistent(&self) -> u32 {
        self.persist.load(Relaxed)
    }
    #[inline]
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }
    #[inline]
    pub fn available(&self) -> bool {
        self.available.load(Relaxed)
    }
    pub fn thresholds(&self) -> (u32, u32) {
        (
            self.u_threshold.load(Relaxed),
            self.l_threshold.load(Relaxed),
        )
    }

    pub(crate) fn set_unavailable(&self) {
        self.available.store(false, Relaxed);
    }

    /// Apply an edit (`-e`): weight and thresholds. An edit that changes a
    /// threshold recomputes the overload flag at once, as the kernel does
    /// since "ipvs: properly update the overload flag on dest edit" (in
    /// Debian's 6.1): overloaded if the connections reach the new upper
    /// threshold, cleared only below the new lower one.
    pub(crate) fn update(&self, cfg: &DestConfig) {
        self.weight.store(cfg.weight, Relaxed);
        let changed = self.thresholds() != (cfg.u_threshold, cfg.l_threshold);
        self.u_threshold.store(cfg.u_threshold, Relaxed);
        self.l_threshold.store(cfg.l_threshold, Relaxed);
        if changed {
            self.check_overload();
            self.check_underload();
        }
    }

    fn total(&self) -> u64 {
        self.active() as u64 + self.inactive() as u64
    }

    /// After a connection or template was bound: overloaded once
    /// active + inactive reaches the upper threshold.
    fn check_overload(&self) {
        let u = self.u_threshold.load(Relaxed);
        if u != 0 && self.total() >= u as u64 {
            self.overloaded.store(true, Relaxed);
        }
    }

    /// After a connection or template was unbound: cleared below the lower
    /// threshold, or below 3/4 of the upper one when the lower is 0.
    fn check_underload(&self) {
        let l = self.l_threshold.load(Relaxed) as u64;
        let u = self.u_threshold.load(Relaxed) as u64;
        let clear = if l != 0 {
            self.total() < l
        } else if u != 0 {
            self.total() * 4 < u * 3
        } else {
            true
        };
        if clear && self.overloaded() {
            self.overloaded.store(false, Relaxed);
        }
    }

    /// A connection now points here (ip_vs_bind_dest).
    pub(crate) fn bind_conn(&self, active: bool) {
        if active {
            self.active.fetch_add(1, Relaxed);
        } else {
            self.inactive.fetch_add(1, Relaxed);
        }
        self.check_overload();
    }

    /// A connection pointing here is gone (ip_vs_unbind_dest).
    pub(crate) fn unbind_conn(&self, active: bool) {
        if active {
            self.active.fetch_sub(1, Relaxed);
        } else {
            self.inactive.fetch_sub(1, Relaxed);
        }
        self.check_underload();
    }

    /// A connection moved between active and inactive.
    #[inline]
    pub(crate) fn move_conn(&self, to_active: bool) {
        if to_active {
            self.inactive.fetch_sub(1, Relaxed);
            self.active.fetch_add(1, Relaxed);
        } else {
            self.active.fetch_sub(1, Relaxed);
            self.inactive.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn bind_template(&self) {
        self.persist.fetch_add(1, Relaxed);
        self.check_overload();
    }

    pub(crate) fn unbind_template(&self) {
        self.persist.fetch_sub(1, Relaxed);
        self.check_underload();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    use crate::lb::service::Protocol;

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::new(Protocol::Tcp, ip(addr), port)
    }

    #[test]
    fn dr_and_tun_take_the_virtual_port() {
        let mut d = DestConfig::new(ip("10.0.0.1"), 8080);
        d.normalize(&tcp("192.168.1.100", 80)).unwrap();
        assert_eq!(d.port, 80);
        let mut t = DestConfig::new(ip("10.0.0.1"), 8080).with_fwd(FwdMethod::Tunnel {
            tun_type: TunType::Ipip,
            port: 0,
            csum: TunCsum::NoCsum,
        });
        t.normalize(&tcp("192.168.1.100", 80)).unwrap();
        assert_eq!(t.port, 80);
        let mut m = DestConfig::new(ip("10.0.0.1"), 8080).masq();
        m.normalize(&tcp("192.168.1.100", 80)).unwrap();
        assert_eq!(m.port, 8080);
    }

    #[test]
    fn dest_validation_messages() {
        let svc = tcp("192.168.1.100", 80);
        let err = |d: DestConfig| {
            let mut d = d;
            d.normalize(&svc).unwrap_err().to_string()
        };
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_weight(1 << 31)),
            "illegal weight specified"
        );
        // The kernel's ERANGE, with or without an upper threshold.
        for (u, l) in [(10, 20), (0, 20)] {
            assert_eq!(
                err(DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(u, l)),
                "Numerical result out of range"
            );
        }
        for a in ["0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255"] {
            assert_eq!(
                err(DestConfig::new(ip(a), 80)),
                "Invalid operation.  Possibly wrong module version, address not unicast, ...",
                "{a}"
            );
        }
        let v6 = |a: &str| {
            let mut d = DestConfig::new(ip(a), 80);
            d.normalize(&tcp("2001:db8::1", 80))
        };
        assert!(v6("ff02::1").is_err() && v6("fe80::1").is_err() && v6("::").is_err());
        assert!(v6("::ffff:10.0.0.1").is_err() && v6("::10.0.0.1").is_ok());
        assert!(v6("2001:db8::11").is_ok());
        let mut local = DestConfig::new(ip("127.0.0.1"), 80);
        assert!(
            local.normalize(&svc).is_ok(),
            "local addresses are the kernel's RTN_LOCAL"
        );
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(u32::MAX, 0)),
            "illegal u_threshold specified"
        );
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(0, u32::MAX)),
            "illegal l_threshold specified"
        );
        assert_eq!(
            err(DestConfig::new(ip("2001:db8::1"), 80)),
            "Address family of the real server does not match the virtual service"
        );
        let gue = FwdMethod::Tunnel {
            tun_type: TunType::Gue,
            port: 0,
            csum: TunCsum::NoCsum,
        };
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_fwd(gue)),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type"
        );
        let ipip_port = FwdMethod::Tunnel {
            tun_type: TunType::Ipip,
            port: 6080,
            csum: TunCsum::NoCsum,
        };
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_fwd(ipip_port)),
            "Illegal 'tun-port' option with the 'ipip' tunnel type"
        );
        let gre_rem = FwdMethod::Tunnel {
            tun_type: TunType::Gre,
            port: 0,
            csum: TunCsum::RemCsum,
        };
        assert_eq!(
            err(DestConfig::new(ip("10.0.0.1"), 80).with_fwd(gre_rem)),
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type"
        );
        let mut ok = DestConfig::new(ip("10.0.0.1"), 80)
            .with_weight(65535)
            .with_fwd(FwdMethod::Tunnel {
                tun_type: TunType::Gue,
                port: 6080,
                csum: TunCsum::RemCsum,
            });
        assert!(ok.normalize(&svc).is_ok());
    }

    #[test]
    fn families_and_fwmark_ports() {
        let tun = FwdMethod::Tunnel {
            tun_type: TunType::Ipip,
            port: 0,
            csum: TunCsum::NoCsum,
        };
        // An IPv4 tunnel real server behind an IPv6 service, not the reverse
        // and not for other methods.
        let v6svc = tcp("2001:db8::1", 80);
        assert!(DestConfig::new(ip("10.0.0.1"), 80)
            .with_fwd(tun)
            .normalize(&v6svc)
            .is_ok());
        assert!(DestConfig::new(ip("10.0.0.1"), 80)
            .normalize(&v6svc)
            .is_err());
        assert!(DestConfig::new(ip("10.0.0.1"), 80)
            .masq()
            .normalize(&v6svc)
            .is_err());
        let v4svc = tcp("10.0.0.100", 80);
        assert!(DestConfig::new(ip("2001:db8::11"), 80)
            .with_fwd(tun)
            .normalize(&v4svc)
            .is_err());
        // A fwmark service keeps the real server's port, whatever the method.
        let fwm = ServiceKey::fwmark(1, false);
        let mut dr = DestConfig::new(ip("10.0.0.1"), 0);
        dr.normalize(&fwm).unwrap();
        assert_eq!(dr.port, 0);
        let mut t = DestConfig::new(ip("10.0.0.1"), 443).with_fwd(tun);
        t.normalize(&fwm).unwrap();
        assert_eq!(t.port, 443);
        let mut v4_in_v6 = DestConfig::new(ip("10.0.0.1"), 0).with_fwd(tun);
        assert!(v4_in_v6.normalize(&ServiceKey::fwmark(1, true)).is_ok());
    }

    #[test]
    fn thresholds_set_and_clear() {
        // Upper 4, lower 0: overloaded at 4, cleared below 3 (3/4 of 4).
        let d = DestShared::new(
            1,
            &DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(4, 0),
            1,
        );
        for _ in 0..3 {
            d.bind_conn(false);
        }
        assert!(!d.overloaded());
        d.bind_conn(true);
        assert!(d.overloaded());
        d.unbind_conn(true); // 3 left: 3*4 < 4*3 is false
        assert!(d.overloaded());
        d.unbind_conn(false); // 2 left
        assert!(!d.overloaded());

        // Explicit lower threshold 2: cleared only below 2.
        let d = DestShared::new(
            2,
            &DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(3, 2),
            1,
        );
        for _ in 0..3 {
            d.bind_conn(false);
        }
        assert!(d.overloaded());
        d.unbind_conn(false);
        assert!(d.overloaded());
        d.unbind_conn(false);
        assert!(!d.overloaded());

        // Templates are not counted but an unbind re-evaluates.
        let d = DestShared::new(
            3,
            &DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(1, 0),
            1,
        );
        d.bind_template();
        assert!(!d.overloaded());
        d.bind_conn(false);
        assert!(d.overloaded());
        // Raising the upper threshold clears it once the connections are
        // below the new lower threshold (3/4 of 10 here).
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(10, 0));
        assert!(!d.overloaded());
        // Lowering it to the current count overloads at once.
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(1, 0));
        assert!(d.overloaded());
        // Two connections; raised to 5 with a lower threshold of 2: 2 is not
        // below 2, still overloaded; the same thresholds again change nothing.
        d.bind_conn(false);
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(5, 2));
        assert!(d.overloaded());
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(5, 2));
        assert!(d.overloaded());
        d.unbind_conn(false);
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(1, 0));
        d.bind_conn(false);
        assert!(d.overloaded());
        // No thresholds: an unbind clears.
        d.update(&DestConfig::new(ip("10.0.0.1"), 80).with_thresholds(0, 0));
        d.bind_conn(false);
        d.unbind_conn(false);
        assert!(!d.overloaded());
    }

    #[test]
    fn serde_forms() {
        let d = DestConfig::new(ip("10.0.0.3"), 443)
            .with_weight(2)
            .with_fwd(FwdMethod::Tunnel {
                tun_type: TunType::Gue,
                port: 6080,
                csum: TunCsum::NoCsum,
            });
        let j = serde_json::to_string(&d).unwrap();
        assert!(j.contains(r#""method":"tunnel""#), "{j}");
        assert!(j.contains(r#""type":"gue""#), "{j}");
        let back: DestConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, d);
        let min: DestConfig = serde_json::from_str(r#"{"addr":"10.0.0.1","port":80}"#).unwrap();
        assert_eq!(min, DestConfig::new(ip("10.0.0.1"), 80));
        let nat: DestConfig =
            serde_json::from_str(r#"{"addr":"10.0.0.1","port":80,"fwd":{"method":"masq"}}"#)
                .unwrap();
        assert_eq!(nat.fwd, FwdMethod::Masq);
    }
}
