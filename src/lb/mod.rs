//! The sans-IO load balancer core: services, real servers, schedulers,
//! connections. Time is always a parameter, never read from the OS.

pub mod sched;
pub mod time;
