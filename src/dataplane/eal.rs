//! EAL initialisation and cleanup, and the capability it stands for.
//!
//! Everything that lives in DPDK memory (pools, rings, ports, connection
//! tables in DPDK's heap, launched lcores) is created from an `&Eal` and
//! keeps an [`EalRef`], a clone of the `Arc` the [`Eal`] holds. The cleanup
//! (`rte_eal_cleanup`, which unmaps DPDK's memory) runs when the last of
//! them goes, so no safe handle can outlive the memory it points into.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

use super::{DpdkError, LcoreId, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. DPDK allows one per process. Dropping it gives up
/// this handle; `rte_eal_cleanup` runs once every pool, ring, port and
/// launched lcore made from it is gone too, after which DPDK cannot be used
/// again in this process.
pub struct Eal {
    inner: EalRef,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// What keeps the EAL alive: held by every value that uses DPDK memory.
#[derive(Clone)]
pub(super) struct EalRef(#[allow(dead_code)] Arc<EalInner>);

struct EalInner {
    /// The thread that ran `rte_eal_init` (the main lcore).
    main: ThreadId,
}

impl Eal {
    /// Initialise the EAL from an argument list (`argv[0]` included, e.g.
    /// `["rvsd", "-l", "0,1", "--no-huge", "--vdev", "net_null0"]`).
    /// The calling thread becomes the main lcore.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::new("EAL already initialised in this process", 0));
        }
        let owned: Vec<CString> = match args
            .iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
        {
            Ok(v) => v,
            Err(_) => {
                INITIALISED.store(false, Ordering::SeqCst);
                return Err(DpdkError::new("EAL argument contains a NUL byte", 0));
            }
        };
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
            inner: EalRef(Arc::new(EalInner {
                main: std::thread::current().id(),
            })),
            _not_send: std::marker::PhantomData,
        })
    }

    /// A reference that keeps the EAL from being cleaned up.
    pub(super) fn keep(&self) -> EalRef {
        self.inner.clone()
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

    /// The number of ethdev ports DPDK has (vdevs and PCI devices), closed
    /// ones not counted.
    pub fn port_count(&self) -> u16 {
        // SAFETY: plain getter, valid after init.
        unsafe { dpdk_sys::rte_eth_dev_count_avail() }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        if std::thread::current().id() != self.main {
            // rte_eal_cleanup belongs to the main lcore; skipping it only
            // leaves DPDK's memory to the process's exit.
            eprintln!("rvs: the last EAL user went away off the main thread; EAL cleanup skipped");
            return;
        }
        // SAFETY: runs once (the last EalRef), on the thread that initialised
        // the EAL. Every pool, ring, port, heap block and launched lcore holds
        // an EalRef, so none is left to touch DPDK memory after this; a pool
        // that still had mbufs out leaked its EalRef, so then this never runs.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
