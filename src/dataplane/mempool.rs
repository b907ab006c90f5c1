//! Packet buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::rte_mempool;

use super::eal::EalRef;
use super::{DpdkError, Eal, Result};

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). A handle: clones
/// share the pool, and a started port holds one until it is closed. The
/// pool is freed when the last handle goes, unless mbufs taken from it are
/// still out: then it is leaked on purpose (see [`Drop`] below), so that no
/// [`super::Mbuf`] ever points into a freed pool.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<rte_mempool>,
    name: String,
    eal: EalRef,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is
// a pointer to a structure DPDK synchronises itself.
unsafe impl Send for PoolInner {}
// SAFETY: see Send; all operations through &PoolInner are thread-safe in DPDK.
unsafe impl Sync for PoolInner {}

/// Default data room: 2048 bytes of packet plus DPDK's default headroom (128),
/// which leaves room to prepend tunnel headers.
pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

impl Mempool {
    /// Create a pool of `n` mbufs with a per-lcore cache of `cache` and
    /// `data_room` bytes per buffer, on `socket` (-1: any).
    pub fn new(
        eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool> {
        let cname =
            CString::new(name).map_err(|_| DpdkError::new("mempool name contains NUL", 0))?;
        // SAFETY: the EAL is initialised (we hold &Eal); cname is a valid
        // NUL-terminated string for the duration of the call; DPDK copies it.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(p)
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name}, {n})")))?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                name: name.to_string(),
                eal: eal.keep(),
            }),
        })
    }

    /// Free mbufs in the pool (including per-lcore caches).
    pub fn avail_count(&self) -> u32 {
        self.inner.avail_count()
    }

    /// Mbufs currently handed out: held by rvs, in rings, or in a port's
    /// receive descriptors. Mbufs sitting in per-lcore caches are free, not
    /// in use (`rte_mempool_avail_count` counts the caches).
    pub fn in_use_count(&self) -> u32 {
        self.inner.in_use_count()
    }

    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl PoolInner {
    fn avail_count(&self) -> u32 {
        // SAFETY: self.raw is a live mempool (freed only in our Drop).
        unsafe { dpdk_sys::rvs_mempool_avail_count(self.raw.as_ptr()) }
    }

    fn in_use_count(&self) -> u32 {
        // SAFETY: self.raw is a live mempool (freed only in our Drop).
        unsafe { dpdk_sys::rvs_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for PoolInner {
    /// The last handle is gone, so nothing can take an mbuf any more: no
    /// `Mbuf::alloc` (it needs a handle) and no port receive queue (a port
    /// holds a handle until it is closed, and closing releases the mbufs in
    /// its receive descriptors). Mbufs can only come back. If some are still
    /// out, the pool and the EAL stay mapped for good, and each may still be
    /// used and freed into the leaked pool.
    ///
    /// The one thing the count cannot see is an mbuf being freed on another
    /// thread at this very instant (DPDK bumps a cache's length before it
    /// writes the slot). In rvs every thread that frees mbufs holds the pool
    /// (a handle, or a queue of a port holding it) until it is done.
    fn drop(&mut self) {
        let out = self.in_use_count();
        if out > 0 {
            eprintln!(
                "rvs: mempool {} dropped with {out} mbuf(s) still out: leaking the pool (and keeping the EAL) so they stay valid",
                self.name
            );
            std::mem::forget(self.eal.clone());
            return;
        }
        // SAFETY: the pool was created by rte_pktmbuf_pool_create and is freed
        // once, here; no mbuf of it is out and none can be taken (see above).
        // self.eal keeps the EAL mapped until after this call.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
