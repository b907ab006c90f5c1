//! rvsd's daemon configuration file (TOML). Documented in `docs/config.md`.
//!
//! ```toml
//! [eal]
//! args = ["-l", "0,1", "--no-huge", "-m", "512"]
//!
//! [workers]
//! lcores = [1]          # worker lcores; default: every EAL worker lcore
//! mbufs = 16383         # mbufs in the packet pool
//!
//! [[port]]
//! name = "client"
//! device = "net_af_packet0,iface=veth0"   # a vdev spec, or a PCI address
//! role = "client"                         # client | server | both
//! peer = "server"                         # L2 forwarding target
//! ```

use std::fmt;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub eal: EalConfig,
    #[serde(default)]
    pub workers: WorkersConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub lb: LbConfig,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
}

/// A static neighbour (permanent ARP/ND entry): `address` is at `mac` on `port`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub address: std::net::IpAddr,
    /// `02:00:00:00:00:01`
    pub mac: String,
    /// The port's name.
    pub port: String,
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (wire's parser, with the config's error).
pub fn parse_mac(s: &str) -> Result<[u8; 6], ConfigError> {
    s.parse::<crate::wire::EthernetAddress>()
        .map(|m| m.0)
        .map_err(|_| ConfigError(format!("{s:?}: expected a MAC address aa:bb:cc:dd:ee:ff")))
}

/// Where rvsd listens for rvsadm.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_socket")]
    pub socket: String,
}

pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

fn default_socket() -> String {
    DEFAULT_SOCKET.to_string()
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
        }
    }
}

/// Load-balancer sizing and the kernel's IPVS sysctls.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbConfig {
    /// Connection table capacity of each worker.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// net.ipv4.vs.expire_nodest_conn
    #[serde(default)]
    pub expire_nodest_conn: bool,
    /// net.ipv4.vs.expire_quiescent_template
    #[serde(default)]
    pub expire_quiescent_template: bool,
    /// net.ipv4.vs.conn_reuse_mode (0 or 1)
    #[serde(default = "default_reuse")]
    pub conn_reuse_mode: u8,
    /// Put each worker's connection table in the EAL's hugepage heap when
    /// the EAL runs on hugepages (else, and when there is no room, on the
    /// process heap).
    #[serde(default = "default_true")]
    pub table_hugepages: bool,
}

fn default_true() -> bool {
    true
}

fn default_connections() -> u32 {
    1 << 20
}

fn default_reuse() -> u8 {
    1
}

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            connections: default_connections(),
            table_hugepages: true,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: default_reuse(),
        }
    }
}

/// A static route: `prefix` reached through `via` on port `port`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `a.b.c.d/len` or `x::/len`; `0.0.0.0/0` and `::/0` are default routes.
    pub prefix: String,
    pub via: std::net::IpAddr,
    /// The port's name.
    pub port: String,
}

/// An interface address with its prefix length, `10.0.0.1/24`.
pub fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8), ConfigError> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| ConfigError(format!("{s:?}: expected ADDRESS/PREFIXLEN")))?;
    let addr: std::net::IpAddr = a
        .parse()
        .map_err(|_| ConfigError(format!("{s:?}: bad address")))?;
    let len: u8 = l
        .parse()
        .map_err(|_| ConfigError(format!("{s:?}: bad prefix length")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(ConfigError(format!("{s:?}: prefix length over {max}")));
    }
    Ok((addr, len))
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// EAL arguments (without argv[0]); command-line EAL arguments after
    /// `--` are appended after these.
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Worker lcore ids; empty = every worker lcore the EAL enabled.
    #[serde(default)]
    pub lcores: Vec<u32>,
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
}

fn default_mbufs() -> u32 {
    16383
}

fn default_desc() -> u16 {
    1024
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            lcores: Vec::new(),
            mbufs: default_mbufs(),
            rx_desc: default_desc(),
            tx_desc: default_desc(),
        }
    }
}

/// Which side of the balancer a port faces; decides its RSS fields.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Faces clients: RSS on source fields.
    Client,
    /// Faces real servers: RSS on destination fields.
    Server,
    /// One-arm: both on one port.
    #[default]
    Both,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    /// `net_xxx[,key=value...]` (a DPDK virtual device) or a PCI address.
    pub device: String,
    #[serde(default)]
    pub role: Role,
    /// The port whose traffic this one forwards to (L2 forwarding); default:
    /// the next port in the file, the last one pairs with the first.
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub mtu: Option<u16>,
    /// The balancer's own addresses on this port, `ADDRESS/PREFIXLEN`.
    #[serde(default)]
    pub addresses: Vec<String>,
}

