//! Safe wrappers over the DPDK FFI crate.
