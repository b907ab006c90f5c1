//! Ethernet ports: configuration (queues, RSS), start/stop, MAC, link,
//! counters, and the per-queue rx/tx handles that workers own.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::EalRef;
use super::ring::Ring;
use super::{Burst, DpdkError, Eal, Mbuf, Mempool, PortId, QueueId, Result, BURST_SIZE};

/// Toeplitz RSS settings for a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssConfig {
    /// The Toeplitz key, as long as the driver's (`DevInfo::hash_key_size`;
    /// 40 bytes when it reports none).
    pub key: Vec<u8>,
    /// `RTE_ETH_RSS_*` hash-type bits (see [`rss_types`]).
    pub hash_types: u64,
    /// Queue for each redirection-table entry; empty = spread round robin.
    /// Shorter than the device's table: repeated to fill it.
    pub reta: Vec<u16>,
}

/// RSS hash-type bits, read from DPDK (they are macros in C).
pub mod rss_types {
    pub fn ip() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_ip() }
    }
    pub fn tcp() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_tcp() }
    }
    pub fn udp() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_udp() }
    }
    pub fn l3_src_only() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_l3_src_only() }
    }
    pub fn l3_dst_only() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_l3_dst_only() }
    }
    pub fn l4_src_only() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_l4_src_only() }
    }
    pub fn l4_dst_only() -> u64 {
        // SAFETY: returns a constant.
        unsafe { dpdk_sys::rvs_rss_l4_dst_only() }
    }
}

#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub rss: Option<RssConfig>,
    pub promiscuous: bool,
    pub mtu: Option<u16>,
    /// Above the device's maximum, configure the device with its maximum
    /// rather than refuse: virtual devices whose advertised maximum is not
    /// what they carry (net_af_packet says 1518 bytes and passes whatever
    /// its ring frames hold).
    pub mtu_clamp: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: None,
            promiscuous: true,
            mtu: None,
            mtu_clamp: false,
        }
    }
}

/// What the driver says it can do.
#[derive(Clone, Debug, Default)]
pub struct DevInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub reta_size: u16,
    pub hash_key_size: u8,
    pub rss_offloads: u64,
    pub socket: i32,
    pub max_mtu: u16,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A probed ethdev port, held by one handle: not `Copy` nor `Clone`, and a
/// second `Port::by_name` (or `all`) for a device already held is refused.
///
/// Configuration (`start`, `stop`, `close`) takes the handle by `&mut` or by
/// value; read-only queries (`info`, `stats`, `link`, `mac`, `reta`, ...)
/// take `&self` and may run on a control thread while workers poll. Packet
/// I/O goes through the [`RxQueue`]/[`TxQueue`] handles [`Port::start`]
/// hands out, one owner each. Every queue holds the port's shared state, so
/// the device is stopped and closed only once the handle and every queue are
/// gone: a queue can never burst on a stopped or closed device.
/// [`Port::close`] while queues live therefore defers the close to the last
/// queue's drop rather than failing: shutdown paths (an error unwinding, a
/// worker that kept its queues) release the port without having to retry.
#[derive(Debug)]
pub struct Port {
    shared: Arc<PortShared>,
}

/// What a port handle and its queues share; its drop stops and closes the
/// device (when this handle configured it) and releases the claim.
struct PortShared {
    id: PortId,
    /// Configured by `start` (so closed on drop).
    configured: bool,
    started: bool,
    /// The rings of a ring-backed port, which the driver uses until closed.
    rings: Vec<Ring>,
    /// The pool the receive queues take mbufs from, until closed.
    pool: Option<Mempool>,
    _eal: EalRef,
}

/// One flag per ethdev id: held by a [`Port`] handle.
static CLAIMED: [AtomicBool; sys::RTE_MAX_ETHPORTS as usize] =
    [const { AtomicBool::new(false) }; sys::RTE_MAX_ETHPORTS as usize];

impl std::fmt::Debug for PortShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.id)
    }
}

/// ENOTSUP on Linux: a driver without the operation.
const fn libc_enotsup() -> i32 {
    95
}

/// EBUSY on Linux.
const EBUSY: i32 = 16;