impl PortConfig {
    /// True when `device` names a virtual device rather than a PCI address.
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_") || self.device.starts_with("eth_")
    }

    /// The DPDK device name (the vdev name without its arguments).
    pub fn dev_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parse and check a configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ports.is_empty() {
            return Err(ConfigError("no [[port]] configured".into()));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.name.is_empty() || p.device.is_empty() {
                return Err(ConfigError(format!(
                    "port {i}: name and device are required"
                )));
            }
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(ConfigError(format!("port name {:?} used twice", p.name)));
            }
            if self.ports[..i].iter().any(|q| q.dev_name() == p.dev_name()) {
                return Err(ConfigError(format!("device {:?} used twice", p.dev_name())));
            }
            if let Some(peer) = &p.peer {
                if !self.ports.iter().any(|q| &q.name == peer) {
                    return Err(ConfigError(format!(
                        "port {:?}: peer {:?} is not a configured port",
                        p.name, peer
                    )));
                }
            }
        }
        for p in &self.ports {
            for a in &p.addresses {
                parse_cidr(a).map_err(|e| ConfigError(format!("port {:?}: {e}", p.name)))?;
            }
        }
        for r in &self.routes {
            parse_cidr(&r.prefix).map_err(|e| ConfigError(format!("route: {e}")))?;
            if !self.ports.iter().any(|p| p.name == r.port) {
                return Err(ConfigError(format!(
                    "route {}: port {:?} is not a configured port",
                    r.prefix, r.port
                )));
            }
        }
        for n in &self.neighbors {
            parse_mac(&n.mac)?;
            if !self.ports.iter().any(|p| p.name == n.port) {
                return Err(ConfigError(format!(
                    "neighbor {}: port {:?} is not a configured port",
                    n.address, n.port
                )));
            }
        }
        if self.lb.connections < 1024 {
            return Err(ConfigError("lb.connections must be at least 1024".into()));
        }
        if self.control.socket.is_empty() {
            return Err(ConfigError("control.socket must not be empty".into()));
        }
        if self.workers.mbufs < 1024 {
            return Err(ConfigError("workers.mbufs must be at least 1024".into()));
        }
        Ok(())
    }

    /// The L2 peer of each port, as indexes into `ports`.
    pub fn peers(&self) -> Vec<u16> {
        let n = self.ports.len();
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.peer {
                Some(name) => self.ports.iter().position(|q| &q.name == name).unwrap_or(i) as u16,
                None if n == 1 => 0,
                None => ((i + 1) % n) as u16,
            })
            .collect()
    }

    /// EAL arguments implied by the ports (`--vdev` for virtual devices,
    /// `-a` for PCI devices).
    pub fn device_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.ports {
            out.push(if p.is_vdev() { "--vdev" } else { "-a" }.to_string());
            out.push(p.device.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[eal]
args = ["-l", "0,1", "--no-huge"]

[workers]
lcores = [1]

[[port]]
name = "client"
device = "net_af_packet0,iface=v0"
role = "client"

[[port]]
name = "server"
device = "0000:01:00.0"
role = "server"
peer = "client"
addresses = ["10.0.0.1/24", "2001:db8::1/64"]

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.0.254"
port = "server"

[[neighbor]]
address = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "server"
"#;

    #[test]
    fn parses_sample() {
        let c = Config::parse(SAMPLE).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[0].role, Role::Client);
        assert_eq!(c.ports[0].dev_name(), "net_af_packet0");
        assert!(!c.ports[1].is_vdev());
        assert_eq!(c.peers(), vec![1, 0]);
        assert_eq!(
            c.device_args(),
            vec!["--vdev", "net_af_packet0,iface=v0", "-a", "0000:01:00.0"]
        );
        assert_eq!(c.workers.mbufs, 16383);
        assert_eq!(c.control.socket, "/run/rvs/rvsd.sock");
        assert_eq!(
            c.routes[0].via,
            "10.0.0.254".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(parse_cidr(&c.ports[1].addresses[1]).unwrap().1, 64);
        assert_eq!(
            parse_mac(&c.neighbors[0].mac).unwrap(),
            [2, 0, 0, 0, 0, 0xfe]
        );
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
    }

    #[test]
    fn rejects_bad_configs() {
        for (text, want) in [
            ("", "no [[port]]"),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\npeer='b'\n",
                "peer \"b\"",
            ),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\n[[port]]\nname='a'\ndevice='net_null1'\n",
                "used twice",
            ),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\nspeed=3\n",
                "unknown field",
            ),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\nrole='sideways'\n",
                "unknown variant",
            ),
            (
                "[workers]\nmbufs=10\n[[port]]\nname='a'\ndevice='net_null0'\n",
                "at least 1024",
            ),
            ("this is not toml", "expected"),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\naddresses=['10.0.0.1']\n",
                "ADDRESS/PREFIXLEN",
            ),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\naddresses=['10.0.0.1/33']\n",
                "prefix length over 32",
            ),
            (
                "[[port]]\nname='a'\ndevice='net_null0'\n[[route]]\nprefix='0.0.0.0/0'\nvia='1.2.3.4'\nport='b'\n",
                "not a configured port",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.0.contains(want), "{text:?} gave {e}");
        }
    }
}
