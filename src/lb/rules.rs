//! The configuration: all services and their real servers, edited by the
//! control thread (add/edit/delete service and real server, clear, `--set`)
//! and published to workers as immutable [`Snapshot`]s.
//!
//! Per-real-server shared state ([`DestShared`]) lives in the rules and is
//! carried from snapshot to snapshot, so that editing a weight does not reset
//! connection counts; a real server deleted and added again is a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::dest::{DestConfig, DestShared};
use super::error::LbError;
use super::marks::{MarkMatch, MarkRule, MarkTable};
use super::sched::{DestSet, SchedFlags};
use super::service::{Protocol, ServiceConfig, ServiceKey};
use super::stats::Stats;
use super::tcp_state::Timeouts;
use super::time::Timestamp;

/// Global behaviour switches (the kernel's sysctls) and timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub timeouts: Timeouts,
    /// Expire a connection whose real server was deleted (or, for a SYN, has
    /// weight 0) when a packet arrives, so that the next one is rescheduled;
    /// off: such packets are dropped.
    #[serde(default)]
    pub expire_nodest_conn: bool,
    /// Templates pointing at a weight-0 real server are not used.
    #[serde(default)]
    pub expire_quiescent_template: bool,
    /// Non-zero: a SYN on a connection in TIME_WAIT or CLOSE reschedules.
    #[serde(default = "one")]
    pub conn_reuse_mode: u8,
    /// When the connection table is full, a new connection takes the
    /// place of the oldest one still in SYN_RECV (a handshake never
    /// finished: what a spoofed SYN flood leaves), so that a flood delays
    /// no one's new connection and never touches established ones.
    #[serde(default = "yes")]
    pub evict_embryonic: bool,
}

fn yes() -> bool {
    true
}

fn one() -> u8 {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeouts: Timeouts::default(),
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            evict_embryonic: true,
        }
    }
}

/// State of one service shared by every lcore.
#[derive(Debug)]
pub struct ServiceShared {
    /// Unique for the process; survives edits, not delete + add.
    pub id: u64,
    pub stats: Stats,
}

/// One real server in a snapshot.
#[derive(Clone, Debug)]
pub struct SnapDest {
    pub cfg: DestConfig,
    pub shared: Arc<DestShared>,
}

/// One service in a snapshot, with its real servers in kernel list order
/// (index 0 = most recently added).
#[derive(Clone, Debug)]
pub struct SnapService {
    pub cfg: ServiceConfig,
    pub shared: Arc<ServiceShared>,
    pub dests: Vec<SnapDest>,
}

impl SnapService {
    pub fn sched_flags(&self) -> SchedFlags {
        self.cfg.sched_flags()
    }
}

impl DestSet for SnapService {
    fn len(&self) -> usize {
        self.dests.len()
    }
    fn addr(&self, i: usize) -> IpAddr {
        self.dests[i].cfg.addr
    }
    fn port(&self, i: usize) -> u16 {
        self.dests[i].cfg.port
    }
    fn weight(&self, i: usize) -> u32 {
        self.dests[i].shared.weight()
    }
    fn active(&self, i: usize) -> u32 {
        self.dests[i].shared.active()
    }
    fn inactive(&self, i: usize) -> u32 {
        self.dests[i].shared.inactive()
    }
    fn overloaded(&self, i: usize) -> bool {
        self.dests[i].shared.overloaded()
    }
}

type FixedState = ahash::RandomState;

fn fixed_state() -> FixedState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// An immutable view of the configuration, shared by the workers.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every change.
    pub version: u64,
    pub services: Vec<SnapService>,
    pub settings: Settings,
    pub marks: MarkTable,
    index: HashMap<ServiceKey, u32, FixedState>,
}

impl Snapshot {
    /// An empty configuration.
    pub fn empty() -> Arc<Snapshot> {
        Arc::new(Snapshot {
            version: 0,
            services: Vec::new(),
            settings: Settings::default(),
            marks: MarkTable::default(),
            index: HashMap::with_hasher(fixed_state()),
        })
    }

