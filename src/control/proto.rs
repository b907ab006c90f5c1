//! The versioned JSON control protocol between `rvsadm` (or any client) and
//! `rvsd`.
//!
//! One JSON object per line in each direction, every object carrying
//! `"v": 1`. Requests are tagged by `"op"`, responses by `"result"`:
//!
//! ```text
//! -> {"v":1,"op":"delete-service","service":{"protocol":"tcp","address":"10.0.0.1","port":80}}
//! <- {"v":1,"result":"error","message":"No such service"}
//! ```
//!
//! These types are the wire format only; they are deliberately independent
//! of the daemon's internal types (`lb`), which convert from and to them.
//! Unknown fields are ignored when decoding, so adding an optional field is a
//! compatible change; anything else bumps [`PROTOCOL_VERSION`].
//! The full schema with an example per request is in `docs/control.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The protocol version this crate speaks; carried as `"v"` in every message.
pub const PROTOCOL_VERSION: u32 = 1;

/// Error messages with ipvsadm's (libipvs `ipvs_strerror`) wording. The
/// daemon should answer with these so `rvsadm` prints what `ipvsadm` would.
pub mod errors {
    /// add-service on an existing service.
    pub const SERVICE_EXISTS: &str = "Service already exists";
    /// edit/delete/zero/list of a missing service.
    pub const NO_SUCH_SERVICE: &str = "No such service";
    /// add/edit/delete of a real server on a missing service.
    pub const SERVICE_NOT_DEFINED: &str = "Service not defined";
    /// add of an existing real server.
    pub const DEST_EXISTS: &str = "Destination already exists";
    /// edit/delete of a missing real server.
    pub const NO_SUCH_DEST: &str = "No such destination";
    /// unknown scheduler name.
    pub const SCHED_NOT_FOUND: &str = "Scheduler or persistence engine not found";
}

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// IP protocol number (used for ordering like the kernel: TCP 6 < UDP 17).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
    /// Upper-case name as ipvsadm prints it (`TCP`, `UDP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// Scheduler flags (`-b`). `sh-*` only with `sh`, `mh-*` only with `mh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedFlag {
    ShFallback,
    ShPort,
    MhFallback,
    MhPort,
}

impl SchedFlag {
    /// The flag's name on the command line and in listings.
    pub fn name(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
        }
    }
}

/// Persistence (`-p [timeout] -M netmask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    /// Template timeout in seconds (1 ..= 31 days; ipvsadm's default 360).
    pub timeout: u32,
    /// Client address granularity as a prefix length: 0..=32 for IPv4
    /// (32 = per client), 1..=128 for IPv6 (128 = per client).
    pub netmask: u8,
    /// An IPv4 mask as `-M` takes it, contiguous or not (the kernel keeps
    /// `255.0.255.0` or `0.0.0.24` as given); when present it is the mask
    /// and `netmask` is not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Ipv4Addr>,
}

impl Persistence {
    /// With an IPv4 mask: its leading ones as `netmask`, and the mask itself
    /// only when it is not contiguous (the only case `netmask` cannot say).
    pub fn v4(timeout: u32, m: Ipv4Addr) -> Self {
        let bits = u32::from(m);
        let prefix = bits.leading_ones();
        let contiguous = bits.checked_shl(prefix).unwrap_or(0) == 0;
        Persistence {
            timeout,
            netmask: prefix as u8,
            mask: (!contiguous).then_some(m),
        }
    }

    /// With a prefix length (IPv6, or a contiguous IPv4 mask).
    pub fn prefix(timeout: u32, netmask: u8) -> Self {
        Persistence {
            timeout,
            netmask,
            mask: None,
        }
    }
}

/// Identifies a virtual service: `protocol address:port`, or, with a
/// non-zero `fwmark`, the fwmark service of the address's family (the
/// address then unspecified, `0.0.0.0` or `::`, the protocol tcp and the
/// port 0, as ipvsadm sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub protocol: Protocol,
    pub address: IpAddr,
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

fn is_zero(m: &u32) -> bool {
    *m == 0
}

impl ServiceKey {
    /// The fwmark service `mark` of one family.
    pub fn fwmark(mark: u32, v6: bool) -> Self {
        ServiceKey {
            protocol: Protocol::Tcp,
            address: if v6 {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            },
            port: 0,
            fwmark: mark,
        }
    }
}

