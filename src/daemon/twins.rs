//! The ports' kernel twins, wired: a `net_tap` device per `[port.twin]`
//! with the port's MAC and MTU, its addresses kept by rtnetlink, the
//! frame mover's thread, and the VIP owners the workers answer ARP/ND for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, VipOwner};
use crate::datapath::VipOwners;
use crate::dataplane::port::PortConfig;
use crate::dataplane::ring::Ring;
use crate::dataplane::twin::{self, TwinPort, TwinStats, TWIN_RING_SIZE};
use crate::dataplane::worker::TwinLink;
use crate::dataplane::{Eal, Mempool, Port, PortId};
use crate::lb::rules::Snapshot;
use crate::net::{IpCidr, SnapshotRx, SnapshotTx};
use crate::twin::netlink::Rtnl;
use crate::twin::{Plan, TwinAddrs};

/// One port's twin.
struct Twin {
    /// The port's index among the configured ports, and its name.
    port: usize,
    port_name: String,
    /// The kernel interface and its index.
    name: String,
    index: u32,
    owner: VipOwner,
    withdraw: Duration,
    addrs: TwinAddrs,
    device: Arc<Port>,
    /// The last failure reported, so that one that persists is reported
    /// once, not at every sync.
    last_error: Option<String>,
}

impl Twin {
    fn report(&mut self, what: String) {
        if self.last_error.as_ref() != Some(&what) {
            eprintln!("rvsd: twin {}: {what}", self.name);
            self.last_error = Some(what);
        }
    }
}

/// Every twin of the daemon.
pub(super) struct Twins {
    twins: Vec<Twin>,
    rtnl: Rtnl,
    to_kernel: Ring,
    from_kernel: Ring,
    owners_tx: SnapshotTx<VipOwners>,
    owners: Arc<VipOwners>,
    snaps: SnapshotRx<Snapshot>,
    vips: Vec<IpAddr>,
    /// Declared last of the frame's users: dropped (stopped) before the
    /// twins' devices close in `Drop`.
    mover: Option<twin::Mover>,
    ports: usize,
}

/// How often the twins' addresses are read back and brought to what rvsd
/// wants: the delay before a VIP added by keepalived is answered for.
pub(super) const SYNC_EVERY: Duration = Duration::from_millis(100);