    /// The service for a packet to `addr:port`, in the kernel's order: the
    /// fwmark service of the packet's mark, else the exact one, else the
    /// port-0 (all ports, persistent) service on that address.
    #[inline]
    pub fn find(&self, proto: Protocol, addr: IpAddr, port: u16) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        if !self.marks.is_empty() {
            if let Some(m) = self.marks.classify(proto, addr, port) {
                if let Some(&i) = self.index.get(&ServiceKey::fwmark(m, addr.is_ipv6())) {
                    return Some(i as usize);
                }
            }
        }
        if let Some(&i) = self.index.get(&ServiceKey::new(proto, addr, port)) {
            return Some(i as usize);
        }
        if port != 0 {
            if let Some(&i) = self.index.get(&ServiceKey::new(proto, addr, 0)) {
                return Some(i as usize);
            }
        }
        None
    }

    /// Addresses clients reach services at: those of the services, and
    /// the single addresses of mark rules whose mark has a service of
    /// that family.
    pub fn vip_addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let marked = self.served_marks().filter(|m| m.is_host()).map(|m| m.addr);
        self.services
            .iter()
            .filter_map(|s| s.cfg.key.vip())
            .chain(marked)
    }

    /// Networks (not single addresses) of mark rules whose mark has a
    /// service of that family: every address in them is a VIP.
    pub fn vip_nets(&self) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.served_marks()
            .filter(|m| !m.is_host())
            .map(|m| (m.addr, m.prefix))
    }

    fn served_marks(&self) -> impl Iterator<Item = &MarkMatch> + '_ {
        self.marks
            .rules()
            .iter()
            .filter(|r| {
                self.index
                    .contains_key(&ServiceKey::fwmark(r.mark, r.matches.addr.is_ipv6()))
            })
            .map(|r| &r.matches)
    }
}

#[derive(Clone, Debug)]
struct ServiceEntry {
    cfg: ServiceConfig,
    shared: Arc<ServiceShared>,
    /// Kernel order: newest first.
    dests: Vec<SnapDest>,
}

/// The editable configuration (owned by the control thread).
#[derive(Debug)]
pub struct Rules {
    nlcores: usize,
    services: Vec<ServiceEntry>,
    settings: Settings,
    marks: MarkTable,
    next_id: u64,
    version: u64,
}