/// A virtual service and all its settable parameters (`-A`/`-E`).
///
/// `-E` is a full replacement, like ipvsadm: options not given on the command
/// line take their defaults (scheduler `wlc`, no persistence, no flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub protocol: Protocol,
    pub address: IpAddr,
    pub port: u16,
    /// Non-zero: a fwmark service (see [`ServiceKey`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
    /// Scheduler name (`rr`, `wrr`, `lc`, `wlc`, `sed`, `nq`, `sh`, `dh`,
    /// `mh`, `fo`, `ovf`, `lblc`, `lblcr`, `twos`); the daemon checks it.
    pub scheduler: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<SchedFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<Persistence>,
    /// One-packet scheduling (UDP only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ops: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServiceSpec {
    /// The key of this service.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            protocol: self.protocol,
            address: self.address,
            port: self.port,
            fwmark: self.fwmark,
        }
    }
}

/// Tunnel encapsulation (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn name(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }
}

/// Tunnel checksum mode (`--tun-nocsum|--tun-csum|--tun-remcsum`); GUE and
/// GRE only (remcsum GUE only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCsum {
    #[default]
    Nocsum,
    Csum,
    Remcsum,
}

/// Forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Forward {
    /// NAT (`-m`, "Masq").
    Masq,
    /// Direct routing (`-g`, "Route"), the default.
    Route,
    /// Tunnelling (`-i`, "Tunnel").
    Tunnel {
        #[serde(rename = "type", default)]
        kind: TunnelType,
        /// Destination UDP port, GUE only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(default)]
        csum: TunnelCsum,
    },
}

impl Forward {
    /// Plain IPIP tunnelling.
    pub const IPIP: Forward = Forward::Tunnel {
        kind: TunnelType::Ipip,
        port: None,
        csum: TunnelCsum::Nocsum,
    };
}

/// Identifies a real server within a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestKey {
    pub address: IpAddr,
    pub port: u16,
}

/// A real server and its settable parameters (`-a`/`-e`; `-e` replaces all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestSpec {
    pub address: IpAddr,
    /// For route and tunnel this is always the virtual port.
    pub port: u16,
    pub forward: Forward,
    /// 0..=2147483647 (the kernel's INT_MAX); 0 = quiescent.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = 3/4 of the upper.
    #[serde(default)]
    pub l_threshold: u32,
}

impl DestSpec {
    pub fn key(&self) -> DestKey {
        DestKey {
            address: self.address,
            port: self.port,
        }
    }
}

/// Cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// Per-second rate estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A real server in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestEntry {
    #[serde(flatten)]
    pub spec: DestSpec,
    #[serde(default)]
    pub active_conns: u32,
    #[serde(default)]
    pub inactive_conns: u32,
    #[serde(default)]
    pub persist_conns: u32,
    #[serde(default)]
    pub stats: Stats,
    #[serde(default)]
    pub rate: Rates,
}

/// A virtual service in a listing, with its real servers (in the daemon's
/// order: newest first, like the kernel; rvsadm sorts unless `--nosort`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    #[serde(flatten)]
    pub spec: ServiceSpec,
    #[serde(default)]
    pub stats: Stats,
    #[serde(default)]
    pub rate: Rates,
    #[serde(default)]
    pub dests: Vec<DestEntry>,
}

/// A connection's protocol: a template of a fwmark service is `ip`, the
/// kernel's IPPROTO_IP, as it holds for every protocol carrying the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnProtocol {
    Tcp,
    Udp,
    Ip,
}

impl ConnProtocol {
    /// Upper-case name as `-Lc` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnProtocol::Tcp => "TCP",
            ConnProtocol::Udp => "UDP",
            ConnProtocol::Ip => "IP",
        }
    }
}

impl From<Protocol> for ConnProtocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => ConnProtocol::Tcp,
            Protocol::Udp => ConnProtocol::Udp,
        }
    }
}

/// One connection (or persistence template) in `-Lc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    pub protocol: ConnProtocol,
    /// Seconds until expiry.
    pub expire: u32,
    /// State name as the kernel prints it (`ESTABLISHED`, `NONE`, `UDP`, ...).
    pub state: String,
    /// Client address (port 0 for a template).
    pub client: SocketAddr,
    #[serde(rename = "virtual")]
    pub virtual_addr: SocketAddr,
    pub destination: SocketAddr,
    /// A persistence template rather than a connection.
    #[serde(default)]
    pub template: bool,
}

/// `--set tcp tcpfin udp` timeouts in seconds; in `set-timeouts` 0 means
/// "leave unchanged".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

