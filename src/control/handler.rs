//! rvsd's answers to control requests, without the daemon: rule changes go
//! to the lb core's [`Rules`] and, when they succeed, a new snapshot is
//! published to the workers; listings are built from the rules and from
//! what the running data plane reports ([`Runtime`]).
//!
//! The wire types ([`proto`]) are the versioned, documented protocol; the lb
//! types are internal. The conversions between them live here.

mod transaction;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::proto::{self, errors, Request, Response};
use super::server::{ConnIter, Handler};
use crate::lb::dest::{DestConfig, FwdMethod, TunCsum, TunType};
use crate::lb::error::LbError;
use crate::lb::marks::{MarkMatch, MarkRule};
use crate::lb::rules::{Rules, ServiceShared, SnapDest, Snapshot};
use crate::lb::service::{Netmask, Persistence, Protocol, SchedFlag, ServiceConfig, ServiceKey};
use crate::lb::stats::{Rates, Stats, StatsTotals};
use transaction::{apply_rule_set, check_rule_set, Wanted};

/// What only the running daemon knows or does.
pub trait Runtime {
    /// Hand a new configuration to the workers.
    fn publish(&mut self, snap: Arc<Snapshot>);
    /// Every connection and persistence template, from every worker,
    /// fetched as the entries are consumed (after the handler's lock is
    /// released, see [`Handler::connections`]).
    fn connections(&self) -> ConnIter;
    fn ports(&self) -> Vec<proto::PortInfo>;
    fn lcores(&self) -> Vec<proto::LcoreInfo>;
    fn counters(&self) -> BTreeMap<String, u64>;
    /// Connection table size reported in the listing header.
    fn conn_tab_size(&self) -> u32;
    /// Each worker's per-burst latency window (see [`Request::Latency`]).
    fn latency(&self, _reset: bool) -> Result<Vec<proto::WorkerLatency>, String> {
        Err("rvsd does not measure latency (start it with --latency)".into())
    }
}

/// Rules with no data plane behind them: rvsd before its workers start
/// (`--restore`), and tools and tests that only need the rules' semantics.
pub struct NoDataPlane;

impl Runtime for NoDataPlane {
    fn publish(&mut self, _snap: Arc<Snapshot>) {}
    fn connections(&self) -> ConnIter {
        Box::new(std::iter::empty())
    }
    fn ports(&self) -> Vec<proto::PortInfo> {
        Vec::new()
    }
    fn lcores(&self) -> Vec<proto::LcoreInfo> {
        Vec::new()
    }
    fn counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    fn conn_tab_size(&self) -> u32 {
        0
    }
}

/// The control requests' handler: the rules plus the data plane behind them.
pub struct RulesHandler<R: Runtime> {
    pub rules: Rules,
    pub runtime: R,
}

impl<R: Runtime> RulesHandler<R> {
    pub fn new(rules: Rules, runtime: R) -> Self {
        RulesHandler { rules, runtime }
    }

    fn publish(&mut self) {
        let snap = self.rules.snapshot();
        self.runtime.publish(snap);
    }

    /// Run a rule change; publish on success.
    fn change(&mut self, f: impl FnOnce(&mut Rules) -> Result<(), String>) -> Response {
        match f(&mut self.rules) {
            Ok(()) => {
                self.publish();
                Response::Ok
            }
            Err(message) => Response::error(message),
        }
    }

    fn list(&self, key: Option<proto::ServiceKey>) -> Response {
        let entries = match key {
            Some(k) => match self.rules.service(&service_key(&k)) {
                Ok((cfg, shared, dests)) => vec![service_entry(cfg, shared, dests)],
                Err(e) => return Response::error(e.to_string()),
            },
            None => self
                .rules
                .services()
                .map(|(cfg, shared, dests)| service_entry(cfg, shared, dests))
                .collect(),
        };
        Response::Services { services: entries }
    }

    fn save(&self) -> proto::RuleSet {
        proto::RuleSet {
            marks: self.rules.marks().rules().iter().map(wire_mark).collect(),
            services: self
                .rules
                .services()
                .map(|(cfg, _, dests)| proto::ServiceRules {
                    service: service_spec(cfg),
                    // Oldest first: the order to add them in again.
                    dests: dests.iter().rev().map(|d| dest_spec(&d.cfg)).collect(),
                })
                .collect(),
        }
    }

