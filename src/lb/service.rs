//! Virtual service configuration: protocol, address, port, scheduler,
//! flags, persistence, one-packet scheduling; validated with ipvsadm's rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::error::LbError;
use super::sched::{self, SchedFlags};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// As ipvsadm prints it (`TCP`, `UDP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A virtual service's identity: `-t|-u addr:port`, or `-f mark [-6]`.
///
/// Kept as the kernel keeps it: a fwmark service is the mark with the
/// unspecified address of its family, protocol TCP and port 0 (what
/// ipvsadm sends), so that one hashable key serves both kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub proto: Protocol,
    pub addr: IpAddr,
    pub port: u16,
    /// Non-zero for a fwmark service.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

fn is_zero(m: &u32) -> bool {
    *m == 0
}

impl ServiceKey {
    pub fn new(proto: Protocol, addr: IpAddr, port: u16) -> Self {
        ServiceKey {
            proto,
            addr,
            port,
            fwmark: 0,
        }
    }

    /// The fwmark service `mark` of one address family.
    pub fn fwmark(mark: u32, v6: bool) -> Self {
        let addr = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        ServiceKey {
            proto: Protocol::Tcp,
            addr,
            port: 0,
            fwmark: mark,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }

    /// The address clients send to, `None` for a fwmark service (its
    /// addresses are those the marks name).
    pub fn vip(&self) -> Option<IpAddr> {
        (!self.is_fwmark()).then_some(self.addr)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            _ if self.is_fwmark() && self.addr.is_ipv6() => write!(f, "FWM {} IPv6", self.fwmark),
            _ if self.is_fwmark() => write!(f, "FWM {}", self.fwmark),
            IpAddr::V4(a) => write!(f, "{} {}:{}", self.proto.name(), a, self.port),
            IpAddr::V6(a) => write!(f, "{} [{}]:{}", self.proto.name(), a, self.port),
        }
    }
}

/// `-M`: dotted mask for IPv4, prefix length for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Netmask {
    V4(Ipv4Addr),
    V6(u8),
}

impl Netmask {
    /// Apply the mask to a client address of the same family; a family
    /// mismatch leaves the address as it is.
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(m), IpAddr::V4(a)) => {
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m)))
            }
            (Netmask::V6(p), IpAddr::V6(a)) => {
                let p = p.min(128) as u32;
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => addr,
        }
    }

    /// The host mask (/32 or /128) for the family of `addr`.
    pub fn host(addr: IpAddr) -> Netmask {
        match addr {
            IpAddr::V4(_) => Netmask::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => Netmask::V6(128),
        }
    }
}

/// ipvsadm's default persistence timeout (`-p` without a value), seconds.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
/// ipvsadm's maximum timeout: 31 days.
pub const MAX_TIMEOUT: u32 = 31 * 24 * 60 * 60;

/// `-p [timeout] [-M netmask]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    /// Seconds, 1 ..= 31 days.
    pub timeout: u32,
    /// `None` = /32 (IPv4) or /128 (IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<Netmask>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            timeout: DEFAULT_PERSISTENCE_TIMEOUT,
            netmask: None,
        }
    }
}

/// `-b` scheduler flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SchedFlag {
    #[serde(rename = "sh-fallback")]
    ShFallback,
    #[serde(rename = "sh-port")]
    ShPort,
    #[serde(rename = "mh-fallback")]
    MhFallback,
    #[serde(rename = "mh-port")]
    MhPort,
}

impl SchedFlag {
    pub fn name(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
        }
    }

    pub fn parse(s: &str) -> Option<SchedFlag> {
        [
            SchedFlag::ShFallback,
            SchedFlag::ShPort,
            SchedFlag::MhFallback,
            SchedFlag::MhPort,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }

    /// The scheduler the flag belongs to.
    fn scheduler(self) -> &'static str {
        match self {
            SchedFlag::ShFallback | SchedFlag::ShPort => "sh",
            SchedFlag::MhFallback | SchedFlag::MhPort => "mh",
        }
    }
}

/// The ipvsadm default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";

fn default_scheduler() -> String {
    DEFAULT_SCHEDULER.to_string()
}

