//! Bringing up the configured ports: RSS fitted to each driver (key length,
//! hash types, redirection table), what is in force read back, and the
//! operator told when connection ownership will rely on hand-off.

use crate::config::{Config, Role};
use crate::control::proto::{PortInfo, RssInfo};
use crate::dataplane::port::{rss_types, DevInfo, RxQueue, TxQueue};
use crate::dataplane::{Eal, Mempool, Port, PortConfig, RssConfig};
use crate::pci;
use crate::rss::{hash_type_names, key_of_len};
use std::sync::Arc;

/// What rvsd set up on a port and what the driver put in force.
#[derive(Clone, Debug, Default)]
pub(super) struct PortSetup {
    pub name: String,
    pub device: String,
    pub driver: String,
    pub queues: u16,
    pub rss: RssInfo,
    pub rx_offloads: u64,
    pub tx_offloads: u64,
}

impl PortSetup {
    /// The log line at start.
    pub fn describe(&self) -> String {
        let r = &self.rss;
        let rss = if r.requested.is_empty() {
            "no RSS".to_string()
        } else {
            format!(
                "RSS requested [{}], in force [{}], key {} bytes, RETA {}",
                r.requested.join(" "),
                r.in_force.join(" "),
                r.key_len,
                r.reta_size
            )
        };
        format!(
            "port {} ({}): driver {}, {} rx/tx queue(s), {rss}, offloads rx {:#x} tx {:#x}; connection owners: {}",
            self.name,
            self.device,
            self.driver,
            self.queues,
            self.rx_offloads,
            self.tx_offloads,
            r.ownership
        )
    }

    /// The static part of `rvsadm --ports`.
    pub fn info(&self, port: &Port) -> PortInfo {
        let s = port.stats().unwrap_or_default();
        let link = port.link().unwrap_or_default();
        let mac = port.mac().unwrap_or([0; 6]);
        PortInfo {
            port: port.id().0,
            name: self.name.clone(),
            device: self.device.clone(),
            driver: self.driver.clone(),
            mac: mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            link_up: link.up,
            // RTE_ETH_SPEED_NUM_UNKNOWN is u32::MAX; 0 is "none" (link down).
            speed_mbps: (link.speed_mbps != u32::MAX && link.speed_mbps != 0)
                .then_some(link.speed_mbps),
            rx_queues: self.queues,
            tx_queues: self.queues,
            rss: self.rss.clone(),
            rx_offloads: format!("{:#x}", self.rx_offloads),
            tx_offloads: format!("{:#x}", self.tx_offloads),
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_dropped: s.imissed + s.rx_nombuf,
            tx_errors: s.oerrors,
        }
    }
}

/// Ports configured and started, with their queues.
pub(super) struct Started {
    /// Shared with the control thread's queries; the device closes when the
    /// last holder and every queue are gone.
    pub ports: Vec<(String, String, Arc<Port>)>,
    pub setups: Vec<PortSetup>,
    pub macs: Vec<[u8; 6]>,
    /// Per worker: (rx queue of every port, tx queue of every port).
    pub queues: Vec<(Vec<RxQueue>, Vec<TxQueue>)>,
    /// Redirection-table size the software owner map mirrors: the smallest
    /// of the ports' tables; every port's table repeats its pattern.
    pub reta_size: usize,
}

/// Stop and release ports. A port still held elsewhere (the control
/// thread's view) or with live queues closes when the last of them goes; a
/// port keeps its pool until then, so the pool never goes under it.
pub(super) fn close_all(ports: Vec<(String, String, Arc<Port>)>) {
    for (name, _, p) in ports {
        if let Ok(p) = Arc::try_unwrap(p) {
            if let Err(e) = p.close() {
                eprintln!("rvsd: port {name}: {e}");
            }
        }
    }
}

/// The hash types a port's role needs for each connection to land on one
/// worker in both directions: client side on source fields, server side on
/// destination fields.
fn wanted_hash(role: Role) -> u64 {
    let base = rss_types::ip() | rss_types::tcp() | rss_types::udp();
    match role {
        Role::Client | Role::Both => base | rss_types::l3_src_only() | rss_types::l4_src_only(),
        Role::Server => base | rss_types::l3_dst_only() | rss_types::l4_dst_only(),
    }
}

/// How connections find their owner on a port, from what is in force.
fn ownership(role: Role, workers: u16, info: &DevInfo, in_force: u64, reta: usize) -> String {
    if workers <= 1 {
        return "single worker".into();
    }
    if in_force == 0 {
        return format!("hand-off: driver {} has no RSS", info.driver);
    }
    let only = wanted_hash(role) & !(rss_types::ip() | rss_types::tcp() | rss_types::udp());
    if in_force & only != only {
        let side = if role == Role::Server {
            "destination"
        } else {
            "source"
        };
        return format!(
            "hand-off: driver {} cannot hash on {side} fields only, so most packets cross to their owner",
            info.driver
        );
    }
    if !(info.reta_size as usize).is_multiple_of(reta.max(1)) {
        return format!(
            "hand-off: RETA of {} entries is not a multiple of the {reta} the owner map mirrors",
            info.reta_size
        );
    }
    if role == Role::Both {
        return "rss for clients; hand-off for real-server replies (one-arm port)".into();
    }
    "rss".into()
}

