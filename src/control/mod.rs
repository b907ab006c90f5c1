//! The control channel: the versioned JSON protocol ([`proto`]), the unix
//! socket client used by `rvsadm` ([`client`]), the daemon-side dispatch
//! helpers ([`server`]), and the ipvsadm-compatible front end
//! ([`ipvsadm`]). See `docs/control.md`.

pub mod client;
pub mod handler;
pub mod ipvsadm;
pub mod listener;
pub mod proto;
pub mod server;