/// A virtual service (`-A`/`-E`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub key: ServiceKey,
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<SchedFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`), UDP only.
    #[serde(default)]
    pub ops: bool,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults (wlc, not persistent).
    pub fn new(proto: Protocol, addr: IpAddr, port: u16) -> Self {
        ServiceConfig {
            key: ServiceKey::new(proto, addr, port),
            scheduler: default_scheduler(),
            flags: Vec::new(),
            persistence: None,
            ops: false,
        }
    }

    /// A service with ipvsadm's defaults for any key (a fwmark's too).
    pub fn for_key(key: ServiceKey) -> Self {
        ServiceConfig {
            key,
            ..ServiceConfig::new(key.proto, key.addr, key.port)
        }
    }

    pub fn with_scheduler(mut self, name: &str) -> Self {
        self.scheduler = name.to_string();
        self
    }

    pub fn with_persistence(mut self, timeout: u32, netmask: Option<Netmask>) -> Self {
        self.persistence = Some(Persistence { timeout, netmask });
        self
    }

    pub fn with_flags(mut self, flags: &[SchedFlag]) -> Self {
        self.flags = flags.to_vec();
        self
    }

    pub fn with_ops(mut self) -> Self {
        self.ops = true;
        self
    }

    /// ipvsadm's checks (and the kernel's scheduler lookup), in ipvsadm's
    /// order.
    pub fn validate(&self) -> Result<(), LbError> {
        if let Some(p) = &self.persistence {
            if p.timeout < 1 || p.timeout > MAX_TIMEOUT {
                return Err(LbError::InvalidTimeout(p.timeout as u64));
            }
            match (p.netmask, self.key.addr) {
                (None, _) | (Some(Netmask::V4(_)), IpAddr::V4(_)) => {}
                (Some(Netmask::V6(n)), IpAddr::V6(_)) => {
                    if !(1..=128).contains(&n) {
                        return Err(LbError::IllegalIpv6Netmask);
                    }
                }
                (Some(Netmask::V6(_)), IpAddr::V4(_)) => return Err(LbError::IllegalNetmask),
                (Some(Netmask::V4(_)), IpAddr::V6(_)) => return Err(LbError::IllegalIpv6Netmask),
            }
        }
        for f in &self.flags {
            if f.scheduler() != self.scheduler {
                return Err(LbError::IncompatibleSchedFlag(f.name()));
            }
        }
        if self.key.is_fwmark() {
            // Any protocol may carry the mark: one-packet scheduling then
            // applies to its UDP packets.
            if self.key.addr.is_unspecified() && self.key.port == 0 {
                return sched_known(&self.scheduler);
            }
            return Err(LbError::NotUnicast);
        }
        if !is_unicast_vip(&self.key.addr) {
            return Err(LbError::NotUnicast);
        }
        if self.key.port == 0 && self.persistence.is_none() {
            return Err(LbError::ZeroPort);
        }
        if self.ops && self.key.proto != Protocol::Udp {
            return Err(LbError::OpsNotUdp);
        }
        sched_known(&self.scheduler)
    }

    /// The flags in the scheduler trait's form.
    pub fn sched_flags(&self) -> SchedFlags {
        let mut out = SchedFlags::default();
        for f in &self.flags {
            match f {
                SchedFlag::ShFallback | SchedFlag::MhFallback => out.fallback = true,
                SchedFlag::ShPort | SchedFlag::MhPort => out.port = true,
            }
        }
        out
    }

    /// The persistence netmask in effect (host mask when none was given).
    pub fn netmask(&self) -> Netmask {
        self.persistence
            .and_then(|p| p.netmask)
            .unwrap_or_else(|| Netmask::host(self.key.addr))
    }
}

fn sched_known(name: &str) -> Result<(), LbError> {
    if sched::NAMES.contains(&name) {
        Ok(())
    } else {
        Err(LbError::SchedulerNotFound)
    }
}

/// Whether clients can reach `addr` as a host: the input checks drop
/// anything else before the services are looked up.
fn is_unicast_vip(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => crate::wire::ipv4::is_unicast_host(*a),
        IpAddr::V6(a) => {
            crate::wire::ipv6::is_unicast_host(a) && a.segments()[0] & 0xffc0 != 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn virtual_addresses_are_unicast() {
        for vip in [
            "224.0.0.1",
            "239.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "ff02::1",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            let s = ServiceConfig::new(Protocol::Udp, v4(vip), 53);
            assert_eq!(
                s.validate().unwrap_err().to_string(),
                "Virtual address must be a unicast address",
                "{vip}"
            );
        }
        for vip in ["10.0.0.100", "198.51.100.1", "2001:db8::100"] {
            assert_eq!(
                ServiceConfig::new(Protocol::Udp, v4(vip), 53).validate(),
                Ok(())
            );
        }
    }

    #[test]
    fn validation_messages() {
        let base = ServiceConfig::new(Protocol::Tcp, v4("192.168.1.100"), 80);
        assert_eq!(base.validate(), Ok(()));

        let zero = ServiceConfig::new(Protocol::Tcp, v4("192.168.1.100"), 0);
        assert_eq!(
            zero.validate().unwrap_err().to_string(),
            "Zero port specified for non-persistent service"
        );
        assert_eq!(zero.clone().with_persistence(360, None).validate(), Ok(()));

        let ops = base.clone().with_ops();
        assert_eq!(
            ops.validate().unwrap_err().to_string(),
            "One-Packet Scheduling is only for UDP virtual services"
        );
        let udp_ops = ServiceConfig::new(Protocol::Udp, v4("192.168.1.100"), 53).with_ops();
        assert_eq!(udp_ops.validate(), Ok(()));

        let bad = base.clone().with_scheduler("wr");
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "Scheduler or persistence engine not found"
        );

        let shflag = base
            .clone()
            .with_scheduler("rr")
            .with_flags(&[SchedFlag::ShPort]);
        assert_eq!(
            shflag.validate().unwrap_err().to_string(),
            "incompatible scheduler flag `sh-port'"
        );
        let mhflag = base
            .clone()
            .with_scheduler("sh")
            .with_flags(&[SchedFlag::MhFallback]);
        assert_eq!(
            mhflag.validate().unwrap_err().to_string(),
            "incompatible scheduler flag `mh-fallback'"
        );
        let ok = base
            .clone()
            .with_scheduler("sh")
            .with_flags(&[SchedFlag::ShFallback, SchedFlag::ShPort]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.sched_flags(),
            SchedFlags {
                fallback: true,
                port: true
            }
        );

        let t0 = base.clone().with_persistence(0, None);
        assert_eq!(
            t0.validate().unwrap_err().to_string(),
            "invalid timeout value `0' specified"
        );
        let tmax = base.clone().with_persistence(MAX_TIMEOUT + 1, None);
        assert!(tmax.validate().is_err());
        assert_eq!(
            base.clone().with_persistence(MAX_TIMEOUT, None).validate(),
            Ok(())
        );

        let v6 = ServiceConfig::new(Protocol::Tcp, "2001:db8::1".parse().unwrap(), 80);
        assert_eq!(
            v6.clone()
                .with_persistence(60, Some(Netmask::V6(0)))
                .validate()
                .unwrap_err()
                .to_string(),
            "illegal ipv6 netmask specified"
        );
        assert_eq!(
            v6.with_persistence(60, Some(Netmask::V6(64))).validate(),
            Ok(())
        );
        assert_eq!(
            base.with_persistence(60, Some(Netmask::V6(64)))
                .validate()
                .unwrap_err()
                .to_string(),
            "illegal virtual server persistent mask specified"
        );
    }

    #[test]
    fn netmask_apply() {
        let m = Netmask::V4("255.255.255.0".parse().unwrap());
        assert_eq!(m.apply(v4("10.1.2.3")), v4("10.1.2.0"));
        let m6 = Netmask::V6(64);
        assert_eq!(
            m6.apply("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            Netmask::V6(128).apply("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn serde_round_trip() {
        let s = ServiceConfig::new(Protocol::Udp, v4("192.168.1.100"), 53)
            .with_persistence(360, Some(Netmask::V4("255.255.255.0".parse().unwrap())))
            .with_scheduler("rr");
        let j = serde_json::to_string(&s).unwrap();
        let back: ServiceConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
        // Defaults fill in.
        let min: ServiceConfig =
            serde_json::from_str(r#"{"key":{"proto":"tcp","addr":"10.0.0.1","port":80}}"#).unwrap();
        assert_eq!(min.scheduler, "wlc");
        assert!(!min.ops);
        let flags: ServiceConfig = serde_json::from_str(
            r#"{"key":{"proto":"tcp","addr":"10.0.0.1","port":80},"scheduler":"sh","flags":["sh-port"]}"#,
        )
        .unwrap();
        assert_eq!(flags.flags, vec![SchedFlag::ShPort]);
    }
}