/// A service with its real servers, as saved and restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRules {
    #[serde(flatten)]
    pub service: ServiceSpec,
    #[serde(default)]
    pub dests: Vec<DestSpec>,
}

/// A mark rule (`--add-mark`): packets of `protocol` to `address`
/// (or the network `address/prefix`) and a destination port in `ports`
/// carry `mark`, for the fwmark service of that mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarkSpec {
    #[serde(flatten)]
    pub matches: MarkMatch,
    pub mark: u32,
}

/// What a mark rule matches (`--delete-mark` names a rule by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarkMatch {
    pub protocol: Protocol,
    pub address: IpAddr,
    /// Prefix length; omitted: the one address (32 / 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
    /// First and last destination port; omitted: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<[u16; 2]>,
}

/// The whole configuration (what `-S` prints and `-R` installs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuleSet {
    /// Mark rules, in the order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<MarkSpec>,
    pub services: Vec<ServiceRules>,
}

/// Daemon version information; `ipvs` and `conn_tab_size` feed the
/// `IP Virtual Server version 1.2.1 (size=4096)` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// rvsd's own version (crate version).
    pub rvs: String,
    /// The IPVS version emulated, `"1.2.1"`.
    pub ipvs: String,
    /// Connection table size shown in the header.
    pub conn_tab_size: u32,
    /// Highest protocol version the daemon speaks.
    pub protocol: u32,
}

/// A DPDK port as reported by `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PortInfo {
    pub port: u16,
    pub name: String,
    /// The configured device: a PCI address or a vdev spec.
    pub device: String,
    /// The DPDK driver (`net_virtio`, `net_e1000_em`, `net_af_packet`...).
    pub driver: String,
    pub mac: String,
    pub link_up: bool,
    /// `None` when the driver does not know (shown as `unknown`).
    pub speed_mbps: Option<u32>,
    /// Receive and transmit queues (one of each per worker).
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rss: RssInfo,
    /// Offloads in force (`RTE_ETH_*_OFFLOAD_*` as hexadecimal bits; `0x0`: none).
    pub rx_offloads: String,
    pub tx_offloads: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_errors: u64,
}

/// A port's receive-side scaling, as requested and as the driver has it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RssInfo {
    /// Hash types rvsd asked for (dpdk-testpmd's names); empty without RSS.
    pub requested: Vec<String>,
    /// Hash types the driver reports in force.
    pub in_force: Vec<String>,
    /// Toeplitz key length in bytes (0: no RSS).
    pub key_len: u16,
    /// The driver's redirection table size (0: none).
    pub reta_size: u16,
    /// How each connection's packets reach the worker that owns it:
    /// `single worker`, `rss` (the NIC does it), or `hand-off: REASON`
    /// (packets that land elsewhere cross a ring to their owner).
    pub ownership: String,
}

/// A worker lcore as reported by `lcores`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LcoreInfo {
    pub lcore: u32,
    pub socket: u32,
    pub role: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub dropped: u64,
    /// Packets handed to their owner lcore over a ring (RSS mismatch).
    pub handoffs: u64,
    pub connections: u64,
}

