//! rvs: Linux IPVS rebuilt as a DPDK poll-mode load balancer.
//!
//! Modules follow the data flow, and depend only downwards:
//! `wire` <- `lb` <- `net` <- `datapath` <- `dataplane` <- `daemon`
//! (with `control` and the binaries); `drops` (the one drop taxonomy) and
//! `ids` (typed indices) are leaves every layer may use.
//! Everything except `dataplane` builds without DPDK
//! (`cargo test --no-default-features`).

pub mod config;
pub mod control;
pub mod datapath;
pub mod drops;
pub mod gen;
pub mod hugepages;
pub mod ids;
pub mod lb;
pub mod net;
pub mod pci;
pub mod rss;
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod dataplane;

#[cfg(feature = "dpdk")]
pub mod daemon;