    /// `-R`: check the whole rule set, then make the rules equal to it with
    /// as few changes as possible, so that services and real servers in both
    /// keep their counters, shared state and connections.
    fn restore(&mut self, set: &proto::RuleSet, timeouts: Option<proto::Timeouts>) -> Response {
        let wanted = match check_rule_set(set) {
            Ok(w) => w,
            Err(message) => return Response::error(message),
        };
        self.commit(&wanted, timeouts.as_slice())
    }

    /// `-R` as rvsadm sends it: the changes in order, on top of the rules
    /// as they are now, all or nothing.
    fn transaction(&mut self, changes: &[Request]) -> Response {
        let mut draft = Wanted::current(&self.rules);
        let mut timeouts = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            if let Err(message) = draft.apply(change, &mut timeouts) {
                return Response::refused(i, message);
            }
        }
        self.commit(&draft, &timeouts)
    }

    /// Makes the rules equal to a checked draft, sets the timeouts, and
    /// publishes the result as one configuration.
    fn commit(&mut self, wanted: &Wanted, timeouts: &[proto::Timeouts]) -> Response {
        let result = apply_rule_set(&mut self.rules, wanted);
        for t in timeouts {
            self.rules.set_timeouts(t.tcp, t.tcpfin, t.udp);
        }
        self.publish();
        match result {
            Ok(()) => Response::Ok,
            Err(e) => Response::error(format!("restore partly applied: {e}")),
        }
    }
}

impl<R: Runtime> Handler for RulesHandler<R> {
    fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::AddService { service } => self.change(|r| {
                let cfg = service_config(&service)?;
                r.add_service(cfg).map_err(|e| e.to_string())
            }),
            Request::EditService { service } => self.change(|r| {
                let cfg = service_config(&service)?;
                r.edit_service(cfg).map_err(|e| e.to_string())
            }),
            Request::DeleteService { service } => self.change(|r| {
                r.delete_service(&service_key(&service))
                    .map_err(|e| e.to_string())
            }),
            Request::AddDest { service, dest } => self.change(|r| {
                r.add_dest(&service_key(&service), dest_config(&dest))
                    .map_err(dest_error)
            }),
            Request::EditDest { service, dest } => self.change(|r| {
                r.edit_dest(&service_key(&service), dest_config(&dest))
                    .map_err(dest_error)
            }),
            Request::DeleteDest { service, dest } => self.change(|r| {
                r.delete_dest(&service_key(&service), dest.address, dest.port)
                    .map_err(dest_error)
            }),
            Request::Clear => self.change(|r| {
                r.clear();
                Ok(())
            }),
            Request::ListServices { service } => self.list(service),
            Request::ListConnections => Response::Connections {
                connections: self.runtime.connections().collect(),
            },
            Request::Zero { service } => {
                match self.rules.zero(service.map(|k| service_key(&k)).as_ref()) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::error(e.to_string()),
                }
            }
            Request::SetTimeouts { timeouts } => self.change(|r| {
                r.set_timeouts(timeouts.tcp, timeouts.tcpfin, timeouts.udp);
                Ok(())
            }),
            Request::AddMark { mark } => self.change(|r| {
                let rule = mark_rule(&mark)?;
                r.add_mark(rule).map_err(|e| e.to_string())
            }),
            Request::DeleteMark { mark } => self.change(|r| {
                r.delete_mark(&mark_match(&mark)?)
                    .map_err(|e| e.to_string())
            }),
            Request::ListMarks => Response::Marks {
                marks: self.rules.marks().rules().iter().map(wire_mark).collect(),
            },
            Request::GetTimeouts => {
                let t = self.rules.settings().timeouts;
                Response::Timeouts {
                    timeouts: proto::Timeouts {
                        tcp: t.tcp[crate::lb::tcp_state::TcpState::Established as usize],
                        tcpfin: t.tcp[crate::lb::tcp_state::TcpState::FinWait as usize],
                        udp: t.udp,
                    },
                }
            }
            Request::Save => Response::Rules { rules: self.save() },
            Request::Restore { rules, timeouts } => self.restore(&rules, timeouts),
            Request::Transaction { changes } => self.transaction(&changes),
            Request::Version => Response::Version {
                version: proto::VersionInfo {
                    rvs: env!("CARGO_PKG_VERSION").to_string(),
                    ipvs: "1.2.1".to_string(),
                    conn_tab_size: self.runtime.conn_tab_size(),
                    protocol: proto::PROTOCOL_VERSION,
                },
            },
            Request::Ports => Response::Ports {
                ports: self.runtime.ports(),
            },
            Request::Lcores => Response::Lcores {
                lcores: self.runtime.lcores(),
            },
            Request::Counters => Response::Counters {
                counters: self.runtime.counters(),
            },
            Request::Latency { reset } => match self.runtime.latency(reset) {
                Ok(latency) => Response::Latency { latency },
                Err(message) => Response::error(message),
            },
        }
    }

    fn connections(&mut self) -> Result<ConnIter, Response> {
        Ok(self.runtime.connections())
    }
}