impl Rules {
    /// Rules for a data plane with `nlcores` workers (sizes the per-lcore
    /// stats blocks).
    pub fn new(nlcores: usize) -> Self {
        Rules {
            nlcores: nlcores.max(1),
            services: Vec::new(),
            settings: Settings::default(),
            marks: MarkTable::default(),
            next_id: 1,
            version: 0,
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn pos(&self, key: &ServiceKey) -> Result<usize, LbError> {
        self.services
            .iter()
            .position(|s| s.cfg.key == *key)
            .ok_or(LbError::NoService)
    }

    fn changed(&mut self) {
        self.version += 1;
    }

    /// `-A`.
    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<(), LbError> {
        cfg.validate()?;
        if self.pos(&cfg.key).is_ok() {
            return Err(LbError::ServiceExists);
        }
        let shared = Arc::new(ServiceShared {
            id: self.id(),
            stats: Stats::new(self.nlcores),
        });
        self.services.push(ServiceEntry {
            cfg,
            shared,
            dests: Vec::new(),
        });
        self.changed();
        Ok(())
    }

    /// `-E`: replaces the service's options; real servers, counts and stats
    /// are kept.
    pub fn edit_service(&mut self, cfg: ServiceConfig) -> Result<(), LbError> {
        cfg.validate()?;
        let i = self.pos(&cfg.key)?;
        self.services[i].cfg = cfg;
        self.changed();
        Ok(())
    }

    /// `-D`.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError> {
        let i = self.pos(key)?;
        let e = self.services.remove(i);
        for d in &e.dests {
            d.shared.set_unavailable();
        }
        self.changed();
        Ok(())
    }

    /// `-C`: every service, and every mark rule (they are saved and
    /// restored with the services, so `-C` then `-R` rebuilds both).
    pub fn clear(&mut self) {
        for e in &self.services {
            for d in &e.dests {
                d.shared.set_unavailable();
            }
        }
        self.services.clear();
        self.marks.clear();
        self.changed();
    }

    /// `--add-mark`.
    pub fn add_mark(&mut self, rule: MarkRule) -> Result<(), LbError> {
        self.marks.add(rule)?;
        self.changed();
        Ok(())
    }

    /// `--delete-mark`.
    pub fn delete_mark(&mut self, m: &MarkMatch) -> Result<(), LbError> {
        self.marks.delete(m)?;
        self.changed();
        Ok(())
    }

    pub fn marks(&self) -> &MarkTable {
        &self.marks
    }

    /// Replace every mark rule (`restore`).
    pub fn set_marks(&mut self, marks: MarkTable) {
        self.marks = marks;
        self.changed();
    }

    /// `-a`. The port is forced to the virtual port for DR and TUN.
    pub fn add_dest(&mut self, key: &ServiceKey, mut cfg: DestConfig) -> Result<(), LbError> {
        let i = self.pos(key)?;
        cfg.normalize(key)?;
        if self.services[i]
            .dests
            .iter()
            .any(|d| d.cfg.addr == cfg.addr && d.cfg.port == cfg.port)
        {
            return Err(LbError::DestExists);
        }
        let id = self.id();
        let shared = Arc::new(DestShared::new(id, &cfg, self.nlcores));
        self.services[i].dests.insert(0, SnapDest { cfg, shared });
        self.changed();
        Ok(())
    }

    /// `-e`: weight, thresholds and forwarding method change in place; the
    /// counts and stats stay.
    pub fn edit_dest(&mut self, key: &ServiceKey, mut cfg: DestConfig) -> Result<(), LbError> {
        let i = self.pos(key)?;
        cfg.normalize(key)?;
        let d = self.services[i]
            .dests
            .iter_mut()
            .find(|d| d.cfg.addr == cfg.addr && d.cfg.port == cfg.port)
            .ok_or(LbError::NoDest)?;
        d.shared.update(&cfg);
        d.cfg = cfg;
        self.changed();
        Ok(())
    }

    /// `-d`.
    pub fn delete_dest(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), LbError> {
        let i = self.pos(key)?;
        let dests = &mut self.services[i].dests;
        let j = dests
            .iter()
            .position(|d| d.cfg.addr == addr && d.cfg.port == port)
            .ok_or(LbError::NoDest)?;
        let d = dests.remove(j);
        d.shared.set_unavailable();
        self.changed();
        Ok(())
    }

    /// `--set tcp tcpfin udp` (0 = unchanged).
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        self.settings.timeouts.set(tcp, tcpfin, udp);
        self.changed();
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replace the sysctl-like switches (and timeouts).
    pub fn set_settings(&mut self, s: Settings) {
        self.settings = s;
        self.changed();
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Services in insertion order with their shared state.
    pub fn services(
        &self,
    ) -> impl Iterator<Item = (&ServiceConfig, &Arc<ServiceShared>, &[SnapDest])> {
        self.services
            .iter()
            .map(|e| (&e.cfg, &e.shared, e.dests.as_slice()))
    }

    pub fn service(
        &self,
        key: &ServiceKey,
    ) -> Result<(&ServiceConfig, &Arc<ServiceShared>, &[SnapDest]), LbError> {
        let i = self.pos(key)?;
        let e = &self.services[i];
        Ok((&e.cfg, &e.shared, e.dests.as_slice()))
    }

    /// `-Z [service]`.
    pub fn zero(&self, key: Option<&ServiceKey>) -> Result<(), LbError> {
        let list: Vec<&ServiceEntry> = match key {
            Some(k) => vec![&self.services[self.pos(k)?]],
            None => self.services.iter().collect(),
        };
        for e in list {
            e.shared.stats.zero();
            for d in &e.dests {
                d.shared.stats.zero();
            }
        }
        Ok(())
    }

    /// Drive every rate estimator (call about every 2 s).
    pub fn estimate(&self, now: Timestamp) {
        for e in &self.services {
            e.shared.stats.estimate(now);
            for d in &e.dests {
                d.shared.stats.estimate(now);
            }
        }
    }

    /// The immutable view to publish to workers.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let mut index = HashMap::with_capacity_and_hasher(self.services.len(), fixed_state());
        let services: Vec<SnapService> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, e)| {
                index.insert(e.cfg.key, i as u32);
                SnapService {
                    cfg: e.cfg.clone(),
                    shared: e.shared.clone(),
                    dests: e.dests.clone(),
                }
            })
            .collect();
        Arc::new(Snapshot {
            version: self.version,
            services,
            settings: self.settings,
            marks: self.marks.clone(),
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key() -> ServiceKey {
        ServiceKey::new(Protocol::Tcp, ip("192.168.1.100"), 80)
    }

    #[test]
    fn service_and_dest_errors() {
        let mut r = Rules::new(1);
        let svc = ServiceConfig::new(Protocol::Tcp, ip("192.168.1.100"), 80).with_scheduler("rr");
        r.add_service(svc.clone()).unwrap();
        assert_eq!(
            r.add_service(svc.clone()).unwrap_err().to_string(),
            "Service already exists"
        );
        let other = ServiceKey::new(Protocol::Udp, ip("192.168.1.100"), 80);
        assert_eq!(
            r.delete_service(&other).unwrap_err().to_string(),
            "No such service"
        );
        assert_eq!(
            r.edit_service(ServiceConfig::new(Protocol::Udp, ip("192.168.1.100"), 80))
                .unwrap_err()
                .to_string(),
            "No such service"
        );
        assert_eq!(
            r.add_dest(&other, DestConfig::new(ip("10.0.0.1"), 80))
                .unwrap_err()
                .to_string(),
            "No such service"
        );
        r.add_dest(&key(), DestConfig::new(ip("10.0.0.1"), 80).masq())
            .unwrap();
        assert_eq!(
            r.add_dest(&key(), DestConfig::new(ip("10.0.0.1"), 80).masq())
                .unwrap_err()
                .to_string(),
            "Destination already exists"
        );
        // DR to the same address with another port: forced to 80, so a duplicate.
        assert_eq!(
            r.add_dest(&key(), DestConfig::new(ip("10.0.0.1"), 8080))
                .unwrap_err()
                .to_string(),
            "Destination already exists"
        );
        assert_eq!(
            r.edit_dest(&key(), DestConfig::new(ip("10.0.0.2"), 80))
                .unwrap_err()
                .to_string(),
            "No such destination"
        );
        assert_eq!(
            r.delete_dest(&key(), ip("10.0.0.2"), 80)
                .unwrap_err()
                .to_string(),
            "No such destination"
        );
        assert_eq!(
            r.add_dest(&key(), DestConfig::new(ip("::1"), 80))
                .unwrap_err()
                .to_string(),
            "Address family of the real server does not match the virtual service"
        );
        assert_eq!(
            r.add_service(
                ServiceConfig::new(Protocol::Tcp, ip("192.168.1.101"), 80).with_scheduler("nope")
            )
            .unwrap_err()
            .to_string(),
            "Scheduler or persistence engine not found"
        );
    }

    #[test]
    fn snapshots_keep_shared_state_across_edits() {
        let mut r = Rules::new(2);
        r.add_service(ServiceConfig::new(Protocol::Tcp, ip("192.168.1.100"), 80))
            .unwrap();
        r.add_dest(&key(), DestConfig::new(ip("10.0.0.1"), 80))
            .unwrap();
        r.add_dest(&key(), DestConfig::new(ip("10.0.0.2"), 80))
            .unwrap();
        let s1 = r.snapshot();
        // Kernel order: newest first.
        assert_eq!(s1.services[0].addr(0), ip("10.0.0.2"));
        assert_eq!(s1.services[0].addr(1), ip("10.0.0.1"));
        s1.services[0].dests[1].shared.bind_conn(true);

        r.edit_dest(&key(), DestConfig::new(ip("10.0.0.1"), 80).with_weight(5))
            .unwrap();
        let s2 = r.snapshot();
        assert!(s2.version > s1.version);
        assert!(Arc::ptr_eq(
            &s1.services[0].dests[1].shared,
            &s2.services[0].dests[1].shared
        ));
        assert_eq!(s2.services[0].weight(1), 5);
        assert_eq!(s2.services[0].active(1), 1);
        // The old snapshot is untouched (config), the shared weight moved.
        assert_eq!(s1.services[0].dests[1].cfg.weight, 1);

        // Delete and re-add: a new real server with fresh counts.
        let old = s2.services[0].dests[1].shared.clone();
        r.delete_dest(&key(), ip("10.0.0.1"), 80).unwrap();
        assert!(!old.available());
        r.add_dest(&key(), DestConfig::new(ip("10.0.0.1"), 80))
            .unwrap();
        let s3 = r.snapshot();
        let new = &s3.services[0].dests[0].shared;
        assert_ne!(new.id, old.id);
        assert_eq!(new.active(), 0);
        assert!(new.available());

        // Service edit keeps the service's identity.
        let sid = s3.services[0].shared.id;
        r.edit_service(
            ServiceConfig::new(Protocol::Tcp, ip("192.168.1.100"), 80).with_scheduler("rr"),
        )
        .unwrap();
        let s4 = r.snapshot();
        assert_eq!(s4.services[0].shared.id, sid);
        assert_eq!(s4.services[0].cfg.scheduler, "rr");
        assert_eq!(s4.services[0].dests.len(), 2);

        r.clear();
        assert!(r.snapshot().services.is_empty());
        assert!(!new.available());
    }

    #[test]
    fn find_falls_back_to_port_zero() {
        let mut r = Rules::new(1);
        r.add_service(
            ServiceConfig::new(Protocol::Tcp, ip("192.168.1.100"), 0).with_persistence(60, None),
        )
        .unwrap();
        r.add_service(ServiceConfig::new(Protocol::Tcp, ip("192.168.1.100"), 443))
            .unwrap();
        let s = r.snapshot();
        assert_eq!(s.find(Protocol::Tcp, ip("192.168.1.100"), 443), Some(1));
        assert_eq!(s.find(Protocol::Tcp, ip("192.168.1.100"), 22), Some(0));
        assert_eq!(s.find(Protocol::Udp, ip("192.168.1.100"), 22), None);
        assert_eq!(s.find(Protocol::Tcp, ip("192.168.1.101"), 443), None);
    }

    #[test]
    fn timeouts_via_set() {
        let mut r = Rules::new(1);
        r.set_timeouts(0, 60, 0);
        assert_eq!(r.snapshot().settings.timeouts.triple(), (900, 60, 300));
        let j = serde_json::to_string(r.settings()).unwrap();
        let back: Settings = serde_json::from_str(&j).unwrap();
        assert_eq!(&back, r.settings());
    }
}
