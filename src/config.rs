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
    #[serde(default)]
    pub icmp: IcmpConfig,
    #[serde(default)]
    pub fragments: FragmentsConfig,
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

/// Where rvsd listens for rvsadm, and how much any client may hold.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_socket")]
    pub socket: String,
    /// Connections held at once; past that, the one that has waited on
    /// its client the longest is closed for the newcomer.
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// Longest request line, bytes (a restore of many services is long).
    #[serde(default = "default_max_line")]
    pub max_line: usize,
    /// Milliseconds a client may stay silent between requests.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
    /// Milliseconds a request may take to arrive whole (from its first
    /// byte: trickling does not extend it).
    #[serde(default = "default_request_ms")]
    pub request_ms: u64,
    /// Milliseconds an answer may take to be read by the client.
    #[serde(default = "default_write_ms")]
    pub write_ms: u64,
}

fn control_defaults() -> crate::control::listener::Limits {
    crate::control::listener::Limits::default()
}
fn default_max_clients() -> usize {
    control_defaults().max_clients
}
fn default_max_line() -> usize {
    control_defaults().max_line
}
fn default_idle_ms() -> u64 {
    control_defaults().deadlines.idle.as_millis() as u64
}
fn default_request_ms() -> u64 {
    control_defaults().deadlines.request.as_millis() as u64
}
fn default_write_ms() -> u64 {
    control_defaults().deadlines.write.as_millis() as u64
}

impl ControlConfig {
    /// The listener's limits.
    pub fn limits(&self) -> crate::control::listener::Limits {
        use std::time::Duration;
        let mut l = control_defaults();
        l.max_clients = self.max_clients;
        l.max_line = self.max_line;
        l.deadlines.idle = Duration::from_millis(self.idle_ms);
        l.deadlines.request = Duration::from_millis(self.request_ms);
        l.deadlines.write = Duration::from_millis(self.write_ms);
        l
    }
}

pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

fn default_socket() -> String {
    DEFAULT_SOCKET.to_string()
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
            max_clients: default_max_clients(),
            max_line: default_max_line(),
            idle_ms: default_idle_ms(),
            request_ms: default_request_ms(),
            write_ms: default_write_ms(),
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
    /// When the connection table is full, a new connection takes the place
    /// of the oldest handshake never finished (SYN_RECV): a spoofed SYN
    /// flood then delays no one. Off: the table refuses (drop.table_full).
    #[serde(default = "default_true")]
    pub evict_embryonic: bool,
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
            evict_embryonic: true,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: default_reuse(),
        }
    }
}

/// Limits on the ICMP errors rvsd sends, as the kernel's sysctls of the
/// same names (0 turns one off). `msgs_per_sec` and `msgs_burst` are for
/// the whole daemon: each worker gets its share.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IcmpConfig {
    /// net.ipv4.icmp_ratelimit: milliseconds between errors to one destination.
    #[serde(default = "default_icmp_ratelimit")]
    pub ratelimit_ms: u64,
    /// net.ipv4.icmp_msgs_per_sec
    #[serde(default = "default_icmp_msgs_per_sec")]
    pub msgs_per_sec: u64,
    /// net.ipv4.icmp_msgs_burst
    #[serde(default = "default_icmp_msgs_burst")]
    pub msgs_burst: u64,
}

fn default_icmp_ratelimit() -> u64 {
    crate::net::IcmpLimitConfig::default().ratelimit_ms
}

fn default_icmp_msgs_per_sec() -> u64 {
    crate::net::IcmpLimitConfig::default().msgs_per_sec
}

fn default_icmp_msgs_burst() -> u64 {
    crate::net::IcmpLimitConfig::default().msgs_burst
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            ratelimit_ms: default_icmp_ratelimit(),
            msgs_per_sec: default_icmp_msgs_per_sec(),
            msgs_burst: default_icmp_msgs_burst(),
        }
    }
}

impl IcmpConfig {
    /// One worker's limits, of `workers`: the global rate and burst split
    /// evenly (rounded up, so that a limit never becomes 0, which is off).
    pub fn per_worker(&self, workers: usize) -> crate::net::IcmpLimitConfig {
        let n = workers.max(1) as u64;
        crate::net::IcmpLimitConfig {
            ratelimit_ms: self.ratelimit_ms,
            msgs_per_sec: self.msgs_per_sec.div_ceil(n),
            msgs_burst: self.msgs_burst.div_ceil(n),
        }
    }
}

