//! The control channel: the versioned JSON protocol ([`proto`]) with its
//! streamed connection listing ([`conn_stream`]), the unix socket client
//! used by `rvsadm` ([`client`]), the daemon side: dispatch and binding
//! ([`server`]), the requests' semantics ([`handler`]), the socket's
//! clients with their limits ([`listener`], over the sans-IO [`line`] and
//! [`slots`]), and the ipvsadm-compatible front end ([`ipvsadm`]). See
//! `docs/control.md`.

pub mod client;
pub mod conn_stream;
pub mod handler;
pub mod ipvsadm;
pub mod line;
pub mod listener;
pub mod proto;
pub mod server;
pub mod slots;
