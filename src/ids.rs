//! Typed indices above the dataplane, so that a port's place in rvsd's
//! port list, DPDK's port id (`dataplane::PortId`) and a worker's number
//! cannot be mixed up.

use std::fmt;

/// A port's index in rvsd's port list (the order of the config's
/// `[[port]]` tables): a worker's rx/tx queue `i` belongs to port index
/// `i`. Not DPDK's port id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortIndex(pub u16);

/// A worker's number, 0-based, in lcore order: the owner of a connection
/// and the target of a hand-off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerIndex(pub u16);

impl PortIndex {
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl WorkerIndex {
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

/// Port indices are written as numbers in configurations and tests.
impl From<u16> for PortIndex {
    fn from(i: u16) -> Self {
        PortIndex(i)
    }
}

impl fmt::Display for PortIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

impl fmt::Display for WorkerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {}", self.0)
    }
}