/// IP reassembly, per worker (fragments are reassembled by the worker
/// they arrive at): like the kernel's `ipfrag_time` and
/// `ipfrag_high_thresh`, in datagrams and fragments rather than bytes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FragmentsConfig {
    /// Datagrams being reassembled at a time; beyond, the oldest is given up.
    pub max_datagrams: usize,
    /// Fragments held at a time (each holds an mbuf); likewise.
    pub max_fragments: usize,
    /// Milliseconds a datagram may take to arrive whole.
    pub timeout_ms: u64,
    /// Buffers of 64 KiB shared by the workers for datagrams that do not
    /// fit a packet mbuf once reassembled; 0: such datagrams are dropped.
    pub big_buffers: u32,
}

impl Default for FragmentsConfig {
    fn default() -> Self {
        let d = crate::net::reassembly::ReassemblyConfig::default();
        FragmentsConfig {
            max_datagrams: d.max_datagrams,
            max_fragments: d.max_fragments,
            timeout_ms: d.timeout_ms,
            big_buffers: 63,
        }
    }
}

impl FragmentsConfig {
    pub fn reassembly(&self) -> crate::net::reassembly::ReassemblyConfig {
        crate::net::reassembly::ReassemblyConfig {
            max_datagrams: self.max_datagrams,
            max_fragments: self.max_fragments,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Data room of a big buffer: the largest an mbuf can have.
pub const BIG_DATA_ROOM: u16 = u16::MAX;

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
    /// Microseconds an idle worker sleeps after a few hundred empty polls
    /// (0, the default: never; poll-mode workers own their cores). For
    /// sharing a small machine with other rvsd, routing daemons or test
    /// tools; a frame arriving during the sleep waits for its end.
    #[serde(default)]
    pub idle_sleep_us: u32,
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
            idle_sleep_us: 0,
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
    /// The MAC rvsd answers ARP/ND with, accepts frames to and sends from
    /// on this port (default: the device's). Ports run promiscuous, so any
    /// unicast MAC works, whatever the driver can program.
    #[serde(default)]
    pub mac: Option<String>,
    /// The balancer's own addresses on this port, `ADDRESS/PREFIXLEN`
    /// (untagged traffic).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// 802.1Q VLAN sub-interfaces (`[[port.vlan]]`). A port with VLANs and
    /// no addresses of its own carries tagged traffic only.
    #[serde(default, rename = "vlan")]
    pub vlans: Vec<VlanConfig>,
    /// A kernel interface standing for this port (`[port.twin]`).
    #[serde(default)]
    pub twin: Option<TwinConfig>,
}

/// A port's kernel twin: a kernel network interface (DPDK's `net_tap`)
/// with the port's MAC, MTU and addresses. What rvsd does not consume
/// (traffic to the own addresses, routing protocols, multicast, LLDP)
/// goes to it; what the kernel sends on it goes out the port. See
/// docs/twin.md.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwinConfig {
    /// The kernel interface's name (default `rvs-PORT`, cut to 15 bytes).
    #[serde(default)]
    pub name: Option<String>,
    /// Give the twin the port's addresses (default true). Off: whoever
    /// runs the host sets them; traffic to the port's addresses still goes
    /// to the twin.
    #[serde(default = "yes")]
    pub addresses: bool,
    /// Who owns a VIP, answering ARP/ND for it: rvsd, for every VIP of a
    /// service (`always`, the default), or whoever puts the VIP on the
    /// twin as an address (`twin`: `ip addr add`, keepalived's VRRP, a
    /// routing daemon), rvsd answering only while it is there.
    #[serde(default)]
    pub vips: VipOwner,
    /// Put every VIP of a service on the twin as a /32 or /128 address
    /// while the service exists, and take them off before rvsd stops, so
    /// that a routing daemon announcing the twin's host routes announces
    /// the VIPs (default false).
    #[serde(default)]
    pub announce: bool,
    /// With `announce`: how long rvsd waits, after taking the VIPs off at
    /// stop, for the routing daemon to withdraw them (default 1000).
    #[serde(default = "default_withdraw_ms")]
    pub withdraw_ms: u32,
}

/// Who decides that this director answers ARP/ND for a VIP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VipOwner {
    #[default]
    Always,
    Twin,
}

fn yes() -> bool {
    true
}

fn default_withdraw_ms() -> u32 {
    1000
}