fn check(ret: i32, what: impl FnOnce() -> String) -> Result<()> {
    if ret < 0 {
        Err(DpdkError::new(what(), ret))
    } else {
        Ok(())
    }
}

impl PortShared {
    fn id(&self) -> PortId {
        self.id
    }

    /// Stop (when started) and close the device; the claim stays until drop.
    fn close_now(&mut self) -> Result<()> {
        let id = self.id;
        let stopped = self.stop_now();
        self.configured = false;
        // SAFETY: no queue of this port exists (the caller holds the only
        // reference to this state) and the device is stopped.
        let ret = unsafe { sys::rte_eth_dev_close(id.0) };
        stopped.and(check(ret, || format!("rte_eth_dev_close({id})")))
    }

    fn stop_now(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        self.started = false;
        // SAFETY: no queue of this port exists (the caller holds the only
        // reference to this state), so nothing bursts on it.
        let ret = unsafe { sys::rte_eth_dev_stop(self.id().0) };
        check(ret, || format!("rte_eth_dev_stop({})", self.id()))
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        if self.configured {
            if let Err(e) = self.close_now() {
                eprintln!("rvs: closing {}: {e}", self.id());
            }
        }
        CLAIMED[self.id().0 as usize].store(false, Ordering::Release);
        // Then the fields: the rings (and the mbufs left in them), the pool
        // handle, the EAL reference, in that order.
    }
}

