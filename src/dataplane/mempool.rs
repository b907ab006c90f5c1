//! Packet buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys::rte_mempool;

use super::{DpdkError, Result};

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`), freed on drop.
pub struct Mempool {
    raw: NonNull<rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is
// a pointer to a structure DPDK synchronises itself.
unsafe impl Send for Mempool {}
// SAFETY: see Send; all operations through &Mempool are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

/// Default data room: 2048 bytes of packet plus DPDK's default headroom (128),
/// which leaves room to prepend tunnel headers.
pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

impl Mempool {
    /// Create a pool of `n` mbufs with a per-lcore cache of `cache` and
    /// `data_room` bytes per buffer, on `socket` (-1: any).
    pub fn new(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let cname =
            CString::new(name).map_err(|_| DpdkError::new("mempool name contains NUL", 0))?;
        // SAFETY: cname is a valid NUL-terminated string for the duration of
        // the call; DPDK copies the name.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        NonNull::new(p)
            .map(|raw| Mempool { raw })
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name}, {n})")))
    }

    /// Free mbufs in the pool (including per-lcore caches).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: self.raw is a live mempool.
        unsafe { dpdk_sys::rvs_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently handed out.
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: self.raw is a live mempool.
        unsafe { dpdk_sys::rvs_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool was created by rte_pktmbuf_pool_create and is freed
        // once. Ports using it must be stopped first (rvsd's shutdown order).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