/// One worker's per-burst processing time (from `rx_burst` to the end of
/// the burst's `tx_burst`) over a window, in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerLatency {
    pub lcore: u32,
    /// Non-empty bursts measured in the window.
    pub bursts: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// `-A`: answer `ok`, or error [`errors::SERVICE_EXISTS`] / [`errors::SCHED_NOT_FOUND`].
    AddService { service: ServiceSpec },
    /// `-E`: full replacement; error [`errors::NO_SUCH_SERVICE`].
    EditService { service: ServiceSpec },
    /// `-D`: error [`errors::NO_SUCH_SERVICE`].
    DeleteService { service: ServiceKey },
    /// `-a`: error [`errors::SERVICE_NOT_DEFINED`] / [`errors::DEST_EXISTS`].
    AddDest { service: ServiceKey, dest: DestSpec },
    /// `-e`: error [`errors::SERVICE_NOT_DEFINED`] / [`errors::NO_SUCH_DEST`].
    EditDest { service: ServiceKey, dest: DestSpec },
    /// `-d`: error [`errors::SERVICE_NOT_DEFINED`] / [`errors::NO_SUCH_DEST`].
    DeleteDest { service: ServiceKey, dest: DestKey },
    /// `-C`: remove every service.
    Clear,
    /// `-L`: answer `services`; with `service`, just that one or
    /// [`errors::NO_SUCH_SERVICE`].
    ListServices {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceKey>,
    },
    /// `-Lc`: answer `connections` (templates included).
    ListConnections,
    /// `-Z`: zero the counters of all services or of one.
    Zero {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceKey>,
    },
    /// `--set`: 0 leaves a value unchanged.
    SetTimeouts { timeouts: Timeouts },
    /// `-L --timeout`: answer `timeouts`.
    GetTimeouts,
    /// `--add-mark`: error `Mark rule already exists`.
    AddMark { mark: MarkSpec },
    /// `--delete-mark`: error `No such mark rule`.
    DeleteMark { mark: MarkMatch },
    /// `-L --marks`: answer `marks`.
    ListMarks,
    /// `-S`: answer `rules`.
    Save,
    /// Replace the whole rule set atomically (validate everything first,
    /// apply nothing on error). Services and real servers present before
    /// and after keep their counters and connections. A client that read
    /// the rules, edited them and sends them back here would undo changes
    /// other clients made in between: `rvsadm -R` sends a
    /// [`Request::Transaction`] instead.
    Restore {
        rules: RuleSet,
        /// `--set` lines found in the restore input, applied with the rules.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeouts: Option<Timeouts>,
    },
    /// `-R`: rule changes (`add-service`, `edit-service`, `delete-service`,
    /// `add-dest`, `edit-dest`, `delete-dest`, `clear`, `set-timeouts`,
    /// `add-mark`, `delete-mark`) applied in order to the rules as they are when the transaction
    /// arrives, all or nothing, published as one configuration. A refused
    /// change is answered with an `error` whose `change` is its index;
    /// nothing is changed then.
    Transaction { changes: Vec<Request> },
    /// Answer `version`.
    Version,
    /// Answer `ports`.
    Ports,
    /// Answer `lcores`.
    Lcores,
    /// Answer `counters` (global named counters).
    Counters,
    /// Answer `latency`: each worker's per-burst processing time since it
    /// started or since the last reset (rvsd runs with `--latency`, else an
    /// error). With `reset`, a new window starts right after the reading.
    Latency {
        #[serde(default, skip_serializing_if = "is_false")]
        reset: bool,
    },
}

/// A response from the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Response {
    Ok,
    Error {
        message: String,
        /// In the answer to a `transaction`: the index of the change that
        /// was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<usize>,
    },
    Services {
        services: Vec<ServiceEntry>,
    },
    Connections {
        connections: Vec<ConnEntry>,
    },
    Timeouts {
        timeouts: Timeouts,
    },
    Marks {
        marks: Vec<MarkSpec>,
    },
    Rules {
        rules: RuleSet,
    },
    Version {
        version: VersionInfo,
    },
    Ports {
        ports: Vec<PortInfo>,
    },
    Lcores {
        lcores: Vec<LcoreInfo>,
    },
    Counters {
        counters: BTreeMap<String, u64>,
    },
    Latency {
        latency: Vec<WorkerLatency>,
    },
}

impl Response {
    /// An error response.
    pub fn error(message: impl Into<String>) -> Response {
        Response::Error {
            message: message.into(),
            change: None,
        }
    }

    /// The error refusing change `index` of a transaction.
    pub fn refused(index: usize, message: impl Into<String>) -> Response {
        Response::Error {
            message: message.into(),
            change: Some(index),
        }
    }
}

/// A line that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

fn encode<T: Serialize>(body: &T) -> String {
    serde_json::to_string(&EnvelopeOut {
        v: PROTOCOL_VERSION,
        body,
    })
    .expect("protocol types always serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(line: &str) -> Result<T, DecodeError> {
    let value: serde_json::Value = serde_json::from_str(line.trim())
        .map_err(|e| DecodeError(format!("malformed JSON: {e}")))?;
    check_version(&value)?;
    serde_json::from_value(value).map_err(|e| DecodeError(format!("invalid message: {e}")))
}

/// A decoded message must be an object whose `"v"` is [`PROTOCOL_VERSION`].
pub(crate) fn check_version(value: &serde_json::Value) -> Result<(), DecodeError> {
    let object = value
        .as_object()
        .ok_or_else(|| DecodeError("a message must be a JSON object".into()))?;
    match object.get("v") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(PROTOCOL_VERSION as u64) => Ok(()),
        Some(v) => Err(DecodeError(format!(
            "unsupported protocol version {v} (this side speaks {PROTOCOL_VERSION})"
        ))),
        None => Err(DecodeError("missing protocol version \"v\"".into())),
    }
}

