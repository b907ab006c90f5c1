//! DPDK rings carrying mbufs between lcores (and into ring-backed test ports).

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys as sys;

use super::{Burst, DpdkError, Mbuf, Result};

/// A lockless DPDK ring of mbuf pointers, freed (with what it still holds)
/// on drop.
pub struct Ring {
    raw: NonNull<sys::rte_ring>,
}

// SAFETY: rte_ring is built for concurrent producers/consumers (created
// multi-producer/multi-consumer unless flags say otherwise).
unsafe impl Send for Ring {}
// SAFETY: as above; enqueue/dequeue through &Ring are thread-safe.
unsafe impl Sync for Ring {}

impl Ring {
    /// A multi-producer/multi-consumer ring. `size` must be a power of two;
    /// holds `size - 1` entries.
    pub fn new(name: &str, size: u32) -> Result<Ring> {
        Self::create(name, size, 0)
    }

    /// A single-producer/single-consumer ring (cheaper: no atomic
    /// read-modify-write). Exactly one thread may enqueue and one dequeue.
    pub fn new_spsc(name: &str, size: u32) -> Result<Ring> {
        Self::create(name, size, sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ)
    }

    fn create(name: &str, size: u32, flags: u32) -> Result<Ring> {
        let c = CString::new(name).map_err(|_| DpdkError::new("ring name contains NUL", 0))?;
        // SAFETY: c is NUL-terminated; DPDK copies the name.
        let p = unsafe { sys::rte_ring_create(c.as_ptr(), size, -1, flags) };
        NonNull::new(p)
            .map(|raw| Ring { raw })
            .ok_or_else(|| DpdkError::last(format!("rte_ring_create({name}, {size})")))
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_ring {
        self.raw.as_ptr()
    }

    /// Move as many packets of `burst` as fit into the ring; the rest stay.
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        let r = self.raw.as_ptr();
        // SAFETY: the ring takes ownership of the first `n` pointers, which
        // drain_into then forgets.
        burst.drain_into(|src, n| unsafe {
            sys::rvs_ring_enqueue_burst(r, src.cast(), n as u32) as u16
        })
    }

    /// Move packets from the ring into the free part of `burst`.
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        let r = self.raw.as_ptr();
        // SAFETY: the ring only ever holds mbuf pointers we enqueued (or a
        // ring-backed port transmitted); ownership moves to the burst.
        burst.fill_from(|dst, n| unsafe {
            sys::rvs_ring_dequeue_burst(r, dst.cast(), n as u32) as u16
        })
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { sys::rvs_ring_count(self.raw.as_ptr()) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut b = Burst::new();
        while self.dequeue(&mut b) > 0 {
            b.drain().for_each(drop::<Mbuf>);
        }
        // SAFETY: the ring is empty and no longer referenced (ports over it
        // are closed first).
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