impl Twins {
    /// Create and start a twin for every port configured with one. `macs`
    /// and `ports` are the started ports'. `owners_tx` reaches the workers;
    /// `snaps` sees each configuration published.
    pub fn start(
        eal: &Eal,
        cfg: &Config,
        macs: &[[u8; 6]],
        ports: &[PortId],
        pool: &Mempool,
        owners_tx: SnapshotTx<VipOwners>,
        snaps: SnapshotRx<Snapshot>,
    ) -> Result<Option<Twins>, String> {
        if cfg.ports.iter().all(|p| p.twin.is_none()) {
            return Ok(None);
        }
        let mut rtnl = Rtnl::open().map_err(|e| format!("twin: rtnetlink: {e}"))?;
        let mut twins = Vec::new();
        let mut movers = Vec::new();
        for (i, pc) in cfg.ports.iter().enumerate() {
            let Some(tc) = &pc.twin else { continue };
            let name = tc.iface_name(&pc.name);
            let at = |e: String| format!("port {}: twin {name}: {e}", pc.name);
            if rtnl
                .index_of(&name)
                .map_err(|e| at(e.to_string()))?
                .is_some()
            {
                return Err(at("an interface of that name exists already".into()));
            }
            let mac = match &pc.mac {
                Some(m) => crate::config::parse_mac(m).map_err(|e| at(e.to_string()))?,
                None => macs[i],
            };
            let mac_s = crate::wire::EthernetAddress(mac).to_string();
            let spec = format!("net_tap_twin{i},iface={name},mac={mac_s}");
            let mut device = Port::attach_vdev(eal, &spec).map_err(|e| at(e.to_string()))?;
            let mtu = pc.mtu.unwrap_or(crate::net::iface::DEFAULT_MTU);
            let pcfg = PortConfig {
                rx_queues: 1,
                tx_queues: 1,
                rx_desc: 512,
                tx_desc: 512,
                rss: None,
                promiscuous: false,
                mtu: Some(mtu),
                mtu_clamp: true,
            };
            let (mut rx, mut tx) = device.start(&pcfg, pool).map_err(|e| at(e.to_string()))?;
            device.set_mtu(mtu).map_err(|e| at(e.to_string()))?;
            let index = wait_index(&mut rtnl, &name).map_err(at)?;
            let own = pc
                .addresses
                .iter()
                .filter(|_| tc.addresses)
                .map(|a| a.parse::<IpCidr>().map_err(|e| at(format!("{a}: {e:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let (Some(rx), Some(tx)) = (rx.pop(), tx.pop()) else {
                return Err(at("no queue".into()));
            };
            movers.push(TwinPort {
                port: ports[i],
                mac,
                rx,
                tx,
            });
            eprintln!(
                "rvsd: port {}: kernel twin {name} (index {index}), mac {mac_s}, mtu {mtu}, VIPs answered {}",
                pc.name,
                match tc.vips {
                    VipOwner::Always => "always",
                    VipOwner::Twin => "while on the twin",
                }
            );
            twins.push(Twin {
                port: i,
                port_name: pc.name.clone(),
                name,
                index,
                owner: tc.vips,
                withdraw: Duration::from_millis(tc.withdraw_ms as u64),
                addrs: TwinAddrs::new(own, tc.announce),
                device: Arc::new(device),
                last_error: None,
            });
        }
        let to_kernel = Ring::new(eal, "rvs_twin_in", TWIN_RING_SIZE).map_err(|e| e.to_string())?;
        let from_kernel =
            Ring::new(eal, "rvs_twin_out", TWIN_RING_SIZE).map_err(|e| e.to_string())?;
        let mover = twin::Mover::spawn(movers, to_kernel.clone(), from_kernel.clone())
            .map_err(|e| format!("twin thread: {e}"))?;
        let mut t = Twins {
            twins,
            rtnl,
            to_kernel,
            from_kernel,
            owners_tx,
            owners: Arc::new(VipOwners::default()),
            snaps,
            vips: Vec::new(),
            mover: Some(mover),
            ports: cfg.ports.len(),
        };
        t.sync();
        Ok(Some(t))
    }

    /// The frame mover's counters.
    pub fn stats(&self) -> Option<Arc<TwinStats>> {
        self.mover.as_ref().map(|m| m.stats.clone())
    }

    /// Worker `w`'s link to the twins: worker 0 also sends the kernel's
    /// frames out.
    pub fn link(&self, w: usize) -> TwinLink {
        TwinLink {
            to_kernel: self.to_kernel.clone(),
            from_kernel: (w == 0).then(|| self.from_kernel.clone()),
        }
    }

    /// The VIP owners as of the last sync.
    pub fn owners(&self) -> Arc<VipOwners> {
        self.owners.clone()
    }

    /// Bring every twin's addresses to what rvsd wants, read back who owns
    /// which VIP, and tell the workers when that changed. A failure is
    /// reported and retried at the next sync.
    pub fn sync(&mut self) {
        if let Some(s) = self.snaps.latest() {
            self.vips = s.vip_addrs().collect();
            self.vips.sort();
        }
        let mut owners = VipOwners(vec![None; self.ports]);
        for t in &mut self.twins {
            let present = match self.rtnl.addresses(t.index) {
                Ok(p) => p,
                Err(e) => {
                    t.report(format!("reading its addresses: {e}"));
                    continue;
                }
            };
            let plan = t.addrs.plan(&self.vips, &present);
            let now = apply(&mut self.rtnl, t, &plan, present);
            if t.owner == VipOwner::Twin {
                owners.0[t.port] = Some(now.iter().map(|c| c.addr()).collect());
            }
        }
        if owners != *self.owners {
            self.owners = Arc::new(owners);
            self.owners_tx.publish(&self.owners);
        }
    }

    /// Take the announced VIPs off the twins and give the routing daemons
    /// the longest `withdraw_ms` to withdraw them; frames keep flowing
    /// meanwhile.
    pub fn withdraw(&mut self) {
        let mut wait = Duration::ZERO;
        for t in &mut self.twins {
            if !t.addrs.has_announced() {
                continue;
            }
            let present = self.rtnl.addresses(t.index).unwrap_or_default();
            let plan = t.addrs.plan_stop(&present);
            apply(&mut self.rtnl, t, &plan, present);
            eprintln!(
                "rvsd: port {}: {} VIP(s) taken off twin {}; waiting {} ms for them to be withdrawn",
                t.port_name,
                plan.remove.len(),
                t.name,
                t.withdraw.as_millis()
            );
            wait = wait.max(t.withdraw);
        }
        let until = Instant::now() + wait;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Twins {
    /// Stop the frame mover (after the workers) and close the twins, on
    /// every way out of the daemon (before the pool goes).
    fn drop(&mut self) {
        // The mover holds the twins' queues: stopped first.
        drop(self.mover.take());
        for t in self.twins.drain(..) {
            if let Ok(p) = Arc::try_unwrap(t.device) {
                if let Err(e) = p.close() {
                    eprintln!("rvsd: twin {}: {e}", t.name);
                }
            }
        }
    }
}

/// Apply `plan` to twin `t`, whose addresses are `present`; returns its
/// addresses after.
fn apply(rtnl: &mut Rtnl, t: &mut Twin, plan: &Plan, mut present: Vec<IpCidr>) -> Vec<IpCidr> {
    for c in &plan.add {
        match rtnl.add_address(t.index, *c) {
            Ok(()) => {
                t.addrs.done(*c, true);
                present.push(*c);
            }
            Err(e) => t.report(format!("adding {c}: {e}")),
        }
    }
    for c in &plan.remove {
        match rtnl.remove_address(t.index, *c) {
            Ok(()) => {
                t.addrs.done(*c, false);
                present.retain(|p| p.addr() != c.addr());
            }
            Err(e) => t.report(format!("removing {c}: {e}")),
        }
    }
    present
}

/// The twin's interface index, once the kernel has the interface.
fn wait_index(rtnl: &mut Rtnl, name: &str) -> Result<u32, String> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match rtnl.index_of(name) {
            Ok(Some(i)) => return Ok(i),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return Err("the kernel has no such interface after start".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}