/// Real-server operations on a missing service: the kernel answers ESRCH,
/// which ipvsadm prints as "Service not defined".
fn dest_error(e: LbError) -> String {
    match e {
        LbError::NoService => errors::SERVICE_NOT_DEFINED.to_string(),
        e => e.to_string(),
    }
}

// ---- wire <-> lb conversions

pub fn protocol(p: proto::Protocol) -> Protocol {
    match p {
        proto::Protocol::Tcp => Protocol::Tcp,
        proto::Protocol::Udp => Protocol::Udp,
    }
}

pub fn wire_protocol(p: Protocol) -> proto::Protocol {
    match p {
        Protocol::Tcp => proto::Protocol::Tcp,
        Protocol::Udp => proto::Protocol::Udp,
    }
}

pub fn service_key(k: &proto::ServiceKey) -> ServiceKey {
    match k.fwmark {
        0 => ServiceKey::new(protocol(k.protocol), k.address, k.port),
        // Only the family of the address counts.
        m => ServiceKey::fwmark(m, k.address.is_ipv6()),
    }
}

pub fn mark_match(m: &proto::MarkMatch) -> Result<MarkMatch, String> {
    let host = if m.address.is_ipv4() { 32 } else { 128 };
    let [lo, hi] = m.ports.unwrap_or([0, u16::MAX]);
    Ok(MarkMatch {
        proto: protocol(m.protocol),
        addr: m.address,
        prefix: m.prefix.unwrap_or(host),
        ports: (lo, hi),
    })
}

pub fn mark_rule(m: &proto::MarkSpec) -> Result<MarkRule, String> {
    Ok(MarkRule {
        matches: mark_match(&m.matches)?,
        mark: m.mark,
    })
}

pub fn wire_mark(r: &MarkRule) -> proto::MarkSpec {
    let m = &r.matches;
    proto::MarkSpec {
        matches: proto::MarkMatch {
            protocol: wire_protocol(m.proto),
            address: m.addr,
            prefix: (!m.is_host()).then_some(m.prefix),
            ports: (m.ports != (0, u16::MAX)).then_some([m.ports.0, m.ports.1]),
        },
        mark: r.mark,
    }
}

fn sched_flag(f: proto::SchedFlag) -> SchedFlag {
    match f {
        proto::SchedFlag::ShFallback => SchedFlag::ShFallback,
        proto::SchedFlag::ShPort => SchedFlag::ShPort,
        proto::SchedFlag::MhFallback => SchedFlag::MhFallback,
        proto::SchedFlag::MhPort => SchedFlag::MhPort,
    }
}

fn wire_sched_flag(f: SchedFlag) -> proto::SchedFlag {
    match f {
        SchedFlag::ShFallback => proto::SchedFlag::ShFallback,
        SchedFlag::ShPort => proto::SchedFlag::ShPort,
        SchedFlag::MhFallback => proto::SchedFlag::MhFallback,
        SchedFlag::MhPort => proto::SchedFlag::MhPort,
    }
}

/// The lb netmask for a prefix length; `None` for the host mask.
fn netmask(addr: IpAddr, prefix: u8) -> Result<Option<Netmask>, String> {
    match addr {
        IpAddr::V4(_) if prefix > 32 => Err(LbError::IllegalNetmask.to_string()),
        IpAddr::V4(_) if prefix == 32 => Ok(None),
        IpAddr::V4(_) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            Ok(Some(Netmask::V4(Ipv4Addr::from(m))))
        }
        IpAddr::V6(_) if prefix == 0 || prefix > 128 => {
            Err(LbError::IllegalIpv6Netmask.to_string())
        }
        IpAddr::V6(_) if prefix == 128 => Ok(None),
        IpAddr::V6(_) => Ok(Some(Netmask::V6(prefix))),
    }
}

pub fn service_config(s: &proto::ServiceSpec) -> Result<ServiceConfig, String> {
    let mut cfg = ServiceConfig::for_key(service_key(&s.key()));
    cfg.scheduler = s.scheduler.clone();
    cfg.flags = s.flags.iter().map(|f| sched_flag(*f)).collect();
    cfg.ops = s.ops;
    cfg.persistence = match s.persistent {
        Some(p) => Some(Persistence {
            timeout: p.timeout,
            netmask: match (p.mask, s.address) {
                (Some(m), IpAddr::V4(_)) if m == Ipv4Addr::BROADCAST => None,
                (Some(m), IpAddr::V4(_)) => Some(Netmask::V4(m)),
                _ => netmask(s.address, p.netmask)?,
            },
        }),
        None => None,
    };
    Ok(cfg)
}

