//! `-Lc` output (ipvsadm's `list_conn`), and the one-line `--timeout`.

use super::names::{addr_port_name, Names};
use super::parse::Format;
use crate::control::proto::{ConnEntry, ConnProtocol, Timeouts};
use std::fmt::Write;

/// `IPVS connection entries` and one row per connection, in the daemon's
/// order. With `--persistent-conn` ipvsadm adds persistence-engine columns
/// to the title; rows only get them when an engine has data, which never
/// happens in rvs.
pub fn list_conns(conns: &[ConnEntry], f: &Format, names: &dyn Names) -> String {
    let mut out = String::from(conn_header(f));
    for c in conns {
        out.push_str(&conn_row(c, names));
    }
    out
}

/// The title lines of `-Lc`.
pub fn conn_header(f: &Format) -> &'static str {
    if f.persistent_conn {
        "IPVS connection entries\n\
         pro expire state       source             virtual            destination        pe name          pe_data\n"
    } else {
        "IPVS connection entries\n\
         pro expire state       source             virtual            destination\n"
    }
}

/// One `-Lc` row, with its newline; names for the connection's protocol.
pub fn conn_row(c: &ConnEntry, names: &dyn Names) -> String {
    let expire = format!("{:02}:{:02}", c.expire / 60, c.expire % 60);
    // ipvsadm reads IP (a fwmark template) as protocol 0: no service names.
    let p = match c.protocol {
        ConnProtocol::Tcp => Some("tcp"),
        ConnProtocol::Udp => Some("udp"),
        ConnProtocol::Ip => None,
    };
    let name = |a: std::net::SocketAddr| addr_port_name(names, a.ip(), a.port(), p);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
        c.protocol.name(),
        expire,
        c.state,
        name(c.client),
        name(c.virtual_addr),
        name(c.destination),
    );
    out
}

/// `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}
