//! rvs: Linux IPVS rebuilt as a DPDK poll-mode load balancer.
//!
//! Modules follow the data flow, and depend only downwards:
//! `wire` <- `lb` <- `net` <- `datapath` <- `dataplane` <- `daemon`
//! (with `control` and the binaries); `drops` (the one drop taxonomy) and
//! `ids` (typed indices) are leaves every layer may use.
//! Everything except `dataplane` builds without DPDK
//! (`cargo test --no-default-features`).

#[forbid(unsafe_code)]
pub mod config;
#[forbid(unsafe_code)]
pub mod control;
#[forbid(unsafe_code)]
pub mod datapath;
#[forbid(unsafe_code)]
pub mod drops;
#[forbid(unsafe_code)]
pub mod hugepages;
#[forbid(unsafe_code)]
pub mod ids;
#[forbid(unsafe_code)]
pub mod lb;
#[forbid(unsafe_code)]
pub mod net;
#[forbid(unsafe_code)]
pub mod pci;
#[forbid(unsafe_code)]
pub mod rng;
#[forbid(unsafe_code)]
pub mod rss;
#[forbid(unsafe_code)]
pub mod traffic;
#[forbid(unsafe_code)]
pub mod twin;
#[forbid(unsafe_code)]
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod dataplane;

#[cfg(feature = "dpdk")]
#[forbid(unsafe_code)]
pub mod daemon;
