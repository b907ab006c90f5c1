//! EAL initialisation and cleanup.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{DpdkError, LcoreId, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. DPDK allows one per process; dropping it runs
/// `rte_eal_cleanup`, after which DPDK cannot be used again in this process.
pub struct Eal {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Eal {
    /// Initialise the EAL from an argument list (`argv[0]` included, e.g.
    /// `["rvsd", "-l", "0,1", "--no-huge", "--vdev", "net_null0"]`).
    /// The calling thread becomes the main lcore.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::new("EAL already initialised in this process", 0));
        }
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| DpdkError::new("EAL argument contains a NUL byte", 0))?;
        // rte_eal_init may permute argv; give it its own pointer array. The
        // strings stay alive (leaked) because the EAL may keep pointers into them.
        let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
        let argc = argv.len() as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        std::mem::forget(argv);
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal {
            _not_send: std::marker::PhantomData,
        })
    }

    /// The main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: plain getter, valid after init.
        LcoreId(unsafe { dpdk_sys::rte_get_main_lcore() })
    }

    /// The worker lcores (all enabled lcores except the main one), in order.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore walks the EAL's lcore table; -1 starts it.
        let mut id = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < dpdk_sys::RTE_MAX_LCORE {
            out.push(LcoreId(id));
            // SAFETY: as above, continuing from the previous id.
            id = unsafe { dpdk_sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// The number of ethdev ports DPDK probed (vdevs and PCI devices).
    pub fn port_count(&self) -> u16 {
        // SAFETY: plain getter, valid after init.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, from the thread owning the Eal, after every
        // worker has been joined (LaunchHandle borrows nothing, but rvsd joins
        // before dropping; a still-running worker would be a bug upstream).
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
