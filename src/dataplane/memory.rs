//! Connection tables in DPDK's heap (`rte_zmalloc_socket`).
//!
//! At a million connections a worker's table is about 100 MB touched at
//! random; on 4 KiB pages nearly every lookup also misses the TLB. When the
//! EAL runs on hugepages, its heap is hugepage memory on the worker's NUMA
//! socket, so the table goes there. Without hugepages (`--no-huge`) the
//! EAL's heap is ordinary pages and only as large as `-m`: the table stays
//! on the Rust heap.

use std::ffi::CString;
use std::mem::{align_of, size_of};

use crate::lb::conntable::{Bucket, Conn, ConnTable};
use crate::lb::time::Instant;

use super::LcoreId;

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

/// Zeroed memory for `n` values of `T` from DPDK's heap on `socket`, never
/// freed. `None` when the heap has no room.
fn zalloc_forever<T>(name: &str, n: usize, socket: i32) -> Option<&'static mut [T]> {
    let bytes = n.checked_mul(size_of::<T>())?;
    if bytes == 0 {
        return None;
    }
    let cname = CString::new(name).ok()?;
    let align = align_of::<T>().max(64) as u32;
    // SAFETY: a plain allocation call; cname outlives it (DPDK copies the
    // name into its statistics).
    let p = unsafe { dpdk_sys::rte_zmalloc_socket(cname.as_ptr(), bytes, align, socket) };
    if p.is_null() {
        return None;
    }
    // SAFETY: p is non-null, aligned for T, points to `bytes` zeroed bytes
    // that nothing else references and that are never freed (so 'static).
    // This is only called for Conn and Bucket, plain integers for which the
    // all-zero pattern is a valid value (see lb::conntable's Memory section).
    Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<T>(), n) })
}

/// A connection table of `capacity` entries for the worker on `lcore`: in
/// hugepage memory when `want_hugepages` and the EAL has them, else on the
/// heap.
pub fn conn_table(
    lcore: LcoreId,
    capacity: usize,
    now: Instant,
    want_hugepages: bool,
) -> (ConnTable, Placement) {
    if want_hugepages && eal_has_hugepages() {
        let l = ConnTable::layout(capacity);
        // SAFETY: a lookup in the EAL's lcore table; out-of-range ids give
        // SOCKET_ID_ANY's value.
        let socket = unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore.0) } as i32;
        let conns = zalloc_forever::<Conn>(&format!("rvs_conns_{}", lcore.0), l.conns, socket);
        let buckets =
            zalloc_forever::<Bucket>(&format!("rvs_index_{}", lcore.0), l.buckets, socket);
        if let (Some(c), Some(b)) = (conns, buckets) {
            if let Ok(t) = ConnTable::with_memory(c, b, now) {
                return (t, Placement::Hugepages);
            }
        }
        // A partial allocation stays allocated: it is reported as heap
        // placement and the operator sizes the hugepages up.
    }
    (ConnTable::new(capacity, now), Placement::Heap)
}
