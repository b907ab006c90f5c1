//! rvs: Linux IPVS rebuilt as a DPDK poll-mode load balancer.
//!
//! Modules follow the data flow, and depend only downwards:
//! `wire` <- `lb` <- `dataplane` <- daemon (`control`, binaries).
//! Everything except `dataplane` builds without DPDK
//! (`cargo test --no-default-features`).

pub mod config;
pub mod control;
pub mod gen;
pub mod hugepages;
pub mod lb;
pub mod net;
pub mod pci;
pub mod pipeline;
pub mod rss;
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod dataplane;

#[cfg(feature = "dpdk")]
pub mod daemon;