pub fn service_spec(c: &ServiceConfig) -> proto::ServiceSpec {
    proto::ServiceSpec {
        protocol: wire_protocol(c.key.proto),
        address: c.key.addr,
        port: c.key.port,
        fwmark: c.key.fwmark,
        scheduler: c.scheduler.clone(),
        flags: c.flags.iter().map(|f| wire_sched_flag(*f)).collect(),
        persistent: c.persistence.map(|p| match (p.netmask, c.key.addr) {
            (Some(Netmask::V4(m)), _) => proto::Persistence::v4(p.timeout, m),
            (Some(Netmask::V6(n)), _) => proto::Persistence::prefix(p.timeout, n),
            (None, a) => proto::Persistence::prefix(p.timeout, crate::net::addr::max_len(&a)),
        }),
        ops: c.ops,
    }
}

pub fn dest_config(d: &proto::DestSpec) -> DestConfig {
    let fwd = match d.forward {
        proto::Forward::Masq => FwdMethod::Masq,
        proto::Forward::Route => FwdMethod::Route,
        proto::Forward::Tunnel { kind, port, csum } => FwdMethod::Tunnel {
            tun_type: match kind {
                proto::TunnelType::Ipip => TunType::Ipip,
                proto::TunnelType::Gue => TunType::Gue,
                proto::TunnelType::Gre => TunType::Gre,
            },
            port: port.unwrap_or(0),
            csum: match csum {
                proto::TunnelCsum::Nocsum => TunCsum::NoCsum,
                proto::TunnelCsum::Csum => TunCsum::Csum,
                proto::TunnelCsum::Remcsum => TunCsum::RemCsum,
            },
        },
    };
    DestConfig::new(d.address, d.port)
        .with_fwd(fwd)
        .with_weight(d.weight)
        .with_thresholds(d.u_threshold, d.l_threshold)
}

pub fn dest_spec(d: &DestConfig) -> proto::DestSpec {
    let forward = match d.fwd {
        FwdMethod::Masq => proto::Forward::Masq,
        FwdMethod::Route => proto::Forward::Route,
        FwdMethod::Tunnel {
            tun_type,
            port,
            csum,
        } => proto::Forward::Tunnel {
            kind: match tun_type {
                TunType::Ipip => proto::TunnelType::Ipip,
                TunType::Gue => proto::TunnelType::Gue,
                TunType::Gre => proto::TunnelType::Gre,
            },
            port: (port != 0).then_some(port),
            csum: match csum {
                TunCsum::NoCsum => proto::TunnelCsum::Nocsum,
                TunCsum::Csum => proto::TunnelCsum::Csum,
                TunCsum::RemCsum => proto::TunnelCsum::Remcsum,
            },
        },
    };
    proto::DestSpec {
        address: d.addr,
        port: d.port,
        forward,
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
    }
}

fn wire_stats(t: StatsTotals) -> proto::Stats {
    proto::Stats {
        conns: t.conns,
        inpkts: t.inpkts,
        outpkts: t.outpkts,
        inbytes: t.inbytes,
        outbytes: t.outbytes,
    }
}

fn wire_rates(r: Rates) -> proto::Rates {
    proto::Rates {
        cps: r.cps,
        inpps: r.inpps,
        outpps: r.outpps,
        inbps: r.inbps,
        outbps: r.outbps,
    }
}

fn stats_pair(s: &Stats) -> (proto::Stats, proto::Rates) {
    (wire_stats(s.totals()), wire_rates(s.rates()))
}

fn service_entry(
    cfg: &ServiceConfig,
    shared: &ServiceShared,
    dests: &[SnapDest],
) -> proto::ServiceEntry {
    let (stats, rate) = stats_pair(&shared.stats);
    proto::ServiceEntry {
        spec: service_spec(cfg),
        stats,
        rate,
        dests: dests
            .iter()
            .map(|d| {
                let (stats, rate) = stats_pair(&d.shared.stats);
                proto::DestEntry {
                    spec: dest_spec(&d.cfg),
                    active_conns: d.shared.active(),
                    inactive_conns: d.shared.inactive(),
                    persist_conns: d.shared.persistent(),
                    stats,
                    rate,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