impl Port {
    /// Take the one handle for port `id`; `None` when it is already held.
    fn claim(eal: &Eal, id: u16) -> Option<Port> {
        let flag = CLAIMED.get(id as usize)?;
        if flag.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Port {
            shared: Arc::new(PortShared {
                id: PortId(id),
                configured: false,
                started: false,
                rings: Vec::new(),
                pool: None,
                _eal: eal.keep(),
            }),
        })
    }

    fn claim_or_busy(eal: &Eal, id: u16, name: &str) -> Result<Port> {
        Port::claim(eal, id).ok_or_else(|| {
            DpdkError::new(
                format!("port {name} is already held by another Port handle"),
                EBUSY,
            )
        })
    }

    pub fn id(&self) -> PortId {
        self.shared.id
    }

    /// Every port DPDK probed that no handle holds yet, in id order.
    pub fn all(eal: &Eal) -> Vec<Port> {
        let mut out = Vec::new();
        let mut id: u16 = 0;
        loop {
            // SAFETY: plain iterator over the ethdev table of the initialised
            // EAL; owner 0 = unowned.
            let next = unsafe { sys::rte_eth_find_next_owned_by(id, 0) };
            if next >= sys::RTE_MAX_ETHPORTS as u64 {
                break;
            }
            out.extend(Port::claim(eal, next as u16));
            id = next as u16 + 1;
        }
        out
    }

    /// The port of a device by name (a vdev name like `net_ring0`, or a PCI
    /// address like `0000:01:00.0`).
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port> {
        let c = CString::new(name).map_err(|_| DpdkError::new("port name contains NUL", 0))?;
        let mut id: u16 = 0;
        // SAFETY: the EAL is initialised; c is NUL-terminated; id is a valid
        // out-pointer.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        check(ret, || format!("no DPDK port named {name}"))?;
        Port::claim_or_busy(eal, id, name)
    }

    /// Create a virtual device after EAL init (`net_null0`, or
    /// `net_af_packet0,iface=veth1`: name, then comma-separated arguments).
    pub fn attach_vdev(eal: &Eal, spec: &str) -> Result<Port> {
        let (name, args) = spec.split_once(',').unwrap_or((spec, ""));
        let cn = CString::new(name).map_err(|_| DpdkError::new("vdev name contains NUL", 0))?;
        let ca = CString::new(args).map_err(|_| DpdkError::new("vdev args contain NUL", 0))?;
        // SAFETY: the EAL is initialised; both strings are NUL-terminated and
        // outlive the call.
        let ret = unsafe { sys::rte_vdev_init(cn.as_ptr(), ca.as_ptr()) };
        check(ret, || format!("rte_vdev_init({spec})"))?;
        Port::by_name(eal, name)
    }

    /// A port over DPDK rings (`net_ring`): packets enqueued on `rx[i]` are
    /// received on queue i; packets sent on queue i land on `tx[i]`. The
    /// port keeps the rings until it is closed.
    pub fn from_rings(eal: &Eal, name: &str, rx: &[&Ring], tx: &[&Ring]) -> Result<Port> {
        let c = CString::new(name).map_err(|_| DpdkError::new("port name contains NUL", 0))?;
        let rxp: Vec<*mut sys::rte_ring> = rx.iter().map(|r| r.as_ptr()).collect();
        let txp: Vec<*mut sys::rte_ring> = tx.iter().map(|r| r.as_ptr()).collect();
        // SAFETY: the EAL is initialised; the ring pointers are live rings,
        // kept alive by the port below until it is closed; DPDK copies the
        // arrays.
        let ret = unsafe {
            sys::rte_eth_from_rings(
                c.as_ptr(),
                rxp.as_ptr(),
                rxp.len() as u32,
                txp.as_ptr(),
                txp.len() as u32,
                0,
            )
        };
        check(ret, || format!("rte_eth_from_rings({name})"))?;
        let mut port = match Port::claim_or_busy(eal, ret as u16, name) {
            Ok(p) => p,
            Err(e) => {
                // Only while another thread's handle of a closed device that
                // had this id is releasing it. The new device must not
                // outlive this call unheld: it points at rings we keep only
                // through a handle.
                // SAFETY: the device was made just above and never started;
                // nothing else holds it (the claim is the other handle's,
                // which is done with its own, closed, device).
                unsafe { sys::rte_eth_dev_close(ret as u16) };
                return Err(e);
            }
        };
        let shared = Arc::get_mut(&mut port.shared).expect("a fresh port has no queue");
        shared.rings = rx.iter().chain(tx).map(|r| (*r).clone()).collect();
        // A ring port is closed on drop even if never started: it was made here.
        shared.configured = true;
        Ok(port)
    }

    pub fn name(&self) -> String {
        let mut buf = [0 as std::ffi::c_char; 64];
        // SAFETY: buf is a writable 64-byte buffer (RTE_ETH_NAME_MAX_LEN).
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.id().0, buf.as_mut_ptr()) };
        if ret < 0 {
            return format!("port{}", self.id().0);
        }
        // SAFETY: DPDK wrote a NUL-terminated name into buf.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn info(&self) -> Result<DevInfo> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-struct for this call.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.id().0, &mut info) };
        check(ret, || format!("rte_eth_dev_info_get({})", self.id()))?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points at the driver's static name string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: plain getter.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id().0) };
        Ok(DevInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
            rss_offloads: info.flow_type_rss_offloads,
            socket,
            // What rte_eth_dev_configure checks: the frame (MTU, Ethernet
            // header and CRC) within max_rx_pktlen, and the MTU within max_mtu.
            max_mtu: match info.max_rx_pktlen {
                0 => info.max_mtu,
                n => info
                    .max_mtu
                    .min(n.saturating_sub(18).min(u16::MAX as u32) as u16),
            },
        })
    }

    /// The port's state, for a configuration call: refused while queues of
    /// an earlier start live (they may be bursting).
    fn exclusive(&mut self) -> Result<&mut PortShared> {
        let id = self.id();
        Arc::get_mut(&mut self.shared).ok_or_else(|| {
            DpdkError::new(
                format!("{id}: its queues are still in use; drop them first"),
                EBUSY,
            )
        })
    }

    /// Configure queues and RSS, start the port, and hand out one rx and one
    /// tx handle per queue. A started port is stopped and configured anew;
    /// refused while queues of an earlier start live.
    pub fn start(
        &mut self,
        cfg: &PortConfig,
        pool: &Mempool,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>)> {
        let info = self.info()?;
        let shared = self.exclusive()?;
        shared.stop_now()?;
        // From here the device may hold mbufs of the pool: keep the pool (and
        // close the device on drop) whatever happens next.
        shared.configured = true;
        // An earlier pool goes only once the queues below have released its
        // mbufs (or with the port, if this start fails).
        let _earlier = shared.pool.replace(pool.clone());
        if cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues.max(1) {
            return Err(DpdkError::new(
                format!(
                    "{}: {} rx queues requested, the device has {}",
                    self.id(),
                    cfg.rx_queues,
                    info.max_rx_queues
                ),
                0,
            ));
        }
        if cfg.tx_queues == 0 || cfg.tx_queues > info.max_tx_queues.max(1) {
            return Err(DpdkError::new(
                format!(
                    "{}: {} tx queues requested, the device has {}",
                    self.id(),
                    cfg.tx_queues,
                    info.max_tx_queues
                ),
                0,
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        // The key must outlive rte_eth_dev_configure, which copies it.
        let mut key = cfg.rss.as_ref().map(|r| r.key.clone()).unwrap_or_default();
        if let Some(rss) = &cfg.rss {
            let want = if info.hash_key_size > 0 {
                info.hash_key_size as usize
            } else {
                40
            };
            if key.len() != want {
                return Err(DpdkError::new(
                    format!(
                        "{}: driver {} takes a {want}-byte RSS key, not {} bytes",
                        self.id(),
                        info.driver,
                        key.len()
                    ),
                    0,
                ));
            }
            let hf = rss.hash_types & info.rss_offloads;
            if hf == 0 {
                return Err(DpdkError::new(
                    format!(
                        "{}: driver {} supports none of the requested RSS hash types",
                        self.id(),
                        info.driver
                    ),
                    0,
                ));
            }
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
        }
        if let Some(mtu) = cfg.mtu {
            let max = if info.max_mtu == 0 {
                u16::MAX
            } else {
                info.max_mtu
            };
            if mtu > max && !cfg.mtu_clamp {
                return Err(DpdkError::new(
                    format!(
                        "{}: mtu {mtu} is above what driver {} takes ({max})",
                        self.id(),
                        info.driver
                    ),
                    0,
                ));
            }
            conf.rxmode.mtu = mtu.min(max) as u32;
        }
        // SAFETY: conf is fully initialised; the key pointer is valid for the call.
        let ret =
            unsafe { sys::rte_eth_dev_configure(self.id().0, cfg.rx_queues, cfg.tx_queues, &conf) };
        check(ret, || format!("rte_eth_dev_configure({})", self.id()))?;
        for q in 0..cfg.rx_queues {
            // SAFETY: queue index within what was configured; the pool is
            // live and the port's state holds it until the device is closed.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id().0,
                    q,
                    cfg.rx_desc,
                    info.socket.max(0) as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(ret, || {
                format!("rte_eth_rx_queue_setup({}, {q})", self.id())
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: queue index within what was configured; default txconf.
            let ret = unsafe {
                sys::rte_eth_tx_queue_setup(
                    self.id().0,
                    q,
                    cfg.tx_desc,
                    info.socket.max(0) as u32,
                    std::ptr::null(),
                )
            };
            check(ret, || {
                format!("rte_eth_tx_queue_setup({}, {q})", self.id())
            })?;
        }
        // SAFETY: the port is configured with its queues set up.
        let ret = unsafe { sys::rte_eth_dev_start(self.id().0) };
        check(ret, || format!("rte_eth_dev_start({})", self.id()))?;
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.started = true;
        }
        if let Some(rss) = &cfg.rss {
            // Some drivers (net_null among them) ignore the key given at
            // configure time; set it again explicitly.
            let mut conf = sys::rte_eth_rss_conf {
                rss_key: key.as_mut_ptr(),
                rss_key_len: key.len() as u8,
                rss_hf: rss.hash_types & info.rss_offloads,
            };
            // SAFETY: conf points at our key, rss_key_len bytes long, for the
            // duration of the call.
            let ret = unsafe { sys::rte_eth_dev_rss_hash_update(self.id().0, &mut conf) };
            if ret < 0 && ret != -(libc_enotsup()) {
                return Err(DpdkError::new(
                    format!("rte_eth_dev_rss_hash_update({})", self.id()),
                    ret,
                ));
            }
            if info.reta_size > 0 {
                self.set_reta(&rss.reta, cfg.rx_queues, info.reta_size)?;
            }
        }
        if cfg.promiscuous {
            // SAFETY: plain control call on a started port. Some vdevs do not
            // implement it; that is not fatal for them.
            let _ = unsafe { sys::rte_eth_promiscuous_enable(self.id().0) };
        }
        let rx = (0..cfg.rx_queues)
            .map(|q| RxQueue {
                port: self.shared.clone(),
                queue: QueueId(q),
            })
            .collect();
        let tx = (0..cfg.tx_queues)
            .map(|q| TxQueue {
                port: self.shared.clone(),
                queue: QueueId(q),
            })
            .collect();
        Ok((rx, tx))
    }

    fn set_reta(&self, reta: &[u16], queues: u16, size: u16) -> Result<()> {
        let groups = (size as usize).div_ceil(64);
        let mut conf = vec![sys::rte_eth_rss_reta_entry64::default(); groups];
        for i in 0..size as usize {
            let q = if reta.is_empty() {
                (i % queues as usize) as u16
            } else {
                reta[i % reta.len()]
            };
            if q >= queues {
                return Err(DpdkError::new(
                    format!(
                        "{}: RSS table names queue {q}, the port has {queues}",
                        self.id()
                    ),
                    0,
                ));
            }
            conf[i / 64].mask |= 1u64 << (i % 64);
            conf[i / 64].reta[i % 64] = q;
        }
        // SAFETY: conf holds ceil(size/64) groups, as DPDK requires for size.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_update(self.id().0, conf.as_mut_ptr(), size) };
        check(ret, || {
            format!("rte_eth_dev_rss_reta_update({})", self.id())
        })
    }

    /// The redirection table as the device reports it.
    pub fn reta(&self) -> Result<Vec<u16>> {
        let size = self.info()?.reta_size;
        let groups = (size as usize).div_ceil(64);
        let mut conf = vec![sys::rte_eth_rss_reta_entry64::default(); groups];
        for g in conf.iter_mut() {
            g.mask = u64::MAX;
        }
        // SAFETY: conf holds ceil(size/64) groups with every entry requested.
        let ret = unsafe { sys::rte_eth_dev_rss_reta_query(self.id().0, conf.as_mut_ptr(), size) };
        check(ret, || format!("rte_eth_dev_rss_reta_query({})", self.id()))?;
        Ok((0..size as usize)
            .map(|i| conf[i / 64].reta[i % 64])
            .collect())
    }

    /// The RSS key and hash types in force.
    pub fn rss_hash_conf(&self) -> Result<(Vec<u8>, u64)> {
        let mut key = [0u8; 64];
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: 64,
            rss_hf: 0,
        };
        // SAFETY: rss_key points at 64 writable bytes, as rss_key_len says.
        let ret = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id().0, &mut conf) };
        check(ret, || {
            format!("rte_eth_dev_rss_hash_conf_get({})", self.id())
        })?;
        let size = self.info()?.hash_key_size as usize;
        // Drivers that do not report a key size use the standard 40 bytes.
        let n = if size > 0 { size } else { 40 }.min(64);
        Ok((key[..n].to_vec(), conf.rss_hf))
    }

    /// The receive and transmit offloads in force (`RTE_ETH_*_OFFLOAD_*`
    /// bits of the configuration the device holds).
    pub fn offloads(&self) -> Result<(u64, u64)> {
        let mut conf = sys::rte_eth_conf::default();
        // SAFETY: conf is a valid out-struct.
        let ret = unsafe { sys::rte_eth_dev_conf_get(self.id().0, &mut conf) };
        check(ret, || format!("rte_eth_dev_conf_get({})", self.id()))?;
        Ok((conf.rxmode.offloads, conf.txmode.offloads))
    }

    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: a is a valid out-struct.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.id().0, &mut a) };
        check(ret, || format!("rte_eth_macaddr_get({})", self.id()))?;
        Ok(a.addr_bytes)
    }

    /// Set the device's MTU (for `net_tap`, the kernel interface's).
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        // SAFETY: a control call on a port we hold; no pointers.
        let ret = unsafe { sys::rte_eth_dev_set_mtu(self.id().0, mtu) };
        check(ret, || format!("rte_eth_dev_set_mtu({}, {mtu})", self.id()))
    }

    pub fn link(&self) -> Result<LinkStatus> {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: l is a valid out-struct; the nowait variant never blocks.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.id().0, &mut l) };
        check(ret, || format!("rte_eth_link_get_nowait({})", self.id()))?;
        Ok(LinkStatus {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        })
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid out-struct.
        let ret = unsafe { sys::rte_eth_stats_get(self.id().0, &mut s) };
        check(ret, || format!("rte_eth_stats_get({})", self.id()))?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Stop the port: no more rx/tx. Refused while queues live (drop them
    /// first: a stopped device must not see a burst).
    pub fn stop(&mut self) -> Result<()> {
        self.exclusive()?.stop_now()
    }

    /// Stop and release the device. With queues still alive the close waits
    /// for the last of them to be dropped (and its errors go to stderr);
    /// until then they stay valid and keep bursting on a started device.
    pub fn close(mut self) -> Result<()> {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.close_now(),
            None => Ok(()),
        }
    }
}