/// Probe every configured port, fit RSS to its driver, start it with one
/// rx and one tx queue per worker.
pub(super) fn start(eal: &Eal, cfg: &Config, nq: u16, pool: &Mempool) -> Result<Started, String> {
    let mut probed = Vec::new();
    for pc in &cfg.ports {
        let port = Port::by_name(eal, pc.dev_name()).map_err(|e| match pc.pci() {
            Some(addr) => format!(
                "port {}: {}",
                pc.name,
                pci::explain(addr, &pci::state(std::path::Path::new("/sys"), addr))
            ),
            None => format!("port {}: {e}", pc.name),
        })?;
        let info = port.info().map_err(|e| e.to_string())?;
        if nq > info.max_rx_queues.max(1) || nq > info.max_tx_queues.max(1) {
            return Err(format!(
                "port {} ({}): driver {} has {} rx and {} tx queue(s); {nq} workers need one of each per worker",
                pc.name, pc.device, info.driver, info.max_rx_queues, info.max_tx_queues
            ));
        }
        probed.push((pc, port, info));
    }
    // One pattern for every table: entry i -> worker (i mod L) mod n, with L
    // the smallest table, so that tables of any power-of-two size agree.
    let reta_size = probed
        .iter()
        .filter(|(_, _, i)| i.rss_offloads != 0 && i.reta_size > 0)
        .map(|(_, _, i)| i.reta_size as usize)
        .min()
        .unwrap_or(128);
    let pattern: Vec<u16> = (0..reta_size).map(|i| (i % nq as usize) as u16).collect();

    let mut started = Started {
        ports: Vec::new(),
        setups: Vec::new(),
        macs: Vec::new(),
        queues: (0..nq).map(|_| (Vec::new(), Vec::new())).collect(),
        reta_size,
    };
    for (pc, mut port, info) in probed {
        let want = wanted_hash(pc.role);
        let rss = (nq > 1 && info.rss_offloads != 0).then(|| {
            // Keep only the hash types the driver has; without the *_ONLY
            // bits packets still spread, and hand-off fixes owners.
            let mut hash_types = want & info.rss_offloads;
            if hash_types & (rss_types::ip() | rss_types::tcp() | rss_types::udp()) == 0 {
                hash_types = info.rss_offloads;
            }
            RssConfig {
                key: key_of_len(info.hash_key_size as usize),
                hash_types,
                reta: pattern.clone(),
            }
        });
        let pcfg = PortConfig {
            rx_queues: nq,
            tx_queues: nq,
            rx_desc: cfg.workers.rx_desc,
            tx_desc: cfg.workers.tx_desc,
            rss: rss.clone(),
            promiscuous: true,
            mtu: pc.mtu,
            mtu_clamp: pc.is_vdev(),
        };
        let (rx, tx) = match port.start(&pcfg, pool) {
            Ok(q) => q,
            Err(e) => {
                // The ports started so far go before the caller frees the pool.
                close_all(started.ports);
                return Err(format!("port {} ({}): {e}", pc.name, pc.device));
            }
        };
        for (w, (r, t)) in rx.into_iter().zip(tx).enumerate() {
            started.queues[w].0.push(r);
            started.queues[w].1.push(t);
        }
        let (key_len, in_force) = match &rss {
            // Drivers that cannot report their hash configuration have
            // what was set: configure would have failed otherwise.
            Some(r) => match port.rss_hash_conf() {
                Ok((key, hf)) => (key.len(), hf),
                Err(_) => (r.key.len(), r.hash_types & info.rss_offloads),
            },
            None => (0, 0),
        };
        let (rx_off, tx_off) = port.offloads().unwrap_or((0, 0));
        let setup = PortSetup {
            name: pc.name.clone(),
            device: pc.device.clone(),
            driver: info.driver.clone(),
            queues: nq,
            rss: RssInfo {
                requested: rss
                    .as_ref()
                    .map(|_| hash_type_names(want))
                    .unwrap_or_default(),
                in_force: hash_type_names(in_force),
                key_len: key_len as u16,
                reta_size: info.reta_size,
                ownership: ownership(pc.role, nq, &info, in_force, reta_size),
            },
            rx_offloads: rx_off,
            tx_offloads: tx_off,
        };
        eprintln!("rvsd: {}", setup.describe());
        started.macs.push(port.mac().unwrap_or([0; 6]));
        started
            .ports
            .push((pc.name.clone(), pc.device.clone(), Arc::new(port)));
        started.setups.push(setup);
    }
    Ok(started)
}
