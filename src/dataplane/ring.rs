//! DPDK rings carrying mbufs between lcores (and into ring-backed test ports).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::EalRef;
use super::{Burst, DpdkError, Eal, Mbuf, Result};

/// A lockless DPDK ring of mbuf pointers. A handle: clones share the ring
/// (a ring-backed port holds one until it is closed); the ring is freed,
/// with the mbufs it still holds, when the last handle goes.
#[derive(Clone)]
pub struct Ring {
    inner: Arc<RingInner>,
}

struct RingInner {
    raw: NonNull<sys::rte_ring>,
    _eal: EalRef,
}

// SAFETY: rte_ring is built for concurrent producers/consumers; rings made
// single-producer/single-consumer are only made through the unsafe
// `new_spsc`, whose caller keeps to one of each.
unsafe impl Send for RingInner {}
// SAFETY: as above; enqueue/dequeue through &Ring are thread-safe.
unsafe impl Sync for RingInner {}

impl Ring {
    /// A multi-producer/multi-consumer ring. `size` must be a power of two;
    /// holds `size - 1` entries.
    pub fn new(eal: &Eal, name: &str, size: u32) -> Result<Ring> {
        Self::create(eal, name, size, 0)
    }

    /// A single-producer/single-consumer ring (cheaper: no atomic
    /// read-modify-write).
    ///
    /// # Safety
    /// At any time at most one thread enqueues on the ring and at most one
    /// dequeues from it, through this handle and every clone of it.
    pub(super) unsafe fn new_spsc(eal: &Eal, name: &str, size: u32) -> Result<Ring> {
        Self::create(eal, name, size, sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ)
    }

    fn create(eal: &Eal, name: &str, size: u32, flags: u32) -> Result<Ring> {
        let c = CString::new(name).map_err(|_| DpdkError::new("ring name contains NUL", 0))?;
        // SAFETY: the EAL is initialised (&Eal); c is NUL-terminated; DPDK
        // copies the name.
        let p = unsafe { sys::rte_ring_create(c.as_ptr(), size, -1, flags) };
        let raw = NonNull::new(p)
            .ok_or_else(|| DpdkError::last(format!("rte_ring_create({name}, {size})")))?;
        Ok(Ring {
            inner: Arc::new(RingInner {
                raw,
                _eal: eal.keep(),
            }),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_ring {
        self.inner.raw.as_ptr()
    }

    /// Move as many packets of `burst` as fit into the ring; the rest stay.
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        self.inner.enqueue(burst)
    }

    /// Move packets from the ring into the free part of `burst`.
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        self.inner.dequeue(burst)
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only query on a live ring.
        unsafe { sys::rvs_ring_count(self.as_ptr()) }
    }
}

impl RingInner {
    fn enqueue(&self, burst: &mut Burst) -> usize {
        let r = self.raw.as_ptr();
        // SAFETY: r is a live ring; it takes ownership of the first `n`
        // pointers, which drain_into then forgets.
        burst.drain_into(|src, n| unsafe {
            sys::rvs_ring_enqueue_burst(r, src.cast(), n as u32) as u16
        })
    }

    fn dequeue(&self, burst: &mut Burst) -> usize {
        let r = self.raw.as_ptr();
        // SAFETY: the ring only ever holds mbuf pointers we enqueued (or a
        // ring-backed port transmitted); ownership moves to the burst.
        burst.fill_from(|dst, n| unsafe {
            sys::rvs_ring_dequeue_burst(r, dst.cast(), n as u32) as u16
        })
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        let mut b = Burst::new();
        while self.dequeue(&mut b) > 0 {
            b.drain().for_each(drop::<Mbuf>);
        }
        // SAFETY: the ring is empty and this was its last handle (a port
        // over it holds a handle until it is closed); _eal keeps DPDK mapped.
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