/// One request as a JSON line (without the trailing newline).
pub fn encode_request(req: &Request) -> String {
    encode(req)
}

/// One response as a JSON line (without the trailing newline).
pub fn encode_response(resp: &Response) -> String {
    encode(resp)
}

/// Parses a request line; checks `"v"`.
pub fn decode_request(line: &str) -> Result<Request, DecodeError> {
    decode(line)
}

/// Parses a response line; checks `"v"`.
pub fn decode_response(line: &str) -> Result<Response, DecodeError> {
    decode(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> ServiceSpec {
        ServiceSpec {
            protocol: Protocol::Tcp,
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            fwmark: 0,
            scheduler: "sh".into(),
            flags: vec![SchedFlag::ShFallback, SchedFlag::ShPort],
            persistent: Some(Persistence {
                timeout: 360,
                netmask: 24,
                mask: None,
            }),
            ops: false,
        }
    }

    fn dest() -> DestSpec {
        DestSpec {
            address: "2001:db8::5".parse().unwrap(),
            port: 80,
            forward: Forward::Tunnel {
                kind: TunnelType::Gue,
                port: Some(6080),
                csum: TunnelCsum::Remcsum,
            },
            weight: 3,
            u_threshold: 10,
            l_threshold: 5,
        }
    }

    fn all_requests() -> Vec<Request> {
        let key = svc().key();
        vec![
            Request::AddService { service: svc() },
            Request::EditService { service: svc() },
            Request::DeleteService { service: key },
            Request::AddDest {
                service: key,
                dest: dest(),
            },
            Request::EditDest {
                service: key,
                dest: dest(),
            },
            Request::DeleteDest {
                service: key,
                dest: dest().key(),
            },
            Request::Clear,
            Request::ListServices { service: None },
            Request::ListServices { service: Some(key) },
            Request::ListConnections,
            Request::Zero { service: None },
            Request::Zero { service: Some(key) },
            Request::SetTimeouts {
                timeouts: Timeouts {
                    tcp: 900,
                    tcpfin: 0,
                    udp: 300,
                },
            },
            Request::GetTimeouts,
            Request::AddMark {
                mark: MarkSpec {
                    matches: MarkMatch {
                        protocol: Protocol::Udp,
                        address: "2001:db8::1".parse().unwrap(),
                        prefix: None,
                        ports: None,
                    },
                    mark: 1,
                },
            },
            Request::DeleteMark {
                mark: MarkMatch {
                    protocol: Protocol::Tcp,
                    address: "10.0.0.1".parse().unwrap(),
                    prefix: None,
                    ports: Some([80, 80]),
                },
            },
            Request::ListMarks,
            Request::Save,
            Request::Restore {
                rules: RuleSet {
                    marks: vec![MarkSpec {
                        matches: MarkMatch {
                            protocol: Protocol::Tcp,
                            address: "10.0.0.0".parse().unwrap(),
                            prefix: Some(24),
                            ports: Some([80, 443]),
                        },
                        mark: 7,
                    }],
                    services: vec![ServiceRules {
                        service: svc(),
                        dests: vec![dest()],
                    }],
                },
                timeouts: None,
            },
            Request::Transaction {
                changes: vec![
                    Request::Clear,
                    Request::AddService { service: svc() },
                    Request::AddDest {
                        service: key,
                        dest: dest(),
                    },
                ],
            },
            Request::Version,
            Request::Ports,
            Request::Lcores,
            Request::Counters,
            Request::Latency { reset: false },
            Request::Latency { reset: true },
        ]
    }

    #[test]
    fn every_request_round_trips_and_carries_v() {
        for req in all_requests() {
            let line = encode_request(&req);
            assert!(line.starts_with("{\"v\":1,\"op\":"), "{line}");
            assert!(!line.contains('\n'));
            assert_eq!(decode_request(&line).unwrap(), req, "{line}");
        }
    }

    #[test]
    fn responses_round_trip() {
        let entry = ServiceEntry {
            spec: svc(),
            stats: Stats {
                conns: 1,
                inpkts: 2,
                outpkts: 3,
                inbytes: 4,
                outbytes: 5,
            },
            rate: Rates::default(),
            dests: vec![DestEntry {
                spec: dest(),
                active_conns: 1,
                inactive_conns: 2,
                persist_conns: 3,
                stats: Stats::default(),
                rate: Rates::default(),
            }],
        };
        let resps = vec![
            Response::Ok,
            Response::error("No such service"),
            Response::refused(3, "Service already exists"),
            Response::Services {
                services: vec![entry],
            },
            Response::Connections {
                connections: vec![ConnEntry {
                    protocol: ConnProtocol::Udp,
                    expire: 299,
                    state: "UDP".into(),
                    client: "[2001:db8::9]:5353".parse().unwrap(),
                    virtual_addr: "[2001:db8::1]:53".parse().unwrap(),
                    destination: "[2001:db8::2]:53".parse().unwrap(),
                    template: false,
                }],
            },
            Response::Timeouts {
                timeouts: Timeouts {
                    tcp: 900,
                    tcpfin: 120,
                    udp: 300,
                },
            },
            Response::Rules {
                rules: RuleSet::default(),
            },
            Response::Version {
                version: VersionInfo {
                    rvs: "0.1.0".into(),
                    ipvs: "1.2.1".into(),
                    conn_tab_size: 4096,
                    protocol: 1,
                },
            },
            Response::Ports {
                ports: vec![PortInfo::default()],
            },
            Response::Lcores {
                lcores: vec![LcoreInfo::default()],
            },
            Response::Counters {
                counters: [("rx".to_string(), 5u64)].into_iter().collect(),
            },
            Response::Latency {
                latency: vec![WorkerLatency {
                    lcore: 1,
                    bursts: 10,
                    p50_ns: 2000,
                    p99_ns: 3000,
                    p999_ns: 9000,
                    max_ns: 20000,
                }],
            },
        ];
        for r in resps {
            let line = encode_response(&r);
            assert!(line.starts_with("{\"v\":1,\"result\":"), "{line}");
            assert_eq!(decode_response(&line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn exact_wire_shapes() {
        let line = encode_request(&Request::DeleteDest {
            service: svc().key(),
            dest: DestKey {
                address: "10.1.0.1".parse().unwrap(),
                port: 8080,
            },
        });
        assert_eq!(
            line,
            r#"{"v":1,"op":"delete-dest","service":{"protocol":"tcp","address":"10.0.0.1","port":80},"dest":{"address":"10.1.0.1","port":8080}}"#
        );
        let d = serde_json::to_string(&dest()).unwrap();
        assert_eq!(
            d,
            r#"{"address":"2001:db8::5","port":80,"forward":{"method":"tunnel","type":"gue","port":6080,"csum":"remcsum"},"weight":3,"u_threshold":10,"l_threshold":5}"#
        );
        assert_eq!(encode_response(&Response::Ok), r#"{"v":1,"result":"ok"}"#);
        assert_eq!(
            encode_response(&Response::error("No such service")),
            r#"{"v":1,"result":"error","message":"No such service"}"#
        );
        assert_eq!(
            encode_response(&Response::refused(2, "Service already exists")),
            r#"{"v":1,"result":"error","message":"Service already exists","change":2}"#
        );
        assert_eq!(
            encode_request(&Request::Transaction {
                changes: vec![Request::Clear]
            }),
            r#"{"v":1,"op":"transaction","changes":[{"op":"clear"}]}"#
        );
        assert_eq!(
            encode_request(&Request::Latency { reset: true }),
            r#"{"v":1,"op":"latency","reset":true}"#
        );
        assert_eq!(
            decode_request(r#"{"v":1,"op":"latency"}"#).unwrap(),
            Request::Latency { reset: false }
        );
    }

    #[test]
    fn decoding_defaults_and_unknown_fields() {
        let r = decode_request(
            r#"{"v":1,"op":"add-dest","future":true,"service":{"protocol":"udp","address":"::1","port":53},"dest":{"address":"::2","port":53,"forward":{"method":"tunnel"},"weight":1}}"#,
        )
        .unwrap();
        match r {
            Request::AddDest { dest, .. } => {
                assert_eq!(dest.forward, Forward::IPIP);
                assert_eq!(dest.u_threshold, 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_is_checked() {
        assert!(decode_request(r#"{"op":"clear"}"#)
            .unwrap_err()
            .0
            .contains("missing protocol version"));
        assert!(decode_request(r#"{"v":2,"op":"clear"}"#)
            .unwrap_err()
            .0
            .contains("unsupported protocol version 2"));
        assert!(decode_request("nope").unwrap_err().0.contains("malformed"));
        assert!(decode_request(r#"{"v":1,"op":"frobnicate"}"#).is_err());
        assert_eq!(
            decode_request(r#"{"v":1,"op":"clear"}"#).unwrap(),
            Request::Clear
        );
    }
}
