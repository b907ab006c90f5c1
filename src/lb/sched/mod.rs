//! Schedulers: one file per algorithm behind the [`Scheduler`] trait.
//!
//! A scheduler picks a real server for a new connection. It sees the
//! service's real servers through [`DestSet`], in the kernel's list order
//! (index 0 = the most recently added, as the kernel inserts at the head).
//! Each worker lcore owns its own scheduler instances; connection counts
//! behind `DestSet` are shared across lcores.

use std::net::IpAddr;

use super::time::Instant;

/// Read access to a service's real servers, in kernel list order.
pub trait DestSet {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn addr(&self, i: usize) -> IpAddr;
    fn port(&self, i: usize) -> u16;
    fn weight(&self, i: usize) -> u32;
    fn active(&self, i: usize) -> u32;
    fn inactive(&self, i: usize) -> u32;
    /// Upper connection threshold reached (IP_VS_DEST_F_OVERLOAD).
    fn overloaded(&self, i: usize) -> bool;
}

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

pub trait Scheduler: Send {
    /// The ipvsadm name (`rr`, `wlc`, ...).
    fn name(&self) -> &'static str;
    /// Rebuild internal tables after the destination list, a weight or a
    /// flag changed. Called off the per-packet path.
    fn update(&mut self, dests: &dyn DestSet);
    /// The index of the real server for a new connection, or `None` when no
    /// server is available (the packet is then dropped).
    fn schedule(&mut self, dests: &dyn DestSet, key: &FlowKey, now: Instant) -> Option<usize>;
}

/// Scheduler flags (`ipvsadm -b`). sh-* apply only to sh, mh-* only to mh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// Probe further buckets when the hashed server is unavailable.
    pub fallback: bool,
    /// Hash the source port as well as the source address.
    pub port: bool,
}

/// Every scheduler name rvs knows, as ipvsadm spells them.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "fo", "ovf", "lblc", "lblcr", "twos",
];

/// A new scheduler instance by ipvsadm name; `None` for an unknown name.
pub fn new(name: &str, flags: SchedFlags) -> Option<Box<dyn Scheduler>> {
    let _ = (name, flags);
    None
}