/// The receive side of one queue. Not `Clone`: one owner polls it. It
/// keeps its port's device open and started while it lives.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<PortShared>,
    queue: QueueId,
}

/// The transmit side of one queue. Not `Clone`: one owner sends on it. It
/// keeps its port's device open and started while it lives.
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<PortShared>,
    queue: QueueId,
}

impl RxQueue {
    pub fn port(&self) -> PortId {
        self.port.id
    }
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receive into the free part of `burst`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (p, q) = (self.port.id.0, self.queue.0);
        // SAFETY: we own this queue (one RxQueue per queue exists, and
        // &mut self excludes concurrent use); the device is started and stays
        // so while self.port lives (stop/close need no queue to exist);
        // dst has room for n pointers.
        burst.fill_from(|dst, n| unsafe { sys::rvs_rx_burst(p, q, dst, n) })
    }
}

impl TxQueue {
    pub fn port(&self) -> PortId {
        self.port.id
    }
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Send what the queue accepts; unsent packets stay in `burst`.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let (p, q) = (self.port.id.0, self.queue.0);
        // SAFETY: we own this queue on a device kept started by self.port;
        // DPDK takes ownership of the first `sent` mbufs, which drain_into
        // forgets.
        burst.drain_into(|src, n| unsafe { sys::rvs_tx_burst(p, q, src, n) })
    }

    /// Send frames that stay the caller's (a generator replaying the same
    /// frames): each mbuf's reference count is raised before the transmit,
    /// so the driver's free after sending drops that reference instead of
    /// returning the buffer to its pool, and nothing is allocated or copied
    /// on this side. Returns how many of the first [`BURST_SIZE`] of `pkts`
    /// the queue took (in order); the others are as they were.
    ///
    /// The frames are only read. Drivers that copy at transmit (memif,
    /// pcap) are done with them on return; others keep a reference for a
    /// while (a NIC until it completes, net_ring until the reader frees
    /// the mbuf), and the frames must not be written while they may.
    #[inline]
    pub fn tx_shared(&mut self, pkts: &[Mbuf]) -> usize {
        let n = pkts.len().min(BURST_SIZE);
        if n == 0 {
            return 0;
        }
        let mut raw = [std::ptr::null_mut::<sys::rte_mbuf>(); BURST_SIZE];
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which
        // has the layout of *mut rte_mbuf; n <= pkts.len() and n <= 32.
        unsafe {
            std::ptr::copy_nonoverlapping(pkts.as_ptr().cast(), raw.as_mut_ptr(), n);
        }
        // SAFETY: the n pointers are live mbufs the caller owns (&[Mbuf]);
        // raising their count keeps them alive through the driver's free.
        unsafe { sys::rvs_pktmbuf_refcnt_update_bulk(raw.as_ptr(), n as u32, 1) };
        let (p, q) = (self.port.id.0, self.queue.0);
        // SAFETY: we own this queue (&mut self) on a device kept started by
        // self.port; the driver takes the extra
        // reference of the first `sent` mbufs and leaves the rest alone.
        let sent = (unsafe { sys::rvs_tx_burst(p, q, raw.as_mut_ptr(), n as u16) } as usize).min(n);
        if sent < n {
            // SAFETY: the refused mbufs are still ours with the reference
            // raised above; give it back so each holds exactly one again.
            unsafe {
                sys::rvs_pktmbuf_refcnt_update_bulk(raw[sent..].as_ptr(), (n - sent) as u32, -1)
            };
        }
        sent
    }
}
