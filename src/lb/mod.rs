//! The sans-IO load balancer core: services, real servers, schedulers,
//! connections. Time is always a parameter, never read from the OS.

pub mod conntable;
pub mod dest;
pub mod engine;
pub mod error;
pub mod forward;
pub mod marks;
pub mod persist;
pub mod rules;
pub mod sched;
pub mod service;
pub mod stats;
pub mod tcp_state;
pub mod time;
