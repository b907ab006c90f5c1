//! Connection tables in DPDK's heap (`rte_zmalloc_socket`).
//!
//! At a million connections a worker's table is about 100 MB touched at
//! random; on 4 KiB pages nearly every lookup also misses the TLB. When the
//! EAL runs on hugepages, its heap is hugepage memory on the worker's NUMA
//! socket, so the table goes there. Without hugepages (`--no-huge`) the
//! EAL's heap is ordinary pages and only as large as `-m`: the table stays
//! on the Rust heap. Either way the table's memory is given back when the
//! worker's table is dropped.

use std::ffi::CString;
use std::mem::{align_of, size_of};

use crate::lb::conntable::{Bucket, Conn, ConnTable};
use crate::lb::time::Timestamp;

use super::eal::EalRef;
use super::{Eal, LcoreId};

/// Where a worker's connection table lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// DPDK's heap on hugepages.
    Hugepages,
    /// The Rust heap (no hugepages, `table_memory = "heap"`, or the
    /// hugepage heap had no room).
    Heap,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Hugepages => "hugepages",
            Placement::Heap => "heap",
        }
    }
}

/// True when the EAL was started on hugepages.
pub fn eal_has_hugepages() -> bool {
    // SAFETY: reads a flag of the initialised EAL; no arguments.
    unsafe { dpdk_sys::rte_eal_has_hugepages() != 0 }
}

/// Zeroed memory from DPDK's heap, given back (`rte_free`) when dropped.
struct HeapBlock {
    ptr: std::ptr::NonNull<u8>,
    bytes: usize,
    /// DPDK's heap stays mapped while the block lives.
    _eal: EalRef,
}

// SAFETY: the block is plain memory owned by this value alone; rte_free may
// be called from any thread of the process.
unsafe impl Send for HeapBlock {}

impl HeapBlock {
    /// Room for `n` values of `T` on `socket`, zeroed. `None` when the heap
    /// has no room.
    fn zalloc<T>(eal: &Eal, name: &str, n: usize, socket: i32) -> Option<HeapBlock> {
        let bytes = n.checked_mul(size_of::<T>())?;
        if bytes == 0 {
            return None;
        }
        let cname = CString::new(name).ok()?;
        let align = align_of::<T>().max(64) as u32;
        // SAFETY: a plain allocation call on the initialised EAL's heap
        // (&Eal); cname outlives it (DPDK copies the name into its statistics).
        let p = unsafe { dpdk_sys::rte_zmalloc_socket(cname.as_ptr(), bytes, align, socket) };
        std::ptr::NonNull::new(p.cast::<u8>()).map(|ptr| HeapBlock {
            ptr,
            bytes,
            _eal: eal.keep(),
        })
    }

    /// The block as a slice of `T` that the caller hands to exactly one
    /// owner, which must stop using it before this block is dropped.
    ///
    /// # Safety
    /// `T` is a type for which the all-zero pattern is valid, the block was
    /// allocated for `T` (size and alignment), this is called once per
    /// block, and the slice is not used after the block is dropped.
    unsafe fn slice<T>(&self) -> &'static mut [T] {
        // SAFETY: per the contract: aligned, sized and zeroed for T, and the
        // only reference to this memory.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().cast::<T>(),
                self.bytes / size_of::<T>(),
            )
        }
    }
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: ptr came from rte_zmalloc_socket and is freed once, here;
        // _eal keeps the heap mapped until after this.
        unsafe { dpdk_sys::rte_free(self.ptr.as_ptr().cast()) };
    }
}

/// A connection table of `capacity` entries for the worker on `lcore`: in
/// hugepage memory when `want_hugepages` and the EAL has them, else on the
/// heap.
pub fn conn_table(
    eal: &Eal,
    lcore: LcoreId,
    capacity: usize,
    now: Timestamp,
    want_hugepages: bool,
) -> (ConnTable, Placement) {
    if want_hugepages && eal_has_hugepages() {
        let l = ConnTable::layout(capacity);
        // SAFETY: a lookup in the EAL's lcore table; out-of-range ids give
        // SOCKET_ID_ANY's value.
        let socket = unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore.0) } as i32;
        let conns =
            HeapBlock::zalloc::<Conn>(eal, &format!("rvs_conns_{}", lcore.0), l.conns, socket);
        let buckets =
            HeapBlock::zalloc::<Bucket>(eal, &format!("rvs_index_{}", lcore.0), l.buckets, socket);
        if let (Some(c), Some(b)) = (conns, buckets) {
            // SAFETY: Conn and Bucket are plain integers (all-zero is valid,
            // see lb::conntable's Memory section); each block was allocated
            // for its type and is sliced once; the table is the slices' only
            // holder and releases the blocks from its Drop, after its last
            // access.
            let (cs, bs) = unsafe { (c.slice::<Conn>(), b.slice::<Bucket>()) };
            if let Ok(t) = ConnTable::with_memory(cs, bs, now) {
                return (
                    t.on_drop(Box::new(move || drop((c, b)))),
                    Placement::Hugepages,
                );
            }
        }
        // Whatever was allocated is freed here (the blocks drop); the table
        // goes on the heap and is reported so.
    }
    (ConnTable::new(capacity, now), Placement::Heap)
}
