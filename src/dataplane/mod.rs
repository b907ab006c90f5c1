//! Safe wrappers over the DPDK FFI crate (`dpdk-sys`) and the worker loop.
//!
//! `unsafe` in rvs lives only here and in `ffi/`; every block says why it is
//! sound. Everything above this module sees safe types: [`Eal`], [`Mempool`],
//! [`Mbuf`], [`Port`], [`Burst`], lcore launch.
//!
//! Ownership, so that these wrappers stay sound whatever safe code does:
//! - [`Eal`] is the capability: pools, rings, hand-off meshes, ports, heap
//!   blocks and launched lcores are made from an `&Eal` and each keeps a
//!   reference to it; `rte_eal_cleanup` runs when the last of them goes.
//! - A [`Mempool`] is freed when its last handle goes, unless mbufs of it are
//!   still out: then it is leaked (with the EAL), so an [`Mbuf`] never points
//!   into freed memory.
//! - A [`Port`] is one handle per device; its queues share its state, and the
//!   device is stopped and closed only when the handle and every queue are
//!   gone, so no queue bursts on a stopped or closed device. A started port
//!   holds its pool, a ring-backed port its rings, until the device is closed.
#![deny(clippy::undocumented_unsafe_blocks)]

mod error;
mod ids;

pub mod eal;
pub mod handoff;
pub mod lcore;
pub mod mbuf;
pub mod memory;
pub mod mempool;
pub mod port;
pub mod replay;
pub mod ring;
pub mod twin;
pub mod worker;

pub use eal::Eal;
pub use error::{DpdkError, Result};
pub use ids::{LcoreId, PortId, QueueId};
pub use mbuf::{Burst, Mbuf, BURST_SIZE};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortStats, RssConfig};

/// Read the CPU's time-stamp counter (cheap; the worker clock).
#[inline]
pub fn tsc() -> u64 {
    // Inline on x86_64: the worker reads it several times per loop.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc only reads the time-stamp counter; no memory is touched.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: rte_rdtsc only reads the TSC register; no memory is touched.
    unsafe {
        dpdk_sys::rvs_rdtsc()
    }
}

/// Ask for the cache line at `p` (into all levels) without waiting for it:
/// for [`crate::lb::engine::Engine::set_prefetch`].
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and changes no
    // memory, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// TSC ticks per second, as calibrated by the EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at init; no arguments.
    unsafe { dpdk_sys::rvs_tsc_hz() }
}

/// The headroom DPDK leaves in front of a fresh mbuf's data
/// (`RTE_PKTMBUF_HEADROOM`).
pub fn mbuf_headroom() -> u16 {
    // SAFETY: returns a compile-time constant.
    unsafe { dpdk_sys::rvs_pktmbuf_headroom_default() }
}

/// The DPDK version string of the library rvs runs against.
pub fn version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    let p = unsafe { dpdk_sys::rvs_version() };
    if p.is_null() {
        return String::from("unknown");
    }
    // SAFETY: non-null, static and NUL-terminated (see above).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}