impl TwinConfig {
    /// The kernel interface's name for port `port`.
    pub fn iface_name(&self, port: &str) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => {
                let mut n = format!("rvs-{port}");
                while n.len() > 15 {
                    n.pop();
                }
                n
            }
        }
    }
}

/// A VLAN sub-interface of a port: frames tagged with `id` belong to it,
/// frames it sends carry the tag. It shares the port's MAC.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// The VLAN id, 1..=4094.
    pub id: u16,
    /// What routes and neighbours call it (default `PORT.ID`).
    #[serde(default)]
    pub name: Option<String>,
    /// Default: the port's.
    #[serde(default)]
    pub role: Option<Role>,
    /// Default and at most: the port's.
    #[serde(default)]
    pub mtu: Option<u16>,
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// One interface as the datapath sees it: a port, or a VLAN on one.
#[derive(Clone, Debug, PartialEq)]
pub struct Interface<'a> {
    pub name: String,
    /// Index into [`Config::ports`] of the port it is on.
    pub port: usize,
    pub vlan: Option<u16>,
    pub role: Role,
    pub mtu: Option<u16>,
    pub addresses: &'a [String],
}

impl PortConfig {
    /// True when `device` names a virtual device rather than a PCI address.
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_") || self.device.starts_with("eth_")
    }

    /// The DPDK device name (the vdev name or PCI address without its
    /// arguments).
    pub fn dev_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }

    /// The PCI address of a PCI port (`None` for a virtual device or text
    /// that is not an address).
    pub fn pci(&self) -> Option<crate::pci::PciAddr> {
        self.pci_addr().ok().flatten()
    }

    /// `Ok(None)` for a virtual device, the address of a PCI device, or
    /// the error for text that is neither.
    fn pci_addr(&self) -> Result<Option<crate::pci::PciAddr>, ConfigError> {
        if self.is_vdev() {
            return Ok(None);
        }
        self.dev_name().parse().map(Some).map_err(|e| {
            ConfigError(format!(
                "port {:?}: device {e}; virtual devices start with net_",
                self.name
            ))
        })
    }

    /// Write a PCI device's address the way EAL names its port
    /// (`3B:00.0` -> `0000:3b:00.0`), keeping any device arguments.
    fn normalise_device(&mut self) -> Result<(), ConfigError> {
        let Some(addr) = self.pci_addr()? else {
            return Ok(());
        };
        let args = self.device.split_once(',').map(|(_, a)| a.to_string());
        self.device = match args {
            Some(a) => format!("{addr},{a}"),
            None => addr.to_string(),
        };
        Ok(())
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
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.normalise()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Write every PCI device's address the way EAL names its port (ports
    /// added after [`Config::parse`], e.g. from the command line, need it
    /// before [`Config::validate`]).
    pub fn normalise(&mut self) -> Result<(), ConfigError> {
        for p in &mut self.ports {
            if !p.device.is_empty() {
                p.normalise_device()?;
            }
        }
        Ok(())
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
            p.pci_addr()?;
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
        self.validate_vlans()?;
        let ifaces = self.interfaces();
        for (i, f) in ifaces.iter().enumerate() {
            for a in f.addresses {
                parse_cidr(a).map_err(|e| ConfigError(format!("port {:?}: {e}", f.name)))?;
            }
            if ifaces[..i].iter().any(|g| g.name == f.name) {
                return Err(ConfigError(format!(
                    "interface name {:?} used twice",
                    f.name
                )));
            }
        }
        for r in &self.routes {
            parse_cidr(&r.prefix).map_err(|e| ConfigError(format!("route: {e}")))?;
            if !ifaces.iter().any(|f| f.name == r.port) {
                return Err(ConfigError(format!(
                    "route {}: port {:?} is not a configured port",
                    r.prefix, r.port
                )));
            }
        }
        for n in &self.neighbors {
            parse_mac(&n.mac)?;
            if !ifaces.iter().any(|f| f.name == n.port) {
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
        let c = &self.control;
        if c.max_clients == 0
            || c.max_line < 1024
            || c.idle_ms == 0
            || c.request_ms == 0
            || c.write_ms == 0
        {
            return Err(ConfigError(
                "control: max_clients and the deadlines must be above 0, max_line at least 1024"
                    .into(),
            ));
        }
        if self.workers.mbufs < 1024 {
            return Err(ConfigError("workers.mbufs must be at least 1024".into()));
        }
        self.validate_twins()?;
        for p in &self.ports {
            if let Some(m) = p.mtu.filter(|m| !(MIN_MTU..=MAX_MTU).contains(m)) {
                return Err(ConfigError(format!(
                    "port {}: mtu {m}: must be {MIN_MTU}..={MAX_MTU}",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// Each twin: a name the kernel takes (1..=15 bytes, no `/`, blank or
    /// `:`), once.
    fn validate_twins(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<String> = Vec::new();
        for p in &self.ports {
            let Some(t) = &p.twin else { continue };
            let n = t.iface_name(&p.name);
            let bad = |c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control();
            if n.is_empty() || n.len() > 15 || n.chars().any(bad) || n == "." || n == ".." {
                return Err(ConfigError(format!(
                    "port {:?}: twin name {n:?}: an interface name is 1 to 15 bytes, without '/', ':' or blanks",
                    p.name
                )));
            }
            if seen.contains(&n) {
                return Err(ConfigError(format!("twin name {n:?} used twice")));
            }
            if t.withdraw_ms > 60_000 {
                return Err(ConfigError(format!(
                    "port {:?}: twin withdraw_ms {}: at most 60000",
                    p.name, t.withdraw_ms
                )));
            }
            seen.push(n);
        }
        if self.workers.idle_sleep_us > 100_000 {
            return Err(ConfigError(format!(
                "workers.idle_sleep_us {}: at most 100000",
                self.workers.idle_sleep_us
            )));
        }
        Ok(())
    }

    /// Each `[[port.vlan]]`: an id in 1..=4094 once per port, an MTU no
    /// larger than its port's.
    fn validate_vlans(&self) -> Result<(), ConfigError> {
        for p in &self.ports {
            for (i, v) in p.vlans.iter().enumerate() {
                let at = format!("port {:?}: vlan {}", p.name, v.id);
                if !(1..=4094).contains(&v.id) {
                    return Err(ConfigError(format!("{at}: the id must be 1..=4094")));
                }
                if p.vlans[..i].iter().any(|w| w.id == v.id) {
                    return Err(ConfigError(format!("{at}: configured twice")));
                }
                let port_mtu = p.mtu.unwrap_or(crate::net::iface::DEFAULT_MTU);
                if let Some(m) = v.mtu.filter(|m| !(MIN_MTU..=port_mtu).contains(m)) {
                    return Err(ConfigError(format!(
                        "{at}: mtu {m}: must be {MIN_MTU}..={port_mtu} (the port's)"
                    )));
                }
                if v.name.as_deref() == Some("") {
                    return Err(ConfigError(format!("{at}: the name must not be empty")));
                }
            }
        }
        Ok(())
    }

    /// Every interface in the datapath's order: the ports first (interface
    /// `i` is port `i`), then each port's VLANs.
    pub fn interfaces(&self) -> Vec<Interface<'_>> {
        let mut out: Vec<Interface<'_>> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| Interface {
                name: p.name.clone(),
                port: i,
                vlan: None,
                role: p.role,
                mtu: p.mtu,
                addresses: &p.addresses,
            })
            .collect();
        for (i, p) in self.ports.iter().enumerate() {
            for v in &p.vlans {
                out.push(Interface {
                    name: v
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}.{}", p.name, v.id)),
                    port: i,
                    vlan: Some(v.id),
                    role: v.role.unwrap_or(p.role),
                    mtu: v.mtu.or(p.mtu),
                    addresses: &v.addresses,
                });
            }
        }
        out
    }

    /// The interface index of a port's or VLAN's name.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces().iter().position(|f| f.name == name)
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

    /// Every EAL argument rvsd starts with: the file's `[eal] args`, the
    /// devices, then the command line's, plus what keeps EAL from taking
    /// what is not configured and from leaving memory behind:
    ///
    /// - PCI: only the configured devices are probed (`-a` each), or none
    ///   (`--no-pci`), unless an allow/block list or `--no-pci` was given.
    /// - Hugepages: `--in-memory` (no files in hugetlbfs, every page back to
    ///   the kernel when rvsd exits, however it exits; no hugetlbfs mount
    ///   needed), or `--huge-unlink` when a `--file-prefix` was given.
    /// - `--no-huge` without `-m`: `-m` sized for the packet pool.
    ///
    /// `--socket-mem` with `--no-huge` is refused here with a hint (EAL
    /// refuses it without one).
    pub fn eal_args(&self, cli: &[String]) -> Result<Vec<String>, ConfigError> {
        let mut user: Vec<String> = self.eal.args.clone();
        user.extend(cli.iter().cloned());
        let has = |names: &[&str]| {
            user.iter().any(|a| {
                names
                    .iter()
                    .any(|n| a == n || a.starts_with(&format!("{n}=")))
            })
        };
        let no_huge = has(&["--no-huge"]);
        if no_huge && has(&["--socket-mem"]) {
            return Err(ConfigError(
                "--socket-mem cannot be used with --no-huge: give -m MB instead (or leave both out)"
                    .into(),
            ));
        }
        let mut out = vec!["rvsd".to_string()];
        out.extend(self.eal.args.iter().cloned());
        let pci_chosen = has(&["-a", "--allow", "-b", "--block", "--no-pci", "-w"]);
        for p in &self.ports {
            if p.is_vdev() {
                out.push("--vdev".into());
                out.push(p.device.clone());
            } else if !pci_chosen {
                out.push("-a".into());
                out.push(p.device.clone());
            }
        }
        if !pci_chosen && self.ports.iter().all(|p| p.is_vdev()) {
            out.push("--no-pci".into());
        }
        if !has(&["--in-memory", "--huge-unlink", "--no-huge"]) {
            out.push(
                if has(&["--file-prefix"]) {
                    "--huge-unlink"
                } else {
                    "--in-memory"
                }
                .into(),
            );
        }
        if no_huge && !has(&["-m"]) {
            out.push("-m".into());
            out.push(self.no_huge_memory_mb().to_string());
        }
        out.extend(cli.iter().cloned());
        Ok(out)
    }

    /// EAL memory (MiB) for `--no-huge` without `-m`: the packet pool
    /// (connection tables are on the process heap without hugepages) and
    /// room for the drivers' rings and EAL's own tables.
    pub fn no_huge_memory_mb(&self) -> u64 {
        (self.pool_bytes() >> 20) + 256
    }

    /// Bytes of the packet pool (mbufs with their headers and headroom).
    pub fn pool_bytes(&self) -> u64 {
        self.workers.mbufs as u64 * (self.mbuf_data_room() as u64 + MBUF_OVERHEAD)
            + self.fragments.big_buffers as u64 * (BIG_DATA_ROOM as u64 + MBUF_OVERHEAD)
    }

    /// Data room of each mbuf in the packet pool: 128 bytes of headroom
    /// (room for tunnel headers) and 2048 of data, or what the largest
    /// port MTU needs (Ethernet header, two VLAN tags), so that a frame is
    /// always one contiguous segment: jumbo frames cost memory, not a
    /// chained-mbuf path in every parser. Whole KiB: what NICs' receive
    /// buffer sizes (and net_af_packet's ring frames) come in.
    pub fn mbuf_data_room(&self) -> u16 {
        let mtu = self.ports.iter().filter_map(|p| p.mtu).max().unwrap_or(0);
        let frame = (mtu as usize + 14 + 8).next_multiple_of(1024).max(2048);
        (frame + MBUF_HEADROOM) as u16
    }
}

/// Headroom of each mbuf (DPDK's default).
pub const MBUF_HEADROOM: usize = 128;

/// One mbuf besides its data room: the 128-byte `rte_mbuf` and the
/// mempool's header, rounded to cache lines.
pub const MBUF_OVERHEAD: u64 = 128 + 64;

/// Port MTUs rvsd accepts: IPv4's minimum, and a jumbo frame of 9216 bytes
/// less its Ethernet header and two VLAN tags.
pub const MIN_MTU: u16 = 68;
pub const MAX_MTU: u16 = 9216 - 22;

#[cfg(test)]
mod eal_tests {
    use super::*;

    fn cfg(devices: &[&str], eal: &[&str]) -> Config {
        let mut text = format!(
            "[eal]\nargs = [{}]\n",
            eal.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (i, d) in devices.iter().enumerate() {
            text += &format!("[[port]]\nname = 'p{i}'\ndevice = '{d}'\n");
        }
        Config::parse(&text).unwrap()
    }

    fn args(c: &Config, cli: &[&str]) -> Vec<String> {
        let cli: Vec<String> = cli.iter().map(|s| s.to_string()).collect();
        c.eal_args(&cli).unwrap()
    }

    #[test]
    fn only_configured_pci_devices_are_probed() {
        let c = cfg(&["3B:00.0", "net_null0"], &["-l", "0,1"]);
        assert_eq!(c.ports[0].device, "0000:3b:00.0");
        assert_eq!(
            args(&c, &[]),
            [
                "rvsd",
                "-l",
                "0,1",
                "-a",
                "0000:3b:00.0",
                "--vdev",
                "net_null0",
                "--in-memory"
            ]
        );
        let v = cfg(&["net_null0"], &[]);
        assert!(args(&v, &[]).contains(&"--no-pci".to_string()));
        // The operator's own list wins.
        let own = args(&c, &["-b", "0000:00:03.0"]);
        assert!(!own.iter().any(|a| a == "-a" || a == "--no-pci"), "{own:?}");
        let own = args(&v, &["--no-pci"]);
        assert_eq!(own.iter().filter(|a| *a == "--no-pci").count(), 1);
    }

    #[test]
    fn pci_devices_keep_their_arguments() {
        let c = cfg(&["3b:00.1,rxq_pkt_pad_en=1"], &[]);
        assert_eq!(c.ports[0].device, "0000:3b:00.1,rxq_pkt_pad_en=1");
        assert_eq!(c.ports[0].dev_name(), "0000:3b:00.1");
        let e = Config::parse("[[port]]\nname='a'\ndevice='eth0'\n").unwrap_err();
        assert!(e.0.contains("not a PCI address"), "{e}");
    }

    #[test]
    fn memory_options_leave_nothing_behind() {
        let c = cfg(&["net_null0"], &[]);
        assert!(args(&c, &[]).contains(&"--in-memory".to_string()));
        let p = args(&c, &["--file-prefix", "x"]);
        assert!(p.contains(&"--huge-unlink".to_string()));
        assert!(!p.contains(&"--in-memory".to_string()));
        let n = args(&c, &["--no-huge"]);
        assert!(!n.contains(&"--in-memory".to_string()));
        let m = n.iter().position(|a| a == "-m").expect("-m added");
        assert_eq!(n[m + 1], c.no_huge_memory_mb().to_string());
        assert!(c.no_huge_memory_mb() > c.pool_bytes() >> 20);
        let given = args(&c, &["--no-huge", "-m", "700"]);
        assert_eq!(given.iter().filter(|a| *a == "-m").count(), 1);
        let e = c
            .eal_args(&["--no-huge".into(), "--socket-mem".into(), "1024".into()])
            .unwrap_err();
        assert!(e.0.contains("give -m"), "{e}");
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
    fn vlans() {
        let text = r#"
[[port]]
name = "trunk"
device = "net_null0"
role = "client"
mtu = 9000

[[port.vlan]]
id = 10
addresses = ["10.0.10.1/24"]

[[port.vlan]]
id = 20
name = "servers"
role = "server"
mtu = 1500
addresses = ["10.0.20.1/24"]

[[port]]
name = "other"
device = "net_null1"

[[route]]
prefix = "0.0.0.0/0"
via = "10.0.20.254"
port = "servers"

[[neighbor]]
address = "10.0.10.9"
mac = "02:00:00:00:00:09"
port = "trunk.10"
"#;
        let c = Config::parse(text).unwrap();
        let f = c.interfaces();
        let names: Vec<_> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["trunk", "other", "trunk.10", "servers"]);
        assert_eq!(
            (f[2].port, f[2].vlan, f[2].role, f[2].mtu),
            (0, Some(10), Role::Client, Some(9000))
        );
        assert_eq!(
            (f[3].port, f[3].vlan, f[3].role, f[3].mtu),
            (0, Some(20), Role::Server, Some(1500))
        );
        assert_eq!(c.interface_index("servers"), Some(3));
        for (bad, why) in [
            ("id = 10", "configured twice"),
            ("id = 0", "1..=4094"),
            ("id = 4095", "1..=4094"),
            ("id = 30\nmtu = 9100", "the port's"),
            ("id = 30\nname = \"other\"", "used twice"),
            ("id = 30\nname = \"\"", "must not be empty"),
        ] {
            let t = text.replace(
                "[[port]]\nname = \"other\"",
                &format!("[[port.vlan]]\n{bad}\n\n[[port]]\nname = \"other\""),
            );
            // The extra VLAN lands on port "trunk" (it precedes "other").
            let e = Config::parse(&t).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let unknown = text.replace("port = \"servers\"", "port = \"trunk.30\"");
        assert!(Config::parse(&unknown)
            .unwrap_err()
            .to_string()
            .contains("trunk.30"));
    }

    #[test]
    fn parses_sample() {
        let c = Config::parse(SAMPLE).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[0].role, Role::Client);
        assert_eq!(c.ports[0].dev_name(), "net_af_packet0");
        assert!(!c.ports[1].is_vdev());
        assert_eq!(c.peers(), vec![1, 0]);
        assert_eq!(
            c.eal_args(&[]).unwrap(),
            vec![
                "rvsd",
                "-l",
                "0,1",
                "--no-huge",
                "--vdev",
                "net_af_packet0,iface=v0",
                "-a",
                "0000:01:00.0",
                "-m",
                &c.no_huge_memory_mb().to_string()
            ]
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

#[cfg(test)]
mod limit_tests {
    use super::*;

    const PORT: &str = "[[port]]\nname = \"p\"\ndevice = \"net_null0\"\n";

    #[test]
    fn control_limits_fragments_and_mtu_from_the_file() {
        let c = Config::parse(&format!(
            "[control]\nmax_clients = 4\nrequest_ms = 250\n[fragments]\ntimeout_ms = 700\nbig_buffers = 0\n{PORT}mtu = 9000\n"
        ))
        .unwrap();
        let l = c.control.limits();
        assert_eq!(l.max_clients, 4);
        assert_eq!(l.deadlines.request, std::time::Duration::from_millis(250));
        assert_eq!(l.deadlines.idle, control_defaults().deadlines.idle);
        assert_eq!(c.fragments.reassembly().timeout_ms, 700);
        assert_eq!(c.mbuf_data_room() as usize, 9216 + MBUF_HEADROOM);
        assert_eq!(
            c.pool_bytes(),
            c.workers.mbufs as u64 * (9216 + 128 + MBUF_OVERHEAD)
        );
        for bad in [
            "[control]\nmax_clients = 0\n",
            "[control]\nidle_ms = 0\n",
            "[control]\nmax_line = 10\n",
        ] {
            assert!(Config::parse(&format!("{bad}{PORT}")).is_err(), "{bad}");
        }
        let e = Config::parse(&format!("{PORT}mtu = 9500\n")).unwrap_err();
        assert!(e.0.contains("mtu 9500"), "{e:?}");
    }

    #[test]
    fn twins_and_idle_sleep() {
        let c = Config::parse(&format!(
            "[workers]\nidle_sleep_us = 50\n{PORT}[port.twin]\nvips = \"twin\"\nannounce = true\n[[port]]\nname = \"a-very-long-port\"\ndevice = \"net_null1\"\n[port.twin]\n"
        ))
        .unwrap();
        assert_eq!(c.workers.idle_sleep_us, 50);
        let t = c.ports[0].twin.as_ref().unwrap();
        assert_eq!(
            (t.vips, t.announce, t.addresses, t.withdraw_ms),
            (VipOwner::Twin, true, true, 1000)
        );
        assert_eq!(t.iface_name("p"), "rvs-p");
        let u = c.ports[1].twin.as_ref().unwrap();
        assert_eq!(u.iface_name(&c.ports[1].name), "rvs-a-very-long");
        assert_eq!(u.vips, VipOwner::Always);
        for (bad, want) in [
            ("[port.twin]\nname = \"a/b\"\n", "interface name"),
            (
                "[port.twin]\nname = \"sixteen-bytes-xx\"\n",
                "interface name",
            ),
            ("[port.twin]\nvips = \"sometimes\"\n", "unknown variant"),
            ("[port.twin]\nwithdraw_ms = 100000\n", "at most 60000"),
            ("[port.twin]\ncolour = 1\n", "unknown field"),
        ] {
            let e = Config::parse(&format!("{PORT}{bad}")).unwrap_err();
            assert!(e.0.contains(want), "{bad:?} gave {e}");
        }
        let two = format!("{PORT}[port.twin]\nname = \"x\"\n[[port]]\nname = \"q\"\ndevice = \"net_null1\"\n[port.twin]\nname = \"x\"\n");
        assert!(Config::parse(&two).unwrap_err().0.contains("used twice"));
        let e = Config::parse(&format!("[workers]\nidle_sleep_us = 200000\n{PORT}")).unwrap_err();
        assert!(e.0.contains("idle_sleep_us"), "{e}");
    }
}
